//! Rows both wings decode into, and the row helpers every area borrows (a user with their
//! roles, a new user, grants, a new session, ending sessions, joining a territory, voiding
//! links, writing effects), expanded into each wing's `rows.rs` by [`row_helpers!`].

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::audit::AuditRecord;
use crate::domain::directory::{Role, Territory};
use crate::domain::user::Credentials;
use crate::domain::{Device, EndReason, Session, User};
use crate::store::records::StoredKey;

/// A list column as a wing reads it back: PostgreSQL's `ARRAY(… ORDER BY …)` is a sorted
/// `text[]`; SQLite's `json_group_array` is a JSON array in no promised order, sorted here.
pub(crate) trait ListColumn {
    fn into_sorted(self) -> Vec<String>;
}

impl ListColumn for Vec<String> {
    fn into_sorted(self) -> Vec<String> {
        self
    }
}

impl ListColumn for Json<Vec<String>> {
    fn into_sorted(self) -> Vec<String> {
        let mut list = self.0;
        list.sort_unstable();
        list
    }
}

/// A user's columns with their roles and territories (each wing's `user_fields`); `Id` and
/// `List` are the wing's `DbUuid` and `DbList`.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow<Id, List> {
    id: Id,
    email: String,
    username: String,
    display_name: Option<String>,
    avatar_url: Option<String>,
    bio: Option<String>,
    is_verified: bool,
    is_active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    password_hash: String,
    roles: List,
    territories: List,
}

impl<Id: Into<Uuid>, List: ListColumn> UserRow<Id, List> {
    pub(crate) fn into_credentials(self) -> Credentials {
        Credentials {
            user: User {
                id: self.id.into(),
                email: self.email,
                username: self.username,
                display_name: self.display_name,
                avatar_url: self.avatar_url,
                bio: self.bio,
                is_verified: self.is_verified,
                is_active: self.is_active,
                roles: self.roles.into_sorted(),
                territories: self.territories.into_sorted(),
                created_at: self.created_at,
                updated_at: self.updated_at,
            },
            password_hash: self.password_hash,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow<Id> {
    id: Id,
    user_id: Id,
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
    amr: String,
    scope: Option<String>,
}

impl<Id: Into<Uuid>> From<SessionRow<Id>> for Session {
    fn from(row: SessionRow<Id>) -> Self {
        Session {
            id: row.id.into(),
            user_id: row.user_id.into(),
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
            amr: split_amr(&row.amr),
            scope: row.scope,
        }
    }
}

/// A session's `amr` column (space-separated methods) as its list.
pub(crate) fn split_amr(column: &str) -> Vec<String> {
    column.split_whitespace().map(str::to_owned).collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct RoleRow {
    name: String,
    description: Option<String>,
    permissions: Json<Vec<String>>,
    created_at: DateTime<Utc>,
}

impl From<RoleRow> for Role {
    fn from(row: RoleRow) -> Self {
        Role {
            name: row.name,
            description: row.description,
            permissions: row.permissions.0,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TerritoryRow {
    code: String,
    name: String,
    description: Option<String>,
    is_active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<TerritoryRow> for Territory {
    fn from(row: TerritoryRow) -> Self {
        Territory {
            code: row.code,
            name: row.name,
            description: row.description,
            is_active: row.is_active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow<Id> {
    id: Id,
    occurred_at: DateTime<Utc>,
    actor_id: Option<Id>,
    user_id: Option<Id>,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    details: Json<serde_json::Value>,
    ip_address: Option<String>,
    request_id: Option<String>,
}

impl<Id: Into<Uuid>> From<AuditRow<Id>> for AuditRecord {
    fn from(row: AuditRow<Id>) -> Self {
        Self {
            id: row.id.into(),
            occurred_at: row.occurred_at,
            actor_id: row.actor_id.map(Into::into),
            user_id: row.user_id.map(Into::into),
            action: row.action,
            target_type: row.target_type,
            target_id: row.target_id,
            details: row.details.0,
            ip_address: row.ip_address,
            request_id: row.request_id,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    kid: String,
    algorithm: String,
    public_key: String,
    private_key: Vec<u8>,
    sealed: bool,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<KeyRow> for StoredKey {
    fn from(row: KeyRow) -> Self {
        StoredKey {
            kid: row.kid,
            algorithm: row.algorithm,
            public_jwk: row.public_key,
            private_key: row.private_key,
            sealed: row.sealed,
            created_at: row.created_at,
            retired_at: row.retired_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// Expands, into a wing's `rows.rs`, the helpers that several areas borrow. The wing's
/// `rows.rs` supplies `user_fields` and `END_USER_SESSIONS` (SQL that differs per dialect)
/// and imports the names listed in `shared/mod.rs`.
macro_rules! row_helpers {
    () => {
        /// Writes the outbox events and audit entries of a change inside its transaction.
        /// The transaction notes whether they may change session state, to raise the write
        /// fence once it commits (`store/fence.rs`).
        pub(super) async fn write_effects(tx: &mut Tx<'_>, effects: &Effects) -> StoreResult<()> {
            tx.note(effects);
            for event in &effects.events {
                sqlx::query(
                    "INSERT INTO outbox (id, event_type, user_id, payload, occurred_at, next_attempt_at) \
                     VALUES ($1, $2, $3, $4, $5, $5)",
                )
                .bind(id(event.id))
                .bind(event.event_type)
                .bind(event.user_id.map(id))
                .bind(json(&event.envelope))
                .bind(ts(event.occurred_at))
                .run(tx)
                .await?;
            }
            for entry in &effects.audit {
                sqlx::query(
                    "INSERT INTO audit_log (id, occurred_at, actor_id, user_id, action, target_type, target_id, \
                     details, ip_address, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(id(entry.id))
                .bind(ts(entry.occurred_at))
                .bind(entry.actor_id.map(id))
                .bind(entry.user_id.map(id))
                .bind(entry.action)
                .bind(entry.target_type)
                .bind(&entry.target_id)
                .bind(json(&entry.details))
                .bind(&entry.ip_address)
                .bind(&entry.request_id)
                .run(tx)
                .await?;
            }
            Ok(())
        }

        /// `query.run(conn)`: executes a write statement, its error sorted by `db_error`; how
        /// many rows it changed.
        pub(super) trait Run {
            async fn run(self, conn: &mut Conn) -> StoreResult<u64>;
        }

        impl<'q> Run for sqlx::query::Query<'q, Db, DbArgs<'q>> {
            async fn run(self, conn: &mut Conn) -> StoreResult<u64> {
                Ok(self.execute(conn).await.map_err(db_error)?.rows_affected())
            }
        }

        /// Commits a change with its effects when it `found` its row; otherwise rolls it back
        /// (nothing written) and answers false.
        pub(super) async fn commit_found(tx: Tx<'_>, found: u64, effects: &Effects) -> StoreResult<bool> {
            if found == 0 {
                return Ok(false);
            }
            commit(tx, effects).await?;
            Ok(true)
        }

        /// Writes a change's effects in its transaction and commits it.
        pub(super) async fn commit(mut tx: Tx<'_>, effects: &Effects) -> StoreResult<()> {
            write_effects(&mut tx, effects).await?;
            tx.commit().await.map_err(db_error)
        }

        /// A user who is not deleted, with the stored hash and memberships.
        pub(super) async fn credentials_by_id(
            conn: &mut Conn,
            user_id: Uuid,
            territory: Option<&str>,
        ) -> StoreResult<Option<Credentials>> {
            let sql = format!(
                "SELECT {} FROM users u WHERE u.id = $1 AND u.deleted_at IS NULL",
                user_fields("$2")
            );
            let row: Option<UserRow<DbUuid, DbList>> = sqlx::query_as(&sql)
                .bind(id(user_id))
                .bind(territory)
                .fetch_optional(conn)
                .await
                .map_err(db_error)?;
            Ok(row.map(UserRow::into_credentials))
        }

        /// The row of a new user; the unique indexes refuse a taken email or username.
        pub(super) async fn insert_user(conn: &mut Conn, user: &NewUser) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO users (id, email, username, password_hash, display_name, is_verified, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(id(user.id))
            .bind(&user.email)
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(&user.display_name)
            .bind(user.is_verified)
            .bind(ts(user.created_at))
            .run(conn)
            .await?;
            Ok(())
        }

        /// Grants `roles` globally (`territory` None) or in one territory; `UnknownRole` names
        /// the first role that does not exist.
        pub(super) async fn grant_roles(
            conn: &mut Conn,
            user_id: Uuid,
            roles: &[String],
            territory: Option<&str>,
            now: DateTime<Utc>,
        ) -> StoreResult<()> {
            for role in roles {
                let granted = sqlx::query(
                    "INSERT INTO user_roles (user_id, role_name, territory_code, granted_at) \
                     SELECT $1, name, $3, $4 FROM roles WHERE name = $2",
                )
                .bind(id(user_id))
                .bind(role)
                .bind(territory)
                .bind(ts(now))
                .run(&mut *conn)
                .await?;
                if granted == 0 {
                    return Err(StoreError::UnknownRole(role.clone()));
                }
            }
            Ok(())
        }

        /// A new session with its first refresh token.
        pub(super) async fn insert_session(
            tx: &mut Tx<'_>,
            session: &NewSession,
            token: &NewRefreshToken,
        ) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO sessions (id, user_id, ip_address, user_agent, browser, os, device_type, created_at, \
                 last_activity_at, expires_at, idle_expires_at, amr, scope) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12)",
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
            .bind(session.amr.join(" "))
            .bind(&session.scope)
            .run(tx)
            .await?;
            sqlx::query(
                "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id(token.id))
            .bind(id(token.session_id))
            .bind(&token.hash)
            .bind(ts(token.created_at))
            .bind(ts(token.expires_at))
            .run(tx)
            .await?;
            Ok(())
        }

        /// Ends every active session of a user but `except`, inside the caller's transaction;
        /// the ids of the sessions it ended.
        pub(super) async fn end_user_sessions(
            conn: &mut Conn,
            user_id: Uuid,
            except: Option<Uuid>,
            reason: EndReason,
            now: DateTime<Utc>,
        ) -> StoreResult<Vec<Uuid>> {
            let ended: Vec<DbUuid> = sqlx::query_scalar(END_USER_SESSIONS)
                .bind(id(user_id))
                .bind(except.map(id))
                .bind(ts(now))
                .bind(reason.as_str())
                .fetch_all(conn)
                .await
                .map_err(db_error)?;
            Ok(ended.into_iter().map(Uuid::from).collect())
        }

        /// Makes the user a member unless they are one; whether a row was added, or why not.
        pub(super) async fn join(
            tx: &mut Tx<'_>,
            user_id: Uuid,
            code: &str,
            now: DateTime<Utc>,
        ) -> StoreResult<Result<bool, MemberChange>> {
            let added = sqlx::query(
                "INSERT INTO user_territories (user_id, territory_code, joined_at) \
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL) \
                   AND EXISTS (SELECT 1 FROM territories WHERE code = $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id(user_id))
            .bind(code)
            .bind(ts(now))
            .run(tx)
            .await?;
            if added == 1 {
                return Ok(Ok(true));
            }
            Ok(missing(tx, user_id, code).await?.map_or(Ok(false), Err))
        }

        /// Which of the user and the territory does not exist, if either.
        pub(super) async fn missing(
            tx: &mut Tx<'_>,
            user_id: Uuid,
            code: &str,
        ) -> StoreResult<Option<MemberChange>> {
            let (user, territory): (bool, bool) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL), \
                        EXISTS (SELECT 1 FROM territories WHERE code = $2)",
            )
            .bind(id(user_id))
            .bind(code)
            .fetch_one(&mut **tx)
            .await
            .map_err(db_error)?;
            Ok(if !user {
                Some(MemberChange::UnknownUser)
            } else if !territory {
                Some(MemberChange::UnknownTerritory)
            } else {
                None
            })
        }

        /// SPEC §5: voids every outstanding reset and verification link of a user (their email
        /// or password changed, or they were deactivated or deleted).
        pub(super) async fn void_links(tx: &mut Tx<'_>, user_id: Uuid) -> StoreResult<()> {
            sqlx::query("DELETE FROM one_time_tokens WHERE user_id = $1 AND used_at IS NULL")
                .bind(id(user_id))
                .run(tx)
                .await?;
            Ok(())
        }
    };
}
pub(crate) use row_helpers;
