//! `[mail]` and `[log]`: outgoing mail delivery and the shape of log lines.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::secret::Secret;

/// Outgoing mail: SMTP when `smtp_url` is set, else `.eml` files when `file_dir` is set, else
/// the log (with the links' tokens redacted).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `smtp://user:pass@host:587` (STARTTLS), `smtps://…:465` (TLS) or
    /// `smtp://host:25?tls=none` for a local relay.
    pub smtp_url: Option<Secret>,
    /// Directory that receives one `.eml` file per message (development and tests).
    pub file_dir: Option<PathBuf>,
    /// The `From:` header.
    pub from: String,
    /// Give up on one message after this long.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Lifetime of password reset links.
    #[serde(with = "humantime_serde")]
    pub reset_token_ttl: Duration,
    /// Lifetime of email verification links.
    #[serde(with = "humantime_serde")]
    pub verification_token_ttl: Duration,
}

impl MailConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        const MONTH: Duration = Duration::from_secs(30 * 24 * 3600);
        for (key, ttl) in [
            ("mail.reset_token_ttl", self.reset_token_ttl),
            ("mail.verification_token_ttl", self.verification_token_ttl),
        ] {
            if ttl.is_zero() || ttl > MONTH {
                return Err(ConfigError::at(key, "must be between 1s and 30d"));
            }
        }
        Ok(())
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            file_dir: None,
            from: "auth-service <no-reply@localhost>".into(),
            timeout: Duration::from_secs(10),
            reset_token_ttl: Duration::from_secs(3600),
            verification_token_ttl: Duration::from_secs(48 * 3600),
        }
    }
}

/// Log line shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// Filter used when `RUST_LOG` is not set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}
