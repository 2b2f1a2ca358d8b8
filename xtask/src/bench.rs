//! `cargo xtask bench`: what tracing costs, measured side by side in one run. The same load
//! (create, get, delete, and now and then a list) against the local stack in three setups:
//! A, tracing off; B, tracing on, every request sampled, exported to the trace store; C, tracing
//! on with the exporter pointed at a dead endpoint. Reports throughput, latency percentiles,
//! errors, the services' peak memory, the ratios to A, and for B the spans delivered.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde::Serialize;
use serde_json::json;

use crate::{
    local::{Addresses, Launch, start_stack},
    project,
};

#[derive(clap::Args)]
pub struct Options {
    /// How long each setup is measured.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Load before measuring (connections, caches, the JIT of nothing: Rust has none, but the
    /// database file and the allocator warm up).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Clients sending at the same time.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// A fixed total rate (requests per second) instead of as fast as possible.
    #[arg(long)]
    rate: Option<u32>,
    /// Use the debug builds (for a quick smoke run; numbers mean little).
    #[arg(long)]
    debug: bool,
    /// Do not run `cargo build` first.
    #[arg(long)]
    no_build: bool,
    /// Where to write bench.md and bench.json [default: target/bench].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
enum Setup {
    A,
    B,
    C,
}

impl Setup {
    fn describe(self) -> &'static str {
        match self {
            Setup::A => "tracing off (OTEL_SDK_DISABLED=true)",
            Setup::B => "tracing on, 100 % sampled, exported to the trace store",
            Setup::C => "tracing on, exporter pointed at a dead endpoint",
        }
    }
}

#[derive(Debug, Serialize)]
struct Outcome {
    setup: Setup,
    requests: u64,
    errors: u64,
    requests_per_second: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    peak_rss_mib: BTreeMap<String, f64>,
    /// For B: spans per service, delivered to the store and expected.
    spans_delivered: Option<BTreeMap<String, (u64, u64)>>,
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let profile = if options.debug { "debug" } else { "release" };
    if !options.no_build {
        let mut command =
            vec!["build", "--package", "tracestore", "--package", "todomanager", "--package", "apiserver"];
        if !options.debug {
            command.push("--release");
        }
        println!("$ cargo {}", command.join(" "));
        duct::cmd(project::cargo(), &command).dir(project::root()).run().context("building the services failed")?;
    }
    let binaries = project::binaries_dir().parent().context("target folder")?.join(profile);
    let runtime = tokio::runtime::Runtime::new()?;
    let mut outcomes = Vec::new();
    for setup in [Setup::A, Setup::B, Setup::C] {
        println!("\n── {setup:?}: {} ──", setup.describe());
        outcomes.push(measure(setup, options, &binaries, &runtime)?);
    }
    let report = report(&outcomes, options, profile);
    println!("\n{report}");
    let out = options.out.clone().unwrap_or_else(|| project::root().join("target/bench"));
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("bench.md"), &report)?;
    let machine = machine();
    let json = json!({ "machine": machine, "profile": profile, "options": {
        "duration_s": options.duration.as_secs_f64(), "warmup_s": options.warmup.as_secs_f64(),
        "concurrency": options.concurrency, "rate": options.rate }, "outcomes": outcomes });
    std::fs::write(out.join("bench.json"), serde_json::to_string_pretty(&json)?)?;
    println!("Written to {} (bench.md, bench.json)", out.display());
    Ok(())
}

/// Starts the stack for `setup`, loads it, and measures.
fn measure(
    setup: Setup,
    options: &Options,
    binaries: &std::path::Path,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Outcome> {
    let state_dir = tempfile::tempdir()?;
    let state = state_dir.path();
    let at = Addresses::free()?;
    let database_url = format!("sqlite://{}?mode=rwc", state.join("todo.db").display());
    // C exports to at.otlp all the same, where nothing listens: its exporter fails every batch.
    let mut services = start_stack(&Launch {
        binaries,
        at: &at,
        logs: state,
        database_url: &database_url,
        traces: (setup == Setup::B).then_some(crate::local::Stack::Store),
        tracing_off: (setup == Setup::A, setup == Setup::A),
        // The store keeps every span of the run, so that its count says how many arrived.
        env: &[("TRACESTORE_MAX_TRACES", "10000000".into()), ("TRACESTORE_MAX_MIB", "8192".into())],
    })?;
    let (api, store_query) = (at.api, at.traces);

    let base = format!("http://{api}");
    println!("warming up for {:?}…", options.warmup);
    let warmup = runtime.block_on(load(&base, options.concurrency, options.rate, options.warmup));
    println!("measuring for {:?}…", options.duration);
    let measured = runtime.block_on(load(&base, options.concurrency, options.rate, options.duration));
    services.check_running()?;
    let peak_rss_mib = services
        .iter()
        .filter(|service| service.name != "tracestore")
        .map(|service| (service.name.to_owned(), peak_rss_kib(service.pid()) as f64 / 1024.0))
        .collect();

    // Stopping flushes the last spans; then count what the store holds.
    for name in ["apiserver", "todomanager"] {
        if let Some(service) = services.iter().find(|service| service.name == name) {
            service.stop()?;
        }
    }
    let spans_delivered = match setup {
        Setup::B => {
            let stats: serde_json::Value = reqwest::blocking::get(format!("http://{store_query}/api/stats"))?
                .json()
                .context("reading the store's counts")?;
            // Every answered request makes two spans in each service (server + client call,
            // server + database).
            let expected = 2 * (warmup.ok + measured.ok);
            let delivered = |service: &str| stats["spans"][service].as_u64().unwrap_or(0);
            Some(BTreeMap::from([
                ("apiserver".to_owned(), (delivered("apiserver"), expected)),
                ("todomanager".to_owned(), (delivered("todomanager"), expected)),
            ]))
        }
        Setup::A | Setup::C => None,
    };
    services.stop_all();

    let mut latencies = measured.latencies_us;
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies.get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0) as f64
            / 1000.0
    };
    let outcome = Outcome {
        setup,
        requests: measured.ok + measured.errors,
        errors: measured.errors,
        requests_per_second: measured.ok as f64 / options.duration.as_secs_f64(),
        p50_ms: percentile(0.50),
        p90_ms: percentile(0.90),
        p99_ms: percentile(0.99),
        max_ms: latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
        peak_rss_mib,
        spans_delivered,
    };
    println!("{:.0} req/s, p99 {:.2} ms, {} errors", outcome.requests_per_second, outcome.p99_ms, outcome.errors);
    Ok(outcome)
}

/// The peak resident memory of a process (Linux: VmHWM), in KiB; 0 where unknown.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[derive(Default)]
struct Load {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

impl Load {
    fn record(&mut self, started: Instant, ok: bool) {
        self.latencies_us.push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        if ok {
            self.ok += 1;
        } else {
            self.errors += 1;
        }
    }
}

fn succeeded(result: Result<reqwest::Response, reqwest::Error>) -> bool {
    result.is_ok_and(|response| response.status().is_success())
}

/// `concurrency` clients, each: create a todo, read it back, delete it, and every fifth round
/// list the todos (deleting keeps the list short, so every round costs the same).
async fn load(api: &str, concurrency: usize, rate: Option<u32>, duration: Duration) -> Load {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + duration;
    let api: Arc<str> = api.into();
    // A round is 3.2 requests on average (create, get, delete, and a list every fifth round).
    let pause = rate.map(|rate| Duration::from_secs_f64(concurrency as f64 * 3.2 / f64::from(rate.max(1))));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, api) = (http.clone(), api.clone());
        workers.push(tokio::spawn(async move {
            let mut load = Load::default();
            let mut round = 0u64;
            let mut next = tokio::time::Instant::now();
            while Instant::now() < deadline {
                let started = Instant::now();
                let id = match http.post(format!("{api}/v1/todo")).json(&json!({"text": "bench"})).send().await {
                    Ok(response) if response.status().is_success() => response
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                        .and_then(|todo| todo["id"].as_str().map(str::to_owned)),
                    _ => None,
                };
                load.record(started, id.is_some());
                if let Some(id) = id {
                    let started = Instant::now();
                    load.record(started, succeeded(http.get(format!("{api}/v1/todo/{id}")).send().await));
                    let started = Instant::now();
                    load.record(started, succeeded(http.delete(format!("{api}/v1/todo/{id}")).send().await));
                }
                if round.is_multiple_of(5) {
                    let started = Instant::now();
                    load.record(started, succeeded(http.get(format!("{api}/v1/todo")).send().await));
                }
                round += 1;
                if let Some(pause) = pause {
                    next += pause;
                    tokio::time::sleep_until(next).await;
                }
            }
            load
        }));
    }
    let mut total = Load::default();
    for worker in workers {
        if let Ok(load) = worker.await {
            total.ok += load.ok;
            total.errors += load.errors;
            total.latencies_us.extend(load.latencies_us);
        }
    }
    total
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .map(|line| line.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    format!("{cpu}, {cores} cores, {}", std::env::consts::OS)
}

/// The table, in Markdown.
fn report(outcomes: &[Outcome], options: &Options, profile: &str) -> String {
    let mut text = format!(
        "Machine: {}. Build: {profile}. Load: {} clients{}, {:?} warm-up, {:?} measured per setup.\n\n",
        machine(),
        options.concurrency,
        options.rate.map_or(String::new(), |rate| format!(" at {rate} req/s")),
        options.warmup,
        options.duration
    );
    text.push_str(
        "| setup | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | peak RSS apiserver | peak RSS todomanager |\n",
    );
    text.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for outcome in outcomes {
        let rss = |name: &str| outcome.peak_rss_mib.get(name).map_or("?".into(), |mib| format!("{mib:.1} MiB"));
        text.push_str(&format!(
            "| {:?}: {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} |\n",
            outcome.setup,
            outcome.setup.describe(),
            outcome.requests_per_second,
            outcome.p50_ms,
            outcome.p90_ms,
            outcome.p99_ms,
            outcome.max_ms,
            outcome.errors,
            rss("apiserver"),
            rss("todomanager"),
        ));
    }
    if let [a, b, c] = outcomes {
        let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { f64::NAN };
        text.push_str(&format!(
            "\nRatios to A: throughput B/A {:.3}, C/A {:.3}; p99 B/A {:.2}, C/A {:.2}.\n",
            ratio(b.requests_per_second, a.requests_per_second),
            ratio(c.requests_per_second, a.requests_per_second),
            ratio(b.p99_ms, a.p99_ms),
            ratio(c.p99_ms, a.p99_ms),
        ));
        if let Some(delivered) = &b.spans_delivered {
            let parts: Vec<String> = delivered
                .iter()
                .map(|(service, (got, expected))| {
                    format!("{service} {got}/{expected} ({:.2} %)", 100.0 * *got as f64 / (*expected).max(1) as f64)
                })
                .collect();
            text.push_str(&format!("Spans delivered in B (received by the store / expected): {}.\n", parts.join(", ")));
        }
    }
    text.push_str(
        "\nGoals, not assertions: overhead ≤ 3 % throughput and p99 ≤ 1.1× at 100 % sampling; 100 % span delivery.\n",
    );
    text
}
