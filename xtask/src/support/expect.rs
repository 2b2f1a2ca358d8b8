//! What a chapter claims, as data: `chapters/NN-name/expect.toml` lists the requests to send and
//! the spans each one's trace must hold. `cargo xtask verify` checks exactly these claims.
//!
//! ```toml
//! title = "Instrumenting todomanager"
//! modes = ["local", "cluster"]          # where the chapter's claims hold
//!
//! [[request]]
//! method = "POST"
//! path = "/v1/todo"
//! body = '{"text": "Check tracing"}'    # sent as application/json
//! status = 201
//!
//! [[request.span]]
//! id = "api"                            # a name to refer to this span below
//! service = "apiserver"                 # globs: * matches anything
//! name = "POST /v1/todo"
//! kind = "server"
//! parent = "root"                       # "root", or the id of another span: its direct child
//! parent_span_id = "00f067aa0ba902b7"   # or a caller's span outside the trace store
//! attributes = { "http.route" = "/v1/todo" }   # equal to
//! attributes_exist = ["client.address"]        # present
//! attributes_match = { "url.path" = "^/v1/" }  # matches a regular expression
//! resource = { "service.version" = "0.1.0" }   # the reporting resource's attributes, equal to
//! resource_exist = ["service.instance.id"]     # present
//! error = false                         # its status is Error (true) or not (false)
//! events = ["injected failure*"]        # event names it has (globs)
//! why = "a 5xx is the server's failure" # said when the span is there but not as described
//!
//! [[request.overlap]]                   # spans of the trace that run at the same time
//! service = "apiserver"
//! name = "todo_mgr.TodoManager/DeleteTodo"
//! at_least = 4
//! why = "the deletes ran one after another"
//!
//! [[request.log]]                       # a line of the service's log in this request's trace
//! service = "apiserver"                 # (local mode: xtask reads .state/local/logs)
//! contains = "answered"
//!
//! [[request.span]]
//! service = "todomanager"
//! name = "db-create"
//! ancestor = "api"                      # anywhere below `api` (proxies may sit between)
//!
//! [[request]]                           # cluster mode: only with Linkerd (`on`) or
//! mesh = "off"                          # without it (`up --mesh off`); unset: both
//! path = "/v1/todo"
//! status = 200
//!
//! [[request]]                             # a caller that sends its own trace context:
//! path = "/v1/todo"
//! headers = { traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }
//! status = 200
//! trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"   # the answer's X-Trace-Id: its trace went on
//!
//! [[tracez]]                            # a span name the service's /debug/tracez page shows
//! service = "todomanager"
//! name = "db-create"
//!
//! [[absent]]                            # a request whose span must not exist
//! method = "GET"
//! path = "/ping"
//! status = 200
//! service = "apiserver"
//! name = "GET /ping"
//! why = "health checks are not traced"
//! ```

use std::{
    collections::{BTreeMap, HashSet},
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chapter {
    pub title: String,
    #[serde(default = "every_mode")]
    pub modes: Vec<Mode>,
    #[serde(default)]
    pub request: Vec<Request>,
    #[serde(default)]
    pub absent: Vec<Absent>,
    #[serde(default)]
    pub tracez: Vec<Tracez>,
    /// Set when loading: the chapter's number and folder.
    #[serde(skip)]
    pub number: u32,
    #[serde(skip)]
    pub folder: PathBuf,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Local,
    Cluster,
}

fn every_mode() -> Vec<Mode> {
    vec![Mode::Local, Mode::Cluster]
}

/// Whether the cluster runs Linkerd's mesh: a request of a cluster chapter may hold for one
/// shape only (`mesh = "on"` or `"off"` in `expect.toml`; `up --mesh`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mesh {
    /// Linkerd's proxies beside every Pod of the app, the collector and the ingress (the default).
    On,
    /// No Linkerd: the ingress, the app, the collector and Jaeger, for a machine that cannot run
    /// the mesh (from chapter 10 on; chapter 9 is the mesh's own).
    Off,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default = "get")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub status: u16,
    /// The trace the answer must name in `X-Trace-Id`: the caller's, when it sent a context.
    pub trace_id: Option<String>,
    /// The shape of the cluster whose traces this describes: with the mesh, without, or both.
    pub mesh: Option<Mesh>,
    /// What it means when this request, unlike the others, was not traced: said instead of the
    /// general diagnosis.
    pub why: Option<String>,
    #[serde(default)]
    pub span: Vec<ExpectedSpan>,
    /// Log lines the request's trace must have (local mode, where xtask can read the logs).
    #[serde(default)]
    pub log: Vec<ExpectedLog>,
    /// Spans of the trace that must run at the same time (work that need not wait for itself).
    #[serde(default)]
    pub overlap: Vec<ExpectedOverlap>,
    /// The services get SIGTERM right after the answer, and are waited for, before the trace is
    /// looked for: its spans must still arrive (a shutdown that flushes what is batched). Only
    /// `exercise check`, which starts the services for itself, can do it.
    #[serde(default)]
    pub stop_after: bool,
    /// Its trace is looked at only after the next request is sent: the two happen within one
    /// moment (work gathered from several requests, say).
    #[serde(default)]
    pub look_after_next: bool,
    /// Spans, in traces of their own, that must link to a span of this request's trace.
    #[serde(default)]
    pub linked: Vec<ExpectedLink>,
}

/// A span of `service` named `name`, in any trace, that links to the span of this request's
/// trace whose `id` is `to`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedLink {
    pub service: String,
    pub name: String,
    pub to: String,
    /// What it means when no such span links there.
    pub why: String,
}

/// Spans of one service and name in the request's trace, at least `at_least` of which run at
/// one moment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedOverlap {
    pub service: String,
    pub name: String,
    pub at_least: usize,
    /// What it means when they do not.
    pub why: String,
}

/// The most of `spans` (start and end, in any unit) that run at one moment.
pub fn most_at_once(spans: impl IntoIterator<Item = (u64, u64)>) -> usize {
    // Ends before starts at the same instant: spans that touch do not overlap.
    let mut edges: Vec<(u64, i32)> = spans.into_iter().flat_map(|(start, end)| [(start, 1), (end, -1)]).collect();
    edges.sort_unstable();
    let (mut running, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        running += step;
        most = most.max(running);
    }
    usize::try_from(most).unwrap_or(0)
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedSpan {
    pub id: Option<String>,
    pub service: String,
    pub name: String,
    pub kind: Option<String>,
    pub parent: Option<String>,
    pub ancestor: Option<String>,
    /// The id of its parent when that is a span of the caller's, outside the trace store (the
    /// span id the request's `traceparent` or B3 headers carried).
    pub parent_span_id: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub attributes_exist: Vec<String>,
    #[serde(default)]
    pub attributes_match: BTreeMap<String, String>,
    /// Attributes of the resource that reported it, equal to these.
    #[serde(default)]
    pub resource: BTreeMap<String, String>,
    /// Attributes the resource must have, whatever their value.
    #[serde(default)]
    pub resource_exist: Vec<String>,
    /// Whether the span's status is Error.
    pub error: Option<bool>,
    /// Names of events the span must have (globs): a warning logged inside it, say.
    #[serde(default)]
    pub events: Vec<String>,
    /// What it means when the span is missing or not as described: said with the problems.
    pub why: Option<String>,
}

impl ExpectedSpan {
    /// How a report names this span: `apiserver POST /v1/todo (server)`.
    pub fn label(&self) -> String {
        match &self.kind {
            Some(kind) => format!("{}  {}  ({kind})", self.service, self.name),
            None => format!("{}  {}", self.service, self.name),
        }
    }
}

/// A line in a service's log that carries the request's trace id and contains a text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedLog {
    pub service: String,
    pub contains: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Absent {
    #[serde(default = "get")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub status: u16,
    /// Look only in this trace (the one the request's own traceparent names).
    pub trace_id: Option<String>,
    pub service: String,
    pub name: String,
    pub why: String,
}

/// A span name that a service's `/debug/tracez` page must show (it works without a collector).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tracez {
    pub service: String,
    pub name: String,
}

impl Chapter {
    /// The requests whose expectations hold in a cluster with (or without) the mesh.
    pub fn requests_for(&self, mesh: Mesh) -> Vec<&Request> {
        self.request.iter().filter(|request| request.mesh.is_none_or(|shape| shape == mesh)).collect()
    }
}

/// Every chapter under `chapters/` that has an `expect.toml`, in order.
pub fn load_all(chapters_dir: &Path) -> anyhow::Result<Vec<Chapter>> {
    let mut chapters = Vec::new();
    for (number, folder) in crate::project::chapter_folders(chapters_dir)? {
        let file = folder.join("expect.toml");
        if file.exists() {
            chapters.push(load(&file, number)?);
        }
    }
    Ok(chapters)
}

pub fn load(file: &Path, number: u32) -> anyhow::Result<Chapter> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut chapter: Chapter = toml::from_str(&text).with_context(|| format!("{} is not valid", file.display()))?;
    chapter.number = number;
    chapter.folder = file.parent().unwrap_or(Path::new(".")).to_owned();
    check(&chapter).with_context(|| format!("{} is not valid", file.display()))?;
    Ok(chapter)
}

/// References point backwards to known ids, patterns compile.
fn check(chapter: &Chapter) -> anyhow::Result<()> {
    for request in &chapter.request {
        let mut ids = HashSet::new();
        for span in &request.span {
            anyhow::ensure!(
                span.parent.is_none() || span.ancestor.is_none(),
                "span {:?}: give parent or ancestor, not both",
                span.name
            );
            for reference in [&span.parent, &span.ancestor].into_iter().flatten() {
                anyhow::ensure!(
                    reference == "root" || ids.contains(reference.as_str()),
                    "span {:?} refers to {reference:?}, which no earlier span of this request has as id",
                    span.name
                );
            }
            for pattern in span.attributes_match.values() {
                regex::Regex::new(pattern).with_context(|| format!("span {:?}: bad pattern {pattern:?}", span.name))?;
            }
            if let Some(id) = &span.id {
                anyhow::ensure!(ids.insert(id.as_str()), "the id {id:?} is used twice");
            }
        }
    }
    Ok(())
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let regex = format!("^{}$", pattern.split('*').map(regex::escape).collect::<Vec<_>>().join(".*"));
    regex::Regex::new(&regex).is_ok_and(|regex| regex.is_match(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_spans_at_one_time_are_counted() {
        assert_eq!(most_at_once([]), 0);
        assert_eq!(most_at_once([(0, 10), (10, 20), (20, 30)]), 1, "one after another, touching");
        assert_eq!(most_at_once([(0, 10), (5, 15), (6, 7), (20, 30)]), 3);
    }

    #[test]
    fn globs() {
        assert!(glob("apiserver", "apiserver"));
        assert!(glob("*-linkerd-proxy", "apiserver-linkerd-proxy"));
        assert!(glob("todo_mgr.TodoManager/*", "todo_mgr.TodoManager/CreateTodo"));
        assert!(!glob("apiserver", "apiserver-linkerd-proxy"));
        assert!(glob("GET /v1/todo/{id}", "GET /v1/todo/{id}"));
    }

    #[test]
    fn every_chapter_file_is_valid() {
        let chapters = load_all(&crate::project::root().join("chapters")).unwrap();
        assert!(!chapters.is_empty());
    }

    /// The edge's chapter describes both shapes: behind Linkerd's proxies, and without them
    /// (apiserver straight below Traefik); chapter 9, the mesh's own, has nothing without it.
    #[test]
    fn each_cluster_shape_has_its_expectations() {
        use crate::project::{EDGE_CHAPTER, FIRST_CLUSTER_CHAPTER};
        let chapters = load_all(&crate::project::root().join("chapters")).unwrap();
        let chapter = |number| chapters.iter().find(|chapter| chapter.number == number).unwrap();
        let services = |request: &Request| request.span.iter().map(|span| span.service.clone()).collect::<Vec<_>>();
        let meshed = chapter(EDGE_CHAPTER).requests_for(Mesh::On);
        assert_eq!(meshed.len(), 1);
        assert!(services(meshed[0]).contains(&"apiserver-linkerd-proxy".to_owned()));
        let bare = chapter(EDGE_CHAPTER).requests_for(Mesh::Off);
        assert_eq!(bare.len(), 1);
        assert!(services(bare[0]).iter().all(|service| !service.contains("linkerd")), "{:?}", services(bare[0]));
        let api = bare[0].span.iter().find(|span| span.service == "apiserver").unwrap();
        assert_eq!(api.parent.as_deref(), Some("edge-client"), "apiserver's span is the edge's child");
        assert!(chapter(FIRST_CLUSTER_CHAPTER).requests_for(Mesh::Off).is_empty());
        for request in chapter(FIRST_CLUSTER_CHAPTER).requests_for(Mesh::On) {
            assert!(services(request).iter().any(|service| service.ends_with("-linkerd-proxy")));
        }
    }

    #[test]
    fn bad_references_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("expect.toml");
        std::fs::write(
            &file,
            "title = \"t\"\n[[request]]\npath = \"/\"\nstatus = 200\n[[request.span]]\nservice = \"a\"\nname = \"b\"\nparent = \"nope\"\n",
        )
        .unwrap();
        let error = format!("{:#}", load(&file, 1).unwrap_err());
        assert!(error.contains("refers to \"nope\""), "{error}");
    }
}
