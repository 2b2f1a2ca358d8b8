//! A short smoke run of `cargo xtask bench` (debug builds, a few seconds per workload): the
//! command keeps working, measures every process, pairs its rounds and writes both reports. The
//! numbers of a real run come from release builds.

use std::process::Command;

#[test]
fn bench_smoke_run_writes_the_table_and_stable_json() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "--debug", "--no-build", "--rounds", "2", "--duration", "1s", "--warmup", "300ms"])
        .args(["--concurrency", "2", "--workload", "read,write,mixed", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let table = std::fs::read_to_string(out.path().join("bench.md")).unwrap();
    for row in [
        "**read load**",
        "**write load**",
        "**mixed load**",
        "| A: tracing off",
        "| B: tracing on",
        "| C: tracing on, exporter pointed at a dead endpoint",
        "B/A (median [range] of the rounds): CPU apiserver",
        "Goals",
    ] {
        assert!(table.contains(row), "{row:?} missing in:\n{table}");
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("bench.json")).unwrap()).unwrap();
    let outcomes = json["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 9, "three workloads × three setups");
    for outcome in outcomes {
        let (setup, cpu) = (outcome["setup"].as_str().unwrap(), &outcome["cpu_us_per_request"]);
        assert_eq!(outcome["errors"], 0, "{outcome}");
        assert_eq!(outcome["rounds"].as_array().unwrap().len(), 2);
        // Each process's own CPU clock was read: the services and the load generator worked.
        for process in ["apiserver", "todomanager", "load"] {
            assert!(cpu[process].as_f64().unwrap() > 0.0, "{setup} {process}: {cpu}");
        }
        // Only B has a trace store, and it did work.
        assert_eq!(cpu["tracestore"].as_f64().unwrap() > 0.0, setup == "B", "{setup}: {cpu}");
    }
    let ratios = json["ratios"].as_array().unwrap();
    for workload in ["read", "write", "mixed"] {
        for of in ["B/A", "C/A"] {
            let ratio = ratios
                .iter()
                .find(|ratio| {
                    ratio["workload"] == workload
                        && ratio["of"] == of
                        && ratio["metric"] == "cpu_us_per_request.apiserver"
                })
                .unwrap_or_else(|| panic!("no {of} CPU ratio for {workload}"));
            let [min, median, max] = ["min", "median", "max"].map(|field| ratio[field].as_f64().unwrap());
            assert!(min > 0.0 && min <= median && median <= max, "{ratio}");
        }
    }
    // Every span of B arrived: the smoke run is small enough for nothing to be dropped.
    for service in ["apiserver", "todomanager"] {
        let spans = &json["spans_delivered"][service];
        assert!(
            spans["expected"].as_u64().unwrap() > 0 && spans["delivered"] == spans["expected"],
            "{service}: {spans}"
        );
    }
    assert!(json["goals"].as_array().unwrap().iter().all(|goal| goal["met"].is_boolean()));
}

/// `--instructions`: the services run under callgrind and their instructions per request are
/// counted. Skipped, loudly, where valgrind is not installed.
#[test]
fn instruction_counts_come_from_callgrind() {
    if std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).all(|dir| !dir.join("valgrind").is_file()) {
        eprintln!("*** SKIPPED instruction_counts_come_from_callgrind: valgrind is not installed");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "--debug", "--no-build", "--instructions", "--setup", "A", "--workload", "read"])
        .args(["--duration", "1s", "--warmup", "300ms", "--concurrency", "2", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("instructions.json")).unwrap()).unwrap();
    let counts = json["counts"].as_array().unwrap();
    assert_eq!(counts.len(), 2, "apiserver and todomanager: {json:#}");
    for count in counts {
        assert!(count["requests"].as_u64().unwrap() > 0, "{count}");
        // Serving a request takes thousands of instructions, not none and not billions.
        let per_request = count["instructions_per_request"].as_u64().unwrap();
        assert!((10_000..100_000_000).contains(&per_request), "{count}");
        assert!(std::path::Path::new(count["callgrind_out"].as_str().unwrap()).is_file(), "{count}");
    }
    let table = std::fs::read_to_string(out.path().join("instructions.md")).unwrap();
    assert!(table.contains("| A: tracing off"), "{table}");
}
