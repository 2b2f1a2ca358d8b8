//! The chapters as documents: `cargo xtask book` renders them with mdBook, and the tests below
//! keep their text true to the code (commands, paths, quoted excerpts).

use std::path::{Path, PathBuf};

use anyhow::Context;
use regex::Regex;

use crate::project;

/// `cargo xtask book`: checks the chapters' text against the code, then renders it.
pub fn run() -> anyhow::Result<()> {
    let root = project::root();
    let problems = check_chapters(&root)?;
    for problem in &problems {
        println!("✗ {problem}");
    }
    anyhow::ensure!(problems.is_empty(), "the chapters are out of date with the code (see above)");
    if crate::path::find("mdbook", &crate::path::search_path()).is_none() {
        anyhow::bail!("mdbook is not installed: `cargo install mdbook --locked` (a few minutes), then run this again");
    }
    println!("$ mdbook build chapters");
    duct::cmd!("mdbook", "build", "chapters").dir(&root).run().context("mdbook failed")?;
    println!("The book is in target/book/index.html");
    Ok(())
}

/// What is wrong in the chapters' text: commands that do not parse, paths that do not exist,
/// excerpts that no longer match their source.
pub fn check_chapters(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for (file, text) in chapter_texts(root)? {
        let file = file.strip_prefix(root).unwrap_or(&file).display().to_string();
        for args in xtask_commands(&text) {
            if let Err(error) = <crate::Cli as clap::Parser>::try_parse_from(&args) {
                let first_line = error.to_string().lines().next().unwrap_or_default().to_owned();
                problems.push(format!("{file}: `cargo {}` does not parse: {first_line}", args.join(" ")));
            }
        }
        for path in mentioned_paths(&text) {
            if !root.join(&path).exists() {
                problems.push(format!("{file} mentions {path}, which does not exist"));
            }
        }
        for (source, excerpt) in excerpts(&text) {
            match std::fs::read_to_string(root.join(&source)) {
                Ok(code) => {
                    for line in unmatched_lines(&excerpt, &code) {
                        problems.push(format!("{file} quotes a line that {source} no longer has: {}", line.trim()));
                    }
                }
                Err(_) => problems.push(format!("{file} quotes {source}, which does not exist")),
            }
        }
    }
    Ok(problems)
}

/// Every chapter's README, as (path, text).
pub fn chapter_texts(root: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(root.join("chapters"))? {
        let file = entry?.path().join("README.md");
        if file.exists() {
            texts.push((file.clone(), std::fs::read_to_string(&file)?));
        }
    }
    texts.sort();
    Ok(texts)
}

/// The `cargo xtask …` commands shown in code blocks, as argument lists (without `cargo`).
pub fn xtask_commands(text: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let line = line.trim().trim_start_matches("$ ");
        if in_code && line.starts_with("cargo xtask ") {
            // Up to a comment or the shell's next command (`| git apply`, `&& …`, `> file`).
            let words = shell_words(line).into_iter().skip(1);
            let command = words.take_while(|word| !["#", "|", "&&", "||", ";", ">", "2>&1"].contains(&word.as_str()));
            commands.push(command.collect());
        }
    }
    commands
}

/// A command line's words as a POSIX shell splits them (none when its quotes do not close).
fn shell_words(line: &str) -> Vec<String> {
    shell_words::split(line).unwrap_or_default()
}

/// The workspace paths named in backquotes, like `services/telemetry/src/http.rs`.
pub fn mentioned_paths(text: &str) -> Vec<String> {
    let path = Regex::new(r"`((?:services|xtask|helm|config|chapters)/[A-Za-z0-9_./\-]+)`").expect("a valid pattern");
    path.captures_iter(text).map(|found| found[1].trim_end_matches('/').to_owned()).collect()
}

/// Excerpts: a `<!-- from PATH -->` line, then a fenced code block quoted from that file.
pub fn excerpts(text: &str) -> Vec<(String, Vec<String>)> {
    let marker = Regex::new(r"^<!-- from (\S+) -->$").expect("a valid pattern");
    let mut found = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(source) = marker.captures(line.trim()).map(|captures| captures[1].to_owned()) else { continue };
        let _opening_fence = lines.next();
        let body: Vec<String> =
            lines.by_ref().take_while(|line| !line.trim_start().starts_with("```")).map(str::to_owned).collect();
        found.push((source, body));
    }
    found
}

/// The lines of `excerpt` that cannot be found in `source`, in order; `// …` and `# …` lines
/// stand for what was left out.
pub fn unmatched_lines(excerpt: &[String], source: &str) -> Vec<String> {
    let mut remaining = source.lines();
    let mut unmatched = Vec::new();
    for line in excerpt {
        let elision = matches!(line.trim(), "// …" | "# …" | "…");
        if elision || line.trim().is_empty() {
            continue;
        }
        if !remaining.by_ref().any(|candidate| candidate == line) {
            unmatched.push(line.clone());
            remaining = source.lines(); // report each missing line, not every one after it
        }
    }
    unmatched
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::Cli;

    #[test]
    fn the_chapters_agree_with_the_code() {
        let root = project::root();
        let problems = check_chapters(&root).unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
        let texts = chapter_texts(&root).unwrap();
        let commands: usize = texts.iter().map(|(_, text)| xtask_commands(text).len()).sum();
        let quoted: usize = texts.iter().map(|(_, text)| excerpts(text).len()).sum();
        assert!(commands > 20 && quoted >= 8, "found only {commands} commands and {quoted} excerpts");
    }

    #[test]
    fn the_commands_of_the_readme_and_the_docs_parse() {
        let root = project::root();
        let mut pages = vec![root.join("README.md")];
        pages.extend(std::fs::read_dir(root.join("docs")).unwrap().map(|entry| entry.unwrap().path()));
        let mut commands = 0;
        for page in &pages {
            let text = std::fs::read_to_string(page).unwrap();
            for args in xtask_commands(&text) {
                let parsed = Cli::try_parse_from(&args);
                let page = page.display();
                assert!(parsed.is_ok(), "{page}: `cargo {}` does not parse: {}", args.join(" "), parsed.err().unwrap());
                commands += 1;
            }
        }
        assert!(pages.len() >= 6 && commands >= 40, "{} pages, {commands} commands", pages.len());
    }

    #[test]
    fn quoted_words_stay_whole() {
        assert_eq!(
            shell_words(r#"cargo xtask logs --grep "injected failure" 'a b'"#),
            ["cargo", "xtask", "logs", "--grep", "injected failure", "a b"]
        );
        assert_eq!(shell_words("x ''"), ["x", ""]);
    }

    #[test]
    fn a_command_ends_where_the_shell_goes_on() {
        assert_eq!(
            xtask_commands("```sh\ncargo xtask exercise solution | git apply   # the answer\n```\n"),
            vec![vec!["xtask".to_owned(), "exercise".into(), "solution".into()]]
        );
    }

    #[test]
    fn a_wrong_command_is_caught() {
        assert_eq!(
            xtask_commands("```sh\ncargo xtask up --lokal\n```\n"),
            vec![vec!["xtask".to_owned(), "up".into(), "--lokal".into()]]
        );
        assert!(Cli::try_parse_from(["xtask", "up", "--lokal"]).is_err());
    }

    #[test]
    fn a_changed_excerpt_is_caught() {
        let source = "fn a() {\n    let x = 1;\n    let y = 2;\n}\n";
        let good = vec!["fn a() {".to_owned(), "    // …".to_owned(), "    let y = 2;".to_owned()];
        assert!(unmatched_lines(&good, source).is_empty());
        let stale = vec!["    let y = 3;".to_owned()];
        assert_eq!(unmatched_lines(&stale, source), stale);
        let out_of_order = vec!["    let y = 2;".to_owned(), "    let x = 1;".to_owned()];
        assert_eq!(unmatched_lines(&out_of_order, source).len(), 1);
    }

    #[test]
    fn the_book_lists_every_chapter() {
        let root = project::root();
        let summary = std::fs::read_to_string(root.join("chapters/SUMMARY.md")).unwrap();
        for (file, _) in chapter_texts(&root).unwrap() {
            let relative = file.strip_prefix(root.join("chapters")).unwrap().display().to_string();
            assert!(summary.contains(&format!("({relative})")), "SUMMARY.md does not list {relative}");
        }
    }
}
