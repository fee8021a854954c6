//! Tokens for outgoing calls (SPEC §11): a [`TokenSource`] gets a client-credentials token
//! from auth-service, keeps it, and renews it before it expires — one request however many
//! callers ask at once (single flight), and after a failure no new request before a short
//! backoff, so an outage or a wrong secret does not turn into a flood.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use crate::config::checked_base_url;
use crate::error::{ConfigError, TokenError};
use crate::token_config::{Clock, TokenSourceConfig};
use crate::token_endpoint::{self, Granted};

/// The first wait after a failed token request; it doubles with each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between token requests after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A token is renewed when less than this share of its life remains (or [`RENEW_AT_LEAST`]).
const RENEW_SHARE: u32 = 10;
/// A token is renewed when less than this remains (or a tenth of its life, if more).
const RENEW_AT_LEAST: Duration = Duration::from_secs(30);
/// A token is not handed out when less than this remains: it could expire on its way.
const IN_FLIGHT_MARGIN: Duration = Duration::from_secs(5);

/// An access token to send as `Authorization: Bearer …`. Its `Debug` shows no token.
#[derive(Clone)]
pub struct AccessToken {
    value: Arc<SecretString>,
}

impl AccessToken {
    /// The token itself, for the `Authorization` header; never log it.
    pub fn expose_secret(&self) -> &str {
        self.value.expose_secret()
    }

    /// `Bearer <token>` as a header value marked sensitive (hidden from `Debug` and from
    /// HTTP/2 header compression tables).
    pub fn header_value(&self) -> Result<HeaderValue, TokenError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.expose_secret()))
            .map_err(|_| TokenError::InvalidResponse {
                reason: "the access token cannot be sent in a header".to_owned(),
            })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

/// Counters of a token source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenSourceStats {
    /// Token requests made since the source was built.
    pub requests: u64,
    /// Of those, the ones that failed.
    pub failed_requests: u64,
}

/// Client-credentials tokens for calls to other services, cached and renewed before expiry.
/// Cheap to clone: clones share the token.
///
/// - The token is kept until less than a tenth of its life, or 30 s, remains; then the next
///   call renews it. While a renewal is in flight, other callers keep using the current token.
/// - When there is no usable token, concurrent callers wait for **one** request.
/// - A failure is handed to every caller waiting for it, and the next request is made no
///   sooner than a backoff later (250 ms, doubling to 10 s; a 429's `Retry-After` up to 60 s).
///   A token that is still valid keeps being used meanwhile.
///
/// Use [`TokenSource::token`] directly, [`TokenSource::authorize`] with reqwest, or
/// [`TokenSource::layer`] for any tower service (tonic channels, hyper clients).
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    token_url: String,
    credentials: HeaderValue,
    scope: Option<String>,
    clock: Clock,
    slot: Mutex<Slot>,
    /// Held by the one caller that is requesting a token (single flight).
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Slot {
    token: Option<Cached>,
    failure: Option<Failure>,
    stats: TokenSourceStats,
}

struct Cached {
    token: AccessToken,
    renew_at: Instant,
    usable_until: Instant,
}

struct Failure {
    error: TokenError,
    retry_at: Instant,
    backoff: Duration,
}

/// What the cache holds for a caller at a given time.
enum Lookup {
    /// A token not due for renewal.
    Fresh(AccessToken),
    /// A token due for renewal but still usable.
    Renewable(AccessToken),
    /// Nothing usable.
    Missing,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.inner.token_url)
            .field("scope", &self.inner.scope)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// Builds a token source. No request is made until the first [`TokenSource::token`].
    pub fn new(config: TokenSourceConfig) -> Result<Self, ConfigError> {
        let base = checked_base_url(&config.base_url)?;
        if config.client_id.is_empty() {
            return Err(ConfigError::Empty("client id"));
        }
        if let Some(bad) = config.scopes.iter().find(|scope| !is_scope_token(scope)) {
            return Err(ConfigError::Scope(bad.clone()));
        }
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout.min(Duration::from_secs(2)))
            // The secret goes to the configured service only, never to where it redirects.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("auth-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ConfigError::HttpClient)?;
        let credentials =
            token_endpoint::basic_credentials(&config.client_id, &config.client_secret)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                token_url: format!("{base}/oauth/token"),
                credentials,
                scope: (!config.scopes.is_empty()).then(|| config.scopes.join(" ")),
                clock: config.clock.unwrap_or_else(|| Arc::new(Instant::now)),
                slot: Mutex::new(Slot::default()),
                fetching: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// A token for the next call: the cached one, or a new one when it is missing or due for
    /// renewal (see the type's docs for single flight and backoff).
    pub async fn token(&self) -> Result<AccessToken, TokenError> {
        let current = match self.lookup() {
            Lookup::Fresh(token) => return Ok(token),
            Lookup::Renewable(token) => Some(token),
            Lookup::Missing => None,
        };
        let _fetching = match &current {
            // One caller renews; the others go on with the token that is still valid.
            Some(token) => match self.inner.fetching.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(token.clone()),
            },
            None => self.inner.fetching.lock().await,
        };
        // Whoever held the lock before may have just renewed, or just failed.
        let current = match self.lookup() {
            Lookup::Fresh(token) => return Ok(token),
            Lookup::Renewable(token) => Some(token),
            Lookup::Missing => None,
        };
        if let Some(error) = self.backing_off() {
            return current.ok_or(error);
        }
        let result = token_endpoint::request(
            &self.inner.http,
            &self.inner.token_url,
            &self.inner.credentials,
            self.inner.scope.as_deref(),
        )
        .await;
        self.record(result, current)
    }

    /// Authorizes a reqwest request with the current token (`bearer_auth`, which marks the
    /// header sensitive).
    ///
    /// ```no_run
    /// # async fn run(tokens: auth_client::TokenSource) -> Result<(), Box<dyn std::error::Error>> {
    /// let http = reqwest::Client::new();
    /// let orders = tokens
    ///     .authorize(http.get("http://orders:8080/api/orders"))
    ///     .await?
    ///     .send()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, TokenError> {
        let token = self.token().await?;
        Ok(request.bearer_auth(token.expose_secret()))
    }

    /// A tower layer adding `Authorization: Bearer …` to every request of the service it
    /// wraps; see [`crate::BearerLayer`].
    pub fn layer(&self) -> crate::bearer::BearerLayer {
        crate::bearer::BearerLayer::new(self.clone())
    }

    /// Token requests made and failed so far.
    pub fn stats(&self) -> TokenSourceStats {
        self.slot().stats
    }

    fn now(&self) -> Instant {
        (self.inner.clock)()
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        // A panic elsewhere while holding the lock leaves a consistent slot: every write to it
        // is a single assignment.
        self.inner
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lookup(&self) -> Lookup {
        let now = self.now();
        match &self.slot().token {
            Some(cached) if now < cached.renew_at => Lookup::Fresh(cached.token.clone()),
            Some(cached) if now < cached.usable_until => Lookup::Renewable(cached.token.clone()),
            _ => Lookup::Missing,
        }
    }

    /// The last failure, while its backoff lasts.
    fn backing_off(&self) -> Option<TokenError> {
        let now = self.now();
        self.slot()
            .failure
            .as_ref()
            .filter(|failure| now < failure.retry_at)
            .map(|failure| failure.error.clone())
    }

    /// Keeps a new token, or the failure and when to try again; answers the caller.
    fn record(
        &self,
        result: Result<Granted, TokenError>,
        current: Option<AccessToken>,
    ) -> Result<AccessToken, TokenError> {
        let now = self.now();
        let mut slot = self.slot();
        slot.stats.requests += 1;
        match result {
            Ok(granted) => {
                let (renew_at, usable_until) = renewal(now, granted.lifetime);
                let token = AccessToken {
                    value: Arc::new(granted.access_token),
                };
                slot.token = Some(Cached {
                    token: token.clone(),
                    renew_at,
                    usable_until,
                });
                slot.failure = None;
                tracing::debug!(
                    lifetime_s = granted.lifetime.as_secs(),
                    scope = granted.scope.as_deref().unwrap_or_default(),
                    "got an access token for outgoing calls"
                );
                Ok(token)
            }
            Err(error) => {
                slot.stats.failed_requests += 1;
                let backoff = next_backoff(slot.failure.as_ref(), &error);
                tracing::warn!(%error, retry_in_ms = backoff.as_millis(), "cannot get an access token for outgoing calls");
                slot.failure = Some(Failure {
                    error: error.clone(),
                    retry_at: now + backoff,
                    backoff,
                });
                current.ok_or(error)
            }
        }
    }
}

/// When a token fetched at `now` and living `lifetime` is renewed, and until when it is
/// handed out: renewed when less than max(10 %, 30 s) of its life remains — but never in its
/// first half, so a short-lived token is not fetched on every call.
fn renewal(now: Instant, lifetime: Duration) -> (Instant, Instant) {
    let margin = (lifetime / RENEW_SHARE)
        .max(RENEW_AT_LEAST)
        .min(lifetime / 2);
    let in_flight = IN_FLIGHT_MARGIN.min(margin / 2);
    (now + (lifetime - margin), now + (lifetime - in_flight))
}

/// The wait before the next request: doubling from [`FIRST_BACKOFF`] to [`MAX_BACKOFF`], or
/// what a 429 asked for if longer.
fn next_backoff(previous: Option<&Failure>, error: &TokenError) -> Duration {
    let doubled = previous.map_or(FIRST_BACKOFF, |failure| {
        (failure.backoff * 2).min(MAX_BACKOFF)
    });
    match error {
        TokenError::RateLimited {
            retry_after: Some(retry_after),
        } => doubled.max(*retry_after),
        _ => doubled,
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|byte| matches!(byte, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_renewed_when_a_tenth_or_30_seconds_of_its_life_remain() {
        let now = Instant::now();

        let quarter_hour = renewal(now, Duration::from_secs(900));
        let day = renewal(now, Duration::from_secs(86_400));
        let minute = renewal(now, Duration::from_secs(60));
        let short = renewal(now, Duration::from_secs(20));

        assert_eq!(quarter_hour.0 - now, Duration::from_secs(810));
        assert_eq!(day.0 - now, Duration::from_secs(77_760));
        assert_eq!(minute.0 - now, Duration::from_secs(30));
        assert_eq!(
            short.0 - now,
            Duration::from_secs(10),
            "never in the first half"
        );
        assert_eq!(quarter_hour.1 - now, Duration::from_secs(895));
        assert_eq!(short.1 - now, Duration::from_secs(15));
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap_and_honours_retry_after() {
        let failure = |backoff| Failure {
            error: TokenError::Unavailable { reason: "x".into() },
            retry_at: Instant::now(),
            backoff,
        };
        let down = TokenError::Unavailable { reason: "x".into() };
        let limited = TokenError::RateLimited {
            retry_after: Some(Duration::from_secs(20)),
        };

        assert_eq!(next_backoff(None, &down), FIRST_BACKOFF);
        assert_eq!(
            next_backoff(Some(&failure(Duration::from_secs(1))), &down),
            Duration::from_secs(2)
        );
        assert_eq!(
            next_backoff(Some(&failure(MAX_BACKOFF)), &down),
            MAX_BACKOFF
        );
        assert_eq!(next_backoff(None, &limited), Duration::from_secs(20));
    }

    #[test]
    fn scopes_are_rfc_6749_scope_tokens() {
        let config = |scope: &str| {
            TokenSourceConfig::new("http://auth:8080", "id", "secret").scopes([scope])
        };

        assert!(TokenSource::new(config("orders:read")).is_ok());
        for bad in ["", "a b", "a\"b", "a\\b", "é"] {
            assert!(
                matches!(TokenSource::new(config(bad)), Err(ConfigError::Scope(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            TokenSource::new(TokenSourceConfig::new("http://auth:8080", "", "s")),
            Err(ConfigError::Empty(_))
        ));
    }

    #[test]
    fn no_debug_output_shows_the_secret_or_the_token() {
        let config = TokenSourceConfig::new("http://auth:8080", "id", "hunter2-secret");
        let source = TokenSource::new(config.clone()).unwrap();
        let token = AccessToken {
            value: Arc::new(SecretString::from("eyJ.secret.token".to_owned())),
        };

        let printed = format!("{config:?} {source:?} {token:?}");

        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("eyJ"), "{printed}");
        assert!(token.header_value().unwrap().is_sensitive());
    }
}
