//! Failure injection, a teaching tool, off by default: with it on, some requests fail or slow
//! down on purpose and say so in their trace (`fault.injected`, and an event), so that the
//! reading-traces chapter can send learners looking for them in Jaeger.

use std::time::Duration;

use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::error::ApiError;

/// How long an injected delay lasts.
pub const DELAY: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, clap::Args)]
pub struct Faults {
    /// Turn failure injection on (for the workshop's "reading traces" chapter).
    #[arg(long, env = "INJECT_FAILURES")]
    pub inject_failures: bool,

    /// With --inject-failures: the share of requests that fail with 500.
    #[arg(long, env = "FAILURE_RATE", default_value_t = 0.1)]
    pub failure_rate: f64,

    /// With --inject-failures: the share of requests delayed by 100 ms.
    #[arg(long, env = "DELAY_RATE", default_value_t = 0.1)]
    pub delay_rate: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Self { inject_failures: false, failure_rate: 0.1, delay_rate: 0.1 }
    }
}

/// With failure injection on, a request may choose its fate: `X-Inject-Fault: error`, `delay`
/// or `none` (what `cargo xtask verify` sends, so that checking a chapter never fails at random).
pub const CHOICE_HEADER: &str = "x-inject-fault";

enum Fate {
    Error,
    Delay,
    Normal,
}

/// The middleware; it runs inside the request's span.
pub async fn inject(State(faults): State<Faults>, request: Request, next: Next) -> Response {
    let probe = matches!(request.uri().path(), "/ping" | "/ready");
    if !faults.inject_failures || probe {
        return next.run(request).await;
    }
    let fate = match request.headers().get(CHOICE_HEADER).and_then(|value| value.to_str().ok()) {
        Some("error") => Fate::Error,
        Some("delay") => Fate::Delay,
        Some("none") => Fate::Normal,
        _ => match fastrand::f64() {
            roll if roll < faults.failure_rate => Fate::Error,
            roll if roll < faults.failure_rate + faults.delay_rate => Fate::Delay,
            _ => Fate::Normal,
        },
    };
    let span = tracing::Span::current();
    match fate {
        Fate::Error => {
            span.set_attribute("fault.injected", "error");
            tracing::warn!("injected failure: this request fails on purpose");
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "This failed for no reason").into_response();
        }
        Fate::Delay => {
            span.set_attribute("fault.injected", "delay");
            tracing::info!(delay = ?DELAY, "injected delay");
            tokio::time::sleep(DELAY).await;
        }
        Fate::Normal => {}
    }
    next.run(request).await
}
