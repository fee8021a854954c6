//! Logins and refresh under attack (issue 14): one normalisation for matching and lockout,
//! the lockout per account, bounded hash costs, failed logins that take the same time, and
//! refresh retries inside the grace window.

use std::time::Duration;

use serde_json::{json, Value};

use crate::backend_tests;
use crate::support::{code_of, Backend, TestApp, PASSWORD};

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

backend_tests!(
    lookalike_letters_neither_log_in_nor_dodge_a_lockout,
    email_and_username_failures_count_towards_one_account_lockout,
);
