//! todomanager: the gRPC service that stores the workshop's todos.

pub mod config;
pub mod content_type;
pub mod faults;
pub mod grpc;
pub mod history;
pub mod server;
pub mod store;

pub use config::Config;
pub use faults::Faults;
pub use server::serve;
pub use store::Store;
