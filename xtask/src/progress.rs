//! Where a learner stands: the chapter their stack was brought to, and the result of the last
//! verification of each chapter. Kept in `.state/progress.json` (git-ignored), shown by
//! `cargo xtask chapters`.

use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::{expect, project};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    /// The chapter of the last `cargo xtask up --chapter N` (none: the whole workshop).
    pub reached: Option<u32>,
    /// Chapter number → the last verification.
    pub results: BTreeMap<u32, Result>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Result {
    pub verified: bool,
    pub at: String,
}

fn file() -> PathBuf {
    project::root().join(".state/progress.json")
}

impl Progress {
    pub fn load() -> Self {
        std::fs::read_to_string(file()).ok().and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default()
    }

    fn save(&self) {
        let path = file();
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(path, serde_json::to_string_pretty(self).expect("progress serializes"));
    }

    pub fn record_reached(reached: Option<u32>) {
        let mut progress = Self::load();
        progress.reached = reached;
        progress.save();
    }

    pub fn record_result(chapter: u32, verified: bool) {
        let mut progress = Self::load();
        let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        progress.results.insert(chapter, Result { verified, at });
        progress.save();
    }
}

/// `cargo xtask chapters`.
pub fn run() -> anyhow::Result<()> {
    let chapters = expect::load_all(&project::root().join("chapters"))?;
    let progress = Progress::load();
    println!(
        "Chapters (stack at: {}):\n",
        progress.reached.map_or("the whole workshop".into(), |n| format!("chapter {n}"))
    );
    for chapter in chapters {
        let state = match progress.results.get(&chapter.number) {
            Some(result) if result.verified => format!("✓ verified {}", result.at),
            Some(result) => format!("✗ failing since {}", result.at),
            None => "· not yet".into(),
        };
        let modes: Vec<&str> =
            chapter.modes.iter().map(|mode| if *mode == expect::Mode::Local { "local" } else { "cluster" }).collect();
        println!("  {:>2}  {:<40} {:<15} {state}", chapter.number, chapter.title, modes.join("+"));
    }
    println!("\nVerify one: cargo xtask verify --chapter N");
    Ok(())
}
