//! The harness of the tests that run a bare cluster (`bare.rs`, `cluster_bare.rs`): xtask and
//! kubectl against it, a guard that brings it down when a test fails half-way, waiting with a
//! diagnosis.

#![allow(dead_code)] // each test file uses its part

use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

/// `cargo xtask ARGS`, its output printed (shown when the test fails).
pub fn xtask(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).output().unwrap();
    println!(
        "$ xtask {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `cargo xtask ARGS`, which must succeed: what it printed (its end in the failure's message).
pub fn xtask_ok(args: &[&str]) -> String {
    let output = xtask(args);
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "xtask {} failed:\n{}", args.join(" "), last_lines(&said, 30));
    said
}

/// kubectl of `cargo xtask tools install` at the bare cluster.
pub fn kubectl(args: &[&str]) -> Output {
    let root = testkit::real::workspace_root();
    Command::new(root.join(".state/tools/bin/kubectl"))
        .arg("--kubeconfig")
        .arg(root.join(".state/bare/kubeconfig"))
        .args(args)
        .output()
        .unwrap()
}

pub fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The last `lines` lines of what a command printed: in a failure's message, where the end of a
/// test's output (all that a CI log may keep of it) shows it.
pub fn last_lines(said: &str, lines: usize) -> String {
    let kept: Vec<&str> = said.lines().collect();
    kept[kept.len().saturating_sub(lines)..].join("\n")
}

/// Brings the cluster down even when an assertion failed half-way. Quietly: its one line comes
/// after the failure's message, which stays at the end of the test's output.
pub struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let args = ["down", "--provider", "bare", "--delete-cluster", "--yes"];
            let down = Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).output();
            let said = match down {
                Ok(output) if output.status.success() => "brought down after the failure above".to_owned(),
                Ok(output) => format!("down failed too:\n{}", last_lines(&String::from_utf8_lossy(&output.stderr), 15)),
                Err(error) => format!("down did not start: {error}"),
            };
            eprintln!("(the bare cluster: {said})");
        }
    }
}

/// Waits for `done`; on a timeout, fails with what `explain` finds.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool, explain: impl Fn() -> String) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "waited {timeout:?} for {what}\n{}", explain());
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A bare cluster from nothing: an earlier one (and its data) is removed first.
pub fn from_nothing() {
    if testkit::real::workspace_root().join(".state/bare").exists() {
        assert!(xtask(&["down", "--provider", "bare", "--delete-cluster", "--yes"]).status.success());
    }
}

/// Whether this machine has what a bare cluster with the workshop's images needs (root, the
/// tools, Debian's programs); each thing missing is said (a failure in CI).
pub fn can_run_a_bare_cluster(test: &str) -> bool {
    let tools = testkit::real::tools(
        &["kubernetes", "etcd", "coredns", "pause", "traefik", "jaeger", "otelcol-workshop", "helm3"],
        test,
    );
    let programs = testkit::real::host_programs(
        &["containerd", "ctr", "runc", "iptables", "conntrack", "nft", "ip", "curl", "mariadbd"],
        test,
    );
    tools & programs & testkit::real::root(test)
}
