//! How apiserver serves connections (HTTP/1.1, with hyper), with the limits a server facing the
//! public needs, so slow or idle clients cannot take it down:
//!
//! - a client must send a request's headers within `header_read_timeout`, and an idle
//!   keep-alive connection is closed after that long (hyper starts the same timer while it
//!   waits for the next request);
//! - a request's body must arrive within `request_body_timeout`, however slowly it trickles
//!   (answered 408);
//! - at most `max_connections` connections at once: beyond that, new ones wait in the kernel's
//!   queue instead of using up file descriptors;
//! - on shutdown, requests in flight get `shutdown_timeout` to finish; then the remaining
//!   connections are closed and the process exits.

use std::{future::Future, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinSet};
use tower::{ServiceBuilder, ServiceExt as _};
use tower_http::timeout::RequestBodyDeadlineLayer;

/// The limits; `apiserver --help` shows their flags and defaults.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Limits {
    /// Time a client has to send a request's headers; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, env = "APISERVER_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// Time a client has to send a request's whole body (408 after it).
    #[arg(long, env = "APISERVER_REQUEST_BODY_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_body_timeout: Duration,

    /// Connections served at once; further ones wait until one closes.
    #[arg(long, env = "APISERVER_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// On SIGTERM, how long requests in flight may take to finish before their connections
    /// are closed.
    #[arg(long, env = "APISERVER_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_body_timeout: Duration::from_secs(10),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then lets the
/// requests in flight finish (for `shutdown_timeout` at most).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // HTTP/1.1 only: what clients and the ingress speak here. (hyper's auto-detecting builder
    // waits for a connection's first bytes with no timeout at all: an idle client would hold a
    // connection forever.)
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let free = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut said_full = false;

    loop {
        while connections.try_join_next().is_some() {}
        if free.available_permits() == 0 && !said_full {
            tracing::warn!(limit = limits.max_connections, "connection limit reached: new connections wait");
        }
        said_full = free.available_permits() == 0;
        let permit = tokio::select! {
            permit = free.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a little instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // The client's address for the spans' `client.address`, as axum's `ConnectInfo`.
        let app = router.clone().map_request(move |mut request: axum::http::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let service =
            ServiceBuilder::new().layer(RequestBodyDeadlineLayer::new(limits.request_body_timeout)).service(app);
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }

    drop(listener);
    let open = graceful.count();
    if open > 0 {
        tracing::info!(connections = open, "finishing the requests in flight");
    }
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            connections = connections.len(),
            timeout = %humantime::format_duration(limits.shutdown_timeout),
            "connections still open after the shutdown timeout: closing them"
        );
    }
    connections.abort_all();
    Ok(())
}
