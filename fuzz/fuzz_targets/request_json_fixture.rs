//! The app `request_json` sends requests to: built once, with an admin and a user signed in,
//! and put back in shape after an input logged them out, demoted, locked or deleted them.

use auth_service::clock::Clock;
use auth_service::config::Rate;
use auth_service::{App, Config};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use figment::providers::Serialized;
use figment::Figment;
use secrecy::SecretString;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

const PASSWORD: &str = "Fuzzing-is-a-long-walk-42";
const RELAXED: Rate = Rate::new(1_000_000, std::time::Duration::from_secs(60));

/// Who a request is sent as.
#[derive(Clone, Copy)]
pub enum Who {
    Nobody,
    Admin,
    Alice,
    /// A token with a valid shape that no key signed.
    Forged,
}

/// A signed-in account.
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub access: String,
    pub refresh: String,
    pub session: Uuid,
}

pub struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: Router,
    app: App,
    pub admin: Account,
    pub alice: Account,
    _dir: tempfile::TempDir,
}

/// Seals the signing keys when fuzzing PostgreSQL (`FUZZ_DATABASE_URL`); a fuzzing-only key.
const FUZZ_KEY_ENCRYPTION_KEY: &str = "ZnV6emluZy1vbmx5LWtleS1lbmNyeXB0aW9uLWtleSE=";

fn config(database_url: &str) -> Config {
    let mut figment = Figment::new()
        .merge(Serialized::default("database.url", database_url))
        .merge(Serialized::default("database.max_connections", 2))
        .merge(Serialized::default("server.cookie_secure", false))
        .merge(Serialized::default("password.argon2_memory_kib", 64))
        .merge(Serialized::default("password.argon2_iterations", 1))
        .merge(Serialized::default("limits.login_per_ip", RELAXED))
        .merge(Serialized::default("limits.signup_per_ip", RELAXED))
        .merge(Serialized::default(
            "limits.forgot_password_per_ip",
            RELAXED,
        ))
        .merge(Serialized::default("limits.lookup_per_ip", RELAXED))
        .merge(Serialized::default("limits.mail_per_account", RELAXED))
        .merge(Serialized::default(
            "bootstrap.admin_email",
            "root@fuzz.test",
        ))
        .merge(Serialized::default("bootstrap.admin_username", "root"))
        .merge(Serialized::default("bootstrap.admin_password", PASSWORD));
    if database_url.starts_with("postgres") {
        figment = figment.merge(Serialized::default(
            "auth.key_encryption_key",
            FUZZ_KEY_ENCRYPTION_KEY,
        ));
    }
    Config::from_figment(&figment).expect("the fuzz configuration is valid")
}

impl Fixture {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        // An empty PostgreSQL database to fuzz instead of SQLite; it may be reused.
        let url = std::env::var("FUZZ_DATABASE_URL")
            .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("fuzz.db").display()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let app = runtime
            .block_on(App::build_with_clock(config(&url), Clock::manual()))
            .expect("the app builds");
        let router = auth_service::http::router(app.state());
        let mut fixture = Self {
            runtime,
            router,
            app,
            admin: Account::placeholder(),
            alice: Account::placeholder(),
            _dir: dir,
        };
        // A reused database may hold a root and an alice an earlier run changed.
        fixture.admin = match fixture.login("root") {
            Some(admin) if fixture.works(&admin, true) => admin,
            _ => fixture.new_admin(),
        };
        fixture.alice = match fixture.login("alice") {
            Some(alice) => alice,
            None => fixture
                .create_user("alice")
                .unwrap_or_else(|| fixture.new_user()),
        };
        fixture
    }

    /// The bearer token to send as `who`.
    pub fn bearer(&self, who: Who) -> Option<String> {
        match who {
            Who::Nobody => None,
            Who::Admin => Some(self.admin.access.clone()),
            Who::Alice => Some(self.alice.access.clone()),
            Who::Forged => {
                let (head, _) = self.alice.access.rsplit_once('.')?;
                Some(format!("{head}.AAAA"))
            }
        }
    }

    /// Sends one request; the status and the whole answer body.
    pub fn send(&self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        let router = self.router.clone();
        self.runtime.block_on(async move {
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .map(|bytes| bytes.to_vec())
                .unwrap_or_else(|error| format!("<the body failed: {error}>").into_bytes());
            (status, body)
        })
    }

    fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Body::from(body.to_string()))
            .expect("a valid request");
        let (status, body) = self.send(request);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn login(&self, username: &str) -> Option<Account> {
        let (status, body) = self.post(
            "/api/auth/login",
            None,
            &json!({ "username": username, "password": PASSWORD }),
        );
        if status != StatusCode::OK {
            return None;
        }
        let text = |pointer: &str| body.pointer(pointer)?.as_str().map(str::to_owned);
        let uuid = |pointer: &str| text(pointer)?.parse::<Uuid>().ok();
        Some(Account {
            id: uuid("/user/id")?,
            email: text("/user/email")?,
            username: username.to_owned(),
            access: text("/access_token")?,
            refresh: text("/refresh_token")?,
            session: uuid("/session_id")?,
        })
    }

    /// A new user created by the admin, signed in; `None` when the name is taken.
    fn create_user(&self, username: &str) -> Option<Account> {
        let (status, body) = self.post(
            "/api/users",
            Some(&self.admin.access),
            &json!({
                "email": format!("{username}@fuzz.test"),
                "username": username,
                "password": PASSWORD,
                "is_verified": true,
            }),
        );
        if status == StatusCode::CONFLICT {
            return None;
        }
        assert_eq!(status, StatusCode::CREATED, "creating {username}: {body}");
        Some(self.login(username).expect("a new user signs in"))
    }

    /// Whether `account`'s access token still authenticates (as an admin when `admin`).
    fn works(&self, account: &Account, admin: bool) -> bool {
        let sessions = &self.app.state().services.sessions;
        match self
            .runtime
            .block_on(sessions.authenticate(&account.access))
        {
            Ok(Ok(session)) => !admin || session.has_role("admin"),
            _ => false,
        }
    }

    /// Puts the admin and alice back in shape after a request that changed something: signs
    /// them in again, or replaces them with new accounts when they cannot sign in any more.
    /// `spent` says the request may have used alice's refresh token.
    pub fn recover(&mut self, changed: bool, spent: bool) {
        if !changed {
            return;
        }
        if !self.works(&self.admin, true) {
            self.admin = match self.login(&self.admin.username.clone()) {
                Some(admin) if self.works(&admin, true) => admin,
                _ => self.new_admin(),
            };
        }
        if spent || !self.works(&self.alice, false) {
            self.alice = match self.login(&self.alice.username.clone()) {
                Some(alice) => alice,
                None => self.new_user(),
            };
        }
    }

    fn new_user(&self) -> Account {
        self.create_user(&fresh_name("alice"))
            .expect("a fresh name is free")
    }

    fn new_admin(&self) -> Account {
        let username = fresh_name("root");
        let admin = &self.app.state().services.admin;
        self.runtime
            .block_on(admin.create_admin(
                &format!("{username}@fuzz.test"),
                &username,
                &SecretString::from(PASSWORD),
            ))
            .expect("a new admin");
        self.login(&username).expect("a new admin signs in")
    }
}

/// A name no earlier run used: `prefix` and a few random letters.
fn fresh_name(prefix: &str) -> String {
    let random = Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &random[..10])
}

impl Account {
    fn placeholder() -> Self {
        Self {
            id: Uuid::nil(),
            email: String::new(),
            username: String::new(),
            access: String::new(),
            refresh: String::new(),
            session: Uuid::nil(),
        }
    }
}
