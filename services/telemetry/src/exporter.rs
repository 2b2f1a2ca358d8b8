//! Where finished spans go: an OTLP exporter (gRPC by default, HTTP with protobuf on request),
//! configured by the standard `OTEL_EXPORTER_OTLP_*` variables. It is wrapped in
//! [`QuietExporter`](crate::hardening::quiet_exporter::QuietExporter): a dead collector costs
//! one warning, not one per batch, and one oversized span never costs a whole batch.

use opentelemetry_otlp::{Protocol, WithExportConfig};

use crate::hardening::quiet_exporter::QuietExporter;

/// The exporter that `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL` ask for.
/// The endpoint comes from `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`
/// (default `http://localhost:4317` for gRPC, `http://localhost:4318/v1/traces` for HTTP).
pub fn from_env() -> anyhow::Result<QuietExporter<opentelemetry_otlp::SpanExporter>> {
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
    Ok(QuietExporter::new(exporter))
}
