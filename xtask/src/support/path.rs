//! Programs on the `PATH`: where xtask looks for minikube, kubectl, Helm, mdbook, Docker.

use std::path::PathBuf;

/// Where programs are looked for: the directories of `PATH`.
pub fn search_path() -> Vec<PathBuf> {
    std::env::var_os("PATH").map(|path| std::env::split_paths(&path).collect()).unwrap_or_default()
}

/// `program` in the first directory of `path` that has it.
pub fn find(program: &str, path: &[PathBuf]) -> Option<PathBuf> {
    path.iter().map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

/// A PATH without any of the tools, for tests.
#[cfg(test)]
pub fn empty() -> Vec<PathBuf> {
    vec![std::env::temp_dir().join("xtask-no-tools-here")]
}
