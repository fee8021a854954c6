//! Signing keys through their whole life (SPEC §3): created on first start, rotated and revoked
//! by the CLI, held in memory as a key ring that is reread periodically and when a token names
//! a key this replica has not seen yet. Every reread also seals private halves left in clear
//! and wipes those of keys that will never sign again.

mod sealing;

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use sealing::sealer;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::jwt::{KeyRing, RingKey, LEEWAY_SECONDS};
use crate::crypto::keys;
use crate::crypto::sealing::Sealer;
use crate::error::{Dependency, Error};
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
    /// For a retired key: when it stops verifying.
    pub verifies_until: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct Keys {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Clock,
    config: Arc<Config>,
    sealer: Sealer,
    ring: RwLock<Arc<KeyRing>>,
    last_reload: Mutex<Option<Instant>>,
}

impl Keys {
    /// Loads the keys, creating the first one when there is no active key. Fails when no
    /// sealing key is configured where one must be, or when the stored keys were sealed with
    /// another key than the configured one.
    pub async fn load(
        store: Arc<dyn Store>,
        clock: Clock,
        config: Arc<Config>,
    ) -> anyhow::Result<Self> {
        let stored = store.signing_keys().await?;
        let sealer = sealing::resolve(&config, store.as_ref(), &stored)?;
        sealing::check_opens(&sealer, &stored)?;
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
        // SPEC §3: never zero keys.
        if !stored.iter().any(StoredKey::is_active) {
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

    /// Reads all keys from the store into a fresh ring; on the way seals private halves an
    /// older version left in clear and wipes those of revoked keys and of retired keys whose
    /// tokens have all expired.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let stored = self.inner.store.signing_keys().await?;
        let now = self.inner.clock.now();
        let mut ring_keys = Vec::with_capacity(stored.len());
        for key in stored {
            let Some(algorithm) = keys::parse_algorithm(&key.algorithm) else {
                continue;
            };
            let verifies_until = key.retired_at.map(|at| self.retirement_end(at));
            self.tidy(&key, verifies_until.is_some_and(|end| end <= now))
                .await?;
            let private_der = if key.is_active() {
                Some(self.open(&key)?)
            } else {
                None
            };
            ring_keys.push(RingKey {
                public_jwk: serde_json::from_str(&key.public_jwk)?,
                kid: key.kid,
                algorithm,
                private_der,
                verifies_until,
                revoked: key.revoked_at.is_some(),
            });
        }
        let config = &self.inner.config;
        let ring = Arc::new(KeyRing::new(
            ring_keys,
            config.issuer(),
            &config.auth.audience,
        )?);
        if !ring.can_sign() {
            tracing::warn!(
                "there is no active signing key: logins and refreshes answer 503 until \
                 `auth-service keys rotate` makes one"
            );
        }
        if let Ok(mut slot) = self.inner.ring.write() {
            *slot = ring;
        }
        Ok(())
    }

    /// Seals a private half found in clear, or wipes one that will never sign again.
    async fn tidy(&self, key: &StoredKey, expired: bool) -> anyhow::Result<()> {
        if !key.has_private_half() {
            return Ok(());
        }
        if key.revoked_at.is_some() || expired {
            self.inner.store.wipe_signing_key(&key.kid).await?;
            tracing::info!(kid = %key.kid, "wiped the private half of a signing key");
        } else if !key.sealed {
            let sealed = self.inner.sealer.seal(&key.kid, &key.private_key)?;
            self.inner.store.seal_signing_key(&key.kid, &sealed).await?;
            tracing::info!(kid = %key.kid, "sealed a signing key stored in clear");
        }
        Ok(())
    }

    /// SPEC §3: a retired key verifies until the last token it signed has expired.
    fn retirement_end(&self, retired_at: DateTime<Utc>) -> DateTime<Utc> {
        let ttl = chrono::Duration::from_std(self.inner.config.auth.access_token_ttl)
            .unwrap_or(chrono::Duration::MAX);
        retired_at
            .checked_add_signed(ttl)
            .and_then(|end| end.checked_add_signed(chrono::Duration::seconds(LEEWAY_SECONDS)))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Reloads when `kid` is unknown here, at most once per [`RELOAD_INTERVAL`].
    pub async fn reload_for(&self, kid: &str) -> bool {
        if !self.ring().has_kid(kid) {
            self.reload_if_due().await;
        }
        self.ring().has_kid(kid)
    }

    async fn reload_if_due(&self) {
        let due = {
            let Ok(mut last) = self.inner.last_reload.lock() else {
                return;
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
    }

    /// Whether a token can be signed now; rereads the keys (at most once per
    /// [`RELOAD_INTERVAL`]) when this ring has no active key. A request that spends something
    /// it cannot give back (a refresh token) asks first, so it never spends it and then fails
    /// for want of a key.
    pub async fn ready_to_sign(&self) -> Result<(), Error> {
        if !self.ring().can_sign() {
            self.reload_if_due().await;
        }
        if self.ring().can_sign() {
            Ok(())
        } else {
            Err(Error::Unavailable(Dependency::SigningKey))
        }
    }

    /// Seals another secret at rest with the key that seals the signing keys (SPEC §10: TOTP
    /// secrets); `label` is bound as associated data, so the sealed bytes open only for it.
    pub fn seal_secret(&self, label: &str, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.inner.sealer.seal(label, plaintext)
    }

    /// Opens what [`Keys::seal_secret`] sealed for `label`.
    pub fn open_secret(&self, label: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.inner.sealer.open(label, sealed)
    }

    /// Signs an access token with the active key; 503 when there is none.
    pub fn sign<C: serde::Serialize>(&self, claims: &C) -> Result<String, Error> {
        let ring = self.ring();
        if !ring.can_sign() {
            return Err(Error::Unavailable(Dependency::SigningKey));
        }
        ring.sign(claims).map_err(Error::Internal)
    }

    fn open(&self, key: &StoredKey) -> anyhow::Result<Vec<u8>> {
        if !key.has_private_half() {
            anyhow::bail!("the private half of signing key {} is gone", key.kid);
        }
        if key.sealed {
            self.inner.sealer.open(&key.kid, &key.private_key)
        } else {
            Ok(key.private_key.clone())
        }
    }

    async fn create(&self) -> anyhow::Result<String> {
        let material = keys::generate(self.inner.config.auth.signing_algorithm)?;
        let stored = StoredKey {
            kid: material.kid.clone(),
            algorithm: keys::algorithm_name(material.algorithm).to_owned(),
            public_jwk: material.public_jwk.to_string(),
            private_key: self
                .inner
                .sealer
                .seal(&material.kid, &material.private_der)?,
            sealed: true,
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

    /// Revokes a key at once: its tokens fail from now on and its private half is wiped. The
    /// active key is first replaced by a new one (SPEC §3: never zero keys). False when no
    /// such unrevoked key exists.
    pub async fn revoke(&self, kid: &str) -> anyhow::Result<bool> {
        let stored = self.inner.store.signing_keys().await?;
        let Some(key) = stored
            .iter()
            .find(|key| key.kid == kid && key.revoked_at.is_none())
        else {
            return Ok(false);
        };
        if key.is_active() {
            let successor = self.create().await?;
            tracing::info!(kid = %successor, "activated a new signing key before revoking the active one");
        }
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
                verifies_until: key.retired_at.map(|at| self.retirement_end(at)),
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
        self.ring().jwks(self.inner.clock.now())
    }
}
