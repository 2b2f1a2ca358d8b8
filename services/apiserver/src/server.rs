//! How apiserver serves connections (HTTP/1.1, with hyper), with the limits a server facing the
//! public needs, so slow or idle clients cannot take it down:
//!
//! - a client must send a request's headers within `header_read_timeout`, and an idle
//!   keep-alive connection is closed after that long (hyper starts the same timer while it
//!   waits for the next request);
//! - a request's body must arrive within `request_body_timeout`, however slowly it trickles
//!   (answered 408);
//! - at most `max_connections` connections at once (by default what the process's file limit
//!   allows): when a new client comes and all are taken, the connection idle the longest (a
//!   keep-alive connection between requests, or one that has sent nothing yet) is closed to make
//!   room; when none is idle, the new client waits in the kernel's queue;
//! - on shutdown, requests in flight get `shutdown_timeout` to finish; then the remaining
//!   connections are closed and the process exits.

use std::{
    future::Future,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    net::TcpListener,
    sync::{Notify, Semaphore, watch},
    task::JoinSet,
    time::Instant,
};
use tower::{ServiceBuilder, ServiceExt as _};
use tower_http::timeout::RequestBodyDeadlineLayer;

/// The limits; `apiserver --help` shows their flags and defaults.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Limits {
    /// Time a client has to send a request's headers; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, env = "APISERVER_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// Time a client has to send a request's whole body (408 after it).
    #[arg(long, env = "APISERVER_REQUEST_BODY_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_body_timeout: Duration,

    /// Connections served at once; when all are taken, the one idle the longest is closed for
    /// a new client (or, none idle, the client waits). Default: the process's file limit
    /// (raised to its hard limit) less 128 descriptors for everything else.
    #[arg(long, env = "APISERVER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// On SIGTERM, how long requests in flight may take to finish before their connections
    /// are closed.
    #[arg(long, env = "APISERVER_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_body_timeout: Duration::from_secs(10),
            max_connections: None,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// File descriptors kept for everything but client connections: the listener, todomanager's
/// and the exporter's connections, logs, the runtime's own.
const RESERVED_DESCRIPTORS: u64 = 128;

/// The connection cap a file limit allows.
fn cap_for(file_limit: u64) -> usize {
    usize::try_from(file_limit.saturating_sub(RESERVED_DESCRIPTORS)).unwrap_or(usize::MAX).max(16)
}

/// The process's file limit, its soft limit first raised to the hard one (as Go's runtime does
/// since 1.19: the soft default, often 1,024, is kept low for programs using select(2)).
fn file_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() => hard,
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

impl Limits {
    /// The connection cap: `--max-connections`, or what the file limit allows.
    pub fn connection_cap(&self) -> usize {
        self.max_connections.unwrap_or_else(|| cap_for(file_limit())).max(1)
    }
}

/// What the accept loop knows of a connection, to choose which one makes room.
#[derive(Default)]
struct Activity {
    requests_in_flight: AtomicUsize,
    /// When it was accepted or last answered, in milliseconds since the server started.
    idle_since: AtomicU64,
    closing: AtomicBool,
    close: Notify,
}

/// The open connections, as the accept loop sees them.
struct Open {
    started: Instant,
    connections: Vec<Weak<Activity>>,
}

impl Open {
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn add(&mut self) -> Arc<Activity> {
        let activity = Arc::new(Activity { idle_since: AtomicU64::new(self.now()), ..Default::default() });
        self.connections.retain(|connection| connection.strong_count() > 0);
        self.connections.push(Arc::downgrade(&activity));
        activity
    }

    /// Closes the connection idle the longest, if one is idle: a keep-alive connection
    /// between requests, or one that has not sent a request yet. Whether one was.
    fn make_room(&mut self) -> bool {
        self.connections.retain(|connection| connection.strong_count() > 0);
        let idlest = self
            .connections
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|activity| {
                activity.requests_in_flight.load(Ordering::Acquire) == 0 && !activity.closing.load(Ordering::Acquire)
            })
            .min_by_key(|activity| activity.idle_since.load(Ordering::Acquire));
        let Some(idlest) = idlest else { return false };
        idlest.closing.store(true, Ordering::Release);
        idlest.close.notify_one();
        true
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then lets the
/// requests in flight finish (for `shutdown_timeout` at most).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // HTTP/1.1 only: what clients and the ingress speak here. (hyper's auto-detecting builder
    // waits for a connection's first bytes with no timeout at all: an idle client would hold a
    // connection forever.)
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let cap = limits.connection_cap();
    tracing::info!(max_connections = %cap, "serving");
    let free = Arc::new(Semaphore::new(cap));
    let mut open = Open { started: Instant::now(), connections: Vec::new() };
    let (stopping, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut said_full = false;

    'accept: loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a little instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // A client is here: a connection idle the longest makes room for it; with none idle, it
        // waits for one to finish (looking again, as busy ones turn idle).
        let permit = loop {
            if let Ok(permit) = free.clone().try_acquire_owned() {
                break permit;
            }
            if !said_full {
                tracing::warn!(limit = cap, "connection limit reached: the idlest connections make room");
                said_full = true;
            }
            open.make_room();
            tokio::select! {
                permit = free.clone().acquire_owned() => break permit.expect("the semaphore is never closed"),
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
                () = &mut shutdown => break 'accept,
            }
        };
        if free.available_permits() > 0 {
            said_full = false;
        }
        let activity = open.add();
        // The client's address for the spans' `client.address`, as axum's `ConnectInfo`; each
        // request counted in flight until its response is ready.
        let (starts, ends) = (activity.clone(), activity.clone());
        let clock = open.started;
        let app = router
            .clone()
            .map_request(move |mut request: axum::http::Request<_>| {
                starts.requests_in_flight.fetch_add(1, Ordering::AcqRel);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            })
            .map_response(move |response| {
                ends.idle_since.store(clock.elapsed().as_millis() as u64, Ordering::Release);
                ends.requests_in_flight.fetch_sub(1, Ordering::AcqRel);
                response
            });
        let service =
            ServiceBuilder::new().layer(RequestBodyDeadlineLayer::new(limits.request_body_timeout)).service(app);
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let mut stop = stop.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            // Closing, for room or for shutdown, is graceful: a request in flight is answered.
            tokio::select! {
                _ = connection.as_mut() => {}
                () = activity.close.notified() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.as_mut().await;
                }
                () = async { drop(stop.wait_for(|stopping| *stopping).await) } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.as_mut().await;
                }
            }
            drop(permit);
        });
    }

    drop(listener);
    if !connections.is_empty() {
        tracing::info!(connections = connections.len(), "finishing the requests in flight");
    }
    let _ = stopping.send(true);
    let finished = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.shutdown_timeout, finished).await.is_err() {
        tracing::warn!(
            connections = connections.len(),
            timeout = %humantime::format_duration(limits.shutdown_timeout),
            "connections still open after the shutdown timeout: closing them"
        );
    }
    connections.abort_all();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_follows_the_file_limit() {
        assert_eq!(cap_for(1024), 896);
        assert_eq!(cap_for(1_048_576), 1_048_448);
        assert_eq!(cap_for(100), 16, "a floor, however low the limit");
    }
}
