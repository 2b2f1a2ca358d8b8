//! Where the exercises are, as the catalog lays them out (`chapters/NN-*/exercises/NN-name/`):
//! shared by the tests that read them.

use std::path::{Path, PathBuf};

/// The folders in `dir`, sorted (none when it does not exist).
pub fn folders(dir: &Path) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|entry| entry.unwrap().path()).filter(|path| path.is_dir()).collect())
        .unwrap_or_default();
    folders.sort();
    folders
}

/// Every exercise's folder under `root`, in the chapters' order.
pub fn exercise_folders(root: &Path) -> Vec<PathBuf> {
    folders(&root.join("chapters")).iter().flat_map(|chapter| folders(&chapter.join("exercises"))).collect()
}
