//! The verifier: its configuration, offline verification of access tokens against the cached
//! JWKS (SPEC §3 rules), and the optional online check through introspection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::claims::Claims;
use crate::config::{checked_base_url, VerifierConfig, MAX_LEEWAY};
use crate::error::{AuthError, ConfigError};
use crate::introspect::{self, Introspection};
use crate::jwks::{JwksStats, KeyCache};

/// Tokens longer than this are refused before any parsing; real ones are under 2 KiB.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The algorithms auth-service signs with; every other `alg` is refused before a key is looked up.
const ALGORITHMS: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

/// Verifies auth-service access tokens. Cheap to clone: clones share the key cache.
///
/// Put one in your axum state and expose it with [`axum::extract::FromRef`]; the extractors
/// in [`crate::axum`] find it there.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    keys: KeyCache,
    introspect_url: String,
    issuer: String,
    audience: String,
    leeway: i64,
    validations: HashMap<Algorithm, Validation>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("jwks", &self.stats())
            .finish()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

impl Verifier {
    /// Builds a verifier. No request is made yet: keys are fetched by the first verification
    /// or by [`Verifier::refresh`] (call it at startup to warm the cache).
    pub fn new(config: VerifierConfig) -> Result<Self, ConfigError> {
        let base = checked_base_url(&config.base_url)?;
        if config.leeway > MAX_LEEWAY {
            return Err(ConfigError::LeewayTooLarge(config.leeway));
        }
        if config.issuer.is_empty() {
            return Err(ConfigError::Empty("issuer"));
        }
        if config.audience.is_empty() {
            return Err(ConfigError::Empty("audience"));
        }
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout.min(Duration::from_secs(2)))
            // Keys come from the configured service only, never from wherever it redirects.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("auth-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ConfigError::HttpClient)?;
        let validations = ALGORITHMS
            .into_iter()
            .map(|algorithm| (algorithm, validation(algorithm, &config)))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                keys: KeyCache::new(
                    http.clone(),
                    format!("{base}/.well-known/jwks.json"),
                    config.min_refresh_interval,
                ),
                http,
                introspect_url: format!("{base}/api/auth/introspect"),
                issuer: config.issuer,
                audience: config.audience,
                leeway: i64::try_from(config.leeway.as_secs()).unwrap_or(0),
                validations,
            }),
        })
    }

    /// Verifies `token` offline: the key named by its `kid` (fetched when not cached, see
    /// [`VerifierConfig::min_refresh_interval`]), that key's own algorithm only, the
    /// signature, `iss`, `aud`, `exp`, `nbf` and `iat`. A user's and a client's token are both
    /// accepted; [`Claims::kind`] tells them apart.
    ///
    /// Offline verification cannot see a session that ended before the token expires; use
    /// [`Verifier::verify_online`] where that matters. An API key (`ask_…`) is refused with
    /// [`AuthError::ApiKeyNeedsOnlineCheck`]: only auth-service can check one.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if introspect::is_api_key(token) {
            return Err(AuthError::ApiKeyNeedsOnlineCheck);
        }
        let (algorithm, kid) = parse_header(token)?;
        let key = self.inner.keys.key(&kid).await?;
        // SPEC §3: only the key's own algorithm, so no token can choose how it is checked.
        if key.algorithm != algorithm {
            return Err(AuthError::AlgorithmNotAllowed {
                alg: crate::jwks::algorithm_name(algorithm).to_owned(),
            });
        }
        let validation = self
            .inner
            .validations
            .get(&key.algorithm)
            .ok_or(AuthError::MalformedToken("unsupported algorithm"))?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, validation)
            .map_err(|error| decode_error(error.kind()))?
            .claims;
        // A user's token names its session, a client's its client (SPEC §11); a token with
        // neither is not an access token of auth-service.
        if claims.sid.is_none() && claims.client_id.is_none() {
            return Err(AuthError::MalformedToken(
                "the token names neither a session nor a client",
            ));
        }
        claims.check_times(now_unix(), self.inner.leeway)?;
        Ok(claims)
    }

    /// Verifies `token` offline, then asks auth-service whether it is still active
    /// (`POST /api/auth/introspect`): a user's session not ended, a client not deactivated. So
    /// a logout or revocation is seen at once, and the roles returned are the ones held now.
    ///
    /// An API key (`ask_…`, SPEC §11) is not a JWT: it goes to introspection alone, and its
    /// claims ([`crate::TokenKind::ApiKey`]) are what the service answers.
    ///
    /// Costs one request to the auth service per call; use it for routes that must not
    /// serve a token whose session has ended (payments, password or role changes). A token
    /// that fails offline never reaches the service. The gRPC `ValidateToken` RPC answers the
    /// same question; this crate asks over HTTP.
    pub async fn verify_online(&self, token: &str) -> Result<Claims, AuthError> {
        if introspect::is_api_key(token) {
            return self.verify_api_key(token).await;
        }
        let mut claims = self.verify(token).await?;
        let answer = self.introspect(token).await?;
        if !answer.confirms(&claims) {
            return Err(AuthError::Revoked);
        }
        // SPEC §5: a removed role is gone from introspection at once.
        claims.roles = answer.roles;
        Ok(claims)
    }

    /// An API key, checked by auth-service alone (it cannot be checked here).
    async fn verify_api_key(&self, key: &str) -> Result<Claims, AuthError> {
        if !introspect::is_plausible_api_key(key) {
            return Err(AuthError::MalformedToken("not an API key"));
        }
        self.introspect(key)
            .await?
            .into_api_key_claims(&self.inner.issuer, &self.inner.audience, now_unix())?
            .ok_or(AuthError::Revoked)
    }

    /// Asks auth-service about `token` (RFC 7662 introspection) without verifying it here.
    pub async fn introspect(&self, token: &str) -> Result<Introspection, AuthError> {
        introspect::ask(&self.inner.http, &self.inner.introspect_url, token).await
    }

    /// Fetches the JWKS now, whatever the refresh interval. Keys no longer published
    /// (revoked) stop verifying; on failure the cached keys stay and
    /// [`AuthError::JwksUnavailable`] says why.
    pub async fn refresh(&self) -> Result<(), AuthError> {
        self.inner.keys.refresh().await
    }

    /// Refetches the JWKS every `every` (at least 100 ms) in a background task, so revoked
    /// keys drop out and rotated keys are known before the first token needs them. The task
    /// ends when the last clone of this verifier is dropped, or when the handle is aborted.
    /// Failures are logged at `warn` and the cached keys stay. Call it inside a Tokio runtime.
    pub fn spawn_background_refresh(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let verifier = Arc::downgrade(&self.inner);
        let every = every.max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(inner) = verifier.upgrade() else {
                    return;
                };
                if let Err(error) = inner.keys.refresh().await {
                    tracing::warn!(error = %error, "refreshing the auth service's keys failed; cached keys stay");
                }
            }
        })
    }

    /// Counters of the key cache: fetches made, failed, and keys cached.
    pub fn stats(&self) -> JwksStats {
        self.inner.keys.stats()
    }
}

fn validation(algorithm: Algorithm, config: &VerifierConfig) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    // Times are checked by `Claims::check_times`, with auth-service's own rule.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    validation
}

/// The token's algorithm and `kid`, refusing every algorithm auth-service does not sign with
/// (`none`, `HS*`) before any key is looked up or fetched.
fn parse_header(token: &str) -> Result<(Algorithm, String), AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::MalformedToken("the token is too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::MalformedToken(
            "a JWT has three dot-separated parts",
        ));
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(AuthError::MalformedToken("the header is not a JOSE header"))?;
    let Some(algorithm) = ALGORITHMS
        .into_iter()
        .find(|algorithm| crate::jwks::algorithm_name(*algorithm) == header.alg)
    else {
        let mut alg = header.alg;
        alg.truncate(32);
        return Err(AuthError::AlgorithmNotAllowed { alg });
    };
    // RFC 7515 §4.1.11: extensions this verifier does not understand must not be ignored.
    if header.crit.is_some() {
        return Err(AuthError::MalformedToken(
            "the header names critical extensions",
        ));
    }
    let kid = header
        .kid
        .ok_or(AuthError::MalformedToken("the header names no key (kid)"))?;
    Ok((algorithm, kid))
}

fn decode_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        // Not reached while `verify` compares algorithms first; kept so a refactor cannot turn
        // an algorithm mix-up into a vaguer error.
        ErrorKind::InvalidAlgorithm => AuthError::AlgorithmNotAllowed {
            alg: "unexpected".to_owned(),
        },
        ErrorKind::MissingRequiredClaim(_) => {
            AuthError::MalformedToken("a required claim is missing")
        }
        _ => AuthError::MalformedToken("the claims are not those of an access token"),
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &serde_json::Value) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header.to_string()))
    }

    #[test]
    fn unsigned_and_symmetric_algorithms_are_refused_before_any_key_lookup() {
        for alg in ["none", "None", "HS256", "HS512", "PS256", "ES384"] {
            let header = serde_json::json!({ "alg": alg, "kid": "k" });

            assert_eq!(
                parse_header(&token(&header)),
                Err(AuthError::AlgorithmNotAllowed { alg: alg.into() }),
            );
        }
    }

    #[test]
    fn the_service_algorithms_and_kid_are_read_from_the_header() {
        let header = serde_json::json!({ "alg": "EdDSA", "kid": "abc", "typ": "JWT" });

        assert_eq!(
            parse_header(&token(&header)),
            Ok((Algorithm::EdDSA, "abc".into()))
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let kidless = token(&serde_json::json!({ "alg": "EdDSA" }));
        let critical = token(&serde_json::json!({ "alg": "EdDSA", "kid": "k", "crit": ["b64"] }));

        for bad in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.e30.c2ln",
            &kidless,
            &critical,
        ] {
            assert_eq!(
                parse_header(bad).map_err(|e| e.reason()),
                Err("malformed_token"),
                "{bad}"
            );
        }
        assert_eq!(
            parse_header(&"a".repeat(MAX_TOKEN_BYTES + 1)).map_err(|e| e.reason()),
            Err("malformed_token")
        );
    }

    #[test]
    fn a_config_outside_the_rules_is_refused() {
        let config = || VerifierConfig::new("http://auth:8080", "https://auth.test", "svc");

        assert!(Verifier::new(config()).is_ok());
        assert!(matches!(
            Verifier::new(config().leeway(Duration::from_secs(31))),
            Err(ConfigError::LeewayTooLarge(_))
        ));
        assert!(matches!(
            Verifier::new(VerifierConfig::new("auth:8080", "i", "a")),
            Err(ConfigError::BaseUrl(_))
        ));
        assert!(matches!(
            Verifier::new(VerifierConfig::new("http://auth", "", "a")),
            Err(ConfigError::Empty("issuer"))
        ));
    }

    /// A stand-in auth-service answering introspection with `answer`; it records each token
    /// it was asked about, and serves no JWKS (a fetch would fail the verification).
    async fn introspection_answering(
        answer: serde_json::Value,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use axum::routing::post;

        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = asked.clone();
        let app = axum::Router::new().route(
            "/api/auth/introspect",
            post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                let record = record.clone();
                let answer = answer.clone();
                async move {
                    record
                        .lock()
                        .unwrap()
                        .push(body["token"].as_str().unwrap().to_owned());
                    axum::Json(answer)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, asked)
    }

    const KEY: &str = "ask_0123456789abcdefABCDEF0123456789_1a2B3c";

    #[tokio::test]
    async fn an_api_key_goes_to_introspection_online_and_is_refused_offline() {
        let (url, asked) = introspection_answering(serde_json::json!({
            "active": true, "token_type": "api_key", "sub": "0193a000-0000-7000-8000-000000000001",
            "scope": "reports:read", "roles": ["user"]
        }))
        .await;
        let verifier = Verifier::new(VerifierConfig::new(url, "https://auth.test", "svc")).unwrap();

        let offline = verifier.verify(KEY).await;
        let online = verifier.verify_online(KEY).await.unwrap();

        assert_eq!(offline, Err(AuthError::ApiKeyNeedsOnlineCheck));
        assert_eq!(online.kind(), crate::TokenKind::ApiKey);
        assert!(online.has_scope("reports:read"));
        assert_eq!(*asked.lock().unwrap(), [KEY]);
        assert_eq!(
            verifier.stats().fetches,
            0,
            "a key never looks for signing keys"
        );
    }

    #[tokio::test]
    async fn an_inactive_key_is_revoked_and_junk_after_the_prefix_is_never_sent() {
        let (url, asked) = introspection_answering(serde_json::json!({ "active": false })).await;
        let verifier = Verifier::new(VerifierConfig::new(url, "https://auth.test", "svc")).unwrap();

        let inactive = verifier.verify_online(KEY).await;
        let junk = verifier.verify_online("ask_not a key").await;

        assert_eq!(inactive, Err(AuthError::Revoked));
        assert_eq!(junk.map_err(|e| e.reason()), Err("malformed_token"));
        assert_eq!(*asked.lock().unwrap(), [KEY]);
    }
}
