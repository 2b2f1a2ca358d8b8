//! `cargo xtask exercise check`: builds the services as they are in the work tree, starts the
//! whole local stack for this check alone (free ports, a fresh database) and verifies the
//! exercise's claims against the traces that arrive. `--watch` checks again on every save, goes
//! on to the next exercise once one is solved (as rustlings does), and takes `h` (a hint) and
//! `q` (quit) on its terminal.

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

    /// Check again whenever a file under services/ (or config/) is saved; once the exercise in progress is
    /// solved, start the next one and go on. Type h and Enter for a hint, q and Enter to stop.
    #[arg(long)]
    watch: bool,

    /// How long to wait for each trace to be complete.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(PartialEq, Eq)]
pub(super) enum Outcome {
    Solved,
    Unsolved,
    DoesNotCompile,
}

pub fn run(exercises: &[Exercise], options: &Options) -> anyhow::Result<()> {
    processes::stop_on_signal()?;
    let mut exercise = super::chosen(exercises, options.name.as_deref())?;
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
    // The collector's configuration, where an exercise is about it.
    debouncer.watcher().watch(&project::root().join("config"), RecursiveMode::Recursive)?;
    let typed = typed_lines();
    loop {
        if once(exercises, exercise, options)? == Outcome::Solved {
            let in_progress = super::in_progress()?.is_some_and(|started| started.name == exercise.name);
            let next = in_progress.then(|| super::next_to_do(exercises, exercise)).flatten();
            let Some(next) = next else { return Ok(()) };
            println!("\n{}\n\nOn to the next exercise.\n", "═".repeat(72));
            super::start(next)?;
            exercise = next;
            // Switching branches saved files: those are not the learner's saves. Check the new
            // exercise at once instead.
            std::thread::sleep(Duration::from_millis(600));
            while changes.try_recv().is_ok() {}
            println!("\n{}\n", "─".repeat(72));
            continue;
        }
        loop {
            println!("\nWatching {} for changes (h: a hint, q: stop).", services.display());
            match wait(&changes, &typed) {
                Wake::Saved => break,
                Wake::Hint => super::hint(exercise)?,
                Wake::Stop => return Ok(()),
            }
        }
        println!("\n{}\n", "─".repeat(72));
    }
}

/// What ends a wait in watch mode.
enum Wake {
    /// A source file was saved.
    Saved,
    /// The learner asked for a hint.
    Hint,
    /// Ctrl-C, `q`, or the end of the terminal's input.
    Stop,
}

/// The lines typed on the terminal, read on a thread of their own.
fn typed_lines() -> mpsc::Receiver<String> {
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Waits until a source file is saved, the learner types a command, or Ctrl-C.
fn wait(changes: &mpsc::Receiver<DebounceEventResult>, typed: &mpsc::Receiver<String>) -> Wake {
    let is_source = |path: &PathBuf| {
        let extension = path.extension().and_then(|extension| extension.to_str()).unwrap_or_default();
        ["rs", "toml", "proto", "sql", "yaml"].contains(&extension)
            && !path.components().any(|part| part.as_os_str() == "target")
    };
    loop {
        if processes::stop_requested() {
            return Wake::Stop;
        }
        // Without a terminal (input at its end), only saves and Ctrl-C count.
        if let Ok(line) = typed.try_recv() {
            match line.trim() {
                "h" | "H" => return Wake::Hint,
                "q" | "Q" => return Wake::Stop,
                _ => println!("(h and Enter: a hint; q and Enter: stop)"),
            }
        }
        match changes.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(events)) if events.iter().any(|event| is_source(&event.path)) => return Wake::Saved,
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Wake::Stop,
        }
    }
}

fn once(exercises: &[Exercise], exercise: &Exercise, options: &Options) -> anyhow::Result<Outcome> {
    println!("── Checking {}: {} ──\n", exercise.name, exercise.spec.goal);
    let outcome = match &exercise.spec.test {
        Some(test) => super::tested::check(exercise, test)?,
        None => traced(exercise, options)?,
    };
    match outcome {
        Outcome::Solved => {}
        Outcome::Unsolved => {
            println!("\n✗ Not solved yet: {}", exercise.spec.goal);
            if exercise.spec.test.is_none() {
                let logs = progress::state_dir().join("exercises").join(&exercise.name).join("logs");
                println!("  The services' logs: {}", logs.display());
            }
            println!("  Stuck? cargo xtask exercise hint");
            return Ok(outcome);
        }
        Outcome::DoesNotCompile => {
            println!("  Stuck? cargo xtask exercise hint");
            return Ok(outcome);
        }
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
    let next = super::next_to_do(exercises, exercise);
    match next {
        // In watch mode the next one starts by itself.
        Some(next) if !options.watch => {
            println!("\n  Next: cargo xtask exercise start {} ({})", next.name, next.spec.goal)
        }
        Some(_) => {}
        None if started.is_some() => {
            println!("\n  No exercise left to solve. cargo xtask exercise reset takes you back.")
        }
        None => println!("\n  No exercise left to solve."),
    }
    Ok(Outcome::Solved)
}

/// Builds the services, starts the stack and verifies the exercise's claims on its traces.
fn traced(exercise: &Exercise, options: &Options) -> anyhow::Result<Outcome> {
    if local::build_services(false, &[]).is_err() {
        anyhow::ensure!(!processes::stop_requested(), "interrupted");
        println!("\n✗ The code does not compile: cargo's errors above say where and why.");
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
        // The real collector where the exercise is its configuration.
        traces: Traces::To(if exercise.spec.tail_sampling { Stack::Real } else { Stack::Store }),
        tracing: Tracing::ON,
        env: &[
            // Spans reach the store right after their request.
            vec![("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned())],
            // Failures happen only where a claim asks for one (X-Inject-Fault).
            local::faults_env(false, None),
            // What the exercise is about (its exercise.toml).
            exercise.spec.env.iter().map(|(name, value)| (name.as_str(), value.clone())).collect(),
        ]
        .concat(),
        under: None,
        tail_sampling: exercise.spec.tail_sampling,
    })?;
    let verification = verify::Options { logs: Some(logs.clone()), ..at.verification(None, options.timeout) };
    // The services, not the trace store: what they flush on the way out must still arrive.
    let stop_services = || services.stop_these(&["apiserver", "todomanager"]);
    let solved = verify::claims(&verification, &claims, &stop_services);
    services.stop_all();
    Ok(if solved? { Outcome::Solved } else { Outcome::Unsolved })
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
