//! Refresh rotation, reuse detection and its grace window, sessions, activity and expiry.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};

use crate::backend_tests;
use crate::support::{code_of, Backend, TestApp, PASSWORD};

async fn raw(app: &TestApp) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&app.db.url).await.unwrap()
}

async fn refresh_rotates_the_token_and_keeps_the_session(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let response = app.refresh(&alice.refresh_token).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_ne!(body["refresh_token"], alice.refresh_token.as_str());
    assert_eq!(body["session_id"], alice.session_id.as_str());
    let me = app
        .get_as("/api/auth/me", body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 200);
}

async fn a_spent_token_after_the_grace_window_ends_the_session(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let next: Value = app
        .refresh(&alice.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    app.clock.advance(Duration::from_secs(11));

    let reuse = app.refresh(&alice.refresh_token).await;
    let successor = app.refresh(next["refresh_token"].as_str().unwrap()).await;
    let me = app
        .get_as("/api/auth/me", next["access_token"].as_str().unwrap())
        .await;

    assert_eq!(reuse.status(), 401);
    assert_eq!(code_of(reuse).await, "refresh_token_reused");
    assert_eq!(
        successor.status(),
        401,
        "the whole session ends, successor included"
    );
    assert_eq!(me.status(), 401);
}

async fn a_retry_inside_the_grace_window_gets_the_same_successor(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let first: Value = app
        .refresh(&alice.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    app.clock.advance(Duration::from_secs(5));
    let retry = app.refresh(&alice.refresh_token).await;

    assert_eq!(retry.status(), 200);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["refresh_token"], first["refresh_token"]);
    assert_eq!(
        app.refresh(first["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

async fn twenty_concurrent_refreshes_yield_one_successor_and_no_reuse_alarm(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let responses =
        futures::future::join_all((0..20).map(|_| app.refresh(&alice.refresh_token))).await;

    let mut successors = std::collections::BTreeSet::new();
    for response in responses {
        assert_eq!(response.status(), 200, "a concurrent refresh failed");
        let body: Value = response.json().await.unwrap();
        successors.insert(body["refresh_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(successors.len(), 1, "{successors:?}");
    let only = successors.into_iter().next().unwrap();
    assert_eq!(
        app.refresh(&only).await.status(),
        200,
        "the successor works and the session lives"
    );
    let mut conn = raw(&app).await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_tokens")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        stored, 3,
        "first token, one successor, and the successor's successor"
    );
}

async fn an_unknown_or_missing_refresh_token_is_refused(backend: Backend) {
    let app = backend.app().await;

    let unknown = app.refresh("not-a-token").await;
    let missing = app.post_json("/api/auth/refresh", &json!({})).await;

    assert_eq!(unknown.status(), 401);
    assert_eq!(code_of(unknown).await, "invalid_refresh_token");
    assert_eq!(missing.status(), 401);
    assert_eq!(code_of(missing).await, "unauthorized");
}

async fn the_refresh_cookie_works_only_with_a_json_content_type(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let cookie = format!("refresh_token={}", alice.refresh_token);

    let form = app
        .http
        .post(app.url("/api/auth/refresh"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let json_post = app
        .http
        .post(app.url("/api/auth/refresh"))
        .header("cookie", &cookie)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();

    assert_eq!(form.status(), 415);
    assert_eq!(json_post.status(), 200);
}

async fn logout_ends_the_session_and_clears_the_cookie(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let response = app
        .post_as("/api/auth/logout", &alice.access_token, &json!({}))
        .await;

    assert_eq!(response.status(), 204);
    assert!(response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        app.get_as("/api/auth/me", &alice.access_token)
            .await
            .status(),
        401
    );
    assert_eq!(app.refresh(&alice.refresh_token).await.status(), 401);
    let mut conn = raw(&app).await;
    let reason: String = sqlx::query_scalar("SELECT end_reason FROM sessions")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(reason, "logout");
}

async fn logout_with_the_refresh_token_alone_works(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let response = app
        .post_json(
            "/api/auth/logout",
            &json!({ "refresh_token": alice.refresh_token }),
        )
        .await;
    let anonymous = app.post_json("/api/auth/logout", &json!({})).await;

    assert_eq!(response.status(), 204);
    assert_eq!(
        app.get_as("/api/auth/me", &alice.access_token)
            .await
            .status(),
        401
    );
    assert_eq!(anonymous.status(), 401);
}

/// SPEC §2: unknown JSON fields are refused (400) on every route, logout with a bearer too;
/// the refused request ends nothing.
async fn logout_with_a_bearer_refuses_what_every_route_refuses(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let unknown = app
        .post_as(
            "/api/auth/logout",
            &alice.access_token,
            &json!({ "refresh_token": null, "extra": 1 }),
        )
        .await;
    let not_json = app
        .http
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&alice.access_token)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    let garbage = app
        .http
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&alice.access_token)
        .header("content-type", "application/json")
        .body("\0")
        .send()
        .await
        .unwrap();

    assert_eq!(unknown.status(), 400);
    let problem: Value = unknown.json().await.unwrap();
    assert_eq!(problem["code"], "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "extra");
    assert_eq!(problem["errors"][0]["code"], "unknown_field");
    assert_eq!(not_json.status(), 415);
    assert_eq!(garbage.status(), 400);
    assert_eq!(
        app.get_as("/api/auth/me", &alice.access_token)
            .await
            .status(),
        200
    );
    let empty = app
        .http
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 204);
}

async fn sessions_are_listed_newest_first_with_the_current_one_marked(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let phone = app
        .http
        .post(app.url("/api/auth/login"))
        .header("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let phone: Value = phone.json().await.unwrap();

    let listed: Value = app
        .get_as(
            "/api/auth/sessions",
            phone["access_token"].as_str().unwrap(),
        )
        .await
        .json()
        .await
        .unwrap();
    let current: Value = app
        .get_as("/api/auth/session", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();

    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["id"], phone["session_id"]);
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[1]["current"], false);
    assert_eq!(sessions[0]["device"]["device_type"], "mobile");
    assert_eq!(sessions[0]["device"]["browser"], "Safari");
    assert_eq!(sessions[0]["ip_address"], "127.0.0.1");
    assert_eq!(current["id"], alice.session_id.as_str());
    for key in [
        "created_at",
        "last_activity_at",
        "expires_at",
        "idle_expires_at",
        "user_agent",
        "current",
    ] {
        assert!(current.get(key).is_some(), "session lacks {key}");
    }
}

async fn a_session_can_be_ended_by_its_owner_only(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let second = app.logged_in(&alice).await;
    let bob = app.signed_up("bob").await;

    let by_bob = app
        .delete_as(
            &format!("/api/auth/sessions/{}", second.session_id),
            &bob.access_token,
        )
        .await;
    let unknown = app
        .delete_as(
            &format!("/api/auth/sessions/{}", uuid::Uuid::new_v4()),
            &alice.access_token,
        )
        .await;
    let not_uuid = app
        .delete_as("/api/auth/sessions/xyz", &alice.access_token)
        .await;
    let by_alice = app
        .delete_as(
            &format!("/api/auth/sessions/{}", second.session_id),
            &alice.access_token,
        )
        .await;

    assert_eq!(by_bob.status(), 404);
    assert_eq!(code_of(by_bob).await, "session_not_found");
    assert_eq!(unknown.status(), 404);
    assert_eq!(not_uuid.status(), 400);
    assert_eq!(by_alice.status(), 204);
    assert_eq!(
        app.get_as("/api/auth/me", &second.access_token)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get_as("/api/auth/me", &alice.access_token)
            .await
            .status(),
        200
    );
}

async fn ending_all_other_sessions_keeps_the_current_one(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let other = app.logged_in(&alice).await;
    let third = app.logged_in(&alice).await;

    let response = app
        .delete_as("/api/auth/sessions/all", &alice.access_token)
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["terminated"], 2);
    assert_eq!(
        app.get_as("/api/auth/me", &alice.access_token)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get_as("/api/auth/me", &other.access_token)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get_as("/api/auth/me", &third.access_token)
            .await
            .status(),
        401
    );
}

async fn a_login_beyond_the_limit_evicts_the_oldest_session(backend: Backend) {
    let app = backend
        .app_with(|config| config.auth.max_sessions_per_user = 2)
        .await;
    let first = app.signed_up("alice").await;
    let second = app.logged_in(&first).await;

    let third = app.logged_in(&first).await;

    assert_eq!(
        app.get_as("/api/auth/me", &first.access_token)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get_as("/api/auth/me", &second.access_token)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get_as("/api/auth/me", &third.access_token)
            .await
            .status(),
        200
    );
    let mut conn = raw(&app).await;
    let reasons: Vec<String> =
        sqlx::query_scalar("SELECT end_reason FROM sessions WHERE end_reason IS NOT NULL")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(reasons, ["evicted"]);
}

async fn an_idle_session_expires_and_activity_keeps_it_alive(backend: Backend) {
    let app = backend
        .app_with(|config| config.auth.access_token_ttl = Duration::from_secs(3600))
        .await;
    let idle = app.signed_up("alice").await;
    let busy = app.logged_in(&idle).await;

    app.clock.advance(Duration::from_secs(20 * 60));
    let activity = app
        .post_as("/api/auth/activity", &busy.access_token, &json!({}))
        .await;
    app.clock.advance(Duration::from_secs(15 * 60));

    assert_eq!(activity.status(), 204);
    assert_eq!(
        app.get_as("/api/auth/me", &idle.access_token)
            .await
            .status(),
        401,
        "35 min idle"
    );
    assert_eq!(
        app.get_as("/api/auth/me", &busy.access_token)
            .await
            .status(),
        200,
        "active 15 min ago"
    );
    assert_eq!(app.refresh(&idle.refresh_token).await.status(), 401);
    let mut conn = raw(&app).await;
    let reasons: Vec<String> =
        sqlx::query_scalar("SELECT end_reason FROM sessions WHERE end_reason IS NOT NULL")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(reasons, ["idle"]);
}

async fn a_bcrypt_hash_logs_in_and_is_rehashed_to_argon2id(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let bcrypt_hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let mut conn = raw(&app).await;
    sqlx::query("UPDATE users SET password_hash = $1")
        .bind(&bcrypt_hash)
        .execute(&mut conn)
        .await
        .unwrap();

    let login = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": alice.username, "password": PASSWORD }),
        )
        .await;

    assert_eq!(login.status(), 200);
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    let again = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": alice.username, "password": PASSWORD }),
        )
        .await;
    assert_eq!(again.status(), 200);
}

backend_tests! {
    refresh_rotates_the_token_and_keeps_the_session,
    a_spent_token_after_the_grace_window_ends_the_session,
    a_retry_inside_the_grace_window_gets_the_same_successor,
    twenty_concurrent_refreshes_yield_one_successor_and_no_reuse_alarm,
    an_unknown_or_missing_refresh_token_is_refused,
    the_refresh_cookie_works_only_with_a_json_content_type,
    logout_ends_the_session_and_clears_the_cookie,
    logout_with_the_refresh_token_alone_works,
    logout_with_a_bearer_refuses_what_every_route_refuses,
    sessions_are_listed_newest_first_with_the_current_one_marked,
    a_session_can_be_ended_by_its_owner_only,
    ending_all_other_sessions_keeps_the_current_one,
    a_login_beyond_the_limit_evicts_the_oldest_session,
    an_idle_session_expires_and_activity_keeps_it_alive,
    a_bcrypt_hash_logs_in_and_is_rehashed_to_argon2id,
}
