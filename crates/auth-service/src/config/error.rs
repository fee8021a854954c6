//! The one error of loading and checking the configuration; each section's `validate` and the
//! loader in `mod.rs` build it, so it sits below both.

/// A configuration value that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub(super) String);

impl ConfigError {
    /// `key: why`, the one line a bad value stops the service with.
    pub(super) fn at(key: &str, why: &str) -> Self {
        Self(format!("{key}: {why}"))
    }
}
