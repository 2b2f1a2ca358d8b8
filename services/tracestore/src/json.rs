//! OTLP/JSON as Jaeger writes it: camelCase names, lower-case hex ids, 64-bit numbers as
//! strings, enums as numbers, and fields at their default value left out. Values inside an
//! attribute (`{"stringValue": ""}`, `{"boolValue": false}`) are always kept.

use std::collections::HashSet;

use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, TracesData};
use prost::Message;
use serde_json::{Map, Value, json};

/// The body of `GET /api/v3/traces…`: `{"result": {"resourceSpans": […]}}`.
pub fn traces_answer(mut resource_spans: Vec<ResourceSpans>) -> Value {
    as_jaeger_reads(&mut resource_spans);
    let mut data = serde_json::to_value(TracesData { resource_spans }).expect("OTLP data serializes to JSON");
    strip_defaults(&mut data);
    json!({ "result": data })
}

/// What Jaeger's query service does to spans before it answers (checked against the real
/// Jaeger by `tests/jaeger_differential.rs`): a span that arrived twice, identical (an exporter's
/// retry, say), is shown once (its "dedupe spans" adjuster), and every span has a status, empty
/// when none was sent.
fn as_jaeger_reads(resource_spans: &mut [ResourceSpans]) {
    let mut seen = HashSet::new();
    for resource_span in resource_spans {
        let resource = resource_span.resource.as_ref().map(Message::encode_to_vec).unwrap_or_default();
        for scope_span in &mut resource_span.scope_spans {
            let scope = scope_span.scope.as_ref().map(Message::encode_to_vec).unwrap_or_default();
            scope_span.spans.retain(|span| seen.insert([&resource[..], &scope, &span.encode_to_vec()].concat()));
            for span in &mut scope_span.spans {
                span.status.get_or_insert_default();
            }
        }
    }
}

const ANY_VALUE_KEYS: [&str; 7] =
    ["stringValue", "boolValue", "intValue", "doubleValue", "arrayValue", "kvlistValue", "bytesValue"];

fn strip_defaults(value: &mut Value) {
    match value {
        Value::Object(fields) if is_any_value(fields) => {
            for nested in fields.values_mut() {
                strip_defaults(nested);
            }
        }
        Value::Object(fields) => {
            fields.retain(|key, field| !is_default(key, field));
            for field in fields.values_mut() {
                strip_defaults(field);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_defaults),
        _ => {}
    }
}

fn is_any_value(fields: &Map<String, Value>) -> bool {
    fields.len() == 1 && fields.keys().all(|key| ANY_VALUE_KEYS.contains(&key.as_str()))
}

fn is_default(key: &str, field: &Value) -> bool {
    match field {
        Value::Null | Value::Bool(false) => true,
        Value::Number(number) => number.as_f64() == Some(0.0),
        Value::String(text) => text.is_empty() || (key.ends_with("UnixNano") && text == "0"),
        Value::Array(items) => items.is_empty(),
        Value::Object(_) | Value::Bool(true) => false,
    }
}
