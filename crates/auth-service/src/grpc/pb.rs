//! The generated messages, server and client of `proto/auth/v1/auth.proto`.

tonic::include_proto!("auth.v1");

/// The encoded descriptors of `auth.v1`, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/auth_v1_descriptor.bin"));

/// Messages with passwords or tokens print their name only (never log secrets).
macro_rules! debug_without_fields {
    ($($message:ident),* $(,)?) => {$(
        impl std::fmt::Debug for $message {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($message)).finish_non_exhaustive()
            }
        }
    )*};
}

debug_without_fields!(
    SignUpRequest,
    LoginRequest,
    RefreshRequest,
    LogoutRequest,
    ValidateTokenRequest,
    ResetPasswordRequest,
    TokenResponse,
    VerifyMfaRequest,
);
