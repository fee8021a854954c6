//! Hostile input: NUL bytes, trailing garbage after a JSON body, made-up HTTP methods.

use auth_service::grpc::pb;
use serde_json::{json, Value};
use tonic::Code;

use crate::backend_tests;
use crate::support::grpc::{assert_failed, login_request, signup_request};
use crate::support::{code_of, with_admin, Backend, TestApp};

/// POSTs `body` exactly as given (not re-encoded) as JSON.
async fn post_raw(app: &TestApp, path: &str, body: &'static str) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn problem(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["code"].as_str().unwrap_or_default().to_owned(),
        body,
    )
}

async fn a_nul_byte_in_a_path_query_or_json_string_is_validation_failed(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;

    let lookup = app.get_as("/api/users/ab%00cd", &admin.access_token).await;
    let by_email = app
        .get_as("/api/users/email/a%00b@example.com", &admin.access_token)
        .await;
    let search = app
        .get_as("/api/users?q=ab%00cd", &admin.access_token)
        .await;
    let login = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": "ali\u{0}ce", "password": "whatever it is" }),
        )
        .await;
    let login_by_email = app
        .post_json(
            "/api/auth/login",
            &json!({ "email": "alice\u{0}@example.com", "password": "whatever it is" }),
        )
        .await;
    let signup = app
        .post_json(
            "/api/auth/signup",
            &json!({ "email": "bob@example.com", "username": "b\u{0}b",
                     "password": "correct horse battery staple" }),
        )
        .await;
    let profile = app
        .http
        .patch(app.url("/api/auth/me"))
        .bearer_auth(&alice.access_token)
        .json(&json!({ "display_name": "Al\u{0}ice" }))
        .send()
        .await
        .unwrap();
    let forgot = app
        .post_json(
            "/api/auth/password/forgot",
            &json!({ "email": "a\u{0}@b.co" }),
        )
        .await;

    for (what, response) in [
        ("GET /api/users/ab%00cd", lookup),
        ("GET /api/users/email/…%00…", by_email),
        ("GET /api/users?q=ab%00cd", search),
        ("login by username", login),
        ("login by email", login_by_email),
        ("signup", signup),
        ("PATCH /api/auth/me", profile),
        ("forgot password", forgot),
    ] {
        let (status, code, body) = problem(response).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "validation_failed"),
            "{what}: {body}"
        );
    }
    let profile = app.get_as("/api/auth/me", &alice.access_token).await;
    assert_eq!(
        profile.json::<Value>().await.unwrap()["display_name"],
        Value::Null
    );
}

async fn a_nul_byte_in_a_grpc_string_field_is_invalid_argument(backend: Backend) {
    let app = backend.app().await;
    let mut grpc = app.grpc().await;
    let mut signup = signup_request("carol");
    signup.display_name = Some("Car\0ol".to_owned());

    let login = grpc.login(login_request("car\0ol", "whatever it is")).await;
    let signed_up = grpc.sign_up(signup).await;
    let forgot = grpc
        .forgot_password(pb::ForgotPasswordRequest {
            email: "carol\0@example.com".to_owned(),
        })
        .await;
    let validate = grpc
        .validate_token(pb::ValidateTokenRequest {
            token: "a\0b".to_owned(),
        })
        .await;

    assert_failed(login, Code::InvalidArgument, "validation_failed");
    assert_failed(signed_up, Code::InvalidArgument, "validation_failed");
    assert_failed(forgot, Code::InvalidArgument, "validation_failed");
    assert_failed(validate, Code::InvalidArgument, "validation_failed");
}

async fn trailing_garbage_after_a_json_body_is_malformed_body(backend: Backend) {
    let app = backend.app().await;

    let forgot = post_raw(
        &app,
        "/api/auth/password/forgot",
        r#"{"email":"a@b.co"} xx"#,
    )
    .await;
    let login = post_raw(
        &app,
        "/api/auth/login",
        r#"{"username":"nobody","password":"whatever it is"} {}"#,
    )
    .await;
    let trailing_space = post_raw(
        &app,
        "/api/auth/password/forgot",
        "{\"email\":\"a@b.co\"}\n ",
    )
    .await;

    let (status, code, body) = problem(forgot).await;
    assert_eq!((status, code.as_str()), (400, "malformed_body"), "{body}");
    let (status, code, body) = problem(login).await;
    assert_eq!((status, code.as_str()), (400, "malformed_body"), "{body}");
    assert_eq!(
        trailing_space.status(),
        202,
        "whitespace after the document is fine"
    );
}

async fn a_body_that_is_not_a_json_object_is_validation_failed(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let send = |body: &'static str| {
        app.http
            .patch(app.url("/api/auth/me"))
            .bearer_auth(&alice.access_token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    app.http
        .patch(app.url("/api/auth/me"))
        .bearer_auth(&alice.access_token)
        .json(&json!({ "display_name": "Alice", "bio": "hello" }))
        .send()
        .await
        .unwrap();

    // serde's derived structs read an array as the fields in order: `[null, null]` would
    // clear the profile. Every other shape but an object is refused too.
    for body in [
        "[null, null]",
        "[]",
        "[\"Bob\"]",
        "\"text\"",
        "5",
        "true",
        "null",
    ] {
        let (status, code, problem_body) = problem(send(body).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "validation_failed"),
            "{body}: {problem_body}"
        );
        assert_eq!(
            problem_body["errors"][0]["code"], "invalid_type",
            "{body}: {problem_body}"
        );
    }
    let login = post_raw(
        &app,
        "/api/auth/login",
        r#"["alice", null, "whatever it is"]"#,
    )
    .await;
    let (status, code, problem_body) = problem(login).await;
    assert_eq!(
        (status, code.as_str()),
        (400, "validation_failed"),
        "{problem_body}"
    );

    let me = app.get_as("/api/auth/me", &alice.access_token).await;
    let me: Value = me.json().await.unwrap();
    assert_eq!(
        (me["display_name"].as_str(), me["bio"].as_str()),
        (Some("Alice"), Some("hello"))
    );
}

async fn a_made_up_method_is_counted_as_other(backend: Backend) {
    let app = backend.app().await;
    let made_up = format!(
        "FOO{}",
        uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase()
    );
    let method = reqwest::Method::from_bytes(made_up.as_bytes()).unwrap();

    let answered = app
        .http
        .request(method, app.url("/health"))
        .send()
        .await
        .unwrap();
    let unknown_path = app.get(&format!("/nothing/{made_up}")).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();

    assert_eq!(answered.status(), 405);
    assert_eq!(code_of(unknown_path).await, "not_found");
    assert!(
        !metrics.contains(&made_up),
        "a series per made-up method or path:\n{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("auth_http_requests_total")
                && line.contains("method=\"other\"")),
        "{metrics}"
    );
}

backend_tests! {
    a_nul_byte_in_a_path_query_or_json_string_is_validation_failed,
    a_nul_byte_in_a_grpc_string_field_is_invalid_argument,
    trailing_garbage_after_a_json_body_is_malformed_body,
    a_body_that_is_not_a_json_object_is_validation_failed,
    a_made_up_method_is_counted_as_other,
}
