//! `cargo xtask exercise`: hands-on exercises. Each one takes a piece of tracing out of the
//! finished services (catalog.rs); the learner writes it back, and `check` runs the real stack
//! and verifies the traces that arrive, as a chapter's `verify` does (check.rs), or, where the
//! answer is a test, runs it on the code and on breaks of it (tested.rs).
//!
//! The learner's work lives on a git branch of its own, `exercise/<name>` (git.rs): `start`
//! creates it with the piece taken out, `reset` goes back to where the learner was and keeps the
//! attempt on that branch.

pub mod catalog;
mod check;
mod git;
mod tested;

use anyhow::Context;

use crate::{
    progress::{ExerciseState, Progress, Started},
    project,
};
use catalog::Exercise;
use git::Git;

#[derive(clap::Args)]
pub struct Options {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// The exercises: name, chapter, status and goal.
    List,
    /// Start an exercise: a branch of your own, with the piece to write taken out (an exercise in
    /// progress is left first, its attempt kept on its branch).
    Start {
        /// The exercise (see `list`).
        name: String,
    },
    /// Build, run the stack and check the traces; fails until the exercise is solved.
    Check(check::Options),
    /// The next hint for the exercise in progress.
    Hint {
        /// Another exercise than the one in progress.
        name: Option<String>,
    },
    /// The diff that solves the exercise, to read or to apply with `git apply` (it then counts
    /// as "solution seen", not solved).
    Solution {
        /// Another exercise than the one in progress.
        name: Option<String>,
    },
    /// Back to where you were before `start`; your attempt stays on its branch.
    Reset,
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let exercises = catalog::load_all(&project::root().join("chapters"))?;
    match &options.command {
        Command::List => {
            list(&exercises);
            Ok(())
        }
        Command::Start { name } => start(catalog::find(&exercises, name)?),
        Command::Check(check_options) => check::run(&exercises, check_options),
        Command::Hint { name } => hint(chosen(&exercises, name.as_deref())?),
        Command::Solution { name } => solution(chosen(&exercises, name.as_deref())?),
        Command::Reset => reset(),
    }
}

/// The exercise named, or the one in progress.
fn chosen<'a>(exercises: &'a [Exercise], name: Option<&str>) -> anyhow::Result<&'a Exercise> {
    match name {
        Some(name) => catalog::find(exercises, name),
        None => {
            let started = in_progress()?
                .context("no exercise is in progress: start one with `cargo xtask exercise start NAME`, or name one")?;
            catalog::find(exercises, &started.name)
        }
    }
}

/// The exercise in progress, if the checkout is still on its branch (a learner who switched
/// branches by hand has left it).
fn in_progress() -> anyhow::Result<Option<Started>> {
    let Some(started) = Progress::load().exercise else { return Ok(None) };
    let git = Git::at(&project::root())?;
    if git.branch()? == Some(format!("exercise/{}", started.name)) {
        Ok(Some(started))
    } else {
        Progress::update(|progress| progress.exercise = None);
        Ok(None)
    }
}

fn list(exercises: &[Exercise]) {
    let progress = Progress::load();
    let current = progress.exercise.as_ref().map(|started| started.name.as_str());
    let width = exercises.iter().map(|exercise| exercise.name.len()).max().unwrap_or(0);
    for exercise in exercises {
        let status = match progress.exercise(&exercise.name) {
            _ if current == Some(exercise.name.as_str()) => "▶ started",
            state => state.mark(),
        };
        println!("{:<width$}  chapter {}  {status:<15}  {}", exercise.name, exercise.chapter, exercise.spec.goal);
    }
    let count = |state| exercises.iter().filter(|exercise| progress.exercise(&exercise.name) == state).count();
    let seen = match count(ExerciseState::SeenSolution) {
        0 => String::new(),
        seen => format!(" ({seen} more with the solution seen first: they do not count)"),
    };
    println!(
        "\n{} of {} solved{seen}. Start one: cargo xtask exercise start NAME",
        count(ExerciseState::Solved),
        exercises.len()
    );
}

/// Starts `exercise`: its own branch, the piece taken out. An exercise in progress is left
/// first, its attempt kept on its branch (as `reset` does).
pub(super) fn start(exercise: &Exercise) -> anyhow::Result<()> {
    let root = project::root();
    let git = Git::at(&root)?;
    if let Some(started) = in_progress()? {
        anyhow::ensure!(
            started.name != exercise.name,
            "{} is already started: you are on its branch. Check your work with `cargo xtask exercise check`.",
            exercise.name
        );
        println!("Leaving {} for {}.", started.name, exercise.name);
        leave(&started)?;
    }
    let changed = git.uncommitted()?;
    anyhow::ensure!(
        changed.is_empty(),
        "your work tree has changes that are not committed ({}). `start` switches branches: commit them \
         (git commit -am \"…\") or put them aside (git stash) first.",
        changed.join(", ")
    );
    let back_to = match git.branch()? {
        Some(branch) => branch,
        None => git.commit_of("HEAD")?,
    };
    let branch = exercise.branch();
    let subject = format!("exercise {}: take out the piece to write", exercise.name);
    if git.has_branch(&branch) {
        println!("You tried {} before: going on with your attempt on its branch.", exercise.name);
        git.switch(&branch)?;
    } else {
        anyhow::ensure!(
            git.applies(&exercise.patch()),
            "the exercise does not fit the code on {back_to}: its services differ from the workshop's. Start it \
             from the workshop's own branch (git switch main)."
        );
        git.switch_new(&branch)?;
        git.apply_and_commit(&exercise.patch(), &subject)?;
    }
    let start_commit = git.find_commit(&branch, &subject)?.with_context(|| {
        format!("the branch {branch} has no commit \"{subject}\": delete it (git branch -D {branch}) and start again")
    })?;
    let started = Started { name: exercise.name.clone(), back_to: back_to.clone(), start_commit, hints_shown: 0 };
    Progress::update(|progress| progress.exercise = Some(started));

    let readme = exercise.chapter_folder.join("README.md");
    println!("\n▶ {}: {}", exercise.name, exercise.spec.goal);
    println!("\n  Read first: {}, section \"{}\"", relative(&readme), exercise.spec.section);
    println!("  Then open:  {}", exercise.spec.open.join(", "));
    println!("  and find:   TODO(exercise {})", exercise.name);
    if !exercise.spec.compiles {
        println!("  (The code does not compile as it is: the compiler's errors are part of the exercise.)");
    }
    println!("\n  cargo xtask exercise check           builds, runs the stack, says what is still missing");
    println!("  cargo xtask exercise check --watch   the same, again whenever you save a file under services/,");
    println!("                                       and on to the next exercise once this one is solved");
    println!("  cargo xtask exercise hint            when you are stuck");
    println!("  cargo xtask exercise reset           back to {back_to}, your attempt kept on {branch}");
    Ok(())
}

pub(super) fn hint(exercise: &Exercise) -> anyhow::Result<()> {
    let hints = &exercise.spec.hints;
    let mut shown = 0;
    Progress::update(|progress| {
        if let Some(started) = progress.exercise.as_mut().filter(|started| started.name == exercise.name) {
            started.hints_shown = (started.hints_shown + 1).min(hints.len());
            shown = started.hints_shown;
        }
    });
    // Not in progress: the hints one after the other would need a counter; show the first.
    let shown = shown.max(1);
    for (number, hint) in hints.iter().enumerate().take(shown) {
        println!("Hint {} of {}: {hint}\n", number + 1, hints.len());
    }
    if shown < hints.len() {
        println!("(Still stuck? `cargo xtask exercise hint` again gives the next one.)");
    } else {
        println!("That was the last hint. The answer: cargo xtask exercise solution");
    }
    Ok(())
}

fn solution(exercise: &Exercise) -> anyhow::Result<()> {
    let git = Git::at(&project::root())?;
    let base = match Progress::load().exercise.filter(|started| started.name == exercise.name) {
        Some(started) => format!("{}^", started.start_commit),
        None => "HEAD".to_owned(),
    };
    let diff = git.undoing(&exercise.patch(), &base)?;
    let already = Progress::load().exercise(&exercise.name) == ExerciseState::Solved;
    Progress::record_solution_seen(&exercise.name);
    print!("{diff}");
    let counts = if already {
        "You had solved it already: it stays solved."
    } else {
        "From now on it counts as \"solution seen\", not solved, even once `check` passes."
    };
    eprintln!(
        "\n(The diff above solves {}. {counts}\nApply it to the unsolved code with:\n  \
         cargo xtask exercise solution | git apply\nIf you changed the same lines, put your changes aside first: \
         git stash.)",
        exercise.name
    );
    Ok(())
}

fn reset() -> anyhow::Result<()> {
    let Some(started) = in_progress()? else {
        println!("No exercise is in progress: nothing to reset.");
        return Ok(());
    };
    leave(&started)?;
    println!(
        "\nBack on {}. Your attempt: git diff {} exercise/{}\n`cargo xtask exercise start {}` goes on with it.",
        started.back_to, started.back_to, started.name, started.name
    );
    Ok(())
}

/// Saves the attempt on the exercise's branch and goes back to where the learner was.
fn leave(started: &Started) -> anyhow::Result<()> {
    let git = Git::at(&project::root())?;
    let branch = format!("exercise/{}", started.name);
    if git.commit_everything(&format!("exercise {}: my attempt", started.name))? {
        println!("Your attempt is saved on the branch {branch}.");
    }
    git.switch(&started.back_to)?;
    Progress::update(|progress| progress.exercise = None);
    Ok(())
}

/// The first exercise after `exercise` that the learner has not solved.
pub(super) fn next_to_do<'a>(exercises: &'a [Exercise], exercise: &Exercise) -> Option<&'a Exercise> {
    let progress = Progress::load();
    exercises
        .iter()
        .skip_while(|other| other.name != exercise.name)
        .skip(1)
        .find(|other| progress.exercise(&other.name) != ExerciseState::Solved)
}

/// `path` relative to the checkout, for messages.
fn relative(path: &std::path::Path) -> String {
    let root = project::root();
    path.strip_prefix(&root).unwrap_or(path).display().to_string()
}
