//! The services under faults, as real processes on real sockets: the database cut off, a
//! SIGTERM in the middle of traffic, a collector that never answers.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{
    Relay, TestDb,
    process::{Service, apiserver, todomanager, todomanager_with_timeout},
};

/// MariaDB behind a relay: while it is cut, the API answers 503 with a JSON error within 2 s;
/// once it is back, the same processes serve again.
#[tokio::test(flavor = "multi_thread")]
async fn database_unreachable_is_503_and_recovers() {
    let Some(db) = testkit::mysql().await else { return };
    let host_port =
        db.url.trim_start_matches("mysql://").split_once('@').map_or("", |(_, rest)| rest).split('/').next().unwrap();
    let target = tokio::net::lookup_host(host_port).await.unwrap().next().unwrap();
    let relay = Relay::start(target).await;
    let relayed = db.url.replace(host_port, &relay.addr().to_string());
    // It must give up on the database quickly: the API answers within 2 s while it is cut off.
    let todomanager = todomanager_with_timeout(&relayed, "500ms", None);
    let (_apiserver, api) = apiserver(&todomanager, None);
    let http = reqwest::Client::new();
    let created = http.post(format!("{api}/v1/todo")).json(&json!({"text": "before"})).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    relay.cut();
    for _ in 0..3 {
        let started = Instant::now();
        let response = http.get(format!("{api}/v1/todo")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("unavailable"), "{body}");
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }

    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = http.get(format!("{api}/v1/todo")).send().await.unwrap();
        if response.status() == StatusCode::OK {
            assert_eq!(response.json::<Value>().await.unwrap().as_array().unwrap().len(), 1);
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", response.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = db;
}

/// SIGTERM while clients create todos: every answer is a 201 (never a 5xx, never a cut-off
/// answer for a request the server took), every 201 is in the database after a restart, and
/// the spans of the answered requests reach the collector before the processes exit.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_loses_nothing() {
    let db: TestDb = testkit::sqlite();
    let collector = testkit::Collector::start().await;
    let endpoint = collector.endpoint();
    let todomanager_process = todomanager(&db.url, Some(&endpoint));
    let (apiserver_process, api) = apiserver(&todomanager_process, Some(&endpoint));

    let created: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut clients = Vec::new();
    for client in 0..8 {
        let (api, created, failures) = (api.clone(), created.clone(), failures.clone());
        clients.push(tokio::spawn(async move {
            // A new connection per request: one refused after the SIGTERM was never accepted.
            let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
            for n in 0.. {
                let sent =
                    http.post(format!("{api}/v1/todo")).json(&json!({"text": format!("c{client}-{n}")})).send().await;
                match sent {
                    Ok(response) if response.status() == StatusCode::CREATED => {
                        let trace_id = response.headers()["x-trace-id"].to_str().unwrap().to_owned();
                        let body: Value = response.json().await.unwrap();
                        created.lock().unwrap().push((body["id"].as_str().unwrap().to_owned(), trace_id));
                    }
                    Ok(response) => failures.lock().unwrap().push(format!("{}", response.status())),
                    // The server no longer accepts: a refusal, or a reset of a connection that
                    // waited in the kernel's backlog and was never accepted. Done.
                    Err(error) if error.is_connect() || never_accepted(&error) => break,
                    Err(error) => failures.lock().unwrap().push(format!("{error:?}")),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    apiserver_process.send_sigterm();
    for client in clients {
        client.await.unwrap();
    }
    assert!(tokio::task::spawn_blocking(move || apiserver_process.wait()).await.unwrap().success());
    todomanager_process.send_sigterm();
    assert!(tokio::task::spawn_blocking(move || todomanager_process.wait()).await.unwrap().success());

    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "accepted requests failed: {failures:#?}");
    let created = created.lock().unwrap().clone();
    assert!(created.len() > 20, "too little traffic to mean anything: {}", created.len());

    // Restarted on the same database: every 201 is there.
    let todomanager_process = todomanager(&db.url, None);
    let (_apiserver, api) = apiserver(&todomanager_process, None);
    let listed: Value = reqwest::get(format!("{api}/v1/todo")).await.unwrap().json().await.unwrap();
    let stored: Vec<&str> = listed.as_array().unwrap().iter().map(|todo| todo["id"].as_str().unwrap()).collect();
    for (id, _) in &created {
        assert!(stored.contains(&id.as_str()), "todo {id} was answered 201 but is not stored");
    }
    // And the spans of every answered request arrived before the exits.
    let traced: std::collections::HashSet<String> =
        collector.spans().into_iter().filter(|span| span.name == "POST /v1/todo").map(|span| span.trace_id).collect();
    for (id, trace_id) in &created {
        assert!(traced.contains(trace_id), "the trace of todo {id} ({trace_id}) never arrived");
    }
}

/// A connection reset before any answer: the listener closed with the connection still in its
/// backlog, so the server never read the request.
fn never_accepted(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionReset;
        }
        source = current.source();
    }
    false
}

/// With the collector unreachable, a sustained run is served normally and memory stays bounded
/// (the export queue drops spans instead of growing).
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_collector_costs_no_memory_growth() {
    let db = testkit::sqlite();
    let todomanager = todomanager(&db.url, None);
    let (apiserver, api) = apiserver(&todomanager, None);
    let rss = Service::rss_kib;
    let run = |requests: usize| {
        let api = api.clone();
        async move {
            let http = reqwest::Client::new();
            let mut tasks = Vec::new();
            for worker in 0..8 {
                let (http, api) = (http.clone(), api.clone());
                tasks.push(tokio::spawn(async move {
                    for n in 0..requests / 8 {
                        let response = if n % 2 == 0 {
                            http.post(format!("{api}/v1/todo"))
                                .json(&json!({"text": format!("w{worker}")}))
                                .send()
                                .await
                        } else {
                            http.get(format!("{api}/v1/todo/1")).send().await
                        };
                        let response = response.unwrap();
                        let status = response.status();
                        assert!(status.is_success(), "{status}: {}", response.text().await.unwrap_or_default());
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        }
    };
    // The GETs read todo 1: create it before any worker asks for it.
    let created =
        reqwest::Client::new().post(format!("{api}/v1/todo")).json(&json!({"text": "first"})).send().await.unwrap();
    assert_eq!(created.status(), 201);
    run(800).await;
    let before = (rss(&apiserver), rss(&todomanager));
    run(2400).await;
    let after = (rss(&apiserver), rss(&todomanager));
    // The queue holds at most 2048 spans per service: a few MiB. 32 MiB of growth would mean
    // that something keeps what it cannot send.
    for (name, before, after) in [("apiserver", before.0, after.0), ("todomanager", before.1, after.1)] {
        assert!(before > 0, "cannot read {name}'s memory");
        assert!(after < before + 32 * 1024, "{name} grew from {before} KiB to {after} KiB");
    }
}
