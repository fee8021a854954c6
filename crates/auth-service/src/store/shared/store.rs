//! The whole store: ping, migrations, effects alone — the same text on both databases, but for
//! the backend's name, how it tells whether migrations ever ran, and closing (SQLite has a
//! pool of its own for writes).

/// Expands `Store` for a wing, with `applied_migrations`; methods written inside the block are
/// the wing's own. The wing's `mod.rs` supplies `MIGRATOR` and `MIGRATIONS_TABLE_EXISTS` (a
/// query answering one boolean). See `shared/mod.rs` for the names the bodies expect in scope.
macro_rules! store_impl {
    (impl Store for $store:ty { $($own:tt)* }) => {
        impl $store {
            /// The pool's sizes and patience, from the configuration.
            fn pool_options(config: &DatabaseConfig) -> sqlx::pool::PoolOptions<Db> {
                sqlx::pool::PoolOptions::new()
                    .max_connections(config.max_connections)
                    .min_connections(config.min_connections)
                    .acquire_timeout(config.acquire_timeout)
            }

            /// How many migrations have been applied; none before the first (the bookkeeping
            /// table is missing then).
            async fn applied_migrations(&self) -> StoreResult<i64> {
                let exists: bool = sqlx::query_scalar(MIGRATIONS_TABLE_EXISTS)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::from_sqlx)?;
                if !exists {
                    return Ok(0);
                }
                sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::from_sqlx)
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            $($own)*

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(StoreError::from_sqlx)?;
                Ok(())
            }

            async fn migrate(&self) -> StoreResult<usize> {
                let before = self.applied_migrations().await?;
                MIGRATOR
                    .run(&self.pool)
                    .await
                    .map_err(|error| StoreError::Other(error.into()))?;
                let after = self.applied_migrations().await?;
                Ok(usize::try_from(after - before).unwrap_or(0))
            }

            fn write_epoch(&self) -> u64 {
                self.fence.epoch()
            }

            async fn record_effects(&self, effects: &Effects) -> StoreResult<()> {
                let (_turn, tx) = self.begin_write().await?;
                commit(tx, effects).await
            }
        }
    };
}
pub(crate) use store_impl;
