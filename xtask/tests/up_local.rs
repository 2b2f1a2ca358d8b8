//! `cargo xtask up --local` as a user runs it: the processes it starts, Ctrl-C, one service
//! stopped and started again, a port in use, a service that cannot start.

mod local;

use std::{
    net::TcpListener,
    process::Command,
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use serde_json::{Value, json};

use local::*;

#[test]
fn ctrl_c_stops_every_service_and_the_data_stays() {
    let state = tempfile::tempdir().unwrap();

    let mut up = Up::start(state.path());
    let created: Value =
        http().post(format!("{}/v1/todo", up.api)).json(&json!({"text": "survive"})).send().unwrap().json().unwrap();
    assert_eq!(created["text"], "survive");
    up.signal(Signal::SIGINT);
    let (status, stderr) = up.wait();
    assert!(status.success(), "xtask after Ctrl-C: {status}\n{stderr}");
    up.assert_services_gone();
    assert!(state.path().join("todo.db").exists());
    assert!(state.path().join("logs/apiserver.log").exists());

    // A second run on the same state finds the todo; SIGTERM stops it as cleanly.
    let mut up = Up::start(state.path());
    let listed: Value = http().get(format!("{}/v1/todo", up.api)).send().unwrap().json().unwrap();
    assert!(listed.as_array().unwrap().contains(&created), "{listed}");
    up.signal(Signal::SIGTERM);
    let (status, stderr) = up.wait();
    assert!(status.success(), "xtask after SIGTERM: {status}\n{stderr}");
    up.assert_services_gone();
}

/// One service stopped (with `cargo xtask service stop`, or killed): the others keep running
/// and the API says what is missing; `service start` brings it back, and Ctrl-C still stops
/// everything.
#[test]
fn one_service_stops_and_starts_again_while_the_others_run() {
    let state = tempfile::tempdir().unwrap();
    let mut up = Up::start(state.path());
    let service = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("service")
            .args(args)
            .arg("--state-dir")
            .arg(state.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        stdout
    };
    let said = service(&["stop", "todomanager"]);
    assert!(said.contains("todomanager stopped"), "{said}");
    assert!(up.child.try_wait().unwrap().is_none(), "xtask must keep running");
    assert_eq!(http().get(format!("{}/ping", up.api)).send().unwrap().status(), 200, "apiserver keeps running");
    let list = http().get(format!("{}/v1/todo", up.api)).send().unwrap();
    assert!(list.status().is_server_error(), "{}", list.status());
    assert!(service(&["status"]).contains("todomanager  stopped"));

    let said = service(&["start", "todomanager"]);
    assert!(said.contains("todomanager started again"), "{said}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http().get(format!("{}/v1/todo", up.api)).send().map(|answer| answer.status().as_u16()).unwrap_or(0) != 200 {
        assert!(Instant::now() < deadline, "the API never recovered after todomanager came back");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A service that dies on its own is reported, and the others keep running too.
    let apiserver = up.services.iter().find(|(name, _)| name == "apiserver").unwrap().1;
    nix::sys::signal::kill(Pid::from_raw(apiserver), Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(up.child.try_wait().unwrap().is_none(), "xtask must keep running");
    service(&["start", "apiserver"]);

    up.signal(Signal::SIGINT);
    let (status, stderr) = up.wait();
    assert!(status.success(), "xtask after Ctrl-C: {status}\n{stderr}");
    up.assert_services_gone();
}

#[test]
fn a_port_in_use_is_named_with_the_option_to_change_it() {
    let state = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = xtask_up(state.path(), port).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&format!("port {port} is already in use")), "{stderr}");
    assert!(stderr.contains("--api-port"), "{stderr}");
}

/// A service that cannot start says why, and that reason is what xtask shows: not a backtrace,
/// even where RUST_BACKTRACE=1 (as in CI).
#[test]
fn a_service_that_fails_to_start_is_shown_with_its_reason() {
    let state = tempfile::tempdir().unwrap();
    let output = xtask_up(state.path(), free_port())
        .env("OTEL_PROPAGATORS", "bogus")
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("exited unexpectedly"), "{stderr}");
    assert!(stderr.contains(r#"OTEL_PROPAGATORS names "bogus""#), "{stderr}");
    assert!(!stderr.contains("Stack backtrace"), "{stderr}");
}
