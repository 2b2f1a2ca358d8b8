//! Reading traces on a running local stack with faults on: `search` and `trace` find and
//! explain the failed and the slow requests, `answer` checks the chapters' questions.

mod local;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;

use local::*;

/// With faults on and a fixed seed, `search` finds exactly the requests that failed (by
/// status and by attribute) and the ones that were slow (by duration and by attribute);
/// `trace --details` shows why one failed; `trace --compare` shows where a slow one lost its
/// time.
#[test]
fn search_finds_the_failed_and_the_slow_requests_and_trace_explains_them() {
    use std::collections::BTreeSet;

    let state = tempfile::tempdir().unwrap();
    let up = Up::start_with(state.path(), &["--faults", "--fault-seed", "11"]);
    let http = http();
    let (mut mine, mut failed, mut took) = (BTreeSet::new(), BTreeSet::new(), std::collections::HashMap::new());
    for _ in 0..40 {
        let started = Instant::now();
        let response = http.get(format!("{}/v1/todo", up.api)).send().unwrap();
        let id = response.headers()["x-trace-id"].to_str().unwrap().to_owned();
        took.insert(id.clone(), started.elapsed());
        // 500 from apiserver's faults; 504 when todomanager's injected slowness outlasts
        // apiserver's timeout: both are the server's failures, marked as errors.
        if response.status().is_server_error() {
            failed.insert(id.clone());
        }
        mine.insert(id);
    }
    assert!(!failed.is_empty() && failed.len() < 40, "seed 11 fails some requests, not all: {}", failed.len());
    let search = |args: &[&str]| -> BTreeSet<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut all = vec!["search", "--since", "10m", "--limit", "100"];
            all.extend_from_slice(args);
            let hits: BTreeSet<String> = found(&xtask_against(&up, &all)).intersection(&mine).cloned().collect();
            // Spans arrive in batches: wait until every request of ours has its trace.
            let everything: BTreeSet<String> =
                found(&xtask_against(&up, &["search", "--since", "10m", "--limit", "100"]));
            if mine.is_subset(&everything) || Instant::now() > deadline {
                return hits;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    };

    assert_eq!(search(&["--errors"]), failed, "--errors finds the 5xx");
    let injected = search(&["--attribute", "fault.injected=error"]);
    assert!(!injected.is_empty() && injected.is_subset(&failed), "{injected:?} {failed:?}");
    let delayed = search(&["--attribute", "fault.injected=delay"]);
    assert!(!delayed.is_empty(), "seed 11 delays some requests");
    let slow = search(&["--min-duration", "100ms"]);
    assert!(delayed.is_subset(&slow), "every delayed request lasted 100 ms or more: {delayed:?} {slow:?}");
    for id in slow.difference(&delayed) {
        assert!(took[id] >= Duration::from_millis(100), "{id} was not delayed, and not slow either");
    }
    let quick = search(&["--max-duration", "99ms"]);
    assert!(quick.is_disjoint(&delayed));

    let one_failure = failed.iter().next().unwrap();
    let details = xtask_against(&up, &["trace", one_failure, "--details"]);
    assert!(details.contains("apiserver  GET /v1/todo  (server)"), "{details}");
    assert!(details.contains("✗ Error"), "{details}");
    assert!(details.contains("fault.injected = error"), "{details}");
    assert!(details.contains("http.response.status_code = 500"), "{details}");
    assert!(details.contains("event at +") && details.contains("injected failure"), "{details}");

    // The store's own pages: the search form finds the same failures; a span unfolds.
    let page = http.get(format!("{}/?service=apiserver&errors=on", up.traces)).send().unwrap().text().unwrap();
    assert!(page.contains("<form") && page.contains("Traces found"), "{page}");
    for id in &mine {
        assert_eq!(page.contains(&format!("/trace/{id}")), failed.contains(id), "{id} on the errors page");
    }
    let bad = http.get(format!("{}/?service=apiserver&min=soon", up.traces)).send().unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().unwrap().contains("min duration"), "says which field is wrong");
    let page = http.get(format!("{}/trace/{one_failure}", up.traces)).send().unwrap().text().unwrap();
    assert!(page.contains("status <b>Error</b>") && page.contains("<code>fault.injected = error</code>"), "{page}");
    assert!(page.contains("event at +") && page.contains("injected failure"), "{page}");

    // The log lines of a request that todomanager held back: from both services, in time order.
    let held_back = found(&xtask_against(
        &up,
        &["search", "--service", "todomanager", "--attribute", "fault.injected=slow", "--since", "10m"],
    ));
    if let Some(id) = held_back.intersection(&mine).next() {
        let logs = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["logs", "--trace", id, "--state-dir"])
            .arg(state.path())
            .output()
            .unwrap();
        let logs = String::from_utf8_lossy(&logs.stdout).into_owned();
        let lines: Vec<&str> = logs.lines().collect();
        assert!(
            lines.iter().any(|line| line.starts_with("todomanager") && line.contains("injected slowness")),
            "{logs}"
        );
        assert!(
            lines.iter().any(|line| line.starts_with("apiserver") && line.contains("GET /v1/todo answered")),
            "{logs}"
        );
        assert!(lines.iter().all(|line| line.contains(id.as_str())), "only this trace's lines: {logs}");
        let times: Vec<&str> = lines.iter().map(|line| line.split_whitespace().nth(1).unwrap()).collect();
        assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "in time order: {logs}");
    } else {
        panic!("seed 11 makes todomanager hold back one of the 40 lists: {held_back:?}");
    }
    // And back: from the warning in the log to the traces it was logged in.
    let grep = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["logs", "--grep", "injected failure", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    let grep = String::from_utf8_lossy(&grep.stdout).into_owned();
    let named: BTreeSet<String> = grep
        .lines()
        .find_map(|line| line.strip_prefix("Their trace(s): "))
        .unwrap_or_else(|| panic!("{grep}"))
        .split(". ")
        .next()
        .unwrap()
        .split(", ")
        .map(str::to_owned)
        .collect();
    // Of ours, only failed ones (the chapters' checks, running alongside, fail some on purpose).
    let ours: BTreeSet<String> = named.intersection(&mine).cloned().collect();
    assert!(!ours.is_empty() && ours.is_subset(&failed), "{named:?} {failed:?}");

    let one_delay = delayed.iter().next().unwrap();
    let normal = mine.iter().find(|id| !failed.contains(*id) && !slow.contains(*id)).unwrap();
    let compared = xtask_against(&up, &["trace", one_delay, "--compare", normal]);
    let root = compared.lines().find(|line| line.starts_with("apiserver  GET /v1/todo")).unwrap();
    let difference = root.rsplit("  ").next().unwrap().trim();
    assert!(difference.starts_with('−'), "the delayed one (A) is slower: {compared}");
    let (number, unit) = difference.trim_start_matches('−').split_once(' ').unwrap();
    let millis = number.parse::<f64>().unwrap() * if unit == "s" { 1000.0 } else { 1.0 };
    assert!(unit != "µs" && millis >= 90.0, "at least the injected 100 ms: {compared}");
}

/// Every question of the reading chapters, on traces made with faults on and a fixed seed:
/// the right answer passes; a wrong one fails and says where to look, not the answer, which
/// comes only after the third wrong one (or with --reveal), and then no longer counts.
#[test]
fn the_chapters_questions_are_answered_from_the_traces() {
    let state = tempfile::tempdir().unwrap();
    let up = Up::start_with(state.path(), &["--chapter", "8", "--fault-seed", "11"]);
    let http = http();
    let mut failures = 0;
    for _ in 0..40 {
        if http.get(format!("{}/v1/todo", up.api)).send().unwrap().status().is_server_error() {
            failures += 1;
        }
    }
    let missing = http.get(format!("{}/v1/todo/999999", up.api)).send().unwrap();
    assert_eq!(missing.status(), 404);
    // Until the store holds still: the chapters' own checks run next to this test.
    let mut last = None;
    loop {
        let stats: Value = http.get(format!("{}/api/stats", up.traces)).send().unwrap().json().unwrap();
        if last.as_ref() == Some(&stats) {
            break;
        }
        last = Some(stats);
        std::thread::sleep(Duration::from_secs(2));
    }
    // The newest slow list (its log line is written before the answer goes out).
    let slow = http.get(format!("{}/v1/todo", up.api)).header("X-Inject-Fault", "slow").send().unwrap();
    let slow_trace = slow.headers()["x-trace-id"].to_str().unwrap().to_owned();

    // The slowest list was held back in todomanager: the time is its own. A wrong answer says
    // where to look, and nothing of the answer.
    let (right, said) = answer(&up, state.path(), &["slowest-span", "apiserver GET /v1/todo"]);
    assert!(!right && said.contains("✗ Not quite") && said.contains("How to find it"), "{said}");
    assert!(!said.contains("the answer is:") && !said.contains("ListTodos"), "the answer is not given away: {said}");
    let (right, said) = answer(&up, state.path(), &["slowest-span", "todomanager todo_mgr.TodoManager/ListTodos"]);
    assert!(right && said.starts_with("✓ Right"), "{said}");

    // Where a failure started: an injected failure is apiserver's own, before any call to
    // todomanager. The third wrong answer shows the right one; answered then, it does not count.
    let failing = http.get(format!("{}/v1/todo", up.api)).header("X-Inject-Fault", "error").send().unwrap();
    assert_eq!(failing.status(), 500);
    std::thread::sleep(Duration::from_secs(2)); // its spans reach the store
    for wrong in 1..=2 {
        let (right, said) = answer(&up, state.path(), &["where-it-failed", "todomanager db-list"]);
        assert!(!right && !said.contains("the answer is:"), "wrong answer {wrong}: {said}");
    }
    let (right, said) = answer(&up, state.path(), &["where-it-failed", "todomanager db-list"]);
    assert!(!right && right_answer(&said) == "apiserver GET /v1/todo", "{said}");
    assert!(said.contains("fault.injected error") && said.contains("spans of apiserver only"), "{said}");
    let (right, said) = answer(&up, state.path(), &["where-it-failed", "apiserver GET /v1/todo"]);
    assert!(right && said.contains("does not count"), "{said}");

    // Failures kept: every trace is recorded here, so every failure left one; the log lines
    // (one per failure, with its trace id) are what the traces are counted against.
    let (right, said) = answer(&up, state.path(), &["failures-kept", "some"]);
    assert!(!right && !said.contains("the answer is:"), "{said}");
    let (right, said) = answer(&up, state.path(), &["failures-kept", "all"]);
    assert!(right && said.starts_with("✓ Right"), "{said}");
    let counted: usize = said.split(" requests failed").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(counted > failures, "{counted} failures logged, {failures} of ours and one more: {said}");

    // --reveal shows the answer at once, with why.
    let (right, said) = answer(&up, state.path(), &["missing-todo-error", "--reveal"]);
    assert!(right && right_answer(&said) == "apiserver todo_mgr.TodoManager/GetTodo", "{said}");
    assert!(said.contains("NOT_FOUND"), "the explanation names the error type: {said}");
    let (right, said) = answer(&up, state.path(), &["missing-todo-error", "apiserver todo_mgr.TodoManager/GetTodo"]);
    assert!(right && said.contains("does not count"), "{said}");

    let (right, said) = answer(&up, state.path(), &["slow-line-trace", "0123456789abcdef0123456789abcdef"]);
    assert!(!right && !said.contains(&slow_trace), "{said}");
    assert!(answer(&up, state.path(), &["slow-line-trace", &slow_trace]).0);

    let (_, listed) = answer(&up, state.path(), &[]);
    assert!(listed.contains("✓ slow-line-trace") && listed.contains("✓ slowest-span"), "{listed}");
    assert!(listed.contains("◐ where-it-failed") && listed.contains("◐ missing-todo-error"), "{listed}");
    assert!(listed.contains("✓ failures-kept"), "{listed}");
}
