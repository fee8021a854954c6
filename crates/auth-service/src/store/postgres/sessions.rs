//! PostgreSQL: sessions and refresh tokens. Row locks of the compare-and-set UPDATE
//! serialise concurrent refreshes of one token; the loser sees the winner's commit. All but
//! the rotation is in `shared/sessions.rs`.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use uuid::Uuid;

use super::dialect::*;
use super::rows::{
    commit, commit_found, end_user_sessions, insert_session, user_fields, write_effects, Run,
};
use super::PgStore;
use crate::domain::authorization::{AuthorizationCode, NewAuthorizationCode};
use crate::domain::session::SessionState;
use crate::domain::{EndReason, Session};
use crate::store::contract::SessionStore;
use crate::store::effects::{Effects, EffectsOf, OutboxEvent};
use crate::store::error::StoreResult;
use crate::store::records::{NewRefreshToken, NewSession, Rotation};
use crate::store::shared::rows::{split_amr, SessionRow, UserRow};
use crate::store::shared::sessions::{
    session_store, AuthorizationCodeRow, Presented, SessionStateRow, SpentRow, SESSION_COLUMNS,
};

/// PostgreSQL: `OFFSET` alone skips the sessions a user may keep.
const BEYOND_MAX_SESSIONS: &str =
    "SELECT id FROM sessions WHERE user_id = $1 AND ended_at IS NULL \
     AND expires_at > $2 AND idle_expires_at > $2 ORDER BY created_at DESC, id DESC OFFSET $3";

/// Stand-ins for the ids of a session, and of its user, that a statement finds itself:
/// events built for them are written by that same statement with the real ids put in
/// (see [`FoundEvents`]).
const STAND_IN_SESSION: Uuid = Uuid::from_u128(0x5e55_1000_0000_4000_8000_0000_0000_0001);
const STAND_IN_USER: Uuid = Uuid::from_u128(0x5e55_1000_0000_4000_8000_0000_0000_0002);

/// Outbox events that a single statement writes for a session and user it finds itself (an
/// `INSERT … SELECT` from a row source naming them `id` and `user_id`), so a change and its
/// events need no transaction of several round trips. Built from events made for
/// [`STAND_IN_SESSION`] and [`STAND_IN_USER`]; the statement puts the real ids in their place,
/// in the row's user and in the payload alike.
struct FoundEvents {
    ids: Vec<Uuid>,
    types: Vec<&'static str>,
    users: Vec<Option<Uuid>>,
    payloads: Vec<String>,
    times: Vec<DateTime<Utc>>,
}

impl FoundEvents {
    fn new(events: EffectsOf<'_, (Uuid, Uuid), Vec<OutboxEvent>>) -> Self {
        let events = events(&(STAND_IN_SESSION, STAND_IN_USER));
        Self {
            ids: events.iter().map(|e| e.id).collect(),
            types: events.iter().map(|e| e.event_type).collect(),
            users: events.iter().map(|e| e.user_id).collect(),
            payloads: events.iter().map(|e| e.envelope.to_string()).collect(),
            times: events.iter().map(|e| e.occurred_at).collect(),
        }
    }

    /// A data-modifying CTE (to follow a `WITH …,`) writing the events, in order, once per
    /// row of `found`, with parameters `$first` to `$first + 4`.
    fn cte(found: &str, first: usize) -> String {
        let p = |n: usize| format!("${}", first + n);
        format!(
            "found_events AS ( \
               INSERT INTO outbox (id, event_type, user_id, payload, occurred_at, next_attempt_at) \
               SELECT e.id, e.event_type, \
                      CASE e.user_id WHEN '{STAND_IN_SESSION}'::uuid THEN f.id \
                                     WHEN '{STAND_IN_USER}'::uuid THEN f.user_id \
                                     ELSE e.user_id END, \
                      replace(replace(e.payload, '{STAND_IN_SESSION}', f.id::text), \
                              '{STAND_IN_USER}', f.user_id::text)::jsonb, \
                      e.at, e.at \
               FROM {found} f, unnest({}::uuid[], {}::text[], {}::uuid[], {}::text[], \
                                      {}::timestamptz[]) \
                 WITH ORDINALITY AS e(id, event_type, user_id, payload, at, n) \
               ORDER BY e.n)",
            p(0),
            p(1),
            p(2),
            p(3),
            p(4),
        )
    }

    /// Binds the parameters of [`FoundEvents::cte`], in order.
    fn bind<'q, O>(
        self,
        query: sqlx::query::QueryAs<'q, Db, O, PgArguments>,
    ) -> sqlx::query::QueryAs<'q, Db, O, PgArguments> {
        query
            .bind(self.ids)
            .bind(self.types)
            .bind(self.users)
            .bind(self.payloads)
            .bind(self.times)
    }
}

#[derive(sqlx::FromRow)]
struct RotatedRow {
    session_id: Uuid,
    session_user_id: Uuid,
    session_amr: String,
    session_scope: Option<String>,
    present: bool,
    #[sqlx(flatten)]
    user: UserRow<DbUuid, DbList>,
}

impl PgStore {
    /// PostgreSQL: one statement of data-modifying CTEs, events written by `FoundEvents`.
    async fn rotate(&self, p: Presented<'_>) -> StoreResult<Rotation> {
        let (hash, successor, now) = (p.hash, p.successor, p.now);
        let (idle_deadline, territory, events) = (p.idle_deadline, p.territory, p.events);
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
               WHERE id = (SELECT session_id FROM spent) RETURNING id, user_id, amr, scope), \
             successor AS ( \
               INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
               SELECT $3, id, $5, $6, $7 FROM touched RETURNING id), \
             {events} \
             SELECT t.id AS session_id, t.user_id AS session_user_id, \
                    t.amr AS session_amr, t.scope AS session_scope, \
                    u.deleted_at IS NULL AS present, {user} \
             FROM touched t JOIN users u ON u.id = t.user_id",
            events = FoundEvents::cte("touched", 9),
            user = user_fields("$8"),
        );
        let query = sqlx::query_as(&sql)
            .bind(hash)
            .bind(ts(now))
            .bind(id(successor.id))
            .bind(ts(idle_deadline))
            .bind(&successor.hash)
            .bind(ts(successor.created_at))
            .bind(ts(successor.expires_at))
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
                amr: split_amr(&row.session_amr),
                scope: row.session_scope,
            });
        }
        // Nothing was spent: say why, from what the token is now.
        rotation_refused(&mut *self.connection().await?, hash, now).await
    }
}

session_store! {
    impl SessionStore for PgStore {}
}
