//! The database a spawned service runs on: a SQLite file in the run's temporary directory, or
//! a PostgreSQL database created for the run (`auth_bench_<unix seconds>_<pid>`) through the
//! server's `postgres` maintenance database and dropped at the end, so a shared server keeps
//! nothing of the benchmark.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sqlx::{Connection, PgConnection, Row};
use url::Url;

/// The PostgreSQL server `--both` uses when `--database-url` does not name one.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Databases of runs that died before dropping theirs are dropped by a later run after this.
const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);
const PREFIX: &str = "auth_bench_";

/// Which database the service runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// A service the benchmark did not start (`--url`).
    Unknown,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
            Self::Unknown => "a running service (database unknown)",
        }
    }
}

/// A database for one run.
pub enum Database {
    /// A SQLite file the spawned service creates in its temporary directory.
    Sqlite,
    /// A URL given as is (neither PostgreSQL nor empty): used, never dropped.
    Given { url: String },
    /// Whatever the service at `--url` uses: not this benchmark's business.
    External,
    /// A database this run created on a PostgreSQL server, dropped by [`Database::drop`].
    Postgres {
        admin: String,
        name: String,
        url: String,
    },
}

impl Database {
    /// A new database on the PostgreSQL server of `server_url` (its database part is ignored),
    /// after dropping what runs that died left behind.
    pub async fn create_postgres(server_url: &str) -> anyhow::Result<Self> {
        let mut admin = Url::parse(server_url).context("--database-url is not a URL")?;
        admin.set_path("/postgres");
        let mut conn = PgConnection::connect(admin.as_str()).await.with_context(|| {
            format!(
                "cannot connect to the maintenance database {} (the benchmark creates its own database there)",
                crate::server::redact(admin.as_str())
            )
        })?;
        sweep_stale(&mut conn).await?;
        let seconds = unix_seconds(SystemTime::now());
        let name = format!("{PREFIX}{seconds}_{}", std::process::id());
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .with_context(|| format!("cannot create database {name}"))?;
        let mut url = admin.clone();
        url.set_path(&format!("/{name}"));
        Ok(Self::Postgres {
            admin: admin.into(),
            name,
            url: url.into(),
        })
    }

    /// The database for `--database-url`: PostgreSQL URLs get a database of their own.
    pub async fn for_url(url: Option<&str>) -> anyhow::Result<Self> {
        match url {
            None => Ok(Self::Sqlite),
            Some(url) if url.starts_with("postgres") => Self::create_postgres(url).await,
            Some(url) => Ok(Self::Given { url: url.into() }),
        }
    }

    /// The URL to give the service; `None` for the SQLite file in its directory.
    pub fn url(&self) -> Option<&str> {
        match self {
            Self::Sqlite | Self::External => None,
            Self::Given { url } | Self::Postgres { url, .. } => Some(url),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres { .. } => Backend::Postgres,
            Self::Given { url } if url.starts_with("postgres") => Backend::Postgres,
            Self::Sqlite | Self::Given { .. } => Backend::Sqlite,
            Self::External => Backend::Unknown,
        }
    }

    /// CPU seconds used so far by each PostgreSQL backend serving this run's database, by
    /// process id (the server runs on this machine); `None` for SQLite, whose work is done
    /// inside the service.
    pub async fn backend_cpu(&self) -> Option<HashMap<u32, f64>> {
        let Self::Postgres { admin, name, .. } = self else {
            return None;
        };
        let mut conn = PgConnection::connect(admin).await.ok()?;
        let pids: Vec<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = $1")
                .bind(name)
                .fetch_all(&mut conn)
                .await
                .ok()?;
        let _ = conn.close().await;
        // A server on another machine (or in another pid namespace) has pids that mean
        // nothing here: every backend must be a local `postgres` process, or nothing is said.
        pids.into_iter()
            .map(|pid| {
                let pid = u32::try_from(pid).ok()?;
                let ours = crate::process::command(pid)? == "postgres";
                Some((pid, crate::process::cpu_seconds(pid).filter(|_| ours)?))
            })
            .collect()
    }

    /// Drops a database this run created.
    pub async fn drop(self) -> anyhow::Result<()> {
        let Self::Postgres { admin, name, .. } = self else {
            return Ok(());
        };
        let mut conn = PgConnection::connect(&admin).await?;
        drop_database(&mut conn, &name).await
    }
}

async fn drop_database(conn: &mut PgConnection, name: &str) -> anyhow::Result<()> {
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(conn)
        .await
        .with_context(|| format!("cannot drop database {name}"))?;
    Ok(())
}

/// Drops `auth_bench_<seconds>_<pid>` databases older than [`STALE_AFTER`]; younger ones may
/// belong to a run still going.
async fn sweep_stale(conn: &mut PgConnection) -> anyhow::Result<()> {
    let rows = sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE 'auth\\_bench\\_%'")
        .fetch_all(&mut *conn)
        .await?;
    let now = unix_seconds(SystemTime::now());
    for row in rows {
        let name: String = row.try_get(0)?;
        if is_stale(&name, now) {
            eprintln!("setup: dropping {name}, left behind by an earlier run");
            drop_database(conn, &name).await?;
        }
    }
    Ok(())
}

fn is_stale(name: &str, now: u64) -> bool {
    name.strip_prefix(PREFIX)
        .and_then(|rest| rest.split('_').next())
        .and_then(|seconds| seconds.parse::<u64>().ok())
        .is_some_and(|created| now.saturating_sub(created) > STALE_AFTER.as_secs())
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_benchmark_databases_are_stale() {
        let now = 1_800_000_000;

        assert!(is_stale("auth_bench_1700000000_42", now));
        assert!(!is_stale(&format!("auth_bench_{}_42", now - 60), now));
        assert!(!is_stale("auth_test_1700000000", now));
        assert!(!is_stale("auth_bench_x", now));
    }
}
