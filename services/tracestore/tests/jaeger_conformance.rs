//! The store against Jaeger's own data (`../shared/fixtures/`): what goes in over OTLP comes
//! back out of the query API v3 the way Jaeger v2 answers.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tracestore::{Store, model};

/// Whether `../shared/fixtures/` is there; said loudly when not (a plain clone has none).
fn fixtures_here(test: &str) -> bool {
    testkit::real::shared_fixtures(test).is_some()
}

fn fixture(path: &str) -> Value {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures").join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    serde_json::from_str(&text).unwrap()
}

/// A store serving on ephemeral ports; it stops with the test's runtime.
struct Running {
    collector: testkit::Collector,
    http: reqwest::Client,
}

impl Running {
    async fn start() -> Self {
        Self { collector: testkit::Collector::start().await, http: reqwest::Client::new() }
    }

    /// Sends an OTLP/HTTP JSON export.
    async fn export_json(&self, request: &Value) {
        let response =
            self.http.post(format!("{}/v1/traces", self.collector.http_endpoint())).json(request).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    }

    /// `GET` on the query port: the status and the body as JSON.
    async fn get(&self, path_and_query: &str) -> (StatusCode, Value) {
        let response = self.http.get(format!("{}{path_and_query}", self.collector.query())).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
    }
}

/// The body of an answer `{"result": …}` as the export request that would produce it.
fn as_export(answer: &Value) -> Value {
    answer["result"].clone()
}

#[tokio::test]
async fn the_jaeger_2_21_capture_comes_back_equal() {
    if !fixtures_here("the_jaeger_2_21_capture_comes_back_equal") {
        return;
    }
    let store = Running::start().await;
    let capture = fixture("jaeger/apiv3-capture-jaeger-2.21.json");
    store.export_json(&as_export(&capture)).await;
    let (status, answer) = store.get("/api/v3/traces/0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, capture);
    // Jaeger reads trace ids in any case.
    assert_eq!(store.get("/api/v3/traces/0123456789ABCDEF0123456789ABCDEF").await.1, capture);
}

#[tokio::test]
async fn get_trace_and_find_traces_have_the_shapes_of_jaegers_snapshots() {
    if !fixtures_here("get_trace_and_find_traces_have_the_shapes_of_jaegers_snapshots") {
        return;
    }
    let store = Running::start().await;
    let get_trace = fixture("jaeger/apiv3-GetTrace.json");
    store.export_json(&as_export(&get_trace)).await;
    assert_eq!(store.get("/api/v3/traces/00000000000000000000000000000001").await, (StatusCode::OK, get_trace));
    // Short ids are padded, as Jaeger pads them.
    assert_eq!(store.get("/api/v3/traces/1").await.0, StatusCode::OK);

    // A resource without a service name is reported as `unknown_service`, as OpenTelemetry does.
    let find = "/api/v3/traces?query.service_name=unknown_service\
                &query.start_time_min=1970-01-01T00:00:00Z&query.start_time_max=2100-01-01T00:00:00Z";
    assert_eq!(store.get(find).await, (StatusCode::OK, fixture("jaeger/apiv3-FindTraces.json")));
}

#[tokio::test]
async fn services_and_operations_have_the_shapes_of_jaegers_snapshots() {
    if !fixtures_here("services_and_operations_have_the_shapes_of_jaegers_snapshots") {
        return;
    }
    let store = Running::start().await;
    assert_eq!(store.get("/api/v3/services").await, (StatusCode::OK, json!({"services": []})));
    let export = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "foo"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "00000000000000000000000000000003", "spanId": "0000000000000004",
            "name": "get_users", "kind": 2,
            "startTimeUnixNano": "1786934400000000000", "endTimeUnixNano": "1786934400001000000"
        }]}]
    }]});
    store.export_json(&export).await;
    assert_eq!(store.get("/api/v3/services").await, (StatusCode::OK, fixture("jaeger/apiv3-GetServices.json")));
    let operations = fixture("jaeger/apiv3-GetOperations.json");
    assert_eq!(store.get("/api/v3/operations?service=foo").await, (StatusCode::OK, operations.clone()));
    assert_eq!(store.get("/api/v3/operations?service=foo&span_kind=server").await.1, operations);
    assert_eq!(store.get("/api/v3/operations?service=foo&span_kind=client").await.1, json!({"operations": []}));
}

#[tokio::test]
async fn search_filters_like_jaeger_in_both_spellings() {
    if !fixtures_here("search_filters_like_jaeger_in_both_spellings") {
        return;
    }
    let store = Running::start().await;
    store.export_json(&fixture("jaeger/otlp2jaeger-in.json")).await;
    let window = "query.start_time_min=2024-01-31T05:28:00Z&query.start_time_max=2024-01-31T05:29:00Z";
    let found = |query: String| {
        let store = &store;
        async move { store.get(&format!("/api/v3/traces?{query}")).await.0 }
    };
    assert_eq!(found(format!("query.service_name=telemetrygen&{window}")).await, StatusCode::OK);
    assert_eq!(found(format!("query.serviceName=telemetrygen&{window}")).await, StatusCode::OK);
    let camel_window = window.replace("start_time_min", "startTimeMin").replace("start_time_max", "startTimeMax");
    assert_eq!(found(format!("query.serviceName=telemetrygen&{camel_window}")).await, StatusCode::OK);
    assert_eq!(
        found(format!("query.service_name=telemetrygen&query.operation_name=okey-dokey-0&{window}")).await,
        StatusCode::OK
    );
    assert_eq!(
        found(format!("query.service_name=telemetrygen&query.operation_name=other&{window}")).await,
        StatusCode::NOT_FOUND
    );
    // The span lasts 123 µs.
    assert_eq!(
        found(format!("query.service_name=telemetrygen&query.duration_min=100us&{window}")).await,
        StatusCode::OK
    );
    assert_eq!(
        found(format!("query.service_name=telemetrygen&query.duration_min=1ms&{window}")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(found(format!("query.service_name=telemetrygen&query.num_traces=1&{window}")).await, StatusCode::OK);
    let later = "query.start_time_min=2024-02-01T00:00:00%2B01:00&query.start_time_max=2024-02-02T00:00:00Z";
    assert_eq!(found(format!("query.service_name=telemetrygen&{later}")).await, StatusCode::NOT_FOUND);
    assert_eq!(found(format!("query.service_name=nobody&{window}")).await, StatusCode::NOT_FOUND);
}

/// The span read as Jaeger's own converter reads it (`otlp2jaeger-out.json`): same ids, name,
/// kind, parent, times. The fixture sends two identical copies; the converter alone keeps both,
/// Jaeger's query service shows one (its dedupe adjuster, seen on the real Jaeger by
/// `jaeger_differential.rs`), and so does the store.
#[tokio::test]
async fn spans_read_as_jaegers_converter_reads_them() {
    if !fixtures_here("spans_read_as_jaegers_converter_reads_them") {
        return;
    }
    let store = Running::start().await;
    store.export_json(&fixture("jaeger/otlp2jaeger-in.json")).await;
    let (_, answer) = store.get("/api/v3/traces/83a9efd15c1c98a977e0711cc93ee28b").await;
    let data: opentelemetry_proto::tonic::trace::v1::TracesData = serde_json::from_value(as_export(&answer)).unwrap();
    let ours = model::spans_of(&data.resource_spans);

    let jaeger = fixture("jaeger/otlp2jaeger-out.json");
    let theirs = jaeger["data"][0]["spans"].as_array().unwrap();
    assert_eq!((ours.len(), theirs.len()), (1, 2));
    assert_eq!(theirs[0], theirs[1]);
    for (span, expected) in ours.iter().zip(theirs) {
        assert_eq!(span.trace_id, expected["traceID"]);
        assert_eq!(span.span_id, expected["spanID"]);
        assert_eq!(span.name, expected["operationName"]);
        assert_eq!(span.parent_span_id, expected["references"][0]["spanID"]);
        assert_eq!(expected["references"][0]["refType"], "CHILD_OF");
        assert_eq!(json!(span.start_unix_nano / 1000), expected["startTime"]);
        assert_eq!(json!(span.duration_nanos() / 1000), expected["duration"]);
        let tag = |key: &str| {
            expected["tags"].as_array().unwrap().iter().find(|tag| tag["key"] == key).unwrap()["value"].clone()
        };
        assert_eq!(json!(span.kind), tag("span.kind"));
        assert_eq!(json!(span.attributes["peer.service"]), tag("peer.service"));
        assert_eq!(span.service, jaeger["data"][0]["processes"]["p1"]["serviceName"]);
    }
}

/// The OTLP specification's example (upper-case hex ids, numbers for times) is accepted and
/// comes back with lower-case ids and string times.
#[tokio::test]
async fn the_otlp_specification_example_is_accepted() {
    if !fixtures_here("the_otlp_specification_example_is_accepted") {
        return;
    }
    let store = Running::start().await;
    let example = fixture("otlp/trace.json");
    store.export_json(&example).await;
    let (status, answer) = store.get("/api/v3/traces/5b8efff798038103d269b633813fc60c").await;
    assert_eq!(status, StatusCode::OK);
    let span = &answer["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(span["parentSpanId"], "eee19b7ec3c1b173");
    assert_eq!(span["startTimeUnixNano"], "1544712660000000000");
    assert_eq!(
        answer["result"]["resourceSpans"][0]["scopeSpans"][0]["scope"],
        example["resourceSpans"][0]["scopeSpans"][0]["scope"]
    );
}

/// `ui_01.json` holds a trace with Jaeger's edge cases (duplicate span ids, several references);
/// the tree that pages and `cargo xtask trace` draw shows each span once and never loops.
#[test]
fn the_span_tree_survives_jaegers_edge_cases() {
    if !fixtures_here("the_span_tree_survives_jaegers_edge_cases") {
        return;
    }
    let trace = fixture("jaeger/ui_01.json");
    let spans: Vec<model::Span> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|span| model::Span {
            trace_id: span["traceID"].as_str().unwrap().into(),
            span_id: span["spanID"].as_str().unwrap().into(),
            parent_span_id: span["references"]
                .as_array()
                .unwrap()
                .iter()
                .find(|reference| reference["refType"] == "CHILD_OF")
                .map(|reference| reference["spanID"].as_str().unwrap().into())
                .unwrap_or_default(),
            service: "svc".into(),
            name: span["operationName"].as_str().unwrap().into(),
            kind: "internal",
            start_unix_nano: span["startTime"].as_u64().unwrap() * 1000,
            end_unix_nano: (span["startTime"].as_u64().unwrap() + span["duration"].as_u64().unwrap()) * 1000,
            ..Default::default()
        })
        .collect();
    let tree = model::tree(&spans);
    let unique: std::collections::HashSet<_> = spans.iter().map(|span| span.span_id.clone()).collect();
    assert_eq!(tree.len(), unique.len(), "each span id once");
    assert!(tree.iter().all(|(depth, _)| *depth < spans.len()));
}

#[tokio::test]
async fn bad_parameters_and_unknown_traces_are_answered_as_jaeger_answers_them() {
    let store = Running::start().await;
    let error = |code: u16, message: &str| json!({"error": {"httpCode": code, "message": message}});
    let window = "query.start_time_min=2024-01-01T00:00:00Z&query.start_time_max=2024-01-02T00:00:00Z";

    assert_eq!(
        store.get("/api/v3/traces/0123456789abcdef0123456789abcdef").await,
        (StatusCode::NOT_FOUND, error(404, "No traces found"))
    );
    assert_eq!(
        store.get(&format!("/api/v3/traces?query.service_name=apiserver&{window}")).await,
        (StatusCode::NOT_FOUND, error(404, "No traces found"))
    );
    assert_eq!(
        store.get("/api/v3/traces?query.service_name=apiserver").await,
        (StatusCode::BAD_REQUEST, error(400, "query.start_time_min and query.start_time_max are required"))
    );
    let cases = [
        ("/api/v3/traces/not-hex", "malformed parameter trace_id"),
        ("/api/v3/traces/000000000000000000000000000000001", "malformed parameter trace_id"),
        (
            "/api/v3/traces?query.service_name=a&query.start_time_min=yesterday&query.start_time_max=2024-01-02T00:00:00Z",
            "malformed parameter query.start_time_min",
        ),
        (
            &format!("/api/v3/traces?query.service_name=a&{window}&query.num_traces=many"),
            "malformed parameter query.num_traces",
        ),
        (
            &format!("/api/v3/traces?query.service_name=a&{window}&query.duration_min=10"),
            "malformed parameter query.duration_min",
        ),
        (&format!("/api/v3/traces?{window}"), "query.service_name is required"),
        // A JSON object of strings (Jaeger v2.19.0, apiv3/query_parser.go), nothing else.
        (
            &format!("/api/v3/traces?query.service_name=a&{window}&query.attributes=error"),
            "malformed parameter query.attributes",
        ),
        (
            &format!(
                "/api/v3/traces?query.service_name=a&{window}&query.attributes=%7B%22http.response.status_code%22%3A500%7D"
            ),
            "malformed parameter query.attributes",
        ),
        (
            &format!("/api/v3/traces?query.service_name=a&{window}&query.attributes=%5B%5D"),
            "malformed parameter query.attributes",
        ),
    ];
    for (path, message) in cases {
        let (status, body) = store.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["httpCode"], 400, "{path}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with(message), "{path}: {body}");
    }
}

#[tokio::test]
async fn the_oldest_traces_are_evicted_first() {
    let store = Store::with_max_traces(2);
    for id in 1u8..=3 {
        let export: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
            serde_json::from_value(json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
                "traceId": format!("{id:032x}"), "spanId": "0000000000000001", "name": "op"
            }]}]}]}))
            .unwrap();
        store.ingest(export);
    }
    let mut first = [0u8; 16];
    first[15] = 1;
    assert!(store.get(&first).is_none());
    assert_eq!(store.len(), 2);
}
