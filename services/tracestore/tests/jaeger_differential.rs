//! The store against the real Jaeger v2: the same OTLP goes into both (Jaeger's own fixtures,
//! the OTLP specification's example, and the traces our services produce), then the same
//! query API v3 calls go to both, and the answers must agree field by field — except for the
//! differences listed in [`ALLOWED_DIFFERENCES`], each with its reason.
//!
//! Needs the real Jaeger (`cargo xtask tools install`); skipped, loudly, without it.

use std::collections::BTreeSet;

use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Where the store may answer otherwise than Jaeger v2.13 (module v1.76.0), and why. Every
/// comparison below applies these to both answers first; anything else must be equal.
const ALLOWED_DIFFERENCES: [(&str, &str); 6] = [
    (
        "the span attribute `@jaeger@warnings`",
        "Jaeger's query service runs adjusters (clock skew among them) and writes what they could not \
         do as warnings on the span; the store does not adjust clock skew: local spans share one clock",
    ),
    (
        "the resource's `schemaUrl`",
        "Jaeger 2.13's memory storage keeps spans in Jaeger's own model, which has no schema URL, so it \
         is gone when they are read back; the store keeps the OTLP as it arrived",
    ),
    (
        "the order of `services` and of `operations`",
        "Jaeger's memory storage lists them in map order, which varies from call to call; the store \
         sorts them; both are sets",
    ),
    (
        "a search without `query.num_traces`",
        "Jaeger 2.13 answers 500 \"search depth must be greater than 0\"; the store takes 20, as a \
         client's omission is not a server error",
    ),
    (
        "camelCase names of the search parameters (`query.serviceName`, …)",
        "the newest Jaeger releases accept them besides snake_case; 2.13 answers 400 as if they were \
         missing; the store accepts both, as the newest Jaeger does",
    ),
    (
        "why a parameter is malformed, after `malformed parameter <name>:`",
        "the words are the parser's (Go's strconv and time against Rust's); the status, the envelope \
         and the parameter named are the same",
    ),
];

const WARNINGS: &str = "@jaeger@warnings";

/// A file of `../shared/fixtures/`; `None` (said loudly) in a plain clone, which has none.
fn shared_fixture(path: &str) -> Option<String> {
    let dir = testkit::real::shared_fixtures("the differential test's upstream fixtures")?;
    let file = dir.join(path);
    Some(std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display())))
}

/// One of the two sides: where to send OTLP/HTTP and where to ask the query API.
struct Side {
    name: &'static str,
    otlp_http: String,
    query: String,
}

struct Both {
    jaeger: Side,
    store: Side,
    http: reqwest::Client,
    _jaeger_process: testkit::real::Jaeger,
    _store: testkit::Collector,
}

impl Both {
    async fn start(jaeger: &std::path::Path) -> Self {
        // Jaeger::start waits with blocking calls.
        let process = tokio::task::block_in_place(|| testkit::real::Jaeger::start(jaeger));
        let collector = testkit::Collector::start().await;
        let store = Side { name: "store", otlp_http: collector.http_endpoint(), query: collector.query() };
        let jaeger = Side {
            name: "jaeger",
            otlp_http: format!("http://{}", process.otlp_http),
            query: format!("http://{}", process.query),
        };
        Self { jaeger, store, http: reqwest::Client::new(), _jaeger_process: process, _store: collector }
    }

    /// The same OTLP/HTTP body into both.
    async fn export(&self, content_type: &str, body: Vec<u8>) {
        for side in [&self.jaeger, &self.store] {
            let response = self
                .http
                .post(format!("{}/v1/traces", side.otlp_http))
                .header("Content-Type", content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{}: {}", side.name, response.text().await.unwrap());
        }
        // Both have stored the spans when they answer: Jaeger's local configuration has no
        // batch processor (config/local/jaeger.yaml).
    }

    /// The same GET to both: (status, body as JSON) of each.
    async fn get(&self, path_and_query: &str) -> [(StatusCode, Value); 2] {
        let mut answers = Vec::new();
        for side in [&self.jaeger, &self.store] {
            let response = self.http.get(format!("{}{path_and_query}", side.query)).send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {text}", side.name));
            answers.push((status, body));
        }
        answers.try_into().unwrap()
    }

    /// Asks both, and fails with every differing field unless the answers agree after
    /// [`normalize`].
    async fn agree(&self, path_and_query: &str) -> Value {
        let [(jaeger_status, jaeger), (store_status, store)] = self.get(path_and_query).await;
        let (jaeger, store) = (normalize(jaeger), normalize(store));
        let mut differences = Vec::new();
        if jaeger_status != store_status {
            differences.push(format!("status: jaeger {jaeger_status}, store {store_status}"));
        }
        differ("", &jaeger, &store, &mut differences);
        let allowed: Vec<&str> = ALLOWED_DIFFERENCES.iter().map(|(what, _)| *what).collect();
        assert!(
            differences.is_empty(),
            "GET {path_and_query}: the store answers otherwise than Jaeger:\n  {}\n(already allowed: {})\n\
             jaeger: {jaeger}\nstore:  {store}",
            differences.join("\n  "),
            allowed.join("; ")
        );
        jaeger
    }
}

/// Applies [`ALLOWED_DIFFERENCES`], and puts what is unordered into one order: resources,
/// scopes and spans flattened and sorted by span, attributes sorted by key.
fn normalize(mut answer: Value) -> Value {
    if let Some(message) = answer.pointer_mut("/error/message") {
        let text = message.as_str().unwrap_or_default();
        if let Some(parameter) = text.strip_prefix("malformed parameter ").and_then(|rest| rest.split(':').next()) {
            *message = json!(format!("malformed parameter {parameter}: …"));
        }
    }
    if let Some(services) = answer.get_mut("services").and_then(Value::as_array_mut) {
        services.sort_by_key(Value::to_string);
    }
    if let Some(operations) = answer.get_mut("operations").and_then(Value::as_array_mut) {
        operations.sort_by_key(Value::to_string);
    }
    let Some(resource_spans) = answer.pointer("/result/resourceSpans").and_then(Value::as_array) else {
        return answer;
    };
    let mut spans = Vec::new();
    for resource_span in resource_spans {
        let mut resource = resource_span["resource"].clone();
        sort_attributes(&mut resource);
        for scope_span in resource_span["scopeSpans"].as_array().into_iter().flatten() {
            for span in scope_span["spans"].as_array().into_iter().flatten() {
                let mut span = span.clone();
                if let Some(attributes) = span.get_mut("attributes").and_then(Value::as_array_mut) {
                    attributes.retain(|attribute| attribute["key"] != WARNINGS);
                }
                sort_attributes(&mut span);
                spans.push(json!({
                    "resource": resource,
                    "scope": scope_span["scope"],
                    "scopeSchemaUrl": scope_span.get("schemaUrl"),
                    "span": span,
                }));
            }
        }
    }
    spans.sort_by_key(|span| {
        (span["span"]["traceId"].to_string(), span["span"]["spanId"].to_string(), span.to_string())
    });
    json!({ "spans": spans })
}

fn sort_attributes(node: &mut Value) {
    if let Some(attributes) = node.get_mut("attributes").and_then(Value::as_array_mut) {
        attributes.sort_by_key(|attribute| attribute["key"].to_string());
    }
    for event in node.get_mut("events").and_then(Value::as_array_mut).into_iter().flatten() {
        sort_attributes(event);
    }
    for link in node.get_mut("links").and_then(Value::as_array_mut).into_iter().flatten() {
        sort_attributes(link);
    }
}

/// Every path where `a` (Jaeger) and `b` (store) differ.
fn differ(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => differ(&format!("{path}.{key}"), x, y, out),
                    (Some(x), None) => out.push(format!("{path}.{key}: only jaeger has {x}")),
                    (None, Some(y)) => out.push(format!("{path}.{key}: only the store has {y}")),
                    (None, None) => unreachable!(),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                differ(&format!("{path}[{index}]"), x, y, out);
            }
        }
        (a, b) if a != b => out.push(format!("{path}: jaeger {a}, store {b}")),
        _ => {}
    }
}

fn trace_ids(answer: &Value) -> BTreeSet<String> {
    answer["spans"].as_array().into_iter().flatten().map(|span| span["span"]["traceId"].to_string()).collect()
}

/// A search over all time for `service`, with `extra` parameters (`query.num_traces=100` unless
/// `extra` says otherwise).
fn search(service: &str, extra: &str) -> String {
    let num_traces = if extra.contains("query.num_traces") { "" } else { "&query.num_traces=100" };
    format!(
        "/api/v3/traces?query.service_name={service}&query.start_time_min=2000-01-01T00:00:00Z\
         &query.start_time_max=2100-01-01T00:00:00Z{num_traces}{extra}"
    )
}

/// The traces our own services produce for a few requests (a create, a read, a 404, a list),
/// as their exporters sent them: one OTLP request per trace, in the order they were made (a
/// request with several traces would leave their order to Jaeger's map iteration, which varies).
async fn traces_of_the_services() -> Vec<Vec<u8>> {
    let collector = testkit::Collector::start().await;
    let db = testkit::sqlite();
    let todomanager = testkit::process::todomanager(&db.url, Some(&collector.endpoint()));
    let (apiserver, api) = testkit::process::apiserver(&todomanager, Some(&collector.endpoint()));
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{api}/v1/todo"))
        .json(&json!({"text": "compare"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(http.get(format!("{api}/v1/todo/{id}")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(format!("{api}/v1/todo/424242")).send().await.unwrap().status(), 404);
    assert_eq!(http.get(format!("{api}/v1/todo")).send().await.unwrap().status(), 200);
    // 4 requests: each a server span and a client span in apiserver, and in todomanager a
    // server span and a database span.
    collector.wait_for("16 spans", |spans| spans.len() >= 16).await;
    drop((apiserver, todomanager));
    collector.export_requests().iter().map(Message::encode_to_vec).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_answers_as_the_real_jaeger_does() {
    let Some(jaeger) = testkit::real::tool("jaeger", "the differential test of the trace store against Jaeger") else {
        return;
    };
    let both = Both::start(&jaeger).await;

    // Our services' traces, over OTLP/HTTP with protobuf, as the exporters sent them.
    for request in traces_of_the_services().await {
        both.export("application/x-protobuf", request).await;
    }
    let mut services = vec!["apiserver", "todomanager"];
    // Jaeger's fixtures and the specification's example, over OTLP/HTTP with JSON.
    if let Some(fixture) = shared_fixture("jaeger/otlp2jaeger-in.json") {
        both.export("application/json", fixture.into_bytes()).await;
        services.push("telemetrygen");
    }
    if let Some(fixture) = shared_fixture("jaeger/apiv3-capture-jaeger-2.21.json") {
        let capture: Value = serde_json::from_str(&fixture).unwrap();
        both.export("application/json", capture["result"].to_string().into_bytes()).await;
    }
    if let Some(fixture) = shared_fixture("otlp/trace.json") {
        both.export("application/json", fixture.into_bytes()).await;
        services.push("my.service");
    }

    // Services, and the operations of each with their span kinds, with and without a kind.
    let listed = both.agree("/api/v3/services").await;
    for service in &services {
        assert!(listed["services"].as_array().unwrap().contains(&json!(service)), "{service} in {listed}");
        both.agree(&format!("/api/v3/operations?service={service}")).await;
        for kind in ["server", "client", "internal"] {
            both.agree(&format!("/api/v3/operations?service={service}&span_kind={kind}")).await;
        }
    }

    // Every trace, found by service, then fetched by id.
    let mut ids = BTreeSet::new();
    for service in &services {
        let found = both.agree(&search(service, "")).await;
        ids.extend(trace_ids(&found));
    }
    assert!(ids.len() >= 4, "the services' four traces at least: {ids:?}");
    for id in &ids {
        both.agree(&format!("/api/v3/traces/{}", id.trim_matches('"'))).await;
    }

    // Search with every parameter the store supports.
    for extra in [
        "&query.operation_name=POST%20/v1/todo",
        "&query.operation_name=GET%20/v1/todo/%7Bid%7D",
        "&query.operation_name=no-such-operation",
        "&query.num_traces=1",
        "&query.duration_min=1us",
        "&query.duration_min=1h",
        "&query.duration_max=1h",
        "&query.duration_min=1ns&query.duration_max=1h",
    ] {
        both.agree(&search("apiserver", extra)).await;
    }
    both.agree(&search("no-such-service", "")).await;
    both.agree(
        "/api/v3/traces?query.service_name=apiserver&query.start_time_min=2100-01-01T00:00:00Z\
         &query.start_time_max=2100-01-02T00:00:00Z&query.num_traces=10",
    )
    .await;

    // The behaviour the store chose not to copy (see ALLOWED_DIFFERENCES) still differs as listed.
    let without_num_traces = search("apiserver", "").replace("&query.num_traces=100", "");
    let [(jaeger_status, _), (store_status, _)] = both.get(&without_num_traces).await;
    assert_eq!((jaeger_status.as_u16(), store_status.as_u16()), (500, 200), "update ALLOWED_DIFFERENCES");
    let camel_case = search("apiserver", "").replace("service_name", "serviceName").replace("start_time", "startTime");
    let camel_case = camel_case.replace("startTime_min", "startTimeMin").replace("startTime_max", "startTimeMax");
    let [(jaeger_status, _), (store_status, _)] = both.get(&camel_case).await;
    assert_eq!((jaeger_status.as_u16(), store_status.as_u16()), (400, 200), "update ALLOWED_DIFFERENCES");

    // Unknown ids and bad parameters: the same status and the same error.
    for path in [
        "/api/v3/traces/0123456789abcdef0123456789abcdee",
        "/api/v3/traces/xyz",
        "/api/v3/traces?query.service_name=apiserver",
        "/api/v3/traces?query.service_name=apiserver&query.start_time_min=yesterday&query.start_time_max=2100-01-01T00:00:00Z&query.num_traces=5",
        &search("apiserver", "&query.duration_min=fast"),
        &search("apiserver", "&query.num_traces=many"),
    ] {
        both.agree(path).await;
    }
}
