//! `cargo xtask …` runs this first (see .cargo/config.toml). It builds xtask and then runs it
//! with the same arguments.
//!
//! Why: the alias runs cargo with `--quiet`, so that later runs print nothing but xtask's own
//! output. But a fresh clone's first run then compiled xtask's ~300 crates for a minute and a
//! half in silence, and looked hung. This launcher has no dependencies and compiles in a
//! second; it shows cargo's output only when cargo has something to do (then every crate is a
//! line), and nothing when xtask is up to date.

use std::{
    io::{BufRead, BufReader, IsTerminal, Write},
    path::PathBuf,
    process::{Command, ExitCode, Stdio},
};

fn main() -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--package", "xtask"]);
    if std::io::stderr().is_terminal() {
        build.arg("--color=always");
    }
    let mut child = match build.stderr(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(error) => {
            eprintln!("error: cannot run cargo to build xtask: {error}");
            return ExitCode::FAILURE;
        }
    };

    // Up to date, cargo says only "Finished …": keep quiet. Anything else (Compiling,
    // Downloading, waiting for a lock, a warning, an error) is shown, from the start.
    let mut held_back = Vec::new();
    let mut showing = false;
    let mut stderr = std::io::stderr();
    for line in BufReader::new(child.stderr.take().expect("piped")).lines() {
        let Ok(line) = line else { break };
        if !showing && !is_routine(&line) {
            showing = true;
            let _ = writeln!(
                stderr,
                "Building the workshop's automation (xtask) first; on a fresh clone that takes a minute or two."
            );
            for earlier in held_back.drain(..) {
                let _ = writeln!(stderr, "{earlier}");
            }
        }
        if showing {
            let _ = writeln!(stderr, "{line}");
        } else {
            held_back.push(line);
        }
    }
    let built = child.wait().is_ok_and(|status| status.success());
    if !built {
        if !showing {
            for line in held_back {
                let _ = writeln!(stderr, "{line}");
            }
        }
        eprintln!("error: building xtask failed (cargo's output above)");
        return ExitCode::FAILURE;
    }
    run_xtask()
}

/// What cargo prints when there is nothing to build.
fn is_routine(line: &str) -> bool {
    let plain = strip_colours(line);
    let plain = plain.trim_start();
    plain.starts_with("Finished")
}

fn strip_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ … letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// Runs the xtask binary next to this one (same target folder, same profile).
fn run_xtask() -> ExitCode {
    let me = std::env::current_exe().expect("the launcher knows where it is");
    let xtask: PathBuf = me.with_file_name(format!("xtask{}", std::env::consts::EXE_SUFFIX));
    let mut command = Command::new(&xtask);
    command.args(std::env::args_os().skip(1));
    #[cfg(unix)]
    {
        // Become xtask: signals (Ctrl-C) and the exit status are its own.
        use std::os::unix::process::CommandExt;
        let error = command.exec();
        eprintln!("error: cannot run {}: {error}", xtask.display());
        ExitCode::FAILURE
    }
    #[cfg(not(unix))]
    match command.status() {
        Ok(status) => ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8),
        Err(error) => {
            eprintln!("error: cannot run {}: {error}", xtask.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_up_to_date_build_is_kept_quiet() {
        assert!(is_routine("    Finished `dev` profile [unoptimized + debuginfo] target(s) in 0.12s"));
        assert!(is_routine("\u{1b}[1m\u{1b}[32m    Finished\u{1b}[0m `dev` profile"));
        assert!(!is_routine("    Blocking waiting for file lock on build directory"), "waiting is shown");
        assert!(!is_routine("   Compiling serde v1.0.229"));
        assert!(!is_routine("\u{1b}[1m\u{1b}[32m   Compiling\u{1b}[0m xtask v0.1.0"));
        assert!(!is_routine("warning: unused import"));
        assert!(!is_routine("error[E0425]: cannot find value"));
    }
}
