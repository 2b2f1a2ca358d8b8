//! Propagation: how a trace crosses from one process to the next, in request headers.
//!
//! Incoming requests are read in every format a caller may use: W3C `traceparent`/`tracestate`
//! (OpenTelemetry, Linkerd, Traefik), B3 single `b3` and B3 multi `X-B3-*` (Zipkin, older
//! ingress controllers). When both W3C and B3 arrive, W3C wins, as in Linkerd. Outgoing calls
//! carry the formats that `OTEL_PROPAGATORS` names (default `tracecontext,baggage,b3multi`).

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapCompositePropagator, TextMapPropagator, text_map_propagator::FieldIter},
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
};
use opentelemetry_propagator_b3::{B3Encoding, Propagator as B3Propagator};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

pub const DEFAULT_PROPAGATORS: &str = "tracecontext,baggage,b3multi";

/// The propagator for this process: injects what `OTEL_PROPAGATORS` (a comma-separated list)
/// names, extracts every format it knows.
pub fn from_env() -> anyhow::Result<Propagator> {
    let names = std::env::var("OTEL_PROPAGATORS").unwrap_or_else(|_| DEFAULT_PROPAGATORS.into());
    Propagator::new(&names)
}

#[derive(Debug)]
pub struct Propagator {
    inject: TextMapCompositePropagator,
    w3c: TraceContextPropagator,
    b3: B3,
    baggage: BaggagePropagator,
}

impl Propagator {
    /// `names` as in `OTEL_PROPAGATORS`: `tracecontext`, `baggage`, `b3` (single header),
    /// `b3multi`, `none`.
    pub fn new(names: &str) -> anyhow::Result<Self> {
        let mut inject: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
        for name in names.split(',').map(str::trim).filter(|name| !name.is_empty()) {
            match name {
                "tracecontext" => inject.push(Box::new(TraceContextPropagator::new())),
                "baggage" => inject.push(Box::new(BaggagePropagator::new())),
                "b3" => inject.push(Box::new(B3::new(B3Encoding::SingleHeader))),
                "b3multi" => inject.push(Box::new(B3::new(B3Encoding::MultipleHeader))),
                "none" => {}
                other => anyhow::bail!(
                    "OTEL_PROPAGATORS names {other:?}; known here: tracecontext, baggage, b3, b3multi, none"
                ),
            }
        }
        Ok(Self {
            inject: TextMapCompositePropagator::new(inject),
            w3c: TraceContextPropagator::new(),
            b3: B3::reader(),
            baggage: BaggagePropagator::new(),
        })
    }
}

/// W3C Trace Context is read as the specification parses it (§4.3 of Trace Context Level 1):
/// the SDK's own reader accepts `00-1-2-01` (short ids, padded); a `traceparent` the
/// specification rejects is ignored, as if it had not been sent.
/// `version-traceid-parentid-flags`: 2, 32, 16 and 2 lower-case hex digits; version `ff` is
/// invalid; version `00` has exactly these four fields, a later version may have more after a
/// `-`; neither id may be all zeros.
fn is_valid_traceparent(value: &str) -> bool {
    let hex = |field: &str, length: usize| {
        field.len() == length && field.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    };
    let mut fields = value.split('-');
    let (Some(version), Some(trace_id), Some(parent_id), Some(flags)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    let more = fields.next().is_some();
    hex(version, 2)
        && version != "ff"
        && (!more || version != "00")
        && hex(trace_id, 32)
        && hex(parent_id, 16)
        && hex(flags, 2)
        && trace_id.bytes().any(|byte| byte != b'0')
        && parent_id.bytes().any(|byte| byte != b'0')
}

impl TextMapPropagator for Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.inject.inject_context(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        // W3C wins over B3: with a valid `traceparent`, the B3 headers are not even read (six
        // header lookups fewer per request).
        let cx = match extractor.get("traceparent") {
            Some(value) if is_valid_traceparent(value.trim()) => self.w3c.extract_with_context(cx, extractor),
            _ => self.b3.extract_with_context(cx, extractor),
        };
        self.baggage.extract_with_context(&cx, extractor)
    }

    fn fields(&self) -> FieldIter<'_> {
        self.inject.fields()
    }
}

/// B3 as `opentelemetry-propagator-b3` reads and writes it (single and multi headers, 64- and
/// 128-bit trace ids, the `d` debug flag), plus one case it leaves out: a bare "do not sample"
/// (`b3: 0`, or `X-B3-Sampled: 0` without ids). That decision must hold here and downstream,
/// so it becomes an unsampled parent with fresh ids: nothing of this trace gets recorded.
#[derive(Debug)]
struct B3(B3Propagator, B3Encoding);

struct SingleHeaderOnly<'a>(&'a mut dyn Injector);

impl Injector for SingleHeaderOnly<'_> {
    fn set(&mut self, key: &str, value: String) {
        if key == "b3" {
            self.0.set(key, value);
        }
    }
}

impl B3 {
    fn new(encoding: B3Encoding) -> Self {
        Self(B3Propagator::with_encoding(encoding.clone()), encoding)
    }

    /// For reading: both encodings, so the single header's `d` (debug) is understood too.
    fn reader() -> Self {
        Self::new(B3Encoding::SingleAndMultiHeader)
    }
}

impl TextMapPropagator for B3 {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        if matches!(self.1, B3Encoding::SingleHeader) {
            // The crate writes the X-B3-* headers for every encoding; `b3` alone means `b3` alone.
            self.0.inject_context(cx, &mut SingleHeaderOnly(injector));
        } else {
            self.0.inject_context(cx, injector);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let extracted = self.0.extract_with_context(cx, extractor);
        let found = extracted.span().span_context().clone();
        if found.is_valid() {
            // The crate keeps B3's "debug" (0x04) and "deferred" (0x02, no decision sent) as
            // extra flags that OpenTelemetry's samplers read as "not sampled". Debug means
            // sampled; deferred leaves the decision to us, and we record everything.
            let sampled = found.trace_flags().to_u8() & 0b111 != 0;
            let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
            let normalized =
                SpanContext::new(found.trace_id(), found.span_id(), flags, true, found.trace_state().clone());
            return cx.with_remote_span_context(normalized);
        }
        if !denies_sampling(extractor) {
            return extracted;
        }
        let unsampled = SpanContext::new(
            TraceId::from_bytes(uuid::Uuid::new_v4().into_bytes()),
            SpanId::from_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().expect("8 bytes")),
            TraceFlags::default(),
            true,
            TraceState::default(),
        );
        cx.with_remote_span_context(unsampled)
    }

    fn fields(&self) -> FieldIter<'_> {
        self.0.fields()
    }
}

fn denies_sampling(extractor: &dyn Extractor) -> bool {
    let b3_single = extractor.get("b3").map(str::trim);
    let b3_sampled = extractor.get("x-b3-sampled").map(str::trim);
    b3_single == Some("0") || (b3_single.is_none() && b3_sampled == Some("0"))
}

/// The trace context that came with a request's headers (HTTP headers or gRPC metadata).
pub fn extract(headers: &http::HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    })
}

/// Writes `cx` into an outgoing request's headers, in the configured formats.
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut opentelemetry_http::HeaderInjector(headers))
    });
}

#[cfg(test)]
mod tests {
    //! The cases of the B3 specification (github.com/openzipkin/b3-propagation) and W3C.

    use std::collections::HashMap;

    use super::*;

    fn extract_from(propagator: &Propagator, headers: &[(&str, &str)]) -> SpanContext {
        let carrier: HashMap<String, String> =
            headers.iter().map(|(name, value)| (name.to_lowercase(), value.to_string())).collect();
        propagator.extract_with_context(&Context::new(), &carrier).span().span_context().clone()
    }

    fn default_propagator() -> Propagator {
        Propagator::new(DEFAULT_PROPAGATORS).unwrap()
    }

    const TRACE_128: &str = "80f198ee56343ba864fe8b2a57d3eff7";
    const TRACE_64: &str = "a3ce929d0e0e4736";
    const SPAN: &str = "e457b5a2e4d86bd1";

    #[test]
    fn b3_multi_with_a_128_bit_trace_id() {
        let cx = extract_from(
            &default_propagator(),
            &[
                ("X-B3-TraceId", TRACE_128),
                ("X-B3-SpanId", SPAN),
                ("X-B3-ParentSpanId", "05e3ac9a4f6e3b90"),
                ("X-B3-Sampled", "1"),
            ],
        );
        assert_eq!(cx.trace_id().to_string(), TRACE_128);
        assert_eq!(cx.span_id().to_string(), SPAN);
        assert!(cx.is_sampled() && cx.is_remote());
    }

    #[test]
    fn b3_multi_with_a_64_bit_trace_id_is_left_padded() {
        let cx = extract_from(&default_propagator(), &[("X-B3-TraceId", TRACE_64), ("X-B3-SpanId", SPAN)]);
        assert_eq!(cx.trace_id().to_string(), format!("0000000000000000{TRACE_64}"));
    }

    #[test]
    fn b3_multi_not_sampled() {
        let cx = extract_from(
            &default_propagator(),
            &[("X-B3-TraceId", TRACE_128), ("X-B3-SpanId", SPAN), ("X-B3-Sampled", "0")],
        );
        assert!(cx.is_valid() && !cx.is_sampled());
    }

    #[test]
    fn b3_deferred_decision_is_ours_and_we_sample() {
        let cx = extract_from(&default_propagator(), &[("X-B3-TraceId", TRACE_128), ("X-B3-SpanId", SPAN)]);
        assert!(cx.is_sampled());
    }

    #[test]
    fn b3_debug_flag_means_sampled() {
        let cx = extract_from(
            &default_propagator(),
            &[("X-B3-TraceId", TRACE_128), ("X-B3-SpanId", SPAN), ("X-B3-Flags", "1")],
        );
        assert!(cx.is_sampled());
        let cx = extract_from(&default_propagator(), &[("b3", &format!("{TRACE_128}-{SPAN}-d"))]);
        assert!(cx.is_sampled());
    }

    #[test]
    fn b3_single_header() {
        let cx = extract_from(&default_propagator(), &[("b3", &format!("{TRACE_128}-{SPAN}-1-05e3ac9a4f6e3b90"))]);
        assert_eq!((cx.trace_id().to_string(), cx.span_id().to_string()), (TRACE_128.into(), SPAN.into()));
        assert!(cx.is_sampled());
        let cx = extract_from(&default_propagator(), &[("b3", &format!("{TRACE_64}-{SPAN}-0"))]);
        assert!(cx.is_valid() && !cx.is_sampled());
    }

    #[test]
    fn b3_deny_sampling_alone_gives_an_unsampled_parent() {
        for headers in [[("b3", "0")].as_slice(), [("X-B3-Sampled", "0")].as_slice()] {
            let cx = extract_from(&default_propagator(), headers);
            assert!(cx.is_valid() && !cx.is_sampled(), "{headers:?}");
        }
        // Without any header there is no parent: a new trace starts.
        assert!(!extract_from(&default_propagator(), &[]).is_valid());
    }

    #[test]
    fn w3c_traceparent_and_w3c_wins_over_b3() {
        let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let cx = extract_from(&default_propagator(), &[("traceparent", traceparent)]);
        assert_eq!(cx.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
        let both = [("traceparent", traceparent), ("X-B3-TraceId", TRACE_128), ("X-B3-SpanId", SPAN)];
        assert_eq!(
            extract_from(&default_propagator(), &both).trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        let unsampled = extract_from(&default_propagator(), &[("traceparent", &traceparent.replace("-01", "-00"))]);
        assert!(unsampled.is_valid() && !unsampled.is_sampled());
    }

    #[test]
    fn traceparents_the_specification_rejects_are_ignored() {
        let valid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        assert!(extract_from(&default_propagator(), &[("traceparent", valid)]).is_valid());
        for invalid in [
            "00-1-2-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert!(!extract_from(&default_propagator(), &[("traceparent", invalid)]).is_valid(), "{invalid}");
        }
        // A later version may carry more fields.
        let future = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-comes-next";
        assert!(extract_from(&default_propagator(), &[("traceparent", future)]).is_valid());
        // An invalid traceparent does not hide a valid B3 context.
        let both = [("traceparent", "00-1-2-01"), ("X-B3-TraceId", TRACE_128), ("X-B3-SpanId", SPAN)];
        assert_eq!(extract_from(&default_propagator(), &both).trace_id().to_string(), TRACE_128);
    }

    #[test]
    fn injects_what_otel_propagators_names() {
        let cx = Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_hex(TRACE_128).unwrap(),
            SpanId::from_hex(SPAN).unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ));
        let injected = |names: &str| {
            let mut carrier = HashMap::new();
            Propagator::new(names).unwrap().inject_context(&cx, &mut carrier);
            let mut keys: Vec<String> = carrier.into_keys().collect();
            keys.sort();
            keys
        };
        assert_eq!(
            injected(DEFAULT_PROPAGATORS),
            ["traceparent", "tracestate", "x-b3-sampled", "x-b3-spanid", "x-b3-traceid"]
        );
        assert_eq!(injected("b3"), ["b3"]);
        assert_eq!(injected("none"), Vec::<String>::new());
        assert!(Propagator::new("jaeger").is_err());
    }
}
