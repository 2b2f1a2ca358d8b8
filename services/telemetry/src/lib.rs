//! What both services do at start and at exit: set up their logs, and wait for the signal to stop.

mod logging;
mod shutdown;

pub use logging::init_logging;
pub use shutdown::shutdown_signal;
