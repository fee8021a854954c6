//! SQLite: users, their roles and territories.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::SqliteConnection;
use uuid::fmt::Hyphenated;
use uuid::Uuid;

use super::{db_error, id, ts, write_effects, SqliteStore};
use crate::domain::user::{Credentials, DEFAULT_ROLE};
use crate::domain::{Login, ProfilePatch, User};
use crate::store::{
    Effects, NewRefreshToken, NewSession, NewUser, StoreError, StoreResult, UserStore,
};

/// A user's columns (table alias `u`) with their roles — global, plus those held in the
/// territory bound at `territory` (a parameter such as `$2`) — and territories, in one row:
/// the hot paths (`me`, login, refresh, every bearer check) make one round trip.
pub(super) fn user_fields(territory: &str) -> String {
    format!(
        "u.id, u.email, u.username, u.display_name, u.avatar_url, u.bio, u.is_verified, \
         u.is_active, u.created_at, u.updated_at, u.password_hash, \
         (SELECT json_group_array(role_name) FROM (SELECT DISTINCT r.role_name \
            FROM user_roles r WHERE r.user_id = u.id \
            AND (r.territory_code IS NULL OR r.territory_code = {territory}))) AS roles, \
         (SELECT json_group_array(territory_code) FROM (SELECT t.territory_code \
            FROM user_territories t WHERE t.user_id = u.id)) AS territories"
    )
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: Hyphenated,
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
    roles: Json<Vec<String>>,
    territories: Json<Vec<String>>,
}

impl UserRow {
    pub(super) fn into_credentials(self) -> Credentials {
        // json_group_array keeps no promised order: sort, as PostgreSQL's ORDER BY does.
        let (Json(mut roles), Json(mut territories)) = (self.roles, self.territories);
        roles.sort_unstable();
        territories.sort_unstable();
        Credentials {
            user: User {
                id: self.id.into_uuid(),
                email: self.email,
                username: self.username,
                display_name: self.display_name,
                avatar_url: self.avatar_url,
                bio: self.bio,
                is_verified: self.is_verified,
                is_active: self.is_active,
                roles,
                territories,
                created_at: self.created_at,
                updated_at: self.updated_at,
            },
            password_hash: self.password_hash,
        }
    }
}

/// A user who is not deleted, with the stored hash and memberships.
pub(super) async fn credentials_by_id(
    conn: &mut SqliteConnection,
    user_id: Uuid,
    territory: Option<&str>,
) -> StoreResult<Option<Credentials>> {
    let sql = format!(
        "SELECT {} FROM users u WHERE u.id = $1 AND u.deleted_at IS NULL",
        user_fields("$2")
    );
    let row: Option<UserRow> = sqlx::query_as(&sql)
        .bind(id(user_id))
        .bind(territory)
        .fetch_optional(conn)
        .await
        .map_err(db_error)?;
    Ok(row.map(UserRow::into_credentials))
}

/// The row of a new user; the unique indexes refuse a taken email or username.
pub(super) async fn insert_user(conn: &mut SqliteConnection, user: &NewUser) -> StoreResult<()> {
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
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Grants `roles` globally (`territory` None) or in one territory; `UnknownRole` names the
/// first role that does not exist.
pub(super) async fn grant_roles(
    conn: &mut SqliteConnection,
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
        .execute(&mut *conn)
        .await
        .map_err(db_error)?
        .rows_affected();
        if granted == 0 {
            return Err(StoreError::UnknownRole(role.clone()));
        }
    }
    Ok(())
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn record_signup(
        &self,
        user: &NewUser,
        login: Option<(&NewSession, &NewRefreshToken)>,
        effects: &Effects,
    ) -> StoreResult<()> {
        let (_turn, mut tx) = self.begin_write().await?;
        insert_user(&mut tx, user).await?;
        sqlx::query("INSERT INTO user_roles (user_id, role_name, granted_at) VALUES ($1, $2, $3)")
            .bind(id(user.id))
            .bind(DEFAULT_ROLE)
            .bind(ts(user.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        if let Some((session, token)) = login {
            super::sessions::insert_session(&mut tx, session, token).await?;
        }
        write_effects(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn credentials(
        &self,
        login: &Login,
        territory: Option<&str>,
    ) -> StoreResult<Option<Credentials>> {
        // SPEC §5: the argument is normalised in Rust (`Login::normalized`), never by SQL
        // `lower()`, which folds non-ASCII letters differently on each database; stored
        // usernames are ASCII, so `lower(u.username)` (the unique index) folds ASCII only.
        let condition = match login {
            Login::Email(_) => "u.email = $1",
            Login::Username(_) => "lower(u.username) = $1",
        };
        let sql = format!(
            "SELECT {} FROM users u WHERE {condition} AND u.deleted_at IS NULL",
            user_fields("$2")
        );
        let row: Option<UserRow> = sqlx::query_as(&sql)
            .bind(login.normalized())
            .bind(territory)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(row.map(UserRow::into_credentials))
    }

    async fn user(&self, user_id: Uuid, territory: Option<&str>) -> StoreResult<Option<User>> {
        let credentials =
            credentials_by_id(&mut *self.connection().await?, user_id, territory).await?;
        Ok(credentials.map(|c| c.user))
    }

    async fn update_profile(
        &self,
        user_id: Uuid,
        patch: &ProfilePatch,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let (_turn, mut tx) = self.begin_write().await?;
        // `CASE WHEN $n` keeps a column when the patch leaves it out.
        let updated = sqlx::query(
            "UPDATE users SET \
               display_name = CASE WHEN $2 THEN $3 ELSE display_name END, \
               avatar_url = CASE WHEN $4 THEN $5 ELSE avatar_url END, \
               bio = CASE WHEN $6 THEN $7 ELSE bio END, \
               updated_at = $8 \
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id(user_id))
        .bind(patch.display_name.is_some())
        .bind(patch.display_name.clone().flatten())
        .bind(patch.avatar_url.is_some())
        .bind(patch.avatar_url.clone().flatten())
        .bind(patch.bio.is_some())
        .bind(patch.bio.clone().flatten())
        .bind(ts(now))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        write_effects(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn replace_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(id(user_id))
            .bind(hash)
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
