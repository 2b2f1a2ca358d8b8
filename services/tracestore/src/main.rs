use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tracestore::{Limits, Listeners, Store};

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
    #[arg(long, env = "TRACESTORE_MAX_TRACES", default_value_t = Limits::default().max_traces)]
    max_traces: usize,
    /// How much memory the kept spans may take, in MiB (estimated); the oldest traces go first.
    #[arg(long, env = "TRACESTORE_MAX_MIB", default_value_t = Limits::default().max_bytes / MIB)]
    max_mib: usize,
    /// How many spans one trace may have; further spans of it are rejected.
    #[arg(long, env = "TRACESTORE_MAX_SPANS_PER_TRACE", default_value_t = Limits::default().max_spans_per_trace)]
    max_spans_per_trace: usize,
    /// The longest attribute value kept, in bytes; longer ones are cut.
    #[arg(long, env = "TRACESTORE_MAX_ATTRIBUTE_VALUE_BYTES", default_value_t = Limits::default().max_attribute_value_bytes)]
    max_attribute_value_bytes: usize,
}

const MIB: usize = 1024 * 1024;

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
    let limits = Limits {
        max_traces: config.max_traces,
        max_bytes: config.max_mib.saturating_mul(MIB),
        max_spans_per_trace: config.max_spans_per_trace,
        max_attribute_value_bytes: config.max_attribute_value_bytes,
    };
    tracing::info!(?limits, "keeping the newest traces within these limits");
    tracestore::serve(Store::new(limits), listeners, telemetry::shutdown_signal()).await?;
    tracing::info!("tracestore stopped");
    Ok(())
}
