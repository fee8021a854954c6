//! PostgreSQL: the production backend, shared by many stateless replicas.

mod accounts;
mod admin;
mod audit;
mod directory;
mod keys;
mod outbox;
mod sessions;
mod users;

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use sqlx::{Postgres, Transaction};

use super::{Effects, Store, StoreError, StoreResult, Unique};
use crate::config::DatabaseConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL implementation of [`Store`].
pub struct PgStore {
    pool: PgPool,
}

/// Driver errors, with unique violations named by the index that refused them.
fn db_error(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        if db.is_unique_violation() {
            return StoreError::Conflict(match db.constraint() {
                Some("users_email_key") => Unique::Email,
                Some("users_username_key") => Unique::Username,
                _ => Unique::Other,
            });
        }
    }
    StoreError::from_sqlx(error)
}

/// Writes the outbox events and audit entries of a change inside its transaction.
async fn write_effects(tx: &mut Transaction<'_, Postgres>, effects: &Effects) -> StoreResult<()> {
    for event in &effects.events {
        sqlx::query(
            "INSERT INTO outbox (id, event_type, user_id, payload, occurred_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(event.id)
        .bind(event.event_type)
        .bind(event.user_id)
        .bind(&event.envelope)
        .bind(event.occurred_at)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    }
    for entry in &effects.audit {
        sqlx::query(
            "INSERT INTO audit_log (id, occurred_at, actor_id, user_id, action, target_type, target_id, \
             details, ip_address, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(entry.id)
        .bind(entry.occurred_at)
        .bind(entry.actor_id)
        .bind(entry.user_id)
        .bind(entry.action)
        .bind(entry.target_type)
        .bind(&entry.target_id)
        .bind(&entry.details)
        .bind(&entry.ip_address)
        .bind(&entry.request_id)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

impl PgStore {
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
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        write_effects(&mut tx, effects).await?;
        tx.commit().await.map_err(db_error)
    }
}
