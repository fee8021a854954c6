//! The configuration tree: embedded defaults < `config.toml` (path in `APP_CONFIG`) < `.env`
//! < environment `APP__SECTION__KEY`. `impl Default` of each struct *is* the embedded default.

mod auth;
mod events;
mod limits;
mod mail;
mod secret;
mod server;
mod storage;
#[cfg(test)]
mod tests;

pub use auth::{
    AuthConfig, BootstrapConfig, HashPriority, KeySource, PasswordConfig, SigningAlgorithm,
};
pub use events::{EventBackend, EventsConfig};
pub use limits::{LimitsConfig, Rate};
pub use mail::{LogConfig, LogFormat, MailConfig};
pub use secret::{DatabaseUrl, Secret};
pub use server::ServerConfig;
pub use storage::{DatabaseConfig, RedisConfig};

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

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
}

/// A configuration value that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

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

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        let url = self.database.url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return bad("database.url", "must start with sqlite: or postgres://");
        }
        if self.database.max_connections == 0 {
            return bad("database.max_connections", "must be at least 1");
        }
        if self.database.min_connections > self.database.max_connections {
            return bad(
                "database.min_connections",
                "must not exceed database.max_connections",
            );
        }
        if url::Url::parse(&self.server.public_url).is_err() {
            return bad("server.public_url", "must be an absolute URL");
        }
        if self.server.body_limit_bytes == 0 {
            return bad("server.body_limit_bytes", "must be at least 1");
        }
        if let Some((key, why)) = self.server.problem() {
            return bad(key, why);
        }
        for (index, proxy) in self.server.trusted_proxies.iter().enumerate() {
            if proxy.parse::<ipnet::IpNet>().is_err() && proxy.parse::<IpAddr>().is_err() {
                return bad(
                    &format!("server.trusted_proxies[{index}]"),
                    "is not an IP address or CIDR range",
                );
            }
        }
        for (index, origin) in self.server.cors_origins.iter().enumerate() {
            let is_origin = url::Url::parse(origin).is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.origin().ascii_serialization() == *origin
            });
            if !is_origin {
                return bad(
                    &format!("server.cors_origins[{index}]"),
                    "must be an origin such as https://app.example.com (scheme, host, optional port; no path, no wildcard)",
                );
            }
        }
        if self.auth.access_token_ttl.is_zero() {
            return bad("auth.access_token_ttl", "must be longer than zero");
        }
        if self.auth.refresh_token_ttl.is_zero() {
            return bad("auth.refresh_token_ttl", "must be longer than zero");
        }
        if self.auth.max_sessions_per_user == 0 {
            return bad("auth.max_sessions_per_user", "must be at least 1");
        }
        if self.password.min_length == 0 || self.password.min_length > self.password.max_length {
            return bad(
                "password.min_length",
                "must be between 1 and password.max_length",
            );
        }
        if self.password.min_score > 4 {
            return bad("password.min_score", "must be between 0 and 4");
        }
        let limits = &self.limits;
        for (key, rate) in [
            ("limits.login_per_ip", limits.login_per_ip),
            ("limits.signup_per_ip", limits.signup_per_ip),
            (
                "limits.forgot_password_per_ip",
                limits.forgot_password_per_ip,
            ),
            ("limits.lookup_per_ip", limits.lookup_per_ip),
            ("limits.mail_per_account", limits.mail_per_account),
        ] {
            if rate.max == 0 || rate.per.is_zero() {
                return bad(key, "max and per must be above zero");
            }
        }
        if limits.login_failures > 0 && limits.lockout.is_zero() {
            return bad("limits.lockout", "must be longer than zero");
        }
        const MONTH: Duration = Duration::from_secs(30 * 24 * 3600);
        for (key, ttl) in [
            ("mail.reset_token_ttl", self.mail.reset_token_ttl),
            (
                "mail.verification_token_ttl",
                self.mail.verification_token_ttl,
            ),
        ] {
            if ttl.is_zero() || ttl > MONTH {
                return bad(key, "must be between 1s and 30d");
            }
        }
        if self.password.max_length > 1024 {
            return bad("password.max_length", "must be at most 1024");
        }
        self.validate_events()
    }

    fn validate_events(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("{key}: {why}")));
        let events = &self.events;
        if let Some(url) = &events.nats_url {
            let scheme_ok = url::Url::parse(url.expose())
                .is_ok_and(|url| matches!(url.scheme(), "nats" | "tls" | "ws" | "wss"));
            if !scheme_ok {
                return bad("events.nats_url", "must be a URL such as nats://host:4222");
            }
        }
        match events.backend {
            Some(EventBackend::Nats) if events.nats_url.is_none() => {
                return bad("events.backend", "nats needs events.nats_url");
            }
            Some(EventBackend::Redis) if self.redis.url.is_none() => {
                return bad("events.backend", "redis needs redis.url");
            }
            _ => {}
        }
        if events.nats_stream.is_empty()
            || !events
                .nats_stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return bad(
                "events.nats_stream",
                "must be letters, digits, '_' or '-' (a JetStream stream name)",
            );
        }
        if events.batch_size == 0 || events.batch_size > 10_000 {
            return bad("events.batch_size", "must be between 1 and 10000");
        }
        for (key, duration) in [
            ("events.poll_interval", events.poll_interval),
            ("events.retention", events.retention),
            ("events.max_backoff", events.max_backoff),
            ("events.publish_timeout", events.publish_timeout),
        ] {
            if duration.is_zero() {
                return bad(key, "must be longer than zero");
            }
        }
        if events.claim_lease < events.publish_timeout.saturating_mul(2) {
            return bad(
                "events.claim_lease",
                "must be at least twice events.publish_timeout",
            );
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
