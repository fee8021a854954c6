//! Compiles `proto/auth/v1/auth.proto` with protox (no system `protoc`) into the tonic server
//! and client, and writes the encoded descriptor set that gRPC reflection serves.

use prost::Message;

/// Keep in step with `debug_without_fields!` in `src/grpc/mod.rs`.
const SECRET_MESSAGES: [&str; 8] = [
    "SignUpRequest",
    "LoginRequest",
    "RefreshRequest",
    "LogoutRequest",
    "ValidateTokenRequest",
    "ResetPasswordRequest",
    "TokenResponse",
    "VerifyMfaRequest",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/auth/v1/auth.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("auth_v1_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Messages carrying passwords or tokens get a `Debug` that prints no field
        // (`src/grpc/mod.rs`), so no log line can leak them.
        .skip_debug(SECRET_MESSAGES.map(|name| format!(".auth.v1.{name}")))
        .compile_fds(descriptors)?;
    Ok(())
}
