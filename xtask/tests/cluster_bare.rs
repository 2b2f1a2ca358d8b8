//! Cluster mode for real, on the bare provider: `cargo xtask up --provider bare --charts
//! ../shared/charts --mesh off` installs the real collector, Jaeger, Traefik (their upstream
//! charts) and the app (its chart) from the images xtask writes, and `--check` verifies the
//! chapters through the port-forwards: a POST through the edge is one trace in the cluster's
//! Jaeger, Traefik's spans above apiserver's, through the collector. Then chapter 11 (failure
//! injection), the chart's `helm test`, a second `up` that changes nothing, and `down`.
//!
//! Needs what `bare.rs` needs, Helm and `../shared/charts`: skipped loudly without them,
//! required in CI.

mod common;

use common::{Down, from_nothing, xtask};

const TEST: &str = "cluster mode on the bare cluster";

fn out(output: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn chapters_10_and_11_hold_on_a_real_cluster_without_the_mesh() {
    let Some(charts) = testkit::real::shared("charts", TEST) else { return };
    if !(common::can_run_a_bare_cluster(TEST) & testkit::real::tools(&["traefik-chart"], TEST)) {
        return;
    }
    from_nothing();
    let down = Down;
    let charts = charts.display().to_string();
    let up = |chapter: &str| {
        let args = ["up", "--provider", "bare", "--charts", &charts, "--mesh", "off", "--chapter", chapter, "--check"];
        let output = xtask(&args);
        assert!(output.status.success(), "up --chapter {chapter} --check failed");
        out(&output)
    };

    // Chapter 10: Traefik's server and client spans, apiserver's straight below, todomanager's.
    let edge = up("10");
    for line in ["✓ traefik  *  (server)", "✓   traefik  *  (client)", "✓     apiserver  POST /v1/todo  (server)"]
    {
        assert!(edge.contains(line), "chapter 10 saw `{line}`:\n{edge}");
    }
    assert!(edge.contains("✓ every expectation holds"), "{edge}");

    // The chart's own test, against the release on the cluster.
    let root = testkit::real::workspace_root();
    let helm_test = std::process::Command::new(root.join(".state/tools/bin/helm3"))
        .args(["test", "todo", "--namespace", "todo", "--kubeconfig"])
        .arg(root.join(".state/bare/kubeconfig"))
        .output()
        .unwrap();
    assert!(helm_test.status.success() && out(&helm_test).contains("Phase:          Succeeded"), "{}", out(&helm_test));

    // Chapter 11: failure injection on (an upgrade of the app), its traces marked.
    let faults = up("11");
    assert!(faults.contains("Install the todo app") && !faults.contains("Install the todo app (already done"));
    assert!(faults.contains("── Chapter 11") && faults.contains("✓ every expectation holds"), "{faults}");

    // Again: every release up to date; only the checks run (the machine's, the app's readiness).
    let again = up("11");
    let changed: Vec<&str> = again
        .lines()
        .filter(|line| line.starts_with("✓ [") && !line.contains("already done"))
        .filter(|line| !line.contains("Check this machine") && !line.contains("Wait until the app is ready"))
        .collect();
    assert!(changed.is_empty(), "a second up changes nothing, yet: {changed:#?}\n{again}");
    assert!(again.contains("✓ every expectation holds"), "{again}");

    assert!(xtask(&["down", "--provider", "bare", "--delete-cluster", "--yes"]).status.success());
    drop(down);
}
