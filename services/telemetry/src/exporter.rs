//! Where finished spans go: an OTLP exporter (gRPC by default, HTTP with protobuf on request),
//! configured by the standard `OTEL_EXPORTER_OTLP_*` variables, and wrapped so that a collector
//! that is down costs one warning, not a warning per batch.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter},
};

/// How often a collector that stays down is mentioned again.
const REMIND_EVERY: Duration = Duration::from_secs(60);

/// The exporter that `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL` ask for.
/// The endpoint comes from `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`
/// (default `http://localhost:4317` for gRPC, `http://localhost:4318/v1/traces` for HTTP).
pub fn from_env() -> anyhow::Result<Quiet<opentelemetry_otlp::SpanExporter>> {
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|_| "grpc".into());
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = match protocol.as_str() {
        "grpc" => builder.with_tonic().build()?,
        "http/protobuf" => builder.with_http().with_protocol(Protocol::HttpBinary).build()?,
        other => {
            anyhow::bail!("OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not supported here: use grpc or http/protobuf")
        }
    };
    Ok(Quiet::new(exporter))
}

/// Passes spans on to `inner`, and tells in the log when exporting starts failing, every
/// [`REMIND_EVERY`] while it goes on failing, and when it works again.
#[derive(Debug)]
pub struct Quiet<E> {
    inner: E,
    failed_batches: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl<E> Quiet<E> {
    pub fn new(inner: E) -> Self {
        Self { inner, failed_batches: AtomicU64::new(0), last_warning: Mutex::new(None) }
    }
}

impl<E: SpanExporter> SpanExporter for Quiet<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        let mut last_warning = self.last_warning.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &result {
            Ok(()) => {
                let failed = self.failed_batches.swap(0, Ordering::Relaxed);
                if failed > 0 {
                    tracing::info!(failed_batches = failed, "exporting spans works again");
                    *last_warning = None;
                }
            }
            Err(error) => {
                let failed = self.failed_batches.fetch_add(1, Ordering::Relaxed) + 1;
                if last_warning.is_none_or(|at| at.elapsed() >= REMIND_EVERY) {
                    tracing::warn!(%error, spans, failed_batches = failed,
                        "cannot export spans (is the collector up?); dropping them, next reminder in 60s");
                    *last_warning = Some(Instant::now());
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
