//! Users: signup, credentials, profiles — the same text on both databases.

/// Expands `UserStore` for a wing; methods written inside the block are the wing's own.
/// See `shared/mod.rs` for the names the bodies expect in scope.
macro_rules! user_store {
    (impl UserStore for $store:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl UserStore for $store {
            $($own)*

            async fn record_signup(
                &self,
                user: &NewUser,
                login: Option<(&NewSession, &NewRefreshToken)>,
                effects: &Effects,
            ) -> StoreResult<()> {
                let (_turn, mut tx) = self.begin_write().await?;
                insert_user(&mut tx, user).await?;
                sqlx::query(
                    "INSERT INTO user_roles (user_id, role_name, granted_at) VALUES ($1, $2, $3)",
                )
                .bind(id(user.id))
                .bind(DEFAULT_ROLE)
                .bind(ts(user.created_at))
                .run(&mut tx)
                .await?;
                if let Some((session, token)) = login {
                    insert_session(&mut tx, session, token).await?;
                }
                commit(tx, effects).await
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
                let row: Option<UserRow<DbUuid, DbList>> = sqlx::query_as(&sql)
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
                .run(&mut tx)
                .await?;
                commit_found(tx, updated, effects).await
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
                    .run(&mut *self.connection().await?)
                    .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use user_store;
