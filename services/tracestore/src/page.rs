//! The store's own pages on the query port: `/` lists recent traces, or those a search finds
//! (service, operation, errors only, duration, an attribute: the search form on top), and
//! `/trace/{id}` draws one as a waterfall, each span unfolding to its attributes, status,
//! events and self time. Rendered on the server; no front-end build.

use std::{collections::BTreeMap, fmt::Write as _, time::SystemTime};

use axum::{
    Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;

use crate::{
    filter::Attributes,
    model::{self, Span},
    query::{parse_go_duration, parse_trace_id},
    store::{self, Store},
};

/// How many traces the front page lists.
const RECENT: usize = 50;
/// How many spans a trace page draws: a page stays readable and quick whatever the trace's
/// size (the whole trace is still in `GET /api/v3/traces/{id}`).
const SHOWN_SPANS: usize = 1000;

pub fn router(store: Store) -> Router {
    Router::new().route("/", get(recent)).route("/trace/{trace_id}", get(trace)).with_state(store)
}

const STYLE: &str = "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
    td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}.err{color:#b00}\
    .bar{background:#4a7bd0;height:12px;display:inline-block}.err .bar{background:#c33}\
    .lane{width:480px;background:#f3f3f3}.detail{font-size:90%;color:#333;padding:4px 0}\
    form{margin-bottom:1em}label{margin-right:.6em}</style>";

/// The search form's fields; all optional. Searching needs a service (as in Jaeger).
#[derive(Debug, Default, Deserialize)]
struct Form {
    #[serde(default)]
    service: String,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    errors: Option<String>,
    /// Go durations, as in the API: `100ms`, `1.5s`.
    #[serde(default)]
    min: String,
    #[serde(default)]
    max: String,
    /// `key=value`.
    #[serde(default)]
    attribute: String,
}

async fn recent(
    State(store): State<Store>,
    form: Result<Query<Form>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let form = match form {
        Ok(Query(form)) => form,
        Err(rejection) => {
            let why = escape(&rejection.body_text()).into_owned();
            return (StatusCode::BAD_REQUEST, Html(page("bad search", &search_form(&Form::default()), &why)))
                .into_response();
        }
    };
    let (heading, rows) = if form.service.trim().is_empty() {
        ("Recent traces", store.recent(RECENT))
    } else {
        let query = match search(&form) {
            Ok(query) => query,
            Err(why) => {
                return (StatusCode::BAD_REQUEST, Html(page("bad search", &search_form(&form), &escape(&why))))
                    .into_response();
            }
        };
        ("Traces found", store.find_summaries(&query))
    };
    let mut table = format!(
        "<h1>{heading}</h1><p>{} traces kept. Jaeger's API v3 answers under <code>/api/v3/</code>.</p>\
         <table><tr><th>root span</th><th>services</th><th>spans</th><th>duration</th><th>error</th></tr>",
        store.len()
    );
    for (id, summary) in &rows {
        let Some((service, name)) = &summary.root else { continue };
        let services: Vec<&str> = summary.services.iter().map(String::as_str).collect();
        let error = summary.has_error;
        let _ = write!(
            table,
            "<tr{}><td><a href=\"/trace/{}\">{} {}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if error { " class=\"err\"" } else { "" },
            model::hex(id),
            escape(service),
            escape(name),
            escape(&services.join(", ")),
            summary.spans,
            millis(summary.end_unix_nano.saturating_sub(summary.start_unix_nano)),
            if error { "yes" } else { "" }
        );
    }
    table.push_str("</table>");
    if rows.is_empty() {
        table.push_str("<p>No trace.</p>");
    }
    Html(page("traces", &search_form(&form), &table)).into_response()
}

/// The store's query for the form: the last hour, at most 100 traces.
fn search(form: &Form) -> Result<store::Query, String> {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    let duration = |text: &str, field: &str| -> Result<Option<std::time::Duration>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        parse_go_duration(text).map(Some).map_err(|why| format!("{field}: {why} (write it like 100ms or 1.5s)"))
    };
    let mut attributes = BTreeMap::new();
    if !form.attribute.trim().is_empty() {
        let (key, value) = form
            .attribute
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("attribute: write it as key=value, got {:?}", form.attribute))?;
        attributes.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    if form.errors.is_some() {
        attributes.insert("error".to_owned(), "true".to_owned());
    }
    Ok(store::Query {
        service_name: form.service.trim().to_owned(),
        operation_name: Some(form.operation.trim().to_owned()).filter(|name| !name.is_empty()),
        start_time_min_nanos: now.saturating_sub(3_600_000_000_000),
        start_time_max_nanos: now + 60_000_000_000,
        duration_min: duration(&form.min, "min duration")?,
        duration_max: duration(&form.max, "max duration")?,
        attributes: Attributes(attributes),
        num_traces: 100,
    })
}

fn search_form(form: &Form) -> String {
    let field = |name: &str, label: &str, value: &str, hint: &str| {
        format!(
            "<label>{label} <input name=\"{name}\" value=\"{}\" placeholder=\"{hint}\" size=\"14\"></label> ",
            escape(value)
        )
    };
    format!(
        "<form method=\"get\" action=\"/\">{}{}<label><input type=\"checkbox\" name=\"errors\"{}> errors only</label> \
         {}{}{}<button>search</button> <a href=\"/\">recent</a></form>",
        field("service", "service", &form.service, "apiserver"),
        field("operation", "operation", &form.operation, "GET /v1/todo/{id}"),
        if form.errors.is_some() { " checked" } else { "" },
        field("min", "min duration", &form.min, "100ms"),
        field("max", "max duration", &form.max, "1s"),
        field("attribute", "attribute", &form.attribute, "fault.injected=delay"),
    )
}

fn page(title: &str, form: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title>{STYLE}</head><body>{form}{body}</body></html>",
        escape(title)
    )
}

async fn trace(State(store): State<Store>, Path(trace_id): Path<String>) -> Response {
    let Some(parts) = parse_trace_id(&trace_id).ok().and_then(|id| store.get(&id)) else {
        return (StatusCode::NOT_FOUND, Html(format!("no trace {}", escape(&trace_id)))).into_response();
    };
    let spans = model::spans_of(&parts);
    let start = spans.iter().map(|span| span.start_unix_nano).min().unwrap_or_default();
    let total = trace_duration(&spans).max(1);
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>trace {id}</title>{STYLE}</head><body>\
         <p><a href=\"/\">← recent traces</a></p><h1>Trace <code>{id}</code></h1>\
         <table><tr><th>span</th><th>kind</th><th>duration</th><th class=\"lane\">{}</th></tr>",
        millis(total),
        id = escape(&trace_id)
    );
    let tree = model::tree(&spans);
    for (depth, span) in tree.iter().take(SHOWN_SPANS) {
        let offset = (span.start_unix_nano.saturating_sub(start)) as f64 / total as f64 * 100.0;
        let width = (span.duration_nanos() as f64 / total as f64 * 100.0).max(0.3);
        let _ = write!(
            html,
            "<tr{}><td style=\"padding-left:{}em\"><details><summary><b>{}</b> {}</summary>{}</details></td><td>{}</td><td>{}</td>\
             <td class=\"lane\"><span class=\"bar\" style=\"margin-left:{offset:.2}%;width:{width:.2}%\"></span></td></tr>",
            if span.is_error { " class=\"err\"" } else { "" },
            *depth as f64 * 1.2 + 0.5,
            escape(&span.service),
            escape(&span.name),
            details(span, &spans),
            span.kind,
            millis(span.duration_nanos()),
        );
    }
    html.push_str("</table>");
    if tree.len() > SHOWN_SPANS {
        let _ = write!(
            html,
            "<p>The first {SHOWN_SPANS} of {} spans are drawn; <a href=\"/api/v3/traces/{}\">the API</a> has them all.</p>",
            tree.len(),
            escape(&trace_id)
        );
    }
    html.push_str("<p>Click a span for its attributes, status and events.</p></body></html>");
    Html(html).into_response()
}

fn trace_duration(spans: &[Span]) -> u64 {
    let start = spans.iter().map(|span| span.start_unix_nano).min().unwrap_or_default();
    let end = spans.iter().map(|span| span.end_unix_nano).max().unwrap_or_default();
    end.saturating_sub(start)
}

fn millis(nanos: u64) -> String {
    format!("{:.2} ms", nanos as f64 / 1e6)
}

/// What a span unfolds to: status, self time, attributes, events.
fn details(span: &Span, spans: &[Span]) -> String {
    let mut html = String::from("<div class=\"detail\">");
    let status = match (span.is_error, span.status_message.is_empty()) {
        (false, _) => "status unset or ok".to_owned(),
        (true, true) => "status <b>Error</b>".to_owned(),
        (true, false) => format!("status <b>Error</b>: {}", escape(&span.status_message)),
    };
    let _ = write!(html, "<div>{status}; self time {}</div>", millis(model::self_time(span, spans)));
    for (key, value) in &span.attributes {
        let _ = write!(html, "<div><code>{} = {}</code></div>", escape(key), escape(value));
    }
    for event in &span.events {
        let attributes: Vec<String> = event.attributes.iter().map(|(key, value)| format!("{key}={value}")).collect();
        let _ = write!(
            html,
            "<div>event at +{}: <b>{}</b> <code>{}</code></div>",
            millis(event.time_unix_nano.saturating_sub(span.start_unix_nano)),
            escape(&event.name),
            escape(&attributes.join(" "))
        );
    }
    html.push_str("</div>");
    html
}

/// Text for HTML, in elements and double-quoted attributes: `&`, `<`, `>` and `"` escaped.
fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_double_quoted_attribute(text)
}
