//! `cargo xtask up --local --check`: the chapters verified against the real traces, with faults
//! on too, and expectations that cannot hold failing with a diagnosis.

mod local;

use std::process::Command;

use nix::sys::signal::Signal;

use local::*;

/// The README's first command with `--check`: the whole local stack starts, the chapters that
/// apply locally are verified against real traces, everything stops, and the exit status says
/// whether the traces are as the chapters claim.
#[test]
fn up_local_check_verifies_the_chapters() {
    let state = tempfile::tempdir().unwrap();
    let output = xtask_up(state.path(), free_port()).arg("--check").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_every_expectation_holds(&stdout);
}

/// The chapters on reading traces as their own state brings the stack up: failure injection on
/// at random (a fixed seed), and still every expectation holds (the checks choose their fates).
#[test]
fn up_local_check_verifies_the_reading_chapters_with_faults_on() {
    let state = tempfile::tempdir().unwrap();
    let output =
        xtask_up(state.path(), free_port()).args(["--chapter", "8", "--fault-seed", "3", "--check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("Failure injection is on"), "{stdout}");
    assert_every_expectation_holds(&stdout);
}

/// Expectations that cannot hold make verify fail with a diagnosis, not a crash.
#[test]
fn broken_expectations_fail_with_a_diagnosis() {
    let state = tempfile::tempdir().unwrap();
    let mut up = Up::start(state.path());
    let chapters = tempfile::tempdir().unwrap();
    let chapter = chapters.path().join("09-broken");
    std::fs::create_dir(&chapter).unwrap();
    std::fs::write(
        chapter.join("expect.toml"),
        r#"
title = "Broken on purpose"
[[request]]
method = "POST"
path = "/v1/todo"
body = '{"text": "x"}'
status = 201

[[request.span]]
id = "api"
service = "apiserver"
name = "POST /v1/todo"
parent = "root"

[[request.span]]
service = "todomanager"
name = "db-teleport"
kind = "client"

[[request.span]]
service = "todomanager"
name = "db-create"
parent = "api"

[[request.span]]
service = "billing"
name = "charge"
"#,
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .env("WORKSHOP_STATE_DIR", chapters.path())
        .args(["verify", "--chapter", "9", "--timeout", "3s", "--api", &up.api, "--jaeger", &up.traces, "--chapters"])
        .arg(chapters.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}");
    assert!(stderr.contains("verification failed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stdout.contains("todomanager reported") && stdout.contains("but no client span named `db-teleport`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("`db-create` is a child of todomanager `todo_mgr.TodoManager/CreateTodo`, expected a child of apiserver `POST /v1/todo`"),
        "{stdout}"
    );
    assert!(stdout.contains("no spans from billing at all: billing exports nowhere"), "{stdout}");
    assert!(stdout.contains("✓ apiserver  POST /v1/todo"), "what holds is still shown: {stdout}");

    up.signal(Signal::SIGTERM);
    assert!(up.wait().0.success());
}
