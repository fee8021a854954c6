//! PostgreSQL: the production backend, shared by many stateless replicas.

mod accounts;
mod admin;
mod api_keys;
mod audit;
mod clients;
mod dialect;
mod directory;
mod keys;
mod mfa;
mod outbox;
mod passkeys;
mod revocations;
mod rows;
mod sessions;
mod users;

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

use self::dialect::{db_error, Db, Tx};
use self::rows::commit;
use crate::config::DatabaseConfig;
use crate::store::contract::Store;
use crate::store::effects::Effects;
use crate::store::error::{StoreError, StoreResult};
use crate::store::fence::WriteFence;
use crate::store::shared::store::store_impl;

/// PostgreSQL: whether the bookkeeping table exists, from the catalogue.
const MIGRATIONS_TABLE_EXISTS: &str = "SELECT to_regclass('_sqlx_migrations') IS NOT NULL";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL implementation of [`Store`].
pub struct PgStore {
    pool: PgPool,
    /// Raised after each committed change to session state (`store/fence.rs`).
    fence: Arc<WriteFence>,
}

impl PgStore {
    /// A write transaction. PostgreSQL: writers need no turn of their own (row and advisory
    /// locks order them), so the turn is `()`; SQLite's `begin_write` queues writers.
    async fn begin_write(&self) -> StoreResult<((), Tx<'static>)> {
        let tx = self.pool.begin().await.map_err(db_error)?;
        Ok(((), Tx::new(tx, self.fence.clone())))
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
        let pool = Self::pool_options(config)
            .connect_with(options)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(Self {
            pool,
            fence: Arc::default(),
        })
    }
}

store_impl! {
    impl Store for PgStore {
        fn backend(&self) -> &'static str {
            "postgres"
        }

        async fn close(&self) {
            self.pool.close().await;
        }
    }
}
