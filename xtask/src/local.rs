//! `cargo xtask up --local`: the workshop's services as processes on this machine.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    processes::{self, Service, Services},
    project,
};

/// How long a service may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(clap::Args)]
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

    /// Folder for the local state: the SQLite database and the services' logs
    /// [default: .state/local in the checkout].
    #[arg(long)]
    state_dir: Option<PathBuf>,

    /// Use the service binaries already built next to xtask instead of running `cargo build`.
    #[arg(long)]
    no_build: bool,
}

pub fn up(options: &Options) -> anyhow::Result<()> {
    processes::stop_on_signal()?;
    let api = SocketAddr::from(([127, 0, 0, 1], options.api_port));
    let todomanager = SocketAddr::from(([127, 0, 0, 1], options.todomanager_port));
    let api_tracez = SocketAddr::from(([127, 0, 0, 1], options.api_tracez_port));
    let todomanager_tracez = SocketAddr::from(([127, 0, 0, 1], options.todomanager_tracez_port));
    ensure_port_free(api, "--api-port")?;
    ensure_port_free(todomanager, "--todomanager-port")?;
    ensure_port_free(api_tracez, "--api-tracez-port")?;
    ensure_port_free(todomanager_tracez, "--todomanager-tracez-port")?;

    if !options.no_build {
        build_services()?;
    }
    let state = options.state_dir.clone().unwrap_or_else(|| project::root().join(".state/local"));
    let logs = state.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let database_url = format!("sqlite://{}?mode=rwc", absolute(&state)?.join("todo.db").display());

    let mut services = Services::default();
    services.add(Service::start(
        "todomanager",
        &service_binary("todomanager")?,
        &[
            ("TODOMANAGER_LISTEN", todomanager.to_string()),
            ("TRACEZ_LISTEN", todomanager_tracez.to_string()),
            ("DATABASE_URL", database_url.clone()),
        ],
        logs.join("todomanager.log"),
    )?);
    wait_until_ready(&services, "todomanager", || {
        TcpStream::connect_timeout(&todomanager, Duration::from_millis(500)).is_ok()
    })?;

    services.add(Service::start(
        "apiserver",
        &service_binary("apiserver")?,
        &[
            ("APISERVER_LISTEN", api.to_string()),
            ("TRACEZ_LISTEN", api_tracez.to_string()),
            ("TODOMANAGER_URL", format!("http://{todomanager}")),
        ],
        logs.join("apiserver.log"),
    )?);
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let ready_url = format!("http://{api}/ready");
    wait_until_ready(&services, "apiserver", || http.get(&ready_url).send().is_ok_and(|r| r.status().is_success()))?;

    print_summary(api, todomanager, [api_tracez, todomanager_tracez], &database_url, &services);
    let outcome = services.wait();
    services.stop_all();
    outcome
}

/// `cargo build` for both services, with cargo's own progress output.
fn build_services() -> anyhow::Result<()> {
    println!("$ cargo build --package todomanager --package apiserver");
    duct::cmd!(project::cargo(), "build", "--package", "todomanager", "--package", "apiserver")
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

fn print_summary(
    api: SocketAddr,
    todomanager: SocketAddr,
    [api_tracez, todomanager_tracez]: [SocketAddr; 2],
    database_url: &str,
    services: &Services,
) {
    println!("\nThe workshop's services run on this machine. Ctrl-C stops them.\n");
    println!("  REST API     http://{api}/v1/todo");
    println!("  todomanager  {todomanager} (gRPC)");
    println!("  tracez       http://{api_tracez}/debug/tracez (apiserver)");
    println!("               http://{todomanager_tracez}/debug/tracez (todomanager)");
    println!("  database     {database_url}");
    for service in services.iter() {
        println!("  {:<12} pid {}, log {}", service.name, service.pid(), service.log.display());
    }
    println!("\nTry it:");
    println!(
        "  curl -s -X POST -H 'Content-Type: application/json' -d '{{\"text\":\"Check tracing\"}}' http://{api}/v1/todo"
    );
    println!("  curl -s http://{api}/v1/todo\n");
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}
