//! The gRPC contract between apiserver and todomanager, generated from `proto/todo.proto`.

pub mod todo_mgr {
    tonic::include_proto!("todo_mgr");
}

pub use todo_mgr::{
    DeleteTodoRes, ListTodosReq, Todo, TodoIdReq,
    todo_manager_client::TodoManagerClient,
    todo_manager_server::{TodoManager, TodoManagerServer},
};

/// The encoded descriptors of `todo.proto`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/todo_descriptor.bin"));
