//! Span limits: how much of what a request brings along a span may keep. A 300 KB `User-Agent`
//! or a 60 KB made-up HTTP method would otherwise be kept whole, in memory (queue, tracez) and
//! on the wire.
//!
//! The standard variables: `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT` (or the general
//! `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`) cuts string values (the SDK does not implement it:
//! this module does, by wrapping the span processors); `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`,
//! `OTEL_SPAN_EVENT_COUNT_LIMIT` and `OTEL_SPAN_LINK_COUNT_LIMIT` (default 128 each) are read
//! by the SDK itself.

use std::time::Duration;

use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{Span, SpanData, SpanProcessor},
};

/// The longest string attribute value kept, in bytes, unless the environment says otherwise.
/// The specification's default is "no limit"; this one keeps every value a span of ours
/// records whole and cuts what a client could make huge.
pub const DEFAULT_VALUE_LENGTH: usize = 4096;

/// `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else
/// [`DEFAULT_VALUE_LENGTH`].
pub fn value_length_from_env() -> anyhow::Result<usize> {
    for name in ["OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"] {
        if let Ok(value) = std::env::var(name) {
            return value.trim().parse().map_err(|_| anyhow::anyhow!("{name}={value:?} is not a number of characters"));
        }
    }
    Ok(DEFAULT_VALUE_LENGTH)
}

/// Cuts every string value of the span's attributes, events and links to `max` bytes (at a
/// character boundary). Returns how many were cut.
pub fn cut_values(span: &mut SpanData, max: usize) -> usize {
    let attributes = span
        .attributes
        .iter_mut()
        .chain(span.events.events.iter_mut().flat_map(|event| event.attributes.iter_mut()))
        .chain(span.links.links.iter_mut().flat_map(|link| link.attributes.iter_mut()));
    attributes.map(|attribute| cut(attribute, max)).sum()
}

fn cut(attribute: &mut KeyValue, max: usize) -> usize {
    let cut_string = |value: &StringValue| {
        let text = value.as_str();
        (text.len() > max).then(|| StringValue::from(text[..text.floor_char_boundary(max)].to_owned()))
    };
    match &mut attribute.value {
        Value::String(value) => match cut_string(value) {
            Some(shorter) => {
                *value = shorter;
                1
            }
            None => 0,
        },
        Value::Array(Array::String(values)) => {
            values.iter_mut().filter_map(|value| cut_string(value).map(|shorter| *value = shorter)).count()
        }
        _ => 0,
    }
}

/// The size a span takes in an export, roughly (what its strings and numbers weigh); used to
/// keep each export under the receiver's message limit.
pub fn estimated_bytes(span: &SpanData) -> usize {
    let key_values = |attributes: &[KeyValue]| -> usize {
        attributes.iter().map(|kv| kv.key.as_str().len() + value_bytes(&kv.value) + 8).sum()
    };
    let events: usize = span.events.iter().map(|event| event.name.len() + key_values(&event.attributes) + 24).sum();
    let links: usize = span.links.iter().map(|link| key_values(&link.attributes) + 48).sum();
    span.name.len() + key_values(&span.attributes) + events + links + 96
}

fn value_bytes(value: &Value) -> usize {
    match value {
        Value::String(text) => text.as_str().len(),
        Value::Array(Array::String(values)) => values.iter().map(|text| text.as_str().len() + 2).sum(),
        Value::Array(Array::Bool(values)) => values.len(),
        Value::Array(Array::I64(values)) => values.len() * 8,
        Value::Array(Array::F64(values)) => values.len() * 8,
        _ => 8,
    }
}

/// A span processor that applies the value length limit before passing spans on.
#[derive(Debug)]
pub struct Limited<P> {
    inner: P,
    max_value_length: usize,
}

impl<P> Limited<P> {
    pub fn new(inner: P, max_value_length: usize) -> Self {
        Self { inner, max_value_length }
    }
}

impl<P: SpanProcessor> SpanProcessor for Limited<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        cut_values(&mut span, self.max_value_length);
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_are_cut_at_a_character_boundary() {
        let mut attribute = KeyValue::new("user_agent.original", "é".repeat(10));
        assert_eq!(cut(&mut attribute, 5), 1);
        assert_eq!(attribute.value.as_str(), "éé");
        let mut short = KeyValue::new("k", "short");
        assert_eq!(cut(&mut short, 5), 0);
        let mut number = KeyValue::new("n", 123_456_789_i64);
        assert_eq!(cut(&mut number, 2), 0);
        let mut list = KeyValue::new("l", Value::Array(Array::String(vec!["abcdef".into(), "ab".into()])));
        assert_eq!(cut(&mut list, 3), 1);
    }
}
