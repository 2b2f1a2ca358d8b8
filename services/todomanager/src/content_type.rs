//! A request whose `Content-Type` does not begin with `application/grpc` is not a gRPC call:
//! gRPC's wire protocol (grpc/grpc `doc/PROTOCOL-HTTP2.md`, "Requests") says servers SHOULD
//! answer it with HTTP 415 Unsupported Media Type. tonic would decode and run it anyway.

use tonic::{
    body::Body,
    codegen::http::{Request, Response, StatusCode, header::CONTENT_TYPE, header::HeaderValue},
};
use tower_http::validate_request::ValidateRequestHeaderLayer;

#[allow(clippy::result_large_err)]
type Check = fn(&mut Request<Body>) -> Result<(), Response<Body>>;

/// The layer for `Server::builder().layer(…)`: tower-http's request validation, with this rule.
pub fn require_grpc_content_type() -> ValidateRequestHeaderLayer<Check> {
    ValidateRequestHeaderLayer::custom(check as Check)
}

// The signature is tower-http's (`ValidateRequest`): the refusal is the response itself.
#[allow(clippy::result_large_err)]
fn check(request: &mut Request<Body>) -> Result<(), Response<Body>> {
    let content_type = request.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok());
    if content_type.is_some_and(|value| value.starts_with("application/grpc")) {
        return Ok(());
    }
    let mut refusal = Response::new(Body::empty());
    *refusal.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    refusal.headers_mut().insert("accept", HeaderValue::from_static("application/grpc"));
    Err(refusal)
}
