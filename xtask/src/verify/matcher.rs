//! The span matcher: the expected spans, in order, against the observed ones, and what does not
//! match (a wrong parent, a missing attribute, a status) said of each.

use std::collections::{BTreeMap, HashMap, HashSet};

use regex::Regex;
use tracestore::model::Span;

use crate::expect::{ExpectedSpan, glob};

/// Why an expected span was not found as described.
pub(super) enum Failure {
    /// The trace holds no span at all from the span's service.
    NoSpansFrom(String),
    /// The service has spans in the trace, none by this name (what they are named, said).
    NotInTrace(String),
    Other(String),
}

/// How deep each expected span sits under the others (by parent/ancestor), for the report.
pub(super) fn depths(expected: &[ExpectedSpan]) -> Vec<usize> {
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
pub(super) fn check(expected: &[ExpectedSpan], spans: &[Span]) -> Vec<Result<String, Failure>> {
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
            Some((_, problems)) => Err(Failure::Other(match &want.why {
                Some(why) => format!("{}: {why}", problems.join("; ")),
                None => problems.join("; "),
            })),
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
pub(super) fn problems(
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
    if let Some(wanted) = want.parent_span_id.as_deref()
        && span.parent_span_id != wanted
    {
        problems.push(match span.parent_span_id.as_str() {
            "" => format!("`{}` has no parent, expected the caller's span {wanted}", span.name),
            other => format!("`{}` is a child of span {other}, expected the caller's span {wanted}", span.name),
        });
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
    compare("attribute", &want.attributes, &want.attributes_exist, &span.attributes, &mut problems);
    compare("resource attribute", &want.resource, &want.resource_exist, &span.resource, &mut problems);
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

/// What `actual` lacks of `equal` (keys and values) and of `exist` (keys), said of each.
fn compare(
    what: &str,
    equal: &BTreeMap<String, String>,
    exist: &[String],
    actual: &BTreeMap<String, String>,
    problems: &mut Vec<String>,
) {
    for (key, value) in equal {
        match actual.get(key) {
            Some(found) if found == value => {}
            Some(found) => problems.push(format!("{what} {key} is {found:?}, expected {value:?}")),
            None => problems.push(format!("{what} {key} is missing (expected {value:?})")),
        }
    }
    for key in exist.iter().filter(|key| !actual.contains_key(*key)) {
        problems.push(format!("{what} {key} is missing"));
    }
}
