//! The chapters' requests, sent; their traces fetched and checked; the tracez pages and the
//! log lines they must show.

use std::{
    collections::HashMap,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use tracestore::model::Span;

use crate::{
    expect::{self, ExpectedSpan, glob},
    waterfall,
};

use super::{
    Verifier,
    matcher::{Failure, check, depths},
};

/// A request sent, its trace not looked at yet.
pub(super) struct Sent {
    status_ok: bool,
    trace_id: Option<String>,
    /// When it was sent (a second early: clocks), for the spans that arrive later.
    at: SystemTime,
}

impl Verifier<'_> {
    /// Checks that a service's tracez page shows spans named `expected.name`.
    pub(super) fn tracez(&self, expected: &expect::Tracez) -> anyhow::Result<bool> {
        let Some(base) = self.tracez.get(&expected.service) else {
            anyhow::bail!("no tracez address for {}: pass --tracez {}=URL", expected.service, expected.service);
        };
        let url = format!("{base}/debug/tracez?format=json");
        let page: serde_json::Value = self
            .http
            .get(&url)
            .send()
            .and_then(|response| response.json())
            .with_context(|| format!("cannot read {url}: is {} running?", expected.service))?;
        let count: u64 = page["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|span| span["name"] == expected.name.as_str())
            .map(|span| {
                span["running"].as_u64().unwrap_or(0)
                    + span["latency"].as_array().into_iter().flatten().filter_map(|count| count.as_u64()).sum::<u64>()
            })
            .sum();
        if count > 0 {
            println!("  ✓ {}'s tracez shows {count} span(s) `{}`", expected.service, expected.name);
            Ok(true)
        } else {
            println!("  ✗ {}'s tracez ({base}/debug/tracez) shows no span `{}`", expected.service, expected.name);
            println!(
                "      → is tracing on in {service}? With OTEL_SDK_DISABLED=true it records nothing; unset it and restart {service}.",
                service = expected.service
            );
            Ok(false)
        }
    }

    /// Sends one request; prints and returns (status as expected, the trace id it names).
    pub(super) fn send(
        &self,
        method: &str,
        path: &str,
        headers: &std::collections::BTreeMap<String, String>,
        body: Option<&str>,
        status: u16,
    ) -> anyhow::Result<(bool, Option<String>)> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).with_context(|| format!("bad method {method}"))?;
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.api));
        // With failure injection on, a chapter's check must not fail at random: ask for none,
        // unless the chapter asks for a fault itself.
        if !headers.keys().any(|name| name.eq_ignore_ascii_case(proto::INJECT_FAULT)) {
            request = request.header(proto::INJECT_FAULT, "none");
        }
        if let Some(host) = &self.host {
            request = request.header("host", host);
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_owned());
        }
        let response = request.send().with_context(|| {
            format!("cannot reach the API at {}: is the stack up? (cargo xtask up --local, or --api URL)", self.api)
        })?;
        let got = response.status().as_u16();
        let trace_id = response.headers().get("x-trace-id").and_then(|id| id.to_str().ok()).map(str::to_owned);
        let ok = got == status;
        let mark = if ok { "✓" } else { "✗" };
        println!("{mark} {method} {path} → {got}{}", if ok { String::new() } else { format!(" (expected {status})") });
        Ok((ok, trace_id))
    }

    /// Sends one request (and stops the services right after, if it says so).
    pub(super) fn send_request(&self, request: &expect::Request) -> anyhow::Result<Sent> {
        let at = SystemTime::now() - Duration::from_secs(1);
        let (status_ok, trace_id) =
            self.send(&request.method, &request.path, &request.headers, request.body.as_deref(), request.status)?;
        if request.stop_after {
            let stop = self.stop_services.context("only `cargo xtask exercise check` can stop the services")?;
            println!("  the services get SIGTERM now, right after the answer; then the trace is looked for");
            stop()?;
        }
        Ok(Sent { status_ok, trace_id, at })
    }

    /// Checks what a request sent earlier left: its trace, its log lines, the spans linking to it.
    pub(super) fn look(&self, request: &expect::Request, sent: Sent) -> anyhow::Result<bool> {
        let Sent { status_ok, trace_id, at } = sent;
        if request.look_after_next {
            println!("  (the trace of {} {}, sent before the next request:)", request.method, request.path);
        }
        if request.span.is_empty() && request.log.is_empty() && request.linked.is_empty() {
            return Ok(status_ok);
        }
        let Some(trace_id) = trace_id else {
            println!("  ✗ the answer has no X-Trace-Id header: apiserver did not trace this request.");
            // Its other spans (a gRPC call as a root span) may still be on their way: wait a little.
            let deadline = Instant::now() + self.timeout.min(Duration::from_secs(3));
            let exports = loop {
                let known = self.jaeger.services().unwrap_or_default().iter().any(|service| service == "apiserver");
                if known || Instant::now() >= deadline {
                    break known;
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            if let Some(why) = &request.why {
                println!("    → {why}");
            } else if exports {
                println!(
                    "    → apiserver does export spans, so tracing is on, but no span was made for this HTTP \
                     request: is the tracing middleware (telemetry::http::trace_requests) on its router?"
                );
            } else {
                println!("    → is OTEL_SDK_DISABLED set for apiserver? Unset it and restart apiserver.");
            }
            return Ok(false);
        };
        println!("  trace {trace_id}  ({}/trace/{trace_id})", self.jaeger.base());
        let mut passed = status_ok;
        if let Some(caller) = request.trace_id.as_deref().filter(|caller| *caller != trace_id) {
            passed = false;
            println!(
                "  ✗ apiserver started a new trace instead of going on with the caller's ({caller}): it did not \
                 read the trace context the request carried ({}).",
                request.headers.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }

        let (spans, outcomes) = self.wait_for_trace(&trace_id, &request.span)?;
        let depths = depths(&request.span);
        for ((expected, outcome), depth) in request.span.iter().zip(&outcomes).zip(depths) {
            let indent = "  ".repeat(depth.min(8));
            match outcome {
                Ok(_) => println!("  ✓ {indent}{}", expected.label()),
                Err(failure) => {
                    passed = false;
                    println!("  ✗ {indent}{}", expected.label());
                    // Nothing arrived from services stopped right after the answer: the one
                    // diagnosis is the exit's, below, not each span's.
                    if !(request.stop_after && spans.is_empty()) {
                        println!("      → {}", self.diagnose(failure, expected, &request.span));
                    }
                }
            }
        }
        for expected in &request.log {
            passed &= self.log_line(expected, &trace_id)?;
        }
        for expected in &request.linked {
            let found = request.span.iter().zip(&outcomes).find(|(span, _)| span.id.as_deref() == Some(&expected.to));
            let Some((_, Ok(span_id))) = found else {
                passed = false;
                println!("  ✗ no span `{}` of this trace for a span to link to (see above)", expected.to);
                continue;
            };
            passed &= self.linked(expected, &trace_id, span_id, at)?;
        }
        for expected in &request.overlap {
            let times = spans
                .iter()
                .filter(|span| glob(&expected.service, &span.service) && glob(&expected.name, &span.name))
                .map(|span| (span.start_unix_nano, span.end_unix_nano));
            let (count, most) = (times.clone().count(), expect::most_at_once(times));
            if most >= expected.at_least {
                println!("  ✓ {most} of the {count} `{}` spans of {} ran at one time", expected.name, expected.service);
            } else if count == 0 {
                passed = false;
                println!(
                    "  ✗ no `{}` span of {} is in this trace to run at the same time",
                    expected.name, expected.service
                );
            } else {
                passed = false;
                println!(
                    "  ✗ of the {count} `{}` spans of {}, at most {most} ran at one time (wanted {}): {}",
                    expected.name, expected.service, expected.at_least, expected.why
                );
            }
        }
        if request.span.is_empty() {
            return Ok(passed);
        }
        if spans.is_empty() {
            println!("  observed: no trace {trace_id} arrived within {:?}", self.timeout);
            if request.stop_after {
                println!(
                    "      → the services were stopped right after the answer: the spans still waiting in a batch \
                     are lost unless the shutdown flushes them before the process exits"
                );
            }
        } else {
            println!("  observed:");
            for line in waterfall::render(&spans, self.colour).lines() {
                println!("    {line}");
            }
        }
        Ok(passed)
    }

    /// Waits for a span named `expected.name` of `expected.service` that links to the span
    /// `span_id` of `trace_id`.
    fn linked(
        &self,
        expected: &expect::ExpectedLink,
        trace_id: &str,
        span_id: &str,
        since: SystemTime,
    ) -> anyhow::Result<bool> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let spans: Vec<Span> = self
                .jaeger
                .find(&expected.service, Some(&expected.name), since)?
                .into_iter()
                .filter(|span| span.service == expected.service && span.name == expected.name)
                .collect();
            let linking = spans
                .iter()
                .find(|span| span.links.iter().any(|link| link.trace_id == trace_id && link.span_id == span_id));
            if let Some(span) = linking {
                println!(
                    "  ✓ {} `{}` (trace {}, {} link(s)) links to `{}`",
                    expected.service,
                    expected.name,
                    span.trace_id,
                    span.links.len(),
                    expected.to
                );
                return Ok(true);
            }
            if Instant::now() >= deadline {
                println!(
                    "  ✗ no {} span `{}` links to `{}` of this trace",
                    expected.service, expected.name, expected.to
                );
                let inside = spans.iter().filter(|span| !span.parent_span_id.is_empty()).count();
                if !spans.is_empty() {
                    println!(
                        "      {} such span(s) arrived meanwhile: {} as the child of another span (in that one trace \
                         only), {} with no parent; linking to {} span(s) in all",
                        spans.len(),
                        inside,
                        spans.len() - inside,
                        spans.iter().map(|span| span.links.len()).sum::<usize>()
                    );
                }
                println!("      → {}", expected.why);
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Checks that `expected.service`'s log has a line of this trace containing the text.
    pub(super) fn log_line(&self, expected: &expect::ExpectedLog, trace_id: &str) -> anyhow::Result<bool> {
        let deadline = Instant::now() + self.timeout.min(Duration::from_secs(5));
        loop {
            let lines = crate::logs::read_all(&self.logs)?;
            let of_trace: Vec<_> = lines
                .iter()
                .filter(|line| line.service == expected.service && line.trace_id() == Some(trace_id))
                .collect();
            let saying: Vec<_> = of_trace.iter().filter(|line| line.text.contains(&expected.contains)).collect();
            // The line's span id must be a span of the trace: the one it was logged in.
            let spans = if saying.is_empty() { Vec::new() } else { self.jaeger.trace(trace_id)?.unwrap_or_default() };
            let in_a_span =
                |line: &&&crate::logs::Line| spans.iter().any(|span| Some(span.span_id.as_str()) == line.span_id());
            if saying.iter().any(in_a_span) {
                println!("  ✓ {}'s log: a line of this trace says \"{}\"", expected.service, expected.contains);
                return Ok(true);
            }
            if Instant::now() >= deadline && !saying.is_empty() {
                println!(
                    "  ✗ {}'s log has the line \"{}\" with this trace's id, but its span id ({}) is no span of the trace",
                    expected.service,
                    expected.contains,
                    saying[0].span_id().unwrap_or("none")
                );
                println!("      → the span id on a line is the id of the span it was logged in");
                return Ok(false);
            }
            if Instant::now() >= deadline {
                println!(
                    "  ✗ {}'s log ({}) has {} line(s) of this trace, none saying \"{}\"",
                    expected.service,
                    self.logs.display(),
                    of_trace.len(),
                    expected.contains
                );
                let any_ids = lines.iter().any(|line| line.service == expected.service && line.trace_id().is_some());
                if any_ids {
                    println!(
                        "      → a line logged inside the request's span carries its trace id; outside any span it has none"
                    );
                } else {
                    println!(
                        "      → no line of {}'s log carries any trace id: the ids are those of the span current in \
                         `tracing` when the line is written (OpenTelemetry's own current context need not follow it)",
                        expected.service
                    );
                }
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls Jaeger until every expected span is there as described, or the timeout passes.
    #[allow(clippy::type_complexity)]
    pub(super) fn wait_for_trace(
        &self,
        trace_id: &str,
        expected: &[ExpectedSpan],
    ) -> anyhow::Result<(Vec<Span>, Vec<Result<String, Failure>>)> {
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(200);
        loop {
            let spans = self.jaeger.trace(trace_id)?.unwrap_or_default();
            let outcomes = check(expected, &spans);
            if outcomes.iter().all(Result::is_ok) || Instant::now() >= deadline {
                return Ok((spans, outcomes));
            }
            std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

/// `SERVICE=URL` pairs, over the local defaults.
pub(super) fn tracez_pages(given: &[String]) -> anyhow::Result<HashMap<String, String>> {
    let mut pages = HashMap::from([
        ("apiserver".to_owned(), "http://127.0.0.1:8081".to_owned()),
        ("todomanager".to_owned(), "http://127.0.0.1:8091".to_owned()),
    ]);
    for pair in given {
        let (service, url) =
            pair.split_once('=').with_context(|| format!("--tracez wants SERVICE=URL, got {pair:?}"))?;
        pages.insert(service.to_owned(), url.trim_end_matches('/').to_owned());
    }
    Ok(pages)
}
