//! Where the tests start things: one way each, shared by every crate's tests.
//!
//! | what a test needs | where |
//! | --- | --- |
//! | a database of its own (SQLite, and MariaDB when one is at hand) | [`db`]: [`sqlite`], [`all_backends`] |
//! | todomanager in-process (its gRPC server on a port) | [`todomanager::InProcess`] |
//! | the services as processes, as a user runs them; a free or a dead port | [`process`] |
//! | a trace collector in-process (OTLP in, Jaeger's query API out) | [`Collector`] ([`otlp`]) |
//! | the real Jaeger and OpenTelemetry Collector, built by `cargo xtask tools install` | [`real`] |
//! | a TCP relay to cut a connection in the middle of a test | [`Relay`] |
//! | the table of Jaeger attribute filters, run against every filter | [`filter_table`] |
//!
//! Tests that need what a plain clone lacks (MariaDB, the Go-built tools, root) skip loudly
//! there and run in CI.

pub mod db;
pub mod filter_table;
pub mod otlp;
pub mod process;
pub mod real;
mod relay;
pub mod todomanager;

pub use db::{DATABASE_TIMEOUT, MYSQL_URL_VAR, TestDb, all_backends, mysql, sqlite};
pub use otlp::Collector;
pub use relay::Relay;
