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

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Effects, SessionEvents, Store, StoreError, StoreResult, Unique};
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

/// Stand-ins for the ids of a session, and of its user, that a statement finds itself:
/// events built for them are written by that same statement with the real ids put in
/// (see [`FoundEvents`]).
const STAND_IN_SESSION: Uuid = Uuid::from_u128(0x5e55_1000_0000_4000_8000_0000_0000_0001);
const STAND_IN_USER: Uuid = Uuid::from_u128(0x5e55_1000_0000_4000_8000_0000_0000_0002);

/// Outbox events that a single statement writes for a session and user it finds itself (an
/// `INSERT … SELECT` from a row source naming them `id` and `user_id`), so a change and its
/// events need no transaction of several round trips. Built from events made for
/// [`STAND_IN_SESSION`] and [`STAND_IN_USER`]; the statement puts the real ids in their place,
/// in the row's user and in the payload alike.
struct FoundEvents {
    ids: Vec<Uuid>,
    types: Vec<&'static str>,
    users: Vec<Option<Uuid>>,
    payloads: Vec<String>,
    times: Vec<DateTime<Utc>>,
}

impl FoundEvents {
    fn new(events: SessionEvents<'_>) -> Self {
        let events = events(STAND_IN_SESSION, STAND_IN_USER);
        Self {
            ids: events.iter().map(|e| e.id).collect(),
            types: events.iter().map(|e| e.event_type).collect(),
            users: events.iter().map(|e| e.user_id).collect(),
            payloads: events.iter().map(|e| e.envelope.to_string()).collect(),
            times: events.iter().map(|e| e.occurred_at).collect(),
        }
    }

    /// A data-modifying CTE (to follow a `WITH …,`) writing the events, in order, once per
    /// row of `found`, with parameters `$first` to `$first + 4`.
    fn cte(found: &str, first: usize) -> String {
        let p = |n: usize| format!("${}", first + n);
        format!(
            "found_events AS ( \
               INSERT INTO outbox (id, event_type, user_id, payload, occurred_at, next_attempt_at) \
               SELECT e.id, e.event_type, \
                      CASE e.user_id WHEN '{STAND_IN_SESSION}'::uuid THEN f.id \
                                     WHEN '{STAND_IN_USER}'::uuid THEN f.user_id \
                                     ELSE e.user_id END, \
                      replace(replace(e.payload, '{STAND_IN_SESSION}', f.id::text), \
                              '{STAND_IN_USER}', f.user_id::text)::jsonb, \
                      e.at, e.at \
               FROM {found} f, unnest({}::uuid[], {}::text[], {}::uuid[], {}::text[], \
                                      {}::timestamptz[]) \
                 WITH ORDINALITY AS e(id, event_type, user_id, payload, at, n) \
               ORDER BY e.n)",
            p(0),
            p(1),
            p(2),
            p(3),
            p(4),
        )
    }

    /// Binds the parameters of [`FoundEvents::cte`], in order.
    fn bind<'q, O>(
        self,
        query: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
        query
            .bind(self.ids)
            .bind(self.types)
            .bind(self.users)
            .bind(self.payloads)
            .bind(self.times)
    }
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
