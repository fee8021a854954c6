//! `TestApp`: the real server on free ports over a fresh database, driven over HTTP and gRPC.

use std::net::SocketAddr;
use std::time::Duration;

use auth_service::app::Listeners;
use auth_service::clock::Clock;
use auth_service::config::Rate;
use auth_service::services::api_keys::ApiKeys;
use auth_service::services::keys::Keys;
use auth_service::{App, Config};
use figment::providers::Serialized;
use figment::Figment;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::backend::{Backend, TestDatabase};

pub struct TestApp {
    pub config: Config,
    pub base_url: String,
    /// `http://127.0.0.1:<port>` of the gRPC listener.
    pub grpc_url: String,
    pub http: reqwest::Client,
    pub clock: Clock,
    /// The running server's signing keys: tests reread them (as the periodic reread does),
    /// rotate and revoke through them.
    pub keys: Keys,
    /// The running server's API keys: tests flush the uses noted in memory (SPEC §11), as
    /// the periodic flush does.
    pub api_keys: ApiKeys,
    pub db: TestDatabase,
    /// Receives the `.eml` files the app mails (the file transport).
    pub mail_dir: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// The key-encryption key of test servers on PostgreSQL, which refuses to start without one
/// (SPEC §3); SQLite servers generate their key file beside the database.
pub const TEST_KEY_ENCRYPTION_KEY: &str = "dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMzItYnl0ZXM=";

/// What a command-line run against `database_url` needs to open the signing keys the test
/// servers sealed: the key above on PostgreSQL; on SQLite nothing (the generated key file).
pub fn key_env(database_url: &str) -> Vec<(&'static str, &'static str)> {
    if database_url.starts_with("postgres") {
        vec![("APP__AUTH__KEY_ENCRYPTION_KEY", TEST_KEY_ENCRYPTION_KEY)]
    } else {
        Vec::new()
    }
}

const RELAXED: Rate = Rate::new(100_000, Duration::from_secs(60));

/// The configuration tests start from: the embedded defaults with a test database.
pub fn test_config(database_url: &str) -> Config {
    let figment = Figment::new()
        .merge(Serialized::default("database.url", database_url))
        .merge(Serialized::default("database.max_connections", 5))
        .merge(Serialized::default("server.cookie_secure", false))
        // Small argon2 parameters keep the suite fast; a unit test pins the production ones.
        .merge(Serialized::default("password.argon2_memory_kib", 64))
        .merge(Serialized::default("password.argon2_iterations", 1))
        // Every test client is 127.0.0.1: per-IP limits are raised here and lowered by the
        // tests that are about them.
        .merge(Serialized::default("limits.login_per_ip", RELAXED))
        .merge(Serialized::default("limits.signup_per_ip", RELAXED))
        .merge(Serialized::default(
            "limits.forgot_password_per_ip",
            RELAXED,
        ))
        .merge(Serialized::default("limits.lookup_per_ip", RELAXED))
        .merge(Serialized::default("limits.mail_per_account", RELAXED));
    let figment = if key_env(database_url).is_empty() {
        figment
    } else {
        figment.merge(Serialized::default(
            "auth.key_encryption_key",
            TEST_KEY_ENCRYPTION_KEY,
        ))
    };
    Config::from_figment(&figment).expect("test config is valid")
}

impl Backend {
    /// A server on a fresh database with the test defaults.
    pub async fn app(self) -> TestApp {
        self.app_with(|_| {}).await
    }

    /// A server on a fresh database, with the configuration adjusted first.
    pub async fn app_with(self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let db = TestDatabase::create(self).await;
        let mail_dir = tempfile::tempdir().expect("mail dir");
        let mut config = test_config(&db.url);
        config.mail.file_dir = Some(mail_dir.path().to_owned());
        adjust(&mut config);
        let mut app = TestApp::start(db, config).await;
        app.mail_dir = Some(mail_dir);
        app
    }
}

impl TestApp {
    /// Builds and serves the app on `127.0.0.1:0`, then waits for `/health`.
    pub async fn start(db: TestDatabase, config: Config) -> Self {
        let clock = Clock::manual();
        let app = App::build_with_clock(config.clone(), clock.clone())
            .await
            .expect("app builds");
        let keys = app.state().services.keys.clone();
        let api_keys = app.state().services.api_keys.clone();
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        let listeners = Listeners::bind(local, local).await.expect("bind");
        let base_url = format!(
            "http://{}",
            listeners.http.local_addr().expect("local addr")
        );
        let grpc_url = format!(
            "http://{}",
            listeners.grpc.local_addr().expect("local addr")
        );
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.serve(listeners, async move {
            let _ = rx.await;
        }));
        let test_app = Self {
            config,
            base_url,
            grpc_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            clock,
            keys,
            api_keys,
            db,
            mail_dir: None,
            shutdown: Some(tx),
            server: Some(server),
        };
        test_app.wait_healthy().await;
        test_app
    }

    /// A second deployment on this app's database (started after this one migrated it),
    /// with this app's configuration adjusted by `adjust`, e.g. another territory.
    pub async fn beside(&self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = self.config.clone();
        adjust(&mut config);
        TestApp::start(self.db.borrowed(), config).await
    }

    async fn wait_healthy(&self) {
        for _ in 0..200 {
            if let Ok(response) = self.http.get(self.url("/health")).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the server did not become healthy");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// Stops the server gracefully and returns what `serve` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(server) => server.await.expect("server task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
