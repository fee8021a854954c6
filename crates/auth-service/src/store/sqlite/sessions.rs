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

/// The rotation is one multi-statement query, its transaction included, run in the single
/// write turn: sqlx runs each SQLite connection on a thread of its own, and every statement
/// sent is a hand-off to that thread and back to a (busy) async worker, all while every other
/// writer waits (issue 20, profiled in `bench/PROFILES.md`). Every step is conditioned on the
/// presented token being live, in the session read before the turn, and that session active,
/// so when it is not, the transaction commits nothing. Parameters are numbered and shared by
/// the statements: $1 the successor's id, $2 the presented token's hash, $3 the successor's
/// hash, $4 and $5 its creation and expiry, $6 now, $7 the session, $8 its new idle deadline;
/// from $9 on, five per event of the outbox.
///
/// The presented token is live and its session active, found by keys only: SQLite runs
/// `session_id IN (SELECT id FROM sessions WHERE …)` as a list built by scanning every active
/// session, so each rotation, inside the single write turn, cost more the more sessions the
/// database held (issue 20: 1.3 ms with 3 000 active sessions, 15 ms with 20 000; 0.04 ms
/// probed by key).
const SPENDABLE: &str = "token_hash = $2 AND session_id = $7 AND spent_at IS NULL \
     AND expires_at > $6 AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = $7 \
       AND s.ended_at IS NULL AND s.expires_at > $6 AND s.idle_expires_at > $6)";

/// The successor, filed under the presented token's session, first, so that the spent token
/// can name it. SQLite runs an `INSERT … SELECT` from its own table through an ephemeral copy
/// of the selected rows (here at most one, found by the `token_hash` index), which newer
/// versions show in the plan as a `SCAN` of the table.
fn insert_successor() -> String {
    format!(
        "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
         SELECT $1, $7, $3, $4, $5 FROM refresh_tokens WHERE {SPENDABLE}"
    )
}

/// The compare-and-set: the presented token is spent, once, naming its successor.
fn spend_presented() -> String {
    format!("UPDATE refresh_tokens SET spent_at = $6, successor_id = $1 WHERE {SPENDABLE}")
}

/// Whether the compare-and-set above won in this transaction: the presented token now names
/// this rotation's successor. The steps after it run only then.
const SPENT_HERE: &str = "EXISTS (SELECT 1 FROM refresh_tokens \
     WHERE token_hash = $2 AND session_id = $7 AND successor_id = $1)";

/// The activity mark on the session; its row is the rotation's answer (none: nothing spent).
fn touch_session() -> String {
    format!(
        "UPDATE sessions SET last_activity_at = $6, idle_expires_at = $8 \
         WHERE id = $7 AND {SPENT_HERE} RETURNING amr, scope"
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

/// The whole rotation for `events` events, as one query with its transaction. The session's
/// row comes last but for the commit: it is the only row the query returns, and sqlx stops a
/// query at the first row when asked for one, so the query is read whole (`fetch_all`).
fn rotation_sql(events: usize) -> String {
    let mut statements = vec![
        "BEGIN IMMEDIATE".to_owned(),
        insert_successor(),
        spend_presented(),
    ];
    statements.extend((0..events).map(|n| outbox_event(9 + 5 * n)));
    statements.push(touch_session());
    statements.push("COMMIT".to_owned());
    statements.join(";\n")
}

impl SqliteStore {
    /// SQLite: the token's session is read before the write turn, the rotation with its
    /// transaction is one query inside it, and the user is read after it: the turn, which
    /// every writer waits for, holds one hand-off to the connection's thread instead of seven.
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
        let touched = self.write_whole(query, &effects).await?;
        let Some(touched) = touched.first() else {
            // Nothing was spent (and nothing written): say why, from what the token is now.
            return rotation_refused(&mut *self.connection().await?, hash, now).await;
        };
        let (amr, scope): (String, Option<String>) =
            sqlx::FromRow::from_row(touched).map_err(db_error)?;
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

    use super::{insert_successor, outbox_event, spend_presented, touch_session};

    /// Issue 20: every statement of a rotation finds its rows by key. A `SCAN` in a plan is a
    /// cost that grows with the data, paid inside the single write turn by every refresh.
    #[tokio::test]
    async fn a_rotation_scans_no_table() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        super::super::MIGRATOR.run(&mut conn).await.unwrap();

        let insert = insert_successor();
        for sql in [
            &insert,
            &spend_presented(),
            &touch_session(),
            &outbox_event(9),
        ] {
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
            // SELECT found by key (see insert_successor); every other statement scans nothing.
            let allowed = usize::from(sql == &insert && keyed > 0);
            assert!(scans <= allowed, "{sql}\n{plan:#?}");
        }
    }
}
