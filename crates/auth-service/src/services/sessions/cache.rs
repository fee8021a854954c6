//! The session cache (issue 20): what a bearer check read, kept for a moment so the next check
//! of the same session and key needs no database round trip.
//!
//! An entry is trusted only while all of these hold, else the check reads the database:
//! - the store's write fence still reads the epoch read before the entry was loaded (every
//!   change through this replica's store that may change session state raises it after it
//!   commits: such a change takes effect here at once);
//! - it was loaded less than `auth.session_cache_ttl` ago (≤ 1 s) by this replica's clock,
//!   and not in the clock's future: the bound on a change made elsewhere;
//! - the session it holds is alive and its key not revoked, by the deadlines it holds: only
//!   acceptances are cached, and a session past a cached deadline is read again (another
//!   replica may have moved the idle deadline on) before it is ended.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::session::SessionState;

/// Independent locks, so checks on two cores seldom wait for each other.
const SHARDS: usize = 16;
/// Entries per shard; a full shard drops its stale entries, or all of them.
const SHARD_CAPACITY: usize = 4096;

/// One session's entry: what was read when it was checked with key `kid` (a session's tokens
/// change key only at a rotation, so one entry per session; another key replaces it).
struct Entry {
    kid: Box<str>,
    state: SessionState,
    epoch: u64,
    loaded_at: DateTime<Utc>,
}

type Shard = RwLock<HashMap<Uuid, Entry>>;

pub(super) struct SessionCache {
    ttl: chrono::Duration,
    hasher: RandomState,
    shards: Box<[Shard]>,
}

impl SessionCache {
    /// A cache trusting entries for `ttl`; zero keeps nothing.
    pub(super) fn new(ttl: Duration) -> Self {
        Self {
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::zero()),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }

    fn shard(&self, session_id: Uuid) -> &Shard {
        let index = self.hasher.hash_one(session_id) as usize % SHARDS;
        &self.shards[index]
    }

    fn fresh(&self, entry: &Entry, epoch: u64, now: DateTime<Utc>) -> bool {
        entry.epoch == epoch
            && entry.loaded_at <= now
            && now - entry.loaded_at < self.ttl
            && !entry.state.key_revoked
            && entry.state.lapsed(now).is_none()
    }

    /// The state of `session_id` checked with key `kid`, when an entry may still be trusted
    /// at `now` with the store's fence at `epoch`.
    pub(super) fn get(
        &self,
        session_id: Uuid,
        kid: &str,
        epoch: u64,
        now: DateTime<Utc>,
    ) -> Option<SessionState> {
        if self.ttl.is_zero() {
            return None;
        }
        let shard = self
            .shard(session_id)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = shard.get(&session_id)?;
        (*entry.kid == *kid && self.fresh(entry, epoch, now)).then(|| entry.state.clone())
    }

    /// Keeps `state`, read with the fence at `epoch` (read before the state was), at
    /// `loaded_at` (taken before it was read). Only an acceptance is kept.
    pub(super) fn put(
        &self,
        session_id: Uuid,
        kid: &str,
        state: &SessionState,
        epoch: u64,
        loaded_at: DateTime<Utc>,
    ) {
        if self.ttl.is_zero() || state.key_revoked || state.lapsed(loaded_at).is_some() {
            return;
        }
        let mut shard = self
            .shard(session_id)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= SHARD_CAPACITY {
            shard.retain(|_, entry| self.fresh(entry, epoch, loaded_at));
            if shard.len() >= SHARD_CAPACITY {
                shard.clear();
            }
        }
        shard.insert(
            session_id,
            Entry {
                kid: Box::from(kid),
                state: state.clone(),
                epoch,
                loaded_at,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::User;

    fn alive(now: DateTime<Utc>) -> SessionState {
        SessionState {
            user: User {
                id: Uuid::now_v7(),
                email: "a@example.com".into(),
                username: "a".into(),
                display_name: None,
                avatar_url: None,
                bio: None,
                is_verified: true,
                is_active: true,
                roles: vec!["user".into()],
                territories: Vec::new(),
                created_at: now,
                updated_at: now,
            },
            ended: false,
            expires_at: now + chrono::Duration::hours(1),
            idle_expires_at: now + chrono::Duration::minutes(30),
            key_revoked: false,
        }
    }

    #[test]
    fn an_entry_is_trusted_within_the_ttl_and_the_epoch_only() {
        let cache = SessionCache::new(Duration::from_millis(500));
        let now = Utc::now();
        let id = Uuid::now_v7();
        cache.put(id, "k1", &alive(now), 7, now);

        assert!(cache.get(id, "k1", 7, now).is_some());
        assert!(cache
            .get(id, "k1", 7, now + chrono::Duration::milliseconds(499))
            .is_some());
        assert!(cache
            .get(id, "k1", 7, now + chrono::Duration::milliseconds(500))
            .is_none());
        assert!(cache.get(id, "k1", 8, now).is_none(), "the fence moved");
        assert!(cache.get(id, "k2", 7, now).is_none(), "another key");
        assert!(
            cache
                .get(id, "k1", 7, now - chrono::Duration::seconds(1))
                .is_none(),
            "the clock went back"
        );
    }

    #[test]
    fn a_cached_deadline_is_honoured_and_refusals_are_not_kept() {
        let cache = SessionCache::new(Duration::from_secs(1));
        let now = Utc::now();
        let id = Uuid::now_v7();
        let mut state = alive(now);
        state.idle_expires_at = now + chrono::Duration::milliseconds(100);
        cache.put(id, "k", &state, 0, now);
        assert!(cache
            .get(id, "k", 0, now + chrono::Duration::milliseconds(100))
            .is_none());

        let other = Uuid::now_v7();
        let mut ended = alive(now);
        ended.ended = true;
        cache.put(other, "k", &ended, 0, now);
        assert!(cache.get(other, "k", 0, now).is_none());
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = SessionCache::new(Duration::ZERO);
        let now = Utc::now();
        let id = Uuid::now_v7();
        cache.put(id, "k", &alive(now), 0, now);
        assert!(cache.get(id, "k", 0, now).is_none());
    }
}
