//! Failure injection, a teaching tool, off by default: with it on, a share of `ListTodos` calls
//! are slow (1–3 s) and say so in their span (`fault.injected`, and an event), so that the
//! reading-traces chapter can send learners looking for the slow span.

use std::time::Duration;

use tracing_opentelemetry::OpenTelemetrySpanExt;

#[derive(Clone, Copy, Debug, clap::Args)]
pub struct Faults {
    /// Turn failure injection on (for the workshop's "reading traces" chapter).
    #[arg(long, env = "INJECT_FAILURES")]
    pub inject_failures: bool,

    /// With --inject-failures: the share of ListTodos calls that take 1 to 3 s.
    #[arg(long, env = "SLOW_LIST_RATE", default_value_t = 0.1)]
    pub slow_list_rate: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Self { inject_failures: false, slow_list_rate: 0.1 }
    }
}

impl Faults {
    /// Sleeps 1–3 s for the chosen share of calls, marking the current span.
    pub async fn maybe_slow_down(&self) {
        if !self.inject_failures || fastrand::f64() >= self.slow_list_rate {
            return;
        }
        let delay = Duration::from_millis(fastrand::u64(1000..=3000));
        tracing::Span::current().set_attribute("fault.injected", "slow");
        tracing::info!(?delay, "injected slowness");
        tokio::time::sleep(delay).await;
    }
}
