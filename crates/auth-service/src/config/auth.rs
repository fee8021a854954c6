//! `[auth]`, `[password]` and `[bootstrap]`: tokens, sessions, the password policy and the
//! first administrator.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Secret;

/// Signing algorithm of newly generated keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum SigningAlgorithm {
    EdDSA,
    RS256,
    ES256,
}

/// Tokens and sessions (SPEC §3).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `iss` claim; defaults to `server.public_url`.
    pub issuer: Option<String>,
    /// `aud` claim.
    pub audience: String,
    pub signing_algorithm: SigningAlgorithm,
    /// Seals private keys at rest (32 bytes, base64) when set.
    pub key_encryption_key: Option<Secret>,
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    /// A retried refresh of the token just rotated gets the same successor within this window.
    #[serde(with = "humantime_serde")]
    pub refresh_grace_period: Duration,
    #[serde(with = "humantime_serde")]
    pub session_idle_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    pub max_sessions_per_user: u32,
    /// Refuse logins until the email address is verified.
    pub require_email_verification: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: "auth-service".into(),
            signing_algorithm: SigningAlgorithm::EdDSA,
            key_encryption_key: None,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(7 * 24 * 3600),
            refresh_grace_period: Duration::from_secs(10),
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(168 * 3600),
            max_sessions_per_user: 5,
            require_email_verification: false,
        }
    }
}

/// Password policy and argon2id parameters (SPEC §4).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordConfig {
    pub min_length: usize,
    pub max_length: usize,
    /// Lowest acceptable zxcvbn score (0–4).
    pub min_score: u8,
    /// argon2id memory in KiB (OWASP: 19 MiB).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Hashes computed at once; 0 means one per core.
    pub hash_workers: usize,
    /// The OS scheduling priority of the hashing threads.
    pub hash_priority: HashPriority,
}

/// How the hashing threads rank against request handling (and the database, when it shares the
/// machine) for CPU time. Below normal, a login flood fills idle cores with hashing but gives
/// way at once to a token check: logins queue, other requests keep their latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashPriority {
    /// As the request handlers: a login flood competes with them on equal terms.
    Normal,
    /// Niceness 19: hashing takes what the rest leaves (the default).
    Low,
    /// `SCHED_IDLE`: hashing runs only on otherwise idle cores.
    Idle,
}

impl PasswordConfig {
    pub fn policy(&self) -> crate::domain::PasswordPolicy {
        crate::domain::PasswordPolicy {
            min_length: self.min_length,
            max_length: self.max_length,
            min_score: self.min_score,
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 128,
            min_score: 2,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_workers: 0,
            hash_priority: HashPriority::Low,
        }
    }
}

/// The first administrator, created on first start when all three are set.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    pub admin_email: Option<String>,
    pub admin_username: Option<String>,
    pub admin_password: Option<Secret>,
}
