//! `cargo xtask`: the workshop's automation. Every external command it runs is written out in
//! one place, with `duct`, and printed before it runs, so you can see (and copy) what happens.

mod certs;
mod cluster;
mod doctor;
mod expect;
mod jaeger;
mod lint;
mod local;
mod plan;
mod processes;
mod project;
mod trace;
mod verify;
mod waterfall;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Automation for the Traces of Your Microservices workshop")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the workshop's stack: in minikube, or with --local as processes on this machine.
    Up(UpArgs),
    /// Check the tools and resources cluster mode needs.
    Doctor,
    /// Show what runs in the workshop's cluster.
    Status(cluster::Options),
    /// Rebuild the app's images and roll them out (after a code change).
    Images(cluster::Options),
    /// Remove the workshop from the cluster (or the whole minikube profile).
    Down(cluster::DownOptions),
    /// Check that the traces look the way the chapters say they do.
    Verify(verify::Options),
    /// Show one trace as a waterfall in the terminal.
    Trace(trace::Options),
    /// Check the cluster packaging: Dockerfile, Helm chart, config/ (helm lint where installed).
    Lint,
}

#[derive(clap::Args)]
struct UpArgs {
    /// Run everything as processes on this machine (no Docker, no Kubernetes).
    #[arg(long)]
    local: bool,

    #[command(flatten)]
    local_options: local::Options,

    #[command(flatten)]
    cluster_options: cluster::Options,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Up(args) if args.local => local::up(&args.local_options),
        Command::Verify(options) => verify::run(&options),
        Command::Trace(options) => trace::run(&options),
        Command::Lint => lint::run(),
        Command::Up(args) => cluster::up(&args.cluster_options),
        Command::Doctor => doctor::run(),
        Command::Status(options) => cluster::status(&options),
        Command::Images(options) => cluster::images(&options),
        Command::Down(options) => cluster::down(&options),
    }
}
