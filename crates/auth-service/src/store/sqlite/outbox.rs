//! SQLite: the outbox relay's claims and the gauge counts. A single node runs one relay, so a
//! claim needs no row locks; the lease still lets a crashed relay's events go out again.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::fmt::Hyphenated;

use super::{db_error, ts, SqliteStore};
use crate::store::{OutboxStore, PendingEvent, StoreResult};

#[derive(sqlx::FromRow)]
struct PendingRow {
    seq: i64,
    id: Hyphenated,
    event_type: String,
    user_id: Option<Hyphenated>,
    payload: String,
    attempts: i32,
}

#[async_trait]
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
        let mut rows: Vec<PendingRow> = sqlx::query_as(
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
        // RETURNING promises no order.
        rows.sort_by_key(|row| row.seq);
        Ok(rows
            .into_iter()
            .map(|row| PendingEvent {
                seq: row.seq,
                id: row.id.into_uuid(),
                event_type: row.event_type,
                user_id: row.user_id.map(Hyphenated::into_uuid),
                payload: row.payload,
                attempts: row.attempts,
            })
            .collect())
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

    async fn record_publish_failure(
        &self,
        seq: i64,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 \
             WHERE seq = $1 AND published_at IS NULL",
        )
        .bind(seq)
        .bind(error)
        .bind(ts(retry_at))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn prune_published(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done =
            sqlx::query("DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1")
                .bind(ts(before))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(done.rows_affected())
    }

    async fn pending_event_count(&self) -> StoreResult<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn active_session_count(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sessions \
             WHERE ended_at IS NULL AND expires_at > $1 AND idle_expires_at > $1",
        )
        .bind(ts(now))
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
