//! The services as child processes: started with their output in a log file, watched, and
//! always stopped, with SIGTERM first so they finish what they are doing.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::ExitStatus,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::Context;
use nix::{sys::signal::Signal, unistd::Pid};

/// How long a service may take to finish its requests after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

/// From now on, Ctrl-C, SIGTERM and SIGHUP ask xtask to stop its services and exit, instead of
/// killing xtask on the spot and leaving them behind.
pub fn stop_on_signal() -> anyhow::Result<()> {
    ctrlc::set_handler(|| STOP_REQUESTED.store(true, Ordering::SeqCst)).context("cannot handle Ctrl-C")
}

pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(Ordering::SeqCst)
}

/// A running service.
pub struct Service {
    pub name: &'static str,
    pub log: PathBuf,
    handle: duct::Handle,
    /// How it was started, to start it again.
    command: duct::Expression,
}

impl Service {
    /// Starts `program` with `env`, its stdout and stderr going to `log`.
    pub fn start(name: &'static str, program: &Path, env: &[(&str, String)], log: PathBuf) -> anyhow::Result<Self> {
        Self::start_with_args(name, program, &[], env, log)
    }

    /// Starts `program` with `args` and `env`, its stdout and stderr going to `log`.
    pub fn start_with_args(
        name: &'static str,
        program: &Path,
        args: &[&str],
        env: &[(&str, String)],
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let shown_env: Vec<String> = env.iter().map(|(key, value)| format!("{key}={value}")).collect();
        let shown_args: String = args.iter().map(|arg| format!(" {arg}")).collect();
        println!("$ {} {}{shown_args}  > {}", shown_env.join(" "), program.display(), log.display());
        let mut command = duct::cmd(program, args);
        for (key, value) in env {
            command = command.env(key, value);
        }
        Self::spawn(name, command, log)
    }

    /// Starts a planned command (a port-forward, say), its output going to `log`.
    pub fn start_command(name: &'static str, command: &crate::steps::Cmd, log: PathBuf) -> anyhow::Result<Self> {
        println!("$ {}  > {}", command.shell(), log.display());
        Self::spawn(name, duct::cmd(&command.program, &command.args), log)
    }

    fn spawn(name: &'static str, command: duct::Expression, log: PathBuf) -> anyhow::Result<Self> {
        let log_file = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let handle = Self::launch(name, &command, log_file)?;
        Ok(Self { name, log, handle, command })
    }

    /// Starts the service again as it was started first, its output added to the same log.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.exited()?.is_some(), "{} is running (pid {})", self.name, self.pid());
        let log_file = File::options()
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        self.handle = Self::launch(self.name, &self.command, log_file)?;
        Ok(())
    }

    fn launch(name: &str, command: &duct::Expression, log_file: File) -> anyhow::Result<duct::Handle> {
        let mut command = command.clone();
        if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
            // With RUST_BACKTRACE=1 (CI sets it), a service's startup error ("cannot serve
            // tracez on …") would end in thirty lines of backtrace, and the end of its log,
            // which is all `check_running` shows, would be those. Panics keep theirs.
            command = command.env("RUST_LIB_BACKTRACE", "0");
        }
        command
            .stderr_to_stdout()
            .stdout_file(log_file)
            .unchecked()
            .before_spawn(|command| {
                die_with_parent(command);
                Ok(())
            })
            .start()
            .with_context(|| format!("cannot start {name}"))
    }

    pub fn pid(&self) -> u32 {
        self.handle.pids()[0]
    }

    /// The exit status, if the service has stopped.
    pub fn exited(&self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.handle.try_wait()?.map(|output| output.status))
    }

    /// The last lines of the service's log, to show why it failed.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Asks the service to stop (SIGTERM), and kills it if it has not within [`STOP_GRACE`].
    pub fn stop(&self) -> anyhow::Result<()> {
        if self.exited()?.is_some() {
            return Ok(());
        }
        let _ = nix::sys::signal::kill(Pid::from_raw(self.pid() as i32), Signal::SIGTERM);
        if self.handle.wait_timeout(STOP_GRACE)?.is_none() {
            eprintln!("{} did not stop within {STOP_GRACE:?}, killing it", self.name);
            self.handle.kill()?;
        }
        Ok(())
    }
}

/// Services started together and stopped together, in reverse order, also when xtask fails.
#[derive(Default)]
pub struct Services(Vec<Service>);

impl Services {
    pub fn add(&mut self, service: Service) -> &Service {
        self.0.push(service);
        self.0.last().expect("just pushed")
    }

    pub fn iter(&self) -> impl Iterator<Item = &Service> {
        self.0.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Service> {
        self.0.iter_mut()
    }

    /// Fails with the service's log tail if one of them has exited.
    pub fn check_running(&self) -> anyhow::Result<()> {
        for service in &self.0 {
            if let Some(status) = service.exited()? {
                anyhow::bail!(
                    "{} exited unexpectedly ({status}); the end of its log ({}):\n{}",
                    service.name,
                    service.log.display(),
                    service.log_tail(20)
                );
            }
        }
        Ok(())
    }

    /// Blocks until a stop is requested (Ok) or a service exits (Err).
    pub fn wait(&self) -> anyhow::Result<()> {
        while !stop_requested() {
            self.check_running()?;
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Stops these services (SIGTERM, then waiting for each to exit), the last started first;
    /// the others keep running.
    pub fn stop_these(&self, names: &[&str]) -> anyhow::Result<()> {
        for service in self.0.iter().rev().filter(|service| names.contains(&service.name)) {
            service.stop()?;
            println!(
                "  stopped {} ({})",
                service.name,
                service.exited()?.map(|status| status.to_string()).unwrap_or_default()
            );
        }
        Ok(())
    }

    pub fn stop_all(&mut self) {
        while let Some(service) = self.0.pop() {
            if service.exited().is_ok_and(|status| status.is_some()) {
                continue;
            }
            println!("stopping {} (pid {})", service.name, service.pid());
            if let Err(error) = service.stop() {
                eprintln!("cannot stop {}: {error:#}", service.name);
            }
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// On Linux, the kernel sends the child SIGTERM if xtask dies, even from SIGKILL: no orphans.
#[cfg(target_os = "linux")]
pub fn die_with_parent(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from));
    }
}

#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_: &mut std::process::Command) {}
