use anyhow::Context;
use apiserver::Config;
use clap::Parser;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let telemetry = telemetry::init("apiserver", env!("CARGO_PKG_VERSION"))?;
    let tracez = telemetry.serve_tracez(config.tracez_listen).await?;

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (change it with --listen or APISERVER_LISTEN)", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, todomanager = %config.todomanager_url, %tracez, "apiserver serving HTTP");

    let served = apiserver::serve(listener, &config, telemetry::shutdown_signal()).await;
    // Send the last spans even when serving failed.
    telemetry.shutdown().await;
    served?;
    tracing::info!("apiserver stopped");
    Ok(())
}
