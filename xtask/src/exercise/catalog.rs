//! The exercises, as data next to their chapters: `chapters/NN-chapter/exercises/NN-name/`
//! holds
//!
//! - `exercise.toml`: the goal, the files to open, the hints (gentle first), and what `check`
//!   says on the unsolved code;
//! - `start.patch`: the change that takes the piece out of the finished code (`git diff`
//!   output). The finished code in `services/` is the solution, so an exercise cannot drift
//!   from it: a change to the services that the patch no longer fits fails the tests;
//! - `expect.toml`: what must hold when it is solved, in the chapters' format (expect.rs);
//! - `decoys/*.patch`: plausible wrong or partial answers, each a change to the unsolved code
//!   that `check` must reject, saying why (xtask/tests/exercises.rs applies each one);
//! - for an exercise whose answer is a test (`[test]`), `mutants/*.patch`: breaks of the
//!   finished code that the learner's test must catch (tested.rs), and no `expect.toml`.
//!
//! ```toml
//! goal = "Give every HTTP request a SERVER span"
//! section = "A span per request: middleware"   # the chapter's section that explains it
//! open = ["services/apiserver/src/routes.rs"]
//! diagnosis = "the answer has no X-Trace-Id header"   # `check` prints it while unsolved
//! compiles = true                                     # false: the exercise starts from a compile error
//! env = { OTEL_TRACES_SAMPLER_ARG = "0" }             # for the services while `check` runs
//! tail_sampling = true             # the real collector with config/local/tail-sampling.yaml
//! hints = ["…", "…", "…"]                            # the last names the API, not the code
//!
//! [[decoy]]
//! patch = "decoys/outside-the-faults.patch"   # applied to the unsolved code
//! says = "the fault layer ran outside"        # what `check` must say of it
//!
//! [test]                                               # the answer is a test, run with
//! cargo = ["--package", "todomanager", "--test", "db_span"]   # `cargo test` and these
//! [[test.mutant]]
//! patch = "mutants/failure-unmarked.patch"    # applied to the finished code
//! says = "a failed query leaves its span unmarked"   # what the test must catch
//! ```
//!
//! A trainer adds an exercise by adding such a folder: no Rust to change.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::expect::{self, Chapter};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub goal: String,
    /// The heading of the chapter section that explains the idea.
    pub section: String,
    /// The files to open, relative to the checkout.
    pub open: Vec<String>,
    /// What `check` says while the exercise is unsolved: xtask/tests/exercises.rs holds each
    /// exercise to it.
    #[expect(dead_code, reason = "read by the tests, which parse exercise.toml themselves")]
    pub diagnosis: String,
    /// Whether the unsolved code compiles.
    #[serde(default = "yes")]
    pub compiles: bool,
    pub hints: Vec<String>,
    /// Plausible wrong answers that `check` must reject.
    #[serde(default, rename = "decoy")]
    pub decoys: Vec<Decoy>,
    /// More environment for the services while `check` runs (the standard `OTEL_*` variables
    /// an exercise is about, say).
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// The answer is a test: `check` runs it instead of the stack.
    pub test: Option<TestSpec>,
    /// `check` runs the real stack (the collector and Jaeger of `cargo xtask tools install`) with
    /// the collector's tail sampling (`config/local/tail-sampling.yaml`) instead of the trace store.
    #[serde(default)]
    pub tail_sampling: bool,
}

/// How `check` runs the learner's test, and the breaks it must catch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    /// The arguments of `cargo test` that run it (and only the tests of its file).
    pub cargo: Vec<String>,
    #[serde(rename = "mutant")]
    pub mutants: Vec<Mutant>,
}

/// A break of the finished code the learner's test must catch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mutant {
    /// The change to the finished code, relative to the exercise's folder.
    pub patch: String,
    /// What it breaks, as `check` says it: "your test passes when …".
    pub says: String,
}

/// A wrong or partial answer, and what `check` says of it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decoy {
    /// The change to the unsolved code, relative to the exercise's folder.
    pub patch: String,
    /// What `check` must say (the diagnosis a learner who wrote it needs).
    #[expect(dead_code, reason = "read by the tests, which parse exercise.toml themselves")]
    pub says: String,
}

fn yes() -> bool {
    true
}

#[derive(Debug)]
pub struct Exercise {
    pub name: String,
    pub chapter: u32,
    /// The chapter's folder, for its README.
    pub chapter_folder: PathBuf,
    pub folder: PathBuf,
    pub spec: Spec,
}

impl Exercise {
    pub fn patch(&self) -> PathBuf {
        self.folder.join("start.patch")
    }

    /// What must hold once solved (an exercise whose answer is a test has no claims).
    pub fn claims(&self) -> anyhow::Result<Chapter> {
        expect::load(&self.folder.join("expect.toml"), self.chapter)
    }

    /// A mutant's patch.
    pub fn mutant(&self, mutant: &Mutant) -> PathBuf {
        self.folder.join(&mutant.patch)
    }

    /// The git branch a learner's attempt lives on.
    pub fn branch(&self) -> String {
        format!("exercise/{}", self.name)
    }
}

/// Every exercise of every chapter, in the chapters' order, then the folders'.
pub fn load_all(chapters_dir: &Path) -> anyhow::Result<Vec<Exercise>> {
    let mut exercises = Vec::new();
    for (chapter, chapter_folder) in crate::project::chapter_folders(chapters_dir)? {
        let dir = chapter_folder.join("exercises");
        if !dir.is_dir() {
            continue;
        }
        for folder in sorted_folders(&dir)? {
            let Some((_, name)) = numbered(&folder) else {
                anyhow::bail!("{}: an exercise's folder is named NN-name, like 01-http-middleware", folder.display());
            };
            let file = folder.join("exercise.toml");
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let spec: Spec = toml::from_str(&text).with_context(|| format!("{} is not valid", file.display()))?;
            anyhow::ensure!(!spec.hints.is_empty(), "{}: give at least one hint", file.display());
            let exercise = Exercise { name, chapter, chapter_folder: chapter_folder.clone(), folder, spec };
            anyhow::ensure!(exercise.patch().is_file(), "{} is missing", exercise.patch().display());
            for decoy in &exercise.spec.decoys {
                let patch = exercise.folder.join(&decoy.patch);
                anyhow::ensure!(patch.is_file(), "{}: the decoy {} is missing", file.display(), patch.display());
            }
            match &exercise.spec.test {
                Some(test) => {
                    anyhow::ensure!(!test.mutants.is_empty(), "{}: a test must have a mutant to catch", file.display());
                    for mutant in &test.mutants {
                        let patch = exercise.mutant(mutant);
                        anyhow::ensure!(
                            patch.is_file(),
                            "{}: the mutant {} is missing",
                            file.display(),
                            patch.display()
                        );
                    }
                }
                None => drop(exercise.claims()?),
            }
            anyhow::ensure!(
                !exercises.iter().any(|other: &Exercise| other.name == exercise.name),
                "two exercises are named {:?}",
                exercise.name
            );
            exercises.push(exercise);
        }
    }
    Ok(exercises)
}

/// The exercise called `name`, or an error that lists them.
pub fn find<'a>(exercises: &'a [Exercise], name: &str) -> anyhow::Result<&'a Exercise> {
    exercises.iter().find(|exercise| exercise.name == name).with_context(|| {
        let names: Vec<&str> = exercises.iter().map(|exercise| exercise.name.as_str()).collect();
        format!("there is no exercise {name:?}; there are: {}", names.join(", "))
    })
}

fn sorted_folders(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            folders.push(path);
        }
    }
    folders.sort();
    Ok(folders)
}

/// `03-instrumenting-todomanager` → (3, "instrumenting-todomanager").
fn numbered(folder: &Path) -> Option<(u32, String)> {
    let (number, name) = folder.file_name()?.to_str()?.split_once('-')?;
    Some((number.parse().ok()?, name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_numbered() {
        assert_eq!(numbered(Path::new("chapters/02-http")), Some((2, "http".into())));
        assert_eq!(numbered(Path::new("x/01-keep-probes-out")), Some((1, "keep-probes-out".into())));
        assert_eq!(numbered(Path::new("x/notes")), None);
    }

    #[test]
    fn the_exercises_load() {
        let exercises = load_all(&crate::project::root().join("chapters")).unwrap();
        assert!(exercises.len() >= 24, "the workshop has at least 24 exercises");
        for chapter in 1..crate::project::FIRST_CLUSTER_CHAPTER {
            let here = exercises.iter().filter(|exercise| exercise.chapter == chapter).count();
            assert!(here >= 2, "chapter {chapter} has {here} exercise(s): every laptop chapter has at least two");
        }
        for exercise in &exercises {
            assert!(
                (1..crate::project::FIRST_CLUSTER_CHAPTER).contains(&exercise.chapter),
                "{} sits in a chapter that runs on a laptop (the check starts the local stack)",
                exercise.name
            );
            for file in &exercise.spec.open {
                assert!(crate::project::root().join(file).is_file(), "{}: {file} does not exist", exercise.name);
            }
            let patch = std::fs::read_to_string(exercise.patch()).unwrap();
            assert!(
                patch
                    .lines()
                    .any(|line| line.starts_with('+') && line.contains(&format!("TODO(exercise {})", exercise.name))),
                "{}: its patch marks the spot with `TODO(exercise {})`",
                exercise.name,
                exercise.name
            );
            let readme = std::fs::read_to_string(exercise.chapter_folder.join("README.md")).unwrap();
            assert!(
                readme.lines().any(|line| line.starts_with('#') && line.contains(&exercise.spec.section)),
                "{}: its chapter has no section {:?}",
                exercise.name,
                exercise.spec.section
            );
            assert!(
                readme.contains(&format!("cargo xtask exercise start {}", exercise.name)),
                "{}: its chapter does not tell the learner to start it",
                exercise.name
            );
        }
    }

    #[test]
    fn a_spec_without_hints_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("02-ch/exercises/01-x");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("exercise.toml"),
            "goal = \"g\"\nsection = \"s\"\nopen = []\ndiagnosis = \"d\"\nhints = []\n",
        )
        .unwrap();
        let error = format!("{:#}", load_all(dir.path()).unwrap_err());
        assert!(error.contains("at least one hint"), "{error}");
    }
}
