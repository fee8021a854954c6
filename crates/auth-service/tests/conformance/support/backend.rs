//! Where a test's database comes from: a fresh SQLite file, or a fresh PostgreSQL database
//! made on the server named by `TEST_DATABASE_URL`. Under `CI` a missing server fails.

use std::path::PathBuf;
use std::sync::OnceLock;

use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::Mutex;

/// The two storage backends every behaviour test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

const PG_PREFIX: &str = "auth_test_";

/// The PostgreSQL server URL for tests, or `None` (with a note) when tests may skip it.
pub fn postgres_server_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "CI is set but TEST_DATABASE_URL is not: start PostgreSQL and export \
             TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
        ),
        _ => None,
    }
}

impl Backend {
    /// Whether this backend can run here; prints why not when it is skipped.
    pub fn available(self, test: &str) -> bool {
        match self {
            Backend::Sqlite => true,
            Backend::Postgres => {
                let available = postgres_server_url().is_some();
                if !available {
                    eprintln!("SKIPPED postgres::{test}: TEST_DATABASE_URL is not set");
                }
                available
            }
        }
    }
}

/// A database that exists for one test and is removed afterwards.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path: PathBuf = dir.path().join("auth.db");
                Self {
                    url: format!("sqlite://{}", path.display()),
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let server = postgres_server_url().expect("TEST_DATABASE_URL");
                sweep_leftovers(&server).await;
                let name = format!("{PG_PREFIX}{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnection::connect(&server).await.unwrap_or_else(|e| {
                    panic!("cannot reach PostgreSQL at TEST_DATABASE_URL ({e}); start it")
                });
                admin
                    .execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("create database");
                let _ = admin.close().await;
                let mut url = url::Url::parse(&server).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                Self {
                    url: url.to_string(),
                    _dir: None,
                    pg_name: Some((server, name)),
                }
            }
        }
    }
}

impl TestDatabase {
    /// The same database once more, for a second deployment; the first owner removes it.
    pub fn borrowed(&self) -> Self {
        Self {
            url: self.url.clone(),
            _dir: None,
            pg_name: None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.pg_name.take() else {
            return;
        };
        // Drop runs inside the test's runtime; a thread with its own runtime does the async work.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&server).await.ok()?;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
    }
}

/// Drops databases left by earlier, interrupted runs (once per test process).
async fn sweep_leftovers(server: &str) {
    static SWEPT: OnceLock<Mutex<bool>> = OnceLock::new();
    let mut swept = SWEPT.get_or_init(|| Mutex::new(false)).lock().await;
    if *swept {
        return;
    }
    *swept = true;
    let Ok(mut admin) = PgConnection::connect(server).await else {
        return;
    };
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{PG_PREFIX}%"))
            .fetch_all(&mut admin)
            .await
            .unwrap_or_default();
    for name in names {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    }
    let _ = admin.close().await;
}
