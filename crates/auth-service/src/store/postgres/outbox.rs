//! PostgreSQL: the outbox relay's claims and the gauge counts. Several replicas relay at once:
//! their claims take turns and lease the rows they take, so two replicas never claim one event
//! while its lease runs, nor a later event of a user ahead of an earlier one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{db_error, PgStore};
use crate::store::{OutboxStore, PendingEvent, StoreResult};

/// The advisory lock that claims take turns on (any constant no other code uses: "authclm").
const CLAIM_LOCK: i64 = 0x0061_7574_6863_6c6d;

#[derive(sqlx::FromRow)]
struct PendingRow {
    seq: i64,
    id: Uuid,
    event_type: String,
    user_id: Option<Uuid>,
    payload: serde_json::Value,
    attempts: i32,
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn claim_events(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<PendingEvent>> {
        // SPEC §6, in order per user: an event waits while an earlier one of its user is held
        // elsewhere (leased by a relay, or waiting for a retry); earlier ones that are due are
        // claimed in the same batch, ahead of it, so a busy user's backlog goes out a batch at
        // a time rather than an event per round. That judgement needs a view no other claim
        // is changing: claims take turns on an advisory lock (each is one short statement),
        // and wait for a due row another transaction holds rather than skip past it.
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CLAIM_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        // `held`: each user's first held event, found once per claim (a probe per candidate
        // walked the user's whole history of not yet vacuumed index entries). `= ANY(ARRAY(…))`
        // updates the claimed rows by key instead of hash-joining the whole table.
        let mut rows: Vec<PendingRow> = sqlx::query_as(
            "UPDATE outbox SET next_attempt_at = $2 WHERE seq = ANY(ARRAY( \
               SELECT o.seq FROM outbox o \
               LEFT JOIN (SELECT user_id, min(seq) AS first_held FROM outbox \
                          WHERE published_at IS NULL AND next_attempt_at > $1 \
                            AND user_id IS NOT NULL \
                          GROUP BY user_id) held ON held.user_id = o.user_id \
               WHERE o.published_at IS NULL AND o.next_attempt_at <= $1 \
                 AND (held.first_held IS NULL OR o.seq < held.first_held) \
               ORDER BY o.seq LIMIT $3 FOR UPDATE OF o)) \
             RETURNING seq, id, event_type, user_id, payload, attempts",
        )
        .bind(now)
        .bind(lease_until)
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
                id: row.id,
                event_type: row.event_type,
                user_id: row.user_id,
                payload: row.payload.to_string(),
                attempts: row.attempts,
            })
            .collect())
    }

    async fn mark_published(&self, seqs: &[i64], now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET published_at = $2 WHERE seq = ANY($1) AND published_at IS NULL",
        )
        .bind(seqs)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
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
        .bind(retry_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn prune_published(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done =
            sqlx::query("DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1")
                .bind(before)
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
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
