//! `cargo xtask up --local`: the workshop's services as processes on this machine.

pub mod real_stack;
pub mod service;

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    processes::{self, Service, Services},
    project::{self, FIRST_CLUSTER_CHAPTER},
    verify,
};

/// The first chapter whose stack has failure injection on (finding the failing request).
const FAULTS_FROM: u32 = 5;

/// Failure injection, as the services read it: always there for the requests that ask for a
/// fault (X-Inject-Fault, as the chapters' checks do); at random only when `random`, drawn from
/// `seed` if one is given. Otherwise the rates are 0: no request fails by chance.
pub fn faults_env(random: bool, seed: Option<u64>) -> Vec<(&'static str, String)> {
    let mut env = vec![("INJECT_FAILURES", "true".to_owned())];
    if !random {
        env.extend(["FAILURE_RATE", "DELAY_RATE", "SLOW_LIST_RATE"].map(|rate| (rate, "0".to_owned())));
    }
    env.extend(seed.map(|seed| ("FAULT_SEED", seed.to_string())));
    env
}

/// How long a service may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(clap::Args)]
#[group(skip)]
#[command(next_help_heading = "Local mode (--local)")]
pub struct Options {
    /// Port of apiserver's REST API.
    #[arg(long, default_value_t = 8080)]
    api_port: u16,

    /// Port of todomanager's gRPC service.
    #[arg(long, default_value_t = 8090)]
    todomanager_port: u16,

    /// Port of apiserver's /debug/tracez page.
    #[arg(long, default_value_t = 8081)]
    api_tracez_port: u16,

    /// Port of todomanager's /debug/tracez page.
    #[arg(long, default_value_t = 8091)]
    todomanager_tracez_port: u16,

    /// Port of the trace store's Jaeger API v3 and trace pages.
    #[arg(long, default_value_t = 16686)]
    traces_port: u16,

    /// Port of the trace store's OTLP/gRPC receiver (the services export here).
    #[arg(long, default_value_t = 4317)]
    otlp_port: u16,

    /// Port of the trace store's OTLP/HTTP receiver.
    #[arg(long, default_value_t = 4318)]
    otlp_http_port: u16,

    /// Start, verify the chapters reached, stop (locally: the services; in the cluster: the
    /// port-forwards, the cluster and the workshop stay), and exit with the verification's
    /// result (for scripts and CI).
    #[arg(long)]
    pub check: bool,

    /// Folder for the local state: the SQLite database and the services' logs
    /// [default: .state/local in the checkout].
    #[arg(long)]
    state_dir: Option<PathBuf>,

    /// Use the service binaries already built next to xtask instead of running `cargo build`.
    #[arg(long)]
    no_build: bool,

    /// Turn failure injection on: about one request in ten fails with 500, one in ten is
    /// 100 ms slower (apiserver's --failure-rate and --delay-rate), for the chapters on reading
    /// traces.
    #[arg(long)]
    faults: bool,

    /// With --faults: which requests fail follows from this seed and the order of the
    /// requests, so a run can be repeated.
    #[arg(long)]
    fault_seed: Option<u64>,

    /// With --stack real: the collector samples whole traces (config/local/tail-sampling.yaml):
    /// it keeps every trace with an error, every slow one, and a tenth of the rest.
    #[arg(long)]
    tail_sampling: bool,

    /// Where the spans go: the workshop's own trace store, or the real OpenTelemetry Collector
    /// and Jaeger v2 as the cluster runs them (build them first: `cargo xtask tools install`).
    #[arg(long, value_enum, default_value_t = Stack::Store)]
    stack: Stack,
}

/// What receives the services' spans and answers the query API on `--traces-port`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    /// The trace store (services/tracestore): needs nothing but Rust.
    Store,
    /// The real OpenTelemetry Collector (OTLP on --otlp-port, the cluster's pipeline) in front of
    /// the real Jaeger v2 (API v3 on --traces-port).
    Real,
}

/// The addresses of everything local mode runs, all on 127.0.0.1.
pub struct Addresses {
    pub api: SocketAddr,
    pub api_tracez: SocketAddr,
    pub todomanager: SocketAddr,
    pub todomanager_tracez: SocketAddr,
    pub traces: SocketAddr,
    pub otlp: SocketAddr,
    pub otlp_http: SocketAddr,
}

impl Addresses {
    /// The verification of the stack that `up --local` (or an exercise's check) started here.
    pub fn verification(&self, up_to: Option<u32>, timeout: Duration) -> verify::Options {
        verify::Options {
            chapter: None,
            chapters: None,
            mode: crate::expect::Mode::Local,
            api: format!("http://{}", self.api),
            host: None,
            tracez: vec![
                format!("apiserver=http://{}", self.api_tracez),
                format!("todomanager=http://{}", self.todomanager_tracez),
            ],
            up_to,
            jaeger: format!("http://{}", self.traces),
            timeout,
            logs: None,
            mesh: crate::expect::Mesh::On,
        }
    }

    /// Ports nobody uses right now (for the benchmark's stacks).
    pub fn free() -> anyhow::Result<Self> {
        let free = ports::free_address;
        Ok(Self {
            api: free()?,
            api_tracez: free()?,
            todomanager: free()?,
            todomanager_tracez: free()?,
            traces: free()?,
            otlp: free()?,
            otlp_http: free()?,
        })
    }

    fn of(options: &Options) -> Self {
        // Claimed: the real stack's internal ports, chosen later, must not be one of these.
        let local = |port| ports::claim(SocketAddr::from(([127, 0, 0, 1], port)));
        Self {
            api: local(options.api_port),
            api_tracez: local(options.api_tracez_port),
            todomanager: local(options.todomanager_port),
            todomanager_tracez: local(options.todomanager_tracez_port),
            traces: local(options.traces_port),
            otlp: local(options.otlp_port),
            otlp_http: local(options.otlp_http_port),
        }
    }

    fn ensure_free(&self) -> anyhow::Result<()> {
        ensure_port_free(self.api, "--api-port")?;
        ensure_port_free(self.api_tracez, "--api-tracez-port")?;
        ensure_port_free(self.todomanager, "--todomanager-port")?;
        ensure_port_free(self.todomanager_tracez, "--todomanager-tracez-port")?;
        ensure_port_free(self.traces, "--traces-port")?;
        ensure_port_free(self.otlp, "--otlp-port")?;
        ensure_port_free(self.otlp_http, "--otlp-http-port")
    }
}

pub fn up(options: &Options, chapter: Option<u32>) -> anyhow::Result<()> {
    processes::stop_on_signal()?;
    let at = Addresses::of(options);
    at.ensure_free()?;
    anyhow::ensure!(
        !options.tail_sampling || options.stack == Stack::Real,
        "--tail-sampling is the real collector's: add --stack real (build the tools first: cargo xtask tools install)"
    );
    if options.stack == Stack::Real {
        // Before the build: a missing tool is known at once.
        crate::tools::require(crate::tools::JAEGER)?;
        crate::tools::require(crate::tools::COLLECTOR)?;
    }
    if !options.no_build {
        build_services(false, &[])?;
    }
    let state = options.state_dir.clone().unwrap_or_else(|| project::root().join(".state/local"));
    let logs = state.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let database_url = format!("sqlite://{}?mode=rwc", absolute(&state)?.join("todo.db").display());
    if let Some(chapter) = chapter {
        println!("Bringing the stack to the end of chapter {chapter}.");
        if chapter >= FIRST_CLUSTER_CHAPTER {
            println!("(Chapters 9–11 are about the cluster; locally you get everything up to chapter 8.)");
        }
    }
    crate::progress::Progress::record_reached(chapter);
    // Before the chapters instrument them, tracing is off (the standard OTEL_SDK_DISABLED):
    // apiserver's from chapter 2 on, todomanager's from 3. Spans go to the store in batches
    // every half second, so that a trace shows up right after its request.
    let off_before = |from: u32| chapter.is_some_and(|chapter| chapter < from);
    let mut env = vec![("OTEL_BSP_SCHEDULE_DELAY", "500".to_owned())];
    // From the chapter on failing and slow requests on, failures are part of the lesson.
    let faults =
        options.faults || chapter.is_some_and(|chapter| (FAULTS_FROM..FIRST_CLUSTER_CHAPTER).contains(&chapter));
    anyhow::ensure!(
        faults || options.fault_seed.is_none(),
        "--fault-seed chooses which requests fail: it needs failure injection (--faults, or --chapter 5–8)"
    );
    if faults {
        println!("Failure injection is on: about one request in ten fails, one in ten is slow.");
    }
    env.extend(faults_env(faults, options.fault_seed));
    let mut services = start_stack(&Launch {
        binaries: &project::binaries_dir(),
        at: &at,
        logs: &logs,
        database_url: &database_url,
        traces: Traces::To(options.stack),
        tracing: Tracing { todomanager: !off_before(3), apiserver: !off_before(2) },
        env: &env,
        under: None,
        tail_sampling: options.tail_sampling,
    })?;

    // From now on `cargo xtask service stop|start` can talk to this run.
    let control = crate::local::service::Control::in_state(&state);
    control.reset()?;
    for service in services.iter() {
        control.record_pid(service.name, service.pid())?;
    }
    print_summary(&at, &database_url, &services, options.stack);
    let verification =
        verify::Options { logs: Some(logs.clone()), ..at.verification(chapter, Duration::from_secs(30)) };
    // A service stopped meanwhile (`cargo xtask service stop`) is reported; the rest go on.
    let mut supervisor = crate::local::service::Supervisor::default();
    let watch = || supervisor.step(&mut services, &control);
    let Some(verified) = verify::while_watching(watch, verification)? else {
        return Ok(()); // Ctrl-C during the verification
    };
    if options.check {
        services.stop_all();
        anyhow::ensure!(verified?, "verification failed: see the ✗ above");
        return Ok(());
    }
    verify::say(verified, "The stack runs");
    println!("To watch a failure, stop one service and start it again: cargo xtask service stop todomanager");
    let outcome = crate::local::service::supervise(&mut services, &control, supervisor);
    services.stop_all();
    outcome
}

/// What to start: where, from which binaries, with which tracing.
pub struct Launch<'a> {
    pub binaries: &'a Path,
    pub at: &'a Addresses,
    pub logs: &'a Path,
    pub database_url: &'a str,
    /// What receives the spans.
    pub traces: Traces,
    /// Which services run with tracing (`OTEL_SDK_DISABLED` for the others).
    pub tracing: Tracing,
    /// More environment, for every process.
    pub env: &'a [(&'a str, String)],
    /// One service run under another program (callgrind, for the bench's instruction counts).
    pub under: Option<Under<'a>>,
    /// With the real stack: the collector samples whole traces (`--tail-sampling`).
    pub tail_sampling: bool,
}

/// What receives the services' spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traces {
    /// The stack of `--stack`: the trace store, or the real collector and Jaeger.
    To(Stack),
    /// Nothing: the services export to `at.otlp` all the same, where nothing listens (the
    /// bench's setup C, whose exporter fails every batch).
    Nowhere,
}

/// Which services trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracing {
    pub todomanager: bool,
    pub apiserver: bool,
}

impl Tracing {
    pub const ON: Tracing = Tracing { todomanager: true, apiserver: true };
}

/// A service started under another program: `program ARGS… SERVICE-BINARY`.
#[derive(Clone, Copy, Debug)]
pub struct Under<'a> {
    pub service: &'a str,
    pub program: &'a str,
    pub args: &'a [String],
}

/// Starts what receives the spans (if asked), todomanager and apiserver, wired to each other,
/// and waits until each is ready.
pub fn start_stack(launch: &Launch) -> anyhow::Result<Services> {
    let at = launch.at;
    let binary = |name: &str| service_binary(launch.binaries, name);
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let answers = |url: String| {
        let http = http.clone();
        move || http.get(&url).send().is_ok_and(|r| r.status().is_success())
    };
    let mut services = Services::default();
    if launch.traces == Traces::To(Stack::Real) {
        crate::local::real_stack::start(&mut services, at, launch.logs, launch.env, launch.tail_sampling)?;
    }
    if launch.traces == Traces::To(Stack::Store) {
        let store_env = [
            ("TRACESTORE_QUERY_LISTEN", at.traces.to_string()),
            ("TRACESTORE_OTLP_GRPC_LISTEN", at.otlp.to_string()),
            ("TRACESTORE_OTLP_HTTP_LISTEN", at.otlp_http.to_string()),
        ];
        services.add(Service::start(
            "tracestore",
            &binary("tracestore")?,
            &[&store_env[..], launch.env].concat(),
            launch.logs.join("tracestore.log"),
        )?);
        wait_until_ready(&services, "tracestore", answers(format!("http://{}/api/v3/services", at.traces)))?;
    }
    let tracing_env = |off: bool| {
        [("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", at.otlp)), ("OTEL_SDK_DISABLED", off.to_string())]
    };
    let todomanager_env = [
        ("TODOMANAGER_LISTEN", at.todomanager.to_string()),
        ("TRACEZ_LISTEN", at.todomanager_tracez.to_string()),
        ("DATABASE_URL", launch.database_url.to_owned()),
    ];
    services.add(start_service(
        launch,
        "todomanager",
        &binary("todomanager")?,
        &[&tracing_env(!launch.tracing.todomanager)[..], &todomanager_env, launch.env].concat(),
    )?);
    wait_until_ready(&services, "todomanager", || {
        TcpStream::connect_timeout(&at.todomanager, Duration::from_millis(500)).is_ok()
    })?;
    let apiserver_env = [
        ("APISERVER_LISTEN", at.api.to_string()),
        ("TRACEZ_LISTEN", at.api_tracez.to_string()),
        ("TODOMANAGER_URL", format!("http://{}", at.todomanager)),
    ];
    services.add(start_service(
        launch,
        "apiserver",
        &binary("apiserver")?,
        &[&tracing_env(!launch.tracing.apiserver)[..], &apiserver_env, launch.env].concat(),
    )?);
    wait_until_ready(&services, "apiserver", answers(format!("http://{}/ready", at.api)))?;
    Ok(services)
}

/// Starts one of the services, under `launch.under`'s program if it names this one.
fn start_service(
    launch: &Launch,
    name: &'static str,
    binary: &Path,
    env: &[(&str, String)],
) -> anyhow::Result<Service> {
    let log = launch.logs.join(format!("{name}.log"));
    match launch.under {
        Some(under) if under.service == name => {
            let args: Vec<&str> = under.args.iter().map(String::as_str).chain(binary.to_str()).collect();
            Service::start_with_args(name, Path::new(under.program), &args, env, log)
        }
        _ => Service::start(name, binary, env, log),
    }
}

/// `cargo build` for the services and the trace store (and `more` packages), in release mode if
/// asked, with cargo's own progress output.
pub fn build_services(release: bool, more: &[&str]) -> anyhow::Result<()> {
    let mut args = vec!["build", "--package", "tracestore", "--package", "todomanager", "--package", "apiserver"];
    for package in more {
        args.extend(["--package", package]);
    }
    if release {
        args.push("--release");
    }
    println!("$ cargo {}", args.join(" "));
    duct::cmd(project::cargo(), &args)
        .dir(project::root())
        .run()
        .context("building the services failed (see cargo's output above)")?;
    anyhow::ensure!(!processes::stop_requested(), "interrupted");
    Ok(())
}

fn service_binary(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name).with_extension(std::env::consts::EXE_EXTENSION);
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run without --no-build, or `cargo build --package {name}` first",
        path.display()
    );
    Ok(path)
}

fn ensure_port_free(address: SocketAddr, option: &str) -> anyhow::Result<()> {
    TcpListener::bind(address).map(drop).with_context(|| {
        format!(
            "port {port} is already in use (another `cargo xtask up --local`? see `ss -ltnp 'sport = :{port}'`); \
             stop what uses it or choose another port with {option}",
            port = address.port()
        )
    })
}

/// Polls `ready` with a spinner until it holds; fails when a service dies, the user
/// interrupts, or [`READY_TIMEOUT`] passes.
pub fn wait_until_ready(services: &Services, name: &str, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let spinner = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"))
        .with_message(format!("waiting for {name} to be ready"));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let started = Instant::now();
    while !ready() {
        services.check_running()?;
        anyhow::ensure!(!processes::stop_requested(), "interrupted");
        anyhow::ensure!(
            started.elapsed() < READY_TIMEOUT,
            "{name} was not ready within {READY_TIMEOUT:?}; see its log in {}",
            services.iter().last().map_or_else(String::new, |service| service.log.display().to_string())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let done = format!("✓ {name} is ready after {:.1?}", started.elapsed());
    if spinner.is_hidden() {
        println!("{done}"); // not a terminal: no spinner, but still a line in the output
    }
    spinner.finish_with_message(done);
    Ok(())
}

fn print_summary(at: &Addresses, database_url: &str, services: &Services, stack: Stack) {
    println!("\nThe workshop's services run on this machine.\n");
    println!("  REST API     http://{}/v1/todo", at.api);
    match stack {
        Stack::Store => println!("  traces       http://{}/  (Jaeger API v3 under /api/v3/)", at.traces),
        Stack::Real => {
            println!("  collector    {} (OTLP/gRPC), {} (OTLP/HTTP): the cluster's pipeline", at.otlp, at.otlp_http);
            // A jaeger built from its Go module has no UI: upstream builds the UI's assets
            // separately and embeds them only in release binaries.
            println!(
                "  Jaeger       http://{}/api/v3/  (API v3; this build has no UI: use cargo xtask trace)",
                at.traces
            );
        }
    }
    println!("  tracez       http://{}/debug/tracez (apiserver)", at.api_tracez);
    println!("               http://{}/debug/tracez (todomanager)", at.todomanager_tracez);
    println!("  todomanager  {} (gRPC)", at.todomanager);
    println!("  database     {database_url}");
    for service in services.iter() {
        println!("  {:<12} pid {}, log {}", service.name, service.pid(), service.log.display());
    }
    println!("\nTry it:");
    println!(
        "  curl -si -X POST -H 'Content-Type: application/json' -d '{{\"text\":\"Check tracing\"}}' http://{}/v1/todo",
        at.api
    );
    println!(
        "  cargo xtask trace --last{}\n",
        if at.traces.port() == 16686 { String::new() } else { format!(" --jaeger http://{}", at.traces) }
    );
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_happen_at_random_only_when_asked() {
        let env = |random, seed| -> Vec<String> {
            faults_env(random, seed).into_iter().map(|(name, value)| format!("{name}={value}")).collect()
        };
        assert_eq!(env(false, None), ["INJECT_FAILURES=true", "FAILURE_RATE=0", "DELAY_RATE=0", "SLOW_LIST_RATE=0"]);
        assert_eq!(env(true, Some(3)), ["INJECT_FAILURES=true", "FAULT_SEED=3"]);
    }
}
