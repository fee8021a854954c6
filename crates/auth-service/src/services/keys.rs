//! Signing keys: created on first start, rotated and revoked by the CLI, held in memory as a
//! key ring that is reloaded when a token names a key this replica has not seen yet.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::jwt::{KeyRing, RingKey};
use crate::crypto::keys::{self, Sealer};
use crate::store::{Store, StoredKey};

/// Unknown `kid`s trigger a reload at most this often, so junk tokens cannot hammer the database.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// A key as `auth-service keys list` shows it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub kid: String,
    pub algorithm: String,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct Keys {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Clock,
    config: Arc<Config>,
    sealer: Option<Sealer>,
    ring: RwLock<Arc<KeyRing>>,
    last_reload: Mutex<Option<Instant>>,
}

impl Keys {
    /// Loads the keys, creating the first one when there is no active key.
    pub async fn load(
        store: Arc<dyn Store>,
        clock: Clock,
        config: Arc<Config>,
    ) -> anyhow::Result<Self> {
        let sealer = config
            .auth
            .key_encryption_key
            .as_ref()
            .map(|kek| Sealer::from_base64(kek.expose()))
            .transpose()?;
        let ring = RwLock::new(Arc::new(KeyRing::new(
            Vec::new(),
            config.issuer(),
            &config.auth.audience,
        )?));
        let keys = Self {
            inner: Arc::new(Inner {
                store,
                clock,
                config,
                sealer,
                ring,
                last_reload: Mutex::new(None),
            }),
        };
        let stored = keys.inner.store.signing_keys().await?;
        if !stored
            .iter()
            .any(|key| key.retired_at.is_none() && key.revoked_at.is_none())
        {
            let kid = keys.create().await?;
            tracing::info!(kid = %kid, "generated the first signing key");
        }
        keys.reload().await?;
        Ok(keys)
    }

    /// The current key ring.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.inner
            .ring
            .read()
            .map(|ring| ring.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Reads all keys from the store into a fresh ring.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let stored = self.inner.store.signing_keys().await?;
        let mut ring_keys = Vec::with_capacity(stored.len());
        for key in stored {
            let Some(algorithm) = keys::parse_algorithm(&key.algorithm) else {
                continue;
            };
            let active = key.retired_at.is_none() && key.revoked_at.is_none();
            let private_der = if active { Some(self.open(&key)?) } else { None };
            ring_keys.push(RingKey {
                public_jwk: serde_json::from_str(&key.public_jwk)?,
                kid: key.kid,
                algorithm,
                private_der,
                retired_at: key.retired_at,
                revoked: key.revoked_at.is_some(),
            });
        }
        let config = &self.inner.config;
        let ring = Arc::new(KeyRing::new(
            ring_keys,
            config.issuer(),
            &config.auth.audience,
        )?);
        if let Ok(mut slot) = self.inner.ring.write() {
            *slot = ring;
        }
        Ok(())
    }

    /// Reloads when `kid` is unknown here, at most once per [`RELOAD_INTERVAL`].
    pub async fn reload_for(&self, kid: &str) -> bool {
        if self.ring().has_kid(kid) {
            return true;
        }
        let due = {
            let Ok(mut last) = self.inner.last_reload.lock() else {
                return false;
            };
            let due = last.is_none_or(|at| at.elapsed() >= RELOAD_INTERVAL);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            if let Err(error) = self.reload().await {
                tracing::warn!(error = %format!("{error:#}"), "reloading signing keys failed");
            }
        }
        self.ring().has_kid(kid)
    }

    fn open(&self, key: &StoredKey) -> anyhow::Result<Vec<u8>> {
        match (&self.inner.sealer, key.sealed) {
            (Some(sealer), true) => sealer.open(&key.kid, &key.private_key),
            (None, true) => anyhow::bail!(
                "signing key {} is sealed but auth.key_encryption_key is not set",
                key.kid
            ),
            (_, false) => Ok(key.private_key.clone()),
        }
    }

    async fn create(&self) -> anyhow::Result<String> {
        let material = keys::generate(self.inner.config.auth.signing_algorithm)?;
        let (private_key, sealed) = match &self.inner.sealer {
            Some(sealer) => (sealer.seal(&material.kid, &material.private_der)?, true),
            None => (material.private_der, false),
        };
        let stored = StoredKey {
            kid: material.kid.clone(),
            algorithm: keys::algorithm_name(material.algorithm).to_owned(),
            public_jwk: material.public_jwk.to_string(),
            private_key,
            sealed,
            created_at: self.inner.clock.now(),
            retired_at: None,
            revoked_at: None,
        };
        self.inner.store.activate_signing_key(&stored).await?;
        Ok(material.kid)
    }

    /// Makes a new key active; the previous one is retired and stays published until its tokens expire.
    pub async fn rotate(&self) -> anyhow::Result<String> {
        let kid = self.create().await?;
        self.reload().await?;
        Ok(kid)
    }

    /// Revokes a key at once: its tokens fail from now on. False when no such live key exists.
    pub async fn revoke(&self, kid: &str) -> anyhow::Result<bool> {
        let revoked = self
            .inner
            .store
            .revoke_signing_key(kid, self.inner.clock.now())
            .await?;
        self.reload().await?;
        Ok(revoked)
    }

    pub async fn list(&self) -> anyhow::Result<Vec<KeyInfo>> {
        Ok(self
            .inner
            .store
            .signing_keys()
            .await?
            .into_iter()
            .map(|key| KeyInfo {
                kid: key.kid,
                algorithm: key.algorithm,
                created_at: key.created_at,
                retired_at: key.retired_at,
                revoked_at: key.revoked_at,
            })
            .collect())
    }

    /// The JWKS document's keys.
    pub fn jwks(&self) -> Vec<Value> {
        let ttl = chrono::Duration::from_std(self.inner.config.auth.access_token_ttl)
            .unwrap_or(chrono::Duration::MAX);
        self.ring().jwks(self.inner.clock.now(), ttl)
    }
}
