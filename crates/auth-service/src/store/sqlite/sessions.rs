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
use crate::store::error::{StoreError, StoreResult};
use crate::store::records::{NewRefreshToken, NewSession, Rotation};
use crate::store::shared::rows::{split_amr, SessionRow};
use crate::store::shared::sessions::{
    session_store, AuthorizationCodeRow, Presented, SessionStateRow, SpentRow, SESSION_COLUMNS,
};

/// SQLite: `OFFSET` needs a `LIMIT`, and -1 is none.
const BEYOND_MAX_SESSIONS: &str = "SELECT id FROM sessions WHERE user_id = $1 AND ended_at IS NULL \
     AND expires_at > $2 AND idle_expires_at > $2 ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET $3";

/// The rotation runs inside the single write turn as one multi-statement query: sqlx runs
/// each SQLite connection on a thread of its own, and every statement sent is a hand-off to
/// that thread and back, which cost more than the statements themselves (issue 20, profiled
/// in `bench/PROFILES.md`). Parameters are numbered and shared by the statements: $1 the
/// successor's id, $2 the presented token's hash, $3 the successor's hash, $4 and $5 its
/// creation and expiry, $6 now, $7 the session, $8 its new idle deadline; from $9 on, five
/// per event of the outbox.
///
/// The first step: the successor, filed under the presented token's session. It is a write,
/// so the transaction starts with its write (a read first would make it a reader that must
/// upgrade, which SQLite refuses at once, busy timeout or not, when another connection wrote
/// in between). SQLite runs an `INSERT … SELECT` from its own table through an ephemeral copy
/// of the selected rows (here at most one, found by the `token_hash` index), which newer
/// versions show in the plan as a `SCAN` of the table.
const INSERT_SUCCESSOR: &str =
    "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
     SELECT $1, session_id, $3, $4, $5 FROM refresh_tokens WHERE token_hash = $2";

/// The compare-and-set: only a live token of an active session is spent, once. The session
/// is probed by its key (a correlated `EXISTS`): SQLite runs `session_id IN (SELECT id FROM
/// sessions WHERE …)` as a list built by scanning every active session, so each rotation,
/// inside the single write turn, cost more the more sessions the database held (issue 20:
/// 1.3 ms with 3 000 active sessions, 15 ms with 20 000; 0.04 ms probed).
const SPEND_PRESENTED: &str = "UPDATE refresh_tokens SET spent_at = $6, successor_id = $1 \
     WHERE token_hash = $2 AND spent_at IS NULL AND expires_at > $6 \
       AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = refresh_tokens.session_id \
         AND s.ended_at IS NULL AND s.expires_at > $6 AND s.idle_expires_at > $6)";

/// Whether the compare-and-set above won in this transaction: the presented token now names
/// this rotation's successor. The steps after it run only then.
const SPENT_HERE: &str =
    "EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = $2 AND successor_id = $1)";

/// The activity mark on the session; its row is the rotation's answer (none: nothing spent).
fn touch_session() -> String {
    format!(
        "UPDATE sessions SET last_activity_at = $6, idle_expires_at = $8 \
         WHERE id = $7 AND {SPENT_HERE} RETURNING user_id, amr, scope"
    )
}

/// The outbox row of an event whose five parameters start at `$first`.
fn outbox_event(first: usize) -> String {
    let [id, kind, user, payload, at] = std::array::from_fn(|n| first + n);
    format!(
        "INSERT INTO outbox (id, event_type, user_id, payload, occurred_at, next_attempt_at) \
         SELECT ${id}, ${kind}, ${user}, ${payload}, ${at}, ${at} WHERE {SPENT_HERE}"
    )
}

/// The whole rotation for `events` events, as one query. The session's row comes last: it
/// is the only row the query returns, and sqlx stops a query at the first row when asked for
/// one, so the query is read whole (`fetch_all`).
fn rotation_sql(events: usize) -> String {
    let mut statements = vec![INSERT_SUCCESSOR.to_owned(), SPEND_PRESENTED.to_owned()];
    statements.extend((0..events).map(|n| outbox_event(9 + 5 * n)));
    statements.push(touch_session());
    statements.join(";\n")
}

impl SqliteStore {
    /// SQLite: the token's session is read before the write turn, the rotation is one query
    /// inside it, and the user is read after it: the turn, which every writer waits for, holds
    /// three hand-offs to the connection's thread (begin, the rotation, commit) instead of
    /// seven.
    async fn rotate(&self, p: Presented<'_>) -> StoreResult<Rotation> {
        let (hash, successor, now) = (p.hash, p.successor, p.now);
        let (idle_deadline, territory, events) = (p.idle_deadline, p.territory, p.events);
        // A token's session, and that session's user, never change: read outside the turn,
        // they are what they would be inside it. A token not found was never issued.
        let Some((session_id, user_id)) = self.refresh_token_session(hash).await? else {
            return Ok(Rotation::Unknown);
        };
        let effects = Effects {
            events: events(&(session_id, user_id)),
            audit: Vec::new(),
        };
        let sql = rotation_sql(effects.events.len());
        let mut query = sqlx::query(&sql)
            .bind(id(successor.id))
            .bind(hash)
            .bind(&successor.hash)
            .bind(ts(successor.created_at))
            .bind(ts(successor.expires_at))
            .bind(ts(now))
            .bind(id(session_id))
            .bind(ts(idle_deadline));
        for event in &effects.events {
            query = query
                .bind(id(event.id))
                .bind(event.event_type)
                .bind(event.user_id.map(id))
                .bind(json(&event.envelope))
                .bind(ts(event.occurred_at));
        }
        let (_turn, mut tx) = self.begin_write().await?;
        tx.note(&effects);
        let touched = query.fetch_all(&mut *tx).await.map_err(db_error)?;
        let Some(touched) = touched.first() else {
            // Nothing was spent: say why, from what the token is now, and write nothing.
            let refused = rotation_refused(&mut tx, hash, now).await?;
            tx.rollback().await.map_err(db_error)?;
            return Ok(refused);
        };
        let (touched_user, amr, scope): (DbUuid, String, Option<String>) =
            sqlx::FromRow::from_row(touched).map_err(db_error)?;
        if Uuid::from(touched_user) != user_id {
            // Cannot happen (see above); should it, nothing is committed.
            tx.rollback().await.map_err(db_error)?;
            return Err(StoreError::Other(anyhow::anyhow!(
                "a rotated session's user changed"
            )));
        }
        tx.commit().await.map_err(db_error)?;
        drop(_turn);
        // After the turn, on a connection of its own: the user as they are now.
        let user = credentials_by_id(&mut *self.connection().await?, user_id, territory).await?;
        Ok(Rotation::Rotated {
            session_id,
            user_id,
            user: user.map(|credentials| Box::new(credentials.user)),
            amr: split_amr(&amr),
            scope,
        })
    }
}

session_store! {
    impl SessionStore for SqliteStore {}
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, Row, SqliteConnection};

    use super::{outbox_event, touch_session, INSERT_SUCCESSOR, SPEND_PRESENTED};

    /// Issue 20: every statement of a rotation finds its rows by key. A `SCAN` in a plan is a
    /// cost that grows with the data, paid inside the single write turn by every refresh.
    #[tokio::test]
    async fn a_rotation_scans_no_table() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        super::super::MIGRATOR.run(&mut conn).await.unwrap();

        let (touch, outbox) = (touch_session(), outbox_event(9));
        for sql in [INSERT_SUCCESSOR, SPEND_PRESENTED, &touch, &outbox] {
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
            // `SCAN CONSTANT ROW` is the one row of a `SELECT` without a table (the outbox's).
            let scans = plan
                .iter()
                .filter(|step| step.starts_with("SCAN") && *step != "SCAN CONSTANT ROW")
                .count();
            // The successor's insert may scan only the ephemeral copy of the one row its
            // SELECT found by key (see INSERT_SUCCESSOR); every other statement scans nothing.
            let allowed = usize::from(sql == INSERT_SUCCESSOR && keyed > 0);
            assert!(scans <= allowed, "{sql}\n{plan:#?}");
        }
    }
}
