//! OTLP/JSON as Jaeger writes it: camelCase names, lower-case hex ids, 64-bit numbers as
//! strings, enums as numbers, and fields at their default value left out. Values inside an
//! attribute (`{"stringValue": ""}`, `{"boolValue": false}`) are always kept.

use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, TracesData};
use serde_json::{Map, Value, json};

/// The body of `GET /api/v3/traces…`: `{"result": {"resourceSpans": […]}}`.
pub fn traces_answer(resource_spans: Vec<ResourceSpans>) -> Value {
    let mut data = serde_json::to_value(TracesData { resource_spans }).expect("OTLP data serializes to JSON");
    strip_defaults(&mut data);
    json!({ "result": data })
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
