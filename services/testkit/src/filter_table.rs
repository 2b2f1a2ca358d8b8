//! One table for Jaeger's attribute filter (`query.attributes`), run against both places that
//! apply it: the trace store's search, and `cargo xtask search` on another store's answer. Each
//! case says whether the trace below has a span of apiserver that meets every condition, as
//! Jaeger v2.19's memory store decides (`internal/storage/v2/memory/tenant.go`, `validSpan`).

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value::Value},
    resource::v1::Resource,
    trace::v1::{
        ResourceSpans, ScopeSpans, Span, Status,
        span::{Event, Link, SpanKind},
        status::StatusCode,
    },
};

/// The service the cases search.
pub const SERVICE: &str = "apiserver";

pub struct Case {
    pub filter: &'static [(&'static str, &'static str)],
    pub matches: bool,
    pub why: &'static str,
}

/// The cases, each with why it holds.
pub const CASES: &[Case] = &[
    Case { filter: &[], matches: true, why: "no condition" },
    Case { filter: &[("error", "true")], matches: true, why: "the server span's status is Error" },
    Case { filter: &[("error", "1")], matches: true, why: "`error` is read as Go's strconv.ParseBool reads it" },
    Case {
        filter: &[("error", "false")],
        matches: false,
        why: "`false` wants status Ok: apiserver's other span is Unset, todomanager's Ok span is another service",
    },
    Case { filter: &[("error", "yes")], matches: false, why: "not a boolean: no span" },
    Case { filter: &[("span.status", "ok")], matches: false, why: "Unset is not Ok" },
    Case { filter: &[("span.status", "unset")], matches: true, why: "the client span sets no status" },
    Case { filter: &[("span.status", "ERROR")], matches: true, why: "any case" },
    Case { filter: &[("span.kind", "client")], matches: true, why: "the span's kind" },
    Case { filter: &[("span.kind", "consumer")], matches: false, why: "no consumer span" },
    Case { filter: &[("http.response.status_code", "500")], matches: true, why: "an integer, as text" },
    Case { filter: &[("retry", "true")], matches: true, why: "a boolean, as text" },
    Case { filter: &[("ratio", "0.5")], matches: true, why: "a double, as text" },
    Case { filter: &[("tags", r#"["a","b"]"#)], matches: true, why: "an array, as JSON (pcommon's AsString)" },
    Case { filter: &[("tags", "[a b]")], matches: false, why: "not Go's or Rust's display of a list" },
    Case { filter: &[("blob", "AQID")], matches: true, why: "bytes, in base64" },
    Case { filter: &[("resource.deployment.environment.name", "workshop")], matches: true, why: "resource.KEY" },
    Case {
        filter: &[("deployment.environment.name", "workshop")],
        matches: true,
        why: "a plain KEY looks at the resource too",
    },
    Case {
        filter: &[("resource.http.route", "/v1/todo/{id}")],
        matches: false,
        why: "resource.KEY looks at the resource only",
    },
    Case { filter: &[("scope.name", "apiserver")], matches: true, why: "the scope's name" },
    Case { filter: &[("scope.version", "0.2.0")], matches: false, why: "the scope is 0.1.0" },
    Case { filter: &[("library.language", "rust")], matches: true, why: "a scope's attribute" },
    Case { filter: &[("fault.injected", "error")], matches: true, why: "an event's attribute" },
    Case { filter: &[("batch.size", "3")], matches: true, why: "a link's attribute" },
    Case {
        filter: &[("error", "true"), ("span.kind", "client")],
        matches: false,
        why: "every condition on one span: the Error span is the server, not the client",
    },
    Case { filter: &[("db.system.name", "mysql")], matches: false, why: "todomanager's span, not apiserver's" },
];

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

/// The trace of the cases: apiserver's server span (Error, typed attributes, an event, a link)
/// and client span (Unset), then todomanager's server span (Ok).
pub fn trace() -> ExportTraceServiceRequest {
    let trace_id = vec![7; 16];
    let span = |id: u8, name: &str, kind: SpanKind, status: StatusCode, attributes: Vec<KeyValue>| Span {
        trace_id: trace_id.clone(),
        span_id: vec![id; 8],
        parent_span_id: if id == 1 { Vec::new() } else { vec![id - 1; 8] },
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(id) * 1_000_000,
        end_time_unix_nano: 1_700_000_000_150_000_000,
        attributes,
        status: Some(Status { code: status as i32, message: String::new() }),
        ..Default::default()
    };
    let mut server = span(
        1,
        "GET /v1/todo/{id}",
        SpanKind::Server,
        StatusCode::Error,
        vec![
            kv("http.response.status_code", Value::IntValue(500)),
            text("http.route", "/v1/todo/{id}"),
            kv("retry", Value::BoolValue(true)),
            kv("ratio", Value::DoubleValue(0.5)),
            kv(
                "tags",
                Value::ArrayValue(ArrayValue {
                    values: ["a", "b"]
                        .iter()
                        .map(|item| AnyValue { value: Some(Value::StringValue((*item).into())) })
                        .collect(),
                }),
            ),
            kv("blob", Value::BytesValue(vec![1, 2, 3])),
        ],
    );
    server.events =
        vec![Event { name: "fault".into(), attributes: vec![text("fault.injected", "error")], ..Default::default() }];
    server.links = vec![Link {
        trace_id: vec![8; 16],
        span_id: vec![8; 8],
        attributes: vec![kv("batch.size", Value::IntValue(3))],
        ..Default::default()
    }];
    let client =
        span(2, "todo_mgr.TodoManager/GetTodo", SpanKind::Client, StatusCode::Unset, vec![text("rpc.system", "grpc")]);
    let downstream = span(
        3,
        "todo_mgr.TodoManager/GetTodo",
        SpanKind::Server,
        StatusCode::Ok,
        vec![text("db.system.name", "mysql")],
    );
    let resource_spans = |service: &str, spans: Vec<Span>| ResourceSpans {
        resource: Some(Resource {
            attributes: vec![text("service.name", service), text("deployment.environment.name", "workshop")],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: service.into(),
                version: "0.1.0".into(),
                attributes: vec![text("library.language", "rust")],
                ..Default::default()
            }),
            spans,
            ..Default::default()
        }],
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            resource_spans(SERVICE, vec![server, client]),
            resource_spans("todomanager", vec![downstream]),
        ],
    }
}

/// The filter of `case`, as the store's query and `cargo xtask search` hold it.
pub fn filter(case: &Case) -> std::collections::BTreeMap<String, String> {
    case.filter.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
}
