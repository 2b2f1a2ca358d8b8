//! Nothing of an exercise's answer is printed before the learner writes it. An answer line is a
//! line its start patch removes (the code the learner writes back) with 20 characters or more;
//! none may appear verbatim in the chapters' text, in any hint (the last one names the API and
//! where it is documented, not the code), or anywhere in the services as the learner gets them
//! (the start patch applied: a doc comment or the code next door must not show it).
//!
//! Two lines are idioms, not answers: they open or fill every span in the services, and the
//! learner has read them since chapter 2 ([`IDIOMS`]); imports are not answers either (the
//! compiler names what is missing). Everything else counts.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use exercise_folders::folders;
use serde::Deserialize;

mod exercise_folders;

/// Lines that every span of the services has: showing them gives no exercise away.
const IDIOMS: [&str; 2] = [
    // How a span is made (chapter 2 shows it).
    "tracing::info_span!(",
    // How a span declares the status it may record later (chapter 2's HTTP span has it). What
    // db-span asks is whether the database span needs it; the line itself is no secret.
    "otel.status_code = Empty,",
];

#[derive(Deserialize)]
struct Spec {
    hints: Vec<String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// Every exercise's folder, in the chapters' order.
fn exercise_folders() -> Vec<PathBuf> {
    exercise_folders::exercise_folders(&root())
}

/// The lines the learner writes back: removed by the start patch, trimmed, 20 characters or more.
fn answer_lines(patch: &str) -> Vec<String> {
    patch
        .lines()
        .filter(|line| line.starts_with('-') && !line.starts_with("---"))
        .map(|line| line[1..].trim().to_owned())
        // Imports are no decision: the compiler names what is missing.
        .filter(|line| line.chars().count() >= 20 && !IDIOMS.contains(&line.as_str()) && !line.starts_with("use "))
        .collect()
}

/// How many lines of code the learner writes back (removed lines that are not blank).
fn answer_size(patch: &str) -> usize {
    patch
        .lines()
        .filter(|line| line.starts_with('-') && !line.starts_with("---") && !line[1..].trim().is_empty())
        .count()
}

/// Every file below `dir` with its text (files that are not text are left out).
fn texts(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|name| name != "target") {
                    stack.push(path);
                }
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                found.push((path, text));
            }
        }
    }
    found
}

/// The services (and the configuration, which an exercise may be about) as the learner gets
/// them: a copy with the start patch applied.
fn services_as_given(patch: &Path) -> (tempfile::TempDir, Vec<(PathBuf, String)>) {
    let copy = tempfile::tempdir().unwrap();
    for folder in ["services", "config"] {
        let status = Command::new("cp").arg("-r").arg(root().join(folder)).arg(copy.path()).status().unwrap();
        assert!(status.success());
    }
    let applied = Command::new("git").arg("apply").arg(patch).current_dir(copy.path()).output().unwrap();
    assert!(applied.status.success(), "{}: {}", patch.display(), String::from_utf8_lossy(&applied.stderr));
    let texts = [texts(&copy.path().join("services")), texts(&copy.path().join("config"))].concat();
    (copy, texts)
}

#[test]
fn no_answer_line_is_printed_before_it_is_written() {
    let chapters: Vec<(PathBuf, String)> = texts(&root().join("chapters"))
        .into_iter()
        .filter(|(path, _)| path.extension().is_some_and(|e| e == "md"))
        .collect();
    let mut leaks = Vec::new();
    let mut sizes = Vec::new();
    for folder in exercise_folders() {
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        let patch = std::fs::read_to_string(folder.join("start.patch")).unwrap();
        let spec: Spec = toml::from_str(&std::fs::read_to_string(folder.join("exercise.toml")).unwrap()).unwrap();
        sizes.push(answer_size(&patch));
        let (_copy, services) = services_as_given(&folder.join("start.patch"));
        for line in answer_lines(&patch) {
            for (path, text) in &chapters {
                if text.contains(&line) {
                    leaks.push(format!("{name}: {line:?} is in {}", path.strip_prefix(root()).unwrap().display()));
                }
            }
            for (number, hint) in spec.hints.iter().enumerate() {
                if hint.contains(&line) {
                    leaks.push(format!("{name}: {line:?} is in hint {}", number + 1));
                }
            }
            for (path, text) in &services {
                if text.contains(&line) {
                    let path = path
                        .components()
                        .skip_while(|part| part.as_os_str() != "services" && part.as_os_str() != "config")
                        .collect::<PathBuf>();
                    leaks.push(format!("{name}: {line:?} is in {} as the learner gets it", path.display()));
                }
            }
        }
    }
    sizes.sort_unstable();
    let median = sizes.get(sizes.len() / 2).copied().unwrap_or_default();
    eprintln!("{} exercises; lines of code each answer writes: {sizes:?}, median {median}", sizes.len());
    assert!(median >= 6, "the median answer is {median} lines: the learner should write the decision, not copy a line");
    assert!(leaks.is_empty(), "{} answer line(s) printed before they are written:\n{}", leaks.len(), leaks.join("\n"));
}

/// Every decoy applies to the unsolved code (the start patch applied): a change to the services
/// that makes one stale fails here in a second, not after the long exercises test has built.
#[test]
fn every_decoy_applies_to_the_unsolved_code() {
    let mut stale = Vec::new();
    for folder in exercise_folders() {
        let (copy, _) = services_as_given(&folder.join("start.patch"));
        for decoy in folders(&folder).into_iter().filter(|path| path.ends_with("decoys")).flat_map(|dir| {
            let mut patches: Vec<PathBuf> =
                std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path()).collect();
            patches.sort();
            patches
        }) {
            let checked =
                Command::new("git").args(["apply", "--check"]).arg(&decoy).current_dir(copy.path()).output().unwrap();
            if !checked.status.success() {
                stale.push(format!("{}: {}", decoy.display(), String::from_utf8_lossy(&checked.stderr).trim()));
            }
        }
    }
    assert!(stale.is_empty(), "decoys that no longer apply:\n{}", stale.join("\n"));
}

/// Every mutant (the breaks an exercise's test must catch) applies to the finished code.
#[test]
fn every_mutant_applies_to_the_finished_code() {
    let mut stale = Vec::new();
    for folder in exercise_folders() {
        let Ok(entries) = std::fs::read_dir(folder.join("mutants")) else { continue };
        for mutant in entries.map(|entry| entry.unwrap().path()) {
            let checked =
                Command::new("git").args(["apply", "--check"]).arg(&mutant).current_dir(root()).output().unwrap();
            if !checked.status.success() {
                stale.push(format!("{}: {}", mutant.display(), String::from_utf8_lossy(&checked.stderr).trim()));
            }
        }
    }
    assert!(stale.is_empty(), "mutants that no longer apply:\n{}", stale.join("\n"));
}
