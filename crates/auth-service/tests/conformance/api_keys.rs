//! API keys / personal access tokens (SPEC §11): a key is shown once and kept as its SHA-256,
//! its checksum is checked before any lookup, it acts for its owner within its scopes and
//! never on the routes that change credentials, it stops at once when revoked and when it
//! expires, introspection (HTTP and gRPC) says who it acts for, a territory admin manages only
//! its territory's clients' keys, uses are written in batches, and bad input writes nothing.

use auth_service::grpc::pb;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::clients::{created as created_client, db};
use crate::support::directory::{create_territory, give_territory_roles};
use crate::support::{code_of, with_admin, Backend, TestApp};

fn sha256(text: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .to_vec()
}

/// A key made for the owner of `token` with `body` at `path`: its JSON, including the key.
async fn key_at(app: &TestApp, path: &str, token: &str, body: &Value) -> Value {
    let response = app.post_as(path, token, body).await;
    assert_eq!(response.status(), 201, "creating a key: {body}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

/// A user's key with `scopes`.
async fn own_key(app: &TestApp, token: &str, scopes: &[&str]) -> String {
    let body = json!({ "name": "ci", "scopes": scopes });
    let key = key_at(app, "/api/auth/api-keys", token, &body).await;
    key["key"].as_str().unwrap().to_owned()
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    let response = app
        .post_json("/api/auth/introspect", &json!({ "token": token }))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn validate(app: &TestApp, token: &str) -> pb::ValidateTokenResponse {
    let request = pb::ValidateTokenRequest {
        token: token.to_owned(),
    };
    app.grpc()
        .await
        .validate_token(request)
        .await
        .unwrap()
        .into_inner()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&mut db(app).await)
        .await
        .unwrap()
}

/// `ask_` + 32 base62 + `_` + 6 base62.
fn well_formed(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("ask_") else {
        return false;
    };
    let Some((random, sum)) = rest.split_once('_') else {
        return false;
    };
    random.len() == 32
        && sum.len() == 6
        && (random.to_owned() + sum)
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

async fn keys_are_created_listed_and_revoked_and_the_key_is_shown_once(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let bob = app.signed_up("bob").await;
    let token = alice.access_token.as_str();

    let created = key_at(
        &app,
        "/api/auth/api-keys",
        token,
        &json!({ "name": "deploy", "scopes": ["auth:read", "orders:read"], "expires_in": 3600 }),
    )
    .await;

    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(well_formed(&key), "{key}");
    assert_eq!(created["prefix"], key[..12]);
    assert_eq!(created["scopes"], json!(["auth:read", "orders:read"]));
    assert!(created["expires_at"].is_string());
    let listed = app.get_as("/api/auth/api-keys", token).await;
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["api_keys"].as_array().unwrap().len(), 1);
    assert_eq!(listed["api_keys"][0]["id"], id.as_str());
    assert!(listed["api_keys"][0].get("key").is_none());
    assert!(!listed.to_string().contains(&key), "never listed");
    let (hash, row): (Vec<u8>, String) = sqlx::query_as(
        "SELECT key_hash, CAST(id AS TEXT) || name || prefix || scopes FROM api_keys",
    )
    .fetch_one(&mut db(&app).await)
    .await
    .unwrap();
    assert_eq!(hash, sha256(&key), "only the SHA-256 is kept");
    assert!(!row.contains(&key[12..]));
    let me = app.get_as("/api/auth/me", &key).await;
    assert_eq!(me.status(), 200, "the key acts for its user");
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], alice.user_id.as_str());

    let path = format!("/api/auth/api-keys/{id}");
    assert_eq!(
        code_of(app.delete_as(&path, &bob.access_token).await).await,
        "api_key_not_found",
        "someone else's key"
    );
    assert_eq!(app.delete_as(&path, token).await.status(), 204);

    assert_eq!(
        app.get_as("/api/auth/me", &key).await.status(),
        401,
        "revoked at once"
    );
    assert_eq!(app.delete_as(&path, token).await.status(), 404);
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM outbox WHERE event_type LIKE 'auth:api_key.%' ORDER BY seq",
    )
    .fetch_all(&mut db(&app).await)
    .await
    .unwrap();
    assert_eq!(kinds, ["auth:api_key.created", "auth:api_key.revoked"]);
    let documented = crate::events::documented_types();
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(payload AS TEXT) FROM outbox WHERE event_type LIKE 'auth:api_key.%'",
    )
    .fetch_all(&mut db(&app).await)
    .await
    .unwrap();
    for payload in &payloads {
        assert!(!payload.contains(&key), "never the key");
        let event: Value = serde_json::from_str(payload).unwrap();
        let kind = event["type"].as_str().unwrap();
        let mut keys: Vec<String> = event["data"].as_object().unwrap().keys().cloned().collect();
        keys.sort();
        let expected = &documented.iter().find(|(name, _)| name == kind).unwrap().1;
        assert_eq!(&keys, expected, "{kind}");
        assert_eq!(event["data"]["owner_id"], alice.user_id.as_str());
        assert_eq!(event["data"]["prefix"], created["prefix"]);
    }
    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, CAST(details AS TEXT) FROM audit_log \
         WHERE target_type = 'api_key' AND target_id = $1 ORDER BY id",
    )
    .bind(&id)
    .fetch_all(&mut db(&app).await)
    .await
    .unwrap();
    let actions: Vec<&str> = audit.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["api_key_created", "api_key_revoked"]);
    assert!(audit.iter().all(|(_, details)| !details.contains(&key)));
}

async fn a_malformed_key_or_a_bad_checksum_is_refused_before_any_lookup(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let key = own_key(&app, &alice.access_token, &["auth:read"]).await;
    // The same random part with another checksum, stored as if it were a key: only the
    // checksum keeps it out.
    let last = key.chars().last().unwrap();
    let forged = format!(
        "{}{}",
        &key[..key.len() - 1],
        if last == 'a' { 'b' } else { 'a' }
    );
    sqlx::query("UPDATE api_keys SET key_hash = $1")
        .bind(sha256(&forged))
        .execute(&mut db(&app).await)
        .await
        .unwrap();

    for bad in [forged.as_str(), "ask_", "ask_short_abc", &format!("{key}x")] {
        let response = app.get_as("/api/auth/me", bad).await;
        assert_eq!(response.status(), 401, "{bad}");
        assert_eq!(introspect(&app, bad).await, json!({ "active": false }));
        let verdict = validate(&app, bad).await;
        assert!(!verdict.valid);
        assert_eq!(verdict.reason, "malformed", "{bad}");
    }
}

async fn a_key_acts_within_its_scopes_and_never_on_credential_routes(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let alice = app.signed_up("alice").await;
    let reader = own_key(&app, &alice.access_token, &["auth:read"]).await;
    let nothing = own_key(&app, &alice.access_token, &["orders:read"]).await;
    let alice_admin = own_key(&app, &alice.access_token, &["admin:read"]).await;
    let admin_read = own_key(&app, &root.access_token, &["admin:read"]).await;
    let admin_all = own_key(
        &app,
        &root.access_token,
        &["auth:read", "admin:read", "admin:write"],
    )
    .await;

    assert_eq!(app.get_as("/api/auth/me", &reader).await.status(), 200);
    assert_eq!(
        app.get_as("/api/auth/api-keys", &reader).await.status(),
        200
    );
    let refused = app.get_as("/api/auth/me", &nothing).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
    assert_eq!(code_of(refused).await, "insufficient_scope");
    assert_eq!(
        code_of(app.get_as("/api/users", &reader).await).await,
        "insufficient_scope"
    );
    assert_eq!(
        code_of(app.get_as("/api/users", &alice_admin).await).await,
        "forbidden",
        "a scope adds no role"
    );
    assert_eq!(app.get_as("/api/users", &admin_read).await.status(), 200);
    let role = json!({ "name": "auditor" });
    assert_eq!(
        code_of(app.post_as("/api/roles", &admin_read, &role).await).await,
        "insufficient_scope"
    );
    assert_eq!(
        app.post_as("/api/roles", &admin_all, &role).await.status(),
        201
    );
    let sensitive: [(&str, &str, Value); 7] = [
        (
            "POST",
            "/api/auth/api-keys",
            json!({ "name": "x", "scopes": [] }),
        ),
        (
            "POST",
            "/api/auth/password/change",
            json!({ "current_password": "x", "new_password": "y" }),
        ),
        ("POST", "/api/auth/mfa/totp", json!({})),
        ("GET", "/api/auth/sessions", Value::Null),
        ("POST", "/api/auth/logout", json!({})),
        ("PATCH", "/api/auth/me", json!({ "bio": "x" })),
        ("POST", "/api/users", json!({})),
    ];
    for (method, path, body) in sensitive {
        let request = match method {
            "GET" => app.http.get(app.url(path)),
            "PATCH" => app.http.patch(app.url(path)).json(&body),
            _ => app.http.post(app.url(path)).json(&body),
        };
        let response = request.bearer_auth(&admin_all).send().await.unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
        assert_eq!(
            code_of(response).await,
            "session_required",
            "{method} {path}"
        );
    }
    assert_eq!(count(&app, "SELECT count(*) FROM api_keys").await, 5);
}

async fn an_expired_key_stops_and_introspects_inactive(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let body = json!({ "name": "short", "scopes": ["auth:read"], "expires_in": 60 });
    let created = key_at(&app, "/api/auth/api-keys", &alice.access_token, &body).await;
    let key = created["key"].as_str().unwrap();
    assert_eq!(app.get_as("/api/auth/me", key).await.status(), 200);
    assert_eq!(introspect(&app, key).await["active"], true);

    app.clock.advance(std::time::Duration::from_secs(61));

    assert_eq!(app.get_as("/api/auth/me", key).await.status(), 401);
    assert_eq!(introspect(&app, key).await, json!({ "active": false }));
    let verdict = validate(&app, key).await;
    assert!(!verdict.valid);
    assert_eq!(verdict.reason, "expired");
}

async fn introspection_says_who_a_key_acts_for_until_it_is_revoked(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let body = json!({ "name": "svc", "scopes": ["orders:read", "auth:read"] });
    let created = key_at(&app, "/api/auth/api-keys", &alice.access_token, &body).await;
    let key = created["key"].as_str().unwrap();

    let answer = introspect(&app, key).await;
    let verdict = validate(&app, key).await;

    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "api_key");
    assert_eq!(answer["owner_type"], "user");
    assert_eq!(answer["sub"], alice.user_id.as_str());
    assert_eq!(answer["username"], "alice");
    assert_eq!(answer["scope"], "auth:read orders:read");
    assert_eq!(answer["roles"], json!(["user"]));
    assert!(answer.get("exp").is_none(), "no expiry");
    assert!(verdict.valid);
    assert_eq!(verdict.token_type, "api_key");
    assert_eq!(verdict.user_id, alice.user_id);
    assert_eq!(verdict.scope, "auth:read orders:read");
    assert_eq!(verdict.roles, ["user"]);
    assert!(verdict.session_id.is_empty() && verdict.expires_at.is_none());
    let path = format!("/api/auth/api-keys/{}", created["id"].as_str().unwrap());
    assert_eq!(
        app.delete_as(&path, &alice.access_token).await.status(),
        204
    );
    assert_eq!(introspect(&app, key).await, json!({ "active": false }));
    let verdict = validate(&app, key).await;
    assert!(!verdict.valid);
    assert_eq!(verdict.reason, "api_key_unknown");
}

async fn a_territory_admin_manages_only_its_territorys_client_keys(backend: Backend) {
    let dk = backend
        .app_with(|config| {
            with_admin(config);
            config.server.territory = Some("dk".into());
        })
        .await;
    let root = dk.admin().await;
    create_territory(&dk, &root, "dk").await;
    create_territory(&dk, &root, "se").await;
    let boss = dk.signed_up("boss").await;
    give_territory_roles(&dk, &root, &boss, "dk", json!(["admin"])).await;
    let boss = dk.logged_in(&boss).await;
    let token = boss.access_token.as_str();
    let swedish = created_client(
        &dk,
        &root,
        &json!({ "name": "se", "territory": "se", "scopes": ["orders:read"] }),
    )
    .await;
    let swedish_path = format!(
        "/api/clients/{}/api-keys",
        swedish["client_id"].as_str().unwrap()
    );
    let root_key = key_at(
        &dk,
        &swedish_path,
        &root.access_token,
        &json!({ "name": "se-key", "scopes": ["orders:read"] }),
    )
    .await;
    let own = created_client(&dk, &boss, &json!({ "name": "mine", "scopes": ["a", "b"] })).await;
    let own_path = format!(
        "/api/clients/{}/api-keys",
        own["client_id"].as_str().unwrap()
    );

    let body = json!({ "name": "k", "scopes": ["a"] });
    let mine = key_at(&dk, &own_path, token, &body).await;

    let key = mine["key"].as_str().unwrap();
    let answer = introspect(&dk, key).await;
    assert_eq!(answer["owner_type"], "client");
    assert_eq!(answer["sub"], own["client_id"]);
    assert_eq!(answer["client_id"], own["client_id"]);
    assert_eq!(
        validate(&dk, key).await.client_id,
        own["client_id"].as_str().unwrap()
    );
    assert_eq!(
        code_of(dk.get_as("/api/auth/me", key).await).await,
        "user_token_required"
    );
    let listed: Value = dk.get_as(&own_path, token).await.json().await.unwrap();
    assert_eq!(listed["api_keys"].as_array().unwrap().len(), 1);
    let wider = dk
        .post_as(&own_path, token, &json!({ "name": "k", "scopes": ["c"] }))
        .await;
    assert_eq!(
        code_of(wider).await,
        "validation_failed",
        "beyond the client's scopes"
    );
    let elsewhere = format!("{swedish_path}/{}", root_key["id"].as_str().unwrap());
    for response in [
        dk.post_as(&swedish_path, token, &json!({ "name": "x", "scopes": [] }))
            .await,
        dk.get_as(&swedish_path, token).await,
        dk.delete_as(&elsewhere, token).await,
    ] {
        assert_eq!(code_of(response).await, "client_not_found");
    }
    let crossed = format!("{own_path}/{}", root_key["id"].as_str().unwrap());
    assert_eq!(
        code_of(dk.delete_as(&crossed, token).await).await,
        "api_key_not_found",
        "another client's key"
    );
    assert_eq!(
        introspect(&dk, root_key["key"].as_str().unwrap()).await["active"],
        true
    );
    let revoke = format!("{own_path}/{}", mine["id"].as_str().unwrap());
    assert_eq!(dk.delete_as(&revoke, token).await.status(), 204);
    assert_eq!(introspect(&dk, key).await, json!({ "active": false }));
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE target_type = 'api_key' ORDER BY id",
    )
    .fetch_all(&mut db(&dk).await)
    .await
    .unwrap();
    assert_eq!(
        audit,
        ["api_key_created", "api_key_created", "api_key_revoked"]
    );
}

async fn last_used_at_is_written_by_the_batched_flush(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let key = own_key(&app, &alice.access_token, &["auth:read"]).await;
    let last_used = || async {
        let listed: Value = app
            .get_as("/api/auth/api-keys", &alice.access_token)
            .await
            .json()
            .await
            .unwrap();
        listed["api_keys"][0]["last_used_at"].clone()
    };
    assert_eq!(app.get_as("/api/auth/me", &key).await.status(), 200);
    assert_eq!(last_used().await, Value::Null, "not written per request");

    let written = app.api_keys.flush_uses().await.unwrap();

    assert_eq!(written, 1);
    let at = last_used().await;
    let at = chrono::DateTime::parse_from_rfc3339(at.as_str().unwrap()).unwrap();
    assert_eq!(at.timestamp(), app.clock.now().timestamp());
    assert_eq!(app.api_keys.flush_uses().await.unwrap(), 0, "nothing new");
}

async fn bad_input_is_refused_and_nothing_is_written(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let token = alice.access_token.as_str();

    for body in [
        json!({ "name": "", "scopes": [] }),
        json!({ "name": "   ", "scopes": [] }),
        json!({ "name": "x".repeat(101), "scopes": [] }),
        json!({ "name": "k", "scopes": ["a b"] }),
        json!({ "name": "k", "scopes": [""] }),
        json!({ "name": "k", "scopes": [], "expires_in": 0 }),
        json!({ "name": "k", "scopes": [], "expires_in": 63_244_801u64 }),
        json!({ "name": "k", "scopes": [], "expires_in": -1 }),
        json!({ "name": "k" }),
        json!({ "name": "k", "scopes": [], "key": "ask_mine" }),
    ] {
        let response = app.post_as("/api/auth/api-keys", token, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        assert_eq!(code_of(response).await, "validation_failed", "{body}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM api_keys").await, 0);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox WHERE event_type LIKE 'auth:api_key.%'"
        )
        .await,
        0
    );
    for n in 0..100 {
        let body = json!({ "name": format!("k{n}"), "scopes": [] });
        key_at(&app, "/api/auth/api-keys", token, &body).await;
    }
    let over = app
        .post_as(
            "/api/auth/api-keys",
            token,
            &json!({ "name": "one more", "scopes": [] }),
        )
        .await;
    assert_eq!(over.status(), 422);
    assert_eq!(code_of(over).await, "too_many_api_keys");
    assert_eq!(count(&app, "SELECT count(*) FROM api_keys").await, 100);
}

async fn deleting_a_user_deletes_their_keys(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let alice = app.signed_up("alice").await;
    let key = own_key(&app, &alice.access_token, &["auth:read"]).await;
    assert_eq!(app.get_as("/api/auth/me", &key).await.status(), 200);

    let path = format!("/api/users/{}", alice.user_id);
    assert_eq!(app.delete_as(&path, &root.access_token).await.status(), 204);

    assert_eq!(app.get_as("/api/auth/me", &key).await.status(), 401);
    assert_eq!(count(&app, "SELECT count(*) FROM api_keys").await, 0);
}

async fn another_replica_stops_a_revoked_key_within_the_cache_ttl(backend: Backend) {
    let here = backend.app().await;
    let alice = here.signed_up("alice").await;
    let body = json!({ "name": "k", "scopes": ["auth:read"] });
    let created = key_at(&here, "/api/auth/api-keys", &alice.access_token, &body).await;
    let key = created["key"].as_str().unwrap();
    let there = here.beside(|_| {}).await;
    assert_eq!(there.get_as("/api/auth/me", key).await.status(), 200);
    let path = format!("/api/auth/api-keys/{}", created["id"].as_str().unwrap());

    assert_eq!(
        here.delete_as(&path, &alice.access_token).await.status(),
        204
    );

    assert_eq!(
        here.get_as("/api/auth/me", key).await.status(),
        401,
        "at once here"
    );
    there.clock.advance(there.config.auth.session_cache_ttl);
    assert_eq!(
        there.get_as("/api/auth/me", key).await.status(),
        401,
        "elsewhere within the TTL"
    );
}

backend_tests! {
    keys_are_created_listed_and_revoked_and_the_key_is_shown_once,
    a_malformed_key_or_a_bad_checksum_is_refused_before_any_lookup,
    a_key_acts_within_its_scopes_and_never_on_credential_routes,
    an_expired_key_stops_and_introspects_inactive,
    introspection_says_who_a_key_acts_for_until_it_is_revoked,
    a_territory_admin_manages_only_its_territorys_client_keys,
    last_used_at_is_written_by_the_batched_flush,
    bad_input_is_refused_and_nothing_is_written,
    deleting_a_user_deletes_their_keys,
    another_replica_stops_a_revoked_key_within_the_cache_ttl,
}
