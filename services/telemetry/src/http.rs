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
use opentelemetry::trace::{SpanKind, TraceContextExt};
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::propagation;

/// The response header that carries the trace id.
pub const TRACE_ID_HEADER: HeaderName = HeaderName::from_static("x-trace-id");

/// Paths that get no span: probes and debug pages would drown the real requests.
fn is_untraced(path: &str) -> bool {
    matches!(path, "/ping" | "/ready" | "/metrics") || path.starts_with("/debug/")
}

/// The middleware: `Router::layer(axum::middleware::from_fn(telemetry::http::trace_requests))`.
pub async fn trace_requests(request: Request, next: Next) -> Response {
    if is_untraced(request.uri().path()) {
        return next.run(request).await;
    }
    let method = request.method().as_str().to_owned();
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let name = match &route {
        Some(route) => format!("{method} {route}"),
        None => method.clone(), // no route matched: the semantic conventions say just the method
    };
    let (host, port) = server_address(&request);
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %name,
        otel.kind = ?SpanKind::Server,
        http.request.method = %method,
        http.route = route,
        url.path = request.uri().path(),
        url.query = request.uri().query(),
        url.scheme = "http",
        server.address = host,
        server.port = port,
        client.address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip().to_string()),
        user_agent.original = request.headers().get(header::USER_AGENT).and_then(|agent| agent.to_str().ok()),
        http.response.status_code = Empty,
        otel.status_code = Empty,
        error.type = Empty,
    );
    // Continue the caller's trace (ingress, mesh proxy, curl with a traceparent), if any.
    let _ = span.set_parent(propagation::extract(request.headers()));
    let trace_id = span.context().span().span_context().trace_id();

    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;

    let status = response.status();
    // An access log line, inside the span: it carries the trace id too.
    span.in_scope(|| tracing::info!(status = status.as_u16(), elapsed = ?started.elapsed(), "{name} answered"));
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", status.as_str());
    }
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        let value = HeaderValue::from_str(&trace_id.to_string()).expect("hex is a valid header value");
        response.headers_mut().insert(TRACE_ID_HEADER, value);
    }
    response
}

/// `server.address` and `server.port` from the `Host` header the client sent.
fn server_address(request: &Request) -> (Option<String>, Option<u16>) {
    let host = request.headers().get(header::HOST).and_then(|host| host.to_str().ok());
    match host.and_then(|host| host.parse::<axum::http::uri::Authority>().ok()) {
        Some(authority) => (Some(authority.host().to_owned()), authority.port_u16()),
        None => (None, None),
    }
}
