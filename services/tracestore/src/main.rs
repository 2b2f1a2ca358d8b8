use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tracestore::{Listeners, Store};

/// tracestore: receives OTLP traces and answers Jaeger's query API v3 (local mode's Jaeger).
#[derive(Parser)]
#[command(version, about)]
struct Config {
    /// OTLP over gRPC.
    #[arg(long, env = "TRACESTORE_OTLP_GRPC_LISTEN", default_value = "127.0.0.1:4317")]
    otlp_grpc_listen: SocketAddr,
    /// OTLP over HTTP (`POST /v1/traces`, protobuf or JSON).
    #[arg(long, env = "TRACESTORE_OTLP_HTTP_LISTEN", default_value = "127.0.0.1:4318")]
    otlp_http_listen: SocketAddr,
    /// Jaeger's query API v3 and the trace pages.
    #[arg(long, env = "TRACESTORE_QUERY_LISTEN", default_value = "127.0.0.1:16686")]
    query_listen: SocketAddr,
    /// How many traces to keep; the oldest go first.
    #[arg(long, env = "TRACESTORE_MAX_TRACES", default_value_t = 10_000)]
    max_traces: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init_logging();
    let bind = |address: SocketAddr, option: &'static str| async move {
        TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address} (change it with {option})"))
    };
    let listeners = Listeners {
        otlp_grpc: bind(config.otlp_grpc_listen, "--otlp-grpc-listen").await?,
        otlp_http: bind(config.otlp_http_listen, "--otlp-http-listen").await?,
        query: bind(config.query_listen, "--query-listen").await?,
    };
    tracing::info!(
        otlp_grpc = %listeners.otlp_grpc.local_addr()?,
        otlp_http = %listeners.otlp_http.local_addr()?,
        address = %listeners.query.local_addr()?,
        "tracestore receiving OTLP and answering Jaeger's API v3"
    );
    tracestore::serve(Store::new(config.max_traces), listeners, telemetry::shutdown_signal()).await?;
    tracing::info!("tracestore stopped");
    Ok(())
}
