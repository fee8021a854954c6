//! The API key cache: what a key check read, kept for a moment so the next check of the same
//! key needs no database round trip — the same bound as the session cache (`sessions/cache.rs`,
//! issue 20), so a key check costs no more than a bearer JWT check.
//!
//! An entry is trusted only while all of these hold, else the check reads the database:
//! - the store's write fence still reads the epoch read before the entry was loaded (a
//!   revocation, a role change, a deactivation through this replica raises it: such a change
//!   takes effect here at once);
//! - it was loaded less than `auth.session_cache_ttl` ago (≤ 1 s) by this replica's clock,
//!   and not in the clock's future: the bound on a change made on another replica;
//! - the key has not expired by the deadline it holds.
//!
//! Only acceptances are kept, keyed by the SHA-256 of the key (never the key).

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::caller::KeyCaller;

/// Entries kept; a full cache drops its stale entries, or all of them.
const CAPACITY: usize = 16_384;

struct Entry {
    caller: KeyCaller,
    epoch: u64,
    loaded_at: DateTime<Utc>,
}

pub(super) struct KeyCache {
    ttl: chrono::Duration,
    entries: RwLock<HashMap<Vec<u8>, Entry>>,
}

impl KeyCache {
    /// A cache trusting entries for `ttl`; zero keeps nothing.
    pub(super) fn new(ttl: Duration) -> Self {
        Self {
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::zero()),
            entries: RwLock::default(),
        }
    }

    fn fresh(&self, entry: &Entry, epoch: u64, now: DateTime<Utc>) -> bool {
        entry.epoch == epoch
            && entry.loaded_at <= now
            && now - entry.loaded_at < self.ttl
            && entry.caller.key.is_live(now)
    }

    /// The caller of the key whose hash is `hash`, when an entry may still be trusted.
    pub(super) fn get(&self, hash: &[u8], epoch: u64, now: DateTime<Utc>) -> Option<KeyCaller> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(hash)?;
        self.fresh(entry, epoch, now).then(|| entry.caller.clone())
    }

    /// Keeps an accepted `caller`, read with the fence at `epoch` at `loaded_at` (both taken
    /// before the read).
    pub(super) fn put(
        &self,
        hash: &[u8],
        caller: &KeyCaller,
        epoch: u64,
        loaded_at: DateTime<Utc>,
    ) {
        if self.ttl.is_zero() || !caller.key.is_live(loaded_at) {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.retain(|_, entry| self.fresh(entry, epoch, loaded_at));
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            hash.to_vec(),
            Entry {
                caller: caller.clone(),
                epoch,
                loaded_at,
            },
        );
    }

    /// Forgets a key at once (its revocation on this replica).
    pub(super) fn forget(&self, key_id: uuid::Uuid) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, entry| entry.caller.key.id != key_id);
    }
}
