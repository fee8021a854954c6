//! Administration (SPEC §2): the bootstrap admin, `users create-admin`, the role guard and the
//! first `/api/users` routes.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use sqlx::Connection;

use crate::backend_tests;
use crate::support::backend::TestDatabase;
use crate::support::{code_of, test_config, with_admin, Backend, TestApp, ADMIN, PASSWORD};

async fn the_bootstrap_admin_exists_once_and_holds_the_admin_role(backend: Backend) {
    let app = backend.app_with(with_admin).await;

    let admin = app.admin().await;
    let me: Value = app
        .get_as("/api/auth/me", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(me["roles"], json!(["admin", "user"]));
    assert_eq!(me["is_verified"], true);
    // A second start on the same database finds the admin and changes nothing.
    let again = auth_service::App::build(app.config.clone()).await.unwrap();
    again.state().store.close().await;
    assert_eq!(app.admin().await.user_id, admin.user_id);
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&app.db.url).await.unwrap();
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

async fn admin_routes_need_a_token_and_the_admin_role(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let alice = app.signed_up("alice").await;
    let body = json!({ "email": "bob@example.com", "username": "bob", "password": PASSWORD });

    let anonymous = app.post_json("/api/users", &body).await;
    let user = app.post_as("/api/users", &alice.access_token, &body).await;
    let lookup = app
        .get_as(
            &format!("/api/users/id/{}", alice.user_id),
            &alice.access_token,
        )
        .await;

    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_eq!(user.status(), 403);
    assert_eq!(code_of(user).await, "forbidden");
    assert_eq!(lookup.status(), 403);
}

async fn an_admin_creates_users_without_any_hash_in_the_answer(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;

    let created = app
        .post_as(
            "/api/users",
            &admin.access_token,
            &json!({ "email": "Bob@Example.com", "username": "bob", "password": PASSWORD,
                     "display_name": "Bob", "roles": ["moderator"], "is_verified": true }),
        )
        .await;

    assert_eq!(created.status(), 201);
    let text = created.text().await.unwrap();
    assert!(
        !text.contains("argon2") && !text.contains("password"),
        "{text}"
    );
    let user: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(user["email"], "bob@example.com");
    assert_eq!(user["roles"], json!(["moderator"]));
    assert_eq!(user["is_verified"], true);
    let login = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": "bob", "password": PASSWORD }),
        )
        .await;
    assert_eq!(login.status(), 200);
}

async fn creating_users_refuses_duplicates_unknown_roles_and_weak_passwords(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let create = async |body: Value| app.post_as("/api/users", &admin.access_token, &body).await;

    let taken_email =
        create(json!({ "email": ADMIN.0, "username": "other", "password": PASSWORD })).await;
    let taken_name =
        create(json!({ "email": "x@example.com", "username": "ROOT", "password": PASSWORD })).await;
    let unknown_role = create(json!({ "email": "y@example.com", "username": "yves", "password": PASSWORD, "roles": ["wizard"] })).await;
    let weak =
        create(json!({ "email": "z@example.com", "username": "zoe", "password": "zoe12345" }))
            .await;

    assert_eq!(taken_email.status(), 409);
    assert_eq!(code_of(taken_email).await, "email_taken");
    assert_eq!(taken_name.status(), 409);
    assert_eq!(code_of(taken_name).await, "username_taken");
    assert_eq!(unknown_role.status(), 400);
    let body: Value = unknown_role.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "unknown_role");
    assert_eq!(weak.status(), 400);
    // Nothing was half-written: the unknown role left no user behind.
    let missing = app.get_as("/api/users/yves", &admin.access_token).await;
    assert_eq!(missing.status(), 404);
}

async fn concurrent_creates_of_one_username_make_exactly_one_user(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;

    let bodies: Vec<Value> = (0..10)
        .map(|n| json!({ "email": format!("twin{n}@example.com"), "username": "twin", "password": PASSWORD }))
        .collect();
    let attempts = bodies
        .iter()
        .map(|body| app.post_as("/api/users", &admin.access_token, body));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|response| response.status().as_u16())
        .collect();

    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        9,
        "{statuses:?}"
    );
}

async fn users_are_found_by_id_username_and_email(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    let token = &admin.access_token;

    let by_id = app
        .get_as(&format!("/api/users/id/{}", alice.user_id), token)
        .await;
    let by_name = app.get_as("/api/users/ALICE", token).await;
    let by_email = app
        .get_as("/api/users/email/Alice@Example.com", token)
        .await;
    let unknown = app
        .get_as("/api/users/id/00000000-0000-7000-8000-000000000000", token)
        .await;
    let not_uuid = app.get_as("/api/users/id/nope", token).await;
    let no_name = app.get_as("/api/users/nobody", token).await;

    for response in [by_id, by_name, by_email] {
        assert_eq!(response.status(), 200);
        let user: Value = response.json().await.unwrap();
        assert_eq!(user["id"], alice.user_id.as_str());
    }
    assert_eq!(unknown.status(), 404);
    assert_eq!(code_of(unknown).await, "user_not_found");
    assert_eq!(not_uuid.status(), 400);
    assert_eq!(no_name.status(), 404);
}

async fn the_cli_creates_an_admin_with_the_password_from_stdin(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let run = |username: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_auth-service"))
            .args([
                "users",
                "create-admin",
                "--email",
                "cli@example.com",
                "--username",
                username,
            ])
            .env("APP__DATABASE__URL", &db.url)
            .env("APP__PASSWORD__ARGON2_MEMORY_KIB", "64")
            .env("APP__PASSWORD__ARGON2_ITERATIONS", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{PASSWORD}").unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    };

    let created = run("cliadmin");
    let again = run("cliadmin");

    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("created admin cliadmin"));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    let config = test_config(&db.url);
    let app = TestApp::start(db, config).await;
    let login = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": "cliadmin", "password": PASSWORD }),
        )
        .await;
    assert_eq!(login.status(), 200);
    let body: Value = login.json().await.unwrap();
    assert_eq!(body["user"]["roles"], json!(["admin", "user"]));
}

backend_tests!(
    the_bootstrap_admin_exists_once_and_holds_the_admin_role,
    admin_routes_need_a_token_and_the_admin_role,
    an_admin_creates_users_without_any_hash_in_the_answer,
    creating_users_refuses_duplicates_unknown_roles_and_weak_passwords,
    concurrent_creates_of_one_username_make_exactly_one_user,
    users_are_found_by_id_username_and_email,
    the_cli_creates_an_admin_with_the_password_from_stdin,
);
