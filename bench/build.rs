//! Compiles the echo baseline's .proto with protox (no system `protoc`). Its
//! message is the contract's own `SendInvitationRequest`, taken from the
//! `proto` crate rather than generated twice.

use std::error::Error;

const PROTO: &str = "bench/v1/echo.proto";

fn main() -> Result<(), Box<dyn Error>> {
    // tonic-prost-build prints no rebuild hints of its own.
    println!("cargo:rerun-if-changed=proto/{PROTO}");
    println!("cargo:rerun-if-changed=../proto/invitations/v1/invitations.proto");
    let mut descriptors = protox::compile([PROTO], ["proto", "../proto"])?;
    // Generate the echo service only; its messages live in `proto`.
    descriptors.file.retain(|file| file.name() == PROTO);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".invitations.v1", "::proto::invitations::v1")
        .compile_fds(descriptors)?;
    Ok(())
}
