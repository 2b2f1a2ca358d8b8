//! `cargo xtask`: the workshop's automation. Every external command it runs is written out in
//! one place, with `duct`, and printed before it runs, so you can see (and copy) what happens.

mod local;
mod processes;
mod project;

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
}

#[derive(clap::Args)]
struct UpArgs {
    /// Run everything as processes on this machine (no Docker, no Kubernetes).
    #[arg(long)]
    local: bool,

    #[command(flatten)]
    local_options: local::Options,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Up(args) if args.local => local::up(&args.local_options),
        Command::Up(_) => anyhow::bail!(
            "cluster mode (minikube, Linkerd, Jaeger) is not available yet; run `cargo xtask up --local` \
             to start the services on this machine"
        ),
    }
}
