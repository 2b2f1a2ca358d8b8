//! The computations behind the questions: each reads the traces (or logs) there are now and
//! says what the answer is, and why.

use std::{
    path::Path,
    time::{Duration, SystemTime},
};

use anyhow::Context;
use serde::Deserialize;
use tracestore::model::{self, Span};

use super::Question;
use crate::{
    jaeger::{Jaeger, Search},
    waterfall::duration,
};

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The slowest trace whose root span is `operation`: the span that spent the most time
    /// itself (self time). Answer: `service span-name`.
    MostSelfTime,
    /// The newest trace whose root span is `operation`: the span(s) marked as errors.
    /// Answer: `service span-name`.
    ErrorSpan,
    /// The newest trace whose root span is `operation` and that failed: the span where the
    /// failure started (the deepest one marked as an error). Answer: `service span-name`.
    WhereItFailed,
    /// Of the requests whose log says `grep` (every failure is logged, traced or not), how many
    /// left a trace in the store. Answer: `all`, `some` or `none`.
    FailuresKept,
    /// The trace of the newest log line containing `grep`. Answer: its trace id.
    TraceOfLogLine,
}

/// The right answer, and why.
pub struct Truth {
    pub answer: String,
    pub why: String,
    expect: Expect,
}

/// What a learner's answer must say, case and spacing aside.
enum Expect {
    /// A number or an id: exactly this.
    Exactly(String),
    /// A span: its service as a word of its own, and its name.
    Span { service: String, name: String },
}

impl Truth {
    pub fn accepts(&self, answer: &str) -> bool {
        let answer = normal(answer);
        match &self.expect {
            Expect::Exactly(value) => answer == normal(value),
            Expect::Span { service, name } => {
                let words = answer.split(|c: char| c.is_whitespace() || ",:;()".contains(c));
                words.into_iter().any(|word| word == normal(service)) && answer.contains(&normal(name))
            }
        }
    }
}

fn normal(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// A question's parameters make sense for its computation.
pub fn check(question: &Question) -> anyhow::Result<()> {
    match question.compute {
        Kind::MostSelfTime | Kind::ErrorSpan | Kind::WhereItFailed => {
            anyhow::ensure!(question.operation.is_some(), "{:?} needs `operation`", question.compute)
        }
        Kind::TraceOfLogLine | Kind::FailuresKept => {
            anyhow::ensure!(question.grep.is_some(), "{:?} needs `grep`", question.compute)
        }
    }
    Ok(())
}

pub fn answer(question: &Question, jaeger: &Jaeger, logs: &Path) -> anyhow::Result<Truth> {
    let since = Duration::from_secs(question.minutes * 60);
    match question.compute {
        Kind::TraceOfLogLine => {
            let text = question.grep.as_deref().unwrap_or_default();
            let lines = crate::logs::read_all(logs)?;
            let line = lines
                .iter()
                .rev()
                .find(|line| line.text.contains(text) && line.trace_id().is_some())
                .with_context(|| format!("no log line in {} says {text:?} inside a trace yet", logs.display()))?;
            let id = line.trace_id().unwrap_or_default().to_owned();
            Ok(Truth {
                why: format!("the newest line saying {text:?} is {}'s, and ends with trace_id={id}", line.service),
                expect: Expect::Exactly(id.clone()),
                answer: id,
            })
        }
        Kind::FailuresKept => {
            let text = question.grep.as_deref().unwrap_or_default();
            let cutoff = humantime::format_rfc3339(SystemTime::now() - since).to_string();
            let lines = crate::logs::read_all(logs)?;
            let failed: Vec<&str> = lines
                .iter()
                .filter(|line| line.text.contains(text) && line.timestamp.as_str() >= cutoff.trim_end_matches('Z'))
                .filter_map(|line| line.trace_id())
                .collect();
            anyhow::ensure!(
                !failed.is_empty(),
                "no log line of the last {} minutes says {text:?}: send some requests first",
                question.minutes
            );
            let mut kept = 0;
            for trace_id in &failed {
                kept += usize::from(jaeger.trace(trace_id)?.is_some_and(|spans| !spans.is_empty()));
            }
            Ok(failures_kept(failed.len(), kept))
        }
        kind => {
            let operation = question.operation.as_deref().unwrap_or_default();
            let traces = rooted_at(jaeger, operation, since)?;
            anyhow::ensure!(
                !traces.is_empty(),
                "no trace of {operation} in the last {} minutes: send some requests first",
                question.minutes
            );
            Ok(match kind {
                Kind::MostSelfTime => most_self_time(&traces),
                Kind::ErrorSpan => error_span(&traces[0]),
                Kind::WhereItFailed => where_it_failed(&traces, operation)?,
                Kind::TraceOfLogLine | Kind::FailuresKept => unreachable!("handled above"),
            })
        }
    }
}

/// The traces of the last `since` whose root span is named `operation`, newest first.
fn rooted_at(jaeger: &Jaeger, operation: &str, since: Duration) -> anyhow::Result<Vec<Vec<Span>>> {
    let mut traces = Vec::new();
    let mut known = std::collections::HashSet::new();
    for service in jaeger.services()? {
        let search = Search { limit: 1000, ..Search::of(&service, Some(operation), SystemTime::now() - since) };
        for trace in jaeger.search(&search)? {
            let is_root = |span: &Span| span.parent_span_id.is_empty() && span.name == operation;
            if trace.iter().any(is_root) && known.insert(trace[0].trace_id.clone()) {
                traces.push(trace);
            }
        }
    }
    let start = |trace: &Vec<Span>| trace.iter().map(|span| span.start_unix_nano).min().unwrap_or_default();
    traces.sort_by_key(|trace| std::cmp::Reverse(start(trace)));
    Ok(traces)
}

fn root(trace: &[Span]) -> &Span {
    trace.iter().find(|span| span.parent_span_id.is_empty()).unwrap_or(&trace[0])
}

fn most_self_time(traces: &[Vec<Span>]) -> Truth {
    let slowest = traces.iter().max_by_key(|trace| root(trace).duration_nanos()).expect("not empty");
    let (span, own) = slowest
        .iter()
        .map(|span| (span, model::self_time(span, slowest)))
        .max_by_key(|(_, own)| *own)
        .expect("a trace has spans");
    Truth {
        answer: format!("{} {}", span.service, span.name),
        why: format!(
            "the slowest is trace {} ({}); of it, {} spent {} itself, outside any span below it",
            span.trace_id,
            duration(root(slowest).duration_nanos()),
            span.name,
            duration(own)
        ),
        expect: Expect::Span { service: span.service.clone(), name: span.name.clone() },
    }
}

fn error_span(trace: &[Span]) -> Truth {
    let failed: Vec<&Span> =
        model::tree(trace).into_iter().map(|(_, span)| span).filter(|span| span.is_error).collect();
    let Some(first) = failed.first() else {
        return Truth {
            answer: "none".into(),
            why: format!("no span of the newest trace ({}) is marked as an error", trace[0].trace_id),
            expect: Expect::Exactly("none".into()),
        };
    };
    let names: Vec<String> = failed.iter().map(|span| format!("{} {}", span.service, span.name)).collect();
    Truth {
        answer: names.join(", "),
        why: format!(
            "in the newest trace ({}), {} has status Error{}",
            first.trace_id,
            names.join(" and "),
            first.attributes.get("error.type").map_or(String::new(), |kind| format!(", error.type {kind}"))
        ),
        expect: Expect::Span { service: first.service.clone(), name: first.name.clone() },
    }
}

/// Where the newest failed trace's failure started: its deepest error span, and whether the
/// request got past the service that failed it.
fn where_it_failed(traces: &[Vec<Span>], operation: &str) -> anyhow::Result<Truth> {
    let failed = traces
        .iter()
        .find(|trace| trace.iter().any(|span| span.is_error))
        .with_context(|| format!("none of the {} traces of {operation} failed: send more requests", traces.len()))?;
    let (_, deepest) = model::tree(failed)
        .into_iter()
        .filter(|(_, span)| span.is_error)
        .max_by_key(|(depth, _)| *depth)
        .expect("a failed trace has an error span");
    let services: std::collections::BTreeSet<&str> = failed.iter().map(|span| span.service.as_str()).collect();
    let services: Vec<&str> = services.into_iter().collect();
    Ok(Truth {
        answer: format!("{} {}", deepest.service, deepest.name),
        why: format!(
            "in the newest failed trace ({}), the deepest span marked as an error is {} {}{}; the trace has spans of {} only",
            deepest.trace_id,
            deepest.service,
            deepest.name,
            deepest
                .attributes
                .get("fault.injected")
                .map_or(String::new(), |fault| format!(" (fault.injected {fault})")),
            services.join(" and ")
        ),
        expect: Expect::Span { service: deepest.service.clone(), name: deepest.name.clone() },
    })
}

/// Of `failed` requests, `kept` left a trace.
fn failures_kept(failed: usize, kept: usize) -> Truth {
    let answer = match kept {
        0 => "none",
        kept if kept >= failed => "all",
        _ => "some",
    };
    Truth {
        answer: answer.into(),
        why: format!(
            "{failed} requests failed (each logged it, with its trace id); {kept} of those traces are in the store: \
             head sampling decides when a trace starts, before anyone knows it will fail"
        ),
        expect: Expect::Exactly(answer.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_kept_is_all_some_or_none() {
        assert_eq!(failures_kept(12, 12).answer, "all");
        assert_eq!(failures_kept(12, 1).answer, "some");
        assert_eq!(failures_kept(12, 0).answer, "none");
        assert!(failures_kept(12, 1).why.starts_with("12 requests failed"));
    }

    #[test]
    fn answers_are_read_generously_but_not_loosely() {
        let span_answer = Truth {
            answer: "todomanager todo_mgr.TodoManager/ListTodos".into(),
            why: String::new(),
            expect: Expect::Span { service: "todomanager".into(), name: "todo_mgr.TodoManager/ListTodos".into() },
        };
        assert!(span_answer.accepts("todomanager   todo_mgr.TodoManager/ListTodos"));
        assert!(span_answer.accepts("the ListTodos span todo_mgr.todomanager/listtodos of TODOMANAGER"));
        assert!(!span_answer.accepts("apiserver todo_mgr.TodoManager/ListTodos"));
        let count = Truth { answer: "3".into(), why: String::new(), expect: Expect::Exactly("3".into()) };
        assert!(count.accepts(" 3 "));
        assert!(!count.accepts("13") && !count.accepts("3 or 4"));
    }
}
