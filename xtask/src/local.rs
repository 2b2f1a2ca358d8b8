//! `cargo xtask up --local`: the workshop's services as processes on this machine.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    expect::Mode,
    processes::{self, Service, Services},
    project, verify,
};

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

    /// Start, verify the chapters that apply locally, stop, and exit with the verification's
    /// result (for scripts and CI).
    #[arg(long)]
    check: bool,

    /// Folder for the local state: the SQLite database and the services' logs
    /// [default: .state/local in the checkout].
    #[arg(long)]
    state_dir: Option<PathBuf>,

    /// Use the service binaries already built next to xtask instead of running `cargo build`.
    #[arg(long)]
    no_build: bool,
}

/// The addresses of everything local mode runs, all on 127.0.0.1.
struct Addresses {
    api: SocketAddr,
    api_tracez: SocketAddr,
    todomanager: SocketAddr,
    todomanager_tracez: SocketAddr,
    traces: SocketAddr,
    otlp: SocketAddr,
    otlp_http: SocketAddr,
}

impl Addresses {
    fn of(options: &Options) -> Self {
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
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
    if !options.no_build {
        build_services()?;
    }
    let state = options.state_dir.clone().unwrap_or_else(|| project::root().join(".state/local"));
    let logs = state.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let database_url = format!("sqlite://{}?mode=rwc", absolute(&state)?.join("todo.db").display());
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let answers = |url: String| {
        let http = http.clone();
        move || http.get(&url).send().is_ok_and(|r| r.status().is_success())
    };

    let mut services = Services::default();
    services.add(Service::start(
        "tracestore",
        &service_binary("tracestore")?,
        &[
            ("TRACESTORE_QUERY_LISTEN", at.traces.to_string()),
            ("TRACESTORE_OTLP_GRPC_LISTEN", at.otlp.to_string()),
            ("TRACESTORE_OTLP_HTTP_LISTEN", at.otlp_http.to_string()),
        ],
        logs.join("tracestore.log"),
    )?);
    wait_until_ready(&services, "tracestore", answers(format!("http://{}/api/v3/services", at.traces)))?;

    // Both services send their spans to the store, in batches every half second, so that a
    // trace shows up right after its request. Before the chapters instrument them, tracing is
    // off (the standard OTEL_SDK_DISABLED): apiserver from chapter 2 on, todomanager from 3.
    let otlp_endpoint = format!("http://{}", at.otlp);
    let tracing_env = |from_chapter: u32| {
        let disabled = chapter.is_some_and(|chapter| chapter < from_chapter);
        [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_endpoint.clone()),
            ("OTEL_BSP_SCHEDULE_DELAY", "500".to_owned()),
            ("OTEL_SDK_DISABLED", disabled.to_string()),
        ]
    };
    if let Some(chapter) = chapter {
        println!("Bringing the stack to the end of chapter {chapter}.");
        if chapter >= crate::cluster::FIRST_CLUSTER_CHAPTER {
            println!("(Chapters 5–7 are about the cluster; locally you get everything up to chapter 4.)");
        }
    }
    crate::progress::Progress::record_reached(chapter);
    services.add(Service::start(
        "todomanager",
        &service_binary("todomanager")?,
        &[
            &tracing_env(3)[..],
            &[
                ("TODOMANAGER_LISTEN", at.todomanager.to_string()),
                ("TRACEZ_LISTEN", at.todomanager_tracez.to_string()),
                ("DATABASE_URL", database_url.clone()),
            ],
        ]
        .concat(),
        logs.join("todomanager.log"),
    )?);
    wait_until_ready(&services, "todomanager", || {
        TcpStream::connect_timeout(&at.todomanager, Duration::from_millis(500)).is_ok()
    })?;

    services.add(Service::start(
        "apiserver",
        &service_binary("apiserver")?,
        &[
            &tracing_env(2)[..],
            &[
                ("APISERVER_LISTEN", at.api.to_string()),
                ("TRACEZ_LISTEN", at.api_tracez.to_string()),
                ("TODOMANAGER_URL", format!("http://{}", at.todomanager)),
            ],
        ]
        .concat(),
        logs.join("apiserver.log"),
    )?);
    wait_until_ready(&services, "apiserver", answers(format!("http://{}/ready", at.api)))?;

    print_summary(&at, &database_url, &services);
    let verification = verify::Options {
        chapter: None,
        chapters: None,
        mode: Mode::Local,
        api: format!("http://{}", at.api),
        host: None,
        tracez: vec![
            format!("apiserver=http://{}", at.api_tracez),
            format!("todomanager=http://{}", at.todomanager_tracez),
        ],
        up_to: chapter,
        jaeger: format!("http://{}", at.traces),
        timeout: Duration::from_secs(30),
    };
    let Some(verified) = verify::while_watching(&services, verification)? else {
        return Ok(()); // Ctrl-C during the verification
    };
    if options.check {
        services.stop_all();
        anyhow::ensure!(verified?, "verification failed: see the ✗ above");
        return Ok(());
    }
    verify::then_wait(services, verified, "The stack runs")
}

/// `cargo build` for the services and the trace store, with cargo's own progress output.
fn build_services() -> anyhow::Result<()> {
    println!("$ cargo build --package tracestore --package todomanager --package apiserver");
    duct::cmd!(
        project::cargo(),
        "build",
        "--package",
        "tracestore",
        "--package",
        "todomanager",
        "--package",
        "apiserver"
    )
    .dir(project::root())
    .run()
    .context("building the services failed (see cargo's output above)")?;
    anyhow::ensure!(!processes::stop_requested(), "interrupted");
    Ok(())
}

fn service_binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = project::binaries_dir().join(name).with_extension(std::env::consts::EXE_EXTENSION);
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
fn wait_until_ready(services: &Services, name: &str, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
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

fn print_summary(at: &Addresses, database_url: &str, services: &Services) {
    println!("\nThe workshop's services run on this machine.\n");
    println!("  REST API     http://{}/v1/todo", at.api);
    println!("  traces       http://{}/  (Jaeger API v3 under /api/v3/)", at.traces);
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
