//! A workaround, not the lesson: the SDK's batch processor logs every failed export, and sends
//! a batch whole or not at all. Wrapped around the OTLP exporter,
//! - a collector that is down costs one warning, not a warning per batch (a new kind of error
//!   is always told), with the count of spans lost;
//! - one oversized span never costs a whole batch: a batch is sent in parts that fit the
//!   receiver's message limit, and a span too big for any part is dropped, counted and told.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter},
};

/// How often a collector that stays down is mentioned again.
const REMIND_EVERY: Duration = Duration::from_secs(60);

/// The most one export request carries, estimated: under the 4 MiB that gRPC servers (the
/// OpenTelemetry Collector's OTLP receiver and Jaeger among them) accept by default, with room
/// for the resource and the encoding's overhead.
pub const MAX_EXPORT_BYTES: usize = 3 * 1024 * 1024;

/// Passes spans on to `inner`, and tells in the log when exporting starts failing, every
/// [`REMIND_EVERY`] while it goes on failing, and when it works again.
#[derive(Debug)]
pub struct QuietExporter<E> {
    inner: E,
    failed_batches: AtomicU64,
    /// Spans lost, in failed exports or for their size, since the process started.
    dropped_spans: AtomicU64,
    /// When the last warning was written, and about which error.
    last_warning: Mutex<Option<(Instant, String)>>,
}

impl<E> QuietExporter<E> {
    pub fn new(inner: E) -> Self {
        Self {
            inner,
            failed_batches: AtomicU64::new(0),
            dropped_spans: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        }
    }

    /// Spans lost since the process started (failed exports, oversized spans).
    pub fn dropped_spans(&self) -> u64 {
        self.dropped_spans.load(Ordering::Relaxed)
    }

    fn warn(&self, error: &str, spans: usize) {
        let dropped = self.dropped_spans.fetch_add(spans as u64, Ordering::Relaxed) + spans as u64;
        let failed = self.failed_batches.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_warning.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let told = last.as_ref().is_some_and(|(at, said)| said == error && at.elapsed() < REMIND_EVERY);
        if !told {
            tracing::warn!(%error, spans, failed_batches = failed, dropped_spans = dropped,
                "cannot export spans (is the collector up?); dropping them, next reminder in 60s");
            *last = Some((Instant::now(), error.to_owned()));
        }
    }
}

impl<E: SpanExporter> SpanExporter for QuietExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let (parts, oversized) = split(batch, MAX_EXPORT_BYTES);
        if !oversized.is_empty() {
            let dropped =
                self.dropped_spans.fetch_add(oversized.len() as u64, Ordering::Relaxed) + oversized.len() as u64;
            for span in &oversized {
                tracing::warn!(span = %span.name, bytes = super::value_limits::estimated_bytes(span), limit = MAX_EXPORT_BYTES,
                    dropped_spans = dropped, "a span too big to export was dropped (lower OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT)");
            }
        }
        let mut result = Ok(());
        for part in parts {
            let spans = part.len();
            match self.inner.export(part).await {
                Ok(()) => {
                    let failed = self.failed_batches.swap(0, Ordering::Relaxed);
                    if failed > 0 {
                        tracing::info!(failed_batches = failed, "exporting spans works again");
                        *self.last_warning.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
                    }
                }
                Err(error) => {
                    self.warn(&error.to_string(), spans);
                    result = Err(error);
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The batch in parts of at most `max_bytes` each (estimated), in order, and the spans too big
/// for any part.
fn split(batch: Vec<SpanData>, max_bytes: usize) -> (Vec<Vec<SpanData>>, Vec<SpanData>) {
    let (mut parts, mut oversized) = (Vec::new(), Vec::new());
    let (mut part, mut bytes) = (Vec::new(), 0);
    for span in batch {
        let size = super::value_limits::estimated_bytes(&span);
        if size > max_bytes {
            oversized.push(span);
            continue;
        }
        if bytes + size > max_bytes && !part.is_empty() {
            parts.push(std::mem::take(&mut part));
            bytes = 0;
        }
        bytes += size;
        part.push(span);
    }
    if !part.is_empty() {
        parts.push(part);
    }
    (parts, oversized)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::KeyValue;

    use super::*;

    /// Keeps the name of every span it is given, in order.
    #[derive(Debug, Default, Clone)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl SpanExporter for Recorder {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().extend(batch.iter().map(|span| span.name.to_string()));
            Ok(())
        }
    }

    fn span(name: &'static str, payload: usize) -> SpanData {
        use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: name.into(),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: vec![KeyValue::new("payload", "x".repeat(payload))],
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    /// A batch with one huge span: every other span is exported, in parts that fit, and the
    /// huge one is dropped and counted. (Sent whole, the batch went over the receiver's 4 MiB
    /// limit and all 30 spans were lost.)
    #[tokio::test]
    async fn one_huge_span_never_costs_the_batch() {
        let exported = Recorder::default();
        let quiet = QuietExporter::new(exported.clone());
        let mut batch: Vec<SpanData> = (0..29).map(|_| span("small", 200_000)).collect();
        batch.insert(7, span("huge", 5_000_000));
        quiet.export(batch).await.unwrap();
        let spans = exported.0.lock().unwrap().clone();
        assert_eq!(spans.len(), 29);
        assert!(spans.iter().all(|name| name == "small"));
        assert_eq!(quiet.dropped_spans(), 1);
    }

    #[test]
    fn parts_keep_order_and_fit() {
        let batch: Vec<SpanData> = (0..10).map(|_| span("s", 1_000_000)).collect();
        let (parts, oversized) = split(batch, MAX_EXPORT_BYTES);
        assert!(oversized.is_empty());
        assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3, 1]);
    }
}
