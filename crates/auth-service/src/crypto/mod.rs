//! Cryptography: password hashing on a bounded pool, JWT signing and verification, signing
//! keys and their sealing at rest, opaque random tokens, and clients' assertion keys.

pub mod api_keys;
pub mod client_keys;
pub mod jwt;
pub mod keys;
pub mod passkeys;
pub mod password;
pub mod sealing;
pub mod tokens;
pub mod totp;
