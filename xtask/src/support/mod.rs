//! What the commands share: nothing here is a command.
//!
//! - [`steps`]: a plan of steps and the external commands they run (`cmd!`), printed, then run;
//! - [`project`]: where the checkout is, and its small helpers;
//! - [`expect`]: the chapters' `expect.toml`, what `verify` checks;
//! - [`jaeger`]: a client of Jaeger's query API v3 (and of the trace store's, the same);
//! - [`path`]: programs on the `PATH`;
//! - [`processes`]: long-running child processes (the services, port-forwards) and their logs;
//! - [`progress`]: where a learner stands, kept in `.state/progress.json`;
//! - [`waterfall`]: a trace drawn in the terminal.

pub mod expect;
pub mod jaeger;
pub mod path;
pub mod processes;
pub mod progress;
pub mod project;
pub mod steps;
pub mod waterfall;
