//! The storage contract. The rest of the code talks to `Arc<dyn Store>`; `postgres/` and
//! `sqlite/` implement it with runtime queries, chosen by the database URL's scheme.

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::DatabaseConfig;

/// A unique index that refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    Email,
    Username,
    Other,
}

/// Why a store call failed. "Not found" is not an error: lookups return `Option`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a unique index refused the write: {0:?}")]
    Conflict(Unique),
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl StoreError {
    /// Sorts a driver error into "the database is away" and everything else. Unique
    /// violations are mapped by each backend, which knows its own index names.
    pub(crate) fn from_sqlx(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
            sqlx::Error::Database(ref db) if is_unavailable_state(db.code().as_deref()) => {
                StoreError::Unavailable(error)
            }
            other => StoreError::Other(other.into()),
        }
    }
}

/// PostgreSQL SQLSTATEs for a server shutting down or refusing connections, and SQLite's
/// "database is locked/busy" after the busy timeout: the caller should retry later.
fn is_unavailable_state(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("57P01" | "57P02" | "57P03" | "53300" | "08000" | "08003" | "08006" | "5" | "6")
    )
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the service keeps. Area traits are added beside this one as features land.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`, for logs and `/ready`.
    fn backend(&self) -> &'static str;
    /// Answers when the database does.
    async fn ping(&self) -> StoreResult<()>;
    /// Applies pending migrations; returns how many were applied.
    async fn migrate(&self) -> StoreResult<usize>;
    /// Closes the pool; in-flight queries finish first.
    async fn close(&self);
}

/// Opens the store named by the URL's scheme.
pub async fn connect(config: &DatabaseConfig) -> StoreResult<Arc<dyn Store>> {
    let url = config.url.expose();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(config).await?))
    } else {
        Ok(Arc::new(postgres::PgStore::connect(config).await?))
    }
}
