//! Where a learner stands: the chapter their stack was brought to, and the result of the last
//! verification of each chapter. Kept in `.state/progress.json` (git-ignored; another folder
//! with `WORKSHOP_STATE_DIR`, which the tests use so they never touch a learner's progress),
//! shown by `cargo xtask chapters`. Updates take a lock and replace the file whole, so two
//! commands at once neither lose an update nor leave half a file.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use serde::{Deserialize, Serialize};

use crate::project;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    /// The chapter of the last `cargo xtask up --chapter N` (none: the whole workshop).
    pub reached: Option<u32>,
    /// Chapter number → the last verification.
    pub results: BTreeMap<u32, Result>,
    /// The exercise in progress (`cargo xtask exercise start`), if any.
    #[serde(default)]
    pub exercise: Option<Started>,
    /// Exercise name → when `cargo xtask exercise check` first found it solved by the learner.
    #[serde(default)]
    pub solved: BTreeMap<String, String>,
    /// Exercise name → when `cargo xtask exercise solution` showed its answer before it was
    /// solved. A check that passes after that does not make it solved.
    #[serde(default)]
    pub seen_solution: BTreeMap<String, String>,
    /// The questions answered right (`cargo xtask answer`) before their answer was revealed.
    #[serde(default)]
    pub answered: BTreeSet<String>,
    /// Question id → how many wrong answers were given.
    #[serde(default)]
    pub wrong_answers: BTreeMap<String, u32>,
    /// The questions whose answer was shown (`--reveal`, or after the third wrong answer):
    /// answering them right no longer counts.
    #[serde(default)]
    pub revealed: BTreeSet<String>,
}

/// Where a learner stands with one exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExerciseState {
    ToDo,
    /// The solution was shown before it was solved.
    SeenSolution,
    Solved,
}

impl ExerciseState {
    /// The mark `list` and `chapters` show.
    pub fn mark(self) -> &'static str {
        match self {
            ExerciseState::ToDo => "· to do",
            ExerciseState::SeenSolution => "◐ solution seen",
            ExerciseState::Solved => "✓ solved",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Result {
    pub verified: bool,
    pub at: String,
}

/// The variable that moves the state folder (default `.state` in the repository).
pub const STATE_DIR_VAR: &str = "WORKSHOP_STATE_DIR";

/// The exercise in progress, as kept in the learner's progress file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    pub name: String,
    /// The branch (or commit) the learner was on before `start`.
    pub back_to: String,
    /// The commit that took the piece out.
    pub start_commit: String,
    /// How many hints `hint` has shown.
    #[serde(default)]
    pub hints_shown: usize,
}

/// The folder of the learner's local state.
pub fn state_dir() -> PathBuf {
    std::env::var_os(STATE_DIR_VAR).map_or_else(|| project::root().join(".state"), PathBuf::from)
}

impl Progress {
    pub fn load() -> Self {
        let text = std::fs::read_to_string(state_dir().join("progress.json"));
        text.ok().and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default()
    }

    /// Loads, changes and saves the progress under an exclusive lock. Progress is a
    /// convenience: when it cannot be saved, the command goes on (and says so).
    pub fn update(change: impl FnOnce(&mut Self)) {
        let dir = state_dir();
        let saved = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let lock = std::fs::File::create(dir.join("progress.lock"))?;
            lock.lock()?;
            let mut progress = Self::load();
            change(&mut progress);
            let partial = dir.join(format!("progress.json.{}", std::process::id()));
            std::fs::write(&partial, serde_json::to_string_pretty(&progress).expect("progress serializes"))?;
            std::fs::rename(partial, dir.join("progress.json"))
        })();
        if let Err(error) = saved {
            eprintln!("note: could not save your progress in {}: {error}", dir.display());
        }
    }

    pub fn record_reached(reached: Option<u32>) {
        Self::update(|progress| progress.reached = reached);
    }

    pub fn record_result(chapter: u32, verified: bool) {
        let at = now();
        Self::update(|progress| {
            progress.results.insert(chapter, Result { verified, at });
        });
    }

    pub fn exercise(&self, name: &str) -> ExerciseState {
        if self.solved.contains_key(name) {
            ExerciseState::Solved
        } else if self.seen_solution.contains_key(name) {
            ExerciseState::SeenSolution
        } else {
            ExerciseState::ToDo
        }
    }

    /// Records a passing check of the learner's work; solved only if the solution was not
    /// shown before. Returns the state it leaves.
    pub fn record_solved(exercise: &str) -> ExerciseState {
        let at = now();
        let mut state = ExerciseState::Solved;
        Self::update(|progress| {
            if progress.exercise(exercise) == ExerciseState::SeenSolution {
                state = ExerciseState::SeenSolution;
            } else {
                progress.solved.entry(exercise.to_owned()).or_insert(at);
            }
        });
        state
    }

    /// Records that the solution was shown; an exercise already solved stays solved.
    pub fn record_solution_seen(exercise: &str) {
        let at = now();
        Self::update(|progress| {
            if !progress.solved.contains_key(exercise) {
                progress.seen_solution.entry(exercise.to_owned()).or_insert(at);
            }
        });
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
