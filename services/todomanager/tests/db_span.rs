//! The database span, tested: what a dashboard and an alert rely on (a failed query is an error
//! span, a missing todo is not) held by a test that fails the day someone breaks it. The spans
//! are the ones the code really makes, caught by an in-memory exporter instead of a collector.

use opentelemetry::trace::{Status, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use todomanager::Store;
use tracing_subscriber::layer::SubscriberExt;

/// The value of the span's attribute `key`, as text.
fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|pair| pair.key.as_str() == key).map(|pair| pair.value.to_string())
}

/// The finished spans, once those named `names` are among them: a span ends when its last
/// handle is dropped, and the database's worker thread may hold one a moment after the query
/// has answered.
async fn finished(exporter: &InMemorySpanExporter, names: &[&str]) -> Vec<SpanData> {
    for _ in 0..250 {
        let spans = exporter.get_finished_spans().unwrap();
        if names.iter().all(|name| spans.iter().any(|span| span.name == *name)) {
            return spans;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    exporter.get_finished_spans().unwrap()
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|span| span.name == name).unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

#[tokio::test]
async fn a_failed_query_is_an_error_span_and_a_missing_todo_is_not() {
    // Every span this thread makes goes through tracing-opentelemetry into memory, exported as
    // soon as it ends (the simple processor: no batch to wait for in a test).
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("db_span test"));
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));

    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", folder.path().join("todo.db").display());
    let store = Store::open(&url, std::time::Duration::from_secs(5)).await.unwrap();
    // The database's own failure (the store's failing mode runs a query the database rejects).
    assert!(store.failing().create("ann", "never written", false).await.is_err());
    // A todo that does not exist: an answer, not a failure of the database.
    assert!(store.get("ann", 4242).await.is_err());

    let spans = finished(&exporter, &["db-create", "db-get"]).await;
    let failed = named(&spans, "db-create");
    assert!(matches!(failed.status, Status::Error { .. }), "the failed insert: {:?}", failed.status);
    assert_eq!(attribute(failed, "error.type").as_deref(), Some("database_error"));
    let missing = named(&spans, "db-get");
    assert_eq!(missing.status, Status::Unset, "a missing todo is no error of the database");
    assert_eq!(attribute(missing, "error.type"), None);
}
