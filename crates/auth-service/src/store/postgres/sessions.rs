//! PostgreSQL: sessions and refresh tokens. Row locks of the compare-and-set UPDATE
//! serialise concurrent refreshes of one token; the loser sees the winner's commit.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::users::{user_fields, UserRow};
use super::{db_error, write_effects, FoundEvents, PgStore};
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
    id: Uuid,
    user_id: Uuid,
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
            id: row.id,
            user_id: row.user_id,
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
    conn: &mut PgConnection,
    user_id: Uuid,
    except: Option<Uuid>,
    reason: EndReason,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Uuid>> {
    let ended: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET ended_at = $3, end_reason = $4 \
         WHERE user_id = $1 AND ended_at IS NULL AND ($2::uuid IS NULL OR id <> $2) RETURNING id",
    )
    .bind(user_id)
    .bind(except)
    .bind(now)
    .bind(reason.as_str())
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    Ok(ended)
}

pub(super) async fn insert_session(
    tx: &mut Transaction<'_, Postgres>,
    session: &NewSession,
    token: &NewRefreshToken,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, ip_address, user_agent, browser, os, device_type, created_at, \
         last_activity_at, expires_at, idle_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)",
    )
    .bind(session.id)
    .bind(session.user_id)
    .bind(&session.ip_address)
    .bind(&session.user_agent)
    .bind(&session.device.browser)
    .bind(&session.device.os)
    .bind(&session.device.device_type)
    .bind(session.created_at)
    .bind(session.expires_at)
    .bind(session.idle_expires_at)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    insert_refresh_token(tx, token).await
}

async fn insert_refresh_token(
    tx: &mut Transaction<'_, Postgres>,
    token: &NewRefreshToken,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token.id)
    .bind(token.session_id)
    .bind(&token.hash)
    .bind(token.created_at)
    .bind(token.expires_at)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct RotatedRow {
    session_id: Uuid,
    session_user_id: Uuid,
    present: bool,
    #[sqlx(flatten)]
    user: UserRow,
}

#[derive(sqlx::FromRow)]
struct SpentRow {
    session_id: Uuid,
    user_id: Uuid,
    spent_at: Option<DateTime<Utc>>,
    live_successor: Option<Uuid>,
    session_active: bool,
}

#[async_trait]
impl SessionStore for PgStore {
    async fn record_login(
        &self,
        session: &NewSession,
        token: &NewRefreshToken,
        max_sessions: u32,
        effects: &Effects,
        evicted: EndedEffects<'_>,
    ) -> StoreResult<Vec<Uuid>> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        insert_session(&mut tx, session, token).await?;
        let now = session.created_at;
        let beyond: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM sessions WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 AND idle_expires_at > $2 \
             ORDER BY created_at DESC, id DESC OFFSET $3",
        )
        .bind(session.user_id)
        .bind(now)
        .bind(i64::from(max_sessions))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let beyond: Vec<Uuid> = beyond.into_iter().collect();
        for session_id in &beyond {
            sqlx::query("UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE id = $1")
                .bind(*session_id)
                .bind(now)
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
            .bind(session_id)
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
            .bind(session_id)
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
            .bind(user_id)
            .bind(now)
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
        // One statement, so one round trip and its own transaction: the compare-and-set (only
        // a live token of an active session is spent, once), the session's activity, the
        // successor in the same session, the events of the rotation, and the
        // session's user. The foreign key from the spent token to its successor is checked at
        // the end of the statement.
        let sql = format!(
            "WITH spent AS ( \
               UPDATE refresh_tokens SET spent_at = $2, successor_id = $3 \
               WHERE token_hash = $1 AND spent_at IS NULL AND expires_at > $2 \
                 AND session_id IN (SELECT id FROM sessions \
                   WHERE ended_at IS NULL AND expires_at > $2 AND idle_expires_at > $2) \
               RETURNING session_id), \
             touched AS ( \
               UPDATE sessions SET last_activity_at = $2, idle_expires_at = $4 \
               WHERE id = (SELECT session_id FROM spent) RETURNING id, user_id), \
             successor AS ( \
               INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
               SELECT $3, id, $5, $6, $7 FROM touched RETURNING id), \
             {events} \
             SELECT t.id AS session_id, t.user_id AS session_user_id, \
                    u.deleted_at IS NULL AS present, {user} \
             FROM touched t JOIN users u ON u.id = t.user_id",
            events = FoundEvents::cte("touched", 9),
            user = user_fields("$8"),
        );
        let query = sqlx::query_as(&sql)
            .bind(hash)
            .bind(now)
            .bind(successor.id)
            .bind(idle_deadline)
            .bind(&successor.hash)
            .bind(successor.created_at)
            .bind(successor.expires_at)
            .bind(territory);
        let spent: Option<RotatedRow> = FoundEvents::new(events)
            .bind(query)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        if let Some(row) = spent {
            let user = row
                .present
                .then(|| Box::new(row.user.into_credentials().user));
            return Ok(Rotation::Rotated {
                session_id: row.session_id,
                user_id: row.session_user_id,
                user,
            });
        }
        // Nothing was spent: say why, from what the token is now.
        let row: Option<SpentRow> = sqlx::query_as(
            "SELECT rt.session_id, s.user_id, rt.spent_at, \
               CASE WHEN nx.spent_at IS NULL AND nx.expires_at > $2 THEN nx.id END AS live_successor, \
               (s.ended_at IS NULL AND s.expires_at > $2 AND s.idle_expires_at > $2) AS session_active \
             FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id \
             LEFT JOIN refresh_tokens nx ON nx.id = rt.successor_id WHERE rt.token_hash = $1",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(match row {
            None => Rotation::Unknown,
            Some(row) => match row.spent_at {
                Some(spent_at) => Rotation::Spent {
                    session_id: row.session_id,
                    user_id: row.user_id,
                    spent_at,
                    live_successor: row.live_successor,
                    session_active: row.session_active,
                },
                None => Rotation::Lapsed {
                    session_id: row.session_id,
                    user_id: row.user_id,
                },
            },
        })
    }

    async fn refresh_token_session(&self, hash: &[u8]) -> StoreResult<Option<(Uuid, Uuid)>> {
        let row: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT rt.session_id, s.user_id FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id \
             WHERE rt.token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(row)
    }

    async fn end_session(
        &self,
        session_id: Uuid,
        reason: EndReason,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let ended = sqlx::query(
            "UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE id = $1 AND ended_at IS NULL",
        )
        .bind(session_id)
        .bind(now)
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
        let mut tx = self.pool.begin().await.map_err(db_error)?;
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
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let touched = sqlx::query(
            "UPDATE sessions SET last_activity_at = $2, idle_expires_at = $3 \
             WHERE id = $1 AND ended_at IS NULL AND expires_at > $2 AND idle_expires_at > $2",
        )
        .bind(session_id)
        .bind(now)
        .bind(idle_deadline)
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
