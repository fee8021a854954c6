//! SQLite: sessions and refresh tokens. SQLite runs one writer at a time, so every write
//! transaction starts with its write and waits (busy timeout) rather than failing.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqliteConnection, Transaction};
use uuid::fmt::Hyphenated;
use uuid::Uuid;

use super::users::{credentials_by_id, user_fields, UserRow};
use super::{db_error, id, ts, write_effects, SqliteStore};
use crate::domain::session::SessionState;
use crate::domain::{Device, EndReason, Session};
use crate::store::{
    Effects, EndedEffects, NewRefreshToken, NewSession, Rotation, SessionEvents, SessionStore,
    StoreResult,
};

const SESSION_COLUMNS: &str =
    "id, user_id, ip_address, user_agent, browser, os, device_type, created_at, \
                               last_activity_at, expires_at, idle_expires_at, ended_at, end_reason";

#[derive(sqlx::FromRow)]
struct SessionStateRow {
    ended: bool,
    expires_at: DateTime<Utc>,
    idle_expires_at: DateTime<Utc>,
    key_revoked: bool,
    #[sqlx(flatten)]
    user: UserRow,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Hyphenated,
    user_id: Hyphenated,
    ip_address: Option<String>,
    user_agent: Option<String>,
    browser: Option<String>,
    os: Option<String>,
    device_type: Option<String>,
    created_at: DateTime<Utc>,
    last_activity_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    idle_expires_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    end_reason: Option<String>,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Session {
            id: row.id.into_uuid(),
            user_id: row.user_id.into_uuid(),
            ip_address: row.ip_address,
            user_agent: row.user_agent,
            device: Device {
                browser: row.browser,
                os: row.os,
                device_type: row.device_type,
            },
            created_at: row.created_at,
            last_activity_at: row.last_activity_at,
            expires_at: row.expires_at,
            idle_expires_at: row.idle_expires_at,
            ended_at: row.ended_at,
            end_reason: row.end_reason.as_deref().and_then(EndReason::parse),
        }
    }
}

/// Ends every active session of a user but `except`, inside the caller's transaction; the
/// ids of the sessions it ended.
pub(super) async fn end_user_sessions(
    conn: &mut SqliteConnection,
    user_id: Uuid,
    except: Option<Uuid>,
    reason: EndReason,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Uuid>> {
    let ended: Vec<Hyphenated> = sqlx::query_scalar(
        "UPDATE sessions SET ended_at = $3, end_reason = $4 \
         WHERE user_id = $1 AND ended_at IS NULL AND ($2 IS NULL OR id <> $2) RETURNING id",
    )
    .bind(id(user_id))
    .bind(except.map(id))
    .bind(ts(now))
    .bind(reason.as_str())
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    Ok(ended.into_iter().map(Hyphenated::into_uuid).collect())
}

pub(super) async fn insert_session(
    tx: &mut Transaction<'_, Sqlite>,
    session: &NewSession,
    token: &NewRefreshToken,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, ip_address, user_agent, browser, os, device_type, created_at, \
         last_activity_at, expires_at, idle_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)",
    )
    .bind(id(session.id))
    .bind(id(session.user_id))
    .bind(&session.ip_address)
    .bind(&session.user_agent)
    .bind(&session.device.browser)
    .bind(&session.device.os)
    .bind(&session.device.device_type)
    .bind(ts(session.created_at))
    .bind(ts(session.expires_at))
    .bind(ts(session.idle_expires_at))
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    insert_refresh_token(tx, token).await
}

async fn insert_refresh_token(
    tx: &mut Transaction<'_, Sqlite>,
    token: &NewRefreshToken,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id(token.id))
    .bind(id(token.session_id))
    .bind(&token.hash)
    .bind(ts(token.created_at))
    .bind(ts(token.expires_at))
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct SpentRow {
    session_id: Hyphenated,
    user_id: Hyphenated,
    spent_at: Option<DateTime<Utc>>,
    live_successor: Option<Hyphenated>,
    session_active: bool,
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn record_login(
        &self,
        session: &NewSession,
        token: &NewRefreshToken,
        max_sessions: u32,
        effects: &Effects,
        evicted: EndedEffects<'_>,
    ) -> StoreResult<Vec<Uuid>> {
        let (_turn, mut tx) = self.begin_write().await?;
        insert_session(&mut tx, session, token).await?;
        let now = ts(session.created_at);
        let beyond: Vec<Hyphenated> = sqlx::query_scalar(
            "SELECT id FROM sessions WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 AND idle_expires_at > $2 \
             ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET $3",
        )
        .bind(id(session.user_id))
        .bind(&now)
        .bind(i64::from(max_sessions))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let beyond: Vec<Uuid> = beyond.into_iter().map(Hyphenated::into_uuid).collect();
        for session_id in &beyond {
            sqlx::query("UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE id = $1")
                .bind(id(*session_id))
                .bind(&now)
                .bind(EndReason::Evicted.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        write_effects(&mut tx, effects).await?;
        if !beyond.is_empty() {
            write_effects(&mut tx, &evicted(&beyond)).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(beyond)
    }

    async fn session_state(
        &self,
        session_id: Uuid,
        kid: &str,
        territory: Option<&str>,
    ) -> StoreResult<Option<SessionState>> {
        // One round trip for every bearer check: the session, the signing key's revocation and
        // the (not deleted) user with their roles.
        let sql = format!(
            "SELECT s.ended_at IS NOT NULL AS ended, s.expires_at, s.idle_expires_at, \
               EXISTS (SELECT 1 FROM signing_keys k WHERE k.kid = $2 AND k.revoked_at IS NOT NULL) \
                 AS key_revoked, {} \
             FROM sessions s JOIN users u ON u.id = s.user_id AND u.deleted_at IS NULL \
             WHERE s.id = $1",
            user_fields("$3")
        );
        let row: Option<SessionStateRow> = sqlx::query_as(&sql)
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
        let row: Option<SessionRow> = sqlx::query_as(&sql)
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
        let rows: Vec<SessionRow> = sqlx::query_as(&sql)
            .bind(id(user_id))
            .bind(ts(now))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(Session::from).collect())
    }

    async fn rotate_refresh_token(
        &self,
        hash: &[u8],
        successor: &NewRefreshToken,
        now: DateTime<Utc>,
        idle_deadline: DateTime<Utc>,
        territory: Option<&str>,
        events: SessionEvents<'_>,
    ) -> StoreResult<Rotation> {
        let now_text = ts(now);
        let (_turn, mut tx) = self.begin_write().await?;
        // The successor goes in first, in the presented token's session (it is rolled back
        // unless the compare-and-set wins), so the spent token can reference it.
        sqlx::query(
            "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
             SELECT $1, session_id, $3, $4, $5 FROM refresh_tokens WHERE token_hash = $2",
        )
        .bind(id(successor.id))
        .bind(hash)
        .bind(&successor.hash)
        .bind(ts(successor.created_at))
        .bind(ts(successor.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        // The compare-and-set: only a live token of an active session is spent, once.
        let spent: Option<(Hyphenated,)> = sqlx::query_as(
            "UPDATE refresh_tokens SET spent_at = $2, successor_id = $3 \
             WHERE token_hash = $1 AND spent_at IS NULL AND expires_at > $2 \
               AND session_id IN (SELECT id FROM sessions WHERE ended_at IS NULL AND expires_at > $2 AND idle_expires_at > $2) \
             RETURNING session_id",
        )
        .bind(hash)
        .bind(&now_text)
        .bind(id(successor.id))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        if let Some((session_id,)) = spent {
            let (user_id,): (Hyphenated,) = sqlx::query_as(
                "UPDATE sessions SET last_activity_at = $2, idle_expires_at = $3 WHERE id = $1 RETURNING user_id",
            )
            .bind(session_id)
            .bind(&now_text)
            .bind(ts(idle_deadline))
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
            let (session_id, user_id) = (session_id.into_uuid(), user_id.into_uuid());
            let effects = Effects {
                events: events(session_id, user_id),
                audit: Vec::new(),
            };
            write_effects(&mut tx, &effects).await?;
            let user = credentials_by_id(&mut tx, user_id, territory).await?;
            tx.commit().await.map_err(db_error)?;
            return Ok(Rotation::Rotated {
                session_id,
                user_id,
                user: user.map(|credentials| Box::new(credentials.user)),
            });
        }
        let row: Option<SpentRow> = sqlx::query_as(
            "SELECT rt.session_id, s.user_id, rt.spent_at, \
               CASE WHEN nx.spent_at IS NULL AND nx.expires_at > $2 THEN nx.id END AS live_successor, \
               (s.ended_at IS NULL AND s.expires_at > $2 AND s.idle_expires_at > $2) AS session_active \
             FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id \
             LEFT JOIN refresh_tokens nx ON nx.id = rt.successor_id WHERE rt.token_hash = $1",
        )
        .bind(hash)
        .bind(&now_text)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.rollback().await.map_err(db_error)?;
        Ok(match row {
            None => Rotation::Unknown,
            Some(row) => match row.spent_at {
                Some(spent_at) => Rotation::Spent {
                    session_id: row.session_id.into_uuid(),
                    user_id: row.user_id.into_uuid(),
                    spent_at,
                    live_successor: row.live_successor.map(Hyphenated::into_uuid),
                    session_active: row.session_active,
                },
                None => Rotation::Lapsed {
                    session_id: row.session_id.into_uuid(),
                    user_id: row.user_id.into_uuid(),
                },
            },
        })
    }

    async fn refresh_token_session(&self, hash: &[u8]) -> StoreResult<Option<(Uuid, Uuid)>> {
        let row: Option<(Hyphenated, Hyphenated)> = sqlx::query_as(
            "SELECT rt.session_id, s.user_id FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id \
             WHERE rt.token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(row.map(|(session_id, user_id)| (session_id.into_uuid(), user_id.into_uuid())))
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
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        if ended == 0 {
            return Ok(false);
        }
        write_effects(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn end_sessions_except(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        reason: EndReason,
        now: DateTime<Utc>,
        effects: EndedEffects<'_>,
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
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        if touched == 0 {
            return Ok(false);
        }
        write_effects(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }
}
