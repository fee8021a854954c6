//! The relay's side of the outbox and the gauge counts — the same text on both databases,
//! but for how a relay claims events and marks them published.

use uuid::Uuid;

use crate::store::records::PendingEvent;

/// A claimed outbox row; `Id` and `Json` are the wing's `DbUuid` and `DbJson`.
#[derive(sqlx::FromRow)]
pub(crate) struct PendingRow<Id, Json> {
    seq: i64,
    id: Id,
    event_type: String,
    user_id: Option<Id>,
    payload: Json,
    attempts: i32,
}

/// Claimed rows as events, in `seq` order (RETURNING promises no order).
pub(crate) fn in_seq_order<Id: Into<Uuid>, Json: ToString>(
    mut rows: Vec<PendingRow<Id, Json>>,
) -> Vec<PendingEvent> {
    rows.sort_by_key(|row| row.seq);
    rows.into_iter()
        .map(|row| PendingEvent {
            seq: row.seq,
            id: row.id.into(),
            event_type: row.event_type,
            user_id: row.user_id.map(Into::into),
            payload: row.payload.to_string(),
            attempts: row.attempts,
        })
        .collect()
}

/// Expands `OutboxStore` for a wing; methods written inside the block are the wing's own. See
/// `shared/mod.rs` for the names the bodies expect in scope.
macro_rules! outbox_store {
    (impl OutboxStore for $store:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl OutboxStore for $store {
            $($own)*

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
    };
}
pub(crate) use outbox_store;
