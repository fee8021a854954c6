//! What a [`crate::TokenSource`] is told: where auth-service is, the client's id and secret
//! (held as a secret, never printed), the scopes to ask for, and where it reads the time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::config::DEFAULT_HTTP_TIMEOUT;

/// Where a token source reads the time: [`Instant::now`] unless a test sets another.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Who a [`crate::TokenSource`] is and what it asks for.
///
/// ```
/// use auth_client::TokenSourceConfig;
///
/// let config = TokenSourceConfig::new(
///     "http://auth-service:8080",
///     "0193a5c4-…",                              // the client's id
///     std::env::var("BILLING_CLIENT_SECRET").unwrap_or_default(),
/// )
/// .scopes(["orders:read"]);
/// ```
#[derive(Clone)]
pub struct TokenSourceConfig {
    pub(crate) base_url: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
    pub(crate) scopes: Vec<String>,
    pub(crate) http_timeout: Duration,
    pub(crate) clock: Option<Clock>,
}

impl std::fmt::Debug for TokenSourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSourceConfig")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl TokenSourceConfig {
    /// `base_url` is where this service reaches auth-service (the token endpoint is
    /// `{base_url}/oauth/token`); `client_id` and `client_secret` are the client's, as
    /// `POST /api/clients` answered them.
    pub fn new(
        base_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            client_id: client_id.into(),
            client_secret: SecretString::from(client_secret.into()),
            scopes: Vec::new(),
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            clock: None,
        }
    }

    /// The scopes to ask for, each one of the client's; by default none is named and the
    /// service grants all of the client's scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Timeout of one token request (default [`DEFAULT_HTTP_TIMEOUT`]).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Reads the time from `clock` instead of [`Instant::now`], so a test can move time on
    /// and see a token renewed without waiting for it.
    pub fn clock(mut self, clock: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }
}
