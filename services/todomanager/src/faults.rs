//! Failure injection, a teaching tool, off by default: with it on, a share of `ListTodos` calls
//! are slow (1–3 s) and say so in their span (`fault.injected`, and an event), so that the
//! reading-traces chapter can send learners looking for the slow span.

use std::time::Duration;

use tracing_opentelemetry::OpenTelemetrySpanExt;

/// How long a call that asked to be slow is held back.
pub const SLOW_ON_REQUEST: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, clap::Args)]
pub struct Faults {
    /// Turn failure injection on (for the workshop's "reading traces" chapter).
    #[arg(long, env = "INJECT_FAILURES")]
    pub inject_failures: bool,

    /// With --inject-failures: the share of ListTodos calls that take 1 to 3 s.
    #[arg(long, env = "SLOW_LIST_RATE", default_value_t = 0.1)]
    pub slow_list_rate: f64,

    /// With --inject-failures: draw from this seed, so that the same calls in the same order
    /// meet the same fates; without it, a random one.
    #[arg(long, env = "FAULT_SEED")]
    pub fault_seed: Option<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self { inject_failures: false, slow_list_rate: 0.1, fault_seed: None }
    }
}

/// One random sequence for all calls, drawn in the order they arrive.
pub type Draws = std::sync::Mutex<fastrand::Rng>;

impl Faults {
    /// The sequence the fates are drawn from: from the seed, if one is set.
    pub fn draws(&self) -> Draws {
        std::sync::Mutex::new(self.fault_seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed))
    }

    /// How long this call is held back, if it is one of the slow ones.
    pub fn slowness(&self, rng: &mut fastrand::Rng) -> Option<Duration> {
        (self.inject_failures && rng.f64() < self.slow_list_rate).then(|| Duration::from_millis(rng.u64(1000..=3000)))
    }

    /// Whether this call asked for its database queries to fail (metadata `x-inject-fault:
    /// db-error`, passed on from `X-Inject-Fault: db-error` at apiserver). The failure is the
    /// database's own: nothing labels it as injected, so a learner reads it as a real one.
    pub fn database_fails(&self, metadata: &tonic::metadata::MetadataMap) -> bool {
        self.inject_failures
            && metadata.get(proto::INJECT_FAULT).and_then(|value| value.to_str().ok()) == Some("db-error")
    }

    /// Sleeps 1–3 s for the chosen share of calls, marking the current span; never for a call
    /// whose caller opted out (metadata `x-inject-fault: none`, which apiserver passes on
    /// from `cargo xtask verify` and `helm test`).
    pub async fn maybe_slow_down(&self, metadata: &tonic::metadata::MetadataMap, draws: &Draws) {
        let delay = match metadata.get(proto::INJECT_FAULT).and_then(|value| value.to_str().ok()) {
            Some("none") => return,
            // The caller asked for it (`X-Inject-Fault: slow` at apiserver): one second, within
            // apiserver's timeout, so the answer is still a 200.
            Some("slow") if self.inject_failures => Some(SLOW_ON_REQUEST),
            _ => self.slowness(&mut draws.lock().unwrap_or_else(std::sync::PoisonError::into_inner)),
        };
        let Some(delay) = delay else { return };
        tracing::Span::current().set_attribute("fault.injected", "slow");
        tracing::info!(?delay, "injected slowness");
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slow_share_is_honoured() {
        let faults = Faults { inject_failures: true, slow_list_rate: 0.1, fault_seed: None };
        let mut rng = fastrand::Rng::with_seed(7);
        let delays: Vec<Duration> = (0..10_000).filter_map(|_| faults.slowness(&mut rng)).collect();
        let share = delays.len() as f64 / 10_000.0;
        assert!((share - 0.1).abs() < 0.012, "{share}");
        assert!(delays.iter().all(|delay| (1000..=3000).contains(&delay.as_millis())));
        assert_eq!(Faults { inject_failures: false, slow_list_rate: 1.0, fault_seed: None }.slowness(&mut rng), None);
    }

    #[test]
    fn a_seed_gives_the_same_delays_in_the_same_order() {
        let faults = Faults { inject_failures: true, slow_list_rate: 0.5, fault_seed: Some(3) };
        let delays = || {
            let draws = faults.draws();
            (0..20).map(|_| faults.slowness(&mut draws.lock().unwrap())).collect::<Vec<_>>()
        };
        let first = delays();
        assert_eq!(first, delays());
        assert!(first.iter().any(Option::is_some) && first.iter().any(Option::is_none));
    }
}
