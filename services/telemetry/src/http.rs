//! HTTP server spans, as axum middleware: one SERVER span per request, named after the route
//! template (`GET /v1/todo/{id}`, not `/v1/todo/42`), continuing the caller's trace, and the
//! trace id sent back in `X-Trace-Id` so you can look the request up.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, MatchedPath, Request},
    http::{HeaderName, HeaderValue, header},
    middleware::Next,
    response::Response,
};
use opentelemetry::trace::TraceContextExt;
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{baggage, propagation};

/// The response header that carries the trace id.
pub const TRACE_ID_HEADER: HeaderName = HeaderName::from_static("x-trace-id");

/// Paths that get no span: probes and debug pages would drown the real requests.
fn is_untraced(path: &str) -> bool {
    matches!(path, "/ping" | "/ready" | "/metrics") || path.starts_with("/debug/")
}

/// The middleware: a SERVER span around each request that is not a probe.
pub async fn trace_requests(request: Request, next: Next) -> Response {
    if is_untraced(request.uri().path()) {
        return next.run(request).await;
    }
    // Any token is an HTTP method; only known ones name spans, or a client could fill the
    // span names (and tracez) with made-up ones.
    let original = request.method().as_str();
    let (method, method_original) = if is_known_method(original) {
        (original.to_owned(), None)
    } else {
        ("_OTHER".to_owned(), Some(original.to_owned()))
    };
    let method_in_name = if method_original.is_some() { "HTTP" } else { method.as_str() };
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let name = match &route {
        Some(route) => format!("{method_in_name} {route}"),
        None => method_in_name.to_owned(), // no route matched: the semantic conventions say just the method
    };
    let (host, port) = server_address(&request);
    let span = tracing::info_span!(
        "HTTP request",
        // Strings, not `%`/`?` formatting: each formatted field costs a trip through
        // `core::fmt` on every request.
        otel.name = name.as_str(),
        otel.kind = "server",
        http.request.method = method.as_str(),
        http.request.method_original = method_original,
        http.route = route,
        url.path = request.uri().path(),
        url.query = request.uri().query().map(redact_query).as_deref(),
        url.scheme = "http",
        server.address = host,
        server.port = port,
        client.address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip().to_string()),
        user_agent.original = request.headers().get(header::USER_AGENT).and_then(|agent| agent.to_str().ok()),
        http.response.status_code = Empty,
        otel.status_code = Empty,
        error.type = Empty,
    );
    // A request may ask for its trace whatever the sampling share (sampling.rs reads it).
    if let Some(value) = request.headers().get(crate::sampling::DEBUG_HEADER).and_then(|value| value.to_str().ok()) {
        let values = opentelemetry::Array::String(vec![value.to_owned().into()]);
        span.set_attribute(crate::sampling::DEBUG_ATTRIBUTE, opentelemetry::Value::Array(values));
    }
    // Continue the caller's trace (ingress, mesh proxy, curl with a traceparent), if any, with
    // the caller's session in the baggage that goes on with the request (baggage.rs).
    let mut parent = propagation::extract(request.headers());
    if let Some(session) = request.headers().get(baggage::SESSION_HEADER).and_then(|value| value.to_str().ok()) {
        parent = baggage::with_session(&parent, session);
    }
    let _ = span.set_parent(parent);
    baggage::record_session(&span);
    let trace_id = span.context().span().span_context().trace_id();

    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;

    let status = response.status();
    // An access log line, inside the span: it carries the trace id too.
    span.in_scope(|| tracing::info!(status = status.as_u16(), elapsed = ?started.elapsed(), "{name} answered"));
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        crate::status::record_error(&span, status.as_str());
    }
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        let value = HeaderValue::from_str(&trace_id.to_string()).expect("hex is a valid header value");
        response.headers_mut().insert(TRACE_ID_HEADER, value);
    }
    response
}

/// The methods the semantic conventions (1.44.0, `http.request.method`) call known: RFC 9110's,
/// PATCH and QUERY, unless `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS` (comma-separated, a full
/// replacement, as the conventions ask) names others. Unknown methods are recorded as `_OTHER`
/// with the original in `http.request.method_original`, and the span is named `HTTP …`.
fn is_known_method(method: &str) -> bool {
    const KNOWN: [&str; 10] = ["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"];
    static FROM_ENV: std::sync::OnceLock<Option<Vec<String>>> = std::sync::OnceLock::new();
    let from_env = FROM_ENV.get_or_init(|| {
        let list = std::env::var("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS").ok()?;
        Some(list.split(',').map(str::trim).filter(|method| !method.is_empty()).map(String::from).collect())
    });
    match from_env {
        Some(known) => known.iter().any(|known| known == method),
        None => KNOWN.contains(&method),
    }
}

/// The query string with the values of signature and credential parameters replaced by
/// `REDACTED`, the key kept (semantic conventions 1.44.0, `url.query`).
fn redact_query(query: &str) -> std::borrow::Cow<'_, str> {
    const SENSITIVE: [&str; 5] =
        ["X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "sig", "X-Goog-Signature"];
    let is_sensitive = |pair: &str| SENSITIVE.contains(&pair.split('=').next().unwrap_or_default());
    if !query.split('&').any(is_sensitive) {
        return query.into();
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_sensitive(pair) => format!("{key}=REDACTED"),
            _ => pair.to_owned(),
        })
        .collect();
    pairs.join("&").into()
}

/// `server.address` and `server.port` from the `Host` header the client sent.
fn server_address(request: &Request) -> (Option<String>, Option<u16>) {
    let host = request.headers().get(header::HOST).and_then(|host| host.to_str().ok());
    match host.and_then(|host| host.parse::<axum::http::uri::Authority>().ok()) {
        Some(authority) => (Some(authority.host().to_owned()), authority.port_u16()),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_in_queries_are_redacted() {
        assert_eq!(redact_query("q=rust&page=2"), "q=rust&page=2");
        assert_eq!(
            redact_query("q=rust&sig=abc123&X-Amz-Signature=zzz"),
            "q=rust&sig=REDACTED&X-Amz-Signature=REDACTED"
        );
        assert_eq!(redact_query("SIG=keep"), "SIG=keep", "keys match case-sensitively");
    }

    #[test]
    fn only_known_methods_are_named() {
        assert!(is_known_method("GET") && is_known_method("QUERY"));
        assert!(!is_known_method("get") && !is_known_method("FOO"));
    }
}
