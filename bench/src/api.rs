//! The few service calls the setup needs: health, config, signup and login.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

pub const LOGIN: &str = "/api/auth/login";
pub const ME: &str = "/api/auth/me";
const SIGNUP: &str = "/api/auth/signup";
const CONFIG: &str = "/api/auth/config";
const HEALTH: &str = "/health";
const METRICS: &str = "/metrics";

/// Strong enough for any password policy the service may enforce, and the same for every user.
const PASSWORD: &str = "correct horse battery staple 42";

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

/// The base URL and a pooled keep-alive client; clones share the pool.
pub struct Api {
    client: Client,
    base: String,
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Whether `GET /health` answers 200 within a second.
    pub async fn healthy(&self) -> bool {
        let answer = self
            .client
            .get(self.url(HEALTH))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        matches!(answer, Ok(response) if response.status() == StatusCode::OK)
    }

    /// Seconds spent hashing or verifying passwords so far (`GET /metrics`), if exposed.
    pub async fn password_hash_totals(&self) -> Option<Totals> {
        let response = self.client.get(self.url(METRICS)).send().await.ok()?;
        let text = response.error_for_status().ok()?.text().await.ok()?;
        histogram_totals(&text, "auth_password_hash_duration_seconds")
    }

    /// `GET /api/auth/config`: the public auth settings as JSON.
    pub async fn auth_config(&self) -> anyhow::Result<Value> {
        let response = self.client.get(self.url(CONFIG)).send().await?;
        let response = expect_status(response, StatusCode::OK, CONFIG).await?;
        Ok(response.json().await?)
    }

    pub async fn signup(&self, user: &User) -> anyhow::Result<()> {
        let body =
            json!({ "email": user.email(), "username": user.username, "password": PASSWORD });
        let response = self
            .client
            .post(self.url(SIGNUP))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("signup of {}", user.username))?;
        expect_status(response, StatusCode::CREATED, SIGNUP).await?;
        Ok(())
    }

    /// Logs `user` in and returns the access token.
    pub async fn login(&self, user: &User) -> anyhow::Result<String> {
        let response = self
            .client
            .post(self.url(LOGIN))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(user.login_body())
            .send()
            .await
            .with_context(|| format!("login of {}", user.username))?;
        let body: Value = expect_status(response, StatusCode::OK, LOGIN)
            .await?
            .json()
            .await?;
        match body.get("access_token").and_then(Value::as_str) {
            Some(token) => Ok(token.to_owned()),
            None => bail!("{LOGIN} answered 200 without an access_token"),
        }
    }
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

/// The response if it has status `wanted`, else an error quoting the start of its body.
async fn expect_status(
    response: reqwest::Response,
    wanted: StatusCode,
    what: &str,
) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status == wanted {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    bail!(
        "{what} answered {status} (expected {wanted}): {}",
        body.chars().take(300).collect::<String>()
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
