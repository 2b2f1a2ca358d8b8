//! A trace drawn in the terminal: one line per span, nested under its parent, with a bar that
//! shows when it ran and for how long, to scale. Errors are marked with ✗ (and red, in colour).

use std::{fmt::Write as _, io::IsTerminal};

use tracestore::model::{self, Span};

/// Width of the timeline, in characters.
const LANE: usize = 40;

/// Colours when stdout is a terminal and `NO_COLOR` is not set.
pub fn colours_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

pub fn render(spans: &[Span], colour: bool) -> String {
    let tree = model::tree(spans);
    let start = spans.iter().map(|span| span.start_unix_nano).min().unwrap_or_default();
    let end = spans.iter().map(|span| span.end_unix_nano).max().unwrap_or_default();
    let total = end.saturating_sub(start).max(1);
    let service_width = spans.iter().map(|span| span.service.chars().count()).max().unwrap_or(0);
    let label_width = tree.iter().map(|(depth, span)| depth * 2 + span.name.chars().count()).max().unwrap_or(0);

    let mut out = String::new();
    for (depth, span) in tree {
        let from = ((span.start_unix_nano.saturating_sub(start)) as f64 / total as f64 * LANE as f64) as usize;
        let length = ((span.duration_nanos() as f64 / total as f64 * LANE as f64).round() as usize).max(1);
        let from = from.min(LANE - 1);
        let length = length.min(LANE - from);
        let bar = format!("{}{}{}", " ".repeat(from), "█".repeat(length), " ".repeat(LANE - from - length));
        let label = format!("{}{}", "  ".repeat(depth), span.name);
        let mark = if span.is_error { "✗" } else { " " };
        let line = format!(
            "{mark} {:<service_width$}  {label:<label_width$}  {:>10}  |{bar}|",
            span.service,
            duration(span.duration_nanos()),
        );
        if colour && span.is_error {
            let _ = writeln!(out, "\x1b[31m{line}\x1b[0m");
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// `12.34 ms`, `456 µs`, `1.20 s`.
pub fn duration(nanos: u64) -> String {
    match nanos {
        n if n >= 1_000_000_000 => format!("{:.2} s", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2} ms", n as f64 / 1e6),
        n => format!("{} µs", n / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(service: &str, name: &str, id: &str, parent: &str, start_us: u64, end_us: u64, error: bool) -> Span {
        Span {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            service: service.into(),
            name: name.into(),
            kind: "internal",
            start_unix_nano: 1_000_000_000 + start_us * 1000,
            end_unix_nano: 1_000_000_000 + end_us * 1000,
            is_error: error,
            ..Default::default()
        }
    }

    /// The picture of a fixed trace, character for character.
    #[test]
    fn snapshot_of_a_fixed_trace() {
        let spans = vec![
            span("todomanager", "db-create", "4", "3", 4_000, 6_000, false),
            span("apiserver", "POST /v1/todo", "1", "", 0, 10_000, false),
            span("todomanager", "todo_mgr.TodoManager/CreateTodo", "3", "2", 3_000, 7_000, false),
            span("apiserver", "todo_mgr.TodoManager/CreateTodo", "2", "1", 2_000, 8_000, true),
        ];
        let expected = "  \
apiserver    POST /v1/todo                          10.00 ms  |████████████████████████████████████████|
✗ apiserver      todo_mgr.TodoManager/CreateTodo       6.00 ms  |        ████████████████████████        |
  todomanager      todo_mgr.TodoManager/CreateTodo     4.00 ms  |            ████████████████            |
  todomanager        db-create                         2.00 ms  |                ████████                |
";
        assert_eq!(render(&spans, false), expected);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(456_000), "456 µs");
        assert_eq!(duration(12_345_678), "12.35 ms");
        assert_eq!(duration(1_200_000_000), "1.20 s");
    }
}
