//! `cargo xtask`: the workshop's automation. Every external command it runs is written out in
//! one place, with `duct`, and printed before it runs, so you can see (and copy) what happens.

mod expect;
mod jaeger;
mod lint;
mod local;
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
    /// Start the workshop's stack.
    Up(UpArgs),
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
        Command::Up(_) => anyhow::bail!(
            "cluster mode (minikube, Linkerd, Jaeger) is not available yet; run `cargo xtask up --local` \
             to start the services on this machine"
        ),
    }
}
