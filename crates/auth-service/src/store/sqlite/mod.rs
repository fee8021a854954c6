//! SQLite: the embedded default. One file in WAL mode with a busy timeout; single node.
//! How it stores UUIDs and timestamps: `dialect.rs`. Commits do not wait for the disk
//! (`synchronous=NORMAL`); the WAL is flushed once a second, which bounds what a power loss
//! can undo (`docs/operations.md`, "Durability on SQLite").

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

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqliteRow, SqliteSynchronous,
};
use sqlx::SqlitePool;
use tokio::sync::{Mutex, MutexGuard};

use self::dialect::{db_error, Db, Tx};
use self::rows::commit;
use crate::config::DatabaseConfig;
use crate::store::contract::Store;
use crate::store::effects::Effects;
use crate::store::error::{StoreError, StoreResult};
use crate::store::fence::WriteFence;
use crate::store::shared::store::store_impl;

/// SQLite: whether the bookkeeping table exists, from `sqlite_master`.
const MIGRATIONS_TABLE_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How often the WAL is flushed to the disk. With `synchronous=NORMAL` a commit does not wait
/// for the disk, so a power loss undoes the commits since the WAL last reached it: this bounds
/// them to about the last second (a refresh token spent then may be live again).
const WAL_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    pool: SqlitePool,
    /// The one connection write transactions run on (in turn, see `writer`). Always the same
    /// connection, so its page cache stays warm: SQLite drops a connection's cache when
    /// another connection wrote since its last transaction, and each write turn taken on
    /// another pooled connection began by reading its pages from the file again (issue 20).
    write_pool: SqlitePool,
    /// The turn to write. SQLite admits one writer at a time; writers queue here, in
    /// process and in order, rather than in SQLite's busy handler, which sleeps in growing
    /// steps of up to 100 ms (measured on refreshes from 8 clients: p99 472 ms → 18 ms).
    writer: Mutex<()>,
    /// Raised after each committed change to session state (`store/fence.rs`).
    fence: Arc<WriteFence>,
    /// Flushes the WAL every [`WAL_SYNC_INTERVAL`] while the store lives.
    _wal_sync: WalSync,
}

/// The task flushing the WAL; stopped when the store is dropped.
struct WalSync(Option<tokio::task::JoinHandle<()>>);

impl Drop for WalSync {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl WalSync {
    /// Flushes `<database>-wal` every [`WAL_SYNC_INTERVAL`]: `fsync` on a descriptor of its
    /// own makes every frame written before it durable, whoever wrote it. An in-memory
    /// database has no WAL, and nothing is started.
    fn start(database: &Path) -> Self {
        if database.as_os_str().is_empty() || database.as_os_str() == ":memory:" {
            return Self(None);
        }
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        Self(Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(WAL_SYNC_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let path = wal.clone();
                // `fsync` blocks; it waits off the runtime's workers.
                let synced = tokio::task::spawn_blocking(move || sync_file(&path)).await;
                if let Ok(Err(error)) = synced {
                    tracing::warn!(error = %error, "flushing the SQLite WAL to the disk failed");
                }
            }
        })))
    }
}

/// `fsync` of `path`; a file that does not exist (no write yet) has nothing to flush.
fn sync_file(path: &Path) -> std::io::Result<()> {
    match std::fs::File::open(path) {
        Ok(file) => file.sync_data(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

impl SqliteStore {
    /// A write transaction, begun once it is this caller's turn to write; the turn is held
    /// until the returned guard drops (after commit or rollback).
    async fn begin_write(&self) -> StoreResult<(MutexGuard<'_, ()>, Tx<'static>)> {
        let turn = self.writer.lock().await;
        let tx = self.write_pool.begin().await.map_err(db_error)?;
        Ok((turn, Tx::new(tx, self.fence.clone())))
    }

    /// Runs `query`, a whole write transaction in one text (`BEGIN IMMEDIATE; …; COMMIT`), in
    /// the write turn on the write connection: one hand-off to the connection's thread where
    /// `begin_write` takes one per statement and two more. Answers the rows it returned. Should
    /// a statement fail, the transaction it left open is rolled back before the connection is
    /// used again, or the connection is closed. The fence is raised as by a `FencedTx`
    /// (`effects` may change session state; after the commit, or a failure whose outcome is
    /// unknown).
    async fn write_whole<'q>(
        &self,
        query: sqlx::query::Query<'q, Db, SqliteArguments<'q>>,
        effects: &Effects,
    ) -> StoreResult<Vec<SqliteRow>> {
        let _turn = self.writer.lock().await;
        let mut conn = self.write_pool.acquire().await.map_err(db_error)?;
        let outcome = query.fetch_all(&mut *conn).await;
        if effects.may_change_session_state() {
            self.fence.raise();
        }
        match outcome {
            Ok(rows) => Ok(rows),
            Err(error) => {
                if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                    // No transaction was open (the failure was its `BEGIN` or after its
                    // `COMMIT`), or the connection is broken: it is not used again either way.
                    conn.close_on_drop();
                }
                Err(db_error(error))
            }
        }
    }

    /// A pooled connection, for reads that take several queries.
    async fn connection(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        self.pool.acquire().await.map_err(db_error)
    }

    /// Opens (and creates) the database file, including its parent directory.
    pub async fn connect(config: &DatabaseConfig) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(config.url.expose())
            .map_err(|error| StoreError::Other(anyhow::anyhow!("database.url: {error}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let path = options.get_filename().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| {
                StoreError::Other(anyhow::anyhow!(
                    "cannot create {}: {error}",
                    parent.display()
                ))
            })?;
        }
        let pool = Self::pool_options(config)
            .connect_with(options.clone())
            .await
            .map_err(StoreError::from_sqlx)?;
        // An in-memory database is one per connection: there, writes share the pool.
        let write_pool = if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
            pool.clone()
        } else {
            sqlx::pool::PoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(config.acquire_timeout)
                .connect_with(options)
                .await
                .map_err(StoreError::from_sqlx)?
        };
        Ok(Self {
            pool,
            write_pool,
            writer: Mutex::new(()),
            fence: Arc::default(),
            _wal_sync: WalSync::start(&path),
        })
    }
}

store_impl! {
    impl Store for SqliteStore {
        fn backend(&self) -> &'static str {
            "sqlite"
        }

        async fn close(&self) {
            self.write_pool.close().await;
            self.pool.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::config::DatabaseUrl;

    async fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let url = format!("sqlite://{}", dir.path().join("write.db").display());
        let store = SqliteStore::connect(&DatabaseConfig {
            url: DatabaseUrl(SecretString::from(url)),
            ..DatabaseConfig::default()
        })
        .await
        .unwrap();
        store.migrate().await.unwrap();
        store
    }

    async fn roles(store: &SqliteStore) -> Vec<String> {
        sqlx::query_scalar("SELECT name FROM roles WHERE name LIKE 'whole-%' ORDER BY name")
            .fetch_all(&store.pool)
            .await
            .unwrap()
    }

    /// A whole transaction in one query that fails in its middle (the second insert breaks the
    /// primary key, after the first was made) leaves nothing written, and
    /// the write connection is fit for the next writer (no transaction left open on it).
    #[tokio::test]
    async fn a_whole_write_that_fails_midway_writes_nothing_and_leaves_no_transaction_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let nothing = Effects::default();

        let failed = store
            .write_whole(
                sqlx::query(
                    "BEGIN IMMEDIATE; INSERT INTO roles (name, description) VALUES ('whole-a', ''); \
                     INSERT INTO roles (name, description) VALUES ('whole-a', ''); COMMIT",
                ),
                &nothing,
            )
            .await;
        let next = store
            .write_whole(
                sqlx::query(
                    "BEGIN IMMEDIATE; INSERT INTO roles (name, description) VALUES ('whole-b', ''); COMMIT",
                ),
                &nothing,
            )
            .await;

        assert!(failed.is_err());
        assert!(next.is_ok(), "{:?}", next.err());
        assert_eq!(roles(&store).await, ["whole-b"]);
        let (_turn, tx) = store.begin_write().await.unwrap();
        tx.rollback().await.unwrap();
    }
}
