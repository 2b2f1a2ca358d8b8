//! `cargo xtask chapters`: each chapter, whether it was verified, and its exercises solved.

use crate::{
    exercise::catalog,
    expect::{self, Mode},
    progress::{ExerciseState, Progress},
    project,
};

/// `cargo xtask chapters`.
pub fn run() -> anyhow::Result<()> {
    let chapters = expect::load_all(&project::root().join("chapters"))?;
    let progress = Progress::load();
    println!(
        "Chapters (stack at: {}):\n",
        progress.reached.map_or("the whole workshop".into(), |n| format!("chapter {n}"))
    );
    let exercises = catalog::load_all(&project::root().join("chapters"))?;
    for chapter in chapters {
        let state = match progress.results.get(&chapter.number) {
            Some(result) if result.verified => format!("✓ verified {}", result.at),
            Some(result) => format!("✗ failing since {}", result.at),
            None => "· not yet".into(),
        };
        let modes: Vec<&str> =
            chapter.modes.iter().map(|mode| if *mode == Mode::Local { "local" } else { "cluster" }).collect();
        let of_chapter: Vec<_> = exercises.iter().filter(|exercise| exercise.chapter == chapter.number).collect();
        let count = |state| of_chapter.iter().filter(|exercise| progress.exercise(&exercise.name) == state).count();
        let exercises = match (of_chapter.len(), count(ExerciseState::SeenSolution)) {
            (0, _) => String::new(),
            (all, 0) => format!("exercises {}/{all} solved", count(ExerciseState::Solved)),
            (all, seen) => format!("exercises {}/{all} solved, {seen} solution seen", count(ExerciseState::Solved)),
        };
        println!("  {:>2}  {:<40} {:<15} {state:<32} {exercises}", chapter.number, chapter.title, modes.join("+"));
    }
    println!("\nVerify one: cargo xtask verify --chapter N");
    println!("Exercises: cargo xtask exercise list");
    Ok(())
}
