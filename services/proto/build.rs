//! Compiles `proto/todo.proto` into Rust with protox, a protobuf compiler written in Rust,
//! so building the workshop needs no system `protoc`.

use std::{env, error::Error, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["todo.proto"], ["proto"])?;

    // gRPC server reflection (what `grpcurl list` asks) serves these encoded descriptors.
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("todo_descriptor.bin"), descriptors.encode_to_vec())?;

    // The messages and the client, with tonic's own codec.
    tonic_prost_build::configure().build_server(false).compile_fds(descriptors.clone())?;
    // The server, on the messages above, with a codec that answers a request it cannot decode
    // with INVALID_ARGUMENT (the grpc-codec crate).
    let server_dir = out_dir.join("server");
    fs::create_dir_all(&server_dir)?;
    tonic_prost_build::configure()
        .build_client(false)
        .extern_path(".todo_mgr", "crate::todo_mgr")
        .codec_path("grpc_codec::ServerCodec")
        .out_dir(&server_dir)
        .compile_fds(descriptors)?;
    Ok(())
}
