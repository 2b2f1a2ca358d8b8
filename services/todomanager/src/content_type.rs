//! A request whose `Content-Type` does not begin with `application/grpc` is not a gRPC call:
//! gRPC's wire protocol (grpc/grpc `doc/PROTOCOL-HTTP2.md`, "Requests") says servers SHOULD
//! answer it with HTTP 415 Unsupported Media Type. tonic would decode and run it anyway.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::codegen::http::{self, HeaderValue, StatusCode, header::CONTENT_TYPE};
use tower::{Layer, Service};

/// The layer for `Server::builder().layer(…)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequireGrpcContentType;

impl<S> Layer<S> for RequireGrpcContentType {
    type Service = Checked<S>;

    fn layer(&self, inner: S) -> Checked<S> {
        Checked(inner)
    }
}

#[derive(Clone, Debug)]
pub struct Checked<S>(S);

impl<S, B> Service<http::Request<B>> for Checked<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let is_grpc = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/grpc"));
        if is_grpc {
            return Box::pin(self.0.call(request));
        }
        let mut refusal = http::Response::new(tonic::body::Body::empty());
        *refusal.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        refusal.headers_mut().insert("accept", HeaderValue::from_static("application/grpc"));
        Box::pin(std::future::ready(Ok(refusal)))
    }
}
