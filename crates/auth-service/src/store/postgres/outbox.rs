//! PostgreSQL: the outbox relay's claims and the gauge counts. Several replicas relay at once:
//! their claims take turns and lease the rows they take, so two replicas never claim one event
//! while its lease runs, nor a later event of a user ahead of an earlier one.

use chrono::{DateTime, Utc};

use super::dialect::*;
use super::PgStore;
use crate::store::contract::OutboxStore;
use crate::store::error::StoreResult;
use crate::store::records::PendingEvent;
use crate::store::shared::outbox::{in_seq_order, outbox_store, PendingRow};

/// The advisory lock that claims take turns on (any constant no other code uses: "authclm").
const CLAIM_LOCK: i64 = 0x0061_7574_6863_6c6d;

outbox_store! {
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
            let rows: Vec<PendingRow<DbUuid, DbJson>> = sqlx::query_as(
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
            Ok(in_seq_order(rows))
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
    }
}
