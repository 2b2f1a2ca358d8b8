//! Every exercise, the way a learner goes through it, in a copy of this checkout (a git
//! repository of its own, so the real one is never switched): `start` takes the piece out on a
//! branch; `check` on that code fails with the exercise's diagnosis (or the compiler's errors);
//! `hint` helps; the learner writes the answer (here: the start patch undone) and `check`
//! passes, records it as solved and shows the reference next to it; `solution | git apply`
//! gives back exactly the finished code; `reset` returns to where the learner was, keeping the
//! attempt. Seeing the solution before solving makes an exercise "solution seen", not solved.
//! Each exercise's decoys (plausible wrong answers) are applied to the unsolved code in turn,
//! and `check` must reject each one, saying what its `says` names. A change to the services that
//! makes an exercise stale (its patch no longer applies, or the unsolved code no longer fails
//! the way the exercise says) fails here.
//!
//! The copy builds into a target folder of its own (target/tmp/exercises-target): the first run
//! compiles the dependencies once more (a few minutes), later runs only what an exercise
//! changes.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use serde::Deserialize;

mod exercise_folders;

#[derive(Deserialize)]
struct Spec {
    goal: String,
    diagnosis: String,
    #[serde(default = "yes")]
    compiles: bool,
    open: Vec<String>,
    #[serde(default, rename = "decoy")]
    decoys: Vec<Decoy>,
    /// Its check runs the real collector and Jaeger (`cargo xtask tools install`).
    #[serde(default)]
    tail_sampling: bool,
}

/// A plausible wrong answer, and what `check` must say of it.
#[derive(Deserialize)]
struct Decoy {
    patch: String,
    says: String,
}

fn yes() -> bool {
    true
}

struct Exercise {
    name: String,
    folder: PathBuf,
    spec: Spec,
}

/// The exercises as the catalog lays them out: chapters/NN-*/exercises/NN-name/exercise.toml.
fn exercises(root: &Path) -> Vec<Exercise> {
    exercise_folders::exercise_folders(root)
        .into_iter()
        .map(|folder| {
            let text = std::fs::read_to_string(folder.join("exercise.toml")).unwrap();
            let folder_name = folder.file_name().unwrap().to_str().unwrap();
            let name = folder_name.split_once('-').unwrap().1.to_owned();
            Exercise { name, spec: toml::from_str(&text).unwrap(), folder }
        })
        .collect()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@localhost"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// This checkout's files as they are now (committed or not, ignored ones left out), committed
/// on `main` in a new repository.
fn copy_of_the_checkout(into: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let files = git(root, &["ls-files", "--cached", "--others", "--exclude-standard", "-z"]);
    for file in files.split('\0').filter(|file| !file.is_empty()) {
        let from = root.join(file);
        if !from.is_file() {
            continue; // deleted in the work tree
        }
        let to = into.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    git(into, &["init", "--quiet", "--initial-branch=main"]);
    git(into, &["add", "--all"]);
    git(into, &["commit", "--quiet", "--message", "the workshop"]);
}

/// The tests that build share one target folder, where cargo puts each binary at one path
/// (`debug/apiserver`) whichever copy it was built from: they take turns.
static ONE_BUILD_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_BUILD_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A copy of the checkout in a folder of its own (removed when dropped).
fn a_copy() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    copy_of_the_checkout(copy.path());
    copy
}

/// `cargo xtask exercise …` in the copy, to run.
fn exercise_command(copy: &Path, args: &[&str]) -> Command {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("exercises-target");
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .arg("exercise")
        .args(args)
        .current_dir(copy)
        .env("WORKSHOP_ROOT", copy)
        .env("WORKSHOP_STATE_DIR", copy.join(".state"))
        .env("CARGO_TARGET_DIR", target)
        .env("NO_COLOR", "1");
    command
}

/// `cargo xtask exercise …` in the copy, run to its end.
fn exercise(copy: &Path, args: &[&str]) -> Output {
    exercise_command(copy, args).output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn every_exercise_fails_unsolved_and_passes_solved() {
    let _turn = take_turn();
    let copy = a_copy();
    let copy = copy.path();
    let exercises = exercises(copy);
    assert!(exercises.len() >= 8, "the workshop promises at least eight exercises");
    let without: Vec<&str> =
        exercises.iter().filter(|one| one.spec.decoys.is_empty()).map(|one| one.name.as_str()).collect();
    assert!(without.is_empty(), "every exercise has a plausible wrong answer that check rejects; not: {without:?}");

    let listed = text(&exercise(copy, &["list"]));
    for one in &exercises {
        assert!(listed.contains(&one.name) && listed.contains(&one.spec.goal), "{listed}");
    }

    // The real collector and Jaeger, for the exercises whose check runs them: this checkout's
    // tools, seen from the copy. Without them those exercises are skipped, loudly (a failure in CI).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let tools = testkit::real::tools(&["jaeger", "otelcol-workshop"], "the exercises that run the real collector");
    if tools {
        std::fs::create_dir_all(copy.join(".state")).unwrap();
        std::os::unix::fs::symlink(root.join(".state/tools"), copy.join(".state/tools")).unwrap();
    }
    let mut stale = Vec::new();
    let mut skipped = 0;
    for one in &exercises {
        if one.spec.tail_sampling && !tools {
            skipped += 1;
            continue;
        }
        if let Err(problem) = go_through(copy, one) {
            stale.push(format!("── {} ──\n{problem}", one.name));
            // Leave the copy clean for the next one, whatever state this one left.
            let _ = exercise(copy, &["reset"]);
            git(copy, &["checkout", "--quiet", "--force", "main"]);
        }
    }
    assert!(stale.is_empty(), "{} exercise(s) do not work:\n{}", stale.len(), stale.join("\n\n"));

    let listed = text(&exercise(copy, &["list"]));
    let solved = exercises.len() - skipped;
    assert!(listed.contains(&format!("{solved} of {} solved", exercises.len())), "{listed}");
}

/// How many exercises `list` says are solved (what the progress file records).
fn solved_count(copy: &Path) -> String {
    let listed = text(&exercise(copy, &["list"]));
    listed.lines().find(|line| line.contains(" solved. Start one")).unwrap_or_default().to_owned()
}

/// One exercise from start to reset; the first thing that is not as it should be.
fn go_through(copy: &Path, one: &Exercise) -> Result<(), String> {
    let ensure = |holds: bool, what: String| if holds { Ok(()) } else { Err(what) };
    let name = one.name.as_str();

    let started = exercise(copy, &["start", name]);
    ensure(started.status.success(), format!("start failed:\n{}", text(&started)))?;
    ensure(text(&started).contains(&one.spec.goal), format!("start does not say the goal:\n{}", text(&started)))?;
    for file in &one.spec.open {
        ensure(text(&started).contains(file.as_str()), format!("start does not say to open {file}"))?;
    }
    ensure(git(copy, &["branch", "--show-current"]) == format!("exercise/{name}"), "not on its branch".into())?;
    ensure(
        !git(copy, &["diff", "main", "--stat", "--", "services", "config"]).is_empty(),
        "start took nothing out of services/ or config/".into(),
    )?;

    let solved_before = solved_count(copy);
    ensure(!solved_before.is_empty(), "`list` says nothing of what is solved".into())?;
    let unsolved = exercise(copy, &["check", "--timeout", "5s"]);
    let said = text(&unsolved);
    ensure(!unsolved.status.success(), format!("check passes on the unsolved code:\n{said}"))?;
    ensure(solved_count(copy) == solved_before, format!("a failed check recorded {name} as solved"))?;
    ensure(
        said.contains("does not compile") != one.spec.compiles,
        format!("the unsolved code should {}compile:\n{said}", if one.spec.compiles { "" } else { "not " }),
    )?;
    ensure(said.contains(&one.spec.diagnosis), format!("check does not say {:?}:\n{said}", one.spec.diagnosis))?;
    ensure(said.contains("cargo xtask exercise hint"), format!("check does not point to the hints:\n{said}"))?;

    // Each plausible wrong answer is rejected, with the diagnosis its writer needs.
    for decoy in &one.spec.decoys {
        git(copy, &["apply", one.folder.join(&decoy.patch).to_str().unwrap()]);
        let rejected = exercise(copy, &["check", "--timeout", "5s"]);
        let said = text(&rejected);
        git(copy, &["checkout", "--", "services", "config"]);
        ensure(!rejected.status.success(), format!("check passes the wrong answer {}:\n{said}", decoy.patch))?;
        ensure(said.contains(&decoy.says), format!("check does not say {:?} of {}:\n{said}", decoy.says, decoy.patch))?;
        ensure(solved_count(copy) == solved_before, format!("a wrong answer recorded {name} as solved"))?;
    }

    let hint = text(&exercise(copy, &["hint"]));
    ensure(hint.contains("Hint 1 of"), format!("no first hint:\n{hint}"))?;
    let hint = text(&exercise(copy, &["hint"]));
    ensure(hint.contains("Hint 2 of"), format!("the second `hint` does not give the next one:\n{hint}"))?;

    // The learner writes the answer (the start patch, undone).
    let patch = one.folder.join("start.patch");
    git(copy, &["apply", "--reverse", patch.to_str().unwrap()]);
    let solved = exercise(copy, &["check"]);
    let said = text(&solved);
    ensure(solved.status.success(), format!("check fails on the solved code:\n{said}"))?;
    ensure(said.contains("✓ Solved"), format!("check does not say solved:\n{said}"))?;
    ensure(
        said.contains("── Your change ──") && said.contains("── The reference solution ──"),
        format!("check does not show the learner's change next to the reference:\n{said}"),
    )?;
    ensure(solved_count(copy) != solved_before, format!("a passing check did not record {name} as solved"))?;

    // The solution, shown after solving: it stays solved, and applied to the unsolved code it
    // gives back exactly the finished code.
    git(copy, &["checkout", "--", "services", "config"]);
    let solution = exercise(copy, &["solution"]);
    ensure(solution.status.success(), format!("solution failed:\n{}", text(&solution)))?;
    ensure(
        text(&solution).contains("stays solved"),
        format!("solution does not say it stays solved:\n{}", text(&solution)),
    )?;
    let mut apply = Command::new("git")
        .args(["apply", "-"])
        .current_dir(copy)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    apply.stdin.take().unwrap().write_all(&solution.stdout).unwrap();
    let applied = apply.wait_with_output().unwrap();
    ensure(
        applied.status.success(),
        format!("the solution does not apply: {}", String::from_utf8_lossy(&applied.stderr)),
    )?;
    ensure(
        git(copy, &["diff", "main", "--", "services", "config"]).is_empty(),
        "the solution does not give back the finished code".into(),
    )?;

    let reset = exercise(copy, &["reset"]);
    ensure(reset.status.success(), format!("reset failed:\n{}", text(&reset)))?;
    ensure(git(copy, &["branch", "--show-current"]) == "main", "reset did not go back to main".into())?;
    ensure(
        !git(copy, &["diff", "main", &format!("exercise/{name}"), "--stat"]).contains("services/")
            && !git(copy, &["diff", "main", &format!("exercise/{name}"), "--stat"]).contains("config/")
            && git(copy, &["log", "-1", "--format=%s", &format!("exercise/{name}")]).contains("my attempt"),
        "the attempt was not kept on its branch".into(),
    )?;
    Ok(())
}

/// `start` refuses to switch branches over uncommitted work, and says what to do; from one
/// exercise to another it moves by itself.
#[test]
fn start_refuses_uncommitted_changes() {
    let copy = a_copy();
    let copy = copy.path();
    let routes = copy.join("services/apiserver/src/routes.rs");
    let mut code = std::fs::read_to_string(&routes).unwrap();
    code.push_str("\n// my own change\n");
    std::fs::write(&routes, &code).unwrap();

    let refused = exercise(copy, &["start", "http-middleware"]);
    assert!(!refused.status.success());
    let said = text(&refused);
    assert!(said.contains("not committed") && said.contains("services/apiserver/src/routes.rs"), "{said}");
    assert!(said.contains("git stash"), "says how to put them aside: {said}");
    assert_eq!(git(copy, &["branch", "--show-current"]), "main");
    assert_eq!(std::fs::read_to_string(&routes).unwrap(), code, "the learner's change is untouched");

    let unknown = text(&exercise(copy, &["start", "no-such-exercise"]));
    assert!(unknown.contains("there is no exercise") && unknown.contains("http-middleware"), "{unknown}");

    // One exercise at a time; starting the same one again is not an error; starting another
    // leaves this one, its attempt kept on its branch.
    git(copy, &["checkout", "--", "services/apiserver/src/routes.rs"]);
    assert!(exercise(copy, &["start", "http-middleware"]).status.success());
    let again = exercise(copy, &["start", "http-middleware"]);
    assert!(text(&again).contains("already started"), "{}", text(&again));
    std::fs::write(copy.join("services/apiserver/src/attempt.rs"), "// my attempt\n").unwrap();
    let other = exercise(copy, &["start", "route-names"]);
    assert!(other.status.success(), "{}", text(&other));
    assert!(text(&other).contains("Leaving http-middleware for route-names"), "{}", text(&other));
    assert_eq!(git(copy, &["branch", "--show-current"]), "exercise/route-names");
    let kept = git(copy, &["show", "--stat", "--format=%s", "exercise/http-middleware"]);
    assert!(kept.contains("my attempt") && kept.contains("attempt.rs"), "{kept}");
}

/// `check --watch` checks again when a file under services/ is saved; once solved it starts the
/// next exercise and watches on; `h` gives a hint, `q` ends it.
#[test]
fn check_watch_checks_again_on_every_save() {
    let _turn = take_turn();
    let copy = a_copy();
    let copy = copy.path();
    assert!(exercise(copy, &["start", "keep-probes-out"]).status.success());

    let mut watching = exercise_command(copy, &["check", "--watch", "--timeout", "5s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, said) = std::sync::mpsc::channel();
    let stdout = watching.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let mut output = Vec::new();
    let mut wait_for = |wanted: &str| loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match said.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(wanted);
                output.push(line);
                if found {
                    return true;
                }
            }
            Err(_) => return false,
        }
    };
    let first = wait_for("Watching");
    if first {
        // The learner saves the solution.
        let solution = exercise(copy, &["solution"]);
        let mut apply =
            Command::new("git").args(["apply", "-"]).current_dir(copy).stdin(Stdio::piped()).spawn().unwrap();
        apply.stdin.take().unwrap().write_all(&solution.stdout).unwrap();
        assert!(apply.wait().unwrap().success());
    }
    let solved = first && wait_for("✓ Solved");
    // Solved, it goes on to the next exercise by itself, and takes commands while it waits.
    let moved_on = solved && wait_for("▶ server-errors") && wait_for("Watching");
    let mut typed = watching.stdin.take().unwrap();
    let hinted = moved_on && typed.write_all(b"h\n").is_ok() && wait_for("Hint 1 of");
    let _ = typed.write_all(b"q\n");
    drop(typed);
    if !hinted {
        let _ = watching.kill();
    }
    let status = watching.wait().unwrap();
    // What it said after that, up to its end (the reader stops at the end of its output).
    output.extend(said.iter());
    let output = output.join("\n");
    assert!(solved, "no second check that passed:\n{output}");
    assert!(moved_on, "it did not go on to the next exercise:\n{output}");
    assert!(hinted, "h gave no hint:\n{output}");
    assert!(status.success(), "q ends it:\n{output}");
    assert_eq!(output.matches("── Checking keep-probes-out").count(), 2, "{output}");
    assert!(output.contains("Not solved yet"), "the first check failed: {output}");
    assert!(output.contains("── Checking server-errors"), "the next one was checked: {output}");
    // The learner applied the solution shown by `solution`: it passes, but it is not theirs.
    assert!(output.contains("recorded as \"solution seen\""), "{output}");
    let listed = text(&exercise(copy, &["list"]));
    let line = |name: &str| listed.lines().find(|line| line.starts_with(name)).unwrap_or_default().to_owned();
    assert!(line("keep-probes-out").contains("◐ solution seen"), "{listed}");
    assert!(line("server-errors").contains("▶ started"), "{listed}");
    assert!(listed.contains("0 of ") && listed.contains("1 more with the solution seen first"), "{listed}");
    assert_eq!(git(copy, &["branch", "--show-current"]), "exercise/server-errors");
}
