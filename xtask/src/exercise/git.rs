//! The git commands the exercises run, each written out once. Those that change the checkout
//! are printed before they run, so a learner sees (and could type) what happens.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Commits the exercises make need a name even where the learner has configured none.
const IDENTITY: [&str; 4] = ["-c", "user.name=Traces workshop", "-c", "user.email=workshop@localhost"];

pub struct Git {
    root: PathBuf,
}

impl Git {
    pub fn at(root: &Path) -> anyhow::Result<Self> {
        let git = Self { root: root.to_owned() };
        git.read(&["rev-parse", "--git-dir"]).with_context(|| {
            format!(
                "{} is not a git checkout: the exercises keep your work on git branches. Clone the workshop \
                 with git (git clone …) and run this there.",
                root.display()
            )
        })?;
        Ok(git)
    }

    /// Runs a command that only reads; its output, trimmed.
    fn read(&self, args: &[&str]) -> anyhow::Result<String> {
        Ok(self.read_exactly(args)?.trim_end().to_owned())
    }

    /// Runs a command that only reads; its output as it is (a diff's last line may be a
    /// context line of one space).
    fn read_exactly(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = duct::cmd("git", args)
            .dir(&self.root)
            .stderr_capture()
            .stdout_capture()
            .unchecked()
            .run()
            .context("cannot run git: is it installed?")?;
        anyhow::ensure!(
            output.status.success(),
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs a command that changes the checkout, printed first.
    fn change(&self, args: &[&str]) -> anyhow::Result<()> {
        let shown: Vec<String> = args
            .iter()
            .filter(|arg| !IDENTITY.contains(arg))
            .map(|arg| if arg.contains(' ') { format!("\"{arg}\"") } else { (*arg).to_owned() })
            .collect();
        println!("$ git {}", shown.join(" "));
        duct::cmd("git", args).dir(&self.root).run().with_context(|| format!("git {} failed", shown.join(" ")))?;
        Ok(())
    }

    /// Tracked files with changes not committed (staged or not).
    pub fn uncommitted(&self) -> anyhow::Result<Vec<String>> {
        let status = self.read(&["status", "--porcelain", "--untracked-files=no"])?;
        Ok(status.lines().map(|line| line.get(3..).unwrap_or(line).to_owned()).collect())
    }

    /// The branch checked out, or `None` on a detached HEAD.
    pub fn branch(&self) -> anyhow::Result<Option<String>> {
        let branch = self.read(&["branch", "--show-current"])?;
        Ok(Some(branch).filter(|branch| !branch.is_empty()))
    }

    pub fn commit_of(&self, revision: &str) -> anyhow::Result<String> {
        self.read(&["rev-parse", "--verify", &format!("{revision}^{{commit}}")])
    }

    pub fn has_branch(&self, branch: &str) -> bool {
        self.read(&["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")]).is_ok()
    }

    /// The newest commit on `branch` whose message starts with `subject`.
    pub fn find_commit(&self, branch: &str, subject: &str) -> anyhow::Result<Option<String>> {
        let found =
            self.read(&["log", "-1", "--format=%H", "--fixed-strings", &format!("--grep={subject}"), branch])?;
        Ok(Some(found).filter(|found| !found.is_empty()))
    }

    /// Whether `patch` applies to the work tree as it is.
    pub fn applies(&self, patch: &Path) -> bool {
        self.read(&["apply", "--check", &patch.to_string_lossy()]).is_ok()
    }

    /// Applies `patch` to the work tree (or takes it out again, `reverse`).
    pub fn apply(&self, patch: &Path, reverse: bool) -> anyhow::Result<()> {
        let patch = patch.to_string_lossy();
        if reverse { self.change(&["apply", "--reverse", &patch]) } else { self.change(&["apply", &patch]) }
    }

    pub fn switch_new(&self, branch: &str) -> anyhow::Result<()> {
        self.change(&["switch", "--create", branch])
    }

    /// Checks out a branch, or a commit (detached) when `to` is not a branch.
    pub fn switch(&self, to: &str) -> anyhow::Result<()> {
        if self.has_branch(to) { self.change(&["switch", to]) } else { self.change(&["switch", "--detach", to]) }
    }

    /// Applies `patch` to the work tree and the index, and commits it.
    pub fn apply_and_commit(&self, patch: &Path, message: &str) -> anyhow::Result<()> {
        self.change(&["apply", "--index", &patch.to_string_lossy()])?;
        self.change(&[&IDENTITY[..], &["commit", "--quiet", "--message", message]].concat())
    }

    /// Commits every change of the work tree (new files too), if there is any.
    pub fn commit_everything(&self, message: &str) -> anyhow::Result<bool> {
        if self.read(&["status", "--porcelain"])?.is_empty() {
            return Ok(false);
        }
        self.change(&["add", "--all"])?;
        self.change(&[&IDENTITY[..], &["commit", "--quiet", "--message", message]].concat())?;
        Ok(true)
    }

    /// What the work tree changes in services/ and config/ since `commit` (what the learner
    /// wrote).
    pub fn diff_since(&self, commit: &str) -> anyhow::Result<String> {
        self.read_exactly(&["diff", commit, "--", "services", "config"])
    }

    /// The diff that undoes `patch` on top of `base`: computed in a scratch index, so the work
    /// tree is not touched.
    pub fn undoing(&self, patch: &Path, base: &str) -> anyhow::Result<String> {
        let scratch = tempfile::tempdir()?;
        let index = scratch.path().join("index");
        let in_scratch = |args: &[&str]| -> anyhow::Result<String> {
            let output =
                duct::cmd("git", args).dir(&self.root).env("GIT_INDEX_FILE", &index).stderr_capture().read()?;
            Ok(output.trim().to_owned())
        };
        in_scratch(&["read-tree", base])?;
        in_scratch(&["apply", "--cached", &patch.to_string_lossy()])
            .with_context(|| format!("{} does not apply to {base}", patch.display()))?;
        let broken = in_scratch(&["write-tree"])?;
        self.read_exactly(&["diff", &broken, base])
    }
}
