//! Sessions and refresh tokens — the same text on both databases, but for the rotation's
//! compare-and-set, which each wing writes its own way.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::rows::UserRow;
use crate::store::effects::{EffectsOf, OutboxEvent};
use crate::store::records::NewRefreshToken;

pub(crate) const SESSION_COLUMNS: &str =
    "id, user_id, ip_address, user_agent, browser, os, device_type, created_at, \
     last_activity_at, expires_at, idle_expires_at, ended_at, end_reason, amr";

#[derive(sqlx::FromRow)]
pub(crate) struct SessionStateRow<Id, List> {
    pub ended: bool,
    pub expires_at: DateTime<Utc>,
    pub idle_expires_at: DateTime<Utc>,
    pub key_revoked: bool,
    #[sqlx(flatten)]
    pub user: UserRow<Id, List>,
}

/// A refresh token presented for rotation: the arguments of
/// `SessionStore::rotate_refresh_token`, which each wing's `rotate` spends its own way.
pub(crate) struct Presented<'a> {
    pub hash: &'a [u8],
    pub successor: &'a NewRefreshToken,
    pub now: DateTime<Utc>,
    pub idle_deadline: DateTime<Utc>,
    pub territory: Option<&'a str>,
    pub events: EffectsOf<'a, (Uuid, Uuid), Vec<OutboxEvent>>,
}

/// What a refresh token is now, when presenting it spent nothing.
#[derive(sqlx::FromRow)]
pub(crate) struct SpentRow<Id> {
    pub session_id: Id,
    pub user_id: Id,
    pub spent_at: Option<DateTime<Utc>>,
    pub live_successor: Option<Id>,
    pub session_active: bool,
}

/// Expands `SessionStore` for a wing, and `rotation_refused` for the wing's own `rotate`;
/// methods written inside the block are the wing's own. The wing's `sessions.rs` supplies
/// `BEYOND_MAX_SESSIONS` and the store's `rotate(Presented)`, the compare-and-set. See `shared/mod.rs` for the names the bodies
/// expect in scope.
macro_rules! session_store {
    (impl SessionStore for $store:ty { $($own:tt)* }) => {
        /// Why presenting a token spent nothing, from what the token is now.
        async fn rotation_refused(
            conn: &mut Conn,
            hash: &[u8],
            now: DateTime<Utc>,
        ) -> StoreResult<Rotation> {
            let row: Option<SpentRow<DbUuid>> = sqlx::query_as(
                "SELECT rt.session_id, s.user_id, rt.spent_at, \
                   CASE WHEN nx.spent_at IS NULL AND nx.expires_at > $2 THEN nx.id END AS live_successor, \
                   (s.ended_at IS NULL AND s.expires_at > $2 AND s.idle_expires_at > $2) AS session_active \
                 FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id \
                 LEFT JOIN refresh_tokens nx ON nx.id = rt.successor_id WHERE rt.token_hash = $1",
            )
            .bind(hash)
            .bind(ts(now))
            .fetch_optional(conn)
            .await
            .map_err(db_error)?;
            Ok(match row {
                None => Rotation::Unknown,
                Some(row) => match row.spent_at {
                    Some(spent_at) => Rotation::Spent {
                        session_id: row.session_id.into(),
                        user_id: row.user_id.into(),
                        spent_at,
                        live_successor: row.live_successor.map(Uuid::from),
                        session_active: row.session_active,
                    },
                    None => Rotation::Lapsed {
                        session_id: row.session_id.into(),
                        user_id: row.user_id.into(),
                    },
                },
            })
        }

        #[async_trait::async_trait]
        impl SessionStore for $store {
            $($own)*

            async fn record_login(
                &self,
                session: &NewSession,
                token: &NewRefreshToken,
                max_sessions: u32,
                effects: &Effects,
                evicted: EffectsOf<'_, [Uuid]>,
            ) -> StoreResult<Vec<Uuid>> {
                let (_turn, mut tx) = self.begin_write().await?;
                insert_session(&mut tx, session, token).await?;
                let now = ts(session.created_at);
                let beyond: Vec<DbUuid> = sqlx::query_scalar(BEYOND_MAX_SESSIONS)
                    .bind(id(session.user_id))
                    .bind(&now)
                    .bind(i64::from(max_sessions))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let beyond: Vec<Uuid> = beyond.into_iter().map(Uuid::from).collect();
                for session_id in &beyond {
                    sqlx::query("UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE id = $1")
                        .bind(id(*session_id))
                        .bind(&now)
                        .bind(EndReason::Evicted.as_str())
                        .run(&mut tx)
                        .await?;
                }
                write_effects(&mut tx, effects).await?;
                if !beyond.is_empty() {
                    write_effects(&mut tx, &evicted(&beyond)).await?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(beyond)
            }

            async fn rotate_refresh_token(
                &self,
                hash: &[u8],
                successor: &NewRefreshToken,
                now: DateTime<Utc>,
                idle_deadline: DateTime<Utc>,
                territory: Option<&str>,
                events: EffectsOf<'_, (Uuid, Uuid), Vec<OutboxEvent>>,
            ) -> StoreResult<Rotation> {
                self.rotate(Presented { hash, successor, now, idle_deadline, territory, events })
                    .await
            }

            async fn session_state(
                &self,
                session_id: Uuid,
                kid: &str,
                territory: Option<&str>,
            ) -> StoreResult<Option<SessionState>> {
                // One round trip for every bearer check: the session, the signing key's
                // revocation and the (not deleted) user with their roles.
                let sql = format!(
                    "SELECT s.ended_at IS NOT NULL AS ended, s.expires_at, s.idle_expires_at, \
                       EXISTS (SELECT 1 FROM signing_keys k WHERE k.kid = $2 AND k.revoked_at IS NOT NULL) \
                         AS key_revoked, {} \
                     FROM sessions s JOIN users u ON u.id = s.user_id AND u.deleted_at IS NULL \
                     WHERE s.id = $1",
                    user_fields("$3")
                );
                let row: Option<SessionStateRow<DbUuid, DbList>> = sqlx::query_as(&sql)
                    .bind(id(session_id))
                    .bind(kid)
                    .bind(territory)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(row.map(|row| SessionState {
                    ended: row.ended,
                    expires_at: row.expires_at,
                    idle_expires_at: row.idle_expires_at,
                    key_revoked: row.key_revoked,
                    user: row.user.into_credentials().user,
                }))
            }

            async fn session(&self, session_id: Uuid) -> StoreResult<Option<Session>> {
                let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
                let row: Option<SessionRow<DbUuid>> = sqlx::query_as(&sql)
                    .bind(id(session_id))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(row.map(Session::from))
            }

            async fn active_sessions(
                &self,
                user_id: Uuid,
                now: DateTime<Utc>,
            ) -> StoreResult<Vec<Session>> {
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND ended_at IS NULL \
                     AND expires_at > $2 AND idle_expires_at > $2 ORDER BY created_at DESC, id DESC"
                );
                let rows: Vec<SessionRow<DbUuid>> = sqlx::query_as(&sql)
                    .bind(id(user_id))
                    .bind(ts(now))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(rows.into_iter().map(Session::from).collect())
            }

            async fn refresh_token_session(&self, hash: &[u8]) -> StoreResult<Option<(Uuid, Uuid)>> {
                let row: Option<(DbUuid, DbUuid)> = sqlx::query_as(
                    "SELECT rt.session_id, s.user_id FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id \
                     WHERE rt.token_hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row.map(|(session_id, user_id)| (session_id.into(), user_id.into())))
            }

            async fn end_session(
                &self,
                session_id: Uuid,
                reason: EndReason,
                now: DateTime<Utc>,
                effects: &Effects,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                let ended = sqlx::query(
                    "UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE id = $1 AND ended_at IS NULL",
                )
                .bind(id(session_id))
                .bind(ts(now))
                .bind(reason.as_str())
                .run(&mut tx)
                .await?;
                commit_found(tx, ended, effects).await
            }

            async fn end_sessions_except(
                &self,
                user_id: Uuid,
                except: Option<Uuid>,
                reason: EndReason,
                now: DateTime<Utc>,
                effects: EffectsOf<'_, [Uuid]>,
            ) -> StoreResult<u64> {
                let (_turn, mut tx) = self.begin_write().await?;
                let ended = end_user_sessions(&mut tx, user_id, except, reason, now).await?;
                if !ended.is_empty() {
                    write_effects(&mut tx, &effects(&ended)).await?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(ended.len() as u64)
            }

            async fn record_activity(
                &self,
                session_id: Uuid,
                now: DateTime<Utc>,
                idle_deadline: DateTime<Utc>,
                effects: &Effects,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                let touched = sqlx::query(
                    "UPDATE sessions SET last_activity_at = $2, idle_expires_at = $3 \
                     WHERE id = $1 AND ended_at IS NULL AND expires_at > $2 AND idle_expires_at > $2",
                )
                .bind(id(session_id))
                .bind(ts(now))
                .bind(ts(idle_deadline))
                .run(&mut tx)
                .await?;
                commit_found(tx, touched, effects).await
            }
        }
    };
}
pub(crate) use session_store;
