//! Logins and refresh under attack (issue 14): one normalisation for matching and lockout,
//! the lockout per account, bounded hash costs, failed logins that take the same time, and
//! refresh retries inside the grace window.

use serde_json::json;

use crate::backend_tests;
use crate::support::{code_of, Backend, TestApp, PASSWORD};

async fn login(app: &TestApp, field: &str, name: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/api/auth/login",
        &json!({ field: name, "password": password }),
    )
    .await
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

backend_tests!(
    lookalike_letters_neither_log_in_nor_dodge_a_lockout,
);
