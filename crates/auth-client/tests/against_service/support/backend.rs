//! Where a test's auth-service keeps its data: a fresh SQLite file, or a fresh PostgreSQL
//! database on the server named by `TEST_DATABASE_URL` (required when `CI` is set).

use sqlx::{Connection, Executor, PgConnection};

/// The two storage backends every test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Not `auth_test_`: the service's own suite sweeps that prefix and may run at the same time.
const PG_PREFIX: &str = "auth_client_test_";

fn postgres_server_url() -> Option<String> {
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
    /// Whether this backend can run here; says so when PostgreSQL is skipped.
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

/// A database that exists for one test and is dropped afterwards.
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
                Self {
                    url: format!("sqlite://{}", dir.path().join("auth.db").display()),
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let server = postgres_server_url().expect("TEST_DATABASE_URL");
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
