//! `cargo xtask exercise check`: builds the services as they are in the work tree, starts the
//! whole local stack for this check alone (free ports, a fresh database) and verifies the
//! exercise's claims against the traces that arrive. `--watch` checks again on every save.

use std::{path::PathBuf, sync::mpsc, time::Duration};

use notify_debouncer_mini::{DebounceEventResult, new_debouncer, notify::RecursiveMode};

use super::catalog::Exercise;
use crate::{
    local::{self, Addresses, Launch, Stack, Traces, Tracing},
    processes,
    progress::{self, ExerciseState, Progress, Started},
    project, verify,
};

#[derive(clap::Args)]
pub struct Options {
    /// Check this exercise instead of the one in progress (on the code as it is).
    name: Option<String>,

    /// Check again whenever a file under services/ is saved, until the exercise is solved.
    #[arg(long)]
    watch: bool,

    /// How long to wait for each trace to be complete.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(PartialEq, Eq)]
enum Outcome {
    Solved,
    Unsolved,
    DoesNotCompile,
}

pub fn run(exercises: &[Exercise], options: &Options) -> anyhow::Result<()> {
    processes::stop_on_signal()?;
    let exercise = super::chosen(exercises, options.name.as_deref())?;
    if !options.watch {
        return match once(exercises, exercise, options)? {
            Outcome::Solved => Ok(()),
            Outcome::Unsolved => anyhow::bail!("{} is not solved yet", exercise.name),
            Outcome::DoesNotCompile => anyhow::bail!("{}: the code does not compile", exercise.name),
        };
    }
    let (sender, changes) = mpsc::channel::<DebounceEventResult>();
    let mut debouncer = new_debouncer(Duration::from_millis(300), sender)?;
    let services = project::root().join("services");
    debouncer.watcher().watch(&services, RecursiveMode::Recursive)?;
    loop {
        if once(exercises, exercise, options)? == Outcome::Solved {
            return Ok(());
        }
        println!("\nWatching {} for changes; Ctrl-C stops.", services.display());
        if !wait_for_a_save(&changes) {
            return Ok(());
        }
        println!("\n{}\n", "─".repeat(72));
    }
}

/// Waits until a source file is saved (true) or the user presses Ctrl-C (false).
fn wait_for_a_save(changes: &mpsc::Receiver<DebounceEventResult>) -> bool {
    let is_source = |path: &PathBuf| {
        let extension = path.extension().and_then(|extension| extension.to_str()).unwrap_or_default();
        ["rs", "toml", "proto", "sql"].contains(&extension)
            && !path.components().any(|part| part.as_os_str() == "target")
    };
    loop {
        if processes::stop_requested() {
            return false;
        }
        match changes.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(events)) if events.iter().any(|event| is_source(&event.path)) => return true,
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return false,
        }
    }
}

fn once(exercises: &[Exercise], exercise: &Exercise, options: &Options) -> anyhow::Result<Outcome> {
    println!("── Checking {}: {} ──\n", exercise.name, exercise.spec.goal);
    if local::build_services(false, &[]).is_err() {
        anyhow::ensure!(!processes::stop_requested(), "interrupted");
        println!("\n✗ The code does not compile: cargo's errors above say where and why.");
        println!("  Stuck? cargo xtask exercise hint");
        return Ok(Outcome::DoesNotCompile);
    }

    // A stack of its own: free ports (a running `up --local` is left alone) and a fresh
    // database (the claims count on it). Its logs stay for reading afterwards.
    let folder = progress::state_dir().join("exercises").join(&exercise.name);
    let logs = folder.join("logs");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&logs)?;
    let database_url = format!("sqlite://{}?mode=rwc", std::path::absolute(&folder)?.join("todo.db").display());
    let at = Addresses::free()?;
    let claims = exercise.claims()?;
    let mut services = local::start_stack(&Launch {
        binaries: &binaries(),
        at: &at,
        logs: &logs,
        database_url: &database_url,
        traces: Traces::To(Stack::Store),
        tracing: Tracing::ON,
        env: &[
            // Spans reach the store right after their request.
            vec![("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned())],
            // Failures happen only where a claim asks for one (X-Inject-Fault).
            local::faults_env(false, None),
        ]
        .concat(),
        under: None,
        tail_sampling: false,
    })?;
    let verification = verify::Options { logs: Some(logs.clone()), ..at.verification(None, options.timeout) };
    let solved = verify::claims(&verification, &claims);
    services.stop_all();
    if !solved? {
        println!("\n✗ Not solved yet: {}", exercise.spec.goal);
        println!("  The services' logs: {}", logs.display());
        println!("  Stuck? cargo xtask exercise hint");
        return Ok(Outcome::Unsolved);
    }
    println!("\n✓ Solved: {}", exercise.spec.goal);
    // Only the learner's own work counts: checking the finished code proves nothing.
    let started = super::in_progress().ok().flatten().filter(|started| started.name == exercise.name);
    if let Some(started) = &started {
        if Progress::record_solved(&exercise.name) == ExerciseState::SeenSolution {
            println!("  (You saw the solution before: recorded as \"solution seen\", not solved.)");
        }
        compare(exercise, started);
    }
    let started = started.is_some();
    let reset = if started { "cargo xtask exercise reset, then " } else { "" };
    let next = exercises.iter().skip_while(|other| other.name != exercise.name).nth(1);
    match next {
        Some(next) => println!("  Next: {reset}cargo xtask exercise start {} ({})", next.name, next.spec.goal),
        None if started => println!("  That was the last exercise. cargo xtask exercise reset takes you back."),
        None => println!("  That was the last exercise."),
    }
    Ok(Outcome::Solved)
}

/// The learner's change next to the reference solution, to compare: there is more than one
/// right answer, and the differences are worth a look.
fn compare(exercise: &Exercise, started: &Started) {
    let Ok(git) = super::git::Git::at(&project::root()) else { return };
    let (Ok(theirs), Ok(reference)) =
        (git.diff_since(&started.start_commit), git.undoing(&exercise.patch(), &format!("{}^", started.start_commit)))
    else {
        return;
    };
    println!("\n── Your change ──\n{}", theirs.trim_end());
    println!("\n── The reference solution ──\n{}", reference.trim_end());
}

/// Where `cargo build` puts the services: next to xtask, or under `CARGO_TARGET_DIR` when the
/// build was pointed there.
fn binaries() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(target) => PathBuf::from(target).join("debug"),
        None => project::binaries_dir(),
    }
}
