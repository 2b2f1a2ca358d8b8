//! `cargo xtask search`: find traces in Jaeger's store (or local mode's) by service, operation,
//! duration, errors and attributes, newest first, one line each; then look at one with
//! `cargo xtask trace ID --details`.
//!
//! The conditions go to Jaeger as its API v3 parameters, and are applied here again to what
//! comes back: Jaeger releases before 2.19 ignore `query.attributes` (the real Jaeger the tests
//! run is 2.13), and a search must not answer "these failed" with traces that did not.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime},
};

use anyhow::Context;
use tracestore::model::Span;

use crate::{
    jaeger::{Jaeger, Search},
    waterfall::duration,
};

#[derive(clap::Args)]
pub struct Options {
    /// The service whose spans are searched (a trace matches when one of its spans matches).
    #[arg(long, default_value = "apiserver")]
    service: String,

    /// Only spans of this name (`GET /v1/todo/{id}`, `db-get`, …).
    #[arg(long)]
    operation: Option<String>,

    /// Only spans whose status is Error.
    #[arg(long)]
    errors: bool,

    /// Only spans that took at least this long (`100ms`, `1s`).
    #[arg(long, value_parser = humantime::parse_duration)]
    min_duration: Option<Duration>,

    /// Only spans that took at most this long.
    #[arg(long, value_parser = humantime::parse_duration)]
    max_duration: Option<Duration>,

    /// Only spans with this attribute (on the span, its resource or one of its events), as
    /// KEY=VALUE; repeatable.
    #[arg(long = "attribute", value_name = "KEY=VALUE")]
    attributes: Vec<String>,

    /// How far back to look.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    since: Duration,

    /// At most this many traces.
    #[arg(long, default_value_t = 20)]
    limit: usize,

    /// Jaeger's query address (API v3).
    #[arg(long, default_value = "http://127.0.0.1:16686")]
    jaeger: String,
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let search = search_of(options)?;
    let jaeger = Jaeger::new(&options.jaeger)?;
    let traces: Vec<Vec<Span>> =
        jaeger.search(&search)?.into_iter().filter(|trace| trace.iter().any(|span| matches(&search, span))).collect();
    if traces.is_empty() {
        println!("No trace matches (in the last {}).", humantime::format_duration(options.since));
        return Ok(());
    }
    println!("{}", table(&traces));
    println!("{} trace(s). One in full: cargo xtask trace ID --details", traces.len());
    Ok(())
}

fn search_of(options: &Options) -> anyhow::Result<Search> {
    let mut attributes = BTreeMap::new();
    for pair in &options.attributes {
        let (key, value) =
            pair.split_once('=').with_context(|| format!("--attribute wants KEY=VALUE, got {pair:?}"))?;
        attributes.insert(key.to_owned(), value.to_owned());
    }
    if options.errors {
        attributes.insert("error".to_owned(), "true".to_owned());
    }
    anyhow::ensure!(options.limit > 0, "--limit must be at least 1");
    Ok(Search {
        service: options.service.clone(),
        operation: options.operation.clone(),
        since: SystemTime::now() - options.since,
        duration_min: options.min_duration,
        duration_max: options.max_duration,
        attributes,
        limit: options.limit,
    })
}

/// Whether `span` meets every condition of `search` (as Jaeger 2.19 matches them).
fn matches(search: &Search, span: &Span) -> bool {
    let took = Duration::from_nanos(span.duration_nanos());
    span.service == search.service
        && search.operation.as_ref().is_none_or(|name| *name == span.name)
        && search.duration_min.is_none_or(|min| took >= min)
        && search.duration_max.is_none_or(|max| took <= max)
        && search.attributes.iter().all(|(key, value)| match key.as_str() {
            "error" => span.is_error == (value == "true"),
            "span.status" => span.is_error == value.eq_ignore_ascii_case("error"),
            "span.kind" => span.kind.eq_ignore_ascii_case(value),
            // The spans here do not say their scope: left to the store.
            "scope.name" | "scope.version" => true,
            _ => match key.strip_prefix("resource.") {
                Some(key) => span.resource.get(key) == Some(value),
                None => {
                    span.attributes.get(key) == Some(value)
                        || span.resource.get(key) == Some(value)
                        || span.events.iter().any(|event| event.attributes.get(key) == Some(value))
                }
            },
        })
}

/// One line per trace: id, start, duration, spans, errors, the root span.
fn table(traces: &[Vec<Span>]) -> String {
    let mut lines = vec![format!(
        "{:<32}  {:<12}  {:>10}  {:>5}  {:>6}  root span",
        "trace", "started", "duration", "spans", "errors"
    )];
    for trace in traces {
        let start = trace.iter().map(|span| span.start_unix_nano).min().unwrap_or_default();
        let end = trace.iter().map(|span| span.end_unix_nano).max().unwrap_or_default();
        let root = trace
            .iter()
            .find(|span| span.parent_span_id.is_empty())
            .or_else(|| trace.iter().min_by_key(|span| span.start_unix_nano))
            .map_or(String::new(), |span| format!("{}  {}", span.service, span.name));
        let started = humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_nanos(start));
        let errors = trace.iter().filter(|span| span.is_error).count();
        lines.push(format!(
            "{:<32}  {:<12}  {:>10}  {:>5}  {:>6}  {root}",
            trace[0].trace_id,
            // The time of day, UTC: the date is today's.
            started.to_string().get(11..23).unwrap_or_default(),
            duration(end.saturating_sub(start)),
            trace.len(),
            errors
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(attributes: &[(&str, &str)]) -> Search {
        Search {
            service: "apiserver".into(),
            operation: None,
            since: SystemTime::UNIX_EPOCH,
            duration_min: Some(Duration::from_millis(100)),
            duration_max: None,
            attributes: attributes.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect(),
            limit: 20,
        }
    }

    fn span(is_error: bool, millis: u64) -> Span {
        Span {
            trace_id: "t".into(),
            span_id: "s".into(),
            parent_span_id: String::new(),
            service: "apiserver".into(),
            name: "GET /v1/todo".into(),
            kind: "server",
            start_unix_nano: 0,
            end_unix_nano: millis * 1_000_000,
            attributes: [("fault.injected".to_owned(), "error".to_owned())].into(),
            resource: [("service.name".to_owned(), "apiserver".to_owned())].into(),
            is_error,
            status_message: String::new(),
            events: vec![tracestore::model::Event {
                name: "injected failure".into(),
                time_unix_nano: 0,
                attributes: [("level".to_owned(), "WARN".to_owned())].into(),
            }],
        }
    }

    /// What comes back from a Jaeger that ignores `query.attributes` is filtered here as the
    /// store filters it.
    #[test]
    fn the_answer_is_filtered_again() {
        assert!(matches(&search(&[("error", "true")]), &span(true, 150)));
        assert!(!matches(&search(&[("error", "true")]), &span(false, 150)));
        assert!(!matches(&search(&[]), &span(true, 50)), "shorter than --min-duration");
        assert!(matches(&search(&[("span.status", "ERROR"), ("span.kind", "server")]), &span(true, 150)));
        assert!(matches(
            &search(&[("fault.injected", "error"), ("resource.service.name", "apiserver")]),
            &span(true, 150)
        ));
        assert!(matches(&search(&[("level", "WARN")]), &span(true, 150)), "an event's attribute");
        assert!(!matches(&search(&[("fault.injected", "delay")]), &span(true, 150)));
        assert!(matches(&search(&[("scope.name", "apiserver")]), &span(true, 150)), "left to the store");
    }
}
