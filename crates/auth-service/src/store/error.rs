//! Why a store call failed: `StoreError`, the unique index that refused a write, and how a
//! driver error is sorted into "unavailable" or not.

use crate::error::{Dependency, Error};

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
    #[error("no role named {0}")]
    UnknownRole(String),
    #[error("the change would leave no active administrator")]
    LastAdmin,
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

/// PostgreSQL SQLSTATEs for a server shutting down or refusing connections, or for a
/// transaction it chose to abort so that another could go on (deadlock victim, serialization
/// failure: nothing was written), and SQLite's "database is locked/busy" after the busy
/// timeout: the caller should retry later (503 with `Retry-After`), not report a fault.
fn is_unavailable_state(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "57P01"
                | "57P02"
                | "57P03"
                | "53300"
                | "08000"
                | "08003"
                | "08006"
                | "40P01"
                | "40001"
                | "5"
                | "6"
        )
    )
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What a use case makes of a store failure: a taken email or username and the last-admin
/// rule are answers for the caller; an unavailable database is a 503; the rest is internal.
impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Error::Unavailable(Dependency::Database),
            StoreError::Conflict(Unique::Email) => Error::EmailTaken,
            StoreError::Conflict(Unique::Username) => Error::UsernameTaken,
            StoreError::Conflict(other) => {
                Error::Internal(anyhow::anyhow!("unexpected conflict on {other:?}"))
            }
            StoreError::LastAdmin => Error::LastAdmin,
            StoreError::UnknownRole(role) => {
                Error::invalid("roles", "unknown_role", &format!("no role named {role}"))
            }
            StoreError::Other(source) => Error::Internal(source),
        }
    }
}
