//! The services' binaries as child processes, as a user runs them.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

/// A binary of this workspace, built next to the test's own executable. The workspace's binaries
/// are (re)built first with the same profile, once per test process: `cargo test -p apiserver`
/// alone does not rebuild todomanager, and a test must never run a stale binary. (After `cargo
/// test --workspace` this is a no-op of half a second; `--workspace` keeps the features the
/// same as that build's, so the two never rebuild each other's binaries.)
pub fn binary(name: &str) -> PathBuf {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let test_exe = std::env::current_exe().unwrap();
    let profile_dir = test_exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join(name);
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !*built {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "--workspace", "--bins"]);
        if profile_dir.file_name().is_some_and(|profile| profile == "release") {
            build.arg("--release");
        }
        let status = build.status().unwrap_or_else(|error| panic!("cannot run cargo to build {name}: {error}"));
        assert!(status.success(), "building the workspace's binaries failed ({status})");
        *built = true;
    }
    assert!(path.exists(), "{} is not built: run `cargo test --workspace`, which builds it", path.display());
    path
}

/// A service process started with `LOG_FORMAT=json`, whose log is kept for the test. It is
/// killed when dropped (a failing test included), and after [`DEADLINE`] at the latest.
pub struct Service {
    pub child: Child,
    log: Arc<Mutex<Vec<Value>>>,
    dropped: Arc<std::sync::atomic::AtomicBool>,
}

/// No test runs a service this long: one that hangs (waiting for an answer that never comes,
/// say) has its services killed and fails, instead of blocking the whole suite.
pub const DEADLINE: Duration = Duration::from_secs(600);

impl Service {
    /// Starts `command` and waits until it logs a line whose fields hold `ready_field`
    /// (e.g. `address`, which both services log once they listen).
    pub fn start(mut command: Command, ready_field: &str) -> Self {
        let mut child = command.env("LOG_FORMAT", "json").stderr(Stdio::piped()).spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let collected = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let event = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
                collected.lock().unwrap().push(event);
            }
        });
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (watched, pid) = (dropped.clone(), nix::unistd::Pid::from_raw(child.id() as i32));
        std::thread::spawn(move || {
            std::thread::sleep(DEADLINE);
            if !watched.load(std::sync::atomic::Ordering::SeqCst) {
                eprintln!("*** a test ran a service for {DEADLINE:?}: killing it (pid {pid})");
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        });
        let mut service = Self { child, log, dropped };
        let deadline = Instant::now() + Duration::from_secs(20);
        while service.field(ready_field).is_none() {
            if let Some(status) = service.child.try_wait().unwrap() {
                panic!("the service exited ({status}) before it was ready: {:#?}", service.log());
            }
            assert!(Instant::now() < deadline, "the service did not get ready: {:#?}", service.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        service
    }

    /// The log so far, one JSON object per line.
    pub fn log(&self) -> Vec<Value> {
        self.log.lock().unwrap().clone()
    }

    /// The first value logged for `field`.
    pub fn field(&self, field: &str) -> Option<String> {
        self.log().iter().find_map(|event| event["fields"][field].as_str().map(str::to_owned))
    }

    /// The process's resident memory now, in KiB (`VmRSS` of `/proc/PID/status`); panics when it
    /// cannot be read, so a memory test never passes by reading zero.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_else(|error| panic!("cannot read the memory of process {}: {error}", self.child.id()));
        status
            .lines()
            .find(|line| line.starts_with("VmRSS:"))
            .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS line in /proc/{}/status", self.child.id()))
    }

    /// Sends SIGTERM, as Kubernetes or Ctrl-C would.
    pub fn send_sigterm(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    }

    /// Waits (up to 20 s) for the process to exit.
    pub fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the service did not exit: {:#?}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.dropped.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port on 127.0.0.1 that nobody uses right now and that this test process has not handed out
/// before (the same [`ports::free_address`] as the local stack's).
pub fn free_address() -> std::net::SocketAddr {
    ports::free_address().expect("a free port on 127.0.0.1")
}

/// An address where nothing listens: a port the system handed out and took back, and which
/// [`free_address`] will not give a server later. (The one dead port of the tests: a collector
/// or service that is not there.)
pub fn dead_address() -> std::net::SocketAddr {
    free_address()
}

/// A service binary on ephemeral ports, exporting its spans to `otlp` (a dead port when not
/// given) every 200 ms.
fn start(name: &str, args: &[&str], otlp: Option<&str>, env: &[(&str, &str)]) -> Service {
    let dead = format!("http://{}", dead_address());
    let mut command = Command::new(binary(name));
    command.args(["--listen", "127.0.0.1:0", "--tracez-listen", "127.0.0.1:0"]).args(args);
    command.env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.unwrap_or(&dead)).env("OTEL_BSP_SCHEDULE_DELAY", "200");
    command.envs(env.iter().copied());
    Service::start(command, "address")
}

/// todomanager on `database_url`. It waits up to 5 s for the database (SQLite's lock
/// included): a test machine running many tests at once may be slow, and a test about something
/// else must not fail for it. Tests of database outages set a short timeout with
/// [`todomanager_with_timeout`].
pub fn todomanager(database_url: &str, otlp: Option<&str>) -> Service {
    todomanager_with_env(database_url, otlp, &[])
}

/// todomanager on `database_url` with more environment (`OTEL_*` settings, say).
pub fn todomanager_with_env(database_url: &str, otlp: Option<&str>, env: &[(&str, &str)]) -> Service {
    start("todomanager", &["--database-url", database_url, "--database-timeout", "5s"], otlp, env)
}

/// todomanager on `database_url`, giving up on the database after `timeout` (`500ms`, say).
pub fn todomanager_with_timeout(database_url: &str, timeout: &str, otlp: Option<&str>) -> Service {
    start("todomanager", &["--database-url", database_url, "--database-timeout", timeout], otlp, &[])
}

/// The trace store on ephemeral ports, with `env` (its `TRACESTORE_*` limits, say). Its log
/// names the ports: fields `otlp_grpc`, `otlp_http` and `address` (the query API).
pub fn tracestore(env: &[(&str, &str)]) -> Service {
    let mut command = Command::new(binary("tracestore"));
    command.args(["--otlp-grpc-listen", "127.0.0.1:0", "--otlp-http-listen", "127.0.0.1:0"]);
    command.args(["--query-listen", "127.0.0.1:0"]).envs(env.iter().copied());
    Service::start(command, "address")
}

/// apiserver in front of `todomanager`; with the base URL of its REST API.
pub fn apiserver(todomanager: &Service, otlp: Option<&str>) -> (Service, String) {
    apiserver_with_env(todomanager, otlp, &[])
}

/// apiserver in front of `todomanager` with more environment (`OTEL_*` settings, say).
pub fn apiserver_with_env(todomanager: &Service, otlp: Option<&str>, env: &[(&str, &str)]) -> (Service, String) {
    let url = format!("http://{}", todomanager.field("address").unwrap());
    let service = start("apiserver", &["--todomanager-url", &url], otlp, env);
    let api = format!("http://{}", service.field("address").unwrap());
    (service, api)
}
