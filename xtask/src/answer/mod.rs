//! `cargo xtask answer`: the questions of the chapters on reading traces, checked against the
//! learner's own traces. Each chapter's `questions.toml` asks things a trace answers ("which
//! span made the slowest request slow?"); the right answer is computed from the traces in the
//! store (and the services' logs) at that moment, never a fixed string (compute.rs). A wrong
//! answer gets where to look, not the answer: that comes after the third wrong one, or with
//! `--reveal`, and a question whose answer was shown no longer counts when answered.
//!
//! ```toml
//! [[question]]
//! id = "slowest-span"                        # what the learner types
//! ask = "In the slowest GET /v1/todo of the last 10 minutes, which span took the time itself?"
//! compute = "most-self-time"                 # see compute.rs
//! operation = "GET /v1/todo"                 # the computation's parameters
//! how = "cargo xtask search --min-duration 1s, then cargo xtask trace ID --details"
//! ```

mod compute;

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::{jaeger::Jaeger, progress::Progress, project};

#[derive(clap::Args)]
pub struct Options {
    /// The question (its id, as the list shows it); without one, the list.
    id: Option<String>,

    /// Your answer (quote it when it has spaces).
    #[arg(requires = "id")]
    answer: Option<String>,

    /// Show the answer, and why (the question then no longer counts as answered).
    #[arg(long, requires = "id")]
    reveal: bool,

    /// Jaeger's query address (API v3).
    #[arg(long, default_value = "http://127.0.0.1:16686")]
    jaeger: String,

    /// The local state folder whose logs the log questions read [default: .state/local].
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    question: Vec<Question>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub ask: String,
    pub compute: compute::Kind,
    /// The root span's name the question is about (`GET /v1/todo`).
    pub operation: Option<String>,
    /// The text of the log line a log question is about.
    pub grep: Option<String>,
    /// How far back the question looks, in minutes.
    #[serde(default = "ten")]
    pub minutes: u64,
    /// Where to look: the commands that find the answer.
    pub how: String,
    /// Set when loading.
    #[serde(skip)]
    pub chapter: u32,
}

fn ten() -> u64 {
    10
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let questions = load_all(&project::root().join("chapters"))?;
    let Some(id) = &options.id else {
        list(&questions);
        return Ok(());
    };
    let question = questions.iter().find(|question| &question.id == id).with_context(|| {
        let ids: Vec<&str> = questions.iter().map(|question| question.id.as_str()).collect();
        format!("there is no question {id:?}; there are: {}", ids.join(", "))
    })?;
    if options.answer.is_none() && !options.reveal {
        println!(
            "{} (chapter {}): {}\n\nAnswer: cargo xtask answer {} \"…\"",
            question.id, question.chapter, question.ask, question.id
        );
        return Ok(());
    }
    let jaeger = Jaeger::new(&options.jaeger)?;
    let logs = options.state_dir.clone().unwrap_or_else(|| project::root().join(".state/local")).join("logs");
    let truth = compute::answer(question, &jaeger, &logs)?;
    let Some(answer) = &options.answer else {
        reveal(question, &truth);
        return Ok(());
    };
    if truth.accepts(answer) {
        let mut counts = true;
        Progress::update(|progress| {
            counts = !progress.revealed.contains(&question.id);
            if counts {
                progress.answered.insert(question.id.clone());
            }
        });
        println!("✓ Right: {}.\n  {}", truth.answer, truth.why);
        if !counts {
            println!("  (Its answer was shown to you before: it does not count as answered.)");
        }
        return Ok(());
    }
    let mut wrong = 0;
    Progress::update(|progress| {
        let tries = progress.wrong_answers.entry(question.id.clone()).or_default();
        *tries += 1;
        wrong = *tries;
    });
    println!("✗ Not quite.");
    if options.reveal || wrong >= TRIES {
        reveal(question, &truth);
    } else {
        println!("  How to find it: {}", question.how);
        println!(
            "  Wrong answers so far: {wrong}; the answer is shown after {TRIES}, or with --reveal (the question \
             then no longer counts)."
        );
    }
    anyhow::bail!("{:?} is not the answer to {}", answer, question.id)
}

/// How many wrong answers a question takes before its answer is shown.
const TRIES: u32 = 3;

/// Shows the answer and why; from now on the question does not count.
fn reveal(question: &Question, truth: &compute::Truth) {
    Progress::update(|progress| {
        progress.revealed.insert(question.id.clone());
    });
    println!("  In the traces there now, the answer is: {}", truth.answer);
    println!("  Why: {}", truth.why);
    println!("  How to find it: {}", question.how);
    println!("  (Shown, so {} no longer counts as answered.)", question.id);
}

fn list(questions: &[Question]) {
    let progress = Progress::load();
    for question in questions {
        let mark = if progress.answered.contains(&question.id) {
            "✓"
        } else if progress.revealed.contains(&question.id) {
            "◐"
        } else {
            "·"
        };
        println!("{mark} {:<22} chapter {}  {}", question.id, question.chapter, question.ask);
    }
    println!("\n✓ answered, ◐ answer shown (does not count). Answer one: cargo xtask answer ID \"your answer\"");
}

/// Every chapter's questions, in the chapters' order.
pub fn load_all(chapters: &Path) -> anyhow::Result<Vec<Question>> {
    let mut questions = Vec::new();
    for (chapter, folder) in project::chapter_folders(chapters)? {
        let file = folder.join("questions.toml");
        if !file.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let parsed: File = toml::from_str(&text).with_context(|| format!("{} is not valid", file.display()))?;
        for mut question in parsed.question {
            question.chapter = chapter;
            compute::check(&question).with_context(|| format!("{}: question {}", file.display(), question.id))?;
            anyhow::ensure!(
                !questions.iter().any(|other: &Question| other.id == question.id),
                "two questions are called {}",
                question.id
            );
            questions.push(question);
        }
    }
    Ok(questions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chapters_questions_load() {
        let questions = load_all(&project::root().join("chapters")).unwrap();
        for chapter in 5..=8 {
            assert!(questions.iter().any(|question| question.chapter == chapter), "chapter {chapter} asks something");
        }
        for question in &questions {
            let readme = std::fs::read_dir(project::root().join("chapters"))
                .unwrap()
                .filter_map(Result::ok)
                .find(|entry| entry.file_name().to_string_lossy().starts_with(&format!("{:02}-", question.chapter)))
                .map(|entry| std::fs::read_to_string(entry.path().join("README.md")).unwrap())
                .unwrap();
            assert!(
                readme.contains(&format!("cargo xtask answer {}", question.id)),
                "{}: not asked in its chapter",
                question.id
            );
        }
    }
}
