//! `[auth]`, `[password]` and `[bootstrap]`: tokens, sessions, the password policy and the
//! first administrator.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::secret::Secret;
use super::storage::DatabaseConfig;

/// Signing algorithm of newly generated keys. A stored key keeps the algorithm it was made
/// with; this names only what the first key and every rotation create.
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
    /// Algorithm of keys generated from now on (the first key, `keys rotate`).
    pub signing_algorithm: SigningAlgorithm,
    /// Seals private signing keys at rest: 32 bytes, base64. Without it (and without
    /// `key_file`) an embedded SQLite database gets a generated key file beside it; PostgreSQL
    /// refuses to start (SPEC §3).
    pub key_encryption_key: Option<Secret>,
    /// A file holding the key that seals private signing keys (32 bytes, base64), instead of
    /// `key_encryption_key`; it must exist.
    pub key_file: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    /// A retried refresh of the token just rotated gets the same successor within this window.
    #[serde(with = "humantime_serde")]
    pub refresh_grace_period: Duration,
    /// Longest life of a token made by token exchange (RFC 8693, SPEC §11); never longer than
    /// the subject token's remaining life. 10s–1h.
    #[serde(with = "humantime_serde")]
    pub exchange_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub session_idle_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// How long a replica trusts the session state it read for a bearer check without
    /// reading it again (issue 20): the bound on how late a change made elsewhere (another
    /// replica, the command line) is seen here. At most 1 s; `0s` reads on every check.
    #[serde(with = "humantime_serde")]
    pub session_cache_ttl: Duration,
    pub max_sessions_per_user: u32,
    /// Refuse logins until the email address is verified.
    pub require_email_verification: bool,
    /// Put the refresh token in the JSON body of signup, login and refresh answers as well as
    /// in the cookie. `false` for browser deployments: the token stays in the HttpOnly cookie,
    /// out of reach of page scripts.
    pub refresh_token_in_body: bool,
    /// SPEC §10: holders of these roles (globally or in this territory) who log in without a
    /// second factor get an enrollment-only session until they log in with one (a list, or
    /// one comma-separated string in the environment).
    #[serde(deserialize_with = "super::server::list_or_commas")]
    pub require_mfa_for_roles: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: "auth-service".into(),
            // SPEC §3: ES256 is the one every usual verifier and gateway accepts out of the
            // box; EdDSA is refused by python-jose, joserfc's defaults and several gateways.
            signing_algorithm: SigningAlgorithm::ES256,
            key_encryption_key: None,
            key_file: None,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(7 * 24 * 3600),
            refresh_grace_period: Duration::from_secs(10),
            exchange_token_ttl: Duration::from_secs(300),
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(168 * 3600),
            session_cache_ttl: Duration::from_millis(500),
            max_sessions_per_user: 5,
            require_email_verification: false,
            refresh_token_in_body: true,
            require_mfa_for_roles: Vec::new(),
        }
    }
}

/// The longest `auth.session_cache_ttl`: a change on one replica is seen by every other
/// within it (issue 20).
const MAX_SESSION_CACHE_TTL: Duration = Duration::from_secs(1);

/// A role name as `POST /api/roles` accepts it: 2–50 of `a-z 0-9 _ -`.
fn is_role_name(name: &str) -> bool {
    (2..=50).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Where the key that seals private signing keys comes from (SPEC §3).
#[derive(Debug, Clone, Copy)]
pub enum KeySource<'a> {
    /// `auth.key_encryption_key`.
    Configured(&'a Secret),
    /// `auth.key_file`, which must exist.
    File(&'a Path),
    /// A key file generated on first start beside the embedded database file.
    Generated,
}

impl AuthConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.access_token_ttl.is_zero() {
            return Err(ConfigError::at(
                "auth.access_token_ttl",
                "must be longer than zero",
            ));
        }
        if self.refresh_token_ttl.is_zero() {
            return Err(ConfigError::at(
                "auth.refresh_token_ttl",
                "must be longer than zero",
            ));
        }
        if !(Duration::from_secs(10)..=Duration::from_secs(3600)).contains(&self.exchange_token_ttl)
        {
            return Err(ConfigError::at(
                "auth.exchange_token_ttl",
                "must be between 10s and 1h",
            ));
        }
        if self.session_cache_ttl > MAX_SESSION_CACHE_TTL {
            return Err(ConfigError::at(
                "auth.session_cache_ttl",
                "must be at most 1s (the bound on how late another replica's change is seen)",
            ));
        }
        if self.max_sessions_per_user == 0 {
            return Err(ConfigError::at(
                "auth.max_sessions_per_user",
                "must be at least 1",
            ));
        }
        if let Some(bad) = self
            .require_mfa_for_roles
            .iter()
            .find(|role| !is_role_name(role))
        {
            return Err(ConfigError::at(
                "auth.require_mfa_for_roles",
                &format!("`{bad}` is not a role name (2–50 of `a-z 0-9 _ -`)"),
            ));
        }
        Ok(())
    }

    /// Where the sealing key comes from. SPEC §3: a reader of the database alone cannot mint
    /// tokens, so PostgreSQL (whose replicas share no disk to generate a key on) needs one
    /// named; an embedded SQLite database keeps a generated key file beside it.
    pub fn key_source(&self, database: &DatabaseConfig) -> Result<KeySource<'_>, ConfigError> {
        match (&self.key_encryption_key, &self.key_file) {
            (Some(_), Some(_)) => Err(ConfigError(
                "auth.key_file: set either auth.key_encryption_key or auth.key_file, not both"
                    .into(),
            )),
            (Some(key), None) => Ok(KeySource::Configured(key)),
            (None, Some(path)) => Ok(KeySource::File(path)),
            (None, None) if database.url.expose().starts_with("sqlite:") => {
                Ok(KeySource::Generated)
            }
            (None, None) => Err(ConfigError(
                "auth.key_encryption_key: PostgreSQL needs a key to seal the signing keys: set \
                 APP__AUTH__KEY_ENCRYPTION_KEY (openssl rand -base64 32) or APP__AUTH__KEY_FILE"
                    .into(),
            )),
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
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.min_length == 0 || self.min_length > self.max_length {
            return Err(ConfigError::at(
                "password.min_length",
                "must be between 1 and password.max_length",
            ));
        }
        if self.min_score > 4 {
            return Err(ConfigError::at(
                "password.min_score",
                "must be between 0 and 4",
            ));
        }
        if self.max_length > 1024 {
            return Err(ConfigError::at(
                "password.max_length",
                "must be at most 1024",
            ));
        }
        Ok(())
    }

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

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::config::secret::DatabaseUrl;

    fn database(url: &str) -> DatabaseConfig {
        DatabaseConfig {
            url: DatabaseUrl(SecretString::from(url)),
            ..DatabaseConfig::default()
        }
    }

    #[test]
    fn postgres_needs_a_named_key_and_sqlite_generates_one() {
        let auth = AuthConfig::default();
        let with_file = AuthConfig {
            key_file: Some("/run/secrets/auth.key".into()),
            ..AuthConfig::default()
        };

        let refused = auth
            .key_source(&database("postgres://db/auth"))
            .unwrap_err()
            .to_string();

        assert!(
            refused.contains("APP__AUTH__KEY_ENCRYPTION_KEY"),
            "{refused}"
        );
        assert!(refused.contains("APP__AUTH__KEY_FILE"), "{refused}");
        assert!(matches!(
            auth.key_source(&database("sqlite://./data/auth.db")),
            Ok(KeySource::Generated)
        ));
        assert!(matches!(
            with_file.key_source(&database("postgres://db/auth")),
            Ok(KeySource::File(_))
        ));
    }
}
