//! Single-use tokens and the password and verification changes they unlock — the same text
//! on both databases. Spending a token is an `UPDATE … WHERE used_at IS NULL`: on PostgreSQL
//! the row lock makes a concurrent spender wait and then find the token used; on SQLite it is
//! the first statement of its transaction, which then holds the single write lock. Either way
//! two requests with one token cannot both win.

/// Expands `AccountStore` for a wing; methods written inside the block are the wing's own.
/// See `shared/mod.rs` for the names the bodies expect in scope.
macro_rules! account_store {
    (impl AccountStore for $store:ty { $($own:tt)* }) => {
        /// Marks a live token used; its user, when it was live. The user is probed by its key
        /// (a correlated `EXISTS`): SQLite runs `user_id IN (SELECT id FROM users …)` by
        /// scanning every user.
        async fn spend(
            tx: &mut Tx<'_>,
            hash: &[u8],
            purpose: TokenPurpose,
            now: DateTime<Utc>,
        ) -> StoreResult<Option<Uuid>> {
            let user: Option<DbUuid> = sqlx::query_scalar(
                "UPDATE one_time_tokens SET used_at = $2 \
                 WHERE token_hash = $1 AND purpose = $3 AND used_at IS NULL AND expires_at > $2 \
                   AND EXISTS (SELECT 1 FROM users u WHERE u.id = one_time_tokens.user_id \
                     AND u.deleted_at IS NULL) \
                 RETURNING user_id",
            )
            .bind(hash)
            .bind(ts(now))
            .bind(purpose.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
            Ok(user.map(Uuid::from))
        }

        async fn set_password(
            tx: &mut Tx<'_>,
            user_id: Uuid,
            password_hash: &str,
            now: DateTime<Utc>,
        ) -> StoreResult<()> {
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(id(user_id))
                .bind(password_hash)
                .bind(ts(now))
                .run(tx)
                .await?;
            Ok(())
        }

        #[async_trait::async_trait]
        impl AccountStore for $store {
            $($own)*

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
                .run(&mut tx)
                .await?;
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
                .run(&mut tx)
                .await?;
                commit(tx, effects).await
            }

            async fn one_time_token_user(
                &self,
                hash: &[u8],
                purpose: TokenPurpose,
                now: DateTime<Utc>,
            ) -> StoreResult<Option<User>> {
                let user: Option<DbUuid> = sqlx::query_scalar(
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
                    credentials_by_id(&mut *self.connection().await?, user.into(), None).await?;
                Ok(credentials.map(|c| c.user))
            }

            async fn reset_password(
                &self,
                hash: &[u8],
                password_hash: &str,
                now: DateTime<Utc>,
                effects: EffectsOf<'_, (Uuid, Vec<Uuid>)>,
            ) -> StoreResult<Option<Uuid>> {
                let (_turn, mut tx) = self.begin_write().await?;
                let Some(user_id) = spend(&mut tx, hash, TokenPurpose::PasswordReset, now).await?
                else {
                    return Ok(None);
                };
                set_password(&mut tx, user_id, password_hash, now).await?;
                void_links(&mut tx, user_id).await?;
                let ended =
                    end_user_sessions(&mut tx, user_id, None, EndReason::PasswordReset, now).await?;
                commit(tx, &effects(&(user_id, ended))).await?;
                Ok(Some(user_id))
            }

            async fn change_password(
                &self,
                user_id: Uuid,
                password_hash: &str,
                keep: Uuid,
                now: DateTime<Utc>,
                effects: EffectsOf<'_, (Uuid, Vec<Uuid>)>,
            ) -> StoreResult<u64> {
                let (_turn, mut tx) = self.begin_write().await?;
                set_password(&mut tx, user_id, password_hash, now).await?;
                // A link mailed before the change must not undo it.
                void_links(&mut tx, user_id).await?;
                let ended =
                    end_user_sessions(&mut tx, user_id, Some(keep), EndReason::PasswordReset, now)
                        .await?;
                let count = ended.len() as u64;
                commit(tx, &effects(&(user_id, ended))).await?;
                Ok(count)
            }

            async fn verify_email(
                &self,
                hash: &[u8],
                now: DateTime<Utc>,
                effects: EffectsOf<'_, (Uuid, Vec<Uuid>)>,
            ) -> StoreResult<Option<Uuid>> {
                let (_turn, mut tx) = self.begin_write().await?;
                let Some(user_id) =
                    spend(&mut tx, hash, TokenPurpose::EmailVerification, now).await?
                else {
                    return Ok(None);
                };
                sqlx::query("UPDATE users SET is_verified = TRUE, updated_at = $2 WHERE id = $1")
                    .bind(id(user_id))
                    .bind(ts(now))
                    .run(&mut tx)
                    .await?;
                commit(tx, &effects(&(user_id, Vec::new()))).await?;
                Ok(Some(user_id))
            }
        }
    };
}
pub(crate) use account_store;
