//! The loads the bench sends: what each client does, over and over, for a while.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde::Serialize;
use serde_json::json;

/// What the clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Only reads: GET /v1/todo/{id} of todos stored before.
    Read,
    /// Only writes: create a todo, change it, delete it.
    Write,
    /// Create, read back, delete, and every fifth round list the todos.
    Mixed,
}

impl Workload {
    pub const ALL: [Workload; 3] = [Workload::Read, Workload::Write, Workload::Mixed];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Read => "read",
            Workload::Write => "write",
            Workload::Mixed => "mixed",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Workload::Read => "GET /v1/todo/{id} of 100 stored todos",
            Workload::Write => "POST, PUT, DELETE /v1/todo",
            Workload::Mixed => "POST, GET, DELETE, and every fifth round GET /v1/todo",
        }
    }

    /// Requests in one client round, on average (for pacing at a fixed rate).
    fn requests_per_round(self) -> f64 {
        match self {
            Workload::Read => 1.0,
            Workload::Write => 3.0,
            Workload::Mixed => 3.2,
        }
    }
}

/// The todos read by the read workload.
pub const STORED_TODOS: usize = 100;

/// What one period of load got back.
#[derive(Default)]
pub struct Tally {
    pub ok: u64,
    pub errors: u64,
    pub latencies_us: Vec<u32>,
}

impl Tally {
    fn record(&mut self, started: Instant, ok: bool) {
        self.latencies_us.push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        if ok {
            self.ok += 1;
        } else {
            self.errors += 1;
        }
    }

    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
    }

    /// The latency below which a fraction `p` of the requests were answered, in ms.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        self.latencies_us.sort_unstable();
        let rank = ((self.latencies_us.len() as f64 * p).ceil() as usize).saturating_sub(1);
        self.latencies_us.get(rank).copied().unwrap_or(0) as f64 / 1000.0
    }
}

/// One stack's API, as the clients see it.
#[derive(Clone)]
pub struct Target {
    http: reqwest::Client,
    api: Arc<str>,
    /// Ids of the todos the read workload reads.
    stored: Arc<[String]>,
}

impl Target {
    /// Stores the todos the read workload reads.
    pub async fn prepare(api: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::new();
        let mut stored = Vec::with_capacity(STORED_TODOS);
        for n in 0..STORED_TODOS {
            let todo: serde_json::Value = http
                .post(format!("{api}/v1/todo"))
                .json(&json!({ "text": format!("stored {n}") }))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .with_context(|| format!("cannot store a todo at {api}"))?
                .json()
                .await?;
            stored.push(todo["id"].as_str().context("a todo without an id")?.to_owned());
        }
        Ok(Self { http, api: api.into(), stored: stored.into() })
    }

    /// `concurrency` clients doing `workload` for `duration`, as fast as they can or together at
    /// `rate` requests per second.
    pub async fn load(&self, workload: Workload, concurrency: usize, rate: Option<u32>, duration: Duration) -> Tally {
        let deadline = Instant::now() + duration;
        let pause = rate.map(|rate| {
            Duration::from_secs_f64(concurrency as f64 * workload.requests_per_round() / f64::from(rate.max(1)))
        });
        let clients: Vec<_> = (0..concurrency)
            .map(|client| {
                let target = self.clone();
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    let mut next = tokio::time::Instant::now();
                    let mut round = 0usize;
                    while Instant::now() < deadline {
                        target.round(workload, client + round * concurrency, &mut tally).await;
                        round += 1;
                        if let Some(pause) = pause {
                            next += pause;
                            tokio::time::sleep_until(next).await;
                        }
                    }
                    tally
                })
            })
            .collect();
        let mut total = Tally::default();
        for client in clients {
            if let Ok(tally) = client.await {
                total.add(tally);
            }
        }
        total
    }

    /// One round of `workload`; `n` counts rounds over all clients.
    async fn round(&self, workload: Workload, n: usize, tally: &mut Tally) {
        let api = &self.api;
        match workload {
            Workload::Read => {
                let id = &self.stored[n % self.stored.len()];
                let started = Instant::now();
                tally.record(started, succeeded(self.http.get(format!("{api}/v1/todo/{id}")).send().await).await);
            }
            Workload::Write => {
                let Some(id) = self.create(tally).await else { return };
                let started = Instant::now();
                let update = self.http.put(format!("{api}/v1/todo/{id}")).json(&json!({ "done": true }));
                tally.record(started, succeeded(update.send().await).await);
                self.delete(&id, tally).await;
            }
            Workload::Mixed => {
                if let Some(id) = self.create(tally).await {
                    let started = Instant::now();
                    tally.record(started, succeeded(self.http.get(format!("{api}/v1/todo/{id}")).send().await).await);
                    self.delete(&id, tally).await;
                }
                // Deleting keeps the list short, so that every round costs the same.
                if n.is_multiple_of(5) {
                    let started = Instant::now();
                    tally.record(started, succeeded(self.http.get(format!("{api}/v1/todo")).send().await).await);
                }
            }
        }
    }

    async fn create(&self, tally: &mut Tally) -> Option<String> {
        let started = Instant::now();
        let created = self.http.post(format!("{}/v1/todo", self.api)).json(&json!({ "text": "bench" })).send().await;
        let id = match created {
            Ok(response) if response.status().is_success() => {
                response.json::<serde_json::Value>().await.ok().and_then(|todo| todo["id"].as_str().map(str::to_owned))
            }
            _ => None,
        };
        tally.record(started, id.is_some());
        id
    }

    async fn delete(&self, id: &str, tally: &mut Tally) {
        let started = Instant::now();
        tally.record(started, succeeded(self.http.delete(format!("{}/v1/todo/{id}", self.api)).send().await).await);
    }
}

/// Whether the request succeeded; its body is read to the end, so that the connection is
/// used again (an unread body would close it).
async fn succeeded(result: Result<reqwest::Response, reqwest::Error>) -> bool {
    match result {
        Ok(response) => response.status().is_success() & response.bytes().await.is_ok(),
        Err(_) => false,
    }
}
