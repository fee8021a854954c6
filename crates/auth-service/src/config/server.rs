//! `[server]`: listening addresses, proxies, CORS and HTTP hardening.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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
    /// Largest request body in bytes (SPEC §2: 64 KiB); also the largest gRPC message.
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
