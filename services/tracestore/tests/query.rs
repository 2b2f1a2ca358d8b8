//! What the README says of the store's search, checked on the store itself: the newest 10,000
//! traces are kept, searches answer newest first, `num_traces` limits them,
//! `duration_min`/`duration_max` filter by span duration and `attributes` by what a span says.

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value::Value},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status::StatusCode},
};
use tracestore::{Limits, Store, model, store::Query};

const START: u64 = 1_800_000_000_000_000_000;

/// One trace `n` with one span lasting `millis`.
fn trace(n: u64, millis: u64) -> ExportTraceServiceRequest {
    let service = KeyValue {
        key: "service.name".into(),
        key_strindex: 0,
        value: Some(AnyValue { value: Some(Value::StringValue("svc".into())) }),
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![service], ..Default::default() }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: [[0u8; 8], n.to_be_bytes()].concat(),
                    span_id: n.to_be_bytes().to_vec(),
                    name: "op".into(),
                    start_time_unix_nano: START + n,
                    end_time_unix_nano: START + n + millis * 1_000_000,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn trace_numbers(found: Vec<Vec<ResourceSpans>>) -> Vec<u64> {
    found.iter().map(|parts| u64::from_str_radix(&model::spans_of(parts)[0].trace_id[16..], 16).unwrap()).collect()
}

fn query() -> Query {
    Query {
        service_name: "svc".into(),
        start_time_min_nanos: START,
        start_time_max_nanos: START + 1_000_000,
        num_traces: 100,
        ..Default::default()
    }
}

/// However many traces match, a search answer stays within its size: the newest that fit.
#[test]
fn a_search_answer_is_bounded_in_size() {
    let store = Store::new(Limits { max_attribute_value_bytes: 1 << 20, ..Limits::default() });
    for n in 1..=100 {
        let mut request = trace(n, 1);
        let span = &mut request.resource_spans[0].scope_spans[0].spans[0];
        span.attributes.push(KeyValue {
            key: "payload".into(),
            key_strindex: 0,
            value: Some(AnyValue { value: Some(Value::StringValue("x".repeat(1 << 20))) }),
        });
        store.ingest(request);
    }
    let found = trace_numbers(store.find(&query()));
    assert!(found.len() < 40, "{} traces of 1 MiB in one answer", found.len());
    assert_eq!(found[..3], [100, 99, 98], "the newest first");
}

#[test]
fn the_newest_10_000_traces_are_kept_by_default() {
    assert_eq!(Limits::default().max_traces, 10_000);
    let store = Store::new(Limits::default());
    for n in 1..=10_001 {
        store.ingest(trace(n, 1));
    }
    assert_eq!(store.len(), 10_000);
    let kept = store.all();
    assert_eq!(kept.first().unwrap().0[15], 2, "trace 1, the oldest, went first");
}

#[test]
fn searches_answer_newest_first_within_num_traces_and_durations() {
    let store = Store::new(Limits::default());
    for n in 1..=5 {
        store.ingest(trace(n, n * 10)); // trace n lasts n × 10 ms
    }
    assert_eq!(trace_numbers(store.find(&query())), [5, 4, 3, 2, 1]);
    assert_eq!(trace_numbers(store.find(&Query { num_traces: 2, ..query() })), [5, 4]);
    let at_most_30ms = Query { duration_max: Some(std::time::Duration::from_millis(30)), ..query() };
    assert_eq!(trace_numbers(store.find(&at_most_30ms)), [3, 2, 1]);
    let at_least_20ms = Query { duration_min: Some(std::time::Duration::from_millis(20)), ..at_most_30ms };
    assert_eq!(trace_numbers(store.find(&at_least_20ms)), [3, 2]);
}

/// `query.attributes`: errors only, by status code, by kind, by resource, all at once on one
/// span, as Jaeger's memory store matches them.
#[test]
fn searches_filter_by_attributes_span_by_span() {
    let store = Store::new(Limits::default());
    for n in 1..=6 {
        let mut request = trace(n, 1);
        let span = &mut request.resource_spans[0].scope_spans[0].spans[0];
        // Odd traces failed with a 500; even ones answered 200; trace 6 is a client span.
        let (code, status) = if n % 2 == 1 { (500, StatusCode::Error) } else { (200, StatusCode::Unset) };
        span.status = Some(Status { code: status as i32, message: String::new() });
        span.kind = if n == 6 { 3 } else { 2 };
        span.attributes.push(KeyValue {
            key: "http.response.status_code".into(),
            key_strindex: 0,
            value: Some(AnyValue { value: Some(Value::IntValue(code)) }),
        });
        store.ingest(request);
    }
    let with = |pairs: &[(&str, &str)]| {
        let attributes = pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
        trace_numbers(store.find(&Query { attributes: tracestore::filter::Attributes(attributes), ..query() }))
    };
    assert_eq!(with(&[("error", "true")]), [5, 3, 1]);
    assert_eq!(with(&[("error", "false")]), Vec::<u64>::new(), "false asks for status Ok, which none has");
    assert_eq!(with(&[("http.response.status_code", "200")]), [6, 4, 2]);
    assert_eq!(with(&[("http.response.status_code", "200"), ("span.kind", "server")]), [4, 2]);
    assert_eq!(with(&[("resource.service.name", "svc"), ("span.status", "error")]), [5, 3, 1]);
    assert_eq!(with(&[("error", "true"), ("http.response.status_code", "200")]), Vec::<u64>::new());
}
