//! A test collector: the workshop's own trace store (OTLP over gRPC, and HTTP with protobuf) on
//! ephemeral ports, so a test can look at the trace that really went over the wire.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use tokio::net::TcpListener;
use tracestore::{Store, model};

/// A span as it arrived (ids in lower-case hex; a root span's `parent_span_id` is empty).
pub use tracestore::model::Span as ReceivedSpan;

/// The trace store in this process, as `tracestore` serves it (its receivers, query API and
/// pages), on ephemeral ports; it stops when dropped. The one way tests start a trace store.
pub struct Collector {
    addr: SocketAddr,
    http_addr: SocketAddr,
    query_addr: SocketAddr,
    store: Store,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    pub async fn start() -> Self {
        let store = Store::with_max_traces(10_000);
        let bind = || async { TcpListener::bind("127.0.0.1:0").await.unwrap() };
        let listeners = tracestore::Listeners { otlp_grpc: bind().await, otlp_http: bind().await, query: bind().await };
        let (addr, http_addr, query_addr) = (
            listeners.otlp_grpc.local_addr().unwrap(),
            listeners.otlp_http.local_addr().unwrap(),
            listeners.query.local_addr().unwrap(),
        );
        let serving = tracestore::serve(store.clone(), listeners, std::future::pending());
        let task = tokio::spawn(async move { serving.await.unwrap() });
        Self { addr, http_addr, query_addr, store, task }
    }

    /// Its Jaeger query API (v3) and pages, e.g. `http://127.0.0.1:PORT`.
    pub fn query(&self) -> String {
        format!("http://{}", self.query_addr)
    }

    /// What to put in `OTEL_EXPORTER_OTLP_ENDPOINT` for OTLP/gRPC (the default protocol).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What to put in `OTEL_EXPORTER_OTLP_ENDPOINT` with `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`.
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.store.all().into_iter().flat_map(|(_, parts)| model::spans_of(&parts)).collect()
    }

    /// Everything received so far as OTLP export requests, one per trace, the oldest first, each
    /// holding the parts of its trace as the exporters sent them.
    pub fn export_requests(&self) -> Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest> {
        self.store
            .all()
            .into_iter()
            .map(|(_, resource_spans)| opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
                resource_spans,
            })
            .collect()
    }

    /// Waits up to 10 s until `done` holds for the spans received so far, and returns them.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[ReceivedSpan]) -> bool) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            if Instant::now() > deadline {
                panic!("the collector did not receive {what} within 10 s; it has:\n{spans:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}
