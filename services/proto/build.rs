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

    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
