//! Administration (SPEC §2): the bootstrap admin, `users create-admin`, the role guard and the
//! first `/api/users` routes.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use sqlx::Connection;

use crate::backend_tests;
use crate::support::backend::TestDatabase;
use crate::support::{
    code_of, test_config, with_admin, Account, Backend, TestApp, ADMIN, PASSWORD,
};

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
    again.store().close().await;
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
            .envs(crate::support::app::key_env(&db.url))
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

async fn create(app: &TestApp, admin: &Account, name: &str, roles: Value) -> Value {
    let response = app
        .post_as(
            "/api/users",
            &admin.access_token,
            &json!({ "email": format!("{name}@example.com"), "username": name,
                     "password": PASSWORD, "roles": roles }),
        )
        .await;
    assert_eq!(response.status(), 201, "create {name}");
    response.json().await.unwrap()
}

async fn patch(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    app.http
        .patch(app.url(&format!("/api/users/{id}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn login_status(app: &TestApp, username: &str, password: &str) -> u16 {
    app.post_json(
        "/api/auth/login",
        &json!({ "username": username, "password": password }),
    )
    .await
    .status()
    .as_u16()
}

async fn users_are_listed_in_pages_without_duplicates_or_gaps(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    for n in 0..24 {
        create(&app, &admin, &format!("member{n:02}"), json!(["user"])).await;
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = cursor
            .as_ref()
            .map_or(String::new(), |c| format!("&cursor={c}"));
        let page: Value = app
            .get_as(&format!("/api/users?limit=10{query}"), &admin.access_token)
            .await
            .json()
            .await
            .unwrap();
        pages += 1;
        for user in page["users"].as_array().unwrap() {
            seen.push(user["username"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let searched: Value = app
        .get_as("/api/users?q=MEMBER1", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    let bad_limit = app
        .get_as("/api/users?limit=101", &admin.access_token)
        .await;
    let bad_cursor = app
        .get_as("/api/users?cursor=nonsense", &admin.access_token)
        .await;

    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 25, "no duplicates");
    assert_eq!(searched["users"].as_array().unwrap().len(), 10);
    assert_eq!(bad_limit.status(), 400);
    assert_eq!(bad_cursor.status(), 400);
    let body: Value = bad_cursor.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "invalid_cursor");
}

async fn patching_a_user_changes_fields_and_ends_sessions_when_it_must(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    app.signed_up("bob").await;
    let token = &admin.access_token;

    let renamed = patch(
        &app,
        token,
        &alice.user_id,
        json!({ "display_name": "Alice A.", "is_verified": true }),
    )
    .await;
    let taken = patch(
        &app,
        token,
        &alice.user_id,
        json!({ "email": "BOB@example.com" }),
    )
    .await;
    let bad = patch(
        &app,
        token,
        &alice.user_id,
        json!({ "email": "nope", "password_hash": "plain", "shoe_size": 9 }),
    )
    .await;
    let unknown = patch(
        &app,
        token,
        "00000000-0000-7000-8000-000000000000",
        json!({ "bio": "x" }),
    )
    .await;
    let not_uuid = patch(&app, token, "nope", json!({ "bio": "x" })).await;

    assert_eq!(renamed.status(), 200);
    let user: Value = renamed.json().await.unwrap();
    assert_eq!(user["display_name"], "Alice A.");
    assert_eq!(user["is_verified"], true);
    assert_eq!(
        app.get_as("/api/auth/me", &alice.access_token)
            .await
            .status(),
        200
    );
    assert_eq!(taken.status(), 409);
    assert_eq!(code_of(taken).await, "email_taken");
    assert_eq!(bad.status(), 400);
    assert_eq!(unknown.status(), 404);
    assert_eq!(code_of(unknown).await, "user_not_found");
    assert_eq!(not_uuid.status(), 400);

    let deactivated = patch(&app, token, &alice.user_id, json!({ "is_active": false })).await;
    assert_eq!(deactivated.status(), 200);
    assert_eq!(
        app.get_as("/api/auth/me", &alice.access_token)
            .await
            .status(),
        401
    );
    assert_eq!(login_status(&app, "alice", PASSWORD).await, 403);

    let reactivated = patch(
        &app,
        token,
        &alice.user_id,
        json!({ "is_active": true, "password": "violet otter juggles lanterns" }),
    )
    .await;
    assert_eq!(reactivated.status(), 200);
    assert_eq!(login_status(&app, "alice", PASSWORD).await, 401);
    assert_eq!(
        login_status(&app, "alice", "violet otter juggles lanterns").await,
        200
    );
}

async fn an_imported_bcrypt_hash_logs_in_and_is_rehashed(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    let legacy = bcrypt::hash("legacy password from before", 4).unwrap();

    let imported = patch(
        &app,
        &admin.access_token,
        &alice.user_id,
        json!({ "password_hash": legacy }),
    )
    .await;

    assert_eq!(imported.status(), 200);
    assert_eq!(
        login_status(&app, "alice", "legacy password from before").await,
        200
    );
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&app.db.url).await.unwrap();
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'alice'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
}

async fn deleting_a_user_frees_the_email_and_username(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    let path = format!("/api/users/{}", alice.user_id);

    let deleted = app.delete_as(&path, &admin.access_token).await;
    let again = app.delete_as(&path, &admin.access_token).await;

    assert_eq!(deleted.status(), 204);
    assert_eq!(again.status(), 404);
    assert_eq!(
        app.get_as("/api/auth/me", &alice.access_token)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get_as(
            &format!("/api/users/id/{}", alice.user_id),
            &admin.access_token
        )
        .await
        .status(),
        404
    );
    assert_eq!(login_status(&app, "alice", PASSWORD).await, 401);
    let reused = app
        .post_json(
            "/api/auth/signup",
            &json!({ "email": "alice@example.com", "username": "alice", "password": PASSWORD }),
        )
        .await;
    assert_eq!(reused.status(), 201);
}

async fn the_last_active_admin_cannot_be_removed(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let token = &admin.access_token;
    let me = &admin.user_id;

    let deactivate = patch(&app, token, me, json!({ "is_active": false })).await;
    let demote = patch(&app, token, me, json!({ "roles": ["user"] })).await;
    let delete = app.delete_as(&format!("/api/users/{me}"), token).await;

    for response in [deactivate, demote, delete] {
        assert_eq!(response.status(), 409);
        assert_eq!(code_of(response).await, "last_admin");
    }
    let second = create(&app, &admin, "deputy", json!(["admin", "user"])).await;
    let demoted = patch(&app, token, me, json!({ "roles": ["user"] })).await;
    assert_eq!(demoted.status(), 200);
    let deputy = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": "deputy", "password": PASSWORD }),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let last = patch(
        &app,
        deputy["access_token"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
        json!({ "is_active": false }),
    )
    .await;
    assert_eq!(last.status(), 409);
}

async fn a_role_taken_away_stops_working_at_once(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let deputy = create(&app, &admin, "deputy", json!(["admin", "user"])).await;
    let login: Value = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": "deputy", "password": PASSWORD }),
        )
        .await
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    assert_eq!(app.get_as("/api/users", token).await.status(), 200);

    let demoted = patch(
        &app,
        &admin.access_token,
        deputy["id"].as_str().unwrap(),
        json!({ "roles": ["user"] }),
    )
    .await;
    assert_eq!(demoted.status(), 200);

    // The same, unexpired token still lists `admin`; the stored roles decide.
    let refused = app.get_as("/api/users", token).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(code_of(refused).await, "forbidden");
    let me: Value = app
        .get_as("/api/auth/me", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"], json!(["user"]));
}

backend_tests!(
    the_bootstrap_admin_exists_once_and_holds_the_admin_role,
    a_role_taken_away_stops_working_at_once,
    admin_routes_need_a_token_and_the_admin_role,
    an_admin_creates_users_without_any_hash_in_the_answer,
    creating_users_refuses_duplicates_unknown_roles_and_weak_passwords,
    concurrent_creates_of_one_username_make_exactly_one_user,
    users_are_found_by_id_username_and_email,
    the_cli_creates_an_admin_with_the_password_from_stdin,
    users_are_listed_in_pages_without_duplicates_or_gaps,
    patching_a_user_changes_fields_and_ends_sessions_when_it_must,
    an_imported_bcrypt_hash_logs_in_and_is_rehashed,
    deleting_a_user_frees_the_email_and_username,
    the_last_active_admin_cannot_be_removed,
);
