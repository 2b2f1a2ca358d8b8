//! One request, one trace: both services run as processes and export over OTLP/gRPC to a test
//! collector; the tests assert the span tree that arrived.

use std::time::Duration;

use reqwest::{StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use testkit::{
    Collector,
    otlp::ReceivedSpan,
    process::{self, Service},
};

/// todomanager and apiserver, exporting to `otlp_endpoint`.
struct Stack {
    api: String,
    apiserver_tracez: String,
    todomanager_tracez: String,
    apiserver: Service,
    todomanager: Service,
    _db: testkit::TestDb,
}

impl Stack {
    fn start(otlp_endpoint: &str, extra_env: &[(&str, &str)]) -> Self {
        Self::start_on(testkit::sqlite(), otlp_endpoint, extra_env)
    }

    fn start_on(db: testkit::TestDb, otlp_endpoint: &str, extra_env: &[(&str, &str)]) -> Self {
        let todomanager = process::todomanager_with_env(&db.url, Some(otlp_endpoint), extra_env);
        let (apiserver, api) = process::apiserver_with_env(&todomanager, Some(otlp_endpoint), extra_env);
        Self {
            api,
            apiserver_tracez: format!("http://{}/debug/tracez", apiserver.field("tracez").unwrap()),
            todomanager_tracez: format!("http://{}/debug/tracez", todomanager.field("tracez").unwrap()),
            apiserver,
            todomanager,
            _db: db,
        }
    }

    /// `POST /v1/todo` with `headers`; returns the trace id the response names.
    async fn create(&self, headers: &[(&str, &str)]) -> String {
        trace_id_header(self.post(headers).await.headers())
    }

    /// `POST /v1/todo` with `headers`, answered 201; returns the response.
    async fn post(&self, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request =
            reqwest::Client::new().post(format!("{}/v1/todo", self.api)).json(&json!({"text": "trace me"}));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response
    }
}

fn trace_id_header(headers: &HeaderMap) -> String {
    headers.get("x-trace-id").expect("every traced response names its trace").to_str().unwrap().to_owned()
}

fn find<'a>(spans: &'a [ReceivedSpan], service: &str, name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|span| span.service == service && span.name == name)
        .unwrap_or_else(|| panic!("no span {service}/{name} in {spans:#?}"))
}

/// The raw OTLP spans of `trace_id` as the exporters sent them: their attribute keys and the
/// names of their events, by span name.
fn raw_spans(collector: &Collector, trace_id: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let hex = |bytes: &[u8]| bytes.iter().map(|byte| format!("{byte:02x}")).collect::<String>();
    collector
        .export_requests()
        .into_iter()
        .flat_map(|request| request.resource_spans)
        .flat_map(|resource| resource.scope_spans)
        .flat_map(|scope| scope.spans)
        .filter(|span| hex(&span.trace_id) == trace_id)
        .map(|span| {
            let keys = span.attributes.iter().map(|kv| kv.key.clone()).collect();
            (span.name, keys, span.events.into_iter().map(|event| event.name).collect())
        })
        .collect()
}

fn of_trace(spans: Vec<ReceivedSpan>, trace_id: &str) -> Vec<ReceivedSpan> {
    spans.into_iter().filter(|span| span.trace_id == trace_id).collect()
}

/// Waits for the whole `POST /v1/todo` trace and checks its chain, kinds and key attributes.
/// Returns the apiserver SERVER span.
async fn assert_create_trace(collector: &Collector, trace_id: &str) -> ReceivedSpan {
    let spans = collector
        .wait_for("the whole POST /v1/todo trace", |spans| {
            let mine = spans.iter().filter(|span| span.trace_id == trace_id);
            mine.clone().any(|span| span.name == "db-create") && mine.clone().any(|span| span.name == "POST /v1/todo")
        })
        .await;
    let spans = of_trace(spans, trace_id);
    assert_eq!(spans.len(), 4, "{spans:#?}");

    let server = find(&spans, "apiserver", "POST /v1/todo");
    assert_eq!(server.kind, "server");
    assert_eq!(server.attribute("http.request.method"), Some("POST"));
    assert_eq!(server.attribute("http.route"), Some("/v1/todo"));
    assert_eq!(server.attribute("url.path"), Some("/v1/todo"));
    assert_eq!(server.attribute("url.scheme"), Some("http"));
    assert_eq!(server.attribute("http.response.status_code"), Some("201"));
    assert_eq!(server.attribute("client.address"), Some("127.0.0.1"));
    assert_eq!(server.attribute("server.address"), Some("127.0.0.1"));
    assert!(server.attribute("user_agent.original").is_none(), "reqwest sends no User-Agent by default");
    assert!(!server.is_error);
    assert_eq!(server.resource.get("service.version").map(String::as_str), Some(env!("CARGO_PKG_VERSION")));
    assert!(server.resource.contains_key("service.instance.id"));

    let call = find(&spans, "apiserver", "todo_mgr.TodoManager/CreateTodo");
    assert_eq!((call.kind, call.parent_span_id.as_str()), ("client", server.span_id.as_str()));
    // The RPC semantic conventions of semconv 1.44.0 (docs/rpc/grpc.md).
    assert_eq!(call.attribute("rpc.system.name"), Some("grpc"));
    assert_eq!(call.attribute("rpc.method"), Some("todo_mgr.TodoManager/CreateTodo"));
    assert_eq!(call.attribute("rpc.response.status_code"), Some("OK"));
    for old in ["rpc.system", "rpc.service", "rpc.grpc.status_code"] {
        assert_eq!(call.attribute(old), None, "{old} was replaced in semconv 1.39");
    }
    assert_eq!(call.attribute("server.address"), Some("127.0.0.1"));
    assert!(call.attribute("server.port").is_some());

    let rpc = find(&spans, "todomanager", "todo_mgr.TodoManager/CreateTodo");
    assert_eq!((rpc.kind, rpc.parent_span_id.as_str()), ("server", call.span_id.as_str()));
    assert_eq!(rpc.attribute("rpc.response.status_code"), Some("OK"));

    let db = find(&spans, "todomanager", "db-create");
    assert_eq!((db.kind, db.parent_span_id.as_str()), ("client", rpc.span_id.as_str()));
    assert_eq!(db.attribute("db.system.name"), Some("sqlite"));
    assert_eq!(db.attribute("db.operation.name"), Some("INSERT"));
    assert_eq!(db.attribute("db.collection.name"), Some("todos"));
    let query = db.attribute("db.query.text").unwrap();
    assert!(query.starts_with("INSERT INTO todos") && query.contains('?') && !query.contains("trace me"), "{query}");

    // Only what the semantic conventions ask for: no source locations, threads, targets or
    // busy/idle times on every span, and the access log line stays in the log, not an event.
    for (name, keys, events) in raw_spans(collector, trace_id) {
        for extra in ["code.file.path", "code.line.number", "thread.id", "thread.name", "target", "busy_ns", "idle_ns"]
        {
            assert!(!keys.iter().any(|key| key == extra), "{name} carries {extra}: {keys:?}");
        }
        assert!(events.is_empty(), "{name} has events {events:?}");
    }
    server.clone()
}

const INGRESS_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const INGRESS_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread")]
async fn b3_multi_headers_from_an_ingress_join_the_trace() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &[]);
    let trace_id =
        stack.create(&[("X-B3-TraceId", INGRESS_TRACE), ("X-B3-SpanId", INGRESS_SPAN), ("X-B3-Sampled", "1")]).await;
    assert_eq!(trace_id, INGRESS_TRACE);
    let server = assert_create_trace(&collector, INGRESS_TRACE).await;
    assert_eq!(server.parent_span_id, INGRESS_SPAN);
}

#[tokio::test(flavor = "multi_thread")]
async fn w3c_traceparent_joins_the_trace() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &[]);
    let traceparent = format!("00-{INGRESS_TRACE}-{INGRESS_SPAN}-01");
    assert_eq!(stack.create(&[("traceparent", &traceparent)]).await, INGRESS_TRACE);
    assert_eq!(assert_create_trace(&collector, INGRESS_TRACE).await.parent_span_id, INGRESS_SPAN);
}

#[tokio::test(flavor = "multi_thread")]
async fn b3_single_header_joins_the_trace() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &[]);
    let b3 = format!("{INGRESS_TRACE}-{INGRESS_SPAN}-1");
    assert_eq!(stack.create(&[("b3", &b3)]).await, INGRESS_TRACE);
    assert_eq!(assert_create_trace(&collector, INGRESS_TRACE).await.parent_span_id, INGRESS_SPAN);
}

/// With `RUST_LOG=debug` the libraries' own spans and debug events are enabled: they stay out of
/// the trace, and our spans keep their parents (telemetry/src/hardening/span_selection.rs).
#[tokio::test(flavor = "multi_thread")]
async fn debug_logging_leaves_the_trace_as_it_is() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &[("RUST_LOG", "debug")]);
    let trace_id = stack.create(&[]).await;
    assert_eq!(assert_create_trace(&collector, &trace_id).await.parent_span_id, "", "a root span");
    let services: Vec<String> = collector.spans().into_iter().map(|span| span.service).collect();
    assert!(services.iter().all(|service| service == "apiserver" || service == "todomanager"), "{services:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_headers_a_new_trace_starts_at_apiserver() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &[]);
    let trace_id = stack.create(&[]).await;
    assert_eq!(trace_id.len(), 32);
    assert_eq!(assert_create_trace(&collector, &trace_id).await.parent_span_id, "", "a root span");

    // The access log line of the request carries the trace id.
    let logged = stack.apiserver.log().iter().any(|line| {
        line["trace_id"] == Value::String(trace_id.clone())
            && line["fields"]["message"].as_str().is_some_and(|m| m.contains("POST /v1/todo answered"))
    });
    assert!(logged, "{:#?}", stack.apiserver.log());
}

/// `GET /v1/todo` streams: the `ListTodos` server span covers the `db-list` span.
#[tokio::test(flavor = "multi_thread")]
async fn the_streaming_list_span_covers_the_database_reads() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &[]);
    stack.create(&[]).await;
    let response = reqwest::get(format!("{}/v1/todo", stack.api)).await.unwrap();
    let trace_id = trace_id_header(response.headers());
    let spans = collector
        .wait_for("the GET /v1/todo trace", |spans| {
            spans.iter().any(|span| span.trace_id == trace_id && span.name == "db-list")
                && spans.iter().any(|span| span.trace_id == trace_id && span.name == "GET /v1/todo")
        })
        .await;
    let spans = of_trace(spans, &trace_id);
    let rpc = find(&spans, "todomanager", "todo_mgr.TodoManager/ListTodos");
    let db = find(&spans, "todomanager", "db-list");
    assert_eq!(db.parent_span_id, rpc.span_id);
    assert_eq!(db.attribute("db.operation.name"), Some("SELECT"));
    assert!(rpc.start_unix_nano <= db.start_unix_nano && db.end_unix_nano <= rpc.end_unix_nano, "{rpc:#?}\n{db:#?}");
}

/// Callers that decided not to sample get no spans, in either service; probes get none either.
#[tokio::test(flavor = "multi_thread")]
async fn unsampled_requests_and_probes_export_nothing() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &[]);
    stack.create(&[("traceparent", &format!("00-{INGRESS_TRACE}-{INGRESS_SPAN}-00"))]).await;
    stack
        .create(&[
            ("X-B3-TraceId", "a3ce929d0e0e4736a3ce929d0e0e4736"),
            ("X-B3-SpanId", INGRESS_SPAN),
            ("X-B3-Sampled", "0"),
        ])
        .await;
    stack.create(&[("b3", "0")]).await;
    for probe in ["/ping", "/ready"] {
        let response = reqwest::get(format!("{}{probe}", stack.api)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("x-trace-id").is_none(), "{probe} is not traced");
    }

    // A sampled request afterwards: once its spans are in, earlier spans would be too.
    let marker = stack.create(&[]).await;
    let spans = assert_create_trace(&collector, &marker).await;
    let _ = spans;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The history's writes are traces of their own, sampled where they start (history.rs): not
    // a request's, recorded or not.
    let spans = collector.spans();
    let history: Vec<&str> =
        spans.iter().filter(|span| span.name == "history-write").map(|span| span.trace_id.as_str()).collect();
    let others: Vec<_> =
        spans.iter().filter(|span| span.trace_id != marker && !history.contains(&span.trace_id.as_str())).collect();
    assert!(others.is_empty(), "spans that should not exist: {others:#?}");
}

/// With no collector at all, requests are served and the tracez pages show the spans.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_collector_requests_work_and_tracez_shows_the_spans() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let stack = Stack::start(&format!("http://127.0.0.1:{closed_port}"), &[]);
    let started = std::time::Instant::now();
    for _ in 0..3 {
        stack.create(&[]).await;
    }
    // Generous (a loaded machine must not fail it): a dead collector would cost far more, an
    // export timeout of 10 s per request.
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());

    let tracez: Value =
        reqwest::get(format!("{}?format=json", stack.todomanager_tracez)).await.unwrap().json().await.unwrap();
    let finished = |name: &str| -> u64 {
        let span = tracez["spans"].as_array().unwrap().iter().find(|span| span["name"] == name);
        span.map_or(0, |span| span["latency"].as_array().unwrap().iter().map(|count| count.as_u64().unwrap()).sum())
    };
    assert_eq!(finished("todo_mgr.TodoManager/CreateTodo"), 3, "{tracez:#}");
    assert_eq!(finished("db-create"), 3, "{tracez:#}");

    // Samples of one bucket, with their ids and attributes; and the HTML page.
    let summary = tracez["spans"].as_array().unwrap().iter().find(|span| span["name"] == "db-create").unwrap();
    let bucket = summary["latency"].as_array().unwrap().iter().position(|count| count.as_u64().unwrap() > 0).unwrap();
    let url = format!("{}?format=json&name=db-create&bucket={bucket}", stack.todomanager_tracez);
    let samples: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let sample = &samples["samples"][0];
    assert_eq!(sample["trace_id"].as_str().unwrap().len(), 32, "{samples:#}");
    assert_eq!(sample["attributes"]["db.system.name"], "sqlite");
    let html = reqwest::get(&stack.apiserver_tracez).await.unwrap().text().await.unwrap();
    assert!(html.contains("POST /v1/todo"), "{html}");
}

/// The spans of a request answered just before SIGTERM reach the collector before the exit.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_flushes_the_last_spans() {
    let collector = Collector::start().await;
    // A long batch delay: without the flush at shutdown nothing would be sent in time.
    let stack = Stack::start(&collector.endpoint(), &[("OTEL_BSP_SCHEDULE_DELAY", "60000")]);
    let trace_id = stack.create(&[]).await;
    assert!(collector.spans().is_empty());

    let Stack { apiserver, todomanager, .. } = stack;
    apiserver.send_sigterm();
    todomanager.send_sigterm();
    assert!(apiserver.wait().success());
    assert!(todomanager.wait().success());
    let spans = of_trace(collector.spans(), &trace_id);
    assert_eq!(spans.len(), 4, "all four spans arrived before the processes exited: {spans:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_over_http_and_the_resource_from_the_environment() {
    let collector = Collector::start().await;
    let env = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=workshop"),
        ("K8S_POD_NAME", "todo-7d9f"),
        ("K8S_NAMESPACE_NAME", "todo"),
    ];
    let stack = Stack::start(&collector.http_endpoint(), &env);
    let trace_id = stack.create(&[]).await;
    let server = assert_create_trace(&collector, &trace_id).await;
    let resource = |key: &str| server.resource.get(key).map(String::as_str);
    assert_eq!(resource("service.name"), Some("apiserver"));
    assert_eq!(resource("deployment.environment.name"), Some("workshop"));
    assert_eq!(resource("k8s.pod.name"), Some("todo-7d9f"));
    assert_eq!(resource("k8s.namespace.name"), Some("todo"));
    assert_eq!(resource("k8s.node.name"), None, "not in the environment");
}

/// The cluster's URL scheme `mariadb://` names the server MariaDB (semantic conventions 1.44:
/// `db.system.name` is `mariadb`, not `mysql`); the test server is a MariaDB.
#[tokio::test(flavor = "multi_thread")]
async fn database_spans_name_the_mariadb_server() {
    let Some(mut db) = testkit::mysql().await else { return };
    db.url = db.url.replacen("mysql://", "mariadb://", 1);
    let collector = Collector::start().await;
    let stack = Stack::start_on(db, &collector.endpoint(), &[]);
    let trace_id = stack.create(&[]).await;
    let spans = collector
        .wait_for("db-create", |spans| spans.iter().any(|span| span.trace_id == trace_id && span.name == "db-create"))
        .await;
    let db = find(&spans, "todomanager", "db-create");
    assert_eq!(db.attribute("db.system.name"), Some("mariadb"));
    assert_eq!(db.attribute("server.address"), Some("127.0.0.1"));
    assert!(db.attribute("server.port").is_some());
}

/// Failure injection: the failures are real answers, and the trace says they were injected.
#[tokio::test(flavor = "multi_thread")]
async fn injected_failures_show_in_the_trace() {
    let collector = Collector::start().await;
    let env = [("INJECT_FAILURES", "true"), ("FAILURE_RATE", "1.0")];
    let stack = Stack::start(&collector.endpoint(), &env);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/todo", stack.api))
        .json(&json!({"text": "doomed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let trace_id = trace_id_header(response.headers());
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"error": "This failed for no reason"}));
    let spans =
        collector.wait_for("the failed request", |spans| spans.iter().any(|span| span.trace_id == trace_id)).await;
    let server = find(&spans, "apiserver", "POST /v1/todo");
    assert!(server.is_error);
    assert_eq!(server.attribute("fault.injected"), Some("error"));
    // The warning logged inside the span is in the trace too, as an event of the span.
    let (_, _, events) =
        raw_spans(&collector, &trace_id).into_iter().find(|(name, ..)| name == "POST /v1/todo").unwrap();
    assert!(events.iter().any(|event| event.contains("injected failure")), "{events:?}");
    assert_eq!(server.attribute("http.response.status_code"), Some("500"));
    assert!(
        of_trace(spans, &trace_id).iter().all(|span| span.service == "apiserver" && span.kind == "server"),
        "it never reached todomanager"
    );
    // Probes are never failed on purpose: Kubernetes would restart the pod.
    assert_eq!(reqwest::get(format!("{}/ping", stack.api)).await.unwrap().status(), StatusCode::OK);
}

/// The caller's session (`X-Session-Id`) travels as baggage with the request: apiserver's spans
/// and todomanager's record it as `session.id` (that the caller's own baggage stays: baggage.rs).
#[tokio::test(flavor = "multi_thread")]
async fn the_session_travels_as_baggage_to_every_service() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &[]);
    let response = reqwest::Client::new()
        .get(format!("{}/v1/todo", stack.api))
        .header("X-Session-Id", "s-42")
        .header("baggage", "tenant.id=acme")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let trace_id = trace_id_header(response.headers());
    let spans = collector
        .wait_for("the list", |spans| {
            spans.iter().any(|span| {
                span.trace_id == trace_id
                    && span.name == "todo_mgr.TodoManager/ListTodos"
                    && span.service == "todomanager"
            }) && spans.iter().any(|span| span.trace_id == trace_id && span.name == "GET /v1/todo")
        })
        .await;
    let spans = of_trace(spans, &trace_id);
    for (service, name) in [
        ("apiserver", "GET /v1/todo"),
        ("apiserver", "todo_mgr.TodoManager/ListTodos"),
        ("todomanager", "todo_mgr.TodoManager/ListTodos"),
    ] {
        assert_eq!(find_kind(&spans, service, name).attribute("session.id"), Some("s-42"), "{service} {name}");
    }
    // Without the header, no session.
    let plain = reqwest::get(format!("{}/v1/todo", stack.api)).await.unwrap();
    let plain_trace = trace_id_header(plain.headers());
    let spans = collector
        .wait_for("the plain list", |spans| {
            spans.iter().any(|span| span.trace_id == plain_trace && span.name == "GET /v1/todo")
        })
        .await;
    assert_eq!(find(&of_trace(spans, &plain_trace), "apiserver", "GET /v1/todo").attribute("session.id"), None);
}

/// The span of `service` named `name` whose kind fits the name's place: the server span for a
/// service's own RPC, else the first.
fn find_kind<'a>(spans: &'a [ReceivedSpan], service: &str, name: &str) -> &'a ReceivedSpan {
    let kind = if service == "todomanager" || !name.starts_with("todo_mgr") { "server" } else { "client" };
    spans
        .iter()
        .find(|span| span.service == service && span.name == name && span.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} span {service}/{name} in {spans:#?}"))
}

/// Head sampling at 0 % with the services' own sampler: nothing is recorded, except the request
/// that asks for its trace (`X-Debug-Trace: 1`), which is recorded whole, in both services.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_asks_for_its_trace_is_kept_at_any_share() {
    let collector = Collector::start().await;
    let env = [("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0")];
    let stack = Stack::start(&collector.endpoint(), &env);
    let client = reqwest::Client::new();
    let plain = client.get(format!("{}/v1/todo", stack.api)).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    let unrecorded = trace_id_header(plain.headers());
    let asked = client.get(format!("{}/v1/todo", stack.api)).header("X-Debug-Trace", "1").send().await.unwrap();
    let recorded = trace_id_header(asked.headers());
    let spans = collector
        .wait_for("the trace asked for", |spans| {
            spans.iter().any(|span| span.trace_id == recorded && span.name == "db-list")
                && spans.iter().any(|span| span.trace_id == recorded && span.name == "GET /v1/todo")
        })
        .await;
    let server = find(&spans, "apiserver", "GET /v1/todo");
    assert_eq!(server.trace_id, recorded);
    assert!(server.attribute("http.request.header.x-debug-trace").is_some(), "{server:#?}");
    assert!(spans.iter().any(|span| span.service == "todomanager" && span.trace_id == recorded));
    assert!(spans.iter().all(|span| span.trace_id != unrecorded), "the plain request was recorded");
    // Its log lines still carry its trace id: what a log says of a request not sampled leads to
    // its id (chapter 7's question counts failures by them).
    let logged = stack.apiserver.log().iter().any(|line| line["trace_id"] == unrecorded.as_str());
    assert!(logged, "no log line of the unrecorded request carries its trace id: {:#?}", stack.apiserver.log());
}

/// A database failure on demand (`X-Inject-Fault: db-error`): the database itself rejects the
/// query, and the trace tells it as it would a real one: the database span in error with the
/// database's own message, nothing labelled as injected. Without failure injection the header
/// changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_failure_on_request_is_the_databases_own() {
    let collector = Collector::start().await;
    let stack = Stack::start(
        &collector.endpoint(),
        &[("INJECT_FAILURES", "true"), ("FAILURE_RATE", "0"), ("DELAY_RATE", "0"), ("SLOW_LIST_RATE", "0")],
    );
    let client = reqwest::Client::new();
    let create = |api: &str| {
        client.post(format!("{api}/v1/todo")).header("X-Inject-Fault", "db-error").json(&json!({"text": "lost"}))
    };
    let response = create(&stack.api).send().await.unwrap();
    // todomanager answered INTERNAL: for apiserver, a failure behind it.
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let trace_id = trace_id_header(response.headers());
    let spans = collector
        .wait_for("the failed insert", |spans| {
            spans.iter().any(|span| span.trace_id == trace_id && span.name == "db-create")
        })
        .await;
    let spans = of_trace(spans, &trace_id);
    let db = find(&spans, "todomanager", "db-create");
    assert!(db.is_error, "{db:#?}");
    assert_eq!(db.attribute("error.type"), Some("database_error"));
    assert!(db.status_message.contains("no_such_column"), "the database's own message: {db:#?}");
    assert!(spans.iter().all(|span| span.attribute("fault.injected").is_none()), "nothing says it was injected");
    let rpc = find(&spans, "todomanager", "todo_mgr.TodoManager/CreateTodo");
    assert_eq!(rpc.attribute("rpc.response.status_code"), Some("INTERNAL"));
    // The list fails the same way, in its stream.
    let list = client.get(format!("{}/v1/todo", stack.api)).header("X-Inject-Fault", "db-error").send().await.unwrap();
    assert!(list.status().is_server_error(), "{}", list.status());
    let listed: Value = client.get(format!("{}/v1/todo", stack.api)).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, json!([]), "nothing was written");

    // Without failure injection, the header is ignored.
    let plain = Stack::start(&collector.endpoint(), &[]);
    assert_eq!(create(&plain.api).send().await.unwrap().status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_delays_and_slow_lists_show_in_the_trace() {
    let collector = Collector::start().await;
    // A slow list takes up to 3 s: beyond apiserver's default timeout (2 s), so raise it here.
    let env = [
        ("INJECT_FAILURES", "true"),
        ("FAILURE_RATE", "0"),
        ("DELAY_RATE", "1.0"),
        ("SLOW_LIST_RATE", "1.0"),
        ("TODOMANAGER_TIMEOUT", "5s"),
    ];
    let stack = Stack::start(&collector.endpoint(), &env);
    let started = std::time::Instant::now();
    let response = reqwest::get(format!("{}/v1/todo", stack.api)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(1100), "100 ms + at least 1 s, took {:?}", started.elapsed());
    let trace_id = trace_id_header(response.headers());
    let spans = collector
        .wait_for("the slow list", |spans| {
            let mine = || spans.iter().filter(|span| span.trace_id == trace_id);
            mine().any(|span| span.name == "db-list") && mine().any(|span| span.name == "GET /v1/todo")
        })
        .await;
    let spans = of_trace(spans, &trace_id);
    assert_eq!(find(&spans, "apiserver", "GET /v1/todo").attribute("fault.injected"), Some("delay"));
    let list = find(&spans, "todomanager", "todo_mgr.TodoManager/ListTodos");
    assert_eq!(list.attribute("fault.injected"), Some("slow"));
    assert!(list.end_unix_nano - list.start_unix_nano >= 1_000_000_000);
}

/// A request that names its fault meets that one and no other: with every list made slow at
/// random, `X-Inject-Fault: delay` still gets a list at todomanager's normal pace (a check that
/// asks for a delay must not time out at random).
#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_names_its_fault_meets_no_other() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &every_list_slower_than("900ms"));
    let client = reqwest::Client::new();
    let url = format!("{}/v1/todo", stack.api);
    // An injected error: the 500 at apiserver, and nothing else.
    let failed = client.get(&url).header("X-Inject-Fault", "error").send().await.unwrap();
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // An injected delay: apiserver's 100 ms, then a list at todomanager's normal pace, within
    // apiserver's timeout (900 ms; a slow list takes 1 to 3 s).
    let delayed = client.get(&url).header("X-Inject-Fault", "delay").send().await.unwrap();
    assert_eq!(delayed.status(), StatusCode::OK, "a slow list besides the delay that was asked for");
    let trace_id = trace_id_header(delayed.headers());
    let spans = collector
        .wait_for("the delayed request's list", |spans| {
            let mine = || spans.iter().filter(|span| span.trace_id == trace_id);
            mine().any(|span| span.name == "db-list") && mine().any(|span| span.name == "GET /v1/todo")
        })
        .await;
    let spans = of_trace(spans, &trace_id);
    assert_eq!(find(&spans, "apiserver", "GET /v1/todo").attribute("fault.injected"), Some("delay"));
    assert_eq!(find_kind(&spans, "todomanager", "todo_mgr.TodoManager/ListTodos").attribute("fault.injected"), None);
    // Without a fault named, the list is slow: the configuration above does make it so.
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
}

/// Failure injection that makes every list slow (1–3 s in todomanager) and nothing else, with
/// apiserver giving up after `timeout`.
fn every_list_slower_than(timeout: &str) -> [(&str, &str); 5] {
    [
        ("INJECT_FAILURES", "true"),
        ("FAILURE_RATE", "0"),
        ("DELAY_RATE", "0"),
        ("SLOW_LIST_RATE", "1.0"),
        ("TODOMANAGER_TIMEOUT", timeout),
    ]
}

/// A call that outlives apiserver's timeout ends its CLIENT span in error, with the status the
/// client generates for it (semconv 1.44: `rpc.response.status_code` and `error.type`
/// DEADLINE_EXCEEDED), and the API answers 504 with a message that says it timed out.
#[tokio::test(flavor = "multi_thread")]
async fn a_timed_out_call_ends_its_client_span_in_error() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &every_list_slower_than("300ms"));
    let response = reqwest::get(format!("{}/v1/todo", stack.api)).await.unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let trace_id = trace_id_header(response.headers());
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("did not answer"), "{body}");
    let spans = collector
        .wait_for("the timed-out call", |spans| {
            spans.iter().any(|span| {
                span.trace_id == trace_id && span.kind == "client" && span.name == "todo_mgr.TodoManager/ListTodos"
            })
        })
        .await;
    let spans = of_trace(spans, &trace_id);
    let call = spans
        .iter()
        .find(|span| span.kind == "client" && span.name == "todo_mgr.TodoManager/ListTodos")
        .expect("the CLIENT span");
    assert!(call.is_error, "{call:?}");
    assert_eq!(call.attribute("error.type"), Some("DEADLINE_EXCEEDED"));
    assert_eq!(call.attribute("rpc.response.status_code"), Some("DEADLINE_EXCEEDED"));
    assert!(find(&spans, "apiserver", "GET /v1/todo").is_error, "the 504 is the server's error");
}

/// `X-Inject-Fault: none` (what `verify` and `helm test` send) reaches todomanager: with every
/// list made slow there and a timeout shorter than the slowness, the opted-out request still
/// gets its answer, and the others time out.
#[tokio::test(flavor = "multi_thread")]
async fn opting_out_of_faults_reaches_todomanager() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &every_list_slower_than("500ms"));
    let client = reqwest::Client::new();
    let opted_out = client.get(format!("{}/v1/todo", stack.api)).header("X-Inject-Fault", "none").send().await;
    assert_eq!(opted_out.unwrap().status(), StatusCode::OK);
    let slow = client.get(format!("{}/v1/todo", stack.api)).send().await.unwrap();
    assert_eq!(slow.status(), StatusCode::GATEWAY_TIMEOUT, "without the opt-out the list is slow");
}

/// What a client brings along is bounded in spans: a 300 KB `User-Agent` is cut to the value
/// length limit, a made-up method is recorded as `_OTHER` (the span named `HTTP …`, the
/// original kept, cut too), signatures in the query are redacted; 400 such requests leave
/// apiserver's memory where it was (they took it from 37 to 287 MB before the limits), and
/// tracez tracks no new names for them.
#[tokio::test(flavor = "multi_thread")]
async fn what_a_client_sends_is_bounded_in_spans() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &[]);
    let http = reqwest::Client::new();
    let huge_agent = "A".repeat(300_000);
    let response = http
        .get(format!("{}/v1/todo?page_size=5&sig=secret123", stack.api))
        .header("user-agent", &huge_agent)
        .send()
        .await
        .unwrap();
    let agent_trace = trace_id_header(response.headers());
    let method = reqwest::Method::from_bytes("X".repeat(60_000).as_bytes()).unwrap();
    let response = http.request(method, format!("{}/v1/todo", stack.api)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let method_trace = trace_id_header(response.headers());

    let spans = collector
        .wait_for("both requests", |spans| {
            [&agent_trace, &method_trace].iter().all(|id| spans.iter().any(|span| span.trace_id == **id))
        })
        .await;
    let server_span = |trace: &str| {
        spans
            .iter()
            .find(|span| span.trace_id == trace && span.service == "apiserver" && span.kind == "server")
            .unwrap()
    };
    let agent = server_span(&agent_trace);
    let kept = agent.attribute("user_agent.original").unwrap();
    assert_eq!(kept.len(), telemetry::hardening::value_limits::DEFAULT_VALUE_LENGTH);
    assert_eq!(agent.attribute("url.query"), Some("page_size=5&sig=REDACTED"));
    let made_up = server_span(&method_trace);
    assert_eq!(made_up.name, "HTTP /v1/todo");
    assert_eq!(made_up.attribute("http.request.method"), Some("_OTHER"));
    assert_eq!(made_up.attribute("http.request.method_original").unwrap().len(), 4096);

    let before = stack.apiserver.rss_kib();
    for n in 0..400 {
        let method = reqwest::Method::from_bytes(format!("M{n}{}", "X".repeat(60_000)).as_bytes()).unwrap();
        http.request(method, format!("{}/v1/todo", stack.api)).header("user-agent", &huge_agent).send().await.unwrap();
    }
    let after = stack.apiserver.rss_kib();
    assert!(after < before + 32 * 1024, "apiserver grew from {before} KiB to {after} KiB");
    let tracez: Value =
        reqwest::get(format!("{}?format=json", stack.apiserver_tracez)).await.unwrap().json().await.unwrap();
    let names: Vec<&str> =
        tracez["spans"].as_array().unwrap().iter().map(|span| span["name"].as_str().unwrap()).collect();
    assert!(names.iter().all(|name| name.len() < 100), "{names:?}");
}

/// The standard `OTEL_*` variables, read from the environment as the README says.
mod environment {
    use super::*;

    /// `OTEL_SERVICE_NAME` names the service in every span.
    #[tokio::test(flavor = "multi_thread")]
    async fn otel_service_name() {
        let collector = Collector::start().await;
        let stack = Stack::start(&collector.endpoint(), &[("OTEL_SERVICE_NAME", "renamed")]);
        let trace_id = stack.create(&[]).await;
        let spans = collector.wait_for("the trace", |spans| spans.iter().any(|span| span.trace_id == trace_id)).await;
        assert!(of_trace(spans, &trace_id).iter().all(|span| span.service == "renamed"));
    }

    /// `OTEL_SDK_DISABLED=true`: requests are served, nothing is traced, no trace id is sent.
    #[tokio::test(flavor = "multi_thread")]
    async fn otel_sdk_disabled() {
        let collector = Collector::start().await;
        let stack = Stack::start(&collector.endpoint(), &[("OTEL_SDK_DISABLED", "true")]);
        let response = stack.post(&[]).await;
        assert!(response.headers().get("x-trace-id").is_none());
        tokio::time::sleep(Duration::from_millis(500)).await; // 5 export intervals
        assert!(collector.spans().is_empty(), "{:#?}", collector.spans());
    }

    /// `OTEL_TRACES_SAMPLER=parentbased_always_off`: a request without a sampled parent is not
    /// traced, one whose caller sampled it is, across both services.
    #[tokio::test(flavor = "multi_thread")]
    async fn otel_traces_sampler() {
        let collector = Collector::start().await;
        let stack = Stack::start(&collector.endpoint(), &[("OTEL_TRACES_SAMPLER", "parentbased_always_off")]);
        stack.post(&[]).await; // not sampled
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let sampled = stack.create(&[("traceparent", parent)]).await;
        assert_eq!(sampled, "4bf92f3577b34da6a3ce929d0e0e4736");
        // Once the sampled trace is in (both services), an unsampled one would be too.
        let spans =
            collector.wait_for("the sampled trace", |spans| spans.iter().any(|span| span.name == "db-create")).await;
        assert!(spans.iter().all(|span| span.trace_id == sampled), "{spans:#?}");
    }

    /// `OTEL_PROPAGATORS=none`: apiserver sends no context, so todomanager's span starts a trace
    /// of its own: the split a learner sees when propagation is missing.
    #[tokio::test(flavor = "multi_thread")]
    async fn otel_propagators() {
        let collector = Collector::start().await;
        let stack = Stack::start(&collector.endpoint(), &[("OTEL_PROPAGATORS", "none")]);
        let trace_id = stack.create(&[]).await;
        let spans =
            collector.wait_for("both services' spans", |spans| spans.iter().any(|span| span.name == "db-create")).await;
        let server = spans.iter().find(|span| span.service == "todomanager" && span.kind == "server").unwrap();
        assert_ne!(server.trace_id, trace_id, "without propagation the trace must split");
        assert!(server.parent_span_id.is_empty(), "todomanager's span is a root: {server:?}");
    }

    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` wins over `OTEL_EXPORTER_OTLP_ENDPOINT` (here a port
    /// where nothing listens).
    #[tokio::test(flavor = "multi_thread")]
    async fn otel_exporter_otlp_traces_endpoint() {
        let collector = Collector::start().await;
        let dead = format!("http://{}", testkit::process::dead_address());
        let stack = Stack::start(&dead, &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &collector.endpoint())]);
        let trace_id = stack.create(&[]).await;
        assert_create_trace(&collector, &trace_id).await;
    }
}

/// Every log line written inside a span carries its trace and span ids: the access log line of
/// a request names the request's SERVER span.
#[tokio::test(flavor = "multi_thread")]
async fn log_lines_carry_the_span_they_were_written_in() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &[]);
    let trace_id = stack.create(&[]).await;
    let server = assert_create_trace(&collector, &trace_id).await;
    let log = stack.apiserver.log();
    let line = log
        .iter()
        .find(|line| line["fields"]["message"] == "POST /v1/todo answered")
        .unwrap_or_else(|| panic!("no access log line: {log:#?}"));
    assert_eq!(line["trace_id"], trace_id.as_str());
    assert_eq!(line["span_id"], server.span_id.as_str());
}

/// tracez shows the spans running now (a slow list, while it runs) and the errors (an injected
/// failure).
#[tokio::test(flavor = "multi_thread")]
async fn tracez_shows_running_spans_and_errors() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &every_list_slower_than("10s"));
    let slow = tokio::spawn(reqwest::get(format!("{}/v1/todo", stack.api)));
    let count = |tracez: &str, name: &'static str, field: &'static str| {
        let url = format!("{tracez}?format=json");
        async move {
            let report: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            let span = report["spans"].as_array().unwrap().iter().find(|span| span["name"] == name).cloned();
            span.map_or(0, |span| span[field].as_u64().unwrap())
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count(&stack.todomanager_tracez, "todo_mgr.TodoManager/ListTodos", "running").await == 0 {
        assert!(std::time::Instant::now() < deadline, "the slow list never showed as running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = slow.await;
    let failed = reqwest::Client::new()
        .post(format!("{}/v1/todo", stack.api))
        .header("X-Inject-Fault", "error")
        .json(&json!({"text": "x"}))
        .send();
    assert_eq!(failed.await.unwrap().status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(count(&stack.apiserver_tracez, "POST /v1/todo", "errors").await, 1);
}

/// SIGTERM to todomanager while a (slow) list is in flight: the list still completes, and
/// todomanager exits cleanly.
#[tokio::test(flavor = "multi_thread")]
async fn todomanager_finishes_the_rpcs_in_flight() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &every_list_slower_than("10s"));
    let list = tokio::spawn(reqwest::get(format!("{}/v1/todo", stack.api)));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let running = || async {
        let report: Value =
            reqwest::get(format!("{}?format=json", stack.todomanager_tracez)).await.unwrap().json().await.unwrap();
        report["spans"].as_array().unwrap().iter().any(|span| span["running"].as_u64().unwrap_or(0) > 0)
    };
    while !running().await {
        assert!(std::time::Instant::now() < deadline, "the list never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack.todomanager.send_sigterm();
    let response = list.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    let Stack { todomanager, .. } = stack;
    let exit = tokio::task::spawn_blocking(move || todomanager.wait()).await.unwrap();
    assert!(exit.success(), "todomanager exited with {exit}");
}

/// The history of two changes made together is written in one batch, in a trace of its own,
/// whose span links to the span of each request (todomanager's server span): from either
/// request's trace a link leads to the write, and the write's database span is its child.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_history_links_to_every_request_it_writes_for() {
    let collector = Collector::start().await;
    let stack = Stack::start(&collector.endpoint(), &[("HISTORY_WINDOW", "1s")]);
    let (first, second) = (stack.create(&[]).await, stack.create(&[]).await);
    let spans = collector
        .wait_for("the history's write", |spans| {
            spans.iter().any(|span| span.name == "history-write" && span.links.len() >= 2)
                && spans.iter().any(|span| span.name == "db-history-write")
        })
        .await;
    let batch = spans.iter().find(|span| span.name == "history-write").unwrap();
    assert_eq!(batch.service, "todomanager");
    assert!(batch.parent_span_id.is_empty(), "a trace of its own: {batch:#?}");
    assert!(![&first, &second].contains(&&batch.trace_id), "in no request's trace");
    assert_eq!(batch.attribute("history.changes"), Some("2"));
    for trace_id in [&first, &second] {
        let server =
            find_kind(&of_trace(spans.clone(), trace_id), "todomanager", "todo_mgr.TodoManager/CreateTodo").clone();
        assert!(
            batch.links.iter().any(|link| link.trace_id == server.trace_id && link.span_id == server.span_id),
            "a link to {trace_id}'s CreateTodo: {:?}",
            batch.links
        );
    }
    let write = spans.iter().find(|span| span.name == "db-history-write").unwrap();
    assert_eq!((&write.trace_id, &write.parent_span_id), (&batch.trace_id, &batch.span_id));
    assert_eq!(write.attribute("db.operation.name"), Some("INSERT"));
}
