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

    /// With --inject-failures: draw the fates from this seed, so that the same requests in the
    /// same order meet the same fates (for chapters and tests); without it, a random one.
    #[arg(long, env = "FAULT_SEED")]
    pub fault_seed: Option<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self { inject_failures: false, failure_rate: 0.1, delay_rate: 0.1, fault_seed: None }
    }
}

/// The middleware's state: the settings and one random sequence for all requests, drawn in
/// the order they arrive.
#[derive(Clone)]
pub struct Injector {
    faults: Faults,
    rng: std::sync::Arc<std::sync::Mutex<fastrand::Rng>>,
}

impl Injector {
    pub fn new(faults: Faults) -> Self {
        let rng = faults.fault_seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        Self { faults, rng: std::sync::Arc::new(std::sync::Mutex::new(rng)) }
    }

    fn fate(&self, choice: Option<&str>) -> Fate {
        let mut rng = self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.faults.fate(choice, &mut rng)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Fate {
    Error,
    Delay,
    Normal,
}

impl Faults {
    /// What happens to one request: what it asked for, else chance at the configured rates.
    pub fn fate(&self, choice: Option<&str>, rng: &mut fastrand::Rng) -> Fate {
        match choice {
            Some("error") => Fate::Error,
            Some("delay") => Fate::Delay,
            // Passed on to todomanager, which makes them happen there.
            Some("none" | "slow" | "db-error") => Fate::Normal,
            _ => match rng.f64() {
                roll if roll < self.failure_rate => Fate::Error,
                roll if roll < self.failure_rate + self.delay_rate => Fate::Delay,
                _ => Fate::Normal,
            },
        }
    }
}

tokio::task_local! {
    /// What this request chose for todomanager, passed on with its calls: `none` (opted out, or
    /// asked for apiserver's own fault: never made slow there), `slow`, or `db-error` (its
    /// database queries fail).
    pub static PASSED_ON: Option<&'static str>;
}

/// The middleware; it runs inside the request's span.
pub async fn inject(State(injector): State<Injector>, request: Request, next: Next) -> Response {
    let choice = request.headers().get(proto::INJECT_FAULT).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let passed_on = match choice.as_deref() {
        // A request that asked for a fault of apiserver's meets that one and no other: a random
        // slow list in todomanager besides would make `verify` fail at random (it did, in CI).
        Some("none" | "error" | "delay") => Some("none"),
        Some("slow") if injector.faults.inject_failures => Some("slow"),
        Some("db-error") if injector.faults.inject_failures => Some("db-error"),
        _ => None,
    };
    PASSED_ON.scope(passed_on, decide(injector, choice.as_deref(), request, next)).await
}

async fn decide(injector: Injector, choice: Option<&str>, request: Request, next: Next) -> Response {
    // Probes never fail: a failed probe takes the Pod out of service, or restarts it.
    let probe = matches!(request.uri().path(), "/ping" | "/ready");
    let fate = if injector.faults.inject_failures && !probe { injector.fate(choice) } else { Fate::Normal };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Over 10,000 requests with a fixed seed, the shares are the configured rates, give or take
    /// four standard deviations (0.012 for a rate of 0.1).
    #[test]
    fn the_rates_are_honoured() {
        let faults = Faults { inject_failures: true, failure_rate: 0.1, delay_rate: 0.2, fault_seed: None };
        let mut rng = fastrand::Rng::with_seed(42);
        let fates: Vec<Fate> = (0..10_000).map(|_| faults.fate(None, &mut rng)).collect();
        let share = |fate: Fate| fates.iter().filter(|f| **f == fate).count() as f64 / 10_000.0;
        assert!((share(Fate::Error) - 0.1).abs() < 0.012, "{}", share(Fate::Error));
        assert!((share(Fate::Delay) - 0.2).abs() < 0.016, "{}", share(Fate::Delay));
    }

    #[test]
    fn a_seed_gives_the_same_fates_in_the_same_order() {
        let faults = Faults { inject_failures: true, failure_rate: 0.3, delay_rate: 0.3, fault_seed: Some(7) };
        let fates = || {
            let injector = Injector::new(faults);
            (0..50).map(|_| injector.fate(None)).collect::<Vec<_>>()
        };
        let first = fates();
        assert_eq!(first, fates());
        assert!(first.contains(&Fate::Error) && first.contains(&Fate::Delay) && first.contains(&Fate::Normal));
    }

    #[test]
    fn a_request_may_choose() {
        let faults = Faults { inject_failures: true, failure_rate: 0.0, delay_rate: 0.0, fault_seed: None };
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(faults.fate(Some("error"), &mut rng), Fate::Error);
        assert_eq!(faults.fate(Some("delay"), &mut rng), Fate::Delay);
        assert_eq!(faults.fate(Some("none"), &mut rng), Fate::Normal);
        assert_eq!(faults.fate(None, &mut rng), Fate::Normal);
    }
}
