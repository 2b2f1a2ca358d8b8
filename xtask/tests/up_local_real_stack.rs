//! `cargo xtask up --local --stack real`: the services' spans through the real OpenTelemetry
//! Collector into the real Jaeger v2, every span carried, tail sampling in the collector.

mod local;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use local::*;

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
