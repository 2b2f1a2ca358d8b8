//! A plan: the steps of a command, each with the exact external commands it runs. Built first,
//! from the options and what is already there, then printed (`--dry-run`) or carried out; so a
//! reader sees every real `minikube`, `helm` and `kubectl` command, and tests can check them.

use std::{fmt::Write as _, time::Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

/// One external command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
}

/// `cmd!("helm", "repo", "update")`, or with `format!`ed arguments.
#[macro_export]
macro_rules! cmd {
    ($program:expr $(, $arg:expr)* $(,)?) => {
        $crate::support::steps::Cmd { program: $program.to_string(), args: vec![$($arg.to_string()),*] }
    };
}

impl Cmd {
    pub fn args<I: IntoIterator<Item = S>, S: ToString>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(|arg| arg.to_string()));
        self
    }

    /// The command as you would type it in a shell.
    pub fn shell(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(quote)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn expression(&self) -> duct::Expression {
        duct::cmd(&self.program, &self.args)
    }

    /// Runs the command; on failure the error holds the end of its output and a hint.
    pub fn run(&self, hint: &str) -> anyhow::Result<()> {
        let output = self
            .expression()
            .stderr_to_stdout()
            .stdout_capture()
            .unchecked()
            .run()
            .with_context(|| format!("cannot run `{}`: is {} installed? ({hint})", self.shell(), self.program))?;
        if output.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        anyhow::bail!("`{}` failed ({}):\n{tail}\nhint: {hint}", self.shell(), output.status)
    }

    /// Runs the command and returns its standard output, or `None` if it fails or is missing
    /// (for looking at the state of things, never for changing it).
    pub fn read(&self) -> Option<String> {
        self.expression().stderr_null().read().ok()
    }
}

/// A word as a shell reads it literally. Not `shell_words::quote`: shell-words 1.1 quotes every
/// `=` and `%` (its `escape_style`), so each `--set key=value` of a printed plan would come
/// quoted, though a bare `=` is literal in any word but a command's first.
fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// One step of a plan. `done` says why it can be skipped (it is already done).
#[derive(Debug)]
pub struct Step {
    pub title: String,
    pub commands: Vec<Cmd>,
    pub done: Option<String>,
    /// What to tell the user when a command of this step fails.
    pub hint: String,
    /// Work that is not an external command (writing files), described for the plan.
    pub action: Option<Box<dyn Action>>,
    /// What the step does, for commands that carry out part of a plan (`images`).
    pub kind: Kind,
}

/// What a step does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    Other,
    /// Starts minikube (the bare provider has steps of its own).
    StartCluster,
    /// Builds the app's images.
    BuildImages,
    /// Installs or upgrades the app's release.
    InstallApp,
    /// Waits for the app's workloads to be ready.
    WaitForApp,
}

/// Work xtask carries out itself in a step (writing files, waiting on the cluster), not an
/// external command: described in the printed plan, then run.
pub trait Action: std::fmt::Debug {
    /// What it does, a line each, as the plan prints it.
    fn describe(&self) -> Vec<String>;
    fn run(&self) -> anyhow::Result<()>;
}

impl Step {
    pub fn new(title: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            commands: Vec::new(),
            done: None,
            hint: hint.into(),
            action: None,
            kind: Kind::Other,
        }
    }

    pub fn kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    pub fn action(mut self, action: impl Action + 'static) -> Self {
        self.action = Some(Box::new(action));
        self
    }

    pub fn command(mut self, command: Cmd) -> Self {
        self.commands.push(command);
        self
    }

    pub fn done_if(mut self, reason: Option<String>) -> Self {
        self.done = reason;
        self
    }
}

#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    /// The plan as text: numbered steps, their commands, and which ones are already done.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (number, step) in self.steps.iter().enumerate() {
            let _ = write!(text, "{}. {}", number + 1, step.title);
            match &step.done {
                Some(reason) => {
                    let _ = writeln!(text, "  [skip: {reason}]");
                }
                None => text.push('\n'),
            }
            for line in step.action.iter().flat_map(|action| action.describe()) {
                let _ = writeln!(text, "   (xtask) {line}");
            }
            for command in &step.commands {
                let _ = writeln!(text, "   $ {}", command.shell());
            }
        }
        text
    }

    /// Carries out the steps that are not done, with a spinner and the elapsed time.
    pub fn execute(&self) -> anyhow::Result<()> {
        let total = self.steps.len();
        for (number, step) in self.steps.iter().enumerate() {
            let label = format!("[{}/{total}] {}", number + 1, step.title);
            if let Some(reason) = &step.done {
                println!("✓ {label} (already done: {reason})");
                continue;
            }
            let started = Instant::now();
            let spinner = ProgressBar::new_spinner()
                .with_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template"))
                .with_message(label.clone());
            spinner.enable_steady_tick(std::time::Duration::from_millis(100));
            if let Some(action) = &step.action
                && let Err(error) = action.run()
            {
                spinner.finish_with_message(format!("✗ {label}"));
                return Err(error);
            }
            for command in &step.commands {
                spinner.println(format!("  $ {}", command.shell()));
                if let Err(error) = command.run(&step.hint) {
                    spinner.finish_with_message(format!("✗ {label}"));
                    return Err(error);
                }
            }
            spinner.finish_and_clear();
            println!("✓ {label} ({:.0?})", started.elapsed());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn commands_read_as_shell() {
        let command = cmd!("helm", "upgrade", "--install", "todo", "--set", "a=b c").args(["it's"]);
        assert_eq!(command.shell(), r"helm upgrade --install todo --set 'a=b c' 'it'\''s'");
    }

    #[test]
    fn a_missing_program_is_an_error_naming_it() {
        let error = cmd!("surely-not-installed-xtask-tool", "--version").run("install it").unwrap_err();
        assert!(format!("{error:#}").contains("is surely-not-installed-xtask-tool installed?"), "{error:#}");
        assert_eq!(cmd!("surely-not-installed-xtask-tool").read(), None);
    }
}
