//! apiserver: the workshop's REST API for todos. It keeps no data itself: every request
//! becomes one or more gRPC calls to todomanager.

pub mod config;
pub mod error;
pub mod faults;
pub mod json;
pub mod routes;
pub mod todomanager;

use std::future::Future;

use tokio::net::TcpListener;

pub use config::Config;

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let todomanager = todomanager::TodoManager::connect_lazy(&config.todomanager_url, config.todomanager_timeout)?;
    // Connection info gives the spans their `client.address`.
    let app = routes::router(todomanager, config.faults).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
