//! The harness of the tests that run `cargo xtask up --local` as a user runs it (real processes,
//! real ports, real signals), on the service binaries `cargo test --workspace` builds next to
//! xtask: each test file uses its part.

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};

pub struct Up {
    pub child: Child,
    pub api: String,
    pub traces: String,
    /// Service name and pid, as the summary lists them.
    pub services: Vec<(String, i32)>,
}

pub fn free_port() -> u16 {
    testkit::process::free_address().port()
}

pub fn xtask_up(state: &Path, api_port: u16) -> Command {
    xtask_up_with_traces(state, api_port, free_port())
}

pub fn xtask_up_with_traces(state: &Path, api_port: u16, traces_port: u16) -> Command {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_xtask")).parent().unwrap();
    for service in ["tracestore", "todomanager", "apiserver"] {
        assert!(
            bin_dir.join(service).exists(),
            "{service} is not built next to xtask: run `cargo test --workspace`, which builds it"
        );
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    // Progress goes to the test's folder, never into the learner's `.state/progress.json`.
    command.env("WORKSHOP_STATE_DIR", state);
    command.args(["up", "--local", "--no-build", "--state-dir"]).arg(state).args([
        "--traces-port",
        &traces_port.to_string(),
        "--api-port",
        &api_port.to_string(),
        "--todomanager-port",
        &free_port().to_string(),
        "--api-tracez-port",
        &free_port().to_string(),
        "--todomanager-tracez-port",
        &free_port().to_string(),
        "--otlp-port",
        &free_port().to_string(),
        "--otlp-http-port",
        &free_port().to_string(),
    ]);
    command
}

impl Up {
    /// Starts the stack and reads its summary.
    pub fn start(state: &Path) -> Self {
        Self::start_with(state, &[])
    }

    /// Starts the stack with more options (`--stack real`, say) and reads its summary.
    pub fn start_with(state: &Path, args: &[&str]) -> Self {
        let (api_port, traces_port) = (free_port(), free_port());
        let mut child = xtask_up_with_traces(state, api_port, traces_port)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A thread reads (and keeps draining, so xtask never blocks on a full pipe); the test
        // waits for the summary with a deadline instead of hanging on a stalled xtask.
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let mut up = Self {
            child,
            api: format!("http://127.0.0.1:{api_port}"),
            traces: format!("http://127.0.0.1:{traces_port}"),
            services: Vec::new(),
        };
        up.services = read_summary(&receive);
        up
    }

    pub fn signal(&self, signal: Signal) {
        nix::sys::signal::kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    pub fn wait(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
                return (status, stderr);
            }
            assert!(Instant::now() < deadline, "xtask did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn assert_services_gone(&self) {
        for (name, pid) in &self.services {
            let alive = nix::sys::signal::kill(Pid::from_raw(*pid), None).is_ok();
            assert!(!alive, "{name} (pid {pid}) outlived xtask");
        }
    }
}

impl Drop for Up {
    /// Whatever the test's outcome, nothing it started outlives it: xtask is asked to stop (it
    /// stops its services), then killed, and any service still there with it.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for (_, pid) in &self.services {
            let _ = nix::sys::signal::kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
    }
}

/// How long xtask may take to print its summary (it builds nothing: `--no-build`).
pub const SUMMARY_DEADLINE: Duration = Duration::from_secs(120);

/// Reads xtask's output up to the end of its summary; returns the services' pids.
pub fn read_summary(lines: &std::sync::mpsc::Receiver<String>) -> Vec<(String, i32)> {
    let mut services = Vec::new();
    let mut seen = Vec::new();
    let deadline = Instant::now() + SUMMARY_DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("no summary from xtask within {SUMMARY_DEADLINE:?}:\n{}", seen.join("\n"))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        seen.push(line.clone());
        if let Some((name, rest)) = line.trim().split_once(" pid ") {
            let pid = rest.split(',').next().unwrap().parse().unwrap();
            services.push((name.trim().to_owned(), pid));
        }
        if line.starts_with("Try it:") {
            assert!(services.len() >= 3, "{seen:#?}");
            return services;
        }
    }
    panic!("xtask ended before its summary:\n{}", seen.join("\n"));
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

/// The end of `up --local --check`'s output: every chapter's expectations hold, the observed
/// traces are shown.
pub fn assert_every_expectation_holds(stdout: &str) {
    assert!(stdout.contains("✓ every expectation holds"), "{stdout}");
    assert!(stdout.contains("db-create"), "the observed trace is shown: {stdout}");
    for chapter in 0..=8 {
        assert!(stdout.contains(&format!("── Chapter {chapter}:")), "chapter {chapter} verified: {stdout}");
    }
    // ✗ may mark an error span in a waterfall (the 404 of chapter 2), never an expectation.
    let failed: Vec<&str> = stdout.lines().filter(|line| line.contains('✗') && !line.contains('|')).collect();
    assert!(failed.is_empty(), "{failed:#?}\n{stdout}");
}

/// The sum of a counter over its labels, from the collector's Prometheus endpoint.
pub fn collector_counter(port: &str, name: &str) -> u64 {
    let metrics = http().get(format!("http://127.0.0.1:{port}/metrics")).send().unwrap().text().unwrap();
    metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// `cargo xtask …` against a running stack's trace store; its standard output.
pub fn xtask_against(up: &Up, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .args(["--jaeger", &up.traces])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{args:?}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The trace ids of `cargo xtask search`'s table.
pub fn found(table: &str) -> std::collections::BTreeSet<String> {
    table
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| word.len() == 32 && word.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .map(str::to_owned)
        .collect()
}

/// `cargo xtask answer QUESTION ANSWER` in the folder of a running stack.
pub fn answer(up: &Up, state: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("answer")
        .args(args)
        .args(["--jaeger", &up.traces, "--state-dir"])
        .arg(state)
        .env("WORKSHOP_STATE_DIR", state)
        .output()
        .unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

/// What a wrong answer's explanation gives as the right one.
pub fn right_answer(explanation: &str) -> String {
    explanation
        .lines()
        .find_map(|line| line.split_once("the answer is: ").map(|(_, answer)| answer.trim().to_owned()))
        .unwrap_or_else(|| panic!("no right answer in: {explanation}"))
}
