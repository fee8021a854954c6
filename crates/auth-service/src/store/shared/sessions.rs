//! Sessions and refresh tokens — the same text on both databases, but for the rotation's
//! compare-and-set, which each wing writes its own way.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::rows::UserRow;
use crate::domain::authorization::AuthorizationCode;
use crate::store::effects::{EffectsOf, OutboxEvent};
use crate::store::records::NewRefreshToken;

pub(crate) const SESSION_COLUMNS: &str =
    "id, user_id, ip_address, user_agent, browser, os, device_type, created_at, \
     last_activity_at, expires_at, idle_expires_at, ended_at, end_reason, amr, scope";

#[derive(sqlx::FromRow)]
pub(crate) struct SessionStateRow<Id, List> {
    pub ended: bool,
    pub expires_at: DateTime<Utc>,
    pub idle_expires_at: DateTime<Utc>,
    pub key_revoked: bool,
    #[sqlx(flatten)]
    pub user: UserRow<Id, List>,
}

/// An authorization code as `authorization_code` reads it.
#[derive(sqlx::FromRow)]
pub(crate) struct AuthorizationCodeRow<Id> {
    client_id: Id,
    user_id: Id,
    redirect_uri: String,
    code_challenge: String,
    scope: Option<String>,
    amr: String,
    expires_at: DateTime<Utc>,
    spent_at: Option<DateTime<Utc>>,
    session_id: Option<Id>,
}

impl<Id: Into<Uuid>> From<AuthorizationCodeRow<Id>> for AuthorizationCode {
    fn from(row: AuthorizationCodeRow<Id>) -> Self {
        AuthorizationCode {
            client_id: row.client_id.into(),
            user_id: row.user_id.into(),
            redirect_uri: row.redirect_uri,
            code_challenge: row.code_challenge,
            scope: row.scope,
            amr: row.amr.split_whitespace().map(str::to_owned).collect(),
            expires_at: row.expires_at,
            spent_at: row.spent_at,
            session_id: row.session_id.map(Into::into),
        }
    }
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
        /// A login's writes in `tx`: the session with its first refresh token, the oldest
        /// active sessions beyond `max_sessions` evicted, the effects; the evicted ids.
        async fn start_session(
            tx: &mut Tx<'_>,
            session: &NewSession,
            token: &NewRefreshToken,
            max_sessions: u32,
            effects: &Effects,
            evicted: EffectsOf<'_, [Uuid]>,
        ) -> StoreResult<Vec<Uuid>> {
            insert_session(tx, session, token).await?;
            let now = ts(session.created_at);
            let beyond: Vec<DbUuid> = sqlx::query_scalar(BEYOND_MAX_SESSIONS)
                .bind(id(session.user_id))
                .bind(&now)
                .bind(i64::from(max_sessions))
                .fetch_all(&mut **tx)
                .await
                .map_err(db_error)?;
            let beyond: Vec<Uuid> = beyond.into_iter().map(Uuid::from).collect();
            for session_id in &beyond {
                sqlx::query("UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE id = $1")
                    .bind(id(*session_id))
                    .bind(&now)
                    .bind(EndReason::Evicted.as_str())
                    .run(tx)
                    .await?;
            }
            write_effects(tx, effects).await?;
            if !beyond.is_empty() {
                write_effects(tx, &evicted(&beyond)).await?;
            }
            Ok(beyond)
        }

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
                let beyond =
                    start_session(&mut tx, session, token, max_sessions, effects, evicted).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(beyond)
            }

            async fn create_authorization_code(
                &self,
                code: &NewAuthorizationCode,
                forget_before: DateTime<Utc>,
                effects: &Effects,
            ) -> StoreResult<()> {
                let (_turn, mut tx) = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, \
                     code_challenge, scope, amr, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&code.hash)
                .bind(id(code.client_id))
                .bind(id(code.user_id))
                .bind(&code.redirect_uri)
                .bind(&code.code_challenge)
                .bind(&code.scope)
                .bind(code.amr.join(" "))
                .bind(ts(code.created_at))
                .bind(ts(code.expires_at))
                .run(&mut tx)
                .await?;
                // Opportunistic cleanup, as for revoked tokens and client assertions.
                sqlx::query("DELETE FROM authorization_codes WHERE expires_at <= $1")
                    .bind(ts(forget_before))
                    .run(&mut tx)
                    .await?;
                commit(tx, effects).await
            }

            async fn authorization_code(
                &self,
                hash: &[u8],
            ) -> StoreResult<Option<AuthorizationCode>> {
                let row: Option<AuthorizationCodeRow<DbUuid>> = sqlx::query_as(
                    "SELECT client_id, user_id, redirect_uri, code_challenge, scope, amr, expires_at, \
                       spent_at, session_id FROM authorization_codes WHERE code_hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row.map(AuthorizationCode::from))
            }

            async fn spend_authorization_code(
                &self,
                hash: &[u8],
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                let spent = sqlx::query(
                    "UPDATE authorization_codes SET spent_at = $2 \
                     WHERE code_hash = $1 AND spent_at IS NULL",
                )
                .bind(hash)
                .bind(ts(now))
                .run(&mut tx)
                .await?;
                commit_found(tx, spent, &Effects::none()).await
            }

            async fn record_code_login(
                &self,
                hash: &[u8],
                session: &NewSession,
                token: &NewRefreshToken,
                max_sessions: u32,
                effects: &Effects,
                evicted: EffectsOf<'_, [Uuid]>,
            ) -> StoreResult<Option<Vec<Uuid>>> {
                let (_turn, mut tx) = self.begin_write().await?;
                // The spend comes first: of two exchanges of one code, one finds it unspent.
                let spent = sqlx::query(
                    "UPDATE authorization_codes SET spent_at = $2, session_id = $3 \
                     WHERE code_hash = $1 AND spent_at IS NULL",
                )
                .bind(hash)
                .bind(ts(session.created_at))
                .bind(id(session.id))
                .run(&mut tx)
                .await?;
                if spent == 0 {
                    return Ok(None);
                }
                let beyond =
                    start_session(&mut tx, session, token, max_sessions, effects, evicted).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(Some(beyond))
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
