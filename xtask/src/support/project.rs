//! Where things are in the workshop's checkout.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The variable that points the commands at another checkout (the exercise tests use a copy).
pub const ROOT_VAR: &str = "WORKSHOP_ROOT";

/// The root of the checkout (the folder holding the workspace's `Cargo.toml`).
pub fn root() -> PathBuf {
    if let Some(root) = std::env::var_os(ROOT_VAR) {
        return root.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_owned()
}

/// The chapters' folders under `chapters_dir` with their numbers, in order:
/// `chapters/03-instrumenting-todomanager` is chapter 3. A folder not so named is an error
/// (hidden ones aside): its expectations, questions or exercises would be silently ignored.
pub fn chapter_folders(chapters_dir: &Path) -> anyhow::Result<Vec<(u32, PathBuf)>> {
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(chapters_dir).with_context(|| format!("cannot read {}", chapters_dir.display()))? {
        let folder = entry?.path();
        let name = folder.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        if !folder.is_dir() || name.starts_with('.') {
            continue;
        }
        let number = name.split_once('-').and_then(|(number, _)| number.parse().ok()).with_context(|| {
            format!("{}: a chapter's folder is named NN-name, like 03-instrumenting-todomanager", folder.display())
        })?;
        folders.push((number, folder));
    }
    folders.sort();
    Ok(folders)
}

/// Where cargo put xtask, and so the services it builds with the same profile.
pub fn binaries_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("cannot find xtask's own executable");
    exe.parent().expect("xtask's executable has a folder").to_owned()
}

/// The `cargo` that runs us, or the one on `PATH`.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// A stable 64-bit hash (FNV-1a), for fingerprints of inputs that decide whether to redo a step.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

/// The first chapter that runs in the cluster, and the last.
pub const FIRST_CLUSTER_CHAPTER: u32 = 9;
/// From this chapter on the ingress starts the traces (the edge).
pub const EDGE_CHAPTER: u32 = 10;
/// From this chapter on failure injection is on in the cluster.
pub const FAULTS_CHAPTER: u32 = 11;
pub const LAST_CHAPTER: u32 = 11;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chapter_folders_are_numbered_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for folder in ["10-the-edge", "09-into-the-cluster", "00-setup", ".hidden"] {
            std::fs::create_dir(dir.path().join(folder)).unwrap();
        }
        std::fs::write(dir.path().join("README.md"), "").unwrap();
        let numbers: Vec<u32> = chapter_folders(dir.path()).unwrap().into_iter().map(|(number, _)| number).collect();
        assert_eq!(numbers, [0, 9, 10]);

        std::fs::create_dir(dir.path().join("notes")).unwrap();
        let error = format!("{:#}", chapter_folders(dir.path()).unwrap_err());
        assert!(error.contains("notes: a chapter's folder is named NN-name"), "{error}");
    }
}
