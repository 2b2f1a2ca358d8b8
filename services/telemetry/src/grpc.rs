//! gRPC spans, as tower layers around tonic: [`ServerLayer`] on a server gives each RPC a SERVER
//! span that continues the caller's trace; [`ClientLayer`] on a channel gives each call a CLIENT
//! span and sends the trace context along in the request's metadata.
//!
//! A span ends when the response body ends, so a streaming RPC's span covers the whole stream,
//! and the gRPC status is read where gRPC puts it: in the headers of an immediate error, else
//! in the trailers after the last message.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use opentelemetry::trace::SpanKind;
use tower::{Layer, Service};
use tracing::{Instrument, Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::propagation;

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
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let is_server = matches!(self.kind, Kind::Server);
        Box::pin(async move {
            let response = future.instrument(span.clone()).await?;
            // An immediate error ("trailers-only") has its status in the headers.
            record_status(&span, response.headers(), is_server);
            Ok(response.map(|body| TracedBody { inner: body, span, is_server }))
        })
    }
}

impl<S> Traced<S> {
    /// The span of one call: `package.Service/Method`, or none for health checks and
    /// reflection (probes would otherwise fill the traces every few seconds).
    fn span_for<B>(&self, request: &mut Request<B>) -> Span {
        let full_method = request.uri().path().trim_start_matches('/').to_owned();
        let (service, method) = full_method.split_once('/').unwrap_or((&full_method, ""));
        if service.starts_with("grpc.health.") || service.starts_with("grpc.reflection.") {
            return Span::none();
        }
        let span_kind = match self.kind {
            Kind::Server => SpanKind::Server,
            Kind::Client { .. } => SpanKind::Client,
        };
        let span = tracing::info_span!(
            "gRPC",
            otel.name = %full_method,
            otel.kind = ?span_kind,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = Empty,
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
        span
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its call's span open until the body ends.
    pub struct TracedBody<B> {
        #[pin]
        inner: B,
        span: Span,
        is_server: bool,
    }
}

impl<B: Body> Body for TracedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        // What runs while the body streams (a database cursor, say) belongs to this span.
        let _entered = this.span.enter();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref() {
                    record_status(this.span, trailers, *this.is_server);
                }
            }
            Some(Err(_)) => {
                this.span.record("otel.status_code", "ERROR");
                this.span.record("error.type", "stream_error");
            }
            None => {}
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

/// Records `grpc-status` when `headers` carry it. Per the semantic conventions a client counts
/// every non-OK status as an error; a server only those that are its own fault.
fn record_status(span: &Span, headers: &HeaderMap, is_server: bool) {
    let Some(code) = headers.get("grpc-status").and_then(|value| value.to_str().ok()?.parse::<i32>().ok()) else {
        return;
    };
    span.record("rpc.grpc.status_code", code);
    let code = tonic::Code::from_i32(code);
    let server_fault = matches!(
        code,
        tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unimplemented
            | tonic::Code::Internal
            | tonic::Code::Unavailable
            | tonic::Code::DataLoss
    );
    if code != tonic::Code::Ok && (!is_server || server_fault) {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", format!("{code:?}"));
    }
}
