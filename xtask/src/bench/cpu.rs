//! CPU time a process has used, read from the kernel's per-process CPU clock: nanoseconds,
//! every thread counted (also those that have ended), whoever asks. `/proc/<pid>/stat` counts
//! in ticks of 10 ms, too coarse for a few seconds of load.

use std::time::Duration;

use anyhow::Context;
use nix::{time::clock_getcpuclockid, unistd::Pid};

/// The CPU time (user + system) process `pid` has used so far.
pub fn used(pid: u32) -> anyhow::Result<Duration> {
    let clock = clock_getcpuclockid(Pid::from_raw(pid as i32))
        .with_context(|| format!("cannot read the CPU clock of process {pid}"))?;
    let time = clock.now().with_context(|| format!("cannot read the CPU clock of process {pid}"))?;
    Ok(Duration::from(time))
}

/// The peak resident memory of a process (Linux: VmHWM), in KiB; 0 where unknown.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_counts_work_done() {
        let me = std::process::id();
        let before = used(me).unwrap();
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let spent = used(me).unwrap() - before;
        assert!(spent >= Duration::from_millis(20), "50 ms of spinning counted as {spent:?}");
        let mut ended = std::process::Command::new("true").spawn().unwrap();
        ended.wait().unwrap();
        assert!(used(ended.id()).is_err(), "a process that ended has no clock");
    }
}
