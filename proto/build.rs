//! Compiles the contract's .proto files with protox, a pure-Rust compiler, so
//! the build needs no system `protoc`, and writes the encoded descriptor set
//! that server reflection serves.

use std::{env, path::PathBuf};

use prost::Message as _;

const PROTOS: &[&str] = &[
    "invitations/v1/invitations.proto",
    "invitations/v1/events.proto",
    "notifications/v1/notifications.proto",
    "notifications/v1/ingest.proto",
    "ops/v1/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // tonic-prost-build prints no rebuild hints of its own.
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("descriptor_set.bin"), descriptors.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
