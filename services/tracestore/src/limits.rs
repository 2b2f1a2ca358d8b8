//! The store's size arithmetic: how much memory a span takes, and cutting attribute values
//! that are too long.

use opentelemetry_proto::tonic::{
    common::v1::{KeyValue, any_value::Value},
    trace::v1::{ResourceSpans, Span},
};
use prost::Message;

/// What a decoded value costs beyond its encoded bytes: the struct, its `String`s and `Vec`s
/// and the allocator's bookkeeping (measured: see `tests/limits.rs`, which checks the process's
/// memory against the budget).
const PER_SPAN: usize = 400;
const PER_KEY_VALUE: usize = 112;

/// The memory a part of a trace is estimated to take.
pub fn estimated_bytes(part: &ResourceSpans) -> usize {
    let resource =
        part.resource.as_ref().map_or(0, |resource| resource.encoded_len() + PER_KEY_VALUE * resource.attributes.len());
    let spans: usize = part.scope_spans.iter().flat_map(|scope| &scope.spans).map(span_bytes).sum();
    resource + spans + PER_SPAN
}

/// The memory one span is estimated to take.
pub fn span_bytes(span: &Span) -> usize {
    let key_values = span.attributes.len()
        + span.events.iter().map(|event| 1 + event.attributes.len()).sum::<usize>()
        + span.links.iter().map(|link| 1 + link.attributes.len()).sum::<usize>();
    span.encoded_len() + PER_SPAN + PER_KEY_VALUE * key_values
}

/// Cuts every string value of the span's attributes (and its events' and links') to at most
/// `max_bytes` bytes, at a character boundary. Returns how many were cut.
pub fn cut_values(span: &mut Span, max_bytes: usize) -> usize {
    let mut cut = 0;
    let attributes = span
        .attributes
        .iter_mut()
        .chain(span.events.iter_mut().flat_map(|event| event.attributes.iter_mut()))
        .chain(span.links.iter_mut().flat_map(|link| link.attributes.iter_mut()));
    for attribute in attributes {
        cut += cut_value(attribute, max_bytes) as usize;
    }
    cut
}

fn cut_value(attribute: &mut KeyValue, max_bytes: usize) -> bool {
    attribute.value.as_mut().and_then(|value| value.value.as_mut()).is_some_and(|value| cut(value, max_bytes))
}

fn cut(value: &mut Value, max_bytes: usize) -> bool {
    match value {
        Value::StringValue(text) if text.len() > max_bytes => {
            text.truncate(text.floor_char_boundary(max_bytes));
            true
        }
        Value::BytesValue(bytes) if bytes.len() > max_bytes => {
            bytes.truncate(max_bytes);
            true
        }
        Value::ArrayValue(array) => array
            .values
            .iter_mut()
            .filter_map(|item| item.value.as_mut())
            .fold(false, |any, item| cut(item, max_bytes) | any),
        Value::KvlistValue(list) => list.values.iter_mut().fold(false, |any, kv| cut_value(kv, max_bytes) | any),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::AnyValue;

    use super::*;

    fn text(value: &str) -> KeyValue {
        KeyValue {
            key: "k".into(),
            key_strindex: 0,
            value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
        }
    }

    #[test]
    fn long_values_are_cut_at_a_character_boundary() {
        let mut span = Span { attributes: vec![text("ééé"), text("ok")], ..Default::default() };
        assert_eq!(cut_values(&mut span, 3), 1);
        assert_eq!(span.attributes[0], text("é"));
        assert_eq!(span.attributes[1], text("ok"));
    }

    #[test]
    fn the_estimate_grows_with_what_a_span_carries() {
        let small = Span::default();
        let big = Span { attributes: vec![text(&"x".repeat(10_000))], ..Default::default() };
        assert!(span_bytes(&big) >= span_bytes(&small) + 10_000);
    }
}
