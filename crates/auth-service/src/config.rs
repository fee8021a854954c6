//! The configuration tree: embedded defaults < `config.toml` (path in `APP_CONFIG`) < `.env`
//! < environment `APP__SECTION__KEY`. `impl Default` of each struct *is* the embedded default.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

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
}

/// Listening, proxies and HTTP hardening.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address both listeners bind to.
    pub host: IpAddr,
    /// HTTP port.
    pub port: u16,
    /// gRPC port.
    pub grpc_port: u16,
    /// Base URL of this service as users reach it; used in mailed links and as default issuer.
    pub public_url: String,
    /// This deployment's territory code; tokens carry it and the roles held in it.
    pub territory: Option<String>,
    /// Peers whose `X-Forwarded-For`/`X-Real-IP` headers are believed (CIDR ranges or
    /// addresses; a list, or one comma-separated string in the environment).
    #[serde(deserialize_with = "list_or_commas")]
    pub trusted_proxies: Vec<String>,
    /// Send `Strict-Transport-Security`.
    pub hsts: bool,
    /// Origins allowed by CORS, with credentials (`https://app.example.com`; a list, or one
    /// comma-separated string in the environment). Empty: no cross-origin access.
    #[serde(deserialize_with = "list_or_commas")]
    pub cors_origins: Vec<String>,
    /// Mark the refresh cookie `Secure`; switch off only for local plain-http development.
    pub cookie_secure: bool,
    /// Longest time a request may take before it is answered 503.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest request body in bytes (SPEC §2: 64 KiB).
    pub body_limit_bytes: usize,
    /// How long in-flight requests may run after SIGTERM/SIGINT.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::from([0, 0, 0, 0]),
            port: 8080,
            grpc_port: 50051,
            public_url: "http://localhost:8080".into(),
            territory: None,
            trusted_proxies: Vec::new(),
            hsts: false,
            cors_origins: Vec::new(),
            cookie_secure: true,
            request_timeout: Duration::from_secs(30),
            body_limit_bytes: 64 * 1024,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

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
        }
    }
}

/// At most `max` requests per `per`, e.g. `{ max = 30, per = "1m" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub max: u32,
    #[serde(with = "humantime_serde")]
    pub per: Duration,
}

impl Rate {
    pub const fn new(max: u32, per: Duration) -> Self {
        Self { max, per }
    }
}

/// Rate limits and the login lockout (SPEC §4). Counts live in process, or in Redis when
/// `redis.url` is set so that replicas share them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Off only for load tests; every limit below is skipped.
    pub enabled: bool,
    pub login_per_ip: Rate,
    pub signup_per_ip: Rate,
    pub forgot_password_per_ip: Rate,
    /// Admin user lookups (`GET /api/users…`).
    pub lookup_per_ip: Rate,
    /// Reset and verification mails to one account.
    pub mail_per_account: Rate,
    /// Consecutive failed logins of one identifier before it is locked.
    pub login_failures: u32,
    /// How long a locked identifier stays locked.
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        const MINUTE: Duration = Duration::from_secs(60);
        Self {
            enabled: true,
            // Generous per address, since many people can share one (NAT, offices, mobile
            // carriers): the per-identifier lockout is what stops guessing one account; these
            // cap what one address can do to all of them.
            login_per_ip: Rate::new(300, MINUTE),
            signup_per_ip: Rate::new(300, 60 * MINUTE),
            forgot_password_per_ip: Rate::new(60, 15 * MINUTE),
            lookup_per_ip: Rate::new(600, MINUTE),
            mail_per_account: Rate::new(10, 60 * MINUTE),
            login_failures: 5,
            lockout: 15 * MINUTE,
        }
    }
}

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

/// The first administrator, created on first start when all three are set.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    pub admin_email: Option<String>,
    pub admin_username: Option<String>,
    pub admin_password: Option<Secret>,
}

/// A list from TOML, or a comma-separated string from an environment variable.
fn list_or_commas<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        String(String),
    }
    Ok(match ListOrString::deserialize(deserializer)? {
        ListOrString::List(list) => list,
        ListOrString::String(joined) => joined
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

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
        if self.password.min_score > 4 {
            return bad("password.min_score", "must be between 0 and 4");
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

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        for (key, value) in pairs {
            figment = figment.merge(Serialized::default(key, value));
        }
        Config::from_figment(&figment)
    }

    #[test]
    fn defaults_match_the_spec() {
        let config = with(&[]).unwrap();

        assert_eq!(config.server.port, 8080);
        assert_eq!(config.server.grpc_port, 50051);
        assert_eq!(config.database.url.expose(), "sqlite://./data/auth.db");
        assert_eq!(config.auth.access_token_ttl, Duration::from_secs(900));
        assert_eq!(
            config.auth.session_lifetime,
            Duration::from_secs(168 * 3600)
        );
        assert_eq!(config.password.argon2_memory_kib, 19 * 1024);
        assert_eq!(config.server.body_limit_bytes, 65536);
    }

    #[test]
    fn durations_are_humane() {
        let config = with(&[
            ("auth.refresh_token_ttl", "7d"),
            ("auth.access_token_ttl", "15m"),
        ])
        .unwrap();

        assert_eq!(
            config.auth.refresh_token_ttl,
            Duration::from_secs(7 * 86400)
        );
        assert_eq!(config.auth.access_token_ttl, Duration::from_secs(900));
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let error = with(&[("auth.access_token_ttl", "soon")])
            .unwrap_err()
            .to_string();

        assert!(error.contains("auth.access_token_ttl"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn limits_mail_and_policy_values_are_checked() {
        let cases = [
            ("limits.login_per_ip.max", "0", "limits.login_per_ip"),
            ("limits.lockout", "0s", "limits.lockout"),
            ("mail.reset_token_ttl", "1000000y", "mail.reset_token_ttl"),
            ("password.min_score", "5", "password.min_score"),
            (
                "server.cors_origins",
                "https://app.example.com/path",
                "server.cors_origins[0]",
            ),
        ];

        for (key, value, named) in cases {
            let error = with(&[(key, value)]).unwrap_err().to_string();
            assert!(error.contains(named), "{key}={value}: {error}");
        }
    }

    #[test]
    fn lists_may_be_comma_separated() {
        let config = with(&[(
            "server.cors_origins",
            "https://a.example, https://b.example:8443",
        )])
        .unwrap();

        assert_eq!(
            config.server.cors_origins,
            ["https://a.example", "https://b.example:8443"]
        );
    }

    #[test]
    fn an_unknown_key_is_named() {
        let error = with(&[("server.prot", "1")]).unwrap_err().to_string();

        assert!(error.contains("server.prot: unknown key"), "{error}");
    }

    #[test]
    fn redacted_output_hides_secrets() {
        let config = with(&[
            ("database.url", "postgres://app:hunter22@db:5432/auth"),
            ("auth.key_encryption_key", "c2VjcmV0LWtleS1tYXRlcmlhbA"),
        ])
        .unwrap();

        let printed = config.redacted();

        assert!(!printed.contains("hunter22"), "{printed}");
        assert!(!printed.contains("c2VjcmV0LWtleS1tYXRlcmlhbA"), "{printed}");
        assert!(
            printed.contains("postgres://app:REDACTED@db:5432/auth"),
            "{printed}"
        );
        assert!(
            printed.contains("key_encryption_key = \"[REDACTED]\""),
            "{printed}"
        );
    }
}
