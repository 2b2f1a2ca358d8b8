//! A client for Jaeger's HTTP query API v3: the same calls work against a real Jaeger in the
//! cluster and against local mode's trace store.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, TracesData};
use reqwest::StatusCode;
use tracestore::{
    filter::Attributes,
    model::{self, Span},
    store::Query,
};

/// A trace search: Jaeger's `query.*` parameters.
pub struct Search {
    pub service: String,
    pub operation: Option<String>,
    pub since: SystemTime,
    pub duration_min: Option<Duration>,
    pub duration_max: Option<Duration>,
    /// `query.attributes`: `error` = `true` for errors only, or any attribute.
    pub attributes: std::collections::BTreeMap<String, String>,
    pub limit: usize,
}

impl Search {
    /// The same search as the trace store's query: its span filter is the one both apply.
    pub fn query(&self) -> Query {
        let nanos =
            |time: SystemTime| time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_nanos() as u64);
        Query {
            service_name: self.service.clone(),
            operation_name: self.operation.clone(),
            start_time_min_nanos: nanos(self.since),
            start_time_max_nanos: u64::MAX,
            duration_min: self.duration_min,
            duration_max: self.duration_max,
            attributes: Attributes(self.attributes.clone()),
            num_traces: self.limit,
        }
    }

    /// The traces of `service` (with a span named `operation`, if given) that started after
    /// `since`, at most 100: no other condition.
    pub fn of(service: &str, operation: Option<&str>, since: SystemTime) -> Self {
        Self {
            service: service.to_owned(),
            operation: operation.map(str::to_owned),
            since,
            duration_min: None,
            duration_max: None,
            attributes: Default::default(),
            limit: 100,
        }
    }
}

pub struct Jaeger {
    base: String,
    http: reqwest::blocking::Client,
}

#[derive(serde::Deserialize)]
struct TracesAnswer {
    result: TracesData,
}

#[derive(serde::Deserialize)]
struct ServicesAnswer {
    services: Vec<String>,
}

impl Jaeger {
    /// `base` is Jaeger's query address, e.g. `http://127.0.0.1:16686`.
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The spans of a trace, or `None` when Jaeger has none (yet).
    pub fn trace(&self, trace_id: &str) -> anyhow::Result<Option<Vec<Span>>> {
        self.traces(&format!("{}/api/v3/traces/{trace_id}", self.base))
    }

    /// The traces of `service` (with a span named `operation`, if given) that started after `since`.
    pub fn find(&self, service: &str, operation: Option<&str>, since: SystemTime) -> anyhow::Result<Vec<Span>> {
        Ok(self.search(&Search::of(service, operation, since))?.into_iter().flatten().collect())
    }

    /// The traces a search finds, newest first: each as its spans.
    pub fn search(&self, search: &Search) -> anyhow::Result<Vec<Vec<Span>>> {
        let mut url = reqwest::Url::parse(&format!("{}/api/v3/traces", self.base))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("query.service_name", &search.service)
                .append_pair("query.start_time_min", &humantime::format_rfc3339_nanos(search.since).to_string())
                .append_pair(
                    "query.start_time_max",
                    &humantime::format_rfc3339_nanos(SystemTime::now() + Duration::from_secs(60)).to_string(),
                )
                .append_pair("query.num_traces", &search.limit.to_string());
            if let Some(operation) = &search.operation {
                query.append_pair("query.operation_name", operation);
            }
            // Go durations: a count of nanoseconds is one.
            if let Some(min) = search.duration_min {
                query.append_pair("query.duration_min", &format!("{}ns", min.as_nanos()));
            }
            if let Some(max) = search.duration_max {
                query.append_pair("query.duration_max", &format!("{}ns", max.as_nanos()));
            }
            if !search.attributes.is_empty() {
                query.append_pair("query.attributes", &serde_json::to_string(&search.attributes)?);
            }
        }
        let answer = self.answer(url.as_str())?.unwrap_or_default();
        Ok(matching(&answer, &search.query()))
    }

    pub fn services(&self) -> anyhow::Result<Vec<String>> {
        let url = format!("{}/api/v3/services", self.base);
        let response = self.http.get(&url).send().with_context(|| self.unreachable())?;
        let answer: ServicesAnswer = response.error_for_status()?.json().with_context(|| format!("reading {url}"))?;
        Ok(answer.services)
    }

    fn traces(&self, url: &str) -> anyhow::Result<Option<Vec<Span>>> {
        Ok(self.answer(url)?.map(|resource_spans| model::spans_of(&resource_spans)))
    }

    /// The spans of an answer, as OTLP sent them; `None` for a 404.
    fn answer(&self, url: &str) -> anyhow::Result<Option<Vec<ResourceSpans>>> {
        let response = self.http.get(url).send().with_context(|| self.unreachable())?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let status = response.status();
        let body = response.text()?;
        anyhow::ensure!(status.is_success(), "{url} answered {status}: {body}");
        let answer: TracesAnswer =
            serde_json::from_str(&body).with_context(|| format!("reading the answer of {url}"))?;
        Ok(Some(answer.result.resource_spans))
    }

    fn unreachable(&self) -> String {
        format!(
            "cannot reach Jaeger's query API at {}: is the trace store running (cargo xtask up --local), \
             or the port-forward to Jaeger (cargo xtask up)? Point elsewhere with --jaeger URL",
            self.base
        )
    }
}

/// The traces of an answer in which a span meets `query`, each as its spans, in the order
/// they came. The store applies the same filter (`tracestore::store::Query::matches`); it is
/// applied here again because Jaeger releases before 2.19 ignore `query.attributes` (the real
/// Jaeger the tests run is 2.13), and a search must not answer "these failed" with traces that
/// did not.
pub fn matching(answer: &[ResourceSpans], query: &Query) -> Vec<Vec<Span>> {
    model::by_trace(answer).iter().filter(|trace| query.matches(trace)).map(|trace| model::spans_of(trace)).collect()
}
