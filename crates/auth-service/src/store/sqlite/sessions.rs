//! SQLite: sessions and refresh tokens. SQLite runs one writer at a time, so every write
//! transaction starts with its write and waits (busy timeout) rather than failing. All but
//! the rotation is in `shared/sessions.rs`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::*;
use super::rows::{
    commit_found, credentials_by_id, end_user_sessions, insert_session, user_fields, write_effects,
    Run,
};
use super::SqliteStore;
use crate::domain::session::SessionState;
use crate::domain::{EndReason, Session};
use crate::store::contract::SessionStore;
use crate::store::effects::{Effects, EffectsOf, OutboxEvent};
use crate::store::error::StoreResult;
use crate::store::records::{NewRefreshToken, NewSession, Rotation};
use crate::store::shared::rows::SessionRow;
use crate::store::shared::sessions::{
    session_store, Presented, SessionStateRow, SpentRow, SESSION_COLUMNS,
};

/// SQLite: `OFFSET` needs a `LIMIT`, and -1 is none.
const BEYOND_MAX_SESSIONS: &str = "SELECT id FROM sessions WHERE user_id = $1 AND ended_at IS NULL \
     AND expires_at > $2 AND idle_expires_at > $2 ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET $3";

impl SqliteStore {
    /// SQLite: statement by statement inside one write transaction (no data-modifying CTEs).
    async fn rotate(&self, p: Presented<'_>) -> StoreResult<Rotation> {
        let (hash, successor, now) = (p.hash, p.successor, p.now);
        let (idle_deadline, territory, events) = (p.idle_deadline, p.territory, p.events);
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
        .run(&mut tx)
        .await?;
        // The compare-and-set: only a live token of an active session is spent, once.
        let spent: Option<(DbUuid,)> = sqlx::query_as(
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
            let (user_id,): (DbUuid,) = sqlx::query_as(
                "UPDATE sessions SET last_activity_at = $2, idle_expires_at = $3 WHERE id = $1 RETURNING user_id",
            )
            .bind(session_id)
            .bind(&now_text)
            .bind(ts(idle_deadline))
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
            let (session_id, user_id) = (Uuid::from(session_id), Uuid::from(user_id));
            let effects = Effects {
                events: events(&(session_id, user_id)),
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
        // Nothing was spent: say why, from what the token is now, and write nothing.
        let refused = rotation_refused(&mut tx, hash, now).await?;
        tx.rollback().await.map_err(db_error)?;
        Ok(refused)
    }
}

session_store! {
    impl SessionStore for SqliteStore {}
}
