//! `query.attributes`: the attribute filter of a trace search, matched span by span exactly as
//! Jaeger v2's memory store does (jaegertracing/jaeger v2.19.0,
//! `internal/storage/v2/memory/tenant.go`, `validSpan`; the HTTP parameter is a JSON object of
//! strings since v2.19.0, `apiv3/query_parser.go`). A trace matches when one of its spans, of
//! the service searched for, meets every condition at once:
//!
//! - `error`: `true` → the span's status is Error, `false` → its status is Ok (not Unset);
//!   a value that is not a boolean (`strconv.ParseBool`) matches no span;
//! - `span.status` (`ok`, `error`, anything else = unset), `span.kind` (`server`, `client`, …),
//!   `scope.name`, `scope.version`: the span's own;
//! - `resource.KEY`: the resource attribute KEY;
//! - any other KEY: an attribute of the span, its scope or its resource, or of one of its
//!   events or links.
//!
//! Values compare as text (pcommon's `AsString`): `500` matches the integer 500.

use std::collections::BTreeMap;

use base64::Engine as _;
use opentelemetry_proto::tonic::{
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value},
    trace::v1::{Span, status::StatusCode},
};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes(pub BTreeMap<String, String>);

impl Attributes {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `span` (with its scope and resource) meets every condition.
    pub fn matches(&self, resource: &[KeyValue], scope: Option<&InstrumentationScope>, span: &Span) -> bool {
        let status = span.status.as_ref().map_or(StatusCode::Unset as i32, |status| status.code);
        self.0.iter().all(|(key, wanted)| match key.as_str() {
            "error" => match parse_bool(wanted) {
                Some(true) => status == StatusCode::Error as i32,
                Some(false) => status == StatusCode::Ok as i32,
                None => false,
            },
            "span.status" => status == status_code(wanted) as i32,
            "span.kind" => span.kind == kind_code(wanted),
            "scope.name" => scope.map_or("", |scope| scope.name.as_str()) == wanted,
            "scope.version" => scope.map_or("", |scope| scope.version.as_str()) == wanted,
            _ => match key.strip_prefix("resource.") {
                Some(resource_key) => has(resource, resource_key, wanted),
                None => {
                    has(&span.attributes, key, wanted)
                        || scope.is_some_and(|scope| has(&scope.attributes, key, wanted))
                        || has(resource, key, wanted)
                        || span.events.iter().any(|event| has(&event.attributes, key, wanted))
                        || span.links.iter().any(|link| has(&link.attributes, key, wanted))
                }
            },
        })
    }
}

fn has(attributes: &[KeyValue], key: &str, wanted: &str) -> bool {
    attributes.iter().find(|kv| kv.key == key).is_some_and(|kv| as_string(kv.value.as_ref()) == wanted)
}

/// A value as pcommon's `Value.AsString` writes it.
fn as_string(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(Value::StringValue(text)) => text.clone(),
        Some(Value::BoolValue(flag)) => flag.to_string(),
        Some(Value::IntValue(number)) => number.to_string(),
        Some(Value::DoubleValue(number)) => number.to_string(),
        Some(Value::BytesValue(bytes)) => base64::engine::general_purpose::STANDARD.encode(bytes),
        Some(Value::ArrayValue(_) | Value::KvlistValue(_)) => raw(value).to_string(),
        Some(Value::StringValueStrindex(_)) | None => String::new(),
    }
}

/// A list or map as pcommon's `AsRaw`, which `AsString` writes as JSON.
fn raw(value: Option<&AnyValue>) -> serde_json::Value {
    use serde_json::Value as Json;
    match value.and_then(|value| value.value.as_ref()) {
        Some(Value::StringValue(text)) => Json::from(text.as_str()),
        Some(Value::BoolValue(flag)) => Json::from(*flag),
        Some(Value::IntValue(number)) => Json::from(*number),
        Some(Value::DoubleValue(number)) => Json::from(*number),
        Some(Value::BytesValue(bytes)) => Json::from(base64::engine::general_purpose::STANDARD.encode(bytes)),
        Some(Value::ArrayValue(array)) => array.values.iter().map(|item| raw(Some(item))).collect(),
        Some(Value::KvlistValue(list)) => {
            Json::Object(list.values.iter().map(|kv| (kv.key.clone(), raw(kv.value.as_ref()))).collect())
        }
        Some(Value::StringValueStrindex(_)) | None => Json::Null,
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn status_code(text: &str) -> StatusCode {
    match text.to_ascii_uppercase().as_str() {
        "OK" => StatusCode::Ok,
        "ERROR" => StatusCode::Error,
        _ => StatusCode::Unset,
    }
}

/// OTLP's span kind number for Jaeger's name of it (unknown: unspecified, 0).
fn kind_code(text: &str) -> i32 {
    match text.to_ascii_uppercase().as_str() {
        "INTERNAL" => 1,
        "SERVER" => 2,
        "CLIENT" => 3,
        "PRODUCER" => 4,
        "CONSUMER" => 5,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::trace::v1::{Status, span::Event};

    use super::*;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
    }

    fn filter(pairs: &[(&str, &str)]) -> Attributes {
        Attributes(pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect())
    }

    fn span(status: StatusCode) -> Span {
        Span {
            name: "GET /v1/todo/{id}".into(),
            kind: 2,
            attributes: vec![
                kv("http.response.status_code", Value::IntValue(500)),
                kv("http.route", Value::StringValue("/v1/todo/{id}".into())),
            ],
            events: vec![Event {
                name: "fault".into(),
                attributes: vec![kv("fault.injected", Value::BoolValue(true))],
                ..Default::default()
            }],
            status: Some(Status { code: status as i32, message: String::new() }),
            ..Default::default()
        }
    }

    #[test]
    fn error_means_status_error_and_false_means_ok() {
        let resource = [kv("service.name", Value::StringValue("apiserver".into()))];
        let matches = |pairs: &[(&str, &str)], status| filter(pairs).matches(&resource, None, &span(status));
        assert!(matches(&[("error", "true")], StatusCode::Error));
        assert!(matches(&[("error", "T")], StatusCode::Error), "Go's ParseBool spellings");
        assert!(!matches(&[("error", "true")], StatusCode::Unset));
        assert!(matches(&[("error", "false")], StatusCode::Ok));
        assert!(!matches(&[("error", "false")], StatusCode::Unset), "false asks for Ok, not for Unset");
        assert!(!matches(&[("error", "yes")], StatusCode::Error), "not a boolean: matches nothing");
    }

    #[test]
    fn attributes_match_as_text_on_the_span_its_events_and_its_resource() {
        let resource = [kv("service.name", Value::StringValue("apiserver".into()))];
        let scope = InstrumentationScope { name: "apiserver".into(), version: "0.1.0".into(), ..Default::default() };
        let span = span(StatusCode::Error);
        let matches = |pairs: &[(&str, &str)]| filter(pairs).matches(&resource, Some(&scope), &span);
        assert!(matches(&[("http.response.status_code", "500")]), "an integer compares as text");
        assert!(!matches(&[("http.response.status_code", "404")]));
        assert!(matches(&[("fault.injected", "true")]), "an event's attribute");
        assert!(matches(&[("service.name", "apiserver")]), "the resource's, without the prefix");
        assert!(matches(&[("resource.service.name", "apiserver")]));
        assert!(!matches(&[("resource.http.route", "/v1/todo/{id}")]), "resource. looks at the resource only");
        assert!(matches(&[("span.kind", "server"), ("span.status", "error"), ("scope.name", "apiserver")]));
        assert!(!matches(&[("span.kind", "client")]));
        assert!(!matches(&[("http.route", "/v1/todo/{id}"), ("missing", "x")]), "every condition holds");
        assert!(filter(&[]).matches(&resource, None, &span), "no condition: every span");
    }
}
