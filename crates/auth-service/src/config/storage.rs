//! `[database]` and `[redis]`: where state lives and the optional shared cache.

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::secret::{DatabaseUrl, Secret};

/// Where users, sessions and keys live; the URL scheme chooses SQLite or PostgreSQL.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path` or `postgres://user:password@host/db`.
    pub url: DatabaseUrl,
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long a request waits for a connection before it is answered 503.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// Apply pending migrations when the service starts.
    pub migrate_on_start: bool,
}

impl DatabaseConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let url = self.url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(ConfigError::at(
                "database.url",
                "must start with sqlite: or postgres://",
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::at(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if self.min_connections > self.max_connections {
            return Err(ConfigError::at(
                "database.min_connections",
                "must not exceed database.max_connections",
            ));
        }
        Ok(())
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: DatabaseUrl(SecretString::from("sqlite://./data/auth.db")),
            max_connections: 10,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(3),
            migrate_on_start: true,
        }
    }
}

/// Optional Redis for shared rate limits, the ended-session cache and pub/sub events.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port`; unset means everything stays in process.
    pub url: Option<Secret>,
    /// Longest wait for one Redis call before the answer is computed in process instead.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            timeout: Duration::from_millis(250),
        }
    }
}
