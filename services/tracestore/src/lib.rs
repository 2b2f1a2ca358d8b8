//! The embedded trace store of local mode: what Jaeger does in the cluster, as one small
//! process. It receives spans over OTLP (gRPC 4317, HTTP 4318), keeps the newest traces in
//! memory and answers Jaeger's query API v3 on 16686, next to a page that lists the traces.

pub mod filter;
pub mod json;
pub mod limits;
pub mod model;
pub mod otlp;
mod page;
pub mod query;
pub mod store;

use std::future::Future;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

pub use store::{Limits, Store};

/// Where the store listens.
pub struct Listeners {
    pub otlp_grpc: TcpListener,
    pub otlp_http: TcpListener,
    pub query: TcpListener,
}

/// Serves the receivers, the query API and the pages until `shutdown` completes.
pub async fn serve(
    store: Store,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stopped_signal = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };

    let grpc = tonic::transport::Server::builder()
        .add_service(otlp::grpc_service(store.clone()))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listeners.otlp_grpc), stopped_signal(stopped.clone()));
    let http = axum::serve(listeners.otlp_http, otlp::http_router(store.clone()))
        .with_graceful_shutdown(stopped_signal(stopped.clone()));
    let query = axum::serve(listeners.query, query::router(store.clone()).merge(page::router(store)))
        .with_graceful_shutdown(stopped_signal(stopped));

    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let (grpc, http, query) = tokio::join!(grpc, http, query);
    grpc?;
    http?;
    query?;
    Ok(())
}
