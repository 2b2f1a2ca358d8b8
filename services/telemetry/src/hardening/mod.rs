//! Workarounds, not the lesson: what the services need in production that the SDK does not do
//! (or does at a cost we measured). Read the lesson first (`lib.rs` gives the order); come here
//! to see what it takes to run tracing under load, with hostile clients and a collector that
//! goes away.
//!
//! - [`value_limits`]: cuts over-long attribute values (`OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`,
//!   which the SDK does not implement);
//! - [`quiet_exporter`]: one warning for a dead collector, not one per batch; a batch sent in
//!   parts that fit the receiver's limit;
//! - [`span_selection`]: only our spans, and warnings and errors as events, go into traces
//!   (decided once per span, cheaper than a per-layer filter);
//! - [`log_throttle`]: a warning that every failing request would write, written once per
//!   interval.

pub mod log_throttle;
pub mod quiet_exporter;
pub(crate) mod span_selection;
pub mod value_limits;
