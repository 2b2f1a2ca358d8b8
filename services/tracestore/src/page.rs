//! The store's own pages on the query port: `/` lists recent traces, `/trace/{id}` draws one
//! as a waterfall. Rendered on the server; no front-end build.

use std::fmt::Write as _;

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
};

use crate::{
    model::{self, Span},
    query::parse_trace_id,
    store::Store,
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
    .lane{width:480px;background:#f3f3f3}</style>";

async fn recent(State(store): State<Store>) -> Html<String> {
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>traces</title>{STYLE}</head><body>\
         <h1>Recent traces</h1><p>{} traces kept. Jaeger's API v3 answers under <code>/api/v3/</code>.</p>\
         <table><tr><th>root span</th><th>services</th><th>spans</th><th>duration</th><th>error</th></tr>",
        store.len()
    );
    for (id, summary) in store.recent(RECENT) {
        let Some((service, name)) = &summary.root else { continue };
        let services: Vec<&str> = summary.services.iter().map(String::as_str).collect();
        let error = summary.has_error;
        let _ = write!(
            html,
            "<tr{}><td><a href=\"/trace/{}\">{} {}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if error { " class=\"err\"" } else { "" },
            model::hex(&id),
            escape(service),
            escape(name),
            escape(&services.join(", ")),
            summary.spans,
            millis(summary.end_unix_nano.saturating_sub(summary.start_unix_nano)),
            if error { "yes" } else { "" }
        );
    }
    html.push_str("</table></body></html>");
    Html(html)
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
            "<tr{}><td style=\"padding-left:{}em\" title=\"{}\"><b>{}</b> {}</td><td>{}</td><td>{}</td>\
             <td class=\"lane\"><span class=\"bar\" style=\"margin-left:{offset:.2}%;width:{width:.2}%\"></span></td></tr>",
            if span.is_error { " class=\"err\"" } else { "" },
            *depth as f64 * 1.2 + 0.5,
            escape(&attributes(span)),
            escape(&span.service),
            escape(&span.name),
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
    html.push_str("<p>Hover a span for its attributes.</p></body></html>");
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

fn attributes(span: &Span) -> String {
    span.attributes.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join("\n")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
