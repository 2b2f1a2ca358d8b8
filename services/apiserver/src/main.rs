use anyhow::Context;
use apiserver::Config;
use clap::Parser;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init_logging();

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (change it with --listen or APISERVER_LISTEN)", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, todomanager = %config.todomanager_url, "apiserver serving HTTP");

    apiserver::serve(listener, &config, telemetry::shutdown_signal()).await?;
    tracing::info!("apiserver stopped");
    Ok(())
}
