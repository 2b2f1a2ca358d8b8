//! apiserver: the workshop's REST API for todos. It keeps no data itself: every request
//! becomes one or more gRPC calls to todomanager.

pub mod config;
pub mod error;
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
    axum::serve(listener, routes::router(todomanager)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
