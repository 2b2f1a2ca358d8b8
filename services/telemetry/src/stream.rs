use std::{
    pin::Pin,
    task::{Context, Poll},
};

use tokio_stream::Stream;
use tracing::Span;

pin_project_lite::pin_project! {
    /// A stream that runs inside `span` each time it is polled, like `Instrument` for futures:
    /// a database cursor read while a gRPC response streams stays in its `db-list` span.
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
        this.inner.poll_next(cx)
    }
}
