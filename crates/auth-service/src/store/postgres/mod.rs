//! PostgreSQL: the production backend, shared by many stateless replicas.

mod accounts;
mod admin;
mod audit;
mod dialect;
mod directory;
mod keys;
mod outbox;
mod rows;
mod sessions;
mod users;

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use self::dialect::{db_error, Tx};
use self::rows::write_effects;
use crate::config::DatabaseConfig;
use crate::store::contract::Store;
use crate::store::effects::Effects;
use crate::store::error::{StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL implementation of [`Store`].
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// A write transaction. PostgreSQL: writers need no turn of their own (row and advisory
    /// locks order them), so the turn is `()`; SQLite's `begin_write` queues writers.
    async fn begin_write(&self) -> StoreResult<((), Tx<'static>)> {
        let tx = self.pool.begin().await.map_err(db_error)?;
        Ok(((), tx))
    }

    /// A pooled connection, for reads that take several queries.
    async fn connection(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        self.pool.acquire().await.map_err(db_error)
    }

    /// Connects and checks the server answers; fails fast when it cannot be reached.
    pub async fn connect(config: &DatabaseConfig) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(config.url.expose())
            .map_err(|error| StoreError::Other(anyhow::anyhow!("database.url: {error}")))?
            .application_name("auth-service");
        // One direct connection first, so an unreachable server is reported with its cause
        // ("connection refused", "password authentication failed") rather than a pool timeout.
        PgConnection::connect_with(&options)
            .await
            .map_err(StoreError::from_sqlx)?
            .close()
            .await
            .ok();
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(config.min_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(Self { pool })
    }

    async fn applied_migrations(&self) -> StoreResult<i64> {
        // PostgreSQL: the bookkeeping table is missing before the first migration.
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
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

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

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

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn record_effects(&self, effects: &Effects) -> StoreResult<()> {
        let (_turn, mut tx) = self.begin_write().await?;
        write_effects(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }
}
