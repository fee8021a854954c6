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

/// The events a claim may take (SPEC §6, in order per user): due, and ahead of their user's
/// first held one (leased, or waiting for a retry); `$1` is now, `$3` the batch. `held` is
/// each user's first held event, found once per claim (a probe per candidate walked the user's
/// whole history of index entries).
pub(crate) const CLAIMABLE: &str = "SELECT o.seq FROM outbox o \
     LEFT JOIN (SELECT user_id, min(seq) AS first_held FROM outbox \
                WHERE published_at IS NULL AND next_attempt_at > $1 AND user_id IS NOT NULL \
                GROUP BY user_id) held ON held.user_id = o.user_id \
     WHERE o.published_at IS NULL AND o.next_attempt_at <= $1 \
       AND (held.first_held IS NULL OR o.seq < held.first_held) \
     ORDER BY o.seq LIMIT $3";

/// What a claim's `UPDATE … RETURNING` returns.
pub(crate) const PENDING_COLUMNS: &str = "seq, id, event_type, user_id, payload, attempts";

/// The deliveries of one webhook endpoint (`$2`) a claim may take, with their events: the
/// same rule as [`CLAIMABLE`] (due, and ahead of their user's first held delivery), per
/// endpoint; `$1` is now, `$3` the batch.
pub(crate) const CLAIMABLE_DELIVERIES: &str =
    "SELECT d.seq, o.id, o.event_type, o.user_id, o.payload, d.attempts \
     FROM webhook_deliveries d JOIN outbox o ON o.seq = d.seq \
     LEFT JOIN (SELECT user_id, min(seq) AS first_held FROM webhook_deliveries \
                WHERE endpoint = $2 AND done_at IS NULL AND next_attempt_at > $1 \
                  AND user_id IS NOT NULL \
                GROUP BY user_id) held ON held.user_id = d.user_id \
     WHERE d.endpoint = $2 AND d.done_at IS NULL AND d.next_attempt_at <= $1 \
       AND (held.first_held IS NULL OR d.seq < held.first_held) \
     ORDER BY d.seq LIMIT $3";

/// Expands `OutboxStore` for a wing; methods written inside the block are the wing's own
/// (`mark_published` and `mark_delivered`: one statement for a batch, the list bound the
/// wing's way). The wing's `outbox.rs` supplies `take_claim_turn` and `claim_sql`. See `shared/mod.rs` for the
/// names the bodies expect in scope.
macro_rules! outbox_store {
    (impl OutboxStore for $store:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl OutboxStore for $store {
            $($own)*

            async fn claim_events(
                &self,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                limit: u32,
            ) -> StoreResult<Vec<PendingEvent>> {
                // A busy user's backlog goes out a batch at a time rather than an event per
                // round. Which events are claimable needs a view no other claim is changing:
                // the wing's `take_claim_turn`, then its `claim_sql` (`$1` now, `$2` the
                // lease's end, `$3` the batch).
                let (_turn, mut tx) = self.begin_write().await?;
                take_claim_turn(&mut tx).await?;
                let rows: Vec<PendingRow<DbUuid, DbJson>> = sqlx::query_as(&claim_sql())
                    .bind(ts(now))
                    .bind(ts(lease_until))
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(in_seq_order(rows))
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
                .run(&mut *self.connection().await?)
                .await?;
                Ok(())
            }

            async fn prune_published(&self, before: DateTime<Utc>) -> StoreResult<u64> {
                let mut connection = self.connection().await?;
                let events = sqlx::query(
                    "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1",
                )
                .bind(ts(before))
                .run(&mut connection)
                .await?;
                // Deliveries by the age of their event: by then each was delivered or given up
                // (`events.webhook_retention` is at most `events.retention`).
                let deliveries = sqlx::query("DELETE FROM webhook_deliveries WHERE occurred_at < $1")
                    .bind(ts(before))
                    .run(&mut connection)
                    .await?;
                Ok(events + deliveries)
            }

            async fn fan_out_events(
                &self,
                limit: u32,
                route: &(dyn for<'e> Fn(&'e str) -> Vec<String> + Send + Sync),
            ) -> StoreResult<usize> {
                // Fan-outs take turns with claims, so a user's deliveries are all written
                // before a claim can see a later one of theirs.
                let (_turn, mut tx) = self.begin_write().await?;
                take_claim_turn(&mut tx).await?;
                let events: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT seq, event_type FROM outbox WHERE NOT fanned_out ORDER BY seq LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
                if events.is_empty() {
                    return Ok(0);
                }
                // One insert per endpoint and one mark for the batch, not a statement per event:
                // the lane also runs with no endpoint configured, to mark what it has seen.
                let mut routed: Vec<(String, Vec<i64>)> = Vec::new();
                for (seq, event_type) in &events {
                    for endpoint in route(event_type) {
                        match routed.iter_mut().find(|(name, _)| *name == endpoint) {
                            Some((_, seqs)) => seqs.push(*seq),
                            None => routed.push((endpoint, vec![*seq])),
                        }
                    }
                }
                for (endpoint, seqs) in &routed {
                    let mut insert = QueryBuilder::<Db>::new(
                        "INSERT INTO webhook_deliveries \
                         (endpoint, seq, user_id, occurred_at, next_attempt_at) SELECT ",
                    );
                    insert.push_bind(endpoint.as_str());
                    insert.push(", seq, user_id, occurred_at, occurred_at FROM outbox WHERE seq IN (");
                    let mut list = insert.separated(", ");
                    for seq in seqs {
                        list.push_bind(*seq);
                    }
                    insert.push(") ON CONFLICT DO NOTHING");
                    insert.build().execute(&mut *tx).await.map_err(db_error)?;
                }
                let mut mark = QueryBuilder::<Db>::new("UPDATE outbox SET fanned_out = TRUE WHERE seq IN (");
                let mut list = mark.separated(", ");
                for (seq, _) in &events {
                    list.push_bind(*seq);
                }
                mark.push(")");
                mark.build().execute(&mut *tx).await.map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(events.len())
            }

            async fn claim_deliveries(
                &self,
                endpoint: &str,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                limit: u32,
            ) -> StoreResult<Vec<PendingEvent>> {
                let (_turn, mut tx) = self.begin_write().await?;
                take_claim_turn(&mut tx).await?;
                let rows: Vec<PendingRow<DbUuid, DbJson>> = sqlx::query_as(CLAIMABLE_DELIVERIES)
                    .bind(ts(now))
                    .bind(endpoint)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let claimed = in_seq_order(rows);
                if !claimed.is_empty() {
                    let mut lease = QueryBuilder::<Db>::new("UPDATE webhook_deliveries SET next_attempt_at = ");
                    lease.push_bind(ts(lease_until));
                    lease.push(" WHERE endpoint = ");
                    lease.push_bind(endpoint);
                    lease.push(" AND seq IN (");
                    let mut list = lease.separated(", ");
                    for event in &claimed {
                        list.push_bind(event.seq);
                    }
                    lease.push(")");
                    lease.build().execute(&mut *tx).await.map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(claimed)
            }

            async fn record_delivery_failure(
                &self,
                endpoint: &str,
                seq: i64,
                failure: DeliveryFailure<'_>,
            ) -> StoreResult<bool> {
                let outcome: Option<Option<String>> = sqlx::query_scalar(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $3, \
                       next_attempt_at = $4, \
                       done_at = CASE WHEN occurred_at < $5 THEN $6 END, \
                       outcome = CASE WHEN occurred_at < $5 THEN 'given_up' END \
                     WHERE endpoint = $1 AND seq = $2 AND done_at IS NULL RETURNING outcome",
                )
                .bind(endpoint)
                .bind(seq)
                .bind(failure.error)
                .bind(ts(failure.retry_at))
                .bind(ts(failure.give_up_before))
                .bind(ts(failure.now))
                .fetch_optional(&mut *self.connection().await?)
                .await
                .map_err(db_error)?;
                Ok(matches!(outcome, Some(Some(_))))
            }

            async fn pending_delivery_counts(&self) -> StoreResult<Vec<(String, u64)>> {
                let counts: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT endpoint, count(*) FROM webhook_deliveries WHERE done_at IS NULL \
                     GROUP BY endpoint",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(counts
                    .into_iter()
                    .map(|(endpoint, count)| (endpoint, u64::try_from(count).unwrap_or(0)))
                    .collect())
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
