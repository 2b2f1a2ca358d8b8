//! A short smoke run of `cargo xtask bench` (debug builds, a few seconds): the command keeps
//! working and writes its table. The numbers of a real run come from release builds.

use std::process::Command;

#[test]
fn bench_smoke_run_writes_the_table() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "bench",
            "--debug",
            "--no-build",
            "--duration",
            "1s",
            "--warmup",
            "500ms",
            "--concurrency",
            "2",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let table = std::fs::read_to_string(out.path().join("bench.md")).unwrap();
    for row in
        ["| A: tracing off", "| B: tracing on", "| C: tracing on, exporter pointed at a dead endpoint", "Ratios to A"]
    {
        assert!(table.contains(row), "{row:?} missing in:\n{table}");
    }
    // Every span of B arrived: the smoke run is small enough for nothing to be dropped.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("bench.json")).unwrap()).unwrap();
    let b = &json["outcomes"][1];
    assert_eq!(b["setup"], "B");
    for service in ["apiserver", "todomanager"] {
        let [delivered, expected] = [&b["spans_delivered"][service][0], &b["spans_delivered"][service][1]];
        assert!(expected.as_u64().unwrap() > 0 && delivered == expected, "{service}: {delivered}/{expected}");
    }
    assert_eq!(json["outcomes"][0]["errors"], 0);
}
