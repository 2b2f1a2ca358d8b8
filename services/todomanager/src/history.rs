//! The history of every change to a todo (created, updated, deleted), written apart from the
//! requests that make them: a task of its own gathers the changes for a moment and writes them
//! in one INSERT. A request does not wait for its history, and a hundred changes are one write,
//! not a hundred. Each row keeps the trace id of the request that made the change.
//!
//! Whose trace is such a write in? Not one request's: a batch is written for many. It is the
//! lesson of span links (exercise `span-links`, chapter 8).
//!
//! Nothing queued is lost at shutdown: the writer ends only once every sender is gone and the
//! queue is written.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, TraceContextExt};
use tokio::sync::mpsc;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::store::{HistoryRow, Store};

/// The most changes in one INSERT (five values each, far below SQLite's 32,766 variables).
const MOST_IN_ONE_WRITE: usize = 500;
/// Changes waiting to be written: beyond this, a request waits for the writer (no change is
/// dropped).
const QUEUE: usize = 10_000;
/// How often a failed write is tried again before its rows are given up (and logged).
const ATTEMPTS: u32 = 3;

/// What a change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Deleted,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
        }
    }
}

/// A change waiting to be written, with the span of the request that made it.
struct Change {
    row: HistoryRow,
    made_in: SpanContext,
}

/// Where the services record changes; cloning it is cheap.
#[derive(Clone)]
pub struct History {
    queue: mpsc::Sender<Change>,
}

impl History {
    /// Starts the writer, gathering changes for `window` before each write. It ends once every
    /// `History` is dropped and what was queued is written: await it before the process exits.
    pub fn start(store: Store, window: Duration) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, changes) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(write_batches(store, changes, window));
        (Self { queue }, writer)
    }

    /// Queues a change to `todo_id`, made by the request whose span is current.
    pub async fn record(&self, owner: &str, todo_id: i64, action: Action) {
        let made_in = tracing::Span::current().context().span().span_context().clone();
        let at_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as i64);
        let row = HistoryRow {
            owner: owner.to_owned(),
            todo_id,
            action: action.as_str().to_owned(),
            at_unix_ms,
            // Empty when the change was made outside any trace (tracing off).
            trace_id: if made_in.is_valid() { made_in.trace_id().to_string() } else { String::new() },
        };
        if self.queue.send(Change { row, made_in }).await.is_err() {
            tracing::error!(
                todo_id,
                action = action.as_str(),
                "the history writer has stopped: this change is not recorded"
            );
        }
    }
}

/// Writes what arrives, a window's worth at a time, until the queue is closed and empty.
async fn write_batches(store: Store, mut changes: mpsc::Receiver<Change>, window: Duration) {
    while let Some(first) = changes.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + window;
        while batch.len() < MOST_IN_ONE_WRITE {
            match tokio::time::timeout_at(deadline, changes.recv()).await {
                Ok(Some(change)) => batch.push(change),
                // Closed (the service is stopping: write what there is) or the window is over.
                Ok(None) | Err(_) => break,
            }
        }
        write(&store, batch).await;
    }
}

/// One write of a batch, in a span of its own.
async fn write(store: &Store, batch: Vec<Change>) {
    // No request's span is current here: the writer runs on its own task.
    let span = tracing::info_span!("history batch", otel.name = "history-write", history.changes = batch.len());
    for change in &batch {
        span.add_link(change.made_in.clone());
    }
    let rows: Vec<HistoryRow> = batch.into_iter().map(|change| change.row).collect();
    async {
        for attempt in 1..=ATTEMPTS {
            match store.append_history(&rows).await {
                Ok(()) => return,
                Err(error) if attempt < ATTEMPTS => {
                    tracing::warn!(%error, attempt, "writing the history failed; trying again in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(error) => {
                    let lost: Vec<String> = rows.iter().map(|row| format!("{} {}", row.action, row.todo_id)).collect();
                    tracing::error!(%error, lost = ?lost, "writing the history failed {ATTEMPTS} times: these changes are not in it");
                }
            }
        }
    }
    .instrument(span)
    .await;
}
