//! `cargo xtask service stop|start|restart|status`: stop one service of a running
//! `cargo xtask up --local` and start it again while the others keep running, to watch what a
//! failure looks like in the traces (apiserver answering 503 while todomanager is gone, say).
//!
//! `up` and this command talk through files in the local state folder (`control/`): `up` keeps
//! `NAME.pid` for every running service and carries out `NAME.start` requests.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::ValueEnum as _;
use nix::{sys::signal::Signal, unistd::Pid};

use crate::{
    processes::{self, Services},
    project,
};

/// How long `start` and `stop` wait for `up` and the service.
const WAIT: Duration = Duration::from_secs(20);

#[derive(clap::Args)]
pub struct Options {
    #[command(subcommand)]
    action: Action,

    /// The local state folder of the `up --local` to talk to [default: .state/local].
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Stop one service (SIGTERM: it finishes its requests); the others keep running.
    Stop { name: Name },
    /// Start a stopped service again, as `up` started it.
    Start { name: Name },
    /// Stop, then start.
    Restart { name: Name },
    /// Which services run, with their pids.
    Status,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Name {
    Tracestore,
    Todomanager,
    Apiserver,
}

impl Name {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tracestore => "tracestore",
            Self::Todomanager => "todomanager",
            Self::Apiserver => "apiserver",
        }
    }
}

/// The files `up` and `service` share.
pub struct Control {
    dir: PathBuf,
}

impl Control {
    pub fn in_state(state: &Path) -> Self {
        Self { dir: state.join("control") }
    }

    /// For `up`: a fresh folder (a previous run's files mean nothing now), and `up`'s own pid.
    pub fn reset(&self) -> anyhow::Result<()> {
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        self.record_pid("up", std::process::id())
    }

    pub fn record_pid(&self, name: &str, pid: u32) -> anyhow::Result<()> {
        let path = self.dir.join(format!("{name}.pid"));
        std::fs::write(&path, pid.to_string()).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn forget(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir.join(format!("{name}.pid")));
    }

    /// The pid of `name` if it runs (`up` for xtask itself).
    pub fn pid(&self, name: &str) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.dir.join(format!("{name}.pid"))).ok()?.trim().parse().ok()?;
        nix::sys::signal::kill(Pid::from_raw(pid as i32), None).is_ok().then_some(pid)
    }

    fn request_start(&self, name: &str) -> anyhow::Result<()> {
        let path = self.dir.join(format!("{name}.start"));
        std::fs::write(&path, "").with_context(|| format!("cannot write {}", path.display()))
    }

    /// For `up`: the services someone asked to start, each request taken once.
    pub fn take_start_requests(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut names = Vec::new();
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(name) = file.strip_suffix(".start") {
                let _ = std::fs::remove_file(entry.path());
                names.push(name.to_owned());
            }
        }
        names
    }
}

/// For `up --local`: keeps the services running until Ctrl-C. A service that stops (or is
/// stopped) is reported and the others go on; `service start` brings it back.
pub fn supervise(services: &mut Services, control: &Control, mut supervisor: Supervisor) -> anyhow::Result<()> {
    while !processes::stop_requested() {
        supervisor.step(services, control)?;
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// What [`supervise`] does every tenth of a second; `up` also runs it while it verifies.
#[derive(Default)]
pub struct Supervisor {
    stopped: Vec<&'static str>,
}

impl Supervisor {
    pub fn step(&mut self, services: &mut Services, control: &Control) -> anyhow::Result<()> {
        let stopped = &mut self.stopped;
        for service in services.iter() {
            if stopped.contains(&service.name) {
                continue;
            }
            if let Some(status) = service.exited()? {
                control.forget(service.name);
                stopped.push(service.name);
                println!(
                    "⚠ {} stopped ({status}); the others keep running. Its log: {}\n  Start it again: cargo xtask service start {}",
                    service.name,
                    service.log.display(),
                    service.name
                );
            }
        }
        for name in control.take_start_requests() {
            let Some(service) = services.iter_mut().find(|service| service.name == name) else {
                println!("⚠ asked to start {name}, which this stack does not run");
                continue;
            };
            if service.exited()?.is_none() {
                println!("{name} already runs (pid {})", service.pid());
                control.record_pid(service.name, service.pid())?;
                continue;
            }
            service.restart()?;
            control.record_pid(service.name, service.pid())?;
            stopped.retain(|stopped| *stopped != service.name);
            println!("▶ {} started again (pid {})", service.name, service.pid());
        }
        Ok(())
    }
}

/// `cargo xtask service …`.
pub fn run(options: &Options) -> anyhow::Result<()> {
    let state = options.state_dir.clone().unwrap_or_else(|| project::root().join(".state/local"));
    let control = Control::in_state(&state);
    anyhow::ensure!(
        control.pid("up").is_some(),
        "no `cargo xtask up --local` runs with its state in {} (start one, or name its folder with --state-dir)",
        state.display()
    );
    match options.action {
        Action::Stop { name } => stop(&control, name.as_str()),
        Action::Start { name } => start(&control, name.as_str()),
        Action::Restart { name } => {
            stop(&control, name.as_str())?;
            start(&control, name.as_str())
        }
        Action::Status => {
            for name in Name::value_variants().iter().map(|name| name.as_str()) {
                match control.pid(name) {
                    Some(pid) => println!("  {name:<12} runs, pid {pid}"),
                    None => println!("  {name:<12} stopped (start it: cargo xtask service start {name})"),
                }
            }
            Ok(())
        }
    }
}

fn stop(control: &Control, name: &str) -> anyhow::Result<()> {
    let Some(pid) = control.pid(name) else {
        println!("{name} is not running");
        return Ok(());
    };
    println!("stopping {name} (pid {pid}, SIGTERM: it finishes its requests first)");
    nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM)
        .with_context(|| format!("cannot signal {name} (pid {pid})"))?;
    wait_for(|| control.pid(name).is_none()).with_context(|| format!("{name} did not stop within {WAIT:?}"))?;
    println!("✓ {name} stopped; the others keep running. Start it again: cargo xtask service start {name}");
    Ok(())
}

fn start(control: &Control, name: &str) -> anyhow::Result<()> {
    if let Some(pid) = control.pid(name) {
        println!("{name} already runs (pid {pid})");
        return Ok(());
    }
    control.request_start(name)?;
    wait_for(|| control.pid(name).is_some())
        .with_context(|| format!("`up` did not start {name} within {WAIT:?}; see its output"))?;
    println!("✓ {name} started again (pid {})", control.pid(name).unwrap_or_default());
    Ok(())
}

fn wait_for(mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let started = Instant::now();
    while !done() {
        anyhow::ensure!(started.elapsed() < WAIT, "gave up waiting");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
