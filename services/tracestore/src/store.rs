//! The traces, in memory: the newest `capacity` traces are kept, the oldest evicted first.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    trace::v1::{ResourceSpans, ScopeSpans, status::StatusCode},
};

use crate::{limits, model::kind_name};

pub type TraceId = [u8; 16];

/// What a search asks for (Jaeger's `query.*` parameters).
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub service_name: String,
    pub operation_name: Option<String>,
    pub start_time_min_nanos: u64,
    pub start_time_max_nanos: u64,
    pub duration_min: Option<Duration>,
    pub duration_max: Option<Duration>,
    /// `query.attributes` (filter.rs).
    pub attributes: crate::filter::Attributes,
    pub num_traces: usize,
}

/// What the store keeps at most. Jaeger's own memory store (`internal/storage/v2/memory`,
/// Jaeger 2.13) bounds only the number of traces (`max_traces`), so one huge trace can take all
/// the memory there; this store also bounds bytes, spans per trace and attribute values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Traces kept; the oldest go first (as Jaeger's `max_traces`).
    pub max_traces: usize,
    /// The memory the stored spans may take, estimated from their size; the oldest traces go
    /// first when it is reached.
    pub max_bytes: usize,
    /// Spans one trace may have; further spans of it are rejected (and counted as such).
    pub max_spans_per_trace: usize,
    /// Longest attribute value kept, in bytes; longer string values are cut (at a character
    /// boundary), as an SDK's `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` would have.
    pub max_attribute_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_traces: 10_000,
            max_bytes: 256 * 1024 * 1024,
            max_spans_per_trace: 10_000,
            max_attribute_value_bytes: 16 * 1024,
        }
    }
}

impl Limits {
    /// One trace may take at most this share of the budget, so one trace id (which any REST
    /// client can choose with `traceparent`) cannot push out every other trace.
    fn max_trace_bytes(&self) -> usize {
        (self.max_bytes / 10).max(1)
    }
}

/// A search answers at most the traces that fit in this (estimated) size, the newest first;
/// a client that wants more narrows its search.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Mutex<Traces>>,
    limits: Limits,
}

#[derive(Debug, Default)]
struct Traces {
    by_id: HashMap<TraceId, Trace>,
    /// Trace ids, oldest first.
    arrival: VecDeque<TraceId>,
    /// The estimated size of every trace kept.
    bytes: usize,
}

#[derive(Debug, Default)]
struct Trace {
    parts: Vec<ResourceSpans>,
    spans: usize,
    bytes: usize,
    summary: Summary,
}

/// What the front page shows of a trace, kept up to date as its spans arrive so the page costs
/// the same however big the traces are.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Service and name of the root span (a span without parent), or of the first span.
    pub root: Option<(String, String)>,
    pub services: BTreeSet<String>,
    pub spans: usize,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub has_error: bool,
    root_found: bool,
}

/// What became of an export's spans.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Spans dropped, each for one of the reasons below.
    pub rejected: usize,
    /// Why, in words, when some were (the OTLP partial-success message).
    pub reasons: BTreeSet<&'static str>,
    /// Attribute values cut to the limit.
    pub truncated_values: usize,
}

impl Store {
    pub fn new(limits: Limits) -> Self {
        let limits = Limits {
            max_traces: limits.max_traces.max(1),
            max_spans_per_trace: limits.max_spans_per_trace.max(1),
            ..limits
        };
        Self { inner: Arc::default(), limits }
    }

    /// A store that keeps `max_traces` traces, with the other limits at their defaults.
    pub fn with_max_traces(max_traces: usize) -> Self {
        Self::new(Limits { max_traces, ..Limits::default() })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn traces(&self) -> MutexGuard<'_, Traces> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Files the spans of an OTLP export under their traces, within the limits. Spans with an
    /// invalid trace id, and spans beyond a trace's limits, are rejected and counted.
    pub fn ingest(&self, request: ExportTraceServiceRequest) -> Ingested {
        let mut outcome = Ingested::default();
        let mut traces = self.traces();
        for resource_spans in request.resource_spans {
            for scope_spans in resource_spans.scope_spans {
                let mut per_trace: HashMap<TraceId, Vec<_>> = HashMap::new();
                for mut span in scope_spans.spans {
                    match TraceId::try_from(span.trace_id.as_slice()) {
                        Ok(id) if id != [0; 16] => {
                            outcome.truncated_values +=
                                limits::cut_values(&mut span, self.limits.max_attribute_value_bytes);
                            per_trace.entry(id).or_default().push(span)
                        }
                        _ => outcome.reject(1, "spans without a valid trace id were dropped"),
                    }
                }
                for (id, spans) in per_trace {
                    let mut part = ResourceSpans {
                        resource: resource_spans.resource.clone(),
                        scope_spans: vec![ScopeSpans {
                            scope: scope_spans.scope.clone(),
                            spans,
                            schema_url: scope_spans.schema_url.clone(),
                        }],
                        schema_url: resource_spans.schema_url.clone(),
                    };
                    let trace = traces.by_id.entry(id).or_default();
                    let is_new = trace.spans == 0;
                    let room = self.limits.max_spans_per_trace - trace.spans;
                    let spans = &mut part.scope_spans[0].spans;
                    if spans.len() > room {
                        outcome.reject(spans.len() - room, "spans beyond the limit of spans per trace were dropped");
                        spans.truncate(room);
                    }
                    let mut bytes = limits::estimated_bytes(&part);
                    while bytes + trace.bytes > self.limits.max_trace_bytes() && !part.scope_spans[0].spans.is_empty() {
                        let span = part.scope_spans[0].spans.pop().expect("not empty");
                        bytes -= limits::span_bytes(&span).min(bytes);
                        outcome.reject(1, "spans beyond the trace's share of the memory budget were dropped");
                    }
                    let added = part.scope_spans[0].spans.len();
                    if added == 0 {
                        if is_new {
                            traces.by_id.remove(&id);
                        }
                        continue;
                    }
                    trace.summary.add(&part);
                    trace.spans += added;
                    trace.bytes += bytes;
                    trace.parts.push(part);
                    traces.bytes += bytes;
                    if is_new {
                        traces.arrival.push_back(id);
                    }
                }
            }
        }
        while traces.arrival.len() > self.limits.max_traces || traces.bytes > self.limits.max_bytes {
            let Some(oldest) = traces.arrival.pop_front() else { break };
            if let Some(trace) = traces.by_id.remove(&oldest) {
                traces.bytes -= trace.bytes;
            }
        }
        outcome
    }

    /// Every trace kept, the oldest first, as its parts arrived.
    pub fn all(&self) -> Vec<(TraceId, Vec<ResourceSpans>)> {
        let traces = self.traces();
        traces.arrival.iter().map(|id| (*id, traces.by_id[id].parts.clone())).collect()
    }

    /// The estimated memory the stored traces take, in bytes.
    pub fn bytes(&self) -> usize {
        self.traces().bytes
    }

    pub fn get(&self, id: &TraceId) -> Option<Vec<ResourceSpans>> {
        self.traces().by_id.get(id).map(|trace| trace.parts.clone())
    }

    /// The newest traces first, at most `limit`, as the front page shows them.
    pub fn recent(&self, limit: usize) -> Vec<(TraceId, Summary)> {
        let traces = self.traces();
        traces.arrival.iter().rev().take(limit).map(|id| (*id, traces.by_id[id].summary.clone())).collect()
    }

    pub fn len(&self) -> usize {
        self.traces().arrival.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many spans each service reported, over the traces kept.
    pub fn span_counts(&self) -> std::collections::BTreeMap<String, u64> {
        let traces = self.traces();
        let mut counts = std::collections::BTreeMap::new();
        for resource_spans in traces.by_id.values().flat_map(|trace| &trace.parts) {
            let spans: usize = resource_spans.scope_spans.iter().map(|scope| scope.spans.len()).sum();
            *counts.entry(service_name(resource_spans)).or_insert(0) += spans as u64;
        }
        counts
    }

    /// Service names, sorted.
    pub fn services(&self) -> Vec<String> {
        let traces = self.traces();
        let names: BTreeSet<String> = traces.by_id.values().flat_map(|trace| &trace.parts).map(service_name).collect();
        names.into_iter().collect()
    }

    /// The (span name, span kind) pairs of `service`, sorted.
    pub fn operations(&self, service: &str, kind: Option<&str>) -> Vec<(String, &'static str)> {
        let traces = self.traces();
        let mut operations = BTreeSet::new();
        for resource_spans in
            traces.by_id.values().flat_map(|trace| &trace.parts).filter(|rs| service_name(rs) == service)
        {
            for span in resource_spans.scope_spans.iter().flat_map(|scope| &scope.spans) {
                let span_kind = match kind_name(span.kind) {
                    "unspecified" => "internal",
                    named => named,
                };
                if kind.is_none_or(|wanted| wanted == span_kind) {
                    operations.insert((span.name.clone(), span_kind));
                }
            }
        }
        operations.into_iter().collect()
    }

    /// Traces with at least one span that matches `query`, newest first.
    pub fn find(&self, query: &Query) -> Vec<Vec<ResourceSpans>> {
        let traces = self.traces();
        let mut found = Vec::new();
        let mut bytes = 0;
        for (_, trace) in traces.matching(query).take(query.num_traces) {
            // The answer stays bounded: the newest matches that fit, one trace at least.
            if !found.is_empty() && bytes + trace.bytes > MAX_ANSWER_BYTES {
                break;
            }
            bytes += trace.bytes;
            found.push(trace.parts.clone());
        }
        found
    }

    /// The ids and summaries of the traces that match `query`, newest first: what the page
    /// lists of a search, without copying a span.
    pub fn find_summaries(&self, query: &Query) -> Vec<(TraceId, Summary)> {
        let traces = self.traces();
        traces.matching(query).take(query.num_traces).map(|(id, trace)| (*id, trace.summary.clone())).collect()
    }
}

impl Traces {
    /// The traces with at least one span that matches `query`, newest first.
    fn matching<'a>(&'a self, query: &'a Query) -> impl Iterator<Item = (&'a TraceId, &'a Trace)> {
        self.arrival.iter().rev().map(|id| (id, &self.by_id[id])).filter(|(_, trace)| query.matches(&trace.parts))
    }
}

impl Query {
    /// Whether one span of the service meets every condition (as in Jaeger's memory store):
    /// what the store answers, and what `cargo xtask search` keeps of another store's answer.
    pub fn matches(&self, parts: &[ResourceSpans]) -> bool {
        parts.iter().filter(|rs| service_name(rs) == self.service_name).any(|rs| {
            let resource = rs.resource.as_ref().map(|resource| resource.attributes.as_slice()).unwrap_or_default();
            rs.scope_spans.iter().any(|scope_spans| {
                scope_spans.spans.iter().any(|span| {
                    let duration =
                        Duration::from_nanos(span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano));
                    self.operation_name.as_ref().is_none_or(|name| *name == span.name)
                        && (self.start_time_min_nanos..=self.start_time_max_nanos).contains(&span.start_time_unix_nano)
                        && self.duration_min.is_none_or(|min| duration >= min)
                        && self.duration_max.is_none_or(|max| duration <= max)
                        && self.attributes.matches(resource, scope_spans.scope.as_ref(), span)
                })
            })
        })
    }
}

impl Ingested {
    fn reject(&mut self, spans: usize, why: &'static str) {
        self.rejected += spans;
        self.reasons.insert(why);
    }
}

impl Summary {
    fn add(&mut self, part: &ResourceSpans) {
        let service = service_name(part);
        for span in part.scope_spans.iter().flat_map(|scope| &scope.spans) {
            // The root is the first span without a parent; until one came, the earliest span.
            let parentless = span.parent_span_id.is_empty();
            let earlier = self.spans == 0 || span.start_time_unix_nano < self.start_unix_nano;
            if !self.root_found && (parentless || earlier) {
                self.root = Some((service.clone(), span.name.clone()));
                self.root_found = parentless;
            }
            if earlier {
                self.start_unix_nano = span.start_time_unix_nano;
            }
            self.end_unix_nano = self.end_unix_nano.max(span.end_time_unix_nano);
            self.has_error |= span.status.as_ref().is_some_and(|status| status.code == StatusCode::Error as i32);
            self.spans += 1;
        }
        self.services.insert(service);
    }
}

fn service_name(resource_spans: &ResourceSpans) -> String {
    let attributes =
        resource_spans.resource.as_ref().map(|resource| resource.attributes.as_slice()).unwrap_or_default();
    attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .map(|kv| crate::model::text(kv.value.as_ref()))
        .unwrap_or_else(|| "unknown_service".into())
}
