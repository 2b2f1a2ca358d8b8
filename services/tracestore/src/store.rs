//! The traces, in memory: the newest `capacity` traces are kept, the oldest evicted first.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    trace::v1::{ResourceSpans, ScopeSpans},
};

use crate::model::kind_name;

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
    pub num_traces: usize,
}

#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Mutex<Traces>>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Traces {
    by_id: HashMap<TraceId, Vec<ResourceSpans>>,
    /// Trace ids, oldest first.
    arrival: VecDeque<TraceId>,
}

impl Store {
    pub fn new(capacity: usize) -> Self {
        Self { inner: Arc::default(), capacity: capacity.max(1) }
    }

    fn traces(&self) -> MutexGuard<'_, Traces> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Files the spans of an OTLP export under their traces. Spans with an invalid trace id
    /// are dropped; returns how many were.
    pub fn ingest(&self, request: ExportTraceServiceRequest) -> usize {
        let mut rejected = 0;
        let mut traces = self.traces();
        for resource_spans in request.resource_spans {
            for scope_spans in resource_spans.scope_spans {
                let mut per_trace: HashMap<TraceId, Vec<_>> = HashMap::new();
                for span in scope_spans.spans {
                    match TraceId::try_from(span.trace_id.as_slice()) {
                        Ok(id) if id != [0; 16] => per_trace.entry(id).or_default().push(span),
                        _ => rejected += 1,
                    }
                }
                for (id, spans) in per_trace {
                    let part = ResourceSpans {
                        resource: resource_spans.resource.clone(),
                        scope_spans: vec![ScopeSpans {
                            scope: scope_spans.scope.clone(),
                            spans,
                            schema_url: scope_spans.schema_url.clone(),
                        }],
                        schema_url: resource_spans.schema_url.clone(),
                    };
                    if !traces.by_id.contains_key(&id) {
                        traces.arrival.push_back(id);
                    }
                    traces.by_id.entry(id).or_default().push(part);
                }
            }
        }
        while traces.arrival.len() > self.capacity {
            if let Some(oldest) = traces.arrival.pop_front() {
                traces.by_id.remove(&oldest);
            }
        }
        rejected
    }

    pub fn get(&self, id: &TraceId) -> Option<Vec<ResourceSpans>> {
        self.traces().by_id.get(id).cloned()
    }

    /// The newest traces first, at most `limit`.
    pub fn recent(&self, limit: usize) -> Vec<(TraceId, Vec<ResourceSpans>)> {
        let traces = self.traces();
        traces.arrival.iter().rev().take(limit).map(|id| (*id, traces.by_id[id].clone())).collect()
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
        for resource_spans in traces.by_id.values().flatten() {
            let spans: usize = resource_spans.scope_spans.iter().map(|scope| scope.spans.len()).sum();
            *counts.entry(service_name(resource_spans)).or_insert(0) += spans as u64;
        }
        counts
    }

    /// Service names, sorted.
    pub fn services(&self) -> Vec<String> {
        let traces = self.traces();
        let names: BTreeSet<String> = traces.by_id.values().flatten().map(service_name).collect();
        names.into_iter().collect()
    }

    /// The (span name, span kind) pairs of `service`, sorted.
    pub fn operations(&self, service: &str, kind: Option<&str>) -> Vec<(String, &'static str)> {
        let traces = self.traces();
        let mut operations = BTreeSet::new();
        for resource_spans in traces.by_id.values().flatten().filter(|rs| service_name(rs) == service) {
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
        let matches = |parts: &Vec<ResourceSpans>| {
            parts.iter().filter(|rs| service_name(rs) == query.service_name).any(|rs| {
                rs.scope_spans.iter().flat_map(|scope| &scope.spans).any(|span| {
                    let duration =
                        Duration::from_nanos(span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano));
                    query.operation_name.as_ref().is_none_or(|name| *name == span.name)
                        && (query.start_time_min_nanos..=query.start_time_max_nanos)
                            .contains(&span.start_time_unix_nano)
                        && query.duration_min.is_none_or(|min| duration >= min)
                        && query.duration_max.is_none_or(|max| duration <= max)
                })
            })
        };
        traces
            .arrival
            .iter()
            .rev()
            .map(|id| &traces.by_id[id])
            .filter(|parts| matches(parts))
            .take(query.num_traces)
            .cloned()
            .collect()
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
