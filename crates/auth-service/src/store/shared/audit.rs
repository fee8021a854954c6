//! The audit log as administrators read it, and bulk imports of users — the same text on
//! both databases, but for how a list travels as one parameter (`taken_logins`).

/// Rows per multi-row INSERT: 8 parameters each stays far below both databases' limits
/// (PostgreSQL 65 535, SQLite 32 766).
pub(crate) const BATCH: usize = 500;

/// Expands `AuditStore` for a wing; methods written inside the block are the wing's own. See
/// `shared/mod.rs` for the names the bodies expect in scope.
macro_rules! audit_store {
    (impl AuditStore for $store:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl AuditStore for $store {
            $($own)*

            async fn audit_entries(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
                // Ids are UUIDv7, so by id is by time: PostgreSQL compares UUIDs bytewise, SQLite
                // compares the hyphenated lowercase text, which sorts like the bytes.
                let mut query = QueryBuilder::<Db>::new(
                    "SELECT id, occurred_at, actor_id, user_id, action, target_type, target_id, details, \
                     ip_address, request_id FROM audit_log WHERE TRUE",
                );
                if let Some(user_id) = filter.user_id {
                    query.push(" AND user_id = ").push_bind(id(user_id));
                }
                if let Some(action) = &filter.action {
                    query.push(" AND action = ").push_bind(action.as_str());
                }
                if let Some(code) = &filter.member_of {
                    query
                        .push(
                            " AND user_id IN (SELECT user_id FROM user_territories WHERE territory_code = ",
                        )
                        .push_bind(code.as_str())
                        .push(")");
                }
                if let Some(before) = filter.before {
                    query.push(" AND id < ").push_bind(id(before));
                }
                query
                    .push(" ORDER BY id DESC LIMIT ")
                    .push_bind(i64::from(filter.limit));
                let rows: Vec<AuditRow<DbUuid>> = query
                    .build_query_as()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(rows.into_iter().map(AuditRecord::from).collect())
            }

            async fn import_users(
                &self,
                users: &[NewUser],
                role: &str,
                effects: &Effects,
            ) -> StoreResult<u64> {
                let (_turn, mut tx) = self.begin_write().await?;
                let known: i64 = sqlx::query_scalar("SELECT count(*) FROM roles WHERE name = $1")
                    .bind(role)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if known == 0 {
                    return Err(StoreError::UnknownRole(role.to_owned()));
                }
                for batch in users.chunks(BATCH) {
                    let mut insert = QueryBuilder::<Db>::new(
                        "INSERT INTO users (id, email, username, password_hash, display_name, \
                         is_verified, created_at, updated_at) ",
                    );
                    insert.push_values(batch, |mut row, user| {
                        row.push_bind(id(user.id))
                            .push_bind(user.email.as_str())
                            .push_bind(user.username.as_str())
                            .push_bind(user.password_hash.as_str())
                            .push_bind(user.display_name.as_deref())
                            .push_bind(user.is_verified)
                            .push_bind(ts(user.created_at))
                            .push_bind(ts(user.created_at));
                    });
                    insert.build().execute(&mut *tx).await.map_err(db_error)?;
                    let mut grant = QueryBuilder::<Db>::new(
                        "INSERT INTO user_roles (user_id, role_name, granted_at) ",
                    );
                    grant.push_values(batch, |mut row, user| {
                        row.push_bind(id(user.id))
                            .push_bind(role)
                            .push_bind(ts(user.created_at));
                    });
                    grant.build().execute(&mut *tx).await.map_err(db_error)?;
                }
                commit(tx, effects).await?;
                Ok(users.len() as u64)
            }
        }
    };
}
pub(crate) use audit_store;
