//! SQLite: the outbox relay's claims and the gauge counts. A single node runs one relay, so a
//! claim needs no row locks; the lease still lets a crashed relay's events go out again.

use chrono::{DateTime, Utc};

use super::dialect::*;
use super::SqliteStore;
use crate::store::contract::OutboxStore;
use crate::store::error::StoreResult;
use crate::store::records::PendingEvent;
use crate::store::shared::outbox::{in_seq_order, outbox_store, PendingRow};

outbox_store! {
    impl OutboxStore for SqliteStore {
        async fn claim_events(
            &self,
            now: DateTime<Utc>,
            lease_until: DateTime<Utc>,
            limit: u32,
        ) -> StoreResult<Vec<PendingEvent>> {
            // SPEC §6, in order per user: an event waits while an earlier one of its user is held
            // (leased, or waiting for a retry); earlier ones that are due are claimed in the same
            // batch, ahead of it. The statement is one write, so nothing changes under it.
            let (_turn, mut tx) = self.begin_write().await?;
            let rows: Vec<PendingRow<DbUuid, DbJson>> = sqlx::query_as(
                "UPDATE outbox SET next_attempt_at = $2 WHERE seq IN ( \
                   SELECT o.seq FROM outbox o \
                   LEFT JOIN (SELECT user_id, min(seq) AS first_held FROM outbox \
                              WHERE published_at IS NULL AND next_attempt_at > $1 \
                                AND user_id IS NOT NULL \
                              GROUP BY user_id) held ON held.user_id = o.user_id \
                   WHERE o.published_at IS NULL AND o.next_attempt_at <= $1 \
                     AND (held.first_held IS NULL OR o.seq < held.first_held) \
                   ORDER BY o.seq LIMIT $3) \
                 RETURNING seq, id, event_type, user_id, payload, attempts",
            )
            .bind(ts(now))
            .bind(ts(lease_until))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok(in_seq_order(rows))
        }

        async fn mark_published(&self, seqs: &[i64], now: DateTime<Utc>) -> StoreResult<()> {
            // SQLite has no array parameters: one statement per event, in one transaction.
            let (_turn, mut tx) = self.begin_write().await?;
            let now = ts(now);
            for seq in seqs {
                sqlx::query(
                    "UPDATE outbox SET published_at = $2 WHERE seq = $1 AND published_at IS NULL",
                )
                .bind(seq)
                .bind(&now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            }
            tx.commit().await.map_err(db_error)
        }
    }
}
