//! The few service calls the setup needs (health, config, metrics, signup, login), the
//! benchmark users and the JSON bodies the load sends.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::http::{Connection, Target};

pub const LOGIN: &str = "/api/auth/login";
pub const ME: &str = "/api/auth/me";
pub const SIGNUP: &str = "/api/auth/signup";
pub const REFRESH: &str = "/api/auth/refresh";
pub const INTROSPECT: &str = "/api/auth/introspect";
pub const TOKEN: &str = "/oauth/token";
pub const HEALTH: &str = "/health";
const LOGOUT: &str = "/api/auth/logout";
const API_KEYS: &str = "/api/auth/api-keys";
const CLIENTS: &str = "/api/clients";
const CONFIG: &str = "/api/auth/config";
const METRICS: &str = "/metrics";

/// Strong enough for any password policy the service may enforce, and the same for every user.
const PASSWORD: &str = "correct horse battery staple 42";

/// The password of every benchmark user (and of the administrator it creates).
pub fn password() -> &'static str {
    PASSWORD
}

/// A benchmark user; the tag makes names unique per run, so a persistent database is fine.
#[derive(Debug, Clone)]
pub struct User {
    pub username: String,
}

impl User {
    /// `count` users named `bench-<tag>-<role><n>`.
    pub fn many(tag: &str, role: &str, count: u32) -> Vec<Self> {
        (0..count)
            .map(|n| Self {
                username: format!("bench-{tag}-{role}{n}"),
            })
            .collect()
    }

    fn email(&self) -> String {
        format!("{}@bench.example.com", self.username)
    }

    /// The JSON body of `POST /api/auth/signup` for this user.
    pub fn signup_body(&self) -> String {
        json!({ "email": self.email(), "username": self.username, "password": PASSWORD })
            .to_string()
    }

    /// The JSON body of `POST /api/auth/login` for this user.
    pub fn login_body(&self) -> String {
        json!({ "username": self.username, "password": PASSWORD }).to_string()
    }
}

/// A tag unique to this run: milliseconds since the epoch and the process id, in hex.
pub fn run_tag() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    format!("{millis:x}{:x}", std::process::id())
}

/// The setup calls, each on a connection of its own.
pub struct Api {
    target: Target,
}

/// What a login answers that the load needs.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl Api {
    pub fn new(target: Target) -> Self {
        Self { target }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Whether `GET /health` answers 200 within a second.
    pub async fn healthy(&self) -> bool {
        let Ok(request) = self.target.prepare(Method::GET, HEALTH, &[], Bytes::new()) else {
            return false;
        };
        let answer = tokio::time::timeout(
            Duration::from_secs(1),
            Connection::new(self.target.clone()).send(request),
        )
        .await;
        matches!(answer, Ok(Ok((StatusCode::OK, _))))
    }

    /// Seconds spent hashing or verifying passwords so far (`GET /metrics`), if exposed.
    pub async fn password_hash_totals(&self) -> Option<Totals> {
        let (status, body) = self.get(METRICS).await.ok()?;
        let text = String::from_utf8(body.to_vec()).ok()?;
        status
            .is_success()
            .then(|| histogram_totals(&text, "auth_password_hash_duration_seconds"))?
    }

    /// `GET /api/auth/config`: the public auth settings as JSON.
    pub async fn auth_config(&self) -> anyhow::Result<Value> {
        let (status, body) = self.get(CONFIG).await?;
        expect_status(status, &body, StatusCode::OK, CONFIG)?;
        Ok(serde_json::from_slice(&body)?)
    }

    pub async fn signup(&self, user: &User) -> anyhow::Result<()> {
        let request = self
            .target
            .prepare(Method::POST, SIGNUP, &[], user.signup_body())?;
        let (status, body) = self
            .target
            .send_once(request)
            .await
            .with_context(|| format!("signup of {}", user.username))?;
        expect_status(status, &body, StatusCode::CREATED, SIGNUP)
    }

    /// Logs `user` in: a new session, its access and refresh tokens.
    pub async fn login(&self, user: &User) -> anyhow::Result<Tokens> {
        let request = self
            .target
            .prepare(Method::POST, LOGIN, &[], user.login_body())?;
        let (status, body) = self
            .target
            .send_once(request)
            .await
            .with_context(|| format!("login of {}", user.username))?;
        expect_status(status, &body, StatusCode::OK, LOGIN)?;
        let body: Value = serde_json::from_slice(&body)?;
        let field = |name: &str| {
            body.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("{LOGIN} answered 200 without {name}"))
        };
        Ok(Tokens {
            access: field("access_token")?,
            refresh: field("refresh_token")?,
        })
    }

    /// Ends the session of `access` (`POST /api/auth/logout` with it as the bearer).
    pub async fn logout(&self, access: &str) -> anyhow::Result<()> {
        let bearer = format!("Bearer {access}");
        let request = self.target.prepare(
            Method::POST,
            LOGOUT,
            &[(http::header::AUTHORIZATION, &bearer)],
            Bytes::new(),
        )?;
        let (status, body) = self.target.send_once(request).await.context("logout")?;
        expect_status(status, &body, StatusCode::NO_CONTENT, LOGOUT)
    }

    /// Creates an OAuth client (`POST /api/clients`) as the administrator of `admin_access`:
    /// its id and its secret.
    pub async fn create_client(&self, admin_access: &str, name: &str) -> anyhow::Result<Client> {
        let bearer = format!("Bearer {admin_access}");
        let request = self.target.prepare(
            Method::POST,
            CLIENTS,
            &[(http::header::AUTHORIZATION, &bearer)],
            json!({ "name": name }).to_string(),
        )?;
        let (status, body) = self
            .target
            .send_once(request)
            .await
            .context("creating a client")?;
        expect_status(status, &body, StatusCode::CREATED, CLIENTS)?;
        let body: Value = serde_json::from_slice(&body)?;
        let field = |name: &str| {
            body.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("{CLIENTS} answered 201 without {name}"))
        };
        Ok(Client {
            id: field("client_id")?,
            secret: field("client_secret")?,
        })
    }

    /// A user's API key (issue 18) with the scope `auth:read`, which admits `GET
    /// /api/auth/me`: `POST /api/auth/api-keys` with the user's session. The key, `ask_…`.
    pub async fn create_api_key(&self, access: &str, name: &str) -> anyhow::Result<String> {
        let bearer = format!("Bearer {access}");
        let request = self.target.prepare(
            Method::POST,
            API_KEYS,
            &[(http::header::AUTHORIZATION, &bearer)],
            json!({ "name": name, "scopes": ["auth:read"] }).to_string(),
        )?;
        let (status, body) = self
            .target
            .send_once(request)
            .await
            .context("creating an API key")?;
        expect_status(status, &body, StatusCode::CREATED, API_KEYS)?;
        let body: Value = serde_json::from_slice(&body)?;
        body.get("key")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("{API_KEYS} answered 201 without key"))
    }

    /// `GET /metrics` as text, if it answers 200.
    pub async fn metrics(&self) -> Option<String> {
        let (status, body) = self.get(METRICS).await.ok()?;
        status
            .is_success()
            .then(|| String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
        let request = self.target.prepare(Method::GET, path, &[], Bytes::new())?;
        self.target.send_once(request).await
    }
}

/// An OAuth client of the benchmark: what HTTP Basic authentication at `/oauth/token` needs.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: String,
}

/// The sum of every series of `name` (any labels) in Prometheus text format; `None` when
/// there is none.
pub fn metric_sum(exposition: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let base = series.split_once('{').map_or(series, |(base, _)| base);
        if base == name {
            if let Ok(value) = value.trim().parse::<f64>() {
                *found.get_or_insert(0.0) += value;
            }
        }
    }
    found
}

/// Running totals of a Prometheus histogram: the sum of observations and their count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub sum: f64,
    pub count: u64,
}

impl Totals {
    /// The mean observation between `self` (earlier) and `later`, if any happened.
    pub fn mean_until(self, later: Self) -> Option<f64> {
        let count = later.count.checked_sub(self.count).filter(|&n| n > 0)?;
        Some((later.sum - self.sum) / count as f64)
    }
}

/// `name_sum` and `name_count` of an unlabelled histogram in Prometheus text format.
fn histogram_totals(exposition: &str, name: &str) -> Option<Totals> {
    let value = |suffix: &str| {
        let series = format!("{name}_{suffix}");
        exposition
            .lines()
            .filter_map(|line| line.split_once(' '))
            .find(|(key, _)| *key == series)
            .and_then(|(_, value)| value.trim().parse::<f64>().ok())
    };
    Some(Totals {
        sum: value("sum")?,
        // A counter is an integer, even when printed as a float.
        count: value("count")? as u64,
    })
}

/// Ok if `status` is `wanted`, else an error quoting the start of the body.
fn expect_status(
    status: StatusCode,
    body: &[u8],
    wanted: StatusCode,
    what: &str,
) -> anyhow::Result<()> {
    if status == wanted {
        return Ok(());
    }
    bail!(
        "{what} answered {status} (expected {wanted}): {}",
        String::from_utf8_lossy(body)
            .chars()
            .take(300)
            .collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_totals_are_read_and_differenced() {
        let before = "# TYPE x histogram\nx_bucket{le=\"0.1\"} 1\nx_sum 0.5\nx_count 10\n";
        let after = "x_sum 1.5\nx_count 30\nx_sum_other 9\n";
        let (before, after) = (
            histogram_totals(before, "x").unwrap(),
            histogram_totals(after, "x").unwrap(),
        );

        assert_eq!(
            before,
            Totals {
                sum: 0.5,
                count: 10
            }
        );
        assert_eq!(before.mean_until(after), Some(0.05));
        assert_eq!(after.mean_until(after), None);
        assert_eq!(histogram_totals("y_sum 1\n", "x"), None);
    }

    #[test]
    fn metric_series_are_summed_over_their_labels() {
        let text = "# TYPE a counter\na{type=\"x\"} 3\na{type=\"y y\"} 4\nab 9\na_total 1\ng 0\n";

        assert_eq!(metric_sum(text, "a"), Some(7.0));
        assert_eq!(metric_sum(text, "g"), Some(0.0));
        assert_eq!(metric_sum(text, "missing"), None);
    }

    #[test]
    fn user_names_are_valid_and_unique_per_role() {
        let users = User::many(&run_tag(), "me", 2);
        assert_ne!(users[0].username, users[1].username);
        assert!(users[0].username.len() <= 50, "{}", users[0].username);
        assert!(users[0]
            .username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-'));
        let body: Value = serde_json::from_str(&users[0].login_body()).unwrap();
        assert_eq!(body["username"], users[0].username.as_str());
    }
}
