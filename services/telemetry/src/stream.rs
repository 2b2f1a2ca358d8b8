use std::{
    pin::Pin,
    task::{Context, Poll},
};

use tokio_stream::Stream;
use tracing::Span;

pin_project_lite::pin_project! {
    /// A stream that runs inside `span` each time it is polled, like `Instrument` for futures:
    /// a database cursor read while a gRPC response streams stays in its `db-list` span. The span
    /// ends when the stream does (its last item read), not later when the stream is dropped: the
    /// gRPC server's span, which ends with the response, must contain it.
    pub struct InSpan<S> {
        #[pin]
        inner: S,
        span: Span,
    }
}

impl<S> InSpan<S> {
    pub fn new(inner: S, span: Span) -> Self {
        Self { inner, span }
    }
}

impl<S: Stream> Stream for InSpan<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        let _entered = this.span.enter();
        let poll = this.inner.poll_next(cx);
        if let Poll::Ready(None) = poll {
            drop(_entered);
            // Dropping the last handle of a span ends it.
            *this.span = Span::none();
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio_stream::StreamExt;
    use tracing_subscriber::{Layer, layer::Context as LayerContext, prelude::*};

    use super::*;

    /// Records the names of the spans that end, in order.
    struct Closed(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>> Layer<S> for Closed {
        fn on_close(&self, id: tracing::span::Id, ctx: LayerContext<'_, S>) {
            let name = ctx.span(&id).map(|span| span.name().to_owned()).unwrap_or_default();
            self.0.lock().unwrap().push(name);
        }
    }

    #[tokio::test]
    async fn the_span_ends_with_the_stream_not_when_it_is_dropped() {
        let closed = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Closed(closed.clone()));
        let _default = tracing::subscriber::set_default(subscriber);

        let mut rows = InSpan::new(tokio_stream::iter([1, 2]), tracing::info_span!("db-list"));
        assert_eq!(rows.next().await, Some(1));
        assert_eq!(rows.next().await, Some(2));
        let ended = || closed.lock().unwrap().clone();
        assert!(ended().is_empty(), "still reading");
        assert_eq!(rows.next().await, None);
        assert_eq!(ended(), ["db-list"], "ended with the last read, before the drop");
        drop(rows);
        assert_eq!(ended(), ["db-list"]);
    }
}
