//! A warning that repeats with every failed request (during an outage, say) is written once
//! per interval, with the count of the ones held back: the log stays readable, and small.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// How often the services repeat a warning that every failing request would write.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Lets one occurrence through per `every`. Use it as a `static` next to the warning.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    /// When the last occurrence was let through, and how many were held back since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    pub const fn new(every: Duration) -> Self {
        Self { every, state: Mutex::new((None, 0)) }
    }

    /// `Some(held_back)` when this occurrence should be written, with how many were not since
    /// the last one written; `None` when it should not.
    pub fn allow(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (last, held_back) = &mut *state;
        if last.is_some_and(|at| at.elapsed() < self.every) {
            *held_back += 1;
            return None;
        }
        *last = Some(Instant::now());
        Some(std::mem::take(held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_in_each_interval_with_the_count_of_the_others() {
        let throttle = Throttle::new(Duration::from_millis(200));
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!((throttle.allow(), throttle.allow()), (None, None));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(throttle.allow(), Some(2));
    }
}
