//! `cargo xtask trace <trace-id> | --last`: one trace as a waterfall in the terminal; with
//! `--details` every span's attributes, status, events and self time (details.rs); with
//! `--compare OTHER` two traces side by side (compare.rs).

mod compare;
mod details;

use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

use anyhow::Context;
use tracestore::model::Span;

use crate::{jaeger::Jaeger, waterfall};

#[derive(clap::Args)]
pub struct Options {
    /// The trace to show (32 hex digits, as in the X-Trace-Id header).
    #[arg(required_unless_present = "last")]
    trace_id: Option<String>,

    /// Show the most recent request's trace instead (the newest trace with a server span: the
    /// history writer's own traces, which no request starts, are left aside; find those with
    /// `cargo xtask search --service todomanager --operation history-write`).
    #[arg(long, conflicts_with = "trace_id")]
    last: bool,

    /// Show every span's attributes, status, events and self time under the waterfall.
    #[arg(long)]
    details: bool,

    /// Show this other trace next to it, span by span, with the difference in duration.
    #[arg(long, value_name = "OTHER_TRACE_ID")]
    compare: Option<String>,

    /// Jaeger's query address (API v3).
    #[arg(long, default_value = "http://127.0.0.1:16686")]
    jaeger: String,
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let jaeger = Jaeger::new(&options.jaeger)?;
    let trace_id = match &options.trace_id {
        Some(id) => id.clone(),
        None => last_trace_id(&jaeger)?,
    };
    let spans = fetch(&jaeger, &trace_id)?;
    println!("trace {trace_id}  ({} spans)  {}/trace/{trace_id}\n", spans.len(), jaeger.base());
    print!("{}", waterfall::render(&spans, waterfall::colours_wanted()));
    if options.details {
        println!();
        print!("{}", details::render(&spans));
    }
    if let Some(other_id) = &options.compare {
        let other = fetch(&jaeger, other_id)?;
        println!("\nA = {trace_id}\nB = {other_id}\n");
        print!("{}", compare::render(&spans, &other));
    }
    Ok(())
}

fn fetch(jaeger: &Jaeger, trace_id: &str) -> anyhow::Result<Vec<Span>> {
    jaeger.trace(trace_id)?.with_context(|| {
        format!(
            "Jaeger at {} has no trace {trace_id} (traces are kept in memory: a restart forgets them)",
            jaeger.base()
        )
    })
}

/// The trace of the most recent request, over every service of the last hour.
fn last_trace_id(jaeger: &Jaeger) -> anyhow::Result<String> {
    let since = SystemTime::now() - Duration::from_secs(3600);
    let mut spans = Vec::new();
    for service in jaeger.services()? {
        spans.extend(jaeger.find(&service, None, since)?);
    }
    newest_request(&spans)
        .context("no request's trace in the last hour: send a request first (see the curl that `up` printed)")
}

/// The trace whose first span started last, among the traces a request started: those with a
/// server span. A background job's trace (todomanager's history writer) has none, and showing it
/// to a learner who has just sent a request would be a puzzle.
fn newest_request(spans: &[Span]) -> Option<String> {
    let mut traces: HashMap<&str, (u64, bool)> = HashMap::new();
    for span in spans {
        let (start, served) = traces.entry(&span.trace_id).or_insert((u64::MAX, false));
        *start = (*start).min(span.start_unix_nano);
        *served |= span.kind == "server";
    }
    traces
        .into_iter()
        .filter(|(_, (_, served))| *served)
        .max_by_key(|(_, (start, _))| *start)
        .map(|(id, _)| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace_id: &str, kind: &'static str, start_unix_nano: u64) -> Span {
        Span {
            trace_id: trace_id.into(),
            span_id: format!("{trace_id}{start_unix_nano}"),
            kind,
            start_unix_nano,
            end_unix_nano: start_unix_nano + 1,
            ..Default::default()
        }
    }

    #[test]
    fn the_last_trace_is_the_last_request_not_a_background_job_after_it() {
        let spans = [
            span("older", "server", 10),
            span("older", "client", 11),
            span("request", "client", 20),
            span("request", "server", 21),
            // The history writer's batch, written after the request: internal spans only.
            span("history", "internal", 30),
            span("history", "client", 31),
        ];
        assert_eq!(newest_request(&spans).as_deref(), Some("request"));
        assert_eq!(newest_request(&spans[4..]), None);
    }

    #[test]
    fn a_trace_counts_from_its_first_span() {
        // A long request that started first and ended last is still the older one.
        let spans = [span("long", "server", 10), span("long", "server", 50), span("short", "server", 20)];
        assert_eq!(newest_request(&spans).as_deref(), Some("short"));
    }
}
