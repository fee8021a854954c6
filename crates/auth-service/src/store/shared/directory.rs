//! Roles, territories and memberships — the same text on both databases, but for how a
//! change holds its rows (each wing's `lock_territory` and `lock_membership`).

pub(crate) const TERRITORY_COLUMNS: &str =
    "code, name, description, is_active, created_at, updated_at";

/// Expands `DirectoryStore` for a wing; methods written inside the block are the wing's own.
/// The wing's `directory.rs` supplies `lock_territory` and `lock_membership`. See
/// `shared/mod.rs` for the names the bodies expect in scope.
macro_rules! directory_store {
    (impl DirectoryStore for $store:ty { $($own:tt)* }) => {
        /// Removes the roles the user holds in the territory; their names.
        async fn drop_territory_roles(
            tx: &mut Tx<'_>,
            user_id: Uuid,
            code: &str,
        ) -> StoreResult<Vec<String>> {
            let mut roles: Vec<String> = sqlx::query_scalar(
                "DELETE FROM user_roles WHERE user_id = $1 AND territory_code = $2 RETURNING role_name",
            )
            .bind(id(user_id))
            .bind(code)
            .fetch_all(&mut **tx)
            .await
            .map_err(db_error)?;
            roles.sort();
            Ok(roles)
        }

        #[async_trait::async_trait]
        impl DirectoryStore for $store {
            $($own)*

            async fn roles(&self) -> StoreResult<Vec<Role>> {
                let rows: Vec<RoleRow> = sqlx::query_as(
                    "SELECT name, description, permissions, created_at FROM roles ORDER BY name",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map(Role::from).collect())
            }

            async fn grants(&self, user_id: Uuid) -> StoreResult<Grants> {
                let rows: Vec<(String, Option<String>)> = sqlx::query_as(
                    "SELECT r.role_name, r.territory_code FROM user_roles r JOIN users u ON u.id = r.user_id \
                     WHERE r.user_id = $1 AND u.deleted_at IS NULL ORDER BY r.role_name, r.territory_code",
                )
                .bind(id(user_id))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(Grants(
                    rows.into_iter()
                        .map(|(role, territory)| Grant { role, territory })
                        .collect(),
                ))
            }

            async fn create_role(&self, role: &Role, effects: &Effects) -> StoreResult<()> {
                let (_turn, mut tx) = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO roles (name, description, permissions, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&role.name)
                .bind(&role.description)
                .bind(Json(&role.permissions))
                .bind(ts(role.created_at))
                .run(&mut tx)
                .await?;
                commit(tx, effects).await
            }

            async fn delete_role(
                &self,
                name: &str,
                effects: EffectsOf<'_, [Uuid]>,
            ) -> StoreResult<bool> {
                let (_turn, mut tx) = self.begin_write().await?;
                // The foreign key would cascade too; deleting the grants first names their holders.
                let holders: Vec<DbUuid> =
                    sqlx::query_scalar("DELETE FROM user_roles WHERE role_name = $1 RETURNING user_id")
                        .bind(name)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_error)?;
                let deleted = sqlx::query("DELETE FROM roles WHERE name = $1")
                    .bind(name)
                    .run(&mut tx)
                    .await?;
                if deleted == 0 {
                    return Ok(false);
                }
                let mut holders: Vec<Uuid> = holders.into_iter().map(Uuid::from).collect();
                holders.sort();
                holders.dedup();
                commit(tx, &effects(&holders)).await?;
                Ok(true)
            }

            async fn territories(&self) -> StoreResult<Vec<Territory>> {
                let sql = format!("SELECT {TERRITORY_COLUMNS} FROM territories ORDER BY code");
                let rows: Vec<TerritoryRow> = sqlx::query_as(&sql)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(rows.into_iter().map(Territory::from).collect())
            }

            async fn create_territory(
                &self,
                territory: &Territory,
                effects: &Effects,
            ) -> StoreResult<()> {
                let (_turn, mut tx) = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO territories (code, name, description, is_active, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&territory.code)
                .bind(&territory.name)
                .bind(&territory.description)
                .bind(territory.is_active)
                .bind(ts(territory.created_at))
                .bind(ts(territory.updated_at))
                .run(&mut tx)
                .await?;
                commit(tx, effects).await
            }

            async fn update_territory(
                &self,
                code: &str,
                patch: &TerritoryPatch,
                now: DateTime<Utc>,
                effects: EffectsOf<'_, (Territory, Territory)>,
            ) -> StoreResult<Option<Territory>> {
                let (_turn, mut tx) = self.begin_write().await?;
                let Some(before) = lock_territory(&mut tx, code).await? else {
                    return Ok(None);
                };
                let sql = format!(
                    "UPDATE territories SET \
                       name = COALESCE($2, name), \
                       description = CASE WHEN $3 THEN $4 ELSE description END, \
                       is_active = COALESCE($5, is_active), \
                       updated_at = $6 \
                     WHERE code = $1 RETURNING {TERRITORY_COLUMNS}"
                );
                let after: TerritoryRow = sqlx::query_as(&sql)
                    .bind(code)
                    .bind(&patch.name)
                    .bind(patch.description.is_some())
                    .bind(patch.description.clone().flatten())
                    .bind(patch.is_active)
                    .bind(ts(now))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let change = (Territory::from(before), Territory::from(after));
                commit(tx, &effects(&change)).await?;
                Ok(Some(change.1))
            }

            async fn add_member(
                &self,
                user_id: Uuid,
                code: &str,
                now: DateTime<Utc>,
                effects: &Effects,
            ) -> StoreResult<MemberChange> {
                let (_turn, mut tx) = self.begin_write().await?;
                let changed = match join(&mut tx, user_id, code, now).await? {
                    Ok(changed) => changed,
                    Err(why) => return Ok(why),
                };
                if changed {
                    write_effects(&mut tx, effects).await?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(MemberChange::Done { changed })
            }

            async fn remove_member(
                &self,
                user_id: Uuid,
                code: &str,
                effects: EffectsOf<'_, [String]>,
            ) -> StoreResult<MemberChange> {
                let (_turn, mut tx) = self.begin_write().await?;
                let roles = drop_territory_roles(&mut tx, user_id, code).await?;
                let removed = sqlx::query(
                    "DELETE FROM user_territories WHERE user_id = $1 AND territory_code = $2",
                )
                .bind(id(user_id))
                .bind(code)
                .run(&mut tx)
                .await?;
                if let Some(why) = missing(&mut tx, user_id, code).await? {
                    return Ok(why);
                }
                let changed = removed > 0 || !roles.is_empty();
                if changed {
                    write_effects(&mut tx, &effects(&roles)).await?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(MemberChange::Done { changed })
            }

            async fn set_territory_roles(
                &self,
                user_id: Uuid,
                code: &str,
                roles: &[String],
                now: DateTime<Utc>,
                effects: EffectsOf<'_, (bool, Vec<String>)>,
            ) -> StoreResult<MemberChange> {
                let (_turn, mut tx) = self.begin_write().await?;
                let joined = match join(&mut tx, user_id, code, now).await? {
                    Ok(joined) => joined,
                    Err(why) => return Ok(why),
                };
                lock_membership(&mut tx, user_id, code).await?;
                let before = drop_territory_roles(&mut tx, user_id, code).await?;
                grant_roles(&mut tx, user_id, roles, Some(code), now).await?;
                commit(tx, &effects(&(joined, before))).await?;
                Ok(MemberChange::Done { changed: true })
            }
        }
    };
}
pub(crate) use directory_store;
