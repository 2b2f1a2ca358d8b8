//! Cluster mode on a machine without any of its tools (like our build machines): the plan is
//! printed in full, and a real run stops with the doctor's advice instead of a crash.

use std::process::{Command, Output};

/// xtask with a PATH where no tool can be found.
fn xtask_without_tools(args: &[&str]) -> Output {
    let empty = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).env("PATH", empty.path()).output().unwrap()
}

#[test]
fn dry_run_prints_the_whole_plan_without_the_tools() {
    let output = xtask_without_tools(&["up", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("Note: minikube, kubectl, helm not installed here"), "{stdout}");
    for expected in [
        "$ minikube start --profile tracing-workshop --cpus 4 --memory 8g",
        "$ helm upgrade --install linkerd-control-plane linkerd-edge/linkerd-control-plane",
        "$ helm upgrade --install todo helm/todo-app",
        "$ kubectl --context tracing-workshop --namespace tracing port-forward service/jaeger 16686:16686",
        "cargo xtask verify --mode cluster",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
}

#[test]
fn a_real_run_without_the_tools_gets_the_doctors_advice() {
    let output = xtask_without_tools(&["up"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stdout.contains("✗ minikube") && stdout.contains("fix: Linux:"), "{stdout}");
    assert!(stderr.contains("cannot start cluster mode: fix minikube, kubectl, helm"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let doctor = xtask_without_tools(&["doctor"]);
    assert!(!doctor.status.success());
    assert!(String::from_utf8_lossy(&doctor.stdout).contains("✗ helm"));
}

#[test]
fn down_dry_run_lists_the_uninstalls() {
    let output = xtask_without_tools(&["down", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let app = stdout.find("helm uninstall todo").expect("the app is removed");
    let linkerd = stdout.find("helm uninstall linkerd-crds").expect("linkerd is removed");
    assert!(app < linkerd, "in reverse order of installation:\n{stdout}");
    let delete = xtask_without_tools(&["down", "--delete-cluster", "--dry-run"]);
    assert!(String::from_utf8_lossy(&delete.stdout).contains("$ minikube delete --profile tracing-workshop"));
}

/// `cargo xtask lint` with the real tools: the chart linted and rendered by Helm 3 and Helm 4
/// for every state the plan installs, the renderings valid for Kubernetes 1.31 and 1.37, and the
/// collector's pipeline accepted by the collector itself.
#[test]
fn lint_runs_the_real_helms_the_schema_validation_and_the_collector() {
    let tools = ["helm3", "helm4", "kubernetes-validate", "otelcol-workshop"];
    if !testkit::real::tools(&tools, "cargo xtask lint with the real tools") {
        return;
    }
    let output = Command::new(env!("CARGO_BIN_EXE_xtask")).arg("lint").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for helm in ["helm3", "helm4"] {
        for kubernetes in ["1.31.0", "1.37.0"] {
            for variant in ["chapter 9, traefik", "chapter 10, nginx", "chapter 11, traefik"] {
                let line = format!("✓ {helm} lint --strict and template, Kubernetes {kubernetes}: {variant}");
                assert!(stdout.contains(&line), "missing {line:?} in:\n{stdout}");
            }
        }
    }
    // With ../shared/charts beside the checkout (CI), lint renders the upstream charts too: Linkerd's
    // CRDs and control plane, the collector and Jaeger, by both Helms.
    let upstream = testkit::real::workspace_root().join("../shared/charts").is_dir();
    if upstream {
        for chart in ["linkerd-crds-2026.8.3.tgz", "opentelemetry-collector-0.170.0.tgz", "jaeger-4.11.1.tgz"] {
            let line = format!("✓ helm4 template, Kubernetes 1.37.0: {chart} with the plan's values");
            assert!(stdout.contains(&line), "missing {line:?} in:\n{stdout}");
        }
    }
    let renderings = if upstream { 10 + 4 * 2 } else { 10 };
    for kubernetes in ["1.31.0", "1.37.0"] {
        let line = format!("✓ kubernetes-validate --strict -k {kubernetes}: {renderings} rendering(s)");
        assert!(stdout.contains(&line), "missing {line:?} in:\n{stdout}");
    }
    assert!(stdout.contains("✓ otelcol validate"), "{stdout}");
    assert!(!stdout.contains("skipped") || !upstream, "{stdout}");
}
