//! `/debug/tracez`: this process's spans seen from the inside, like OpenCensus zPages. A span
//! processor keeps, per span name, the spans running now, counts per latency bucket and errors,
//! and a few recent samples of each; a small page shows them. It needs no collector at all:
//! when spans cannot be exported, this is where you still see them.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt::Write as _,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use axum::{
    Json, Router,
    extract::{Query, State},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use opentelemetry::{Context, trace::Status};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{Span, SpanData, SpanProcessor},
};
use serde::{Deserialize, Serialize};

/// Lower bounds of the latency buckets: [0, 10 µs), [10 µs, 100 µs), … [100 s, ∞).
pub const LATENCY_BOUNDS: [Duration; 9] = [
    Duration::ZERO,
    Duration::from_micros(10),
    Duration::from_micros(100),
    Duration::from_millis(1),
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_secs(1),
    Duration::from_secs(10),
    Duration::from_secs(100),
];
const BUCKET_LABELS: [&str; 9] = [
    "[0, 10µs)",
    "[10µs, 100µs)",
    "[100µs, 1ms)",
    "[1ms, 10ms)",
    "[10ms, 100ms)",
    "[100ms, 1s)",
    "[1s, 10s)",
    "[10s, 100s)",
    "[100s, ∞)",
];

/// Samples kept per bucket (and for errors): memory stays bounded.
const SAMPLES_PER_BUCKET: usize = 10;
/// A bucket takes a new sample at most this often (the first ten always): copying every
/// finished span for its sample cost apiserver ~3 % of its instructions per request at load
/// (callgrind); the counts stay exact.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Span names tracked at most; spans with further names are only counted in `untracked`.
const MAX_SPAN_NAMES: usize = 200;
/// The memory the finished samples may take, estimated; beyond it, new samples are kept
/// without their attributes and events (their counts stay right).
pub const MAX_SAMPLE_BYTES: usize = 8 * 1024 * 1024;

/// The shared record of spans. Clone it to hand it to the processor and to the page.
#[derive(Clone, Debug, Default)]
pub struct Tracez(Arc<Mutex<Spans>>);

#[derive(Debug, Default)]
struct Spans {
    by_name: BTreeMap<String, NameStats>,
    untracked: u64,
    /// What the finished samples take, estimated.
    sample_bytes: usize,
}

/// Spans are kept as the SDK hands them over and turned into [`Sample`]s only when the page is
/// asked for: the work stays off the path of every request.
#[derive(Debug, Default)]
struct NameStats {
    running: HashMap<opentelemetry::trace::SpanId, SpanData>,
    latency: [Bucket; 9],
    errors: Bucket,
}

#[derive(Debug, Default)]
struct Bucket {
    count: u64,
    /// Samples with their estimated size.
    samples: VecDeque<(Arc<SpanData>, usize)>,
}

impl Bucket {
    /// Whether a span that ended at `end` should be kept as a sample.
    fn wants_sample(&self, end: SystemTime) -> bool {
        match self.samples.back() {
            Some((newest, _)) if self.samples.len() == SAMPLES_PER_BUCKET => {
                end.duration_since(newest.end_time).is_ok_and(|since| since >= SAMPLE_EVERY)
            }
            _ => true,
        }
    }

    /// Keeps `sample`, displacing the oldest when full; returns the bytes that frees.
    fn add(&mut self, sample: Arc<SpanData>, bytes: usize) -> usize {
        self.count += 1;
        let freed = if self.samples.len() == SAMPLES_PER_BUCKET {
            self.samples.pop_front().map_or(0, |(_, bytes)| bytes)
        } else {
            0
        };
        self.samples.push_back((sample, bytes));
        freed
    }
}

/// One span as the page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub start: String,
    /// Microseconds; for a running span, so far.
    pub duration_us: u64,
    pub status: String,
    pub attributes: BTreeMap<String, String>,
}

impl Sample {
    fn of(span: &SpanData, end: SystemTime) -> Self {
        let duration = end.duration_since(span.start_time).unwrap_or_default();
        Self {
            trace_id: span.span_context.trace_id().to_string(),
            span_id: span.span_context.span_id().to_string(),
            parent_span_id: span.parent_span_id.to_string(),
            start: humantime::format_rfc3339_micros(span.start_time).to_string(),
            duration_us: duration.as_micros() as u64,
            status: match &span.status {
                Status::Unset => "unset".into(),
                Status::Ok => "ok".into(),
                Status::Error { description } => format!("error: {description}"),
            },
            attributes: span.attributes.iter().map(|kv| (kv.key.to_string(), kv.value.to_string())).collect(),
        }
    }
}

impl Tracez {
    fn spans(&self) -> MutexGuard<'_, Spans> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A span processor that records every span here, then hands it on to `next` (the
    /// exporter's batch processor). Finished spans come cut to the value limit already; copies
    /// of running spans are cut to `max_value_length` here.
    pub fn processor<P: SpanProcessor>(&self, next: P, max_value_length: usize) -> TracezProcessor<P> {
        TracezProcessor { tracez: self.clone(), next, max_value_length }
    }

    /// What the kept samples take, estimated, in bytes.
    pub fn sample_bytes(&self) -> usize {
        self.spans().sample_bytes
    }

    /// The page: `GET /debug/tracez` (HTML), `?format=json`, `?name=…&bucket=N|running|errors`.
    pub fn router(&self) -> Router {
        Router::new().route("/debug/tracez", get(page)).with_state(self.clone())
    }

    /// The summary and, when `query` names a span name and a bucket, its samples.
    pub fn report(&self, query: &TracezQuery) -> Report {
        let now = SystemTime::now();
        let spans = self.spans();
        let summary = spans
            .by_name
            .iter()
            .map(|(name, stats)| NameSummary {
                name: name.clone(),
                running: stats.running.len() as u64,
                latency: stats.latency.iter().map(|bucket| bucket.count).collect(),
                errors: stats.errors.count,
            })
            .collect();
        let samples = query.name.as_ref().and_then(|name| {
            let stats = spans.by_name.get(name)?;
            let finished =
                |bucket: &Bucket| bucket.samples.iter().map(|(span, _)| Sample::of(span, span.end_time)).collect();
            let samples: Vec<Sample> = match query.bucket.as_deref()? {
                "running" => stats.running.values().map(|span| Sample::of(span, now)).collect(),
                "errors" => finished(&stats.errors),
                index => finished(stats.latency.get(index.parse::<usize>().ok()?)?),
            };
            Some(samples)
        });
        Report {
            latency_bounds_us: LATENCY_BOUNDS.iter().map(|bound| bound.as_micros() as u64).collect(),
            spans: summary,
            untracked: spans.untracked,
            samples,
        }
    }
}

/// What `?format=json` answers.
#[derive(Debug, Serialize)]
pub struct Report {
    pub latency_bounds_us: Vec<u64>,
    pub spans: Vec<NameSummary>,
    /// Spans not tracked because there were too many different names.
    pub untracked: u64,
    /// The samples asked for with `name` and `bucket`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<Vec<Sample>>,
}

#[derive(Debug, Serialize)]
pub struct NameSummary {
    pub name: String,
    pub running: u64,
    /// Finished spans per latency bucket.
    pub latency: Vec<u64>,
    pub errors: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct TracezQuery {
    pub format: Option<String>,
    pub name: Option<String>,
    /// A bucket index (0–8), `running` or `errors`.
    pub bucket: Option<String>,
}

/// Feeds a [`Tracez`], then the next processor; called by the OpenTelemetry SDK for every
/// recorded span. One processor passing the span on, not two side by side: the SDK gives each
/// of several processors a copy of every span, and a single one the span itself.
#[derive(Debug)]
pub struct TracezProcessor<P> {
    tracez: Tracez,
    next: P,
    max_value_length: usize,
}

impl<P: SpanProcessor> SpanProcessor for TracezProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.record_start(span);
        self.next.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.record_end(&span);
        self.next.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.next.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.next.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.next.set_resource(resource);
    }
}

impl<P> TracezProcessor<P> {
    fn record_start(&self, span: &Span) {
        let Some(mut data) = span.exported_data() else { return };
        crate::hardening::value_limits::cut_values(&mut data, self.max_value_length);
        let mut spans = self.tracez.spans();
        if !spans.by_name.contains_key(data.name.as_ref()) {
            if spans.by_name.len() >= MAX_SPAN_NAMES {
                return;
            }
            spans.by_name.insert(data.name.to_string(), NameStats::default());
        }
        let stats = spans.by_name.get_mut(data.name.as_ref()).expect("just made sure");
        stats.running.insert(data.span_context.span_id(), data);
    }

    fn record_end(&self, span: &SpanData) {
        let mut spans = self.tracez.spans();
        let Spans { by_name, untracked, sample_bytes } = &mut *spans;
        let Some(stats) = by_name.get_mut(span.name.as_ref()) else {
            *untracked += 1;
            return;
        };
        stats.running.remove(&span.span_context.span_id());
        let duration = span.end_time.duration_since(span.start_time).unwrap_or_default();
        let bucket = LATENCY_BOUNDS.iter().rposition(|bound| duration >= *bound).unwrap_or(0);
        let is_error = matches!(span.status, Status::Error { .. });
        let sample_latency = stats.latency[bucket].wants_sample(span.end_time);
        let sample_error = is_error && stats.errors.wants_sample(span.end_time);
        if !sample_latency && !sample_error {
            stats.latency[bucket].count += 1;
            stats.errors.count += u64::from(is_error);
            return;
        }
        let mut sample = span.clone();
        let mut bytes = crate::hardening::value_limits::estimated_bytes(&sample);
        let copies = usize::from(sample_latency) + usize::from(sample_error);
        if *sample_bytes + copies * bytes > MAX_SAMPLE_BYTES {
            sample.dropped_attributes_count += sample.attributes.len() as u32;
            sample.attributes = Vec::new();
            sample.events.dropped_count += sample.events.events.len() as u32;
            sample.events.events = Vec::new();
            bytes = crate::hardening::value_limits::estimated_bytes(&sample);
        }
        let sample = Arc::new(sample);
        let mut keep = |bucket: &mut Bucket, wanted: bool| match wanted {
            true => {
                *sample_bytes += bytes;
                *sample_bytes -= bucket.add(sample.clone(), bytes);
            }
            false => bucket.count += 1,
        };
        keep(&mut stats.latency[bucket], sample_latency);
        if is_error {
            keep(&mut stats.errors, sample_error);
        }
    }
}

async fn page(State(tracez): State<Tracez>, Query(query): Query<TracezQuery>) -> Response {
    let report = tracez.report(&query);
    if query.format.as_deref() == Some("json") {
        return Json(report).into_response();
    }
    Html(render(&report, &query)).into_response()
}

/// Server-rendered HTML: a table of span names, and the samples that were asked for.
fn render(report: &Report, query: &TracezQuery) -> String {
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>tracez</title><style>\
         body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}\
         </style></head><body><h1>tracez</h1><p>Spans recorded by this process: running now, finished \
         per latency bucket, and errors. Click a count to see recent samples. \
         <a href=\"?format=json\">JSON</a></p><table><tr><th>span name</th><th>running</th>",
    );
    for label in BUCKET_LABELS {
        let _ = write!(html, "<th>{label}</th>");
    }
    html.push_str("<th>errors</th></tr>");
    for span in &report.spans {
        let name = escape(&span.name);
        let link = |bucket: &str, count: u64| {
            let href = format!("?name={}&amp;bucket={bucket}", url_encode(&span.name));
            if count == 0 { "0".to_owned() } else { format!("<a href=\"{href}\">{count}</a>") }
        };
        let _ = write!(html, "<tr><td>{name}</td><td>{}</td>", link("running", span.running));
        for (index, count) in span.latency.iter().enumerate() {
            let _ = write!(html, "<td>{}</td>", link(&index.to_string(), *count));
        }
        let _ = write!(html, "<td>{}</td></tr>", link("errors", span.errors));
    }
    html.push_str("</table>");
    if let (Some(samples), Some(name)) = (&report.samples, &query.name) {
        let bucket = query.bucket.as_deref().unwrap_or_default();
        let _ = write!(
            html,
            "<h2>{} — {}</h2><table><tr><th>trace id</th><th>span id</th><th>parent</th><th>start</th>\
             <th>duration</th><th>status</th><th>attributes</th></tr>",
            escape(name),
            escape(bucket)
        );
        for sample in samples {
            let attributes: Vec<String> =
                sample.attributes.iter().map(|(key, value)| format!("{}={}", escape(key), escape(value))).collect();
            let _ = write!(
                html,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td>\
                 <td>{:.3} ms</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
                sample.trace_id,
                sample.span_id,
                sample.parent_span_id,
                sample.start,
                sample.duration_us as f64 / 1000.0,
                escape(&sample.status),
                attributes.join("<br>")
            );
        }
        html.push_str("</table>");
    }
    html.push_str("</body></html>");
    html
}

/// Text for HTML, in elements and double-quoted attributes: `&`, `<`, `>` and `"` escaped.
fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_double_quoted_attribute(text)
}

/// A query parameter's value: every byte but RFC 3986's unreserved ones percent-encoded.
fn url_encode(text: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;

    /// The next processor in the chain: counts what it is handed.
    #[derive(Debug)]
    struct Counting(Arc<AtomicUsize>);

    impl SpanProcessor for Counting {
        fn on_start(&self, _: &mut Span, _: &Context) {}
        fn on_end(&self, _: SpanData) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    #[test]
    fn every_span_is_counted_and_passed_on_while_samples_are_taken_at_most_every_100_ms() {
        let tracez = Tracez::default();
        let passed = Arc::new(AtomicUsize::new(0));
        let provider =
            SdkTracerProvider::builder().with_span_processor(tracez.processor(Counting(passed.clone()), 4096)).build();
        let tracer = provider.tracer("test");
        let t0 = SystemTime::now();
        // A span of 5 ms (bucket 3, [1 ms, 10 ms)) starting `start_ms` after t0.
        let finish = |start_ms: u64, failed: bool| {
            let start = t0 + Duration::from_millis(start_ms);
            let mut span = tracer.span_builder("db-get").with_start_time(start).start(&tracer);
            if failed {
                span.set_status(Status::error("boom"));
            }
            span.end_with_timestamp(start + Duration::from_millis(5));
        };
        let sampled_starts = || {
            let query = TracezQuery { name: Some("db-get".into()), bucket: Some("3".into()), ..Default::default() };
            tracez.report(&query).samples.unwrap().into_iter().map(|sample| sample.start).collect::<Vec<_>>()
        };
        let start_of = |ms: u64| humantime::format_rfc3339_micros(t0 + Duration::from_millis(ms)).to_string();

        for n in 0..30 {
            finish(n, false);
        }
        let summary = &tracez.report(&TracezQuery::default()).spans[0];
        assert_eq!(summary.latency[3], 30, "every span counted");
        assert_eq!(passed.load(Ordering::SeqCst), 30, "every span handed on to the exporter");
        assert_eq!(sampled_starts(), (0..10).map(start_of).collect::<Vec<_>>(), "the first ten, then none for 100 ms");

        finish(200, false);
        assert_eq!(sampled_starts().last(), Some(&start_of(200)), "100 ms later, a new sample displaces the oldest");
        assert_eq!(sampled_starts().len(), SAMPLES_PER_BUCKET);

        finish(201, true);
        let summary = &tracez.report(&TracezQuery::default()).spans[0];
        assert_eq!((summary.latency[3], summary.errors), (32, 1));
        let errors = TracezQuery { name: Some("db-get".into()), bucket: Some("errors".into()), ..Default::default() };
        assert_eq!(tracez.report(&errors).samples.unwrap().len(), 1, "an error is sampled in its own bucket");
        assert_eq!(passed.load(Ordering::SeqCst), 32);
    }
}
