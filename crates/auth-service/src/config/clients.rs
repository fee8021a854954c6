//! `[clients]`: OAuth 2 clients (SPEC §11).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;

/// Service identities: how long a rotated secret keeps working.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientsConfig {
    /// How long the secret a rotation replaces keeps authenticating, so the services that
    /// use it can be given the new one; a rotation request may ask for less (or for none).
    #[serde(with = "humantime_serde")]
    pub secret_overlap: Duration,
}

impl ClientsConfig {
    /// Longest overlap a rotation may keep an old secret for.
    pub const MAX_OVERLAP: Duration = Duration::from_secs(30 * 24 * 3600);

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.secret_overlap > Self::MAX_OVERLAP {
            return Err(ConfigError::at(
                "clients.secret_overlap",
                "must be at most 30d",
            ));
        }
        Ok(())
    }
}

impl Default for ClientsConfig {
    fn default() -> Self {
        Self {
            secret_overlap: Duration::from_secs(24 * 3600),
        }
    }
}
