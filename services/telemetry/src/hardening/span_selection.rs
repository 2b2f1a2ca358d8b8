//! Which spans and events become part of traces: our spans, and warnings and errors as events
//! of their span (the trace shows what went wrong). Informational log lines stay in the log,
//! which links to the trace by its ids; as span events they cost apiserver 21,000 instructions
//! per request (callgrind). Spans of the exporter's own HTTP/2 stack must not be traced: each
//! export would make more.
//!
//! A workaround, not the lesson: the natural way is tracing-subscriber's per-layer filter
//! (`layer.with_filter(filter_fn(wanted))`), but that makes every span and event be checked
//! again at run time for every layer; it cost todomanager 25,000 instructions per request (11 %).
//! This wrapper decides once per span or event, where it starts. One difference: a per-layer
//! filter also hides the spans it rejects from the layer's view of "the current span", this
//! wrapper does not; none of our spans starts inside one of the libraries' (they are made in
//! our middleware and handlers), so every parent stays right even with `RUST_LOG=debug`.

use std::any::TypeId;

use tracing::{Event, Metadata, Subscriber, span};
use tracing_subscriber::{Layer, layer::Context, registry::LookupSpan};

/// Whether a span or event with this metadata belongs in traces.
pub fn wanted(metadata: &Metadata<'_>) -> bool {
    let internal = ["h2", "hyper", "tonic", "tower", "reqwest", "opentelemetry"]
        .iter()
        .any(|internal| metadata.target().starts_with(internal));
    !internal && (metadata.is_span() || *metadata.level() <= tracing::Level::WARN)
}

/// Passes to `inner` (the OpenTelemetry layer) only the spans and events that are [`wanted`].
/// What happens later to a span it never saw (entered, recorded, closed), it ignores.
pub struct Select<L>(pub L);

impl<S, L> Layer<S> for Select<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.0.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if wanted(attrs.metadata()) {
            self.0.on_new_span(attrs, id, ctx);
        }
    }

    fn on_record(&self, span: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        self.0.on_record(span, values, ctx);
    }

    fn on_follows_from(&self, span: &span::Id, follows: &span::Id, ctx: Context<'_, S>) {
        self.0.on_follows_from(span, follows, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if wanted(event.metadata()) {
            self.0.on_event(event, ctx);
        }
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.0.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.0.on_exit(id, ctx);
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        self.0.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &span::Id, new: &span::Id, ctx: Context<'_, S>) {
        self.0.on_id_change(old, new, ctx);
    }

    // `OpenTelemetrySpanExt::context()` finds the OpenTelemetry layer by downcasting.
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(self as *const Self as *const ());
        }
        // SAFETY: forwarded as is; the inner layer answers for its own types.
        unsafe { self.0.downcast_raw(id) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_spans_and_warnings_are_wanted_not_info_lines_nor_the_exporters_spans() {
        let span = tracing::info_span!("db-get");
        assert!(wanted(span.metadata().unwrap()));
        let exporter = tracing::info_span!(target: "hyper::client", "send");
        assert!(!wanted(exporter.metadata().unwrap()));
    }
}
