//! Which traces are recorded, decided where each trace starts (head sampling).
//!
//! `OTEL_TRACES_SAMPLER` chooses the SDK's sampler by the standard names. For one of them,
//! `parentbased_traceidratio` (with `OTEL_TRACES_SAMPLER_ARG`, the share of new traces kept),
//! the services use their own, [`DebugOrRatio`]: what the standard name says, and besides every
//! request that asks for its trace with `X-Debug-Trace: 1`, whatever the share. At 1 % you still
//! get the trace of the request you are debugging.
//!
//! The header reaches the sampler as an attribute of the request's span, recorded when the span
//! is made ([`DEBUG_ATTRIBUTE`], in http.rs): a sampler sees the span's name, kind, attributes
//! and parent, nothing of the request itself.

use opentelemetry::{
    Context, KeyValue,
    trace::{Link, SpanKind, TraceId},
};
use opentelemetry_sdk::trace::{Sampler, SamplingResult, ShouldSample};

/// The request header that asks for a trace.
pub const DEBUG_HEADER: &str = "x-debug-trace";

/// The attribute of the HTTP span that carries it (semantic conventions 1.44.0:
/// `http.request.header.<key>`, the header's values).
pub const DEBUG_ATTRIBUTE: &str = "http.request.header.x-debug-trace";

/// Every request that asks for its trace; otherwise the caller's decision, and for a new trace
/// the share `ratio` of trace ids.
#[derive(Debug, Clone)]
pub struct DebugOrRatio {
    pub ratio: f64,
}

impl ShouldSample for DebugOrRatio {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let asked = attributes.iter().any(|attribute| attribute.key.as_str() == DEBUG_ATTRIBUTE);
        let sampler = if asked {
            Sampler::AlwaysOn
        } else {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(self.ratio)))
        };
        sampler.should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

/// Our sampler when `OTEL_TRACES_SAMPLER=parentbased_traceidratio`; `None` leaves the choice to
/// the SDK, which reads the same variables.
pub fn from_env() -> anyhow::Result<Option<DebugOrRatio>> {
    if std::env::var("OTEL_TRACES_SAMPLER").ok().as_deref() != Some("parentbased_traceidratio") {
        return Ok(None);
    }
    let ratio = match std::env::var("OTEL_TRACES_SAMPLER_ARG") {
        // The specification's default for a ratio sampler: keep everything.
        Err(_) => 1.0,
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => ratio,
            _ => anyhow::bail!("OTEL_TRACES_SAMPLER_ARG={text:?} is not a share between 0 and 1 (0.1 keeps a tenth)"),
        },
    };
    Ok(Some(DebugOrRatio { ratio }))
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
    use opentelemetry_sdk::trace::SamplingDecision;

    use super::*;

    fn decide(sampler: &DebugOrRatio, parent: Option<bool>, attributes: &[KeyValue]) -> SamplingDecision {
        let parent = parent.map(|sampled| {
            let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
            let span = SpanContext::new(TraceId::from(7), 9.into(), flags, true, TraceState::default());
            Context::new().with_remote_span_context(span)
        });
        let trace_id = TraceId::from(u128::MAX);
        sampler.should_sample(parent.as_ref(), trace_id, "GET /v1/todo", &SpanKind::Server, attributes, &[]).decision
    }

    #[test]
    fn a_request_that_asks_is_kept_whatever_the_share_and_the_caller() {
        let none = DebugOrRatio { ratio: 0.0 };
        let asked = [KeyValue::new(DEBUG_ATTRIBUTE, "1")];
        assert_eq!(decide(&none, None, &asked), SamplingDecision::RecordAndSample);
        assert_eq!(decide(&none, Some(false), &asked), SamplingDecision::RecordAndSample);
        assert_eq!(decide(&none, None, &[]), SamplingDecision::Drop);
        assert_eq!(decide(&none, Some(true), &[]), SamplingDecision::RecordAndSample, "the caller's decision");
        assert_eq!(decide(&DebugOrRatio { ratio: 1.0 }, Some(false), &[]), SamplingDecision::Drop);
    }
}
