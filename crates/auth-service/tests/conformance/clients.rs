//! Administering OAuth 2 clients (SPEC §11): the secret is shown once and kept as its SHA-256,
//! a territory admin reaches only its territory's clients (SPEC §5), every change is audited
//! and the documented events are written with it, and a rotated secret keeps working for the
//! overlap only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sqlx::AnyConnection;
use sqlx::Connection;

use crate::backend_tests;
use crate::support::directory::{create_territory, give_territory_roles, patch_as};
use crate::support::{code_of, with_admin, Account, Backend, TestApp};

/// A client created by `admin` with `body`: its JSON, including the secret.
pub async fn created(app: &TestApp, admin: &Account, body: &Value) -> Value {
    let response = app.post_as("/api/clients", &admin.access_token, body).await;
    assert_eq!(response.status(), 201, "creating a client");
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

/// A token request with `client_secret_post`; the raw answer.
pub async fn token_post(app: &TestApp, client: &Value, extra: &str) -> reqwest::Response {
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}{extra}",
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap()
    );
    form(app, &body, None).await
}

/// A token request with `client_secret_basic`; the raw answer.
pub async fn token_basic(app: &TestApp, id: &str, secret: &str, extra: &str) -> reqwest::Response {
    let body = format!("grant_type=client_credentials{extra}");
    form(app, &body, Some((id, secret))).await
}

/// A form POST to `/oauth/token`, with HTTP Basic when given.
pub async fn form(app: &TestApp, body: &str, basic: Option<(&str, &str)>) -> reqwest::Response {
    let request = app
        .http
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    let request = match basic {
        Some((id, secret)) => request.basic_auth(id, Some(secret)),
        None => request,
    };
    request.send().await.unwrap()
}

pub async fn db(app: &TestApp) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&app.db.url).await.unwrap()
}

fn sha256(text: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .to_vec()
}

async fn clients_are_created_read_listed_changed_and_deleted(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let token = root.access_token.as_str();

    let client = created(
        &app,
        &root,
        &json!({ "name": "billing", "scopes": ["orders:read", "orders:write", "orders:read"],
                 "roles": ["moderator"], "access_token_ttl_seconds": 300 }),
    )
    .await;
    let id = client["client_id"].as_str().unwrap().to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    let path = format!("/api/clients/{id}");

    assert_eq!(
        URL_SAFE_NO_PAD.decode(&secret).unwrap().len(),
        32,
        "256 bits"
    );
    assert_eq!(client["scopes"], json!(["orders:read", "orders:write"]));
    assert_eq!(client["is_active"], true);
    let read: Value = app.get_as(&path, token).await.json().await.unwrap();
    assert!(read.get("client_secret").is_none(), "shown once: {read}");
    assert_eq!(read["name"], "billing");
    let listed: Value = app
        .get_as("/api/clients", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["clients"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&secret));
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_hash FROM clients")
        .fetch_one(&mut db(&app).await)
        .await
        .unwrap();
    assert_eq!(stored, sha256(&secret), "only the SHA-256 is kept");

    let changed = patch_as(
        &app,
        &path,
        token,
        &json!({ "name": "billing v2", "scopes": ["orders:read"], "access_token_ttl_seconds": null }),
    )
    .await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["name"], "billing v2");
    assert_eq!(changed["scopes"], json!(["orders:read"]));
    assert_eq!(changed["access_token_ttl_seconds"], Value::Null);
    for (body, code) in [
        (json!({ "roles": ["no-such-role"] }), "validation_failed"),
        (json!({ "territory": "xx" }), "validation_failed"),
        (json!({ "scopes": ["a b"] }), "validation_failed"),
        (
            json!({ "access_token_ttl_seconds": 5 }),
            "validation_failed",
        ),
        (json!({ "secret": "x" }), "validation_failed"),
    ] {
        let response = patch_as(&app, &path, token, &body).await;
        assert_eq!(code_of(response).await, code, "{body}");
    }

    assert_eq!(app.delete_as(&path, token).await.status(), 204);
    assert_eq!(
        code_of(app.get_as(&path, token).await).await,
        "client_not_found"
    );
    assert_eq!(app.delete_as(&path, token).await.status(), 404);

    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM outbox WHERE CAST(user_id AS TEXT) = $1 ORDER BY seq",
    )
    .bind(&id)
    .fetch_all(&mut db(&app).await)
    .await
    .unwrap();
    assert_eq!(kinds, ["auth:client.created", "auth:client.deleted"]);
    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, CAST(details AS TEXT) FROM audit_log \
         WHERE target_type = 'client' AND target_id = $1 ORDER BY id",
    )
    .bind(&id)
    .fetch_all(&mut db(&app).await)
    .await
    .unwrap();
    let actions: Vec<&str> = audit.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["client_created", "client_updated", "client_deleted"]
    );
    assert!(audit.iter().all(|(_, details)| !details.contains(&secret)));
}

async fn a_territory_admin_administers_only_its_territorys_clients(backend: Backend) {
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
    let swedish = created(&dk, &root, &json!({ "name": "se", "territory": "se" })).await;
    let global = created(&dk, &root, &json!({ "name": "global" })).await;

    let own = created(
        &dk,
        &boss,
        &json!({ "name": "mine", "roles": ["moderator"] }),
    )
    .await;

    assert_eq!(
        own["territory"], "dk",
        "a territory admin's client is its territory's"
    );
    let listed: Value = dk.get_as("/api/clients", token).await.json().await.unwrap();
    let names: Vec<&str> = listed["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mine"]);
    for other in [&swedish, &global] {
        let path = format!("/api/clients/{}", other["client_id"].as_str().unwrap());
        let rotate = format!("{path}/secret");
        assert_eq!(
            code_of(dk.get_as(&path, token).await).await,
            "client_not_found"
        );
        let rename = patch_as(&dk, &path, token, &json!({ "name": "taken" })).await;
        assert_eq!(code_of(rename).await, "client_not_found");
        assert_eq!(
            code_of(dk.delete_as(&path, token).await).await,
            "client_not_found"
        );
        let rotated = dk.post_as(&rotate, token, &json!({})).await;
        assert_eq!(code_of(rotated).await, "client_not_found");
    }
    let elsewhere = dk
        .post_as(
            "/api/clients",
            token,
            &json!({ "name": "x", "territory": "se" }),
        )
        .await;
    assert_eq!(code_of(elsewhere).await, "forbidden");
    let own_path = format!("/api/clients/{}", own["client_id"].as_str().unwrap());
    let moved = patch_as(&dk, &own_path, token, &json!({ "territory": "se" })).await;
    assert_eq!(code_of(moved).await, "forbidden");
    let globalised = patch_as(&dk, &own_path, token, &json!({ "territory": null })).await;
    assert_eq!(code_of(globalised).await, "forbidden");
    let plain = dk.signed_up("plain").await;
    let refused = dk.get_as("/api/clients", &plain.access_token).await;
    assert_eq!(code_of(refused).await, "forbidden");
}

async fn a_rotated_secret_works_until_the_overlap_ends_and_the_new_one_at_once(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let client = created(&app, &root, &json!({ "name": "rotating" })).await;
    let id = client["client_id"].as_str().unwrap();
    let old = client["client_secret"].as_str().unwrap();
    let rotate = format!("/api/clients/{id}/secret");

    let response = app
        .http
        .post(app.url(&rotate))
        .bearer_auth(&root.access_token)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200, "a rotation needs no body");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let rotated: Value = response.json().await.unwrap();
    let new = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_expires_at"].is_string());
    assert_eq!(
        token_basic(&app, id, old, "").await.status(),
        200,
        "overlap"
    );
    assert_eq!(token_basic(&app, id, &new, "").await.status(), 200);
    app.clock
        .advance(app.config.clients.secret_overlap + std::time::Duration::from_secs(1));
    assert_eq!(
        token_basic(&app, id, old, "").await.status(),
        401,
        "overlap over"
    );
    assert_eq!(token_basic(&app, id, &new, "").await.status(), 200);

    let root = app.admin().await;
    let at_once = app
        .post_as(
            &rotate,
            &root.access_token,
            &json!({ "overlap_seconds": 0 }),
        )
        .await;
    assert_eq!(at_once.status(), 200);
    let newest: Value = at_once.json().await.unwrap();
    assert_eq!(
        token_basic(&app, id, &new, "").await.status(),
        401,
        "no overlap"
    );
    let newest = newest["client_secret"].as_str().unwrap();
    assert_eq!(token_basic(&app, id, newest, "").await.status(), 200);
    let too_long = app
        .post_as(
            &rotate,
            &root.access_token,
            &json!({ "overlap_seconds": 2_592_001 }),
        )
        .await;
    assert_eq!(code_of(too_long).await, "validation_failed");
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(payload AS TEXT) FROM outbox WHERE event_type = 'auth:client.secret_rotated'",
    )
    .fetch_all(&mut db(&app).await)
    .await
    .unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| !e.contains(old) && !e.contains(&new)));
}

/// The data of each client event has exactly the keys docs/events.md documents.
async fn client_events_carry_their_documented_data(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let client = created(&app, &root, &json!({ "name": "documented" })).await;
    let path = format!("/api/clients/{}", client["client_id"].as_str().unwrap());
    app.post_as(&format!("{path}/secret"), &root.access_token, &json!({}))
        .await;
    app.delete_as(&path, &root.access_token).await;
    let documented = crate::events::documented_types();

    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(payload AS TEXT) FROM outbox WHERE event_type LIKE 'auth:client.%' ORDER BY seq",
    )
    .fetch_all(&mut db(&app).await)
    .await
    .unwrap();

    assert_eq!(payloads.len(), 3);
    for payload in payloads {
        let event: Value = serde_json::from_str(&payload).unwrap();
        let kind = event["type"].as_str().unwrap();
        let mut keys: Vec<String> = event["data"].as_object().unwrap().keys().cloned().collect();
        keys.sort();
        let expected = &documented.iter().find(|(name, _)| name == kind).unwrap().1;
        assert_eq!(&keys, expected, "{kind}");
        assert_eq!(event["data"]["client_id"], client["client_id"]);
    }
}

backend_tests! {
    clients_are_created_read_listed_changed_and_deleted,
    a_territory_admin_administers_only_its_territorys_clients,
    a_rotated_secret_works_until_the_overlap_ends_and_the_new_one_at_once,
    client_events_carry_their_documented_data,
}
