//! A test collector: the workshop's own trace store (OTLP over gRPC, and HTTP with protobuf) on
//! ephemeral ports, so a test can look at the trace that really went over the wire.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tracestore::{Store, model};

/// A span as it arrived (ids in lower-case hex; a root span's `parent_span_id` is empty).
pub use tracestore::model::Span as ReceivedSpan;

/// The receiver; it stops when dropped.
pub struct Collector {
    addr: SocketAddr,
    http_addr: SocketAddr,
    store: Store,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Collector {
    pub async fn start() -> Self {
        let store = Store::with_max_traces(10_000);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tonic::transport::Server::builder()
            .add_service(tracestore::otlp::grpc_service(store.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener));
        let grpc_task = tokio::spawn(async move { server.await.unwrap() });

        let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http_listener.local_addr().unwrap();
        let app = tracestore::otlp::http_router(store.clone());
        let http_task = tokio::spawn(async move { axum::serve(http_listener, app).await.unwrap() });
        Self { addr, http_addr, store, tasks: vec![grpc_task, http_task] }
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
        self.tasks.iter().for_each(tokio::task::JoinHandle::abort);
    }
}
