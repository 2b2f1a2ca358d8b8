//! A ✗ turned into a sentence: what is wrong with the trace, and what to do next.

use std::time::{Duration, SystemTime};

use tracestore::model::Span;

use crate::expect::{ExpectedSpan, glob};

use super::{Verifier, matcher::Failure};

impl Verifier<'_> {
    /// Turns a failure into a sentence that says what is wrong and what to do.
    pub(super) fn diagnose(&self, failure: &Failure, expected: &ExpectedSpan, all: &[ExpectedSpan]) -> String {
        let service = match failure {
            Failure::Other(text) => return text.clone(),
            Failure::NotInTrace(text) => {
                return match self.root_span_elsewhere(&expected.service, &expected.name) {
                    None if expected.why.is_some() => {
                        format!("{text}: {}", expected.why.as_deref().unwrap_or_default())
                    }
                    Some(span) => format!(
                        "{} reported `{}` in another trace ({}) as a root span: it was made where no span was \
                         current. Work handed to a task of its own (tokio::spawn) does not take the current span \
                         along by itself.",
                        span.service, span.name, span.trace_id
                    ),
                    None => text.clone(),
                };
            }
            Failure::NoSpansFrom(service) => match &expected.why {
                // Unless the span is plainly elsewhere (a trace of its own), the expectation
                // knows better than the general guesses below.
                Some(why) if self.root_span_elsewhere(service, &expected.name).is_none() => {
                    return format!("no span from {service} in this trace: {why}");
                }
                _ => service,
            },
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

    /// A recent root span of `service` named like `name`: one that should have been in a
    /// trace and started its own.
    pub(super) fn root_span_elsewhere(&self, service: &str, name: &str) -> Option<Span> {
        let recent = self.jaeger.find(service, None, SystemTime::now() - Duration::from_secs(300)).unwrap_or_default();
        recent.into_iter().find(|span| glob(name, &span.name) && span.parent_span_id.is_empty())
    }
}
