//! When keys were last used, without a write per request: a check notes the time in memory,
//! and [`KeyUses::take`] hands the batch to one statement, every
//! [`super::USE_FLUSH_INTERVAL`] and at shutdown (`app.rs`). A crash loses at most one
//! interval of `last_used_at` updates, never a key.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Distinct keys noted between two flushes; beyond it, further keys wait for a later use.
const MAX_PENDING: usize = 100_000;

#[derive(Default)]
pub(super) struct KeyUses {
    pending: Mutex<HashMap<Uuid, DateTime<Utc>>>,
}

impl KeyUses {
    /// Notes a use of `key_id` at `at` (the latest time wins).
    pub(super) fn note(&self, key_id: Uuid, at: DateTime<Utc>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() >= MAX_PENDING && !pending.contains_key(&key_id) {
            return;
        }
        let last = pending.entry(key_id).or_insert(at);
        if *last < at {
            *last = at;
        }
    }

    /// Everything noted since the last call.
    pub(super) fn take(&self) -> Vec<(Uuid, DateTime<Utc>)> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *pending).into_iter().collect()
    }

    /// Puts back a batch whose write failed, so the next flush tries it again.
    pub(super) fn restore(&self, batch: Vec<(Uuid, DateTime<Utc>)>) {
        for (key_id, at) in batch {
            self.note(key_id, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_use_of_each_key_is_taken_once() {
        let uses = KeyUses::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let now = Utc::now();
        uses.note(a, now);
        uses.note(a, now - chrono::Duration::seconds(5));
        uses.note(b, now);

        let mut batch = uses.take();
        batch.sort();

        assert_eq!(batch.len(), 2);
        assert!(batch.contains(&(a, now)));
        assert!(uses.take().is_empty());
    }
}
