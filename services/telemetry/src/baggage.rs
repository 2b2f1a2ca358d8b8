//! Baggage: key-values that travel with a request to every service it reaches, beside the trace
//! context (the W3C `baggage` header; `baggage` is in `OTEL_PROPAGATORS` by default). The edge
//! puts the caller's session in it (http.rs, from the `X-Session-Id` header); every span of the
//! request records it as `session.id` (semantic conventions 1.44.0,
//! docs/registry/attributes/session.md), so that a search finds all the traces of one session,
//! in every service.
//!
//! Baggage comes from the caller and goes on to every service after: it is as trustworthy as
//! the caller, and it costs bytes on every call. Keep it small, and never put a secret in it.

use opentelemetry::{
    Context,
    baggage::{Baggage, BaggageExt, BaggageMetadata},
};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The request header that names the caller's session.
pub const SESSION_HEADER: &str = "x-session-id";

/// The baggage entry, and the span attribute, that carry it.
pub const SESSION_KEY: &str = "session.id";

/// `cx` with `session` in its baggage, beside what the caller put there.
pub fn with_session(cx: &Context, session: &str) -> Context {
    let theirs = cx.baggage().iter().map(|(key, (value, metadata))| (key.clone(), (value.clone(), metadata.clone())));
    let ours = (SESSION_KEY.into(), (session.to_owned().into(), BaggageMetadata::default()));
    cx.with_baggage(theirs.chain([ours]).collect::<Baggage>())
}

/// Records on `span` the session its context's baggage carries, if any.
pub fn record_session(span: &tracing::Span) {
    let cx = span.context();
    if let Some(session) = cx.baggage().get(SESSION_KEY) {
        span.set_attribute(SESSION_KEY, session.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_joins_what_the_caller_put_in_the_baggage() {
        let theirs = Context::new().with_baggage([opentelemetry::KeyValue::new("tenant.id", "acme")]);
        let cx = with_session(&theirs, "s-42");
        assert_eq!(cx.baggage().get(SESSION_KEY).map(ToString::to_string).as_deref(), Some("s-42"));
        assert_eq!(cx.baggage().get("tenant.id").map(ToString::to_string).as_deref(), Some("acme"));
    }
}
