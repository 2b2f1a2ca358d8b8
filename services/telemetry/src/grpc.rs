//! gRPC spans, as tower layers around tonic: [`ServerLayer`] on a server gives each RPC a SERVER
//! span that continues the caller's trace; [`ClientLayer`] on a channel gives each call a CLIENT
//! span and sends the trace context along in the request's metadata.
//!
//! A span ends when the response body ends, so a streaming RPC's span covers the whole stream,
//! and the gRPC status is read where gRPC puts it: in the headers of an immediate error, else
//! in the trailers after the last message. A call given up before its status arrived (the
//! caller's timeout, a dropped request) ends with the status the client generates for it:
//! DEADLINE_EXCEEDED once its `grpc-timeout` has passed, else CANCELLED.
//!
//! Attributes follow the RPC semantic conventions of OpenTelemetry semconv 1.44.0
//! (docs/rpc/grpc.md): `rpc.system.name`, the fully qualified `rpc.method`, the status code as
//! a string in `rpc.response.status_code`, and `error.type` on failure.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::{Duration, Instant},
};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tonic::Code;
use tower::{Layer, Service};
use tracing::{Instrument, Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{propagation, status::record_error};

/// Spans for the RPCs a server answers.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerLayer;

/// Spans for the calls a client makes to the server at `address` (`host:port`).
#[derive(Clone, Debug)]
pub struct ClientLayer {
    server_address: String,
    server_port: Option<u16>,
}

impl ClientLayer {
    pub fn new(uri: &http::Uri) -> Self {
        Self {
            server_address: uri.host().unwrap_or_default().to_owned(),
            server_port: uri.port_u16().or(match uri.scheme_str() {
                Some("https") => Some(443),
                _ => Some(80),
            }),
        }
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = Traced<S>;
    fn layer(&self, inner: S) -> Traced<S> {
        Traced { inner, kind: Kind::Server }
    }
}

impl<S> Layer<S> for ClientLayer {
    type Service = Traced<S>;
    fn layer(&self, inner: S) -> Traced<S> {
        Traced { inner, kind: Kind::Client { address: self.server_address.clone(), port: self.server_port } }
    }
}

#[derive(Clone, Debug)]
enum Kind {
    Server,
    Client { address: String, port: Option<u16> },
}

/// A gRPC service (server side) or channel (client side) whose calls are traced.
#[derive(Clone, Debug)]
pub struct Traced<S> {
    inner: S,
    kind: Kind,
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for Traced<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<TracedBody<ResponseBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<RequestBody>) -> Self::Future {
        let span = self.span_for(&mut request);
        let deadline = grpc_timeout(request.headers()).map(|timeout| Instant::now() + timeout);
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let mut call = Call { span, is_server: matches!(self.kind, Kind::Server), deadline, ended: false };
        Box::pin(async move {
            let response = match future.instrument(call.span.clone()).await {
                Ok(response) => response,
                Err(error) => {
                    // No answer at all: the deadline passed (tonic's own timer gave up, as a
                    // dropped call does below), or the connection failed; what the caller sees.
                    let code = match call.is_server {
                        _ if call.expired() => Code::DeadlineExceeded,
                        true => Code::Internal,
                        false => Code::Unavailable,
                    };
                    call.end(code);
                    return Err(error);
                }
            };
            // An immediate error ("trailers-only") has its status in the headers.
            call.end_with(response.headers());
            Ok(response.map(|body| TracedBody { inner: body, call }))
        })
    }
}

impl<S> Traced<S> {
    /// The span of one call: `package.Service/Method`, or none for health checks and
    /// reflection (probes would otherwise fill the traces every few seconds).
    fn span_for<B>(&self, request: &mut Request<B>) -> Span {
        let full_method = request.uri().path().trim_start_matches('/').to_owned();
        let service = full_method.split_once('/').map_or(full_method.as_str(), |(service, _)| service);
        if service.starts_with("grpc.health.") || service.starts_with("grpc.reflection.") {
            return Span::none();
        }
        let span_kind = match self.kind {
            Kind::Server => "server",
            Kind::Client { .. } => "client",
        };
        let span = tracing::info_span!(
            "gRPC",
            otel.name = full_method.as_str(),
            otel.kind = span_kind,
            rpc.system.name = "grpc",
            rpc.method = full_method.as_str(),
            rpc.response.status_code = Empty,
            server.address = Empty,
            server.port = Empty,
            otel.status_code = Empty,
            error.type = Empty,
        );
        match &self.kind {
            // Continue the caller's trace; a failure only means a new trace starts here.
            Kind::Server => drop(span.set_parent(propagation::extract(request.headers()))),
            Kind::Client { address, port } => {
                span.record("server.address", address.as_str());
                span.record("server.port", port);
                propagation::inject(&span.context(), request.headers_mut());
            }
        }
        // The session the request belongs to, if its baggage carries one (baggage.rs).
        crate::baggage::record_session(&span);
        span
    }
}

/// One call's span, until its status is known. Dropped before that, the call was given up:
/// the span ends with the status the client generates for it.
struct Call {
    span: Span,
    is_server: bool,
    /// From the request's `grpc-timeout`.
    deadline: Option<Instant>,
    ended: bool,
}

impl Call {
    /// Records `grpc-status` if `headers` carry it (then the call has ended).
    fn end_with(&mut self, headers: &HeaderMap) {
        let code = headers.get("grpc-status").and_then(|value| value.to_str().ok()?.parse::<i32>().ok());
        if let Some(code) = code {
            self.end(Code::from_i32(code));
        }
    }

    /// Per the semantic conventions a client counts every non-OK status as an error; a server
    /// only those that are its own fault.
    fn end(&mut self, code: Code) {
        self.ended = true;
        self.span.record("rpc.response.status_code", status_name(code));
        let server_fault = matches!(
            code,
            Code::Unknown
                | Code::DeadlineExceeded
                | Code::Unimplemented
                | Code::Internal
                | Code::Unavailable
                | Code::DataLoss
        );
        if code != Code::Ok && (!self.is_server || server_fault) {
            record_error(&self.span, status_name(code));
        }
    }
}

impl Call {
    /// Whether the call's `grpc-timeout` has passed.
    fn expired(&self) -> bool {
        self.deadline.is_some_and(|deadline| Instant::now() >= deadline)
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.ended {
            self.end(if self.expired() { Code::DeadlineExceeded } else { Code::Cancelled });
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its call's span open until the body ends.
    pub struct TracedBody<B> {
        #[pin]
        inner: B,
        call: Call,
    }
}

impl<B: Body> Body for TracedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        // What runs while the body streams (a database cursor, say) belongs to this span.
        let _entered = this.call.span.clone().entered();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.call.end_with(trailers);
                }
            }
            Some(Err(_)) if !this.call.ended => {
                this.call.ended = true;
                record_error(&this.call.span, "stream_error");
            }
            // The body ended: whatever its status, the call is over.
            None => this.call.ended = true,
            Some(Err(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The status code's name as gRPC spells it (`NOT_FOUND`): the value of
/// `rpc.response.status_code` and `error.type`.
fn status_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The `grpc-timeout` header: digits and a unit (H, M, S, m, u, n), as the gRPC protocol says.
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_are_read_in_every_unit() {
        let timeout = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", value.parse().unwrap());
            grpc_timeout(&headers)
        };
        assert_eq!(timeout("2000m"), Some(Duration::from_secs(2)));
        assert_eq!(timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(timeout("5n"), Some(Duration::from_nanos(5)));
        assert_eq!(timeout("m"), None);
        assert_eq!(timeout("12x"), None);
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
    }

    #[test]
    fn status_names_are_grpcs() {
        assert_eq!(status_name(Code::NotFound), "NOT_FOUND");
        assert_eq!(status_name(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
    }
}
