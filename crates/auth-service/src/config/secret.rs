//! Secret configuration values that never print: `Secret` and `DatabaseUrl`.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

/// A secret value: `Debug` and serialization print `[REDACTED]`, so neither logs nor
/// `auth-service config` can show it.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub SecretString);

impl Secret {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[REDACTED]")
    }
}

/// A database URL: printed with its password replaced by `[REDACTED]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub SecretString);

impl DatabaseUrl {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL as it may be shown: credentials hidden.
    pub fn redacted(&self) -> String {
        match url::Url::parse(self.expose()) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("REDACTED"));
                url.to_string()
            }
            Ok(url) => url.to_string(),
            Err(_) => "[REDACTED]".into(),
        }
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}
