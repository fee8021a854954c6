//! SQLite: single-use tokens and the password and verification changes they unlock.
//!
//! Spending a token is the first statement of its transaction (an `UPDATE … WHERE used_at IS
//! NULL`), so the transaction holds SQLite's write lock from its start and two requests with
//! one token cannot both see it live.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Sqlite, Transaction};
use uuid::fmt::Hyphenated;
use uuid::Uuid;

use super::sessions::end_user_sessions;
use super::users::credentials_by_id;
use super::{db_error, id, ts, write_effects, SqliteStore};
use crate::domain::user::Credentials;
use crate::domain::{EndReason, User};
use crate::store::{
    AccountStore, Effects, NewOneTimeToken, StoreResult, TokenPurpose, UserEffects,
};

/// Marks a live token used; its user, when it was live.
async fn spend(
    tx: &mut Transaction<'_, Sqlite>,
    hash: &[u8],
    purpose: TokenPurpose,
    now: DateTime<Utc>,
) -> StoreResult<Option<Uuid>> {
    let user: Option<Hyphenated> = sqlx::query_scalar(
        "UPDATE one_time_tokens SET used_at = $2 \
         WHERE token_hash = $1 AND purpose = $3 AND used_at IS NULL AND expires_at > $2 \
           AND user_id IN (SELECT id FROM users WHERE deleted_at IS NULL) \
         RETURNING user_id",
    )
    .bind(hash)
    .bind(ts(now))
    .bind(purpose.as_str())
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(user.map(Hyphenated::into_uuid))
}

/// SPEC §5: voids every outstanding reset and verification link of a user (their email or
/// password changed, or they were deactivated or deleted).
pub(super) async fn void_links(tx: &mut Transaction<'_, Sqlite>, user_id: Uuid) -> StoreResult<()> {
    sqlx::query("DELETE FROM one_time_tokens WHERE user_id = $1 AND used_at IS NULL")
        .bind(id(user_id))
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

async fn set_password(
    tx: &mut Transaction<'_, Sqlite>,
    user_id: Uuid,
    password_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id(user_id))
        .bind(password_hash)
        .bind(ts(now))
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn credentials_of(
        &self,
        user_id: Uuid,
        territory: Option<&str>,
    ) -> StoreResult<Option<Credentials>> {
        credentials_by_id(&mut *self.connection().await?, user_id, territory).await
    }

    async fn issue_one_time_token(
        &self,
        token: &NewOneTimeToken,
        effects: &Effects,
    ) -> StoreResult<()> {
        let (_turn, mut tx) = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM one_time_tokens WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
        )
        .bind(id(token.user_id))
        .bind(token.purpose.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO one_time_tokens (id, user_id, purpose, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id(token.id))
        .bind(id(token.user_id))
        .bind(token.purpose.as_str())
        .bind(&token.hash)
        .bind(ts(token.created_at))
        .bind(ts(token.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        write_effects(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn one_time_token_user(
        &self,
        hash: &[u8],
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>> {
        let user: Option<Hyphenated> = sqlx::query_scalar(
            "SELECT user_id FROM one_time_tokens \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(hash)
        .bind(purpose.as_str())
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(user) = user else { return Ok(None) };
        let credentials =
            credentials_by_id(&mut *self.connection().await?, user.into_uuid(), None).await?;
        Ok(credentials.map(|c| c.user))
    }

    async fn reset_password(
        &self,
        hash: &[u8],
        password_hash: &str,
        now: DateTime<Utc>,
        effects: UserEffects<'_>,
    ) -> StoreResult<Option<Uuid>> {
        let (_turn, mut tx) = self.begin_write().await?;
        let Some(user_id) = spend(&mut tx, hash, TokenPurpose::PasswordReset, now).await? else {
            return Ok(None);
        };
        set_password(&mut tx, user_id, password_hash, now).await?;
        void_links(&mut tx, user_id).await?;
        let ended =
            end_user_sessions(&mut tx, user_id, None, EndReason::PasswordReset, now).await?;
        write_effects(&mut tx, &effects(user_id, &ended)).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(Some(user_id))
    }

    async fn change_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep: Uuid,
        now: DateTime<Utc>,
        effects: UserEffects<'_>,
    ) -> StoreResult<u64> {
        let (_turn, mut tx) = self.begin_write().await?;
        set_password(&mut tx, user_id, password_hash, now).await?;
        // A link mailed before the change must not undo it.
        void_links(&mut tx, user_id).await?;
        let ended =
            end_user_sessions(&mut tx, user_id, Some(keep), EndReason::PasswordReset, now).await?;
        write_effects(&mut tx, &effects(user_id, &ended)).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(ended.len() as u64)
    }

    async fn verify_email(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
        effects: UserEffects<'_>,
    ) -> StoreResult<Option<Uuid>> {
        let (_turn, mut tx) = self.begin_write().await?;
        let Some(user_id) = spend(&mut tx, hash, TokenPurpose::EmailVerification, now).await?
        else {
            return Ok(None);
        };
        sqlx::query("UPDATE users SET is_verified = TRUE, updated_at = $2 WHERE id = $1")
            .bind(id(user_id))
            .bind(ts(now))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        write_effects(&mut tx, &effects(user_id, &[])).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(Some(user_id))
    }
}
