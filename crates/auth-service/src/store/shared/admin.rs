//! Administration of users — the same text on both databases, but for how administrators'
//! changes take turns (each wing's `take_admin_turn`).

/// `%text%` for LIKE, lowercased, with `%`, `_` and `\` taken literally.
pub(crate) fn like_pattern(text: &str) -> String {
    let escaped: String = text
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("%{escaped}%")
}

/// Expands `AdminStore` for a wing; methods written inside the block are the wing's own. The
/// wing's `admin.rs` supplies `take_admin_turn`. See `shared/mod.rs` for the names the bodies
/// expect in scope.
macro_rules! admin_store {
    (impl AdminStore for $store:ty { $($own:tt)* }) => {
        /// Takes the administrators' turn (so two concurrent demotions cannot both pass the
        /// last-admin count) and reads the user as it was.
        async fn lock_user(
            tx: &mut Tx<'_>,
            user_id: Uuid,
            now: DateTime<Utc>,
            territory: Option<&str>,
        ) -> StoreResult<Option<User>> {
            take_admin_turn(tx).await?;
            let exists =
                sqlx::query("UPDATE users SET updated_at = $2 WHERE id = $1 AND deleted_at IS NULL")
                    .bind(id(user_id))
                    .bind(ts(now))
                    .run(tx)
                    .await?;
            if exists == 0 {
                return Ok(None);
            }
            Ok(credentials_by_id(tx, user_id, territory)
                .await?
                .map(|c| c.user))
        }

        /// SPEC §5: some active global administrator must remain. A territory admin does not
        /// count: it cannot administer the other territories, roles or territories.
        async fn refuse_losing_the_last_admin(tx: &mut Tx<'_>) -> StoreResult<()> {
            let admins: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM users u WHERE u.deleted_at IS NULL AND u.is_active \
                   AND EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role_name = 'admin' \
                               AND r.territory_code IS NULL)",
            )
            .fetch_one(&mut **tx)
            .await
            .map_err(db_error)?;
            if admins == 0 {
                return Err(StoreError::LastAdmin);
            }
            Ok(())
        }

        #[async_trait::async_trait]
        impl AdminStore for $store {
            $($own)*

            async fn create_user(
                &self,
                user: &NewUser,
                roles: &[String],
                member_of: Option<&str>,
                effects: &Effects,
            ) -> StoreResult<()> {
                let (_turn, mut tx) = self.begin_write().await?;
                insert_user(&mut tx, user).await?;
                grant_roles(&mut tx, user.id, roles, None, user.created_at).await?;
                if let Some(code) = member_of {
                    // The territory of a territory admin exists: the admin's grant names it.
                    if let Err(missing) = join(&mut tx, user.id, code, user.created_at).await? {
                        return Err(StoreError::Other(anyhow::anyhow!(
                            "joining the new user to {code}: {missing:?}"
                        )));
                    }
                }
                commit(tx, effects).await
            }

            async fn list_users(&self, query: &UserQuery<'_>) -> StoreResult<Vec<User>> {
                let pattern = query.search.map(like_pattern);
                let (after_time, after_id) = query.after.unzip();
                let ids: Vec<DbUuid> = sqlx::query_scalar(
                    "SELECT id FROM users WHERE deleted_at IS NULL \
                       AND ($1 IS NULL OR lower(email) LIKE $1 ESCAPE '\\' OR lower(username) LIKE $1 ESCAPE '\\' \
                            OR lower(coalesce(display_name, '')) LIKE $1 ESCAPE '\\') \
                       AND ($2 IS NULL OR created_at > $2 OR (created_at = $2 AND id > $3)) \
                       AND ($5 IS NULL OR EXISTS (SELECT 1 FROM user_territories t \
                                                  WHERE t.user_id = users.id AND t.territory_code = $5)) \
                     ORDER BY created_at, id LIMIT $4",
                )
                .bind(pattern)
                .bind(after_time.map(ts))
                .bind(after_id.map(id))
                .bind(i64::from(query.limit))
                .bind(query.member_of)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                let mut conn = self.connection().await?;
                let mut users = Vec::with_capacity(ids.len());
                for user_id in ids {
                    if let Some(found) =
                        credentials_by_id(&mut conn, user_id.into(), query.territory).await?
                    {
                        users.push(found.user);
                    }
                }
                Ok(users)
            }

            async fn update_user(
                &self,
                user_id: Uuid,
                patch: &UserPatch,
                now: DateTime<Utc>,
                territory: Option<&str>,
                effects: EffectsOf<'_, (User, Option<User>, Vec<Uuid>)>,
            ) -> StoreResult<Option<User>> {
                let (_turn, mut tx) = self.begin_write().await?;
                let Some(before) = lock_user(&mut tx, user_id, now, territory).await? else {
                    return Ok(None);
                };
                sqlx::query(
                    "UPDATE users SET \
                       email = COALESCE($2, email), username = COALESCE($3, username), \
                       display_name = CASE WHEN $4 THEN $5 ELSE display_name END, \
                       avatar_url = CASE WHEN $6 THEN $7 ELSE avatar_url END, \
                       bio = CASE WHEN $8 THEN $9 ELSE bio END, \
                       is_verified = COALESCE($10, is_verified), is_active = COALESCE($11, is_active), \
                       password_hash = COALESCE($12, password_hash) \
                     WHERE id = $1",
                )
                .bind(id(user_id))
                .bind(&patch.email)
                .bind(&patch.username)
                .bind(patch.display_name.is_some())
                .bind(patch.display_name.clone().flatten())
                .bind(patch.avatar_url.is_some())
                .bind(patch.avatar_url.clone().flatten())
                .bind(patch.bio.is_some())
                .bind(patch.bio.clone().flatten())
                .bind(patch.is_verified)
                .bind(patch.is_active)
                .bind(&patch.password_hash)
                .run(&mut tx)
                .await?;
                if let Some(roles) = &patch.roles {
                    sqlx::query("DELETE FROM user_roles WHERE user_id = $1 AND territory_code IS NULL")
                        .bind(id(user_id))
                        .run(&mut tx)
                        .await?;
                    grant_roles(&mut tx, user_id, roles, None, now).await?;
                }
                refuse_losing_the_last_admin(&mut tx).await?;
                if patch.voids_links() {
                    void_links(&mut tx, user_id).await?;
                }
                let ended = if patch.ends_sessions() {
                    end_user_sessions(&mut tx, user_id, None, EndReason::Admin, now).await?
                } else {
                    Vec::new()
                };
                let after = credentials_by_id(&mut tx, user_id, territory)
                    .await?
                    .map(|c| c.user);
                let change = (before, after, ended);
                commit(tx, &effects(&change)).await?;
                Ok(change.1)
            }

            async fn delete_user(
                &self,
                user_id: Uuid,
                now: DateTime<Utc>,
                territory: Option<&str>,
                effects: EffectsOf<'_, (User, Option<User>, Vec<Uuid>)>,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                let Some(before) = lock_user(&mut tx, user_id, now, territory).await? else {
                    return Ok(false);
                };
                sqlx::query("UPDATE users SET deleted_at = $2 WHERE id = $1")
                    .bind(id(user_id))
                    .bind(ts(now))
                    .run(&mut tx)
                    .await?;
                refuse_losing_the_last_admin(&mut tx).await?;
                void_links(&mut tx, user_id).await?;
                // SPEC §11: a deleted user's API keys go with the account (the row stays, so
                // the foreign key's cascade does not fire); `auth:user.deleted` says so.
                sqlx::query("DELETE FROM api_keys WHERE user_id = $1")
                    .bind(id(user_id))
                    .run(&mut tx)
                    .await?;
                let ended = end_user_sessions(&mut tx, user_id, None, EndReason::Admin, now).await?;
                commit(tx, &effects(&(before, None, ended))).await?;
                Ok(true)
            }
        }
    };
}
pub(crate) use admin_store;
