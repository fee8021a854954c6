//! SQLite: sessions and refresh tokens. SQLite runs one writer at a time, so every write
//! transaction starts with its write and waits (busy timeout) rather than failing. All but
//! the rotation is in `shared/sessions.rs`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::*;
use super::rows::{
    commit, commit_found, credentials_by_id, end_user_sessions, insert_session, user_fields,
    write_effects, Run,
};
use super::SqliteStore;
use crate::domain::authorization::{AuthorizationCode, NewAuthorizationCode};
use crate::domain::session::SessionState;
use crate::domain::{EndReason, Session};
use crate::store::contract::SessionStore;
use crate::store::effects::{Effects, EffectsOf, OutboxEvent};
use crate::store::error::StoreResult;
use crate::store::records::{NewRefreshToken, NewSession, Rotation};
use crate::store::shared::rows::{split_amr, SessionRow};
use crate::store::shared::sessions::{
    session_store, AuthorizationCodeRow, Presented, SessionStateRow, SpentRow, SESSION_COLUMNS,
};

/// SQLite: `OFFSET` needs a `LIMIT`, and -1 is none.
const BEYOND_MAX_SESSIONS: &str = "SELECT id FROM sessions WHERE user_id = $1 AND ended_at IS NULL \
     AND expires_at > $2 AND idle_expires_at > $2 ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET $3";

/// The rotation's first step: the successor, filed under the presented token's session. It is
/// a write, so the transaction starts with its write (a read first would make it a reader that
/// must upgrade, which SQLite refuses at once, busy timeout or not, when another connection
/// wrote in between). SQLite runs an `INSERT … SELECT` from its own table through an
/// ephemeral copy of the selected rows (here at most one, found by the `token_hash` index),
/// which newer versions show in the plan as a `SCAN` of the table.
const INSERT_SUCCESSOR: &str =
    "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
     SELECT $1, session_id, $3, $4, $5 FROM refresh_tokens WHERE token_hash = $2";

/// The rotation's compare-and-set. The session is probed by its key (a correlated `EXISTS`):
/// SQLite runs `session_id IN (SELECT id FROM sessions WHERE …)` as a list built by scanning
/// every active session, so each rotation, inside the single write turn, cost more the more
/// sessions the database held (issue 20: 1.3 ms with 3 000 active sessions, 15 ms with
/// 20 000; 0.04 ms probed).
const SPEND_PRESENTED: &str = "UPDATE refresh_tokens SET spent_at = $2, successor_id = $3 \
     WHERE token_hash = $1 AND spent_at IS NULL AND expires_at > $2 \
       AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = refresh_tokens.session_id \
         AND s.ended_at IS NULL AND s.expires_at > $2 AND s.idle_expires_at > $2) \
     RETURNING session_id";

/// The rotation's activity mark on its session.
const TOUCH_SESSION: &str = "UPDATE sessions SET last_activity_at = $2, idle_expires_at = $3 \
     WHERE id = $1 RETURNING user_id, amr, scope";

impl SqliteStore {
    /// SQLite: statement by statement inside one write transaction (no data-modifying CTEs).
    async fn rotate(&self, p: Presented<'_>) -> StoreResult<Rotation> {
        let (hash, successor, now) = (p.hash, p.successor, p.now);
        let (idle_deadline, territory, events) = (p.idle_deadline, p.territory, p.events);
        let now_text = ts(now);
        let (_turn, mut tx) = self.begin_write().await?;
        // The successor goes in first, in the presented token's session (it is rolled back
        // unless the compare-and-set wins), so the spent token can reference it.
        sqlx::query(INSERT_SUCCESSOR)
            .bind(id(successor.id))
            .bind(hash)
            .bind(&successor.hash)
            .bind(ts(successor.created_at))
            .bind(ts(successor.expires_at))
            .run(&mut tx)
            .await?;
        // The compare-and-set: only a live token of an active session is spent, once.
        let spent: Option<(DbUuid,)> = sqlx::query_as(SPEND_PRESENTED)
            .bind(hash)
            .bind(&now_text)
            .bind(id(successor.id))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        if let Some((session_id,)) = spent {
            let (user_id, amr, scope): (DbUuid, String, Option<String>) =
                sqlx::query_as(TOUCH_SESSION)
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
                amr: split_amr(&amr),
                scope,
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

#[cfg(test)]
mod tests {
    use sqlx::{Connection, Row, SqliteConnection};

    use super::{INSERT_SUCCESSOR, SPEND_PRESENTED, TOUCH_SESSION};

    /// Issue 20: every statement of a rotation finds its rows by key. A `SCAN` in a plan is a
    /// cost that grows with the data, paid inside the single write turn by every refresh.
    #[tokio::test]
    async fn a_rotation_scans_no_table() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        super::super::MIGRATOR.run(&mut conn).await.unwrap();

        for sql in [INSERT_SUCCESSOR, SPEND_PRESENTED, TOUCH_SESSION] {
            let plan: Vec<String> = sqlx::raw_sql(&format!("EXPLAIN QUERY PLAN {sql}"))
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<String, _>("detail"))
                .collect();

            assert!(!plan.is_empty(), "no plan for {sql}");
            let keyed = plan
                .iter()
                .filter(|step| step.starts_with("SEARCH"))
                .count();
            let scans = plan.iter().filter(|step| step.starts_with("SCAN")).count();
            // The successor's insert may scan only the ephemeral copy of the one row its
            // SELECT found by key (see INSERT_SUCCESSOR); every other statement scans nothing.
            let allowed = usize::from(sql == INSERT_SUCCESSOR && keyed > 0);
            assert!(scans <= allowed, "{sql}\n{plan:#?}");
        }
    }
}
