//! The session cache of the bearer check (issue 20): a check trusts what it read for at most
//! `auth.session_cache_ttl`, every change through a replica takes effect there at once, and
//! another replica sees it once the TTL has passed on its own clock.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};

use crate::backend_tests;
use crate::support::{with_admin, Backend, TestApp};

const NEW_PASSWORD: &str = "violet otter juggles lanterns";

async fn raw(app: &TestApp) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&app.db.url).await.unwrap()
}

async fn me(app: &TestApp, token: &str) -> (u16, Value) {
    let response = app.get_as("/api/auth/me", token).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn status_of(app: &TestApp, token: &str) -> u16 {
    me(app, token).await.0
}

async fn patch(app: &TestApp, token: &str, id: &str, body: Value) -> u16 {
    app.http
        .patch(app.url(&format!("/api/users/{id}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A change made behind the store's back (straight in the database, as another replica or
/// the command line would) is not seen while the entry is trusted: the cached `me` read no
/// database. Once the TTL has passed on the app's clock, it is.
async fn a_cached_check_reads_no_database_until_the_ttl_passes(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    assert_eq!(status_of(&app, &alice.access_token).await, 200);

    let mut db = raw(&app).await;
    sqlx::query("UPDATE users SET display_name = 'Changed' WHERE username = 'alice'")
        .execute(&mut db)
        .await
        .unwrap();

    let (status, cached) = me(&app, &alice.access_token).await;
    assert_eq!(status, 200);
    assert_ne!(
        cached["display_name"], "Changed",
        "a cached check makes no database query"
    );
    app.clock.advance(Duration::from_millis(499));
    let (_, still) = me(&app, &alice.access_token).await;
    assert_ne!(still["display_name"], "Changed");

    app.clock.advance(Duration::from_millis(1));
    let (status, fresh) = me(&app, &alice.access_token).await;
    assert_eq!(status, 200);
    assert_eq!(fresh["display_name"], "Changed", "read again after the TTL");
}

async fn a_zero_ttl_reads_every_time(backend: Backend) {
    let app = backend
        .app_with(|config| config.auth.session_cache_ttl = Duration::ZERO)
        .await;
    let alice = app.signed_up("alice").await;
    assert_eq!(status_of(&app, &alice.access_token).await, 200);

    sqlx::query("UPDATE users SET display_name = 'Changed' WHERE username = 'alice'")
        .execute(&mut raw(&app).await)
        .await
        .unwrap();

    assert_eq!(
        me(&app, &alice.access_token).await.1["display_name"],
        "Changed"
    );
}

async fn ending_sessions_takes_effect_at_once(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let second = app.logged_in(&alice).await;
    let third = app.logged_in(&alice).await;
    let fourth = app.logged_in(&alice).await;
    for account in [&alice, &second, &third, &fourth] {
        assert_eq!(status_of(&app, &account.access_token).await, 200);
    }

    let logout = app
        .post_as("/api/auth/logout", &alice.access_token, &json!({}))
        .await;
    assert_eq!(logout.status(), 204);
    assert_eq!(status_of(&app, &alice.access_token).await, 401, "logout");

    let end = app
        .delete_as(
            &format!("/api/auth/sessions/{}", second.session_id),
            &fourth.access_token,
        )
        .await;
    assert_eq!(end.status(), 204);
    assert_eq!(
        status_of(&app, &second.access_token).await,
        401,
        "one session ended"
    );

    let all = app
        .delete_as("/api/auth/sessions/all", &fourth.access_token)
        .await;
    assert_eq!(all.status(), 200);
    assert_eq!(
        status_of(&app, &third.access_token).await,
        401,
        "every other session ended"
    );
    assert_eq!(status_of(&app, &fourth.access_token).await, 200);
}

async fn a_password_change_takes_effect_at_once(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let second = app.logged_in(&alice).await;
    assert_eq!(status_of(&app, &alice.access_token).await, 200);

    let change = app
        .post_as(
            "/api/auth/password/change",
            &second.access_token,
            &json!({ "current_password": alice.password, "new_password": NEW_PASSWORD }),
        )
        .await;

    assert_eq!(change.status(), 204);
    assert_eq!(status_of(&app, &alice.access_token).await, 401);
}

async fn role_changes_and_deactivation_take_effect_at_once(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    let token = &admin.access_token;
    app.post_as("/api/roles", token, &json!({ "name": "editor" }))
        .await;
    assert_eq!(
        me(&app, &alice.access_token).await.1["roles"],
        json!(["user"])
    );

    let grant = patch(
        &app,
        token,
        &alice.user_id,
        json!({ "roles": ["editor", "user"] }),
    )
    .await;
    assert_eq!(grant, 200);
    assert_eq!(
        me(&app, &alice.access_token).await.1["roles"],
        json!(["editor", "user"]),
        "a granted role shows at once"
    );

    let removal = patch(&app, token, &alice.user_id, json!({ "roles": ["user"] })).await;
    assert_eq!(removal, 200);
    assert_eq!(
        me(&app, &alice.access_token).await.1["roles"],
        json!(["user"]),
        "a removed role is gone at once"
    );

    let deactivation = patch(&app, token, &alice.user_id, json!({ "is_active": false })).await;
    assert_eq!(deactivation, 200);
    assert_eq!(status_of(&app, &alice.access_token).await, 401);
}

async fn key_revocation_takes_effect_at_once(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    assert_eq!(status_of(&app, &alice.access_token).await, 200);
    let kid = app.keys.list().await.unwrap()[0].kid.clone();

    assert!(app.keys.revoke(&kid).await.unwrap());

    assert_eq!(status_of(&app, &alice.access_token).await, 401);
}

/// Two replicas on one database, each with its own clock: a logout on A is refused on A at
/// once, and on B as soon as B's clock has moved by the TTL (500 ms by default, under the
/// 1 s bound), whatever B had cached.
async fn another_replica_sees_a_revocation_within_the_ttl(backend: Backend) {
    let a = backend.app().await;
    let b = a.beside(|_| {}).await;
    let ttl = a.config.auth.session_cache_ttl;
    assert!(ttl > Duration::ZERO && ttl < Duration::from_secs(1));
    let alice = a.signed_up("alice").await;
    assert_eq!(status_of(&b, &alice.access_token).await, 200, "B caches it");

    let logout = a
        .post_as("/api/auth/logout", &alice.access_token, &json!({}))
        .await;
    assert_eq!(logout.status(), 204);
    assert_eq!(status_of(&a, &alice.access_token).await, 401, "A: at once");

    b.clock.advance(ttl - Duration::from_millis(1));
    assert_eq!(
        status_of(&b, &alice.access_token).await,
        200,
        "B trusts its entry until the TTL: the bound is the TTL, no broker involved"
    );
    b.clock.advance(Duration::from_millis(1));
    assert_eq!(
        status_of(&b, &alice.access_token).await,
        401,
        "B refuses once its entry is a TTL old"
    );
}

backend_tests!(
    a_cached_check_reads_no_database_until_the_ttl_passes,
    a_zero_ttl_reads_every_time,
    ending_sessions_takes_effect_at_once,
    a_password_change_takes_effect_at_once,
    role_changes_and_deactivation_take_effect_at_once,
    key_revocation_takes_effect_at_once,
    another_replica_sees_a_revocation_within_the_ttl,
);
