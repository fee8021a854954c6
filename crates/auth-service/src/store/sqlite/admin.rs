//! SQLite: administration of users.

use async_trait::async_trait;

use super::{db_error, id, ts, write_effects, SqliteStore};
use crate::store::{AdminStore, Effects, NewUser, StoreError, StoreResult};

#[async_trait]
impl AdminStore for SqliteStore {
    async fn create_user(
        &self,
        user: &NewUser,
        roles: &[String],
        effects: &Effects,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
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
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        for role in roles {
            let granted = sqlx::query(
                "INSERT INTO user_roles (user_id, role_name, granted_at) \
                 SELECT $1, name, $3 FROM roles WHERE name = $2",
            )
            .bind(id(user.id))
            .bind(role)
            .bind(ts(user.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?
            .rows_affected();
            if granted == 0 {
                return Err(StoreError::UnknownRole(role.clone()));
            }
        }
        write_effects(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }
}
