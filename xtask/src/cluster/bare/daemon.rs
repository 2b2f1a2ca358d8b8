//! The bare cluster's programs run in the background, beyond the `up` that started them: each
//! with its output in `.state/bare/logs/NAME.log` and its pid in `.state/bare/run/NAME.pid`,
//! in a process group of its own (a Ctrl-C in the terminal does not reach it). `down` stops
//! them by those pid files, never by name: another etcd or kubelet on the machine is not ours.

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::Context;
use nix::{sys::signal::Signal, unistd::Pid};

use crate::steps::Cmd;

/// How long a component may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// One background program: its command, log and pid file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Daemon {
    pub name: &'static str,
    pub command: Cmd,
    pub log: PathBuf,
    pub pid_file: PathBuf,
}

impl Daemon {
    /// The pid, if the program that the pid file names still runs (and is this program: a pid
    /// reused by another process does not count).
    pub fn running(&self) -> Option<i32> {
        running(&self.pid_file, &self.command.program)
    }

    /// Starts it, unless it runs.
    pub fn start(&self) -> anyhow::Result<i32> {
        if let Some(pid) = self.running() {
            return Ok(pid);
        }
        for file in [&self.log, &self.pid_file] {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            }
        }
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        let child = std::process::Command::new(&self.command.program)
            .args(&self.command.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start `{}`", self.command.shell()))?;
        let pid = child.id() as i32;
        std::fs::write(&self.pid_file, format!("{pid}\n"))
            .with_context(|| format!("cannot write {}", self.pid_file.display()))?;
        // Not waited for: it outlives xtask (init reaps it then).
        std::mem::forget(child);
        Ok(pid)
    }

    /// Stops it (SIGTERM, then SIGKILL after a grace period) and removes its pid file. Returns
    /// whether it was running.
    pub fn stop(&self) -> anyhow::Result<bool> {
        let Some(pid) = self.running() else {
            let _ = std::fs::remove_file(&self.pid_file);
            return Ok(false);
        };
        let pid = Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        let started = Instant::now();
        while alive(pid) {
            if started.elapsed() > STOP_GRACE {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::remove_file(&self.pid_file).with_context(|| format!("cannot remove {}", self.pid_file.display()))?;
        Ok(true)
    }

    /// The end of its log, to show when it failed.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

fn running(pid_file: &Path, program: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()?;
    let command_line = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let argv0 = command_line.split(|byte| *byte == 0).next()?;
    let name = Path::new(program).file_name()?.as_encoded_bytes();
    (alive(Pid::from_raw(pid)) && argv0.ends_with(name)).then_some(pid)
}

/// Alive and not a zombie (a child of this xtask that exited but was not reaped yet). Right
/// after `start`, before the child's exec, its command line is still xtask's: ask this, not
/// [`Daemon::running`], then.
pub fn alive(pid: Pid) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd;

    #[test]
    fn starts_once_and_stops_by_its_pid_file() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Daemon {
            name: "sleeper",
            command: cmd!("sleep", "300"),
            log: dir.path().join("logs/sleeper.log"),
            pid_file: dir.path().join("run/sleeper.pid"),
        };
        assert_eq!(daemon.running(), None);
        let pid = daemon.start().unwrap();
        let started = Instant::now();
        while daemon.running().is_none() && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20)); // until the child has exec'd sleep
        }
        assert_eq!(daemon.running(), Some(pid));
        assert_eq!(daemon.start().unwrap(), pid, "a second start finds it running");
        // A pid file naming another program is not ours to stop.
        let etcd = Daemon { command: cmd!("etcd"), ..daemon.clone() };
        assert!(!etcd.stop().unwrap());
        assert!(!daemon.pid_file.exists());
        std::fs::write(&daemon.pid_file, format!("{pid}\n")).unwrap();
        assert!(daemon.stop().unwrap());
        assert_eq!(daemon.running(), None);
        assert!(!alive(Pid::from_raw(pid)));
    }
}
