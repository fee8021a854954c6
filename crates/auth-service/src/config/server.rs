//! `[server]`: listening addresses, proxies, CORS and HTTP hardening.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;

/// The `SameSite` attribute of the refresh cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum CookieSameSite {
    /// Sent only on requests from the service's own site (the default).
    Strict,
    /// Also sent on top-level navigations from other sites.
    Lax,
    /// Sent on cross-site requests too: a page on another site; requires `Secure`.
    None,
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
    /// `SameSite` of the refresh cookie: `Strict` (the page and the service on one site),
    /// `Lax`, or `None` for a page on another site (needs `cookie_secure`; the cookie is then
    /// also `Partitioned`).
    pub cookie_same_site: CookieSameSite,
    /// Longest time a request may take before it is answered 503.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest request body in bytes (SPEC §2: 64 KiB); also the largest gRPC message.
    pub body_limit_bytes: usize,
    /// How long in-flight requests may run after SIGTERM/SIGINT.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// How long a client has to send a complete request head (HTTP/1), or its first request
    /// (any protocol), before the connection is closed: a slowloris client cannot hold a
    /// connection open by dribbling headers. On HTTP/1 the wait for the next request on a
    /// kept-alive connection counts too.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed (HTTP/1 keep-alive and
    /// HTTP/2 alike).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most HTTP connections served at once; further ones wait in the listen backlog, unread,
    /// until one closes.
    pub max_connections: usize,
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
            cookie_same_site: CookieSameSite::Strict,
            request_timeout: Duration::from_secs(30),
            body_limit_bytes: 64 * 1024,
            shutdown_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

impl ServerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError::at(key, why));
        if url::Url::parse(&self.public_url).is_err() {
            return bad("server.public_url", "must be an absolute URL");
        }
        if self.cookie_same_site == CookieSameSite::None && !self.cookie_secure {
            return bad(
                "server.cookie_same_site",
                "None needs server.cookie_secure = true (browsers drop a SameSite=None cookie that is not Secure)",
            );
        }
        if self.body_limit_bytes == 0 {
            return bad("server.body_limit_bytes", "must be at least 1");
        }
        if let Some((key, why)) = self.problem() {
            return bad(key, why);
        }
        for (index, proxy) in self.trusted_proxies.iter().enumerate() {
            if proxy.parse::<ipnet::IpNet>().is_err() && proxy.parse::<IpAddr>().is_err() {
                return bad(
                    &format!("server.trusted_proxies[{index}]"),
                    "is not an IP address or CIDR range",
                );
            }
        }
        for (index, origin) in self.cors_origins.iter().enumerate() {
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
        Ok(())
    }

    /// The first connection bound that cannot work, as `(key, why)`.
    fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.max_connections == 0 {
            Some(("server.max_connections", "must be at least 1"))
        } else if self.header_read_timeout.is_zero() {
            Some(("server.header_read_timeout", "must be longer than 0s"))
        } else if self.idle_timeout.is_zero() {
            Some(("server.idle_timeout", "must be longer than 0s"))
        } else {
            None
        }
    }
}

/// A list from TOML, or a comma-separated string from an environment variable.
pub(super) fn list_or_commas<'de, D: serde::Deserializer<'de>>(
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
