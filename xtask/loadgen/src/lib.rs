//! The load of `cargo xtask bench`: what each client does, over and over, for a while.
//!
//! It runs as a process of its own, built in release like the services (a debug-built load
//! generator took more CPU per request than both services together, and shares their two
//! cores). The bench starts one per stack and talks to it in JSON lines: [`Order`] in on
//! stdin, [`Tally`] out on stdout.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What the clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
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

/// One period of load to send.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    pub workload: Workload,
    pub concurrency: usize,
    /// A fixed total rate (requests per second) instead of as fast as possible.
    pub rate: Option<u32>,
    pub duration: Duration,
}

/// What one period of load got back.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Requests answered with success.
    pub ok: u64,
    /// Requests that failed, by what went wrong (`503`, `connect`, …).
    pub errors: BTreeMap<String, u64>,
    /// Requests the services answered, whatever the status: each made its spans.
    pub answered: u64,
    pub latencies_us: Vec<u32>,
}

impl Tally {
    fn record(&mut self, started: Instant, outcome: Result<(), String>) {
        self.latencies_us.push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        match outcome {
            Ok(()) => self.ok += 1,
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.answered += other.answered;
        self.latencies_us.extend(other.latencies_us);
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
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
    pub async fn load(&self, order: &Order) -> Tally {
        let Order { workload, concurrency, rate, duration } = *order;
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
        let (http, api) = (&self.http, &self.api);
        match workload {
            Workload::Read => {
                let id = &self.stored[n % self.stored.len()];
                send(http.get(format!("{api}/v1/todo/{id}")), tally).await;
            }
            Workload::Write => {
                let Some(id) = self.create(tally).await else { return };
                send(http.put(format!("{api}/v1/todo/{id}")).json(&json!({ "done": true })), tally).await;
                send(http.delete(format!("{api}/v1/todo/{id}")), tally).await;
            }
            Workload::Mixed => {
                if let Some(id) = self.create(tally).await {
                    send(http.get(format!("{api}/v1/todo/{id}")), tally).await;
                    send(http.delete(format!("{api}/v1/todo/{id}")), tally).await;
                }
                // Deleting keeps the list short, so that every round costs the same.
                if n.is_multiple_of(5) {
                    send(http.get(format!("{api}/v1/todo")), tally).await;
                }
            }
        }
    }

    /// Creates a todo; its id.
    async fn create(&self, tally: &mut Tally) -> Option<String> {
        let body =
            send(self.http.post(format!("{}/v1/todo", self.api)).json(&json!({ "text": "bench" })), tally).await?;
        let todo: serde_json::Value = serde_json::from_slice(body.as_ref()).ok()?;
        todo["id"].as_str().map(str::to_owned)
    }
}

/// Sends `request` and records how it went; the body of a success. The body is always read to
/// the end, so that the connection is used again (an unread body would close it).
async fn send(request: reqwest::RequestBuilder, tally: &mut Tally) -> Option<impl AsRef<[u8]>> {
    let started = Instant::now();
    let (outcome, body) = match request.send().await {
        Ok(response) => {
            tally.answered += 1;
            let status = response.status();
            match response.bytes().await {
                Ok(body) if status.is_success() => (Ok(()), Some(body)),
                Ok(_) => (Err(status.as_u16().to_string()), None),
                Err(_) => (Err("body".to_owned()), None),
            }
        }
        Err(error) if error.is_connect() => (Err("connect".to_owned()), None),
        Err(error) if error.is_timeout() => (Err("timeout".to_owned()), None),
        Err(_) => (Err("request".to_owned()), None),
    };
    tally.record(started, outcome);
    body
}
