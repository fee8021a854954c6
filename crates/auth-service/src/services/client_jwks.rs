//! The JWK Sets of `private_key_jwt` clients that name a `jwks_uri` (RFC 7523, SPEC §11):
//! fetched with a timeout and a size limit, cached, refetched on an unknown `kid` no more
//! often than a floor allows. Each replica keeps its own cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;

use crate::crypto::client_keys::{self, MAX_JWKS_BYTES};

/// How long a fetched JWK Set is used before it is fetched again.
const CACHE_FOR: chrono::Duration = chrono::Duration::minutes(5);
/// Least time between two fetches of one set: an unknown `kid` refetches, but a flood of
/// made-up `kid`s cannot make this service hammer the client's server.
const REFETCH_FLOOR: chrono::Duration = chrono::Duration::seconds(10);
/// A JWKS server slower than this fails the authentication.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Most sets cached; when full the cache starts over.
const MAX_CACHED: usize = 1024;

struct Fetched {
    set: Arc<JwkSet>,
    fetched_at: DateTime<Utc>,
}

/// Clients' fetched JWK Sets, by `jwks_uri`. Each replica keeps its own.
pub struct ClientJwks {
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Fetched>>,
}

impl Default for ClientJwks {
    fn default() -> Self {
        // No redirects: a client's keys are where it says they are.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            http,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl ClientJwks {
    /// The set at `uri`: the cached one while fresh, else fetched. `refresh` (an unknown
    /// `kid`) fetches again unless the last fetch was within the floor. A failed fetch falls
    /// back to the set cached before, if any.
    pub(super) async fn keys(
        &self,
        uri: &str,
        now: DateTime<Utc>,
        refresh: bool,
    ) -> Option<Arc<JwkSet>> {
        let cached = self.cache.lock().ok().and_then(|cache| {
            cache
                .get(uri)
                .map(|entry| (entry.set.clone(), now - entry.fetched_at))
        });
        if let Some((set, age)) = &cached {
            let fresh = if refresh {
                *age < REFETCH_FLOOR
            } else {
                *age < CACHE_FOR
            };
            if fresh {
                return Some(set.clone());
            }
        }
        match self.fetch(uri).await {
            Ok(set) => {
                let set = Arc::new(set);
                if let Ok(mut cache) = self.cache.lock() {
                    if cache.len() >= MAX_CACHED {
                        cache.clear();
                    }
                    let entry = Fetched {
                        set: set.clone(),
                        fetched_at: now,
                    };
                    cache.insert(uri.to_owned(), entry);
                }
                Some(set)
            }
            Err(reason) => {
                tracing::warn!(
                    jwks_uri = uri,
                    reason,
                    "a client's JWK Set could not be fetched"
                );
                cached.map(|(set, _)| set)
            }
        }
    }

    async fn fetch(&self, uri: &str) -> Result<JwkSet, &'static str> {
        let mut response = self.http.get(uri).send().await.map_err(|_| "no answer")?;
        if !response.status().is_success() {
            return Err("not a success status");
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| "the body broke off")? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                return Err("longer than 16 KiB");
            }
        }
        let text = std::str::from_utf8(&body).map_err(|_| "not UTF-8")?;
        client_keys::parse_jwks(text)
    }
}
