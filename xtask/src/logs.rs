//! `cargo xtask logs --trace ID`: the log lines of one trace from every service of a local
//! stack, merged in time order; `--grep TEXT` finds lines (a "database unavailable", say) and
//! names the trace each belongs to, the way back from a log line to its trace.
//!
//! Every line the services log inside a span ends with `trace_id=… span_id=…` (or carries them
//! as JSON fields with `LOG_FORMAT=json`: services/telemetry/src/logging.rs), so the lines of one
//! request can be found in both services' logs.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::project;

/// The services whose logs are read, in `<state>/logs/<service>.log`.
const SERVICES: [&str; 2] = ["apiserver", "todomanager"];

#[derive(clap::Args)]
pub struct Options {
    /// The lines of this trace (32 hex digits, as in the X-Trace-Id header).
    #[arg(long, required_unless_present = "grep")]
    trace: Option<String>,

    /// The lines that contain this text (with --trace: of that trace only).
    #[arg(long)]
    grep: Option<String>,

    /// The local state folder of the `up --local` whose logs to read [default: .state/local].
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

/// One log line (with the lines that continue it, a panic's backtrace say).
#[derive(Debug, PartialEq)]
pub struct Line {
    pub service: &'static str,
    /// RFC 3339 with a fixed number of digits: it sorts as text.
    pub timestamp: String,
    pub text: String,
}

impl Line {
    /// The trace it was logged in, if any.
    pub fn trace_id(&self) -> Option<&str> {
        self.id("trace_id", 32)
    }

    /// The id of the span the line was logged in.
    pub fn span_id(&self) -> Option<&str> {
        self.id("span_id", 16)
    }

    /// The `digits` hex digits after `name` (`name=…` in text, `"name":"…"` in JSON).
    fn id(&self, name: &str, digits: usize) -> Option<&str> {
        let (_, after) = self.text.split_once(name)?;
        let id = after.trim_start_matches(['=', '"', ':']);
        id.get(..digits).filter(|id| id.bytes().all(|byte| byte.is_ascii_hexdigit()))
    }
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let state = options.state_dir.clone().unwrap_or_else(|| project::root().join(".state/local"));
    let trace = options.trace.as_deref().map(str::to_ascii_lowercase);
    if let Some(trace) = &trace {
        anyhow::ensure!(
            trace.len() == 32 && trace.bytes().all(|byte| byte.is_ascii_hexdigit()),
            "--trace wants a trace id of 32 hex digits (as in the X-Trace-Id header), got {trace:?}"
        );
    }
    let lines = read_all(&state.join("logs"))?;
    let wanted: Vec<&Line> = lines
        .iter()
        .filter(|line| trace.as_deref().is_none_or(|trace| line.trace_id() == Some(trace)))
        .filter(|line| options.grep.as_deref().is_none_or(|text| line.text.contains(text)))
        .collect();
    if wanted.is_empty() {
        println!("No log line matches in {}.", state.join("logs").display());
        return Ok(());
    }
    for line in &wanted {
        println!("{:<11} {}", line.service, line.text);
    }
    if trace.is_none() {
        let mut traces: Vec<&str> = Vec::new();
        for id in wanted.iter().filter_map(|line| line.trace_id()) {
            if !traces.contains(&id) {
                traces.push(id);
            }
        }
        if let Some(first) = traces.first() {
            println!("\nTheir trace(s): {}. One of them: cargo xtask trace {first}", traces.join(", "));
        }
    }
    Ok(())
}

/// Every service's lines, merged in time order (a stable sort: one service's lines keep their
/// order when their timestamps are equal).
pub fn read_all(logs: &Path) -> anyhow::Result<Vec<Line>> {
    let mut lines = Vec::new();
    for service in SERVICES {
        let file = logs.join(format!("{service}.log"));
        if !file.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        lines.extend(parse(service, &text));
    }
    anyhow::ensure!(
        !lines.is_empty() || logs.exists(),
        "no logs in {}: is this the state folder of an `up --local`? (--state-dir)",
        logs.display()
    );
    lines.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
    Ok(lines)
}

/// The lines of one log: each starts with its timestamp (text) or has one as a JSON field.
fn parse(service: &'static str, text: &str) -> Vec<Line> {
    let mut lines: Vec<Line> = Vec::new();
    for raw in text.lines() {
        match timestamp_of(raw) {
            Some(timestamp) => lines.push(Line { service, timestamp, text: raw.to_owned() }),
            None => {
                if let Some(last) = lines.last_mut() {
                    last.text.push('\n');
                    last.text.push_str(raw);
                }
            }
        }
    }
    lines
}

fn timestamp_of(line: &str) -> Option<String> {
    if line.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(line).ok()?;
        return json["timestamp"].as_str().map(str::to_owned);
    }
    let first = line.split_whitespace().next()?;
    (first.len() >= 20 && first.as_bytes()[4] == b'-' && first.contains('T')).then(|| first.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_their_trace_and_continuations_stay_with_them() {
        let log = "2026-12-01T21:34:07.025450Z  INFO telemetry::http: POST /v1/todo answered status=201 trace_id=7c5b1912f5942d9b7ff2f8fdf8f558e1 span_id=10a87dc89fcacec9\n\
                   2026-12-01T21:34:08.000001Z  WARN apiserver: no trace here\n\
                   \x20 at src/main.rs:3\n\
                   {\"timestamp\":\"2026-12-01T21:34:09.000000Z\",\"level\":\"INFO\",\"trace_id\":\"0123456789abcdef0123456789abcdef\"}\n";
        let lines = parse("apiserver", log);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].trace_id(), Some("7c5b1912f5942d9b7ff2f8fdf8f558e1"));
        assert_eq!(lines[1].trace_id(), None);
        assert!(lines[1].text.ends_with("at src/main.rs:3"), "{:?}", lines[1]);
        assert_eq!(lines[2].trace_id(), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(lines[2].timestamp, "2026-12-01T21:34:09.000000Z");
    }
}
