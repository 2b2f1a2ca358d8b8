//! The gRPC contract between apiserver and todomanager, generated from `proto/todo.proto`.

pub mod todo_mgr {
    tonic::include_proto!("todo_mgr");

    pub use super::server::todo_manager_server;
}

/// The generated server, which decodes requests with [`grpc_codec::ServerCodec`].
mod server {
    include!(concat!(env!("OUT_DIR"), "/server/todo_mgr.rs"));
}

pub use todo_mgr::{
    DeleteTodoRes, ListTodosReq, Todo, TodoIdReq,
    todo_manager_client::TodoManagerClient,
    todo_manager_server::{TodoManager, TodoManagerServer},
};

/// Failure injection's header (HTTP, read by apiserver) and metadata (gRPC, passed on to
/// todomanager): with failure injection on, a request may choose its fate, `error`, `delay`,
/// `slow` (todomanager's `ListTodos` takes a second) or `none` (what `cargo xtask verify` sends,
/// so that checking a chapter never fails at random). One name on both hops.
pub const INJECT_FAULT: &str = "x-inject-fault";

/// The encoded descriptors of `todo.proto`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/todo_descriptor.bin"));
