//! The JWKS cache: fetches `/.well-known/jwks.json`, keeps the keys it may verify with, and
//! refetches on an unknown `kid` at most once per interval, one fetch at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::error::AuthError;

/// A JWKS larger than this is refused; auth-service publishes a handful of keys.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// A public key and the one algorithm it verifies.
pub(crate) struct VerifyingKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

/// One JWK as auth-service publishes it (OKP/Ed25519, EC/P-256 or RSA).
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

impl Jwk {
    /// The key and its algorithm. The algorithm follows from the key type and curve; a JWK
    /// whose `alg` says otherwise is refused, and so is every symmetric (`oct`) key, so a token
    /// can never pick HS256 with a public key as the secret (SPEC §3).
    fn into_verifying_key(self) -> Result<(String, VerifyingKey), String> {
        let kid = self.kid.ok_or("a key without kid")?;
        if self.usage.as_deref().is_some_and(|usage| usage != "sig") {
            return Err(format!("key {kid} is not a signing key"));
        }
        let component = |value: Option<String>, name: &str| {
            value.ok_or_else(|| format!("key {kid} has no `{name}`"))
        };
        let (algorithm, key) = match (self.kty.as_str(), self.crv.as_deref()) {
            ("OKP", Some("Ed25519")) => (
                Algorithm::EdDSA,
                DecodingKey::from_ed_components(&component(self.x, "x")?),
            ),
            ("EC", Some("P-256")) => (
                Algorithm::ES256,
                DecodingKey::from_ec_components(&component(self.x, "x")?, &component(self.y, "y")?),
            ),
            ("RSA", _) => (
                Algorithm::RS256,
                DecodingKey::from_rsa_components(
                    &component(self.n, "n")?,
                    &component(self.e, "e")?,
                ),
            ),
            (kty, crv) => return Err(format!("key {kid} has unsupported type {kty}/{crv:?}")),
        };
        let key = key.map_err(|error| format!("key {kid} is invalid: {error}"))?;
        if let Some(alg) = self.alg.as_deref() {
            if alg != algorithm_name(algorithm) {
                return Err(format!("key {kid} claims alg {alg} for a {} key", self.kty));
            }
        }
        Ok((kid, VerifyingKey { algorithm, key }))
    }
}

/// The JOSE name of the algorithms this crate verifies.
pub(crate) fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::EdDSA => "EdDSA",
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        _ => "unsupported",
    }
}

/// The keys of one JWKS document, by `kid`.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
}

impl KeySet {
    /// Parses a JWKS document. Keys this crate cannot use are skipped with a warning, so one
    /// odd key does not lock every token out.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        let set: JwkSet =
            serde_json::from_slice(body).map_err(|error| format!("not a JWK set: {error}"))?;
        let mut keys = HashMap::new();
        for value in set.keys {
            let parsed = serde_json::from_value::<Jwk>(value)
                .map_err(|error| format!("a JWK is malformed: {error}"))
                .and_then(Jwk::into_verifying_key);
            match parsed {
                Ok((kid, key)) => {
                    keys.insert(kid, Arc::new(key));
                }
                Err(why) => tracing::warn!(why = %why, "skipping a key of the auth service's JWKS"),
            }
        }
        Ok(Self { keys })
    }

    pub(crate) fn get(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.keys.get(kid).cloned()
    }
}

/// Decides when an unknown `kid` may trigger a fetch.
#[derive(Debug, Default)]
pub(crate) struct RefreshGate {
    last_miss_fetch: Option<Instant>,
    /// Why the most recent fetch (of any kind) failed; `None` after a success.
    last_failure: Option<String>,
}

impl RefreshGate {
    /// True, and remembers `now`, when no miss-triggered fetch happened within `interval`.
    pub(crate) fn try_begin(&mut self, now: Instant, interval: Duration) -> bool {
        let due = self
            .last_miss_fetch
            .is_none_or(|last| now.saturating_duration_since(last) >= interval);
        if due {
            self.last_miss_fetch = Some(now);
        }
        due
    }

    /// The error for a `kid` that is still not cached: the endpoint is down, or the key unknown.
    pub(crate) fn miss(&self, kid: &str) -> AuthError {
        match &self.last_failure {
            Some(reason) => AuthError::JwksUnavailable {
                reason: reason.clone(),
            },
            None => AuthError::UnknownKid {
                kid: kid.to_owned(),
            },
        }
    }
}

/// Counters of the JWKS cache, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksStats {
    /// JWKS fetches attempted since the verifier was built.
    pub fetches: u64,
    /// Of those, the ones that failed (unreachable, non-2xx, or not a JWK set).
    pub failed_fetches: u64,
    /// Keys cached now.
    pub cached_keys: usize,
}

/// The cached keys and the single-flight refresh around them.
pub(crate) struct KeyCache {
    http: reqwest::Client,
    url: String,
    interval: Duration,
    keys: RwLock<Arc<KeySet>>,
    /// Held for the whole fetch: concurrent misses wait for one fetch instead of starting their own.
    gate: tokio::sync::Mutex<RefreshGate>,
    fetches: AtomicU64,
    failed_fetches: AtomicU64,
}

impl KeyCache {
    pub(crate) fn new(http: reqwest::Client, url: String, interval: Duration) -> Self {
        Self {
            http,
            url,
            interval,
            keys: RwLock::new(Arc::new(KeySet::default())),
            gate: tokio::sync::Mutex::new(RefreshGate::default()),
            fetches: AtomicU64::new(0),
            failed_fetches: AtomicU64::new(0),
        }
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The key named `kid`: from the cache, or after one rate-limited refresh.
    pub(crate) async fn key(&self, kid: &str) -> Result<Arc<VerifyingKey>, AuthError> {
        if let Some(key) = self.current().get(kid) {
            return Ok(key);
        }
        let mut gate = self.gate.lock().await;
        // Another request may have fetched the key while this one waited for the gate.
        if let Some(key) = self.current().get(kid) {
            return Ok(key);
        }
        // SPEC §8: a flood of tokens naming unknown kids costs the auth service at most one
        // fetch per interval, however many requests carry them.
        if gate.try_begin(Instant::now(), self.interval) {
            // The outcome is kept in the gate; `miss` below reports it.
            let _ = self.fetch(&mut gate).await;
        }
        self.current().get(kid).ok_or_else(|| gate.miss(kid))
    }

    /// Fetches the JWKS now (not rate-limited); on failure the cached keys stay.
    pub(crate) async fn refresh(&self) -> Result<(), AuthError> {
        let mut gate = self.gate.lock().await;
        self.fetch(&mut gate).await
    }

    async fn fetch(&self, gate: &mut RefreshGate) -> Result<(), AuthError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.download().await.and_then(|body| KeySet::parse(&body)) {
            Ok(set) => {
                // Keys missing from the new set (revoked, or retired long enough) are dropped here.
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
                gate.last_failure = None;
                Ok(())
            }
            Err(reason) => {
                self.failed_fetches.fetch_add(1, Ordering::Relaxed);
                gate.last_failure = Some(reason.clone());
                Err(AuthError::JwksUnavailable { reason })
            }
        }
    }

    async fn download(&self) -> Result<Vec<u8>, String> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| format!("GET {}: {error}", self.url))?;
        if response
            .content_length()
            .is_some_and(|length| length > MAX_JWKS_BYTES as u64)
        {
            return Err(format!("GET {}: the JWKS is too large", self.url));
        }
        let body = response
            .bytes()
            .await
            .map_err(|error| format!("GET {}: {error}", self.url))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("GET {}: the JWKS is too large", self.url));
        }
        Ok(body.to_vec())
    }

    pub(crate) fn stats(&self) -> JwksStats {
        JwksStats {
            fetches: self.fetches.load(Ordering::Relaxed),
            failed_fetches: self.failed_fetches.load(Ordering::Relaxed),
            cached_keys: self.current().keys.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Public keys from the examples of RFC 8037, 7515 and 7517, in the shapes auth-service publishes.
    const ED25519_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
    const RSA_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    fn set(keys: &serde_json::Value) -> KeySet {
        KeySet::parse(serde_json::json!({ "keys": keys }).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn every_key_type_of_the_service_is_read_with_its_own_algorithm() {
        let keys = set(&serde_json::json!([
            { "kty": "OKP", "crv": "Ed25519", "x": ED25519_X, "kid": "ed", "alg": "EdDSA", "use": "sig" },
            { "kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": "ec", "alg": "ES256" },
            { "kty": "RSA", "n": RSA_N, "e": "AQAB", "kid": "rsa", "alg": "RS256" },
        ]));

        assert_eq!(keys.get("ed").unwrap().algorithm, Algorithm::EdDSA);
        assert_eq!(keys.get("ec").unwrap().algorithm, Algorithm::ES256);
        assert_eq!(keys.get("rsa").unwrap().algorithm, Algorithm::RS256);
    }

    #[test]
    fn symmetric_mislabelled_and_kidless_keys_are_skipped() {
        let keys = set(&serde_json::json!([
            { "kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256" },
            { "kty": "OKP", "crv": "Ed25519", "x": ED25519_X, "kid": "lies", "alg": "HS256" },
            { "kty": "OKP", "crv": "Ed25519", "x": ED25519_X, "kid": "enc", "use": "enc" },
            { "kty": "OKP", "crv": "Ed25519", "x": ED25519_X },
            { "kty": "OKP", "crv": "Ed25519", "x": ED25519_X, "kid": "good" },
        ]));

        assert!(keys.get("hmac").is_none());
        assert!(keys.get("lies").is_none());
        assert!(keys.get("enc").is_none());
        assert_eq!(keys.keys.len(), 1);
        assert!(keys.get("good").is_some());
    }

    #[test]
    fn a_document_that_is_not_a_jwk_set_is_an_error() {
        assert!(KeySet::parse(b"<html>").is_err());
        assert!(KeySet::parse(b"{\"kids\":[]}").is_err());
    }

    #[test]
    fn misses_fetch_at_most_once_per_interval() {
        let mut gate = RefreshGate::default();
        let start = Instant::now();
        let interval = Duration::from_secs(30);

        let first = gate.try_begin(start, interval);
        let soon_after = gate.try_begin(start + Duration::from_secs(29), interval);
        let after_the_interval = gate.try_begin(start + interval, interval);
        let right_after_that = gate.try_begin(start + interval + Duration::from_secs(1), interval);

        assert!(first);
        assert!(!soon_after);
        assert!(after_the_interval);
        assert!(!right_after_that);
    }

    #[test]
    fn a_miss_reports_an_unreachable_endpoint_until_a_fetch_succeeds() {
        let mut gate = RefreshGate::default();

        assert_eq!(gate.miss("k"), AuthError::UnknownKid { kid: "k".into() });
        gate.last_failure = Some("connection refused".into());
        assert_eq!(gate.miss("k").reason(), "jwks_unavailable");
    }
}
