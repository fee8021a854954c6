//! SQLite: the outbox relay's claims and the gauge counts — all but `mark_published` and
//! `mark_delivered` is in `shared/outbox.rs`. A single node runs one relay, so a claim needs no row locks; the lease
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

/// Seqs as one JSON array, for `json_each`.
fn seq_list(seqs: &[i64]) -> String {
    serde_json::Value::from(seqs).to_string()
}

outbox_store! {
    impl OutboxStore for SqliteStore {
        /// SQLite: one statement for the whole batch, the seqs one JSON array (`json_each`).
        async fn mark_published(&self, seqs: &[i64], now: DateTime<Utc>) -> StoreResult<()> {
            let (_turn, mut tx) = self.begin_write().await?;
            sqlx::query(
                "UPDATE outbox SET published_at = $2 \
                 WHERE seq IN (SELECT value FROM json_each($1)) AND published_at IS NULL",
            )
            .bind(seq_list(seqs))
            .bind(ts(now))
            .run(&mut tx)
            .await?;
            tx.commit().await.map_err(db_error)
        }

        /// SQLite: one statement for the whole batch, as `mark_published`.
        async fn mark_delivered(
            &self,
            endpoint: &str,
            seqs: &[i64],
            now: DateTime<Utc>,
        ) -> StoreResult<()> {
            let (_turn, mut tx) = self.begin_write().await?;
            sqlx::query(
                "UPDATE webhook_deliveries SET done_at = $3, outcome = 'delivered' \
                 WHERE endpoint = $1 AND seq IN (SELECT value FROM json_each($2)) \
                   AND done_at IS NULL",
            )
            .bind(endpoint)
            .bind(seq_list(seqs))
            .bind(ts(now))
            .run(&mut tx)
            .await?;
            tx.commit().await.map_err(db_error)
        }
    }
}
