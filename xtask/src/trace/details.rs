//! A trace span by span, in full: kind, duration and self time (the time no child of the span
//! accounts for: where the span itself spent it), status, attributes and events. What Jaeger's
//! UI shows when a span is clicked.

use std::fmt::Write as _;

use tracestore::model::{self, Span};

use crate::waterfall::duration;

pub fn render(spans: &[Span]) -> String {
    let mut out = String::new();
    let tree = model::tree(spans);
    for (depth, span) in &tree {
        let indent = "  ".repeat(*depth);
        let status = match (span.is_error, span.status_message.is_empty()) {
            (false, _) => String::new(),
            (true, true) => "  ✗ Error".to_owned(),
            (true, false) => format!("  ✗ Error: {}", span.status_message),
        };
        let _ = writeln!(
            out,
            "{indent}{}  {}  ({})  {}, self {}{status}",
            span.service,
            span.name,
            span.kind,
            duration(span.duration_nanos()),
            duration(model::self_time(span, spans)),
        );
        for (key, value) in &span.attributes {
            let _ = writeln!(out, "{indent}    {key} = {value}");
        }
        for event in &span.events {
            let at = event.time_unix_nano.saturating_sub(span.start_unix_nano);
            let attributes: Vec<String> =
                event.attributes.iter().map(|(key, value)| format!("{key}={value}")).collect();
            let _ = writeln!(out, "{indent}    event at +{}: {}  {}", duration(at), event.name, attributes.join(" "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: &str, start_ms: u64, end_ms: u64) -> Span {
        Span {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            service: "apiserver".into(),
            name: format!("op {id}"),
            kind: "server",
            start_unix_nano: start_ms * 1_000_000,
            end_unix_nano: end_ms * 1_000_000,
            attributes: [("http.route".to_owned(), "/v1/todo".to_owned())].into(),
            is_error: id == "3",
            status_message: if id == "3" { "database unavailable".into() } else { String::new() },
            events: vec![model::Event {
                name: "retrying".into(),
                time_unix_nano: (start_ms + 1) * 1_000_000,
                attributes: [("attempt".to_owned(), "2".to_owned())].into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn self_time_is_what_no_child_covers() {
        // 0–100 ms with children 10–40 and 30–60 (overlapping) and 90–120 (past the end).
        let spans = [span("1", "", 0, 100), span("2", "1", 10, 40), span("3", "1", 30, 60), span("4", "1", 90, 120)];
        assert_eq!(model::self_time(&spans[0], &spans), 40_000_000, "100 − (10–60) − (90–100)");
        assert_eq!(model::self_time(&spans[1], &spans), 30_000_000, "no children: all of it");
    }

    #[test]
    fn details_show_status_attributes_and_events() {
        let spans = [span("1", "", 0, 100), span("3", "1", 30, 60)];
        let text = render(&spans);
        assert!(text.contains("apiserver  op 1  (server)  100.00 ms, self 70.00 ms\n"), "{text}");
        assert!(
            text.contains("  apiserver  op 3  (server)  30.00 ms, self 30.00 ms  ✗ Error: database unavailable"),
            "{text}"
        );
        assert!(text.contains("      http.route = /v1/todo"), "{text}");
        assert!(text.contains("event at +1.00 ms: retrying  attempt=2"), "{text}");
    }
}
