//! What a verifier is told: where auth-service is, the `iss` and `aud` to expect, and the
//! limits on clock skew, key refreshes and requests.

use std::time::Duration;

use crate::error::ConfigError;

/// auth-service's own leeway on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(10);
/// The largest leeway SPEC §3 allows.
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);
/// How often tokens naming an unknown `kid` may trigger a JWKS fetch, by default.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Default timeout of one request to the auth service (JWKS or introspection).
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach the auth service and what to expect in its tokens.
///
/// ```
/// use std::time::Duration;
/// use auth_client::VerifierConfig;
///
/// let config = VerifierConfig::new("http://auth:8080", "https://auth.example.com", "auth-service")
///     .leeway(Duration::from_secs(5))
///     .min_refresh_interval(Duration::from_secs(60));
/// ```
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    pub(crate) base_url: String,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) leeway: Duration,
    pub(crate) min_refresh_interval: Duration,
    pub(crate) http_timeout: Duration,
}

impl VerifierConfig {
    /// `base_url` is where this service reaches auth-service (e.g. `http://auth:8080`); the
    /// JWKS is read from `{base_url}/.well-known/jwks.json` and introspection posted to
    /// `{base_url}/api/auth/introspect`. `issuer` is the `iss` auth-service writes (its
    /// `auth.issuer`, by default its public URL) and `audience` its `auth.audience`
    /// (by default `auth-service`).
    pub fn new(
        base_url: impl Into<String>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: DEFAULT_LEEWAY,
            min_refresh_interval: DEFAULT_MIN_REFRESH_INTERVAL,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
        }
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat`; at most [`MAX_LEEWAY`]
    /// (default [`DEFAULT_LEEWAY`], the service's own).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Tokens naming a `kid` that is not cached trigger a JWKS fetch at most once per this
    /// interval (default [`DEFAULT_MIN_REFRESH_INTERVAL`]). Fetches made by
    /// [`Verifier::refresh`](crate::Verifier::refresh) and the background refresh do not count against it.
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// Timeout of one request to the auth service (default [`DEFAULT_HTTP_TIMEOUT`]); the
    /// connect timeout is the same or 2 s, whichever is smaller.
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }
}

/// `base_url` without a trailing `/`, when it is an absolute http(s) URL with a host.
pub(crate) fn checked_base_url(base_url: &str) -> Result<&str, ConfigError> {
    let base = base_url.trim_end_matches('/');
    match reqwest::Url::parse(base) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(base),
        _ => Err(ConfigError::BaseUrl(base_url.to_owned())),
    }
}
