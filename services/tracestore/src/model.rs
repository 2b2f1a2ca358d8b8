//! Spans flattened out of OTLP's nesting (resource → scope → span), the way people read them:
//! which service, which operation, whose child, how long.

use std::collections::{BTreeMap, HashMap, HashSet};

use opentelemetry_proto::tonic::{
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::{ResourceSpans, ScopeSpans, status::StatusCode},
};

/// `Default` is for tests' fixtures: a span with every field empty (and kind "").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Span {
    /// Lower-case hex, as everywhere in this workshop.
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub service: String,
    pub name: String,
    /// `server`, `client`, `internal`, `producer`, `consumer`, or `unspecified`.
    pub kind: &'static str,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub attributes: BTreeMap<String, String>,
    /// The attributes of the resource that reported the span (`service.name`, `k8s.pod.name`…).
    pub resource: BTreeMap<String, String>,
    pub is_error: bool,
    pub status_message: String,
    /// What happened during the span, in time order (a warning logged inside it, say).
    pub events: Vec<Event>,
    /// The spans it links to, often in other traces (work done for many requests at once).
    pub links: Vec<Link>,
}

/// A span a span links to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub trace_id: String,
    pub span_id: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: BTreeMap<String, String>,
}

impl Span {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }
}

pub fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

/// `resource_spans` cut by trace: each trace's spans with their resource and scope, the traces
/// in the order they first appear (an OTLP message may carry spans of many traces).
pub fn by_trace(resource_spans: &[ResourceSpans]) -> Vec<Vec<ResourceSpans>> {
    let mut traces: Vec<Vec<ResourceSpans>> = Vec::new();
    let mut index: HashMap<&[u8], usize> = HashMap::new();
    for resource_span in resource_spans {
        for scope_spans in &resource_span.scope_spans {
            for span in &scope_spans.spans {
                let at = *index.entry(span.trace_id.as_slice()).or_insert_with(|| {
                    traces.push(Vec::new());
                    traces.len() - 1
                });
                let trace = &mut traces[at];
                // Spans of the same resource and scope, one after the other, stay together.
                let same = trace.last().is_some_and(|last| {
                    last.resource == resource_span.resource && last.scope_spans[0].scope == scope_spans.scope
                });
                if !same {
                    trace.push(ResourceSpans {
                        resource: resource_span.resource.clone(),
                        scope_spans: vec![ScopeSpans { scope: scope_spans.scope.clone(), ..Default::default() }],
                        schema_url: resource_span.schema_url.clone(),
                    });
                }
                trace.last_mut().expect("pushed above").scope_spans[0].spans.push(span.clone());
            }
        }
    }
    traces
}

/// Every span of `resource_spans`, in the order they came.
pub fn spans_of(resource_spans: &[ResourceSpans]) -> Vec<Span> {
    let mut spans = Vec::new();
    for resource_span in resource_spans {
        let resource =
            resource_span.resource.as_ref().map(|resource| resource.attributes.as_slice()).unwrap_or_default();
        let service = attribute(resource, "service.name").unwrap_or_else(|| "unknown_service".into());
        let resource: BTreeMap<String, String> =
            resource.iter().map(|kv| (kv.key.clone(), text(kv.value.as_ref()))).collect();
        for span in resource_span.scope_spans.iter().flat_map(|scope| &scope.spans) {
            let status = span.status.clone().unwrap_or_default();
            spans.push(Span {
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                service: service.clone(),
                name: span.name.clone(),
                kind: kind_name(span.kind),
                start_unix_nano: span.start_time_unix_nano,
                end_unix_nano: span.end_time_unix_nano,
                attributes: span.attributes.iter().map(|kv| (kv.key.clone(), text(kv.value.as_ref()))).collect(),
                resource: resource.clone(),
                is_error: status.code == StatusCode::Error as i32,
                status_message: status.message,
                events: span
                    .events
                    .iter()
                    .map(|event| Event {
                        name: event.name.clone(),
                        time_unix_nano: event.time_unix_nano,
                        attributes: event
                            .attributes
                            .iter()
                            .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                            .collect(),
                    })
                    .collect(),
                links: span
                    .links
                    .iter()
                    .map(|link| Link { trace_id: hex(&link.trace_id), span_id: hex(&link.span_id) })
                    .collect(),
            });
        }
    }
    spans
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).map(|kv| text(kv.value.as_ref()))
}

/// An attribute value as text: strings as they are, everything else as written in JSON.
pub fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(Value::StringValue(text)) => text.clone(),
        Some(Value::BoolValue(flag)) => flag.to_string(),
        Some(Value::IntValue(number)) => number.to_string(),
        Some(Value::DoubleValue(number)) => number.to_string(),
        Some(Value::ArrayValue(array)) => {
            let items: Vec<String> = array.values.iter().map(|item| text(Some(item))).collect();
            format!("[{}]", items.join(", "))
        }
        Some(Value::KvlistValue(list)) => {
            let items: Vec<String> =
                list.values.iter().map(|kv| format!("{}={}", kv.key, text(kv.value.as_ref()))).collect();
            format!("{{{}}}", items.join(", "))
        }
        Some(Value::BytesValue(bytes)) => hex(bytes),
        // A reference into a dictionary of strings (profiles only): nothing to show here.
        Some(Value::StringValueStrindex(index)) => format!("#{index}"),
        None => String::new(),
    }
}

/// The part of `span`'s duration that none of its children covers.
pub fn self_time(span: &Span, spans: &[Span]) -> u64 {
    let mut children: Vec<(u64, u64)> = spans
        .iter()
        .filter(|child| child.parent_span_id == span.span_id && child.span_id != span.span_id)
        .map(|child| (child.start_unix_nano.max(span.start_unix_nano), child.end_unix_nano.min(span.end_unix_nano)))
        .filter(|(start, end)| start < end)
        .collect();
    children.sort_unstable();
    let mut covered = 0;
    let mut reached = span.start_unix_nano;
    for (start, end) in children {
        let start = start.max(reached);
        if end > start {
            covered += end - start;
            reached = end;
        }
    }
    span.duration_nanos().saturating_sub(covered)
}

/// The spans of one trace in reading order: each root (a span whose parent is not in the
/// trace), then its children depth-first, siblings by start time. Returns (depth, span).
pub fn tree(spans: &[Span]) -> Vec<(usize, &Span)> {
    let ids: HashSet<&str> = spans.iter().map(|span| span.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<&Span>> = HashMap::new();
    let mut roots = Vec::new();
    for span in spans {
        if span.parent_span_id.is_empty() || !ids.contains(span.parent_span_id.as_str()) {
            roots.push(span);
        } else {
            children.entry(span.parent_span_id.as_str()).or_default().push(span);
        }
    }
    let by_start = |list: &mut Vec<&Span>| list.sort_by_key(|span| (span.start_unix_nano, span.span_id.clone()));
    by_start(&mut roots);
    children.values_mut().for_each(by_start);

    let mut ordered = Vec::with_capacity(spans.len());
    let mut stack: Vec<(usize, &Span)> = roots.into_iter().rev().map(|span| (0, span)).collect();
    let mut seen = HashSet::new();
    while let Some((depth, span)) = stack.pop() {
        if !seen.insert(span.span_id.as_str()) {
            continue; // a duplicate span id: shown once
        }
        ordered.push((depth, span));
        if let Some(kids) = children.get(span.span_id.as_str()) {
            stack.extend(kids.iter().rev().map(|kid| (depth + 1, *kid)));
        }
    }
    ordered
}
