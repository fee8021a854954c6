//! The storage contract. The rest of the code talks to `Arc<dyn Store>`; `postgres/` and
//! `sqlite/` implement it with runtime queries, chosen by the database URL's scheme.

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::session::SessionState;
use crate::domain::user::Credentials;
use crate::domain::{Device, EndReason, Login, ProfilePatch, Session, User};

use crate::config::DatabaseConfig;

/// A unique index that refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    Email,
    Username,
    Other,
}

/// Why a store call failed. "Not found" is not an error: lookups return `Option`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a unique index refused the write: {0:?}")]
    Conflict(Unique),
    #[error("no role named {0}")]
    UnknownRole(String),
    #[error("the change would leave no active administrator")]
    LastAdmin,
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl StoreError {
    /// Sorts a driver error into "the database is away" and everything else. Unique
    /// violations are mapped by each backend, which knows its own index names.
    pub(crate) fn from_sqlx(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
            sqlx::Error::Database(ref db) if is_unavailable_state(db.code().as_deref()) => {
                StoreError::Unavailable(error)
            }
            other => StoreError::Other(other.into()),
        }
    }
}

/// PostgreSQL SQLSTATEs for a server shutting down or refusing connections, and SQLite's
/// "database is locked/busy" after the busy timeout: the caller should retry later.
fn is_unavailable_state(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("57P01" | "57P02" | "57P03" | "53300" | "08000" | "08003" | "08006" | "5" | "6")
    )
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Events and audit entries written in the same transaction as the change they describe
/// (SPEC §6: the transactional outbox).
#[derive(Debug, Clone, Default)]
pub struct Effects {
    pub events: Vec<OutboxEvent>,
    pub audit: Vec<AuditEntry>,
}

impl Effects {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn and(mut self, other: Effects) -> Self {
        self.events.extend(other.events);
        self.audit.extend(other.audit);
        self
    }
}

/// One outbox row: the full event envelope, ordered per user by insertion.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: Uuid,
    pub event_type: &'static str,
    pub user_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub envelope: serde_json::Value,
}

/// One audit row.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
    pub ip_address: Option<String>,
    pub request_id: Option<String>,
}

/// Builds the effects of ending the sessions whose ids a bulk change found, inside its transaction.
pub type EndedEffects<'a> = &'a (dyn Fn(&[Uuid]) -> Effects + Send + Sync);

pub struct NewUser {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub password_hash: String,
    pub display_name: Option<String>,
    pub is_verified: bool,
    pub created_at: DateTime<Utc>,
}

pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub device: Device,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub idle_expires_at: DateTime<Utc>,
}

pub struct NewRefreshToken {
    pub id: Uuid,
    pub session_id: Uuid,
    pub hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live and is now spent; the successor was stored.
    Rotated { session_id: Uuid, user_id: Uuid },
    /// The token had already been spent (a retry or a reuse: the caller decides by time).
    Spent {
        session_id: Uuid,
        user_id: Uuid,
        spent_at: DateTime<Utc>,
        successor_id: Option<Uuid>,
        session_active: bool,
    },
    /// The token expired, or its session is no longer active.
    Lapsed { session_id: Uuid, user_id: Uuid },
    /// No such token.
    Unknown,
}

/// What a single-use token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    PasswordReset,
    EmailVerification,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::EmailVerification => "email_verification",
        }
    }
}

/// A single-use token (reset or verification link); only its SHA-256 is stored.
pub struct NewOneTimeToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub purpose: TokenPurpose,
    pub hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Builds the effects of a change whose user, and the sessions it ended, are only known
/// inside its transaction.
pub type UserEffects<'a> = &'a (dyn Fn(Uuid, &[Uuid]) -> Effects + Send + Sync);

/// A signing key row.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    pub algorithm: String,
    pub public_jwk: String,
    pub private_key: Vec<u8>,
    pub sealed: bool,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait UserStore {
    /// A new user with the default role; with a first session and refresh token when given.
    async fn record_signup(
        &self,
        user: &NewUser,
        login: Option<(&NewSession, &NewRefreshToken)>,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// The user a login names (not deleted), with the stored hash.
    async fn credentials(
        &self,
        login: &Login,
        territory: Option<&str>,
    ) -> StoreResult<Option<Credentials>>;
    /// A user who is not deleted.
    async fn user(&self, id: Uuid, territory: Option<&str>) -> StoreResult<Option<User>>;
    /// Applies a profile change; false when the user does not exist.
    async fn update_profile(
        &self,
        id: Uuid,
        patch: &ProfilePatch,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Replaces a hash after a login verified an outdated one.
    async fn replace_password_hash(
        &self,
        id: Uuid,
        hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait SessionStore {
    /// A login: the session, its first refresh token, and the eviction of the oldest active
    /// sessions beyond `max_sessions`; returns the evicted session ids.
    async fn record_login(
        &self,
        session: &NewSession,
        token: &NewRefreshToken,
        max_sessions: u32,
        effects: &Effects,
        evicted: EndedEffects<'_>,
    ) -> StoreResult<Vec<Uuid>>;
    /// The hot-path view of a session, and whether `kid` has been revoked.
    async fn session_state(&self, id: Uuid, kid: &str) -> StoreResult<Option<SessionState>>;
    async fn session(&self, id: Uuid) -> StoreResult<Option<Session>>;
    /// Sessions of a user that have not ended or lapsed at `now`, newest first.
    async fn active_sessions(&self, user_id: Uuid, now: DateTime<Utc>)
        -> StoreResult<Vec<Session>>;
    /// Spends the live token with `hash` and stores `successor`, atomically: of many
    /// concurrent calls with one token exactly one sees `Rotated`.
    async fn rotate_refresh_token(
        &self,
        hash: &[u8],
        successor: &NewRefreshToken,
        now: DateTime<Utc>,
        idle_deadline: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<Rotation>;
    /// The session a refresh token belongs to: (session id, user id).
    async fn refresh_token_session(&self, hash: &[u8]) -> StoreResult<Option<(Uuid, Uuid)>>;
    /// Ends one session if it is still active; false when it was not.
    async fn end_session(
        &self,
        id: Uuid,
        reason: EndReason,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Ends every active session of a user except `except`; returns how many ended.
    async fn end_sessions_except(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        reason: EndReason,
        now: DateTime<Utc>,
        effects: EndedEffects<'_>,
    ) -> StoreResult<u64>;
    /// Records activity: pushes the idle deadline of an active session forward.
    async fn record_activity(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        idle_deadline: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<bool>;
}

/// Passwords and email addresses: single-use tokens and what spending them changes.
#[async_trait]
pub trait AccountStore {
    /// A user who is not deleted, with the stored hash.
    async fn credentials_of(
        &self,
        id: Uuid,
        territory: Option<&str>,
    ) -> StoreResult<Option<Credentials>>;
    /// Stores a single-use token; the user's earlier unused tokens of its purpose stop working.
    async fn issue_one_time_token(
        &self,
        token: &NewOneTimeToken,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// The user a live token (unused, unexpired, user not deleted) belongs to.
    async fn one_time_token_user(
        &self,
        hash: &[u8],
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>>;
    /// Spends a live reset token, stores the new hash and ends every session of the user, in
    /// one transaction; `None` when the token was not live (unknown, used, expired).
    async fn reset_password(
        &self,
        hash: &[u8],
        password_hash: &str,
        now: DateTime<Utc>,
        effects: UserEffects<'_>,
    ) -> StoreResult<Option<Uuid>>;
    /// Stores a new hash and ends every session of the user but `keep`; returns how many ended.
    async fn change_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep: Uuid,
        now: DateTime<Utc>,
        effects: UserEffects<'_>,
    ) -> StoreResult<u64>;
    /// Spends a live verification token and marks its user verified.
    async fn verify_email(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
        effects: UserEffects<'_>,
    ) -> StoreResult<Option<Uuid>>;
}

/// Administration of users (SPEC §2, `/api/users`).
#[async_trait]
pub trait AdminStore {
    /// A new user holding `roles` globally; `Conflict` when the email or username is taken,
    /// `UnknownRole` when a role does not exist.
    async fn create_user(
        &self,
        user: &NewUser,
        roles: &[String],
        effects: &Effects,
    ) -> StoreResult<()>;
    /// Users not deleted, oldest first, after the keyset `after`; `q` matches email,
    /// username or display name, case-insensitively.
    async fn list_users(&self, query: &UserQuery<'_>) -> StoreResult<Vec<User>>;
    /// Applies an administrator's change in one transaction: refuses to leave no active
    /// administrator (`LastAdmin`), ends the user's sessions when it deactivates them or sets
    /// a password. `None` when the user does not exist.
    async fn update_user(
        &self,
        id: Uuid,
        patch: &UserPatch,
        now: DateTime<Utc>,
        territory: Option<&str>,
        effects: ChangeEffects<'_>,
    ) -> StoreResult<Option<User>>;
    /// Soft-deletes a user (email and username become free) and ends their sessions;
    /// false when there is no such user.
    async fn delete_user(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        territory: Option<&str>,
        effects: ChangeEffects<'_>,
    ) -> StoreResult<bool>;
}

/// A page request of `list_users`.
pub struct UserQuery<'a> {
    pub search: Option<&'a str>,
    /// The `(created_at, id)` of the last user of the previous page.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u32,
    pub territory: Option<&'a str>,
}

/// An administrator's change to a user; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct UserPatch {
    pub email: Option<String>,
    pub username: Option<String>,
    pub display_name: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub is_verified: Option<bool>,
    pub is_active: Option<bool>,
    /// Replaces the global roles.
    pub roles: Option<Vec<String>>,
    /// A new password hash (from a new password, or imported as is).
    pub password_hash: Option<String>,
}

impl UserPatch {
    /// Whether the change must end the user's sessions (SPEC §2).
    pub fn ends_sessions(&self) -> bool {
        self.is_active == Some(false) || self.password_hash.is_some()
    }
}

/// Builds the effects of an administrator's change once the transaction knows the user before
/// and after it, and which sessions it ended.
pub type ChangeEffects<'a> = &'a (dyn Fn(&User, Option<&User>, &[Uuid]) -> Effects + Send + Sync);

/// A role users hold globally or in one territory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A territory (`dk`, `no`, `se` …) users belong to and hold roles in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Territory {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A change to a territory; `None` keeps a field, `Some(None)` clears the description.
#[derive(Debug, Clone, Default)]
pub struct TerritoryPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub is_active: Option<bool>,
}

/// What a change to a user's place in a territory found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// Done; `changed` is false when there was nothing to do (no effects were written).
    Done {
        changed: bool,
    },
    UnknownUser,
    UnknownTerritory,
}

/// Builds the effects of a territory change from the rows before and after it.
pub type TerritoryEffects<'a> = &'a (dyn Fn(&Territory, &Territory) -> Effects + Send + Sync);

/// Builds the effects of a change from ids or names only known inside its transaction
/// (the holders of a deleted role, the roles a user held before).
pub type FoundEffects<'a, T> = &'a (dyn Fn(&[T]) -> Effects + Send + Sync);

/// Builds the effects of setting a user's roles in a territory from whether the user joined
/// it and the roles held there before.
pub type RolesEffects<'a> = &'a (dyn Fn(bool, &[String]) -> Effects + Send + Sync);

/// Roles, territories and memberships (SPEC §2, `/api/roles`, `/api/territories`).
#[async_trait]
pub trait DirectoryStore {
    /// Every role, by name.
    async fn roles(&self) -> StoreResult<Vec<Role>>;
    /// A new role; `Conflict` when the name is taken.
    async fn create_role(&self, role: &Role, effects: &Effects) -> StoreResult<()>;
    /// Deletes a role and every grant of it; `effects` gets the users who held it. False when
    /// there is no such role (nothing is written).
    async fn delete_role(&self, name: &str, effects: FoundEffects<'_, Uuid>) -> StoreResult<bool>;
    /// Every territory, by code.
    async fn territories(&self) -> StoreResult<Vec<Territory>>;
    /// A new territory; `Conflict` when the code is taken.
    async fn create_territory(&self, territory: &Territory, effects: &Effects) -> StoreResult<()>;
    /// Applies `patch`; the territory after it, or `None` when there is no such territory.
    async fn update_territory(
        &self,
        code: &str,
        patch: &TerritoryPatch,
        now: DateTime<Utc>,
        effects: TerritoryEffects<'_>,
    ) -> StoreResult<Option<Territory>>;
    /// Makes a user (not deleted) a member of a territory; effects only when it was not one.
    async fn add_member(
        &self,
        user_id: Uuid,
        code: &str,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<MemberChange>;
    /// Ends a membership and the roles held in that territory; `effects` gets those roles and
    /// is written only when the user was a member.
    async fn remove_member(
        &self,
        user_id: Uuid,
        code: &str,
        effects: FoundEffects<'_, String>,
    ) -> StoreResult<MemberChange>;
    /// Replaces the roles a user holds in a territory, joining it first if needed.
    /// `UnknownRole` when one of `roles` does not exist (nothing is written).
    async fn set_territory_roles(
        &self,
        user_id: Uuid,
        code: &str,
        roles: &[String],
        now: DateTime<Utc>,
        effects: RolesEffects<'_>,
    ) -> StoreResult<MemberChange>;
}

/// An audit row as administrators read it.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
    pub ip_address: Option<String>,
    pub request_id: Option<String>,
}

/// Which page of the audit log to read: newest first, every filter given must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user_id: Option<Uuid>,
    pub action: Option<String>,
    /// Keyset: only entries with a smaller id (ids are UUIDv7, so older ones).
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// The emails and usernames of a batch that users not deleted already hold, as stored
/// (emails lowercase, usernames as their owners spelled them).
#[derive(Debug, Clone, Default)]
pub struct TakenLogins {
    pub emails: Vec<String>,
    pub usernames: Vec<String>,
}

/// The audit log as administrators read it, and bulk imports of users.
#[async_trait]
pub trait AuditStore {
    /// Entries matching `filter`, highest id first, at most `filter.limit`.
    async fn audit_entries(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>>;
    /// Which of `emails` (lowercase) and `usernames` (any case) users not deleted hold.
    async fn taken_logins(
        &self,
        emails: &[String],
        usernames: &[String],
    ) -> StoreResult<TakenLogins>;
    /// Inserts every user, each holding `role` globally, in one transaction with `effects`;
    /// `Conflict` (and nothing written) when any email or username is taken. Returns the count.
    async fn import_users(
        &self,
        users: &[NewUser],
        role: &str,
        effects: &Effects,
    ) -> StoreResult<u64>;
}

#[async_trait]
pub trait KeyStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Stores `key` as the active key and retires the previous active one.
    async fn activate_signing_key(&self, key: &StoredKey) -> StoreResult<()>;
    /// Revokes a key at once; false when there is no such unrevoked key.
    async fn revoke_signing_key(&self, kid: &str, now: DateTime<Utc>) -> StoreResult<bool>;
}

/// Everything the service keeps.
#[async_trait]
pub trait Store:
    UserStore
    + SessionStore
    + AccountStore
    + AdminStore
    + DirectoryStore
    + AuditStore
    + KeyStore
    + Send
    + Sync
    + 'static
{
    /// `"sqlite"` or `"postgres"`, for logs and `/ready`.
    fn backend(&self) -> &'static str;
    /// Answers when the database does.
    async fn ping(&self) -> StoreResult<()>;
    /// Applies pending migrations; returns how many were applied.
    async fn migrate(&self) -> StoreResult<usize>;
    /// Closes the pool; in-flight queries finish first.
    async fn close(&self);
    /// Records events and audit entries that accompany no other change (a failed login).
    async fn record_effects(&self, effects: &Effects) -> StoreResult<()>;
}

/// Opens the store named by the URL's scheme.
pub async fn connect(config: &DatabaseConfig) -> StoreResult<Arc<dyn Store>> {
    let url = config.url.expose();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(config).await?))
    } else {
        Ok(Arc::new(postgres::PgStore::connect(config).await?))
    }
}
