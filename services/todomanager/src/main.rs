use anyhow::Context;
use clap::Parser;
use todomanager::{Config, Store};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let telemetry = telemetry::init("todomanager", env!("CARGO_PKG_VERSION"))?;
    let tracez = telemetry.serve_tracez(config.tracez_listen).await?;

    let store = open_store(&config).await?;
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!("cannot listen on {} (change it with --listen or TODOMANAGER_LISTEN)", config.listen)
    })?;
    tracing::info!(address = %listener.local_addr()?, database = store.backend(), %tracez, "todomanager serving gRPC");

    let served =
        todomanager::serve(listener, store, config.faults, config.history_window, telemetry::shutdown_signal()).await;
    // Send the last spans even when serving failed.
    telemetry.shutdown().await;
    served?;
    tracing::info!("todomanager stopped");
    Ok(())
}

/// Opens the database, retrying while it is unreachable for up to `--database-wait`.
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let deadline = tokio::time::Instant::now() + config.database_wait;
    loop {
        match Store::open(&config.database_url, config.database_timeout).await {
            Ok(store) => return Ok(store),
            Err(todomanager::store::StoreError::Unavailable(error)) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(%error, "database not reachable yet, retrying in 2s");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            Err(error) => {
                return Err(error).context("cannot open the database (set it with --database-url or DATABASE_URL)");
            }
        }
    }
}
