//! `cargo xtask verify`: sends each chapter's requests, fetches the traces they produced from
//! Jaeger's API v3 and checks them against the chapter's `expect.toml`. The report shows the
//! expected spans with ✓/✗, a diagnosis with a next step for each ✗, and the observed trace.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use regex::Regex;
use tracestore::model::Span;

use crate::{
    expect::{self, Chapter, ExpectedSpan, Mode, glob},
    jaeger::Jaeger,
    processes::{self, Services},
    progress::Progress,
    project, waterfall,
};

#[derive(clap::Args, Clone)]
pub struct Options {
    /// Verify only this chapter (its number, e.g. 3).
    #[arg(long)]
    pub chapter: Option<u32>,

    /// Without --chapter: verify the chapters that apply to this mode.
    #[arg(long, value_enum, default_value = "local")]
    pub mode: Mode,

    /// The API's address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,

    /// The Host header to send (the ingress routes by it, e.g. todo.local).
    #[arg(long)]
    pub host: Option<String>,

    /// Jaeger's query address (API v3): local mode's trace store or a port-forwarded Jaeger.
    #[arg(long, default_value = "http://127.0.0.1:16686")]
    pub jaeger: String,

    /// Verify the chapters up to this one (default: the chapter `up --chapter` brought the
    /// stack to, or all).
    #[arg(long, conflicts_with = "chapter")]
    pub up_to: Option<u32>,

    /// Where a service's /debug/tracez page is, as SERVICE=URL (repeatable). Default:
    /// apiserver=http://127.0.0.1:8081, todomanager=http://127.0.0.1:8091.
    #[arg(long = "tracez", value_name = "SERVICE=URL")]
    pub tracez: Vec<String>,

    /// Where the chapters are (for trying out a chapter's expectations elsewhere).
    #[arg(long, hide = true)]
    pub chapters: Option<std::path::PathBuf>,

    /// How long to wait for each trace to be complete.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Where the services' logs are, for the chapters that check log lines [default:
    /// .state/local/logs].
    #[arg(long)]
    pub logs: Option<std::path::PathBuf>,

    /// Cluster mode: whether the cluster runs Linkerd (`up --mesh`); it picks the chapters'
    /// expectations for that shape of trace.
    #[arg(long, value_enum, default_value = "on")]
    pub mesh: crate::expect::Mesh,
}

/// Verifies in the background while `watch` looks after the services every tenth of a second:
/// an error from it, or a Ctrl-C, ends the wait at once. `None` when the user interrupted.
pub fn while_watching(
    mut watch: impl FnMut() -> anyhow::Result<()>,
    options: Options,
) -> anyhow::Result<Option<anyhow::Result<bool>>> {
    let verifier = std::thread::spawn(move || verify(&options));
    while !verifier.is_finished() {
        watch()?;
        if processes::stop_requested() {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Some(verifier.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the verification crashed")))))
}

/// Says how the verification went, then keeps `services` running until Ctrl-C (or one exits).
pub fn then_wait(mut services: Services, verified: anyhow::Result<bool>, what_runs: &str) -> anyhow::Result<()> {
    say(verified, what_runs);
    let outcome = services.wait();
    services.stop_all();
    outcome
}

/// Says how the verification went and that `what_runs` goes on running.
pub fn say(verified: anyhow::Result<bool>, what_runs: &str) {
    match verified {
        Ok(true) => println!("\n{what_runs}. Ctrl-C stops it."),
        Ok(false) => println!("\nSome expectations do not hold (see above). {what_runs} anyway; Ctrl-C stops it."),
        Err(error) => println!("\nCould not verify: {error:#}. {what_runs} anyway; Ctrl-C stops it."),
    }
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let passed = verify(options)?;
    anyhow::ensure!(passed, "verification failed: see the ✗ above");
    Ok(())
}

/// Prints the report; true when every expectation held.
pub fn verify(options: &Options) -> anyhow::Result<bool> {
    let chapters_dir = options.chapters.clone().unwrap_or_else(|| project::root().join("chapters"));
    let all = expect::load_all(&chapters_dir)?;
    let chapters: Vec<&Chapter> = match options.chapter {
        Some(number) => {
            let chapter = all.iter().find(|chapter| chapter.number == number);
            vec![chapter.with_context(|| format!("no chapter {number} with an expect.toml under chapters/"))?]
        }
        None => {
            let up_to = options.up_to.or(Progress::load().reached).unwrap_or(u32::MAX);
            all.iter().filter(|chapter| chapter.modes.contains(&options.mode) && chapter.number <= up_to).collect()
        }
    };
    let verifier = Verifier::new(options)?;
    if chapters.is_empty() {
        println!("No chapter has expectations for {:?} mode yet: nothing to verify.", options.mode);
        return Ok(true);
    }
    let mut passed = true;
    for chapter in chapters {
        println!("\n── Chapter {}: {} ──", chapter.number, chapter.title);
        let chapter_passed = verifier.chapter(chapter)?;
        Progress::record_result(chapter.number, chapter_passed);
        passed &= chapter_passed;
    }
    println!("\n{}", if passed { "✓ every expectation holds" } else { "✗ some expectations do not hold" });
    Ok(passed)
}

/// Checks one set of claims (an exercise's), reporting as for a chapter; true when all hold.
pub fn claims(options: &Options, claims: &Chapter) -> anyhow::Result<bool> {
    Verifier::new(options)?.chapter(claims)
}

struct Verifier {
    http: reqwest::blocking::Client,
    host: Option<String>,
    /// Service → the address of its tracez page.
    tracez: HashMap<String, String>,
    jaeger: Jaeger,
    api: String,
    timeout: Duration,
    colour: bool,
    /// Where the services' logs are (local mode).
    logs: std::path::PathBuf,
    mesh: crate::expect::Mesh,
}

/// Why an expected span was not found as described.
enum Failure {
    /// The trace holds no span at all from the span's service.
    NoSpansFrom(String),
    /// The service has spans in the trace, none by this name (what they are named, said).
    NotInTrace(String),
    Other(String),
}

impl Verifier {
    fn new(options: &Options) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build()?,
            jaeger: Jaeger::new(&options.jaeger)?,
            api: options.api.trim_end_matches('/').to_owned(),
            host: options.host.clone(),
            tracez: tracez_pages(&options.tracez)?,
            timeout: options.timeout,
            colour: waterfall::colours_wanted(),
            logs: options.logs.clone().unwrap_or_else(|| project::root().join(".state/local/logs")),
            mesh: options.mesh,
        })
    }

    fn chapter(&self, chapter: &Chapter) -> anyhow::Result<bool> {
        let since = SystemTime::now() - Duration::from_secs(1);
        let mut passed = true;
        // Requests that must leave no span go first: once the later traces are complete,
        // their spans would have been exported too.
        for absent in &chapter.absent {
            passed &= self.send(&absent.method, &absent.path, &absent.headers, None, absent.status)?.0;
        }
        let requests = chapter.requests_for(self.mesh);
        if requests.is_empty() && !chapter.request.is_empty() {
            let shape = if self.mesh == crate::expect::Mesh::On { "with" } else { "without" };
            println!("  - no expectation of this chapter holds for a cluster {shape} the mesh: nothing to check");
        }
        for request in requests {
            passed &= self.request(request)?;
        }
        for expected in &chapter.tracez {
            passed &= self.tracez(expected)?;
        }
        for absent in &chapter.absent {
            // In the one trace the request named (its traceparent), or anywhere since the start.
            let spans = match &absent.trace_id {
                Some(trace_id) => self.jaeger.trace(trace_id)?.unwrap_or_default(),
                None => self.jaeger.find(&absent.service, None, since)?,
            };
            let found: Vec<Span> = spans
                .into_iter()
                .filter(|span| span.service == absent.service && glob(&absent.name, &span.name))
                .collect();
            if found.is_empty() {
                println!("  ✓ no span `{}` from {} ({})", absent.name, absent.service, absent.why);
            } else {
                passed = false;
                println!(
                    "  ✗ {} span(s) `{}` from {} in trace {}, but {}",
                    found.len(),
                    absent.name,
                    absent.service,
                    found[0].trace_id,
                    absent.why
                );
            }
        }
        Ok(passed)
    }

    /// Checks that a service's tracez page shows spans named `expected.name`.
    fn tracez(&self, expected: &expect::Tracez) -> anyhow::Result<bool> {
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
    fn send(
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

    fn request(&self, request: &expect::Request) -> anyhow::Result<bool> {
        let (status_ok, trace_id) =
            self.send(&request.method, &request.path, &request.headers, request.body.as_deref(), request.status)?;
        if request.span.is_empty() && request.log.is_empty() {
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
            if exports {
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
                    println!("      → {}", self.diagnose(failure, expected, &request.span));
                }
            }
        }
        for expected in &request.log {
            passed &= self.log_line(expected, &trace_id)?;
        }
        if request.span.is_empty() {
            return Ok(passed);
        }
        if spans.is_empty() {
            println!("  observed: no trace {trace_id} arrived within {:?}", self.timeout);
        } else {
            println!("  observed:");
            for line in waterfall::render(&spans, self.colour).lines() {
                println!("    {line}");
            }
        }
        Ok(passed)
    }

    /// Checks that `expected.service`'s log has a line of this trace containing the text.
    fn log_line(&self, expected: &expect::ExpectedLog, trace_id: &str) -> anyhow::Result<bool> {
        let deadline = Instant::now() + self.timeout.min(Duration::from_secs(5));
        loop {
            let lines = crate::logs::read_all(&self.logs)?;
            let of_trace: Vec<_> = lines
                .iter()
                .filter(|line| line.service == expected.service && line.trace_id() == Some(trace_id))
                .collect();
            if of_trace.iter().any(|line| line.text.contains(&expected.contains)) {
                println!("  ✓ {}'s log: a line of this trace says \"{}\"", expected.service, expected.contains);
                return Ok(true);
            }
            if Instant::now() >= deadline {
                println!(
                    "  ✗ {}'s log ({}) has {} line(s) of this trace, none saying \"{}\"",
                    expected.service,
                    self.logs.display(),
                    of_trace.len(),
                    expected.contains
                );
                println!(
                    "      → a line logged inside the request's span carries its trace id; outside any span it has none"
                );
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls Jaeger until every expected span is there as described, or the timeout passes.
    #[allow(clippy::type_complexity)]
    fn wait_for_trace(
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

    /// Turns a failure into a sentence that says what is wrong and what to do.
    fn diagnose(&self, failure: &Failure, expected: &ExpectedSpan, all: &[ExpectedSpan]) -> String {
        let service = match failure {
            Failure::Other(text) => return text.clone(),
            Failure::NotInTrace(text) => {
                return match self.root_span_elsewhere(&expected.service, &expected.name) {
                    Some(span) => format!(
                        "{} reported `{}` in another trace ({}) as a root span: it was made where no span was \
                         current. Work handed to a task of its own (tokio::spawn) does not take the current span \
                         along: instrument the task with it (`.in_current_span()`).",
                        span.service, span.name, span.trace_id
                    ),
                    None => text.clone(),
                };
            }
            Failure::NoSpansFrom(service) => service,
        };
        let caller = expected
            .parent
            .as_ref()
            .or(expected.ancestor.as_ref())
            .and_then(|id| all.iter().find(|span| span.id.as_deref() == Some(id.as_str())))
            .map_or("its caller".to_owned(), |span| span.service.clone());
        let known = self.jaeger.services().unwrap_or_default();
        if !known.iter().any(|name| glob(service, name)) {
            return format!(
                "no spans from {service} at all: {service} exports nowhere. Check its OTEL_EXPORTER_OTLP_ENDPOINT \
                 (and that OTEL_SDK_DISABLED is not set), then restart {service}."
            );
        }
        match self.root_span_elsewhere(service, &expected.name) {
            Some(span) => format!(
                "{service} reported `{}` in another trace ({}) as a root span: the trace context was not \
                 propagated between {caller} and {service}. Check that {caller} injects it into its calls and \
                 {service} extracts it (OTEL_PROPAGATORS on both sides).",
                span.name, span.trace_id
            ),
            None => format!(
                "no spans from {service} in this trace, though {service} exports spans: the context may not reach \
                 it from {caller}, or its spans are still on the way (try a longer --timeout)."
            ),
        }
    }
}

impl Verifier {
    /// A recent root span of `service` named like `name`: one that should have been in a
    /// trace and started its own.
    fn root_span_elsewhere(&self, service: &str, name: &str) -> Option<Span> {
        let recent = self.jaeger.find(service, None, SystemTime::now() - Duration::from_secs(300)).unwrap_or_default();
        recent.into_iter().find(|span| glob(name, &span.name) && span.parent_span_id.is_empty())
    }
}

/// `SERVICE=URL` pairs, over the local defaults.
fn tracez_pages(given: &[String]) -> anyhow::Result<HashMap<String, String>> {
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

/// How deep each expected span sits under the others (by parent/ancestor), for the report.
fn depths(expected: &[ExpectedSpan]) -> Vec<usize> {
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    let mut depths = Vec::with_capacity(expected.len());
    for span in expected {
        let above = span.parent.as_ref().or(span.ancestor.as_ref()).filter(|id| *id != "root");
        let depth = above.and_then(|id| by_id.get(id.as_str())).map_or(0, |depth| depth + 1);
        if let Some(id) = &span.id {
            by_id.insert(id, depth);
        }
        depths.push(depth);
    }
    depths
}

/// Matches the expected spans, in order, against the observed ones. Ok holds the span id found.
fn check(expected: &[ExpectedSpan], spans: &[Span]) -> Vec<Result<String, Failure>> {
    let by_id: HashMap<&str, &Span> = spans.iter().map(|span| (span.span_id.as_str(), span)).collect();
    let mut matched: HashMap<&str, &Span> = HashMap::new();
    let mut used: HashSet<&str> = HashSet::new();
    let mut outcomes = Vec::new();
    for want in expected {
        let candidates = spans.iter().filter(|span| {
            !used.contains(span.span_id.as_str())
                && glob(&want.service, &span.service)
                && glob(&want.name, &span.name)
                && want.kind.as_ref().is_none_or(|kind| kind == span.kind)
        });
        let mut best: Option<(&Span, Vec<String>)> = None;
        for candidate in candidates {
            let problems = problems(want, candidate, &matched, &by_id);
            if best.as_ref().is_none_or(|(_, fewest)| problems.len() < fewest.len()) {
                best = Some((candidate, problems));
            }
            if best.as_ref().is_some_and(|(_, problems)| problems.is_empty()) {
                break;
            }
        }
        let outcome = match best {
            Some((span, problems)) if problems.is_empty() => {
                if let Some(id) = &want.id {
                    matched.insert(id, span);
                }
                used.insert(span.span_id.as_str());
                Ok(span.span_id.clone())
            }
            Some((_, problems)) => Err(Failure::Other(problems.join("; "))),
            None if !spans.iter().any(|span| glob(&want.service, &span.service)) => {
                Err(Failure::NoSpansFrom(want.service.clone()))
            }
            None => {
                let mut names: Vec<String> = spans
                    .iter()
                    .filter(|span| glob(&want.service, &span.service))
                    .map(|span| format!("`{}` ({})", span.name, span.kind))
                    .collect();
                names.sort();
                names.dedup();
                Err(Failure::NotInTrace(format!(
                    "{} reported {} but no {}span named `{}`",
                    want.service,
                    names.join(", "),
                    want.kind.as_ref().map_or(String::new(), |kind| format!("{kind} ")),
                    want.name
                )))
            }
        };
        outcomes.push(outcome);
    }
    outcomes
}

/// What is wrong with `span` as a match for `want`; empty when nothing is.
fn problems(
    want: &ExpectedSpan,
    span: &Span,
    matched: &HashMap<&str, &Span>,
    by_id: &HashMap<&str, &Span>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let parent = by_id.get(span.parent_span_id.as_str()).copied();
    let describe = |span: &Span| format!("{} `{}`", span.service, span.name);
    match want.parent.as_deref() {
        None => {}
        Some("root") => {
            if let Some(parent) = parent {
                problems.push(format!("`{}` should start the trace but is a child of {}", span.name, describe(parent)));
            }
        }
        Some(id) => match matched.get(id) {
            None => problems.push(format!("its expected parent ({id}) is not in the trace")),
            Some(expected_parent) if expected_parent.span_id == span.parent_span_id => {}
            Some(expected_parent) => problems.push(match parent {
                Some(actual) => format!(
                    "`{}` is a child of {}, expected a child of {}",
                    span.name,
                    describe(actual),
                    describe(expected_parent)
                ),
                None if span.parent_span_id.is_empty() => format!(
                    "`{}` has no parent: the trace context was not propagated between {} and {}",
                    span.name, expected_parent.service, span.service
                ),
                None => format!(
                    "`{}` has a parent ({}) that is not in the trace: a span between {} and {} was never exported",
                    span.name, span.parent_span_id, expected_parent.service, span.service
                ),
            }),
        },
    }
    if let Some(id) = want.ancestor.as_deref() {
        match matched.get(id) {
            None => problems.push(format!("its expected ancestor ({id}) is not in the trace")),
            Some(ancestor) => {
                let mut current = parent;
                let mut hops = 0;
                while let Some(above) = current.filter(|above| above.span_id != ancestor.span_id) {
                    current = by_id.get(above.parent_span_id.as_str()).copied();
                    hops += 1;
                    if hops > by_id.len() {
                        current = None; // a loop of parents: give up
                    }
                }
                if current.is_none() {
                    problems.push(format!("`{}` is not below {}", span.name, describe(ancestor)));
                }
            }
        }
    }
    for (key, value) in &want.attributes {
        match span.attributes.get(key) {
            Some(actual) if actual == value => {}
            Some(actual) => problems.push(format!("attribute {key} is {actual:?}, expected {value:?}")),
            None => problems.push(format!("attribute {key} is missing (expected {value:?})")),
        }
    }
    for key in &want.attributes_exist {
        if !span.attributes.contains_key(key) {
            problems.push(format!("attribute {key} is missing"));
        }
    }
    match want.error {
        Some(true) if !span.is_error => {
            problems.push(format!("`{}` is not marked as an error (its status is not Error)", span.name))
        }
        Some(false) if span.is_error => problems.push(format!(
            "`{}` is marked as an error ({}), but this is not its failure",
            span.name,
            if span.status_message.is_empty() { "status Error" } else { span.status_message.as_str() }
        )),
        _ => {}
    }
    for wanted in &want.events {
        if !span.events.iter().any(|event| glob(wanted, &event.name)) {
            let names: Vec<&str> = span.events.iter().map(|event| event.name.as_str()).collect();
            problems.push(format!("`{}` has no event `{wanted}` (its events: {names:?})", span.name));
        }
    }
    for (key, pattern) in &want.attributes_match {
        let regex = Regex::new(pattern).expect("checked when loading");
        match span.attributes.get(key) {
            Some(actual) if regex.is_match(actual) => {}
            Some(actual) => problems.push(format!("attribute {key} is {actual:?}, which does not match {pattern:?}")),
            None => problems.push(format!("attribute {key} is missing (expected to match {pattern:?})")),
        }
    }
    problems
}
