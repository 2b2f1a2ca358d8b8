//! `up`'s verification in the background: the services watched while the chapters are
//! checked, then kept running until Ctrl-C.

use std::time::Duration;

use crate::processes::{self, Services};

use super::{Options, verify};

/// Verifies in the background while `watch` looks after the services every tenth of a second:
/// an error from it, or a Ctrl-C, ends the wait at once. `None` when the user interrupted.
pub fn while_watching(
    mut watch: impl FnMut() -> anyhow::Result<()>,
    options: Options,
) -> anyhow::Result<Option<anyhow::Result<bool>>> {
    let verifier = std::thread::spawn(move || verify(&options));
    while !verifier.is_finished() {
        watch()?;
        if processes::stop_requested() {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Some(verifier.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the verification crashed")))))
}

/// Says how the verification went, then keeps `services` running until Ctrl-C (or one exits).
pub fn then_wait(mut services: Services, verified: anyhow::Result<bool>, what_runs: &str) -> anyhow::Result<()> {
    say(verified, what_runs);
    let outcome = services.wait();
    services.stop_all();
    outcome
}

/// Says how the verification went and that `what_runs` goes on running.
pub fn say(verified: anyhow::Result<bool>, what_runs: &str) {
    match verified {
        Ok(true) => println!("\n{what_runs}. Ctrl-C stops it."),
        Ok(false) => println!("\nSome expectations do not hold (see above). {what_runs} anyway; Ctrl-C stops it."),
        Err(error) => println!("\nCould not verify: {error:#}. {what_runs} anyway; Ctrl-C stops it."),
    }
}
