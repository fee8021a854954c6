//! Issue 17, done-when: a login with a second factor costs one argon2 verification, not two.
//! Counted in a spawned binary (its metrics are its own): every argon2 hash or verify records
//! one `auth_password_hash_duration_seconds` sample, and the second step records none.

use serde_json::{json, Value};
use totp_rs::{Algorithm, Builder, Secret};

use crate::backend_tests;
use crate::observability::{base_env, scrape, total};
use crate::support::backend::TestDatabase;
use crate::support::process::Spawned;
use crate::support::{Backend, PASSWORD};

const ARGON2: &str = "auth_password_hash_duration_seconds_count";

async fn argon2_runs(service: &Spawned) -> f64 {
    total(&scrape(service).await, ARGON2, &[])
}

async fn post(service: &Spawned, path: &str, token: Option<&str>, body: Value) -> Value {
    let mut request = reqwest::Client::new().post(service.url(path)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

async fn the_second_step_of_a_login_verifies_no_password_hash(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let service = Spawned::start(dir.path(), &base_env(&db, &dir.path().join("mail"))).await;
    let signup = json!({ "email": "cost@example.com", "username": "cost", "password": PASSWORD });
    let tokens = post(&service, "/api/auth/signup", None, signup).await;
    let access = tokens["access_token"].as_str();
    let started = post(
        &service,
        "/api/auth/mfa/totp",
        access,
        json!({ "password": PASSWORD }),
    )
    .await;
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(Secret::try_from_base32(started["secret"].as_str().unwrap()).unwrap())
        .build()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let confirm = json!({ "code": totp.generate(now).to_string() });
    post(&service, "/api/auth/mfa/totp/confirm", access, confirm).await;

    let before_login = argon2_runs(&service).await;
    let login = json!({ "username": "cost", "password": PASSWORD });
    let challenge = post(&service, "/api/auth/login", None, login).await;
    let before_verify = argon2_runs(&service).await;
    // The next step's code: one step of skew is accepted, and the confirming step is spent.
    let code = totp.generate(now + 30).to_string();
    let verify = json!({ "mfa_token": challenge["mfa_token"], "method": "totp", "code": code });
    let signed_in = post(&service, "/api/auth/mfa/verify", None, verify).await;
    let after_verify = argon2_runs(&service).await;

    assert_eq!(challenge["mfa_required"], true);
    assert!(signed_in["access_token"].is_string());
    assert_eq!(
        before_verify - before_login,
        1.0,
        "the password step: one argon2"
    );
    assert_eq!(after_verify, before_verify, "the second step: no argon2");
}

backend_tests! {
    the_second_step_of_a_login_verifies_no_password_hash,
}
