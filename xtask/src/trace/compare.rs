//! Two traces side by side: the spans of both matched by where they sit (the services and
//! names from the root down), with each one's duration and the difference. A slow request next
//! to a normal one of the same kind shows at once which span took the extra time.

use std::{collections::HashMap, fmt::Write as _};

use tracestore::model::{self, Span};

use crate::waterfall::duration;

/// Where a span sits: its services and names from the root down, and which of the spans with
/// that path it is (the second `db-get` under the same parent, say).
type Place = (Vec<(String, String)>, usize);

pub fn render(a: &[Span], b: &[Span]) -> String {
    let (a_rows, b_rows) = (places(a), places(b));
    let b_index: HashMap<&Place, &Span> = b_rows.iter().map(|(place, span, _)| (place, *span)).collect();
    let a_index: HashMap<&Place, &Span> = a_rows.iter().map(|(place, span, _)| (place, *span)).collect();
    let label = |place: &Place, depth: usize| {
        let (service, name) = place.0.last().cloned().unwrap_or_default();
        format!("{}{service}  {name}", "  ".repeat(depth))
    };
    let mut rows: Vec<(String, Option<u64>, Option<u64>)> = Vec::new();
    for (place, span, depth) in &a_rows {
        let other = b_index.get(place).map(|span| span.duration_nanos());
        rows.push((label(place, *depth), Some(span.duration_nanos()), other));
    }
    for (place, span, depth) in &b_rows {
        if !a_index.contains_key(place) {
            rows.push((label(place, *depth), None, Some(span.duration_nanos())));
        }
    }
    let width = rows.iter().map(|(label, _, _)| label.chars().count()).max().unwrap_or(0).max(4);
    let mut out = format!("{:<width$}  {:>10}  {:>10}  {:>11}\n", "span", "A", "B", "B − A");
    for (label, a, b) in rows {
        let shown = |nanos: Option<u64>| nanos.map_or("—".to_owned(), duration);
        let difference = match (a, b) {
            (Some(a), Some(b)) if b >= a => format!("+{}", duration(b - a)),
            (Some(a), Some(b)) => format!("−{}", duration(a - b)),
            (Some(_), None) => "only in A".to_owned(),
            (None, _) => "only in B".to_owned(),
        };
        let _ = writeln!(out, "{label:<width$}  {:>10}  {:>10}  {difference:>11}", shown(a), shown(b));
    }
    out
}

/// Each span of the trace in reading order, with its place and depth.
fn places(spans: &[Span]) -> Vec<(Place, &Span, usize)> {
    let mut paths: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    let mut seen: HashMap<Vec<(String, String)>, usize> = HashMap::new();
    let mut rows = Vec::new();
    for (depth, span) in model::tree(spans) {
        let mut path = paths.get(span.parent_span_id.as_str()).cloned().unwrap_or_default();
        path.push((span.service.clone(), span.name.clone()));
        paths.insert(span.span_id.as_str(), path.clone());
        let nth = seen.entry(path.clone()).or_insert(0);
        rows.push(((path, *nth), span, depth));
        *nth += 1;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: &str, service: &str, name: &str, millis: u64) -> Span {
        Span {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            service: service.into(),
            name: name.into(),
            kind: "server",
            start_unix_nano: 0,
            end_unix_nano: millis * 1_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn spans_pair_up_by_place_and_the_difference_shows() {
        let fast = [
            span("1", "", "apiserver", "GET /v1/todo/{id}", 3),
            span("2", "1", "apiserver", "GetTodo", 2),
            span("3", "2", "todomanager", "db-get", 1),
        ];
        let slow = [
            span("a", "", "apiserver", "GET /v1/todo/{id}", 103),
            span("b", "a", "apiserver", "GetTodo", 2),
            span("c", "a", "apiserver", "fault", 100),
        ];
        let table = render(&fast, &slow);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[1].starts_with("apiserver  GET /v1/todo/{id}") && lines[1].ends_with("+100.00 ms"), "{table}");
        assert!(lines[2].ends_with("+0 µs"), "{table}");
        assert!(lines[3].contains("todomanager  db-get") && lines[3].ends_with("only in A"), "{table}");
        assert!(lines[4].contains("apiserver  fault") && lines[4].ends_with("only in B"), "{table}");
    }
}
