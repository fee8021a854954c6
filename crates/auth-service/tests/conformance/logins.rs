//! Logins and refresh under attack (issue 14): one normalisation for matching and lockout,
//! the lockout per account, bounded hash costs, failed logins that take the same time, and
//! refresh retries inside the grace window.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};

use crate::backend_tests;
use crate::support::app::key_env;
use crate::support::backend::TestDatabase;
use crate::support::{code_of, with_admin, Backend, TestApp, PASSWORD};

async fn login(app: &TestApp, field: &str, name: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/api/auth/login",
        &json!({ field: name, "password": password }),
    )
    .await
}

/// A 429's status, content type, code, body (without its request id) and `Retry-After` range.
async fn refusal(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "Retry-After {wait}");
    let mut body: Value = response.json().await.unwrap();
    body.as_object_mut().unwrap().remove("request_id");
    (status, content_type, body)
}

async fn lookalike_letters_neither_log_in_nor_dodge_a_lockout(backend: Backend) {
    let app = backend.app().await;
    app.signed_up("iris").await;
    app.signed_up("kate").await;
    for _ in 0..5 {
        let failed = login(&app, "username", "iris", "not the password at all").await;
        assert_eq!(failed.status(), 401);
    }

    // U+0130 (capital I with dot above) and U+212A (Kelvin sign): PostgreSQL's lower() folds
    // them to `i` and `k`, Rust's lowercase does not agree; usernames are ASCII.
    let dotted = login(&app, "username", "\u{130}ris", PASSWORD).await;
    let kelvin = login(&app, "username", "\u{212A}ate", PASSWORD).await;
    let upper = login(&app, "username", "IRIS", PASSWORD).await;
    let kate = login(&app, "username", "KATE", PASSWORD).await;

    assert_eq!(dotted.status(), 401, "İris is no account, and not iris");
    assert_eq!(code_of(dotted).await, "invalid_credentials");
    assert_eq!(
        kelvin.status(),
        401,
        "\u{212A}ate is no account, and not kate"
    );
    assert_eq!(upper.status(), 429, "IRIS is iris, which is locked");
    assert_eq!(kate.status(), 200, "ASCII case still folds");
}

async fn email_and_username_failures_count_towards_one_account_lockout(backend: Backend) {
    let app = backend.app().await;
    app.signed_up("alice").await;
    for (field, name) in [("email", "ghost@example.com"), ("username", "ghost")] {
        for _ in 0..4 {
            assert_eq!(login(&app, field, name, "wrong guess").await.status(), 401);
        }
    }
    for field in ["email", "email", "email", "username", "username"] {
        let name = if field == "email" {
            "Alice@Example.com"
        } else {
            "ALICE"
        };
        assert_eq!(login(&app, field, name, "wrong guess").await.status(), 401);
    }

    let by_username = login(&app, "username", "alice", PASSWORD).await;
    let by_email = login(&app, "email", "alice@example.com", PASSWORD).await;
    let unknown_not_yet = login(&app, "username", "ghost", "wrong guess").await;
    let unknown_locked = login(&app, "username", "ghost", "wrong guess").await;

    assert_eq!(by_username.status(), 429, "3 + 2 failures lock alice");
    let known = refusal(by_username).await;
    assert_eq!(by_email.status(), 429);
    assert_eq!(
        unknown_not_yet.status(),
        401,
        "an unknown identifier counts on its own: 4 failures, then the 5th"
    );
    assert_eq!(refusal(unknown_locked).await, known, "the same answer");
    app.clock.advance(Duration::from_secs(15 * 60 + 1));
    assert_eq!(
        login(&app, "email", "alice@example.com", PASSWORD)
            .await
            .status(),
        200
    );
}

async fn raw(app: &TestApp) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&app.db.url).await.unwrap()
}

const BCRYPT_BODY: &str = "abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";

fn argon2(m: u64, t: u64, p: u64) -> String {
    format!("$argon2id$v=19$m={m},t={t},p={p}$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG")
}

async fn patch_hash(app: &TestApp, token: &str, id: &str, hash: &str) -> reqwest::Response {
    app.http
        .patch(app.url(&format!("/api/users/{id}")))
        .bearer_auth(token)
        .json(&json!({ "password_hash": hash }))
        .send()
        .await
        .unwrap()
}

/// Runs `auth-service users import FILE` against `db`.
fn import(db: &TestDatabase, file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auth-service"))
        .args(["users", "import"])
        .arg(file)
        .env("APP__DATABASE__URL", &db.url)
        .env("APP__PASSWORD__ARGON2_MEMORY_KIB", "64")
        .env("APP__PASSWORD__ARGON2_ITERATIONS", "1")
        .envs(key_env(&db.url))
        .output()
        .unwrap()
}

async fn hashes_above_the_cost_bounds_are_refused_from_admins_and_imports(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    let costly = [
        format!("$2b$31${BCRYPT_BODY}"),
        format!("$2y$15${BCRYPT_BODY}"),
        argon2(4 * 1024 * 1024, 2, 1),
        argon2(19456, 4_294_967_295, 1),
        argon2(19456, 11, 1),
        argon2(19456, 2, 9),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.jsonl");
    let rows = [
        json!({ "email": "bob@example.com", "username": "bob", "password_hash": argon2(262_144, 10, 8) }),
        json!({ "email": "eve@example.com", "username": "eve", "password_hash": costly[0] }),
    ];
    let text: Vec<String> = rows.iter().map(Value::to_string).collect();
    std::fs::write(&file, text.join("\n")).unwrap();

    let mut answers = Vec::new();
    for hash in &costly {
        answers.push(patch_hash(&app, &admin.access_token, &alice.user_id, hash).await);
    }
    let at_the_bounds = [format!("$2b$14${BCRYPT_BODY}"), argon2(262_144, 10, 8)];
    let output = import(&app.db, &file);

    for (hash, answer) in costly.iter().zip(answers) {
        assert_eq!(answer.status(), 400, "{hash}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["errors"][0]["field"], "password_hash", "{hash}");
        assert_eq!(body["errors"][0]["code"], "too_costly", "{hash}");
    }
    for hash in at_the_bounds {
        let answer = patch_hash(&app, &admin.access_token, &alice.user_id, &hash).await;
        assert_eq!(answer.status(), 200, "{hash}");
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("line 2: password_hash"), "{stderr}");
    assert!(!stderr.contains("line 1"), "{stderr}");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut raw(&app).await)
        .await
        .unwrap();
    assert_eq!(users, 2, "the admin and alice; nothing imported");
}

async fn a_stored_hash_above_the_bounds_is_refused_before_any_hashing(backend: Backend) {
    let app = backend
        .app_with(|config| config.password.hash_workers = 1)
        .await;
    app.signed_up("alice").await;
    app.signed_up("bob").await;
    // A row written before the bounds existed: bcrypt cost 31 would hash for days.
    sqlx::query("UPDATE users SET password_hash = $1 WHERE username = 'alice'")
        .bind(format!("$2b$31${BCRYPT_BODY}"))
        .execute(&mut raw(&app).await)
        .await
        .unwrap();

    let alice =
        futures::future::join_all((0..3).map(|_| login(&app, "username", "alice", PASSWORD))).await;
    let bob = login(&app, "username", "bob", PASSWORD).await;

    for answer in alice {
        assert_eq!(answer.status(), 401);
        assert_eq!(code_of(answer).await, "invalid_credentials");
    }
    assert_eq!(bob.status(), 200, "the one hashing thread is free");
}

async fn failed_login_time(app: &TestApp, name: &str) -> Duration {
    let started = Instant::now();
    let answer = login(app, "username", name, "not the password at all").await;
    assert_eq!(answer.status(), 401, "{name}");
    started.elapsed()
}

async fn unknown_users_fail_no_faster_than_imported_bcrypt_accounts(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let carol = app.signed_up("carol").await;
    app.signed_up("dave").await;
    let legacy = bcrypt::hash("legacy password from before", 12).unwrap();
    let imported = patch_hash(&app, &admin.access_token, &carol.user_id, &legacy).await;
    assert_eq!(imported.status(), 200);

    let mut bcrypt_failure = Duration::MAX;
    for _ in 0..3 {
        bcrypt_failure = bcrypt_failure.min(failed_login_time(&app, "carol").await);
    }
    let unknown = failed_login_time(&app, "nobody-here").await;
    let argon2_wrong = failed_login_time(&app, "dave").await;

    // The server holds a failed login back to the slowest kind of hash it has verified.
    let floor = bcrypt_failure.mul_f64(0.8);
    assert!(
        unknown >= floor,
        "unknown user {unknown:?}, bcrypt account {bcrypt_failure:?}"
    );
    assert!(
        argon2_wrong >= floor,
        "argon2 account {argon2_wrong:?}, bcrypt account {bcrypt_failure:?}"
    );
}

async fn refresh(app: &TestApp, token: &str) -> (u16, Value) {
    let answer = app.refresh(token).await;
    (answer.status().as_u16(), answer.json().await.unwrap())
}

async fn a_grace_retry_gets_the_live_successor_or_nothing(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let (_, first) = refresh(&app, &alice.refresh_token).await;
    let first_token = first["refresh_token"].as_str().unwrap().to_owned();
    let (_, second) = refresh(&app, &first_token).await;
    let live = second["refresh_token"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::from_secs(2));

    // The first token's successor has been spent in turn: the family has moved on.
    let (stale_status, stale) = refresh(&app, &alice.refresh_token).await;
    let (retry_status, retry) = refresh(&app, &first_token).await;
    let me = app
        .get_as("/api/auth/me", retry["access_token"].as_str().unwrap())
        .await;

    assert_eq!(stale_status, 401, "never the spent {first_token}: {stale}");
    assert_eq!(stale["code"], "invalid_refresh_token");
    assert_eq!(retry_status, 200, "the token just rotated is retried");
    assert_eq!(retry["refresh_token"], live.as_str(), "the live successor");
    assert_eq!(me.status(), 200, "the session goes on");
    assert_eq!(refresh(&app, &live).await.0, 200);
}

backend_tests!(
    lookalike_letters_neither_log_in_nor_dodge_a_lockout,
    email_and_username_failures_count_towards_one_account_lockout,
    hashes_above_the_cost_bounds_are_refused_from_admins_and_imports,
    a_stored_hash_above_the_bounds_is_refused_before_any_hashing,
    unknown_users_fail_no_faster_than_imported_bcrypt_accounts,
    a_grace_retry_gets_the_live_successor_or_nothing,
);
