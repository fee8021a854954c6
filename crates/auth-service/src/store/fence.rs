//! The write fence (issue 20): a counter this store raises after every committed write that
//! may change what a bearer check reads (a session ended, a user changed, a role taken, a key
//! revoked). The session cache of `services/sessions` trusts an entry only while the counter
//! still reads what it read before loading that entry, so a change made through this store
//! takes effect at once on this replica. Other replicas (and the CLI) do not see the counter:
//! there the cache's short TTL bounds the staleness.
//!
//! The hook is the write transaction itself: every write begins with `begin_write()`, whose
//! [`FencedTx`] learns from `write_effects` whether its effects may change session state
//! ([`Effects::may_change_session_state`]) and raises the counter once it has committed.
//! A write that carries no effects and still changes session state (a key revocation) calls
//! [`WriteFence::raise`] itself.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::{Database, Transaction};

use crate::store::effects::Effects;

/// The counter of committed writes that may change session state.
#[derive(Debug, Default)]
pub struct WriteFence {
    epoch: AtomicU64,
}

impl WriteFence {
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Called after the change is committed (never before: a reader that loads between a
    /// raise and the commit would read the old state under the new epoch).
    pub fn raise(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

/// A write transaction that raises its store's fence after it commits, when the effects it
/// wrote may change session state. It reads and writes as the connection it wraps.
pub struct FencedTx<'c, DB: Database> {
    inner: Transaction<'c, DB>,
    fence: Arc<WriteFence>,
    raises: bool,
}

impl<'c, DB: Database> FencedTx<'c, DB> {
    pub fn new(inner: Transaction<'c, DB>, fence: Arc<WriteFence>) -> Self {
        Self {
            inner,
            fence,
            raises: false,
        }
    }

    /// Notes effects written in this transaction.
    pub fn note(&mut self, effects: &Effects) {
        self.raises |= effects.may_change_session_state();
    }

    /// Commits, then raises the fence when the transaction noted a change to session state.
    /// A failed commit raises it too: whether it reached the database is unknown.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        let Self {
            inner,
            fence,
            raises,
        } = self;
        let committed = inner.commit().await;
        if raises {
            fence.raise();
        }
        committed
    }

    /// Rolls back: nothing changed, the fence stays.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.inner.rollback().await
    }
}

impl<DB: Database> Deref for FencedTx<'_, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.inner
    }
}

impl<DB: Database> DerefMut for FencedTx<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.inner
    }
}
