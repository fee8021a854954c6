//! The configuration tree: embedded defaults < `config.toml` (path in `APP_CONFIG`) < `.env`
//! < environment `APP__SECTION__KEY`. `impl Default` of each struct *is* the embedded default.

mod auth;
mod clients;
mod error;
mod events;
mod limits;
mod mail;
mod oauth;
mod secret;
mod server;
mod storage;
#[cfg(test)]
mod tests;
mod webauthn;
mod webhooks;

pub use auth::{
    AuthConfig, BootstrapConfig, HashPriority, KeySource, PasswordConfig, SigningAlgorithm,
};
pub use clients::ClientsConfig;
pub use error::ConfigError;
pub use events::{EventBackend, EventsConfig};
pub use limits::{LimitsConfig, Rate};
pub use mail::{LogConfig, LogFormat, MailConfig};
pub use oauth::OAuthConfig;
pub use secret::{DatabaseUrl, Secret};
pub use server::{CookieSameSite, ServerConfig};
pub use storage::{DatabaseConfig, RedisConfig};
pub use webauthn::{RelyingPartyConfig, WebauthnConfig};
pub use webhooks::WebhookConfig;

use std::path::PathBuf;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Everything the service can be told; each part is handed only to the code that needs it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub auth: AuthConfig,
    pub password: PasswordConfig,
    pub limits: LimitsConfig,
    pub mail: MailConfig,
    pub log: LogConfig,
    pub bootstrap: BootstrapConfig,
    pub events: EventsConfig,
    pub clients: ClientsConfig,
    pub oauth: OAuthConfig,
    pub webauthn: WebauthnConfig,
}

impl Config {
    /// Loads the layered configuration from `APP_CONFIG`/`config.toml`, `.env` and the environment.
    pub fn load() -> Result<Self, ConfigError> {
        // `.env` never overrides a variable that is already set, so the environment wins.
        let _ = dotenvy::dotenv();
        let path = std::env::var_os("APP_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("config.toml"));
        if std::env::var_os("APP_CONFIG").is_some() && !path.exists() {
            return Err(ConfigError(format!(
                "APP_CONFIG: file {} does not exist",
                path.display()
            )));
        }
        Self::from_figment(
            &Figment::new()
                .merge(Toml::file(path))
                .merge(Env::prefixed("APP__").split("__")),
        )
    }

    /// Extracts and checks a configuration from any figment (tests build their own).
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(|error| describe(&error))?;
        config.validate()?;
        Ok(config)
    }

    /// The issuer placed in `iss`.
    pub fn issuer(&self) -> &str {
        self.auth
            .issuer
            .as_deref()
            .unwrap_or(&self.server.public_url)
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn redacted(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|error| format!("# cannot render: {error}"))
    }

    /// Each section checks its own keys; what spans sections is checked here.
    fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        self.server.validate()?;
        self.auth.validate()?;
        self.password.validate()?;
        self.limits.validate()?;
        self.mail.validate()?;
        self.events.validate()?;
        self.clients.validate()?;
        self.oauth.validate()?;
        self.webauthn.relying_party(&self.server.public_url)?;
        if self.events.backend == Some(EventBackend::Redis) && self.redis.url.is_none() {
            return Err(ConfigError::at("events.backend", "redis needs redis.url"));
        }
        Ok(())
    }
}

/// One line naming the key and, where known, where the bad value came from.
fn describe(error: &figment::Error) -> ConfigError {
    use figment::error::Kind;
    let mut key = error.path.join(".");
    let why = match &error.kind {
        Kind::UnknownField(field, _) => {
            if error.path.last() != Some(field) {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(field);
            }
            "unknown key".to_string()
        }
        other => other.to_string(),
    };
    let source = error
        .metadata
        .as_ref()
        .map(|md| match &md.source {
            Some(source) => format!(" (from {} {source})", md.name),
            None => format!(" (from {})", md.name),
        })
        .unwrap_or_default();
    let key = if key.is_empty() {
        "<root>".to_string()
    } else {
        key
    };
    ConfigError(format!("{key}: {why}{source}"))
}
