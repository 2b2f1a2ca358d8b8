//! `cargo xtask bench`: what tracing costs, measured side by side in one run. Three copies of
//! the local stack run at once: A, tracing off; B, tracing on, every request sampled, exported
//! to the trace store; C, tracing on with the exporter pointed at a dead endpoint. For each
//! workload (read, write, mixed) the bench loads them in turn, in short rounds (A B C A B C …),
//! so that a noisy machine's drift hits all three alike, and counts per round the requests,
//! their latency, and the CPU time each process used (its kernel CPU clock). It reports the
//! medians, the ratios to A with their range over the rounds, the spans delivered in B, and the
//! goals; `target/bench/bench.md` and `bench.json` keep them.

mod cpu;
mod generator;
mod instructions;
mod report;

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::Context;
use serde::Serialize;
use serde_json::json;

use loadgen::{Order, Tally, Workload};

use self::{
    generator::Generator,
    report::{Delivered, Outcome, PROCESSES, Round},
};
use crate::{
    local::{Addresses, Launch, Traces, Tracing, Under, start_stack},
    processes::Services,
    project,
};

#[derive(clap::Args)]
pub struct Options {
    /// The workloads to run, in this order [default: read, write, mixed].
    #[arg(long, value_enum, value_delimiter = ',')]
    workload: Vec<Workload>,
    /// The setups to run [default: A, B, C]; one alone is handy for a profiler
    /// (`perf record -p $(pgrep -f release/apiserver)`).
    #[arg(long, value_enum, value_delimiter = ',')]
    setup: Vec<Setup>,
    /// Rounds per workload; each setup is loaded once per round.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// How long each setup is loaded in one round.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Load on each stack before a workload's rounds (connections, caches and the database
    /// file warm up).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
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
    /// Count instructions per request with valgrind's callgrind instead of timing: exact and
    /// noise-free, but slow (use --workload read; writes instructions.md and .json).
    #[arg(long)]
    instructions: bool,
    /// Do not run `cargo build` first.
    #[arg(long)]
    no_build: bool,
    /// Run the services (and loadgen) found in DIR instead of building them: to measure
    /// another commit's build, e.g. a `git worktree` built with its own target folder.
    #[arg(long, value_name = "DIR", conflicts_with = "debug")]
    binaries: Option<std::path::PathBuf>,
    /// Where to write bench.md and bench.json [default: target/bench].
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum Setup {
    /// Tracing off (OTEL_SDK_DISABLED=true).
    A,
    /// Tracing on, every request sampled, exported to the trace store.
    B,
    /// Tracing on, exporter pointed at a dead endpoint.
    C,
}

impl Setup {
    const ALL: [Setup; 3] = [Setup::A, Setup::B, Setup::C];

    fn describe(self) -> &'static str {
        match self {
            Setup::A => "tracing off (OTEL_SDK_DISABLED=true)",
            Setup::B => "tracing on, 100 % sampled, exported to the trace store",
            Setup::C => "tracing on, exporter pointed at a dead endpoint",
        }
    }
}

/// One setup's stack, running for the whole bench.
struct Stack {
    setup: Setup,
    services: Services,
    at: Addresses,
    generator: Generator,
    /// Requests answered so far (each made two spans in each service).
    answered: u64,
    /// The round whose CPU is still being counted.
    pending: Option<Pending>,
    _state: tempfile::TempDir,
}

impl Stack {
    /// Starts the stack of `setup` and its load generator; `under` runs one service under
    /// another program (callgrind, for `--instructions`).
    fn start(setup: Setup, binaries: &Path, under: Option<Under>) -> anyhow::Result<Self> {
        let state = tempfile::tempdir()?;
        let at = Addresses::free()?;
        let database_url = format!("sqlite://{}?mode=rwc", state.path().join("todo.db").display());
        // C exports to at.otlp all the same, where nothing listens: its exporter fails every batch.
        let services = start_stack(&Launch {
            binaries,
            at: &at,
            logs: state.path(),
            database_url: &database_url,
            traces: if setup == Setup::B { Traces::To(crate::local::Stack::Store) } else { Traces::Nowhere },
            tracing: Tracing { todomanager: setup != Setup::A, apiserver: setup != Setup::A },
            // The store keeps every span of the run, so that its count says how many arrived.
            env: &[("TRACESTORE_MAX_TRACES", "100000000".into()), ("TRACESTORE_MAX_MIB", "16384".into())],
            under,
            tail_sampling: false,
        })
        .with_context(|| format!("cannot start the stack of setup {setup:?}"))?;
        let generator = Generator::start(binaries, &format!("http://{}", at.api))?;
        Ok(Self {
            setup,
            services,
            at,
            generator,
            answered: loadgen::STORED_TODOS as u64,
            pending: None,
            _state: state,
        })
    }

    /// The CPU time each of the stack's processes has used so far.
    fn cpu_used(&self) -> anyhow::Result<BTreeMap<&'static str, Duration>> {
        self.services.iter().map(|service| Ok((service.name, cpu::used(service.pid())?))).collect()
    }

    /// Loads the stack for one round. Returns the round before it, now that its count is
    /// complete.
    fn round(&mut self, order: &Order) -> anyhow::Result<Option<Round>> {
        let started = self.cpu_used()?;
        let previous = self.pending.take().map(|pending| pending.finish(&started));
        let load_before = cpu::used(self.generator.pid())?;
        let tally = self.generator.run(order)?;
        let load = cpu::used(self.generator.pid())? - load_before;
        self.services.check_running()?;
        self.answered += tally.answered;
        self.pending = Some(Pending { started, load, tally, duration: order.duration });
        Ok(previous)
    }

    /// Load that is not measured (a warm-up).
    fn warm_up(&mut self, order: &Order) -> anyhow::Result<()> {
        self.answered += self.generator.run(order)?.answered;
        Ok(())
    }

    /// The last round, counted until now.
    fn finish(&mut self) -> anyhow::Result<Option<Round>> {
        let now = self.cpu_used()?;
        Ok(self.pending.take().map(|pending| pending.finish(&now)))
    }
}

/// A round whose load is over but whose CPU is still being counted: a service's work for a
/// request can come later (the batch processor exports up to 5 s after a span ended, the store
/// ingests it then), so a process's count runs from the start of its round to the start of
/// its stack's next round; meanwhile the other stacks are loaded and this one is idle. The load
/// generator is counted during the round only.
struct Pending {
    started: BTreeMap<&'static str, Duration>,
    load: Duration,
    tally: Tally,
    duration: Duration,
}

/// How long the end of a workload waits for the last spans to be exported and ingested:
/// `OTEL_BSP_SCHEDULE_DELAY`'s default (5 s) and a margin.
const SETTLE: Duration = Duration::from_secs(6);

impl Pending {
    fn finish(mut self, now: &BTreeMap<&'static str, Duration>) -> Round {
        // Per request the services answered, whatever its status: each cost them their work.
        let answered = self.tally.answered.max(1) as f64;
        let per_request = |process: &str| match process {
            "load" => self.load.as_secs_f64() * 1e6 / answered,
            process => match (self.started.get(process), now.get(process)) {
                (Some(started), Some(now)) => (*now - *started).as_secs_f64() * 1e6 / answered,
                _ => 0.0,
            },
        };
        Round {
            requests: self.tally.ok + self.tally.error_count(),
            errors: self.tally.errors.clone(),
            requests_per_second: self.tally.ok as f64 / self.duration.as_secs_f64(),
            cpu_us_per_request: PROCESSES.iter().map(|&process| (process, per_request(process))).collect(),
            p50_ms: self.tally.percentile_ms(0.50),
            p99_ms: self.tally.percentile_ms(0.99),
        }
    }
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let profile = if options.debug { "debug" } else { "release" };
    if !options.no_build && options.binaries.is_none() {
        crate::local::build_services(!options.debug, &["loadgen"])?;
    }
    anyhow::ensure!(options.rounds > 0, "--rounds must be at least 1");
    let workloads = if options.workload.is_empty() { Workload::ALL.to_vec() } else { options.workload.clone() };
    let binaries = match &options.binaries {
        Some(dir) => dir.clone(),
        None => project::binaries_dir().parent().context("target folder")?.join(profile),
    };

    let mut setups = if options.setup.is_empty() { Setup::ALL.to_vec() } else { options.setup.clone() };
    setups.sort_by_key(|setup| *setup as u8);
    setups.dedup();
    let out = options.out.clone().unwrap_or_else(|| project::root().join("target/bench"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let (machine, commit) = (machine(), commit(options));
    if options.instructions {
        let counts = instructions::run(options, &binaries, &setups, &workloads, &out)?;
        let heading = format!(
            "Machine: {machine}. Commit: {commit}. Load: {} clients, {:?} counted per service after {:?} of warm-up.",
            options.concurrency, options.duration, options.warmup
        );
        let markdown = instructions::markdown(&heading, &counts);
        println!("\n{markdown}");
        std::fs::write(out.join("instructions.md"), &markdown)?;
        let json = json!({ "schema": 1, "machine": machine, "commit": commit, "counts": counts });
        std::fs::write(out.join("instructions.json"), serde_json::to_string_pretty(&json)?)?;
        println!("Written to {} (instructions.md, instructions.json, callgrind.*)", out.display());
        return Ok(());
    }
    let described: Vec<String> = setups.iter().map(|setup| format!("{setup:?}, {}", setup.describe())).collect();
    println!("Starting a stack per setup: {}.", described.join("; "));
    let mut stacks =
        setups.iter().map(|&setup| Stack::start(setup, &binaries, None)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut outcomes = Vec::new();
    for &workload in &workloads {
        println!("\n── {} load: {} ──", workload.name(), workload.describe());
        println!("warming up each stack for {:?}…", options.warmup);
        let order = |duration| Order { workload, concurrency: options.concurrency, rate: options.rate, duration };
        for stack in &mut stacks {
            stack.warm_up(&order(options.warmup))?;
        }
        let mut rounds: Vec<Vec<Round>> = stacks.iter().map(|_| Vec::new()).collect();
        for round in 1..=options.rounds {
            for (index, stack) in stacks.iter_mut().enumerate() {
                if let Some(previous) = stack.round(&order(options.duration))? {
                    rounds[index].push(previous);
                }
            }
            if round > 1 {
                println!("{}", summary(&stacks, &rounds, round - 1));
            }
        }
        std::thread::sleep(SETTLE);
        for (index, stack) in stacks.iter_mut().enumerate() {
            rounds[index].extend(stack.finish()?);
        }
        println!("{}", summary(&stacks, &rounds, options.rounds));
        for (stack, rounds) in stacks.iter().zip(rounds) {
            outcomes.push(Outcome::of(workload, stack.setup, rounds));
        }
    }

    let peak_rss_mib: BTreeMap<String, f64> = stacks
        .iter()
        .flat_map(|stack| {
            stack.services.iter().map(move |service| {
                (format!("{:?}.{}", stack.setup, service.name), cpu::peak_rss_kib(service.pid()) as f64 / 1024.0)
            })
        })
        .collect();
    let delivered = match stacks.iter().find(|stack| stack.setup == Setup::B) {
        Some(b) => spans_delivered(b)?,
        None => BTreeMap::new(),
    };
    drop(stacks);

    let ratios = report::ratios(&outcomes);
    let goals = report::goals(&ratios, &delivered);
    let heading = format!(
        "Machine: {machine}. Commit: {commit}. Build: {profile}. Load: {} clients{}, {} rounds of {:?} per setup and workload, after {:?} of warm-up.",
        options.concurrency,
        options.rate.map_or(String::new(), |rate| format!(" at {rate} req/s")),
        options.rounds,
        options.duration,
        options.warmup,
    );
    let markdown = report::markdown(&heading, &outcomes, &ratios, &delivered, &goals);
    println!("\n{markdown}");
    std::fs::write(out.join("bench.md"), &markdown)?;
    let json = json!({
        "schema": 2,
        "machine": machine,
        "commit": commit,
        "profile": profile,
        "options": {
            "setups": setups, "workloads": workloads, "rounds": options.rounds, "round_s": options.duration.as_secs_f64(),
            "warmup_s": options.warmup.as_secs_f64(), "concurrency": options.concurrency, "rate": options.rate,
        },
        "outcomes": outcomes,
        "ratios": ratios,
        "spans_delivered": delivered,
        "peak_rss_mib": peak_rss_mib,
        "goals": goals,
    });
    std::fs::write(out.join("bench.json"), serde_json::to_string_pretty(&json)?)?;
    println!("Written to {} (bench.md, bench.json)", out.display());
    Ok(())
}

/// One line of progress: round `n` of each setup.
fn summary(stacks: &[Stack], rounds: &[Vec<Round>], n: usize) -> String {
    let parts: Vec<String> = stacks
        .iter()
        .zip(rounds)
        .filter_map(|(stack, rounds)| {
            let round = rounds.get(n - 1)?;
            Some(format!(
                "{:?} {:.0} req/s, {:.0} + {:.0} µs CPU/request",
                stack.setup,
                round.requests_per_second,
                round.cpu_us_per_request["apiserver"],
                round.cpu_us_per_request["todomanager"]
            ))
        })
        .collect();
    format!("round {n}: {}", parts.join("; "))
}

/// Stops B's services (stopping flushes their last spans), then counts what its store holds.
fn spans_delivered(b: &Stack) -> anyhow::Result<BTreeMap<String, Delivered>> {
    for name in ["apiserver", "todomanager"] {
        if let Some(service) = b.services.iter().find(|service| service.name == name) {
            service.stop()?;
        }
    }
    let stats: serde_json::Value = reqwest::blocking::get(format!("http://{}/api/stats", b.at.traces))
        .and_then(reqwest::blocking::Response::json)
        .context("reading the trace store's counts")?;
    // Every answered request makes two spans in each service (server + client call, server +
    // database). todomanager also writes the history of the writes, in batches of its own
    // timing (history.rs): each batch that arrived is two spans more (the batch, its INSERT).
    let expected = 2 * b.answered;
    let jaeger = crate::jaeger::Jaeger::new(&format!("http://{}", b.at.traces))?;
    let since = std::time::SystemTime::now() - Duration::from_secs(24 * 3600);
    let search = crate::jaeger::Search {
        limit: 100_000,
        ..crate::jaeger::Search::of("todomanager", Some("history-write"), since)
    };
    let batches = jaeger.search(&search)?.len() as u64;
    Ok(["apiserver", "todomanager"]
        .into_iter()
        .map(|service| {
            let expected = if service == "todomanager" { expected + 2 * batches } else { expected };
            (service.to_owned(), Delivered { delivered: stats["spans"][service].as_u64().unwrap_or(0), expected })
        })
        .collect())
}

/// What was measured: the commit (`-dirty` with changes not committed), or the folder given.
fn commit(options: &Options) -> String {
    match &options.binaries {
        Some(dir) => format!("binaries from {}", dir.display()),
        None => duct::cmd!("git", "describe", "--always", "--dirty").dir(project::root()).read().unwrap_or_default(),
    }
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
