//! Marking a span as failed, written once for every span the services make.
//!
//! tracing-opentelemetry turns the field `otel.status_code` into the span's status, and
//! `error.type` is the semantic conventions' attribute for what went wrong (1.44.0,
//! `docs/general/recording-errors.md`). `Span::record` fills only the fields a span was made
//! with: on a span that did not declare them (`tracing::field::Empty`), it records nothing and
//! says nothing.

use tracing::Span;

/// Marks `span` as an error of the kind `error_type` (`500`, `UNAVAILABLE`, `database_error`).
pub fn record_error(span: &Span, error_type: &str) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", error_type);
}
