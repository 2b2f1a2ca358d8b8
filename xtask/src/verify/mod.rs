//! `cargo xtask verify`: sends each chapter's requests, fetches the traces they produced from
//! Jaeger's API v3 and checks them against the chapter's `expect.toml`. The report shows the
//! expected spans with ✓/✗, a diagnosis with a next step for each ✗, and the observed trace.
//!
//! Here the command and its options; [`requests`] sends the chapters' requests and checks what
//! they left (spans, tracez pages, log lines); [`matcher`] matches expected spans to observed
//! ones; [`diagnoses`] says what a ✗ means and what to do; [`runner`] runs it all in the
//! background of `up`.

mod diagnoses;
mod matcher;
mod requests;
mod runner;

use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

use anyhow::Context;
use tracestore::model::Span;

use crate::{
    expect::{self, Chapter, Mode, glob},
    jaeger::Jaeger,
    progress::Progress,
    project, waterfall,
};

use requests::tracez_pages;
pub use runner::{say, then_wait, while_watching};

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
/// `stop_services` stops the services, for a request that asks for it (`stop_after`).
pub fn claims(
    options: &Options,
    claims: &Chapter,
    stop_services: &dyn Fn() -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    Verifier { stop_services: Some(stop_services), ..Verifier::new(options)? }.chapter(claims)
}

struct Verifier<'a> {
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
    /// Stops the services (a request's `stop_after`), where the caller started them.
    stop_services: Option<&'a dyn Fn() -> anyhow::Result<()>>,
}

impl Verifier<'_> {
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
            stop_services: None,
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
        // A request that is looked at after the next one waits here, sent.
        let mut waiting = Vec::new();
        for request in requests {
            let sent = self.send_request(request)?;
            if request.look_after_next {
                waiting.push((request, sent));
                continue;
            }
            for (earlier, sent) in waiting.drain(..) {
                passed &= self.look(earlier, sent)?;
            }
            passed &= self.look(request, sent)?;
        }
        for (earlier, sent) in waiting {
            passed &= self.look(earlier, sent)?;
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
}
