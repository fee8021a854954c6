//! The audit log API (`GET /api/audit`) and `auth-service users import`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};

use crate::backend_tests;
use crate::support::backend::TestDatabase;
use crate::support::{code_of, test_config, with_admin, Backend, TestApp, PASSWORD};

/// Every page of `query` (which must end in `&` or `?`), following `next_cursor`.
async fn all_pages(app: &TestApp, token: &str, query: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/audit{query}cursor={cursor}"),
            None => format!("/api/audit{query}"),
        };
        let response = app.get_as(&path, token).await;
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        pages.push(body["entries"].as_array().unwrap().clone());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 50, "the pages do not end");
    }
}

fn ids(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|entry| entry["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn failed_login(app: &TestApp, username: &str) {
    let response = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": username, "password": "not the password" }),
        )
        .await;
    assert_eq!(response.status(), 401);
}

async fn the_audit_log_pages_newest_first_without_gaps_or_duplicates(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let mut signups = Vec::new();
    for n in 0..11 {
        signups.push(app.signed_up(&format!("user{n}")).await.user_id);
    }
    let token = &admin.access_token;

    let pages = all_pages(&app, token, "?action=signup&limit=5&").await;
    // Verification mails are audited after the answers, so entries may still arrive here;
    // they are newer and land before the cursor.
    let unfiltered = all_pages(&app, token, "?limit=4&").await;

    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [5, 5, 1]);
    let paged: Vec<Value> = pages.concat();
    let users: Vec<&str> = paged
        .iter()
        .map(|e| e["user_id"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = signups.iter().rev().map(String::as_str).collect();
    assert_eq!(users, newest_first);
    let all_ids = ids(&unfiltered.concat());
    let mut sorted = all_ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(sorted, all_ids, "newest first, each once");
    assert!(ids(&paged).iter().all(|id| all_ids.contains(id)));
    assert!(all_ids.len() >= 13, "{all_ids:?}");
    let entry = &paged[0];
    assert_eq!(entry["action"], "signup");
    assert_eq!(entry["target_type"], "user");
    assert!(entry["occurred_at"].is_string() && entry["details"].is_object());
}

async fn audit_filters_by_user_and_action_and_combine_them(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    app.signed_up("bob").await;
    failed_login(&app, "alice").await;
    failed_login(&app, "alice").await;
    failed_login(&app, "bob").await;
    let token = &admin.access_token;

    let of_alice = all_pages(&app, token, &format!("?user_id={}&limit=2&", alice.user_id)).await;
    let failures = all_pages(&app, token, "?action=login_failure&").await;
    let both = all_pages(
        &app,
        token,
        &format!("?action=login_failure&user_id={}&", alice.user_id),
    )
    .await;

    let of_alice: Vec<Value> = of_alice.concat();
    assert!(of_alice
        .iter()
        .all(|e| e["user_id"] == alice.user_id.as_str()));
    let actions: Vec<&str> = of_alice
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .filter(|action| *action != "email_verification_sent")
        .collect();
    assert_eq!(actions, ["login_failure", "login_failure", "signup"]);
    assert_eq!(failures.concat().len(), 3);
    let both = both.concat();
    assert_eq!(both.len(), 2);
    assert!(both.iter().all(|e| e["action"] == "login_failure"));
}

async fn the_audit_log_is_for_admins_and_refuses_bad_queries(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    let token = &admin.access_token;

    let anonymous = app.get("/api/audit").await;
    let user = app.get_as("/api/audit", &alice.access_token).await;
    let mut bad = Vec::new();
    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "cursor=nonsense",
        "user_id=nope",
    ] {
        let response = app.get_as(&format!("/api/audit?{query}"), token).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        bad.push((
            body["errors"][0]["field"].clone(),
            body["errors"][0]["code"].clone(),
        ));
    }

    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_eq!(user.status(), 403);
    assert_eq!(code_of(user).await, "forbidden");
    assert_eq!(bad[0].0, "limit");
    assert_eq!(bad[1].0, "limit");
    assert_eq!(bad[2].0, "limit");
    assert_eq!(bad[3], (json!("cursor"), json!("invalid_cursor")));
    assert_eq!(bad[4].0, "user_id");
    let fine = app.get_as("/api/audit?limit=100", token).await;
    assert_eq!(fine.status(), 200);
}

/// Runs `auth-service users import FILE` against `db`.
fn import(db: &TestDatabase, file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auth-service"))
        .arg("users")
        .arg("import")
        .arg(file)
        .env("APP__DATABASE__URL", &db.url)
        .envs(crate::support::app::key_env(&db.url))
        .env("APP__PASSWORD__ARGON2_MEMORY_KIB", "64")
        .env("APP__PASSWORD__ARGON2_ITERATIONS", "1")
        .output()
        .unwrap()
}

async fn user_count(url: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut db)
        .await
        .unwrap()
}

async fn stored_hash(url: &str, username: &str) -> String {
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT password_hash FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(&mut db)
        .await
        .unwrap()
}

async fn ten_thousand_csv_users_import_at_once_and_log_in_with_their_old_hashes(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.csv");
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let mut csv =
        String::from("email,username,password_hash,display_name,is_verified,created_at\n");
    for n in 0..10_000 {
        writeln!(
            csv,
            "User{n}@Example.com,user{n},{hash},\"User, \"\"{n}\"\"\",true,2020-01-02T03:04:05Z"
        )
        .unwrap();
    }
    std::fs::write(&file, csv).unwrap();

    let started = Instant::now();
    let output = import(&db, &file);
    eprintln!(
        "{backend:?}: importing 10 000 users took {:?}",
        started.elapsed()
    );

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("imported 10000 users"));
    assert_eq!(user_count(&db.url).await, 10_000);
    let mut config = test_config(&db.url);
    with_admin(&mut config);
    let app = TestApp::start(db, config).await;
    for username in ["user0", "user4321", "user9999"] {
        let login = app
            .post_json(
                "/api/auth/login",
                &json!({ "username": username, "password": PASSWORD }),
            )
            .await;
        assert_eq!(login.status(), 200, "{username}");
        let body: Value = login.json().await.unwrap();
        assert_eq!(body["user"]["roles"], json!(["user"]));
        assert_eq!(body["user"]["is_verified"], true);
        assert_eq!(body["user"]["email"], format!("{username}@example.com"));
        assert_eq!(
            body["user"]["display_name"],
            format!("User, \"{}\"", &username[4..])
        );
        assert_eq!(body["user"]["created_at"], "2020-01-02T03:04:05Z");
        let stored = stored_hash(&app.db.url, username).await;
        assert!(stored.starts_with("$argon2id$"), "{stored}");
    }
    assert!(stored_hash(&app.db.url, "user1").await.starts_with("$2b$"));
    let admin = app.admin().await;
    let audit: Value = app
        .get_as("/api/audit?action=users_imported", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["entries"][0]["details"]["count"], 10_000);
}

async fn an_import_with_bad_rows_names_their_lines_and_imports_nothing(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.jsonl");
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let row = |email: &str, username: &str| {
        json!({ "email": email, "username": username, "password_hash": hash }).to_string()
    };
    let lines = [
        row("ann@example.com", "ann"),
        row("ben@example.com", "ben"),
        row("not an email", "cat"),
        row("dan@example.com", "dan"),
        row("eve@example.com", "BEN"),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();

    let output = import(&db, &file);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("line 3: email"), "{stderr}");
    assert!(stderr.contains("line 5: username"), "{stderr}");
    assert!(
        !stderr.contains("line 1") && !stderr.contains("line 4"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert_eq!(user_count(&db.url).await, 0);
}

async fn an_import_naming_a_registered_email_is_refused(backend: Backend) {
    let app = backend.app().await;
    app.signed_up("alice").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.csv");
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    std::fs::write(
        &file,
        format!(
            "email,username,password_hash\r\nbob@example.com,bob,{hash}\r\nALICE@example.com,alice2,{hash}\r\n"
        ),
    )
    .unwrap();

    let output = import(&app.db, &file);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("line 3: email: is already registered"),
        "{stderr}"
    );
    assert_eq!(user_count(&app.db.url).await, 1);
}

backend_tests!(
    the_audit_log_pages_newest_first_without_gaps_or_duplicates,
    audit_filters_by_user_and_action_and_combine_them,
    the_audit_log_is_for_admins_and_refuses_bad_queries,
    ten_thousand_csv_users_import_at_once_and_log_in_with_their_old_hashes,
    an_import_with_bad_rows_names_their_lines_and_imports_nothing,
    an_import_naming_a_registered_email_is_refused,
);
