//! apiserver: the workshop's REST API for todos. It keeps no data itself: every request
//! becomes one or more gRPC calls to todomanager.

pub mod config;
pub mod error;
pub mod faults;
pub mod json;
pub mod routes;
pub mod server;
pub mod todomanager;

use std::future::Future;

use tokio::net::TcpListener;

pub use config::Config;

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests in flight
/// (within `config.limits`).
pub async fn serve(
    listener: TcpListener,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let todomanager = todomanager::TodoManager::connect_lazy(&config.todomanager_url, config.todomanager_timeout)?;
    server::serve(listener, routes::router(todomanager, config.faults), config.limits, shutdown).await
}
