//! The store's limits, on the real process: memory stays within its budget whatever is sent,
//! one trace cannot grow without bound, long values are cut, and compressed exports work.

use std::io::Write as _;

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse, trace_service_client::TraceServiceClient,
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use prost::Message;
use testkit::process::{Service, tracestore};

fn text(key: &str, value: String) -> KeyValue {
    KeyValue { key: key.into(), key_strindex: 0, value: Some(AnyValue { value: Some(Value::StringValue(value)) }) }
}

/// An export of `spans` spans of trace `trace`, each with an attribute `payload` of `bytes` bytes.
fn export(trace: u64, first_span: u64, spans: u64, bytes: usize) -> ExportTraceServiceRequest {
    let spans = (first_span..first_span + spans)
        .map(|n| Span {
            trace_id: [[0u8; 8], trace.to_be_bytes()].concat(),
            span_id: (n + 1).to_be_bytes().to_vec(),
            name: format!("op-{}", n % 7),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + n,
            end_time_unix_nano: 1_700_000_000_000_000_000 + n + 1000,
            attributes: vec![text("payload", "x".repeat(bytes))],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![text("service.name", "flood".into())], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

struct Store {
    service: Service,
    http: reqwest::blocking::Client,
}

impl Store {
    fn start(env: &[(&str, &str)]) -> Self {
        Self { service: tracestore(env), http: reqwest::blocking::Client::new() }
    }

    fn otlp_http(&self) -> String {
        format!("http://{}/v1/traces", self.service.field("otlp_http").unwrap())
    }

    fn query(&self, path: &str) -> reqwest::blocking::Response {
        self.http.get(format!("http://{}{path}", self.service.field("address").unwrap())).send().unwrap()
    }

    fn send(&self, request: &ExportTraceServiceRequest) -> ExportTraceServiceResponse {
        let response = self
            .http
            .post(self.otlp_http())
            .header("content-type", "application/x-protobuf")
            .body(request.encode_to_vec())
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().unwrap());
        ExportTraceServiceResponse::decode(response.bytes().unwrap()).unwrap()
    }

    fn spans_of(&self, trace: u64) -> Vec<serde_json::Value> {
        let answer: serde_json::Value = self.query(&format!("/api/v3/traces/{trace:032x}")).json().unwrap();
        let resource_spans = answer["result"]["resourceSpans"].as_array().cloned().unwrap_or_default();
        resource_spans
            .iter()
            .flat_map(|rs| rs["scopeSpans"].as_array().cloned().unwrap_or_default())
            .flat_map(|scope| scope["spans"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

/// 300 MB of spans into a store with a 24 MiB budget: its memory stays near the budget (the
/// oldest traces go), and the newest traces are still there. Before the budget existed, all
/// 300 MB were kept (the store counted traces only, and these are 600).
#[test]
fn memory_stays_within_the_budget() {
    let store = Store::start(&[("TRACESTORE_MAX_MIB", "24")]);
    let idle = store.service.rss_kib();
    for trace in 1..=600 {
        store.send(&export(trace, 0, 500, 1000));
    }
    let rss = store.service.rss_kib();
    // The budget, plus what the process took idle, plus a margin for the allocator's free
    // lists and one request in flight.
    let bound = idle + 24 * 1024 + 40 * 1024;
    assert!(rss < bound, "the store holds {rss} KiB after the flood; the bound is {bound} KiB (idle: {idle} KiB)");
    assert_eq!(store.spans_of(600).len(), 500, "the newest trace must be kept whole");
    assert!(store.spans_of(1).is_empty(), "the oldest trace must have been evicted");
    let front = store.query("/");
    assert_eq!(front.status(), 200);
}

/// One trace id, chosen by anyone with `traceparent`, sent 60 000 spans: the store keeps its
/// limit of spans per trace, says in the OTLP answer how many it rejected and why, and still
/// answers the trace, its page and the front page.
#[test]
fn one_trace_cannot_grow_without_bound() {
    let store = Store::start(&[("TRACESTORE_MAX_SPANS_PER_TRACE", "5000")]);
    let mut rejected = 0;
    let mut reasons = String::new();
    for batch in 0..60 {
        let answer = store.send(&export(7, batch * 1000, 1000, 10));
        if let Some(partial) = answer.partial_success {
            rejected += partial.rejected_spans;
            reasons = partial.error_message;
        }
    }
    assert_eq!(rejected, 55_000);
    assert!(reasons.contains("spans per trace"), "{reasons}");
    assert_eq!(store.spans_of(7).len(), 5000);
    let page = store.query(&format!("/trace/{:032x}", 7)).text().unwrap();
    assert!(page.contains("The first 1000 of 5000 spans are drawn"), "{}", &page[..page.len().min(500)]);
    assert!(store.query("/").text().unwrap().contains("<td>5000</td>"));
}

/// A 1 MB attribute value is cut to the limit (at a character boundary), the span kept.
#[test]
fn long_attribute_values_are_cut() {
    let store = Store::start(&[("TRACESTORE_MAX_ATTRIBUTE_VALUE_BYTES", "100")]);
    store.send(&export(9, 0, 1, 1_000_000));
    let spans = store.spans_of(9);
    assert_eq!(spans.len(), 1);
    let value = spans[0]["attributes"][0]["value"]["stringValue"].as_str().unwrap();
    assert_eq!(value, "x".repeat(100));
}

/// Exports compressed with gzip (`OTEL_EXPORTER_OTLP_COMPRESSION=gzip`), over HTTP and gRPC,
/// are read as collectors and Jaeger read them.
#[tokio::test(flavor = "multi_thread")]
async fn gzip_exports_are_accepted() {
    let store = tokio::task::spawn_blocking(|| Store::start(&[])).await.unwrap();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&export(11, 0, 3, 10).encode_to_vec()).unwrap();
    let body = gzip.finish().unwrap();
    let response = reqwest::Client::new()
        .post(store.otlp_http())
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    let grpc = format!("http://{}", store.service.field("otlp_grpc").unwrap());
    let mut client =
        TraceServiceClient::connect(grpc).await.unwrap().send_compressed(tonic::codec::CompressionEncoding::Gzip);
    client.export(export(12, 0, 2, 10)).await.unwrap();

    let counts =
        tokio::task::spawn_blocking(move || (store.spans_of(11).len(), store.spans_of(12).len())).await.unwrap();
    assert_eq!(counts, (3, 2));
}
