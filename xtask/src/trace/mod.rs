//! `cargo xtask trace <trace-id> | --last`: one trace as a waterfall in the terminal; with
//! `--details` every span's attributes, status, events and self time (details.rs); with
//! `--compare OTHER` two traces side by side (compare.rs).

mod compare;
mod details;

use std::time::{Duration, SystemTime};

use anyhow::Context;
use tracestore::model::Span;

use crate::{jaeger::Jaeger, waterfall};

#[derive(clap::Args)]
pub struct Options {
    /// The trace to show (32 hex digits, as in the X-Trace-Id header).
    #[arg(required_unless_present = "last")]
    trace_id: Option<String>,

    /// Show the most recent trace instead.
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

/// The trace whose first span started last, over every service of the last hour.
fn last_trace_id(jaeger: &Jaeger) -> anyhow::Result<String> {
    let since = SystemTime::now() - Duration::from_secs(3600);
    let mut newest: Option<(u64, String)> = None;
    for service in jaeger.services()? {
        for span in jaeger.find(&service, None, since)? {
            if newest.as_ref().is_none_or(|(start, _)| span.start_unix_nano > *start) {
                newest = Some((span.start_unix_nano, span.trace_id));
            }
        }
    }
    newest.map(|(_, id)| id).context("no trace in the last hour: send a request first (see the curl that `up` printed)")
}
