//! Tracing for the workshop's services, set up with one call at start-up:
//!
//! ```text
//! let telemetry = telemetry::init("apiserver", env!("CARGO_PKG_VERSION"))?;
//! // … serve …
//! telemetry.shutdown().await; // sends the last spans before the process exits
//! ```
//!
//! `tracing` spans become OpenTelemetry spans (through `tracing-opentelemetry`), batched and
//! sent over OTLP to a collector. Everything is configured with the standard `OTEL_*`
//! environment variables: `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`,
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` (default
//! `parentbased_always_on`), `OTEL_PROPAGATORS` (default `tracecontext,baggage,b3multi`),
//! `OTEL_SDK_DISABLED`, and the span limits (`OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, default
//! 4096, and the SDK's count limits: see `hardening/value_limits.rs`). Log lines go to stderr with the trace and
//! span ids of their span.

// The lesson, in reading order: how tracing is set up (this file, then the resource and the
// exporter), how context travels (propagation, and baggage beside it), which traces are kept
// (sampling), where spans are made (http, grpc, and the
// stream a span must stay around), how a failed span is marked (status), and each service's
// own view of its spans (tracez). The workarounds of the SDK's gaps are apart, in hardening/.
pub mod baggage;
pub mod exporter;
pub mod grpc;
pub mod http;
mod logging;
pub mod propagation;
mod resource;
pub mod sampling;
mod shutdown;
pub mod status;
mod stream;
pub mod tracez;

pub mod hardening;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    runtime,
    trace::{SdkTracerProvider, SpanProcessor, span_processor_with_async_runtime::BatchSpanProcessor},
};
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

use hardening::{span_selection, value_limits};

pub use shutdown::shutdown_signal;
pub use stream::InSpan;
pub use tracez::Tracez;

/// Keeps tracing running; [`Telemetry::shutdown`] flushes it.
#[must_use = "call shutdown() before the process exits, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    tracez: Tracez,
}

/// Sets up logs and tracing for the service `service_name`. Call it once, from inside the tokio
/// runtime (the exporter runs on it).
pub fn init(service_name: &'static str, service_version: &'static str) -> anyhow::Result<Telemetry> {
    let tracez = Tracez::default();
    let provider = if sdk_disabled() {
        None
    } else {
        opentelemetry::global::set_text_map_propagator(propagation::from_env()?);
        let exporter = exporter::from_env()?;
        let max_value_length = value_limits::value_length_from_env()?;
        // Batches spans on tokio; when the queue is full (OTEL_BSP_MAX_QUEUE_SIZE, default
        // 2048) new spans are dropped, counted and reported in the log, so a dead collector
        // cannot eat the memory.
        let batches = BatchSpanProcessor::builder(exporter, runtime::Tokio).build();
        let mut builder = SdkTracerProvider::builder()
            .with_resource(resource::detect(service_name, service_version))
            .with_span_processor(on_the_way_out(batches, &tracez, max_value_length));
        // The SDK reads OTEL_TRACES_SAMPLER itself; for one of its values the services have their own.
        if let Some(sampler) = sampling::from_env()? {
            builder = builder.with_sampler(sampler);
        }
        Some(builder.build())
    };
    let otel = provider
        .as_ref()
        .map(|provider| without_extras(tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name))));
    // Only our spans, and warnings and errors as their events, go into traces.
    let otel = otel.map(span_selection::Select);
    let levels = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry().with(levels).with(otel).with(logging::layer()).try_init()?;

    if sdk_disabled() {
        tracing::info!("OTEL_SDK_DISABLED is set: no spans are recorded or exported");
    }
    Ok(Telemetry { provider, tracez })
}

/// Each finished span goes through one chain on its way to `export`: cut to the limits, counted
/// by tracez, queued for export.
fn on_the_way_out<P: SpanProcessor>(
    export: P,
    tracez: &Tracez,
    max_value_length: usize,
) -> impl SpanProcessor + use<P> {
    value_limits::Limited::new(tracez.processor(export, max_value_length), max_value_length)
}

/// Cost, not lesson: by default every span also gets its source file, line, module, thread and
/// target, and busy/idle times (8 attributes more to record, keep and send), and each poll makes
/// the span's context current. Our spans carry what the semantic conventions ask for, and nothing
/// here reads the current context. Saves about 75,000 instructions per request in apiserver
/// (callgrind; README.md).
fn without_extras<S, T>(layer: OpenTelemetryLayer<S, T>) -> OpenTelemetryLayer<S, T>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    T: opentelemetry::trace::Tracer + 'static,
    T::Span: Send + Sync,
{
    layer
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
}

/// Logs only, no tracing: for processes that must not trace themselves (the trace store).
pub fn init_logging() {
    let levels = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry().with(levels).with(logging::layer()).try_init();
}

/// `OTEL_SDK_DISABLED=true` turns tracing off (logs stay).
fn sdk_disabled() -> bool {
    std::env::var("OTEL_SDK_DISABLED").is_ok_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

impl Telemetry {
    /// The record behind this process's `/debug/tracez` page.
    pub fn tracez(&self) -> Tracez {
        self.tracez.clone()
    }

    /// Serves this process's `/debug/tracez` page on `address` until the process exits.
    pub async fn serve_tracez(&self, address: std::net::SocketAddr) -> anyhow::Result<std::net::SocketAddr> {
        use anyhow::Context as _;
        let listener = tokio::net::TcpListener::bind(address).await.with_context(|| {
            format!("cannot serve tracez on {address} (change it with --tracez-listen or TRACEZ_LISTEN)")
        })?;
        let address = listener.local_addr()?;
        let router = self.tracez.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(address)
    }

    /// Exports every finished span, then stops the exporter. Call it after the servers stopped.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else { return };
        // shutdown() blocks until the batch is sent: keep it off the async worker threads.
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "could not export the last spans"),
            Err(error) => tracing::warn!(%error, "could not shut tracing down"),
        }
    }
}
