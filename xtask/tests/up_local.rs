//! `cargo xtask up --local` as a user runs it: real processes, real ports, real signals.
//! It uses the service binaries that `cargo test --workspace` builds next to xtask.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use serde_json::{Value, json};

struct Up {
    child: Child,
    api: String,
    traces: String,
    /// Service name and pid, as the summary lists them.
    services: Vec<(String, i32)>,
}

fn free_port() -> u16 {
    testkit::process::free_address().port()
}

fn xtask_up(state: &Path, api_port: u16) -> Command {
    xtask_up_with_traces(state, api_port, free_port())
}

fn xtask_up_with_traces(state: &Path, api_port: u16, traces_port: u16) -> Command {
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
    fn start(state: &Path) -> Self {
        Self::start_with(state, &[])
    }

    /// Starts the stack with more options (`--stack real`, say) and reads its summary.
    fn start_with(state: &Path, args: &[&str]) -> Self {
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

    fn signal(&self, signal: Signal) {
        nix::sys::signal::kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    fn wait(&mut self) -> (ExitStatus, String) {
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

    fn assert_services_gone(&self) {
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
const SUMMARY_DEADLINE: Duration = Duration::from_secs(120);

/// Reads xtask's output up to the end of its summary; returns the services' pids.
fn read_summary(lines: &std::sync::mpsc::Receiver<String>) -> Vec<(String, i32)> {
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

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

#[test]
fn ctrl_c_stops_every_service_and_the_data_stays() {
    let state = tempfile::tempdir().unwrap();

    let mut up = Up::start(state.path());
    let created: Value =
        http().post(format!("{}/v1/todo", up.api)).json(&json!({"text": "survive"})).send().unwrap().json().unwrap();
    assert_eq!(created["text"], "survive");
    up.signal(Signal::SIGINT);
    let (status, stderr) = up.wait();
    assert!(status.success(), "xtask after Ctrl-C: {status}\n{stderr}");
    up.assert_services_gone();
    assert!(state.path().join("todo.db").exists());
    assert!(state.path().join("logs/apiserver.log").exists());

    // A second run on the same state finds the todo; SIGTERM stops it as cleanly.
    let mut up = Up::start(state.path());
    let listed: Value = http().get(format!("{}/v1/todo", up.api)).send().unwrap().json().unwrap();
    assert!(listed.as_array().unwrap().contains(&created), "{listed}");
    up.signal(Signal::SIGTERM);
    let (status, stderr) = up.wait();
    assert!(status.success(), "xtask after SIGTERM: {status}\n{stderr}");
    up.assert_services_gone();
}

/// One service stopped (with `cargo xtask service stop`, or killed): the others keep running
/// and the API says what is missing; `service start` brings it back, and Ctrl-C still stops
/// everything.
#[test]
fn one_service_stops_and_starts_again_while_the_others_run() {
    let state = tempfile::tempdir().unwrap();
    let mut up = Up::start(state.path());
    let service = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("service")
            .args(args)
            .arg("--state-dir")
            .arg(state.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        stdout
    };
    let said = service(&["stop", "todomanager"]);
    assert!(said.contains("todomanager stopped"), "{said}");
    assert!(up.child.try_wait().unwrap().is_none(), "xtask must keep running");
    assert_eq!(http().get(format!("{}/ping", up.api)).send().unwrap().status(), 200, "apiserver keeps running");
    let list = http().get(format!("{}/v1/todo", up.api)).send().unwrap();
    assert!(list.status().is_server_error(), "{}", list.status());
    assert!(service(&["status"]).contains("todomanager  stopped"));

    let said = service(&["start", "todomanager"]);
    assert!(said.contains("todomanager started again"), "{said}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http().get(format!("{}/v1/todo", up.api)).send().map(|answer| answer.status().as_u16()).unwrap_or(0) != 200 {
        assert!(Instant::now() < deadline, "the API never recovered after todomanager came back");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A service that dies on its own is reported, and the others keep running too.
    let apiserver = up.services.iter().find(|(name, _)| name == "apiserver").unwrap().1;
    nix::sys::signal::kill(Pid::from_raw(apiserver), Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(up.child.try_wait().unwrap().is_none(), "xtask must keep running");
    service(&["start", "apiserver"]);

    up.signal(Signal::SIGINT);
    let (status, stderr) = up.wait();
    assert!(status.success(), "xtask after Ctrl-C: {status}\n{stderr}");
    up.assert_services_gone();
}

#[test]
fn a_port_in_use_is_named_with_the_option_to_change_it() {
    let state = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = xtask_up(state.path(), port).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&format!("port {port} is already in use")), "{stderr}");
    assert!(stderr.contains("--api-port"), "{stderr}");
}

/// A service that cannot start says why, and that reason is what xtask shows: not a backtrace,
/// even where RUST_BACKTRACE=1 (as in CI).
#[test]
fn a_service_that_fails_to_start_is_shown_with_its_reason() {
    let state = tempfile::tempdir().unwrap();
    let output = xtask_up(state.path(), free_port())
        .env("OTEL_PROPAGATORS", "bogus")
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("exited unexpectedly"), "{stderr}");
    assert!(stderr.contains(r#"OTEL_PROPAGATORS names "bogus""#), "{stderr}");
    assert!(!stderr.contains("Stack backtrace"), "{stderr}");
}

/// The README's first command with `--check`: the whole local stack starts, the chapters that
/// apply locally are verified against real traces, everything stops, and the exit status says
/// whether the traces are as the chapters claim.
#[test]
fn up_local_check_verifies_the_chapters() {
    let state = tempfile::tempdir().unwrap();
    let output = xtask_up(state.path(), free_port()).arg("--check").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_every_expectation_holds(&stdout);
}

/// The chapters on reading traces as their own state brings the stack up: failure injection on
/// at random (a fixed seed), and still every expectation holds (the checks choose their fates).
#[test]
fn up_local_check_verifies_the_reading_chapters_with_faults_on() {
    let state = tempfile::tempdir().unwrap();
    let output =
        xtask_up(state.path(), free_port()).args(["--chapter", "8", "--fault-seed", "3", "--check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("Failure injection is on"), "{stdout}");
    assert_every_expectation_holds(&stdout);
}

/// The end of `up --local --check`'s output: every chapter's expectations hold, the observed
/// traces are shown.
fn assert_every_expectation_holds(stdout: &str) {
    assert!(stdout.contains("✓ every expectation holds"), "{stdout}");
    assert!(stdout.contains("db-create"), "the observed trace is shown: {stdout}");
    for chapter in 0..=8 {
        assert!(stdout.contains(&format!("── Chapter {chapter}:")), "chapter {chapter} verified: {stdout}");
    }
    // ✗ may mark an error span in a waterfall (the 404 of chapter 2), never an expectation.
    let failed: Vec<&str> = stdout.lines().filter(|line| line.contains('✗') && !line.contains('|')).collect();
    assert!(failed.is_empty(), "{failed:#?}\n{stdout}");
}

/// Expectations that cannot hold make verify fail with a diagnosis, not a crash.
#[test]
fn broken_expectations_fail_with_a_diagnosis() {
    let state = tempfile::tempdir().unwrap();
    let mut up = Up::start(state.path());
    let chapters = tempfile::tempdir().unwrap();
    let chapter = chapters.path().join("09-broken");
    std::fs::create_dir(&chapter).unwrap();
    std::fs::write(
        chapter.join("expect.toml"),
        r#"
title = "Broken on purpose"
[[request]]
method = "POST"
path = "/v1/todo"
body = '{"text": "x"}'
status = 201

[[request.span]]
id = "api"
service = "apiserver"
name = "POST /v1/todo"
parent = "root"

[[request.span]]
service = "todomanager"
name = "db-teleport"
kind = "client"

[[request.span]]
service = "todomanager"
name = "db-create"
parent = "api"

[[request.span]]
service = "billing"
name = "charge"
"#,
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .env("WORKSHOP_STATE_DIR", chapters.path())
        .args(["verify", "--chapter", "9", "--timeout", "3s", "--api", &up.api, "--jaeger", &up.traces, "--chapters"])
        .arg(chapters.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}");
    assert!(stderr.contains("verification failed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stdout.contains("todomanager reported") && stdout.contains("but no client span named `db-teleport`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("`db-create` is a child of todomanager `todo_mgr.TodoManager/CreateTodo`, expected a child of apiserver `POST /v1/todo`"),
        "{stdout}"
    );
    assert!(stdout.contains("no spans from billing at all: billing exports nowhere"), "{stdout}");
    assert!(stdout.contains("✓ apiserver  POST /v1/todo"), "what holds is still shown: {stdout}");

    up.signal(Signal::SIGTERM);
    assert!(up.wait().0.success());
}

/// The README's first command on the real stack: the services' spans go through the real
/// OpenTelemetry Collector (running the cluster's pipeline) to the real Jaeger v2, and every
/// expectation of chapters 0–4 holds there too.
#[test]
fn up_local_stack_real_check_verifies_the_chapters_against_real_jaeger() {
    if !testkit::real::tools(&["jaeger", "otelcol-workshop"], "up --local --stack real --check") {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let output = xtask_up(state.path(), free_port()).args(["--stack", "real", "--check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_every_expectation_holds(&stdout);
    // It was the real thing: the collector validated and ran the generated configuration, and
    // Jaeger's query service answered.
    assert!(stdout.contains("otelcol-workshop validate"), "{stdout}");
    let collector_log = std::fs::read_to_string(state.path().join("logs/otelcol.log")).unwrap();
    assert!(collector_log.contains("Everything is ready"), "{collector_log}");
    let jaeger_log = std::fs::read_to_string(state.path().join("logs/jaeger.log")).unwrap();
    assert!(jaeger_log.contains("jaeger_query"), "{jaeger_log}");
}

/// The collector really carries every span: what the services sent for a burst of requests is
/// what Jaeger holds, span for span, and the collector's own counters agree.
#[test]
fn the_real_collector_carries_every_span_to_jaeger() {
    if !testkit::real::tools(&["jaeger", "otelcol-workshop"], "the real collector carries every span") {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let mut up = Up::start_with(state.path(), &["--stack", "real"]);
    let names: Vec<&str> = up.services.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["jaeger", "otelcol", "todomanager", "apiserver"]);

    let mut trace_ids = Vec::new();
    for n in 0..20 {
        let response =
            http().post(format!("{}/v1/todo", up.api)).json(&json!({"text": format!("carry {n}")})).send().unwrap();
        assert_eq!(response.status(), 201);
        trace_ids.push(response.headers()["x-trace-id"].to_str().unwrap().to_owned());
    }
    // Each POST is four spans: apiserver's server and client spans, todomanager's server span
    // and its db-create span.
    let deadline = Instant::now() + Duration::from_secs(20);
    for trace_id in &trace_ids {
        loop {
            let response = http().get(format!("{}/api/v3/traces/{trace_id}", up.traces)).send().unwrap();
            let spans = if response.status() == 200 {
                let body: Value = response.json().unwrap();
                body["result"]["resourceSpans"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|rs| rs["scopeSpans"].as_array().unwrap())
                    .map(|scope| scope["spans"].as_array().unwrap().len())
                    .sum()
            } else {
                0
            };
            if spans == 4 {
                break;
            }
            assert!(spans < 4, "trace {trace_id} has {spans} spans in Jaeger, 4 were sent");
            assert!(Instant::now() < deadline, "trace {trace_id} has {spans} of its 4 spans in Jaeger after 20 s");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // The collector's own counters (its metrics address is in the configuration xtask wrote).
    let config = std::fs::read_to_string(state.path().join("otelcol.yaml")).unwrap();
    let port = config.lines().find_map(|line| line.trim().strip_prefix("port: ")).expect("the metrics port");
    let counter = |name: &str| collector_counter(port, name);
    let accepted = counter("otelcol_receiver_accepted_spans");
    assert!(accepted >= 80, "the collector accepted {accepted} spans, at least 80 were sent");
    assert_eq!(counter("otelcol_receiver_refused_spans"), 0);
    assert_eq!(counter("otelcol_exporter_send_failed_spans"), 0);
    // Spans may still wait in the batch processor (up to 200 ms): wait until all are sent.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (accepted, sent) = (counter("otelcol_receiver_accepted_spans"), counter("otelcol_exporter_sent_spans"));
        if accepted == sent {
            break;
        }
        assert!(Instant::now() < deadline, "the collector accepted {accepted} spans and sent {sent}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // `cargo xtask trace` reads the real Jaeger as it reads the store.
    let last =
        Command::new(env!("CARGO_BIN_EXE_xtask")).args(["trace", "--last", "--jaeger", &up.traces]).output().unwrap();
    let shown = String::from_utf8_lossy(&last.stdout);
    assert!(last.status.success(), "{shown}{}", String::from_utf8_lossy(&last.stderr));
    assert!(shown.contains(&format!("trace {}  (4 spans)", trace_ids.last().unwrap())), "{shown}");
    assert!(shown.contains("db-create"), "{shown}");
    // Only the services report: Jaeger does not trace its own queries into the collector.
    let services: Value = http().get(format!("{}/api/v3/services", up.traces)).send().unwrap().json().unwrap();
    let mut services: Vec<&str> = services["services"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    services.sort();
    assert_eq!(services, ["apiserver", "todomanager"]);

    up.signal(Signal::SIGTERM);
    let (status, stderr) = up.wait();
    assert!(status.success(), "{stderr}");
    up.assert_services_gone();
}

/// The sum of a counter over its labels, from the collector's Prometheus endpoint.
fn collector_counter(port: &str, name: &str) -> u64 {
    let metrics = http().get(format!("http://127.0.0.1:{port}/metrics")).send().unwrap().text().unwrap();
    metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// `cargo xtask …` against a running stack's trace store; its standard output.
fn xtask_against(up: &Up, args: &[&str]) -> String {
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
fn found(table: &str) -> std::collections::BTreeSet<String> {
    table
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| word.len() == 32 && word.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .map(str::to_owned)
        .collect()
}

/// With faults on and a fixed seed, `search` finds exactly the requests that failed (by
/// status and by attribute) and the ones that were slow (by duration and by attribute);
/// `trace --details` shows why one failed; `trace --compare` shows where a slow one lost its
/// time.
#[test]
fn search_finds_the_failed_and_the_slow_requests_and_trace_explains_them() {
    use std::collections::BTreeSet;

    let state = tempfile::tempdir().unwrap();
    let up = Up::start_with(state.path(), &["--faults", "--fault-seed", "11"]);
    let http = http();
    let (mut mine, mut failed, mut took) = (BTreeSet::new(), BTreeSet::new(), std::collections::HashMap::new());
    for _ in 0..40 {
        let started = Instant::now();
        let response = http.get(format!("{}/v1/todo", up.api)).send().unwrap();
        let id = response.headers()["x-trace-id"].to_str().unwrap().to_owned();
        took.insert(id.clone(), started.elapsed());
        // 500 from apiserver's faults; 504 when todomanager's injected slowness outlasts
        // apiserver's timeout: both are the server's failures, marked as errors.
        if response.status().is_server_error() {
            failed.insert(id.clone());
        }
        mine.insert(id);
    }
    assert!(!failed.is_empty() && failed.len() < 40, "seed 11 fails some requests, not all: {}", failed.len());
    let search = |args: &[&str]| -> BTreeSet<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut all = vec!["search", "--since", "10m", "--limit", "100"];
            all.extend_from_slice(args);
            let hits: BTreeSet<String> = found(&xtask_against(&up, &all)).intersection(&mine).cloned().collect();
            // Spans arrive in batches: wait until every request of ours has its trace.
            let everything: BTreeSet<String> =
                found(&xtask_against(&up, &["search", "--since", "10m", "--limit", "100"]));
            if mine.is_subset(&everything) || Instant::now() > deadline {
                return hits;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    };

    assert_eq!(search(&["--errors"]), failed, "--errors finds the 5xx");
    let injected = search(&["--attribute", "fault.injected=error"]);
    assert!(!injected.is_empty() && injected.is_subset(&failed), "{injected:?} {failed:?}");
    let delayed = search(&["--attribute", "fault.injected=delay"]);
    assert!(!delayed.is_empty(), "seed 11 delays some requests");
    let slow = search(&["--min-duration", "100ms"]);
    assert!(delayed.is_subset(&slow), "every delayed request lasted 100 ms or more: {delayed:?} {slow:?}");
    for id in slow.difference(&delayed) {
        assert!(took[id] >= Duration::from_millis(100), "{id} was not delayed, and not slow either");
    }
    let quick = search(&["--max-duration", "99ms"]);
    assert!(quick.is_disjoint(&delayed));

    let one_failure = failed.iter().next().unwrap();
    let details = xtask_against(&up, &["trace", one_failure, "--details"]);
    assert!(details.contains("apiserver  GET /v1/todo  (server)"), "{details}");
    assert!(details.contains("✗ Error"), "{details}");
    assert!(details.contains("fault.injected = error"), "{details}");
    assert!(details.contains("http.response.status_code = 500"), "{details}");
    assert!(details.contains("event at +") && details.contains("injected failure"), "{details}");

    // The store's own pages: the search form finds the same failures; a span unfolds.
    let page = http.get(format!("{}/?service=apiserver&errors=on", up.traces)).send().unwrap().text().unwrap();
    assert!(page.contains("<form") && page.contains("Traces found"), "{page}");
    for id in &mine {
        assert_eq!(page.contains(&format!("/trace/{id}")), failed.contains(id), "{id} on the errors page");
    }
    let bad = http.get(format!("{}/?service=apiserver&min=soon", up.traces)).send().unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().unwrap().contains("min duration"), "says which field is wrong");
    let page = http.get(format!("{}/trace/{one_failure}", up.traces)).send().unwrap().text().unwrap();
    assert!(page.contains("status <b>Error</b>") && page.contains("<code>fault.injected = error</code>"), "{page}");
    assert!(page.contains("event at +") && page.contains("injected failure"), "{page}");

    // The log lines of a request that todomanager held back: from both services, in time order.
    let held_back = found(&xtask_against(
        &up,
        &["search", "--service", "todomanager", "--attribute", "fault.injected=slow", "--since", "10m"],
    ));
    if let Some(id) = held_back.intersection(&mine).next() {
        let logs = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["logs", "--trace", id, "--state-dir"])
            .arg(state.path())
            .output()
            .unwrap();
        let logs = String::from_utf8_lossy(&logs.stdout).into_owned();
        let lines: Vec<&str> = logs.lines().collect();
        assert!(
            lines.iter().any(|line| line.starts_with("todomanager") && line.contains("injected slowness")),
            "{logs}"
        );
        assert!(
            lines.iter().any(|line| line.starts_with("apiserver") && line.contains("GET /v1/todo answered")),
            "{logs}"
        );
        assert!(lines.iter().all(|line| line.contains(id.as_str())), "only this trace's lines: {logs}");
        let times: Vec<&str> = lines.iter().map(|line| line.split_whitespace().nth(1).unwrap()).collect();
        assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "in time order: {logs}");
    } else {
        panic!("seed 11 makes todomanager hold back one of the 40 lists: {held_back:?}");
    }
    // And back: from the warning in the log to the traces it was logged in.
    let grep = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["logs", "--grep", "injected failure", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    let grep = String::from_utf8_lossy(&grep.stdout).into_owned();
    let named: BTreeSet<String> = grep
        .lines()
        .find_map(|line| line.strip_prefix("Their trace(s): "))
        .unwrap_or_else(|| panic!("{grep}"))
        .split(". ")
        .next()
        .unwrap()
        .split(", ")
        .map(str::to_owned)
        .collect();
    // Of ours, only failed ones (the chapters' checks, running alongside, fail some on purpose).
    let ours: BTreeSet<String> = named.intersection(&mine).cloned().collect();
    assert!(!ours.is_empty() && ours.is_subset(&failed), "{named:?} {failed:?}");

    let one_delay = delayed.iter().next().unwrap();
    let normal = mine.iter().find(|id| !failed.contains(*id) && !slow.contains(*id)).unwrap();
    let compared = xtask_against(&up, &["trace", one_delay, "--compare", normal]);
    let root = compared.lines().find(|line| line.starts_with("apiserver  GET /v1/todo")).unwrap();
    let difference = root.rsplit("  ").next().unwrap().trim();
    assert!(difference.starts_with('−'), "the delayed one (A) is slower: {compared}");
    let (number, unit) = difference.trim_start_matches('−').split_once(' ').unwrap();
    let millis = number.parse::<f64>().unwrap() * if unit == "s" { 1000.0 } else { 1.0 };
    assert!(unit != "µs" && millis >= 90.0, "at least the injected 100 ms: {compared}");
}

/// Tail sampling in the real collector (`--stack real --tail-sampling`): with faults on, every
/// trace with an error and every slow one reaches Jaeger; of the others, about a tenth.
#[test]
fn tail_sampling_keeps_every_error_and_every_slow_trace_and_a_share_of_the_rest() {
    use std::collections::BTreeSet;

    if !testkit::real::tools(&["jaeger", "otelcol-workshop"], "tail sampling in the real collector") {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let up = Up::start_with(state.path(), &["--stack", "real", "--tail-sampling", "--faults", "--fault-seed", "5"]);
    let collector_config = std::fs::read_to_string(state.path().join("otelcol.yaml")).unwrap();
    assert!(collector_config.contains("tail_sampling"), "{collector_config}");

    let http = http();
    let (mut failed, mut slow, mut rest) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for _ in 0..80 {
        let started = Instant::now();
        // The list: a GET of a missing todo would be an error span (NOT_FOUND at the client).
        let response = http.get(format!("{}/v1/todo", up.api)).send().unwrap();
        let took = started.elapsed();
        let id = response.headers()["x-trace-id"].to_str().unwrap().to_owned();
        if response.status().is_server_error() {
            failed.insert(id);
        } else if took >= Duration::from_millis(100) {
            slow.insert(id);
        } else if took < Duration::from_millis(60) {
            rest.insert(id); // clearly under the 80 ms threshold, whatever the clocks
        }
    }
    assert!(!failed.is_empty() && !slow.is_empty() && rest.len() >= 30, "{failed:?} {slow:?} {}", rest.len());
    // The collector decides 2 s (decision_wait) after a trace's first span; then the batch.
    std::thread::sleep(Duration::from_secs(5));
    let in_jaeger = |id: &String| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = http.get(format!("{}/api/v3/traces/{id}", up.traces)).send().unwrap().status();
            if status == 200 || Instant::now() > deadline {
                return status == 200;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    for id in failed.iter().chain(&slow) {
        assert!(in_jaeger(id), "trace {id} failed or was slow: tail sampling keeps it");
    }
    let kept =
        rest.iter().filter(|id| http.get(format!("{}/api/v3/traces/{id}", up.traces)).send().unwrap().status() == 200);
    let kept = kept.count();
    // 10 % of at least 30: the chance of keeping half or more is below one in a million.
    assert!(kept < rest.len() / 2, "{kept} of {} ordinary traces kept: the rest is sampled", rest.len());
}

/// `cargo xtask answer QUESTION ANSWER` in the folder of a running stack.
fn answer(up: &Up, state: &Path, args: &[&str]) -> (bool, String) {
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
fn right_answer(explanation: &str) -> String {
    explanation
        .lines()
        .find_map(|line| line.split_once("the answer is: ").map(|(_, answer)| answer.trim().to_owned()))
        .unwrap_or_else(|| panic!("no right answer in: {explanation}"))
}

/// Every question of the reading chapters, on traces made with faults on and a fixed seed:
/// the right answer passes, a wrong one fails and explains itself with the right one.
#[test]
fn the_chapters_questions_are_answered_from_the_traces() {
    let state = tempfile::tempdir().unwrap();
    let up = Up::start_with(state.path(), &["--chapter", "8", "--fault-seed", "11"]);
    let http = http();
    let mut failures = 0;
    for _ in 0..40 {
        if http.get(format!("{}/v1/todo", up.api)).send().unwrap().status().is_server_error() {
            failures += 1;
        }
    }
    let missing = http.get(format!("{}/v1/todo/999999", up.api)).send().unwrap();
    assert_eq!(missing.status(), 404);
    // Until the store holds still: the chapters' own checks run next to this test.
    let mut last = None;
    loop {
        let stats: Value = http.get(format!("{}/api/stats", up.traces)).send().unwrap().json().unwrap();
        if last.as_ref() == Some(&stats) {
            break;
        }
        last = Some(stats);
        std::thread::sleep(Duration::from_secs(2));
    }
    // The newest slow list (its log line is written before the answer goes out).
    let slow = http.get(format!("{}/v1/todo", up.api)).header("X-Inject-Fault", "slow").send().unwrap();
    let slow_trace = slow.headers()["x-trace-id"].to_str().unwrap().to_owned();

    // The slowest list was held back in todomanager: the time is its own.
    let (right, said) = answer(&up, state.path(), &["slowest-span", "apiserver GET /v1/todo"]);
    assert!(!right && said.contains("✗ Not quite") && said.contains("How to find it"), "{said}");
    assert_eq!(right_answer(&said), "todomanager todo_mgr.TodoManager/ListTodos", "{said}");
    let (right, said) = answer(&up, state.path(), &["slowest-span", "todomanager todo_mgr.TodoManager/ListTodos"]);
    assert!(right && said.starts_with("✓ Right"), "{said}");

    for question in ["failed-requests", "failures-kept"] {
        let (right, said) = answer(&up, state.path(), &[question, "1000"]);
        assert!(!right, "{said}");
        let count: usize = right_answer(&said).parse().unwrap();
        assert!(count >= failures, "{question}: {count} counted, {failures} of ours failed: {said}");
        let (right, said) = answer(&up, state.path(), &[question, &count.to_string()]);
        assert!(right, "{said}");
    }

    let (right, said) = answer(&up, state.path(), &["missing-todo-error", "todomanager todo_mgr.TodoManager/GetTodo"]);
    assert!(!right && right_answer(&said) == "apiserver todo_mgr.TodoManager/GetTodo", "{said}");
    assert!(said.contains("NOT_FOUND"), "the explanation names the error type: {said}");
    assert!(answer(&up, state.path(), &["missing-todo-error", "apiserver todo_mgr.TodoManager/GetTodo"]).0);

    let (right, said) = answer(&up, state.path(), &["slow-line-trace", "0123456789abcdef0123456789abcdef"]);
    assert!(!right && right_answer(&said) == slow_trace, "{said}");
    assert!(answer(&up, state.path(), &["slow-line-trace", &slow_trace]).0);

    let (_, listed) = answer(&up, state.path(), &[]);
    assert!(listed.contains("✓ slow-line-trace") && listed.contains("✓ slowest-span"), "{listed}");
}
