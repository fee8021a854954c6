//! Talking to the API the way a client does: sign up, log in, call with a bearer token.

use serde_json::{json, Value};

use super::TestApp;

/// A signed-up user and the token response that signup answered.
#[derive(Debug, Clone)]
pub struct Account {
    pub username: String,
    pub email: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
    pub session_id: String,
    pub user_id: String,
}

impl Account {
    fn from_tokens(username: &str, email: &str, password: &str, body: &Value) -> Self {
        Self {
            username: username.to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
            access_token: body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            refresh_token: body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
            session_id: body["session_id"].as_str().expect("session_id").to_owned(),
            user_id: body["user"]["id"].as_str().expect("user.id").to_owned(),
        }
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_as(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn delete_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// Signs up `name` (email `name@example.com`, password [`PASSWORD`]) and returns the account.
    pub async fn signed_up(&self, name: &str) -> Account {
        let email = format!("{name}@example.com");
        let response = self
            .post_json(
                "/api/auth/signup",
                &json!({ "email": email, "username": name, "password": PASSWORD }),
            )
            .await;
        assert_eq!(response.status(), 201, "signup of {name} failed");
        let body: Value = response.json().await.expect("token response");
        Account::from_tokens(name, &email, PASSWORD, &body)
    }

    /// Logs `account` in again: a new session.
    pub async fn logged_in(&self, account: &Account) -> Account {
        let response = self
            .post_json(
                "/api/auth/login",
                &json!({ "username": account.username, "password": account.password }),
            )
            .await;
        assert_eq!(
            response.status(),
            200,
            "login of {} failed",
            account.username
        );
        let body: Value = response.json().await.expect("token response");
        Account::from_tokens(&account.username, &account.email, &account.password, &body)
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post_json(
            "/api/auth/refresh",
            &json!({ "refresh_token": refresh_token }),
        )
        .await
    }
}

/// The problem code of a response body.
pub async fn code_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("problem body");
    body["code"].as_str().unwrap_or_default().to_owned()
}

impl TestApp {
    /// The messages mailed to `to` so far (file transport), oldest first, with
    /// quoted-printable soft line breaks undone.
    pub fn mails_to(&self, to: &str) -> Vec<String> {
        let dir = self.config.mail.file_dir.as_ref().expect("a mail dir");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("mail dir readable")
            .map(|entry| entry.expect("dir entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .map(|path| {
                let modified = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .expect("mtime");
                (modified, path)
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| {
                std::fs::read_to_string(path)
                    .expect("mail readable")
                    .replace("=\r\n", "")
                    .replace("=\n", "")
                    .replace("=3D", "=")
            })
            .filter(|mail| {
                mail.lines()
                    .any(|line| line.starts_with("To:") && line.contains(to))
            })
            .collect()
    }

    /// Waits until `count` messages to `to` have arrived (sending happens after the answer).
    pub async fn wait_mails(&self, to: &str, count: usize) -> Vec<String> {
        for _ in 0..500 {
            let mails = self.mails_to(to);
            if mails.len() >= count {
                return mails;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("{count} mail(s) to {to} did not arrive");
    }
}

/// The token of the first `{path}?token=…` link in a message.
pub fn link_token(mail: &str, path: &str) -> String {
    let marker = format!("{path}?token=");
    let start = mail.find(&marker).expect("the mail has the link") + marker.len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The token of the first `{path}?token=…` link among `mails` (one of several a user received).
pub fn token_among(mails: &[String], path: &str) -> String {
    let marker = format!("{path}?token=");
    let mail = mails
        .iter()
        .find(|mail| mail.contains(&marker))
        .expect("a mail has the link");
    link_token(mail, path)
}

/// The bootstrap administrator of [`with_admin`].
pub const ADMIN: (&str, &str, &str) = ("root@example.com", "root", "admin passphrase for tests");

/// Configures the bootstrap administrator [`ADMIN`].
pub fn with_admin(config: &mut auth_service::Config) {
    use auth_service::config::Secret;
    config.bootstrap.admin_email = Some(ADMIN.0.to_owned());
    config.bootstrap.admin_username = Some(ADMIN.1.to_owned());
    config.bootstrap.admin_password = Some(Secret(secrecy::SecretString::from(ADMIN.2.to_owned())));
}

impl TestApp {
    /// Logs in as the bootstrap administrator (the app must be started [`with_admin`]).
    pub async fn admin(&self) -> Account {
        let response = self
            .post_json(
                "/api/auth/login",
                &json!({ "username": ADMIN.1, "password": ADMIN.2 }),
            )
            .await;
        assert_eq!(response.status(), 200, "the bootstrap admin logs in");
        let body: Value = response.json().await.expect("token response");
        Account::from_tokens(ADMIN.1, ADMIN.0, ADMIN.2, &body)
    }
}
