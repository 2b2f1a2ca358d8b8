//! Every error the API answers is JSON, `{"error":"…"}`, with the status that fits.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use telemetry::hardening::log_throttle::{Throttle, WARN_EVERY};
use tonic::Code;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

/// todomanager's gRPC status, told to the HTTP client.
impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let message = status.message();
        match status.code() {
            Code::InvalidArgument => Self::bad_request(message),
            Code::NotFound => Self::new(StatusCode::NOT_FOUND, message),
            // The deadline passed: todomanager said so, or tonic's own timer did (it reports
            // CANCELLED with a `TimeoutExpired` source).
            Code::DeadlineExceeded => Self::deadline_passed(),
            Code::Cancelled if caused_by::<tonic::TimeoutExpired>(&status) => Self::deadline_passed(),
            Code::Unavailable | Code::Cancelled => Self::unavailable(&status),
            // A status with a source was made on our side of the wire from a broken
            // connection; todomanager did not send it.
            Code::Unknown if std::error::Error::source(&status).is_some() => Self::unavailable(&status),
            _ => {
                static THROTTLE: Throttle = Throttle::new(WARN_EVERY);
                if let Some(held_back) = THROTTLE.allow() {
                    tracing::error!(?status, held_back, "todomanager failed (said at most every 10s)");
                }
                Self::new(StatusCode::BAD_GATEWAY, format!("todomanager failed: {message}"))
            }
        }
    }
}

impl ApiError {
    /// todomanager did not answer within apiserver's timeout: 504, and the message says so
    /// (it may be slow, not down).
    pub fn timed_out(timeout: std::time::Duration) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "todomanager did not answer within {} (apiserver's --todomanager-timeout); it may be slow or overloaded",
                humantime::format_duration(timeout)
            ),
        )
    }

    fn deadline_passed() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "todomanager did not answer within apiserver's --todomanager-timeout; it may be slow or overloaded",
        )
    }

    fn unavailable(status: &tonic::Status) -> Self {
        // Every request fails during an outage: say it once per interval, not per request.
        static THROTTLE: Throttle = Throttle::new(WARN_EVERY);
        if let Some(held_back) = THROTTLE.allow() {
            tracing::warn!(?status, held_back, "todomanager unavailable (said at most every 10s)");
        }
        Self::new(StatusCode::SERVICE_UNAVAILABLE, format!("todomanager is unavailable: {}", status.message()))
    }
}

/// Whether `error`, or an error it was caused by, is an `E`.
pub fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |error| error.source()).any(|error| error.is::<E>())
}
