//! A real auth-service on a free port over a fresh database, driven over its HTTP API.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_client::{Verifier, VerifierConfig};
use auth_service::app::{AppState, Listeners};
use auth_service::clock::Clock;
use auth_service::{App, Config};
use figment::providers::Serialized;
use figment::Figment;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::backend::{Backend, TestDatabase};

pub const PASSWORD: &str = "correct horse battery staple";
pub const ADMIN: &str = "root";

/// A client (SPEC §11) as `POST /api/clients` answered it: its id and its secret.
pub struct NewClient {
    pub id: String,
    pub secret: String,
}

/// A signed-up user: the access token signup answered and the ids in it.
pub struct Account {
    pub access_token: String,
    pub session_id: String,
}

pub struct Service {
    pub config: Config,
    pub base_url: String,
    /// The running app's state: its key ring rotates and revokes keys as the CLI would.
    pub state: AppState,
    http: reqwest::Client,
    _db: TestDatabase,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// 32 bytes, base64: seals the signing keys of services on PostgreSQL.
const TEST_KEY_ENCRYPTION_KEY: &str = "YXV0aC1jbGllbnQtdGVzdHMtc2VhbGluZy1rZXktMzI=";

/// A manual clock set `offset_seconds` away from the system time.
pub fn clock_at(offset_seconds: i64) -> Clock {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_micros();
    let micros = i64::try_from(now).expect("fits") + offset_seconds * 1_000_000;
    Clock::Manual(Arc::new(AtomicI64::new(micros)))
}

impl Backend {
    /// auth-service with the test defaults and a clock at the system time.
    pub async fn service(self) -> Service {
        self.service_with(clock_at(0), &[]).await
    }

    /// auth-service on `clock` with `settings` (`"section.key"`, value) over the test defaults.
    pub async fn service_with(self, clock: Clock, settings: &[(&str, &str)]) -> Service {
        let db = TestDatabase::create(self).await;
        let mut figment = Figment::new()
            .merge(Serialized::default("database.url", &db.url))
            .merge(Serialized::default("database.max_connections", 5))
            .merge(Serialized::default("server.cookie_secure", false))
            // Small argon2 parameters keep the suite fast.
            .merge(Serialized::default("password.argon2_memory_kib", 64))
            .merge(Serialized::default("password.argon2_iterations", 1));
        if db.url.starts_with("postgres") {
            // auth-service refuses PostgreSQL without a key to seal its signing keys (SPEC §3).
            figment = figment.merge(Serialized::default(
                "auth.key_encryption_key",
                TEST_KEY_ENCRYPTION_KEY,
            ));
        }
        for (key, value) in settings {
            figment = figment.merge(Serialized::default(key, value));
        }
        let config = Config::from_figment(&figment).expect("test config is valid");
        Service::start(db, config, clock).await
    }
}

impl Backend {
    /// auth-service with a global admin ([`ADMIN`], [`PASSWORD`]) created at first start.
    pub async fn service_with_admin(self) -> Service {
        self.service_with(
            clock_at(0),
            &[
                ("bootstrap.admin_email", "root@example.com"),
                ("bootstrap.admin_username", ADMIN),
                ("bootstrap.admin_password", PASSWORD),
            ],
        )
        .await
    }
}

impl Service {
    async fn start(db: TestDatabase, config: Config, clock: Clock) -> Self {
        let app = App::build_with_clock(config.clone(), clock)
            .await
            .expect("auth-service builds");
        let state = app.state().clone();
        let loopback = "127.0.0.1:0".parse().expect("an address");
        let listeners = Listeners::bind(loopback, loopback).await.expect("bind");
        let base_url = format!(
            "http://{}",
            listeners.http.local_addr().expect("local addr")
        );
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let stopped = async move {
                let _ = rx.await;
            };
            if let Err(error) = app.serve(listeners, stopped).await {
                eprintln!("auth-service stopped with an error: {error:#}");
            }
        });
        let service = Self {
            config,
            base_url,
            state,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            _db: db,
            shutdown: Some(tx),
            server: Some(server),
        };
        service.wait_healthy().await;
        service
    }

    async fn wait_healthy(&self) {
        for _ in 0..500 {
            if let Ok(response) = self.http.get(self.url("/health")).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("auth-service did not become healthy");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The verifier settings matching this service, to adjust before building.
    pub fn verifier_config(&self) -> VerifierConfig {
        VerifierConfig::new(
            &self.base_url,
            self.config.issuer(),
            &self.config.auth.audience,
        )
    }

    /// A verifier with the default settings for this service.
    pub fn verifier(&self) -> Verifier {
        Verifier::new(self.verifier_config()).expect("verifier")
    }

    /// Signs up `name` through `/api/auth/signup`.
    pub async fn signed_up(&self, name: &str) -> Account {
        let response = self
            .http
            .post(self.url("/api/auth/signup"))
            .json(&json!({ "email": format!("{name}@example.com"), "username": name, "password": PASSWORD }))
            .send()
            .await
            .expect("signup sent");
        assert_eq!(response.status(), 201, "signup of {name} failed");
        account(response).await
    }

    /// Logs `username` in through `/api/auth/login`: a new session.
    pub async fn logged_in(&self, username: &str) -> Account {
        let response = self
            .http
            .post(self.url("/api/auth/login"))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .expect("login sent");
        assert_eq!(response.status(), 200, "login of {username} failed");
        account(response).await
    }

    /// Creates a client through the admin API (`POST /api/clients`) as the bootstrap admin;
    /// `settings` are added to `{name}` (e.g. `scopes`, `access_token_ttl_seconds`).
    pub async fn client(&self, name: &str, settings: Value) -> NewClient {
        let admin = self.logged_in(ADMIN).await;
        let mut body = json!({ "name": name });
        if let (Some(body), Some(settings)) = (body.as_object_mut(), settings.as_object()) {
            body.extend(settings.clone());
        }
        let response = self
            .http
            .post(self.url("/api/clients"))
            .bearer_auth(&admin.access_token)
            .json(&body)
            .send()
            .await
            .expect("client creation sent");
        assert_eq!(response.status(), 201, "creating client {name} failed");
        let created: Value = response.json().await.expect("a client");
        NewClient {
            id: created["client_id"].as_str().expect("client_id").into(),
            secret: created["client_secret"]
                .as_str()
                .expect("client_secret")
                .into(),
        }
    }

    /// Changes a client through `PATCH /api/clients/{id}` as the bootstrap admin.
    pub async fn patch_client(&self, id: &str, change: Value) {
        let admin = self.logged_in(ADMIN).await;
        let response = self
            .http
            .patch(self.url(&format!("/api/clients/{id}")))
            .bearer_auth(&admin.access_token)
            .json(&change)
            .send()
            .await
            .expect("client change sent");
        assert_eq!(response.status(), 200, "changing client {id} failed");
    }

    /// Ends the session of `token` through `/api/auth/logout`.
    pub async fn logout(&self, token: &str) {
        let response = self
            .http
            .post(self.url("/api/auth/logout"))
            .bearer_auth(token)
            .json(&json!({}))
            .send()
            .await
            .expect("logout sent");
        assert_eq!(response.status(), 204, "logout failed");
    }

    /// The public JWKS as the service publishes it.
    pub async fn jwks(&self) -> Value {
        self.http
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("jwks sent")
            .json()
            .await
            .expect("jwks body")
    }

    /// Stops the service gracefully; its port refuses connections afterwards.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
    }
}

async fn account(response: reqwest::Response) -> Account {
    let body: Value = response.json().await.expect("token response");
    Account {
        access_token: body["access_token"].as_str().expect("access_token").into(),
        session_id: body["session_id"].as_str().expect("session_id").into(),
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
