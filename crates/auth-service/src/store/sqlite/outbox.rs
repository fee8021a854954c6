//! SQLite: the outbox relay's claims and the gauge counts — all but `mark_published` is in
//! `shared/outbox.rs`. A single node runs one relay, so a claim needs no row locks; the lease
//! still lets a crashed relay's events go out again.

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use super::dialect::*;
use super::rows::Run;
use super::SqliteStore;
use crate::store::contract::OutboxStore;
use crate::store::error::StoreResult;
use crate::store::records::{DeliveryFailure, PendingEvent};
use crate::store::shared::outbox::{
    in_seq_order, outbox_store, PendingRow, CLAIMABLE, CLAIMABLE_DELIVERIES, PENDING_COLUMNS,
};

/// SQLite: the claim is one write statement, so nothing changes under it; no turn to take.
async fn take_claim_turn(_tx: &mut Tx<'_>) -> StoreResult<()> {
    Ok(())
}

/// SQLite: a plain `IN (…)`; it has neither arrays nor row locks (it needs none).
fn claim_sql() -> String {
    format!(
        "UPDATE outbox SET next_attempt_at = $2 WHERE seq IN ({CLAIMABLE}) \
         RETURNING {PENDING_COLUMNS}"
    )
}

outbox_store! {
    impl OutboxStore for SqliteStore {
        /// SQLite: no array parameters; one statement per event, in one transaction.
        async fn mark_published(&self, seqs: &[i64], now: DateTime<Utc>) -> StoreResult<()> {
            let (_turn, mut tx) = self.begin_write().await?;
            let now = ts(now);
            for seq in seqs {
                sqlx::query(
                    "UPDATE outbox SET published_at = $2 WHERE seq = $1 AND published_at IS NULL",
                )
                .bind(seq)
                .bind(&now)
                .run(&mut tx)
                .await?;
            }
            tx.commit().await.map_err(db_error)
        }
    }
}
