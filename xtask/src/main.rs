//! `cargo xtask`: the workshop's automation. Every external command it runs is written out in
//! one place, with `duct`, and printed before it runs, so you can see (and copy) what happens.

// The commands, one module each (`up` is `local` with --local, `cluster` without).
mod answer;
mod bench;
mod book;
mod chapters;
mod cluster; // up, doctor, status, images, down, versions
mod exercise;
mod lint;
mod local; // up --local, service
mod logs;
mod search;
mod tools;
mod trace;
mod verify;

// What they share.
mod support;
use support::{expect, jaeger, path, processes, progress, project, steps, waterfall};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Automation for the Traces of Your Microservices workshop")]
pub struct Cli {
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
    /// Rebuild the app's images and roll them out (after a code change); with --provider bare, write every image and import it into the node.
    Images(cluster::Options),
    /// Remove the workshop from the cluster (or the whole minikube profile).
    Down(cluster::DownOptions),
    /// Check that the traces look the way the chapters say they do.
    Verify(verify::Options),
    /// Show one trace as a waterfall in the terminal (--details: every span in full; --compare: two side by side).
    Trace(trace::Options),
    /// Find traces: errors only, slower than a duration, by operation or attribute.
    Search(search::Options),
    /// The log lines of one trace from every local service, in time order (or find lines by text).
    Logs(logs::Options),
    /// The chapters' questions about your traces: answer one, and it is checked against them.
    Answer(answer::Options),
    /// Stop or start one service of a running `up --local`; the others keep running.
    Service(local::service::Options),
    /// Measure what tracing costs: the same load with tracing off, on, and with a dead collector.
    Bench(bench::Options),
    /// The chapters, and which ones are verified.
    Chapters,
    /// Hands-on exercises: take a piece of tracing out, write it back, check it on real traces.
    Exercise(exercise::Options),
    /// Render the chapters as an HTML book (needs mdbook).
    Book,
    /// Check the cluster packaging: Dockerfile, Helm chart, config/ (with the real tools where installed).
    Lint(lint::Options),
    /// Build the real Jaeger, OpenTelemetry Collector and Helm 3 and 4 from their Go modules.
    Tools(tools::Options),
    /// The chart and image versions cluster mode installs (from config/versions.toml).
    Versions {
        /// Print the table of docs/cluster.md.
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(clap::Args)]
struct UpArgs {
    /// Run everything as processes on this machine (no Docker, no Kubernetes).
    #[arg(long)]
    local: bool,

    /// Bring the stack to the state of the end of chapter N (locally 0–8, in the cluster 9–11).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=cluster::LAST_CHAPTER as i64))]
    chapter: Option<u32>,

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
        Command::Up(args) if args.local => local::up(&args.local_options, args.chapter),
        Command::Verify(options) => verify::run(&options),
        Command::Trace(options) => trace::run(&options),
        Command::Search(options) => search::run(&options),
        Command::Logs(options) => logs::run(&options),
        Command::Answer(options) => answer::run(&options),
        Command::Lint(options) => lint::run(&options),
        Command::Tools(options) => tools::run(&options),
        Command::Service(options) => local::service::run(&options),
        Command::Chapters => chapters::run(),
        Command::Exercise(options) => exercise::run(&options),
        Command::Bench(options) => bench::run(&options),
        Command::Book => book::run(),
        Command::Up(mut args) => {
            if let Some(chapter) = args.chapter {
                anyhow::ensure!(
                    chapter >= project::FIRST_CLUSTER_CHAPTER,
                    "chapters 0–8 run on this machine: cargo xtask up --local --chapter {chapter}"
                );
            }
            args.cluster_options.chapter = args.chapter;
            args.cluster_options.check = args.local_options.check;
            cluster::up(&args.cluster_options)
        }
        Command::Doctor => cluster::doctor::run(),
        Command::Status(options) => cluster::status(&options),
        Command::Images(options) => cluster::images(&options),
        Command::Down(options) => cluster::down(&options),
        Command::Versions { markdown } => cluster::versions::print(markdown),
    }
}
