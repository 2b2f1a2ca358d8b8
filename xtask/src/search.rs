//! `cargo xtask search`: find traces in Jaeger's store (or local mode's) by service, operation,
//! duration, errors and attributes, newest first, one line each; then look at one with
//! `cargo xtask trace ID --details`.
//!
//! The conditions go to Jaeger as its API v3 parameters, and are applied again to what comes
//! back, by the trace store's own filter ([`crate::jaeger::matching`]).

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
    let traces = jaeger.search(&search)?;
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
    use testkit::filter_table::{CASES, SERVICE, filter, trace};

    use super::*;

    /// What comes back from a Jaeger that ignores `query.attributes` is filtered here as the
    /// store filters it: the one table of `testkit::filter_table`.
    #[test]
    fn the_answer_is_filtered_as_the_store_filters() {
        let answer = trace().resource_spans;
        for case in CASES {
            let search = Search { attributes: filter(case), ..Search::of(SERVICE, None, SystemTime::UNIX_EPOCH) };
            let found = crate::jaeger::matching(&answer, &search.query());
            assert_eq!(!found.is_empty(), case.matches, "{:?}: {}", case.filter, case.why);
            if case.matches {
                assert_eq!(found[0].len(), 3, "the whole trace, todomanager's span too");
            }
        }
        let slow = Search {
            duration_min: Some(Duration::from_millis(200)),
            ..Search::of(SERVICE, None, SystemTime::UNIX_EPOCH)
        };
        assert!(crate::jaeger::matching(&answer, &slow.query()).is_empty(), "shorter than --min-duration");
    }
}
