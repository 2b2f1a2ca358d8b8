//! `check` for an exercise whose answer is a test (`[test]` in its exercise.toml): the learner's
//! test must pass on the code as it is, and fail on each mutant, a small break of the code it
//! is meant to guard (mutation testing, with breaks picked by hand). A mutant the test lets
//! pass is a break that would reach production unnoticed.
//!
//! Each mutant is applied to the work tree for one run and taken out again, also when the run
//! fails or is interrupted; one that does not apply (the learner changed the code it breaks)
//! stops the check with what to do, before anything is touched.

use anyhow::Context;

use super::{
    catalog::{Exercise, TestSpec},
    check::Outcome,
    git::Git,
};
use crate::{processes, project};

/// How one `cargo test` run ended.
enum Run {
    /// Its tests passed; how many ran.
    Passed(usize),
    Failed,
    DoesNotCompile,
}

pub fn check(exercise: &Exercise, test: &TestSpec) -> anyhow::Result<Outcome> {
    let git = Git::at(&project::root())?;
    let mutants: Vec<_> = test.mutants.iter().map(|mutant| (mutant, exercise.mutant(mutant))).collect();
    for (_, patch) in &mutants {
        anyhow::ensure!(
            git.applies(patch),
            "{} does not apply: the code it breaks differs from the finished code. The exercise asks for a test \
             only: `git diff` shows what else changed; put it back with `git checkout -- FILE`.",
            patch.display()
        );
    }

    println!("Your test, on the code as it is (it must pass):");
    let (run, output) = cargo_test(&test.cargo)?;
    match run {
        Run::DoesNotCompile => {
            println!("{}", output.trim_end());
            println!("\n✗ The code does not compile: cargo's errors above say where and why.");
            return Ok(Outcome::DoesNotCompile);
        }
        Run::Failed => {
            println!("{}", tail(&output, 30));
            println!("\n✗ Your test fails on the code as it is, and this code is right: a test that fails whatever");
            println!("  the code does catches nothing. It must pass here, and fail when the code breaks.");
            return Ok(Outcome::Unsolved);
        }
        Run::Passed(0) => {
            println!("{}", tail(&output, 15));
            println!("\n✗ No test ran: is your function marked #[test] or #[tokio::test]?");
            return Ok(Outcome::Unsolved);
        }
        Run::Passed(count) => println!("  ✓ passes ({count} test{})", if count == 1 { "" } else { "s" }),
    }

    println!("\nYour test, on the code broken {} way(s) (it must fail each time):", mutants.len());
    let mut caught_all = true;
    for (mutant, patch) in &mutants {
        anyhow::ensure!(!processes::stop_requested(), "interrupted");
        let (run, output) = {
            let _applied = Applied::new(&git, patch)?;
            cargo_test(&test.cargo)?
        };
        match run {
            Run::Failed => println!("  ✓ fails when {}", mutant.says),
            Run::Passed(_) => {
                caught_all = false;
                println!("  ✗ your test passes when {}: it would let that break through", mutant.says);
            }
            Run::DoesNotCompile => {
                caught_all = false;
                println!("{}", tail(&output, 20));
                println!("  ✗ with the break \"{}\" the code does not compile (above)", mutant.says);
            }
        }
    }
    Ok(if caught_all { Outcome::Solved } else { Outcome::Unsolved })
}

/// `cargo test ARGS`: how it ended, and what it printed.
fn cargo_test(args: &[String]) -> anyhow::Result<(Run, String)> {
    let args: Vec<&str> = ["test"].into_iter().chain(args.iter().map(String::as_str)).collect();
    println!("$ cargo {}", args.join(" "));
    let output = duct::cmd(project::cargo(), &args)
        .dir(project::root())
        .env("CARGO_TERM_COLOR", "never")
        // A failed assertion's message, not thirty lines of backtrace under it.
        .env("RUST_BACKTRACE", "0")
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run()
        .context("cannot run cargo")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let run = if output.status.success() {
        Run::Passed(passed(&text))
    } else if text.contains("test result: FAILED") {
        Run::Failed
    } else {
        Run::DoesNotCompile
    };
    Ok((run, text))
}

/// How many tests passed, by the test harness's summary lines (`test result: ok. 2 passed; …`).
fn passed(output: &str) -> usize {
    output
        .lines()
        .filter_map(|line| line.strip_prefix("test result: ok. "))
        .filter_map(|rest| rest.split_once(" passed")?.0.parse::<usize>().ok())
        .sum()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A mutant in the work tree, taken out again when dropped.
struct Applied<'a> {
    git: &'a Git,
    patch: &'a std::path::Path,
}

impl<'a> Applied<'a> {
    fn new(git: &'a Git, patch: &'a std::path::Path) -> anyhow::Result<Self> {
        git.apply(patch, false)?;
        Ok(Self { git, patch })
    }
}

impl Drop for Applied<'_> {
    fn drop(&mut self) {
        if let Err(error) = self.git.apply(self.patch, true) {
            eprintln!(
                "cannot take the mutant {} out again: {error:#}. Take it out by hand: git apply --reverse {}",
                self.patch.display(),
                self.patch.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tests_that_passed_are_counted_over_every_binary() {
        let output = "running 1 test\ntest a ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored\n\
                      running 0 tests\n\ntest result: ok. 0 passed; 0 failed\n";
        assert_eq!(passed(output), 1);
        assert_eq!(passed("error[E0425]: cannot find value"), 0);
    }
}
