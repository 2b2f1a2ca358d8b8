//! Where things are in the workshop's checkout.

use std::path::PathBuf;

/// The variable that points the commands at another checkout (the exercise tests use a copy).
pub const ROOT_VAR: &str = "WORKSHOP_ROOT";

/// The root of the checkout (the folder holding the workspace's `Cargo.toml`).
pub fn root() -> PathBuf {
    if let Some(root) = std::env::var_os(ROOT_VAR) {
        return root.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_owned()
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
