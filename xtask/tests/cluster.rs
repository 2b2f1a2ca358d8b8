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
