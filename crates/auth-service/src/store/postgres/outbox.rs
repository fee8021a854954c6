//! PostgreSQL: the outbox relay's claims and the gauge counts — all but `mark_published` and
//! `mark_delivered` is in `shared/outbox.rs`. Several replicas relay at once: their claims take turns and lease
//! the rows they take, so two replicas never claim one event while its lease runs, nor a
//! later event of a user ahead of an earlier one.

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use super::dialect::*;
use super::rows::Run;
use super::PgStore;
use crate::store::contract::OutboxStore;
use crate::store::error::StoreResult;
use crate::store::records::{DeliveryFailure, PendingEvent};
use crate::store::shared::outbox::{
    in_seq_order, outbox_store, PendingRow, CLAIMABLE, CLAIMABLE_DELIVERIES, PENDING_COLUMNS,
};

/// The advisory lock that claims take turns on (any constant no other code uses: "authclm").
const CLAIM_LOCK: i64 = 0x0061_7574_6863_6c6d;

/// PostgreSQL: claims take turns on an advisory lock (each is one short statement).
async fn take_claim_turn(tx: &mut Tx<'_>) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CLAIM_LOCK)
        .run(tx)
        .await?;
    Ok(())
}

/// PostgreSQL: `= ANY(ARRAY(…))` updates the claimed rows by key instead of hash-joining the
/// whole table; `FOR UPDATE OF o` waits for a due row another transaction holds rather than
/// skip past it.
fn claim_sql() -> String {
    format!(
        "UPDATE outbox SET next_attempt_at = $2 \
         WHERE seq = ANY(ARRAY({CLAIMABLE} FOR UPDATE OF o)) RETURNING {PENDING_COLUMNS}"
    )
}

outbox_store! {
    impl OutboxStore for PgStore {
        /// PostgreSQL: one statement for the whole batch, the seqs an array parameter, taking
        /// its turn with claims and fan-outs. The fan-out lane marks the same rows
        /// (`fanned_out`) in one multi-row update too, each in the order its plan scans them;
        /// two such updates of overlapping rows in different orders can deadlock, and a mark
        /// PostgreSQL aborted left its events leased, unpublished in the outbox, until the lease
        /// ended (seen after the benchmark's load: the outbox drained 59.6 s after it stopped,
        /// the 60 s lease).
        async fn mark_published(&self, seqs: &[i64], now: DateTime<Utc>) -> StoreResult<()> {
            let (_turn, mut tx) = self.begin_write().await?;
            take_claim_turn(&mut tx).await?;
            sqlx::query(
                "UPDATE outbox SET published_at = $2 WHERE seq = ANY($1) AND published_at IS NULL",
            )
            .bind(seqs)
            .bind(ts(now))
            .run(&mut tx)
            .await?;
            tx.commit().await.map_err(db_error)
        }

        /// PostgreSQL: one statement for the whole batch, as `mark_published`.
        async fn mark_delivered(
            &self,
            endpoint: &str,
            seqs: &[i64],
            now: DateTime<Utc>,
        ) -> StoreResult<()> {
            sqlx::query(
                "UPDATE webhook_deliveries SET done_at = $3, outcome = 'delivered' \
                 WHERE endpoint = $1 AND seq = ANY($2) AND done_at IS NULL",
            )
            .bind(endpoint)
            .bind(seqs)
            .bind(ts(now))
            .run(&mut *self.connection().await?)
            .await?;
            Ok(())
        }
    }
}
