//! The refresh-token grant (RFC 6749 §6) and token exchange (RFC 8693) at `POST /oauth/token`
//! (SPEC §11): the rotation and reuse rules of SPEC §3 through the OAuth endpoint, and a client
//! allowed to exchange turning a user's access token into a short-lived token for one of its
//! audiences, acting for the user and bound to the user's session.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Row;

use crate::backend_tests;
use crate::clients::{created, db, form};
use crate::support::directory::{claims, patch_as};
use crate::support::{code_of, with_admin, Account, Backend, TestApp};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// `(status, error)` of an RFC 6749 §5.2 answer, which is never cached.
async fn oauth_error(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert!(body["error_description"].is_string(), "{body}");
    (status, body["error"].as_str().unwrap().to_owned())
}

async fn refresh(app: &TestApp, token: &str, extra: &str) -> reqwest::Response {
    form(
        app,
        &format!("grant_type=refresh_token&refresh_token={token}{extra}"),
        None,
    )
    .await
}

async fn refresh_grant_rotates_and_a_reuse_past_the_grace_ends_the_session(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let first = refresh(&app, &alice.refresh_token, "").await;

    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "no-store");
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["expires_in"],
        app.config.auth.access_token_ttl.as_secs()
    );
    assert!(body.get("scope").is_none(), "a session grants no scope");
    let successor = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(successor, alice.refresh_token);
    let access = claims(body["access_token"].as_str().unwrap());
    assert_eq!(access["sub"], alice.user_id);
    assert_eq!(access["sid"], alice.session_id);
    let again = refresh(&app, &alice.refresh_token, "").await;
    assert_eq!(
        again.status(),
        200,
        "a retry inside the grace window (SPEC §3)"
    );
    let retried: Value = again.json().await.unwrap();
    assert_eq!(retried["refresh_token"], successor.as_str());
    app.clock.advance(Duration::from_secs(11));
    assert_eq!(
        oauth_error(refresh(&app, &alice.refresh_token, "").await).await,
        (400, "invalid_grant".into()),
        "reuse past the grace window"
    );
    assert_eq!(
        oauth_error(refresh(&app, &successor, "").await).await,
        (400, "invalid_grant".into()),
        "the reuse ended the session, its live token with it"
    );
    let me = app.get_as("/api/auth/me", &alice.access_token).await;
    assert_eq!(me.status(), 401);
}

async fn refresh_grant_refuses_what_it_cannot_take(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let client = created(&app, &root, &json!({ "name": "web" })).await;
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();
    let alice = app.signed_up("alice").await;

    let missing = form(&app, "grant_type=refresh_token", None).await;
    let unknown = refresh(&app, "not-a-refresh-token", "").await;
    let scoped = refresh(&app, &alice.refresh_token, "&scope=orders:read").await;
    let wrong_client = form(
        &app,
        &format!(
            "grant_type=refresh_token&refresh_token={}",
            alice.refresh_token
        ),
        Some((id, "wrong")),
    )
    .await;

    assert_eq!(oauth_error(missing).await, (400, "invalid_request".into()));
    assert_eq!(oauth_error(unknown).await, (400, "invalid_grant".into()));
    assert_eq!(oauth_error(scoped).await, (400, "invalid_scope".into()));
    assert_eq!(
        oauth_error(wrong_client).await,
        (401, "invalid_client".into())
    );
    let by_client = form(
        &app,
        &format!(
            "grant_type=refresh_token&refresh_token={}",
            alice.refresh_token
        ),
        Some((id, secret)),
    )
    .await;
    assert_eq!(
        by_client.status(),
        200,
        "a client that authenticates may refresh"
    );
    let successor: Value = by_client.json().await.unwrap();
    let named = refresh(
        &app,
        successor["refresh_token"].as_str().unwrap(),
        "&client_id=some-public-client",
    )
    .await;
    assert_eq!(
        named.status(),
        200,
        "a public client naming itself needs no secret"
    );
}

/// An app with an administrator, a client `gateway` allowed to exchange for `orders` and
/// `inventory` (scopes `orders:read`, `orders:write`), and the user alice.
async fn exchange_app(backend: Backend) -> (TestApp, Account, Value, Account) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let client = created(
        &app,
        &root,
        &json!({ "name": "gateway", "scopes": ["orders:read", "orders:write"],
                 "exchange_audiences": ["orders", "inventory"] }),
    )
    .await;
    let alice = app.signed_up("alice").await;
    (app, root, client, alice)
}

/// A token exchange by `client` (client_secret_post) of `subject`; `extra` is appended.
async fn exchange(app: &TestApp, client: &Value, subject: &str, extra: &str) -> reqwest::Response {
    let body = format!(
        "grant_type={TOKEN_EXCHANGE}&client_id={}&client_secret={}&subject_token={subject}\
         &subject_token_type={ACCESS_TOKEN}{extra}",
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap()
    );
    form(app, &body, None).await
}

async fn introspected_active(app: &TestApp, token: &str) -> bool {
    let response = app
        .post_json("/api/auth/introspect", &json!({ "token": token }))
        .await;
    let body: Value = response.json().await.unwrap();
    body["active"].as_bool().unwrap()
}

async fn an_allowed_client_exchanges_a_users_token_for_its_audience(backend: Backend) {
    let (app, root, client, alice) = exchange_app(backend).await;
    let client_id = client["client_id"].as_str().unwrap();

    let response = exchange(&app, &client, &alice.access_token, "&audience=orders").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert!(
        body.get("scope").is_none(),
        "none asked, and alice's token has none"
    );
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    let issued = claims(token);
    assert_eq!(issued["sub"], alice.user_id);
    assert_eq!(issued["aud"], "orders");
    assert_eq!(issued["act"], json!({ "sub": client_id }));
    assert_eq!(issued["sid"], alice.session_id);
    assert_eq!(issued["roles"], json!(["user"]));
    assert_eq!(issued["iss"], app.config.issuer());
    assert_eq!(
        issued["exp"].as_i64().unwrap() - issued["iat"].as_i64().unwrap(),
        300
    );
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert!(
        header.kid.is_some(),
        "signed like every token, verifiable from the JWKS"
    );
    assert!(
        introspected_active(&app, token).await,
        "valid online while the session lives"
    );
    let here = app.get_as("/api/auth/me", token).await;
    assert_eq!(
        here.status(),
        401,
        "another audience's token is no login here"
    );
    let scoped = exchange(
        &app,
        &client,
        &alice.access_token,
        "&audience=inventory&scope=orders:read&requested_token_type=urn:ietf:params:oauth:token-type:access_token",
    )
    .await;
    let scoped: Value = scoped.json().await.unwrap();
    assert_eq!(scoped["scope"], "orders:read");
    assert_eq!(
        claims(scoped["access_token"].as_str().unwrap())["scope"],
        "orders:read"
    );
    let audit = app
        .get_as("/api/audit?action=token_exchanged", &root.access_token)
        .await;
    let audit: Value = audit.json().await.unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    assert_eq!(entries[1]["details"]["client_id"], client_id);
    assert_eq!(entries[1]["details"]["audience"], "orders");
    let mut db = db(&app).await;
    let payloads: Vec<String> = sqlx::query(
        "SELECT CAST(payload AS TEXT) FROM outbox WHERE event_type = 'auth:token.exchanged' ORDER BY seq",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get::<String, _>(0))
    .collect();
    assert_eq!(payloads.len(), 2);
    let event: Value = serde_json::from_str(&payloads[0]).unwrap();
    assert_eq!(
        event["data"],
        json!({ "user_id": alice.user_id, "client_id": client_id, "audience": "orders",
                "jti": issued["jti"] })
    );
    assert!(!payloads[0].contains(token), "never the token");
}

async fn an_exchange_is_refused_to_the_wrong_client_audience_or_subject(backend: Backend) {
    let (app, root, client, alice) = exchange_app(backend).await;
    let plain = created(
        &app,
        &root,
        &json!({ "name": "plain", "scopes": ["orders:read"] }),
    )
    .await;
    let client_token: Value = form(
        &app,
        &format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            plain["client_id"].as_str().unwrap(),
            plain["client_secret"].as_str().unwrap()
        ),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let subject = &alice.access_token;
    let no_auth = format!(
        "grant_type={TOKEN_EXCHANGE}&subject_token={subject}&subject_token_type={ACCESS_TOKEN}&audience=orders"
    );

    let cases = [
        ("a client without exchange audiences", exchange(&app, &plain, subject, "&audience=orders").await, (400, "unauthorized_client")),
        ("an audience not the client's", exchange(&app, &client, subject, "&audience=billing").await, (400, "invalid_target")),
        ("no audience", exchange(&app, &client, subject, "").await, (400, "invalid_request")),
        ("a scope not the client's", exchange(&app, &client, subject, "&audience=orders&scope=admin").await, (400, "invalid_scope")),
        ("a client's token as the subject", exchange(&app, &client, client_token["access_token"].as_str().unwrap(), "&audience=orders").await, (400, "invalid_request")),
        ("a refresh token as the subject", exchange(&app, &client, &alice.refresh_token, "&audience=orders").await, (400, "invalid_request")),
        ("an actor token", exchange(&app, &client, subject, &format!("&audience=orders&actor_token={subject}&actor_token_type={ACCESS_TOKEN}")).await, (400, "invalid_request")),
        ("another requested type", exchange(&app, &client, subject, "&audience=orders&requested_token_type=urn:ietf:params:oauth:token-type:refresh_token").await, (400, "invalid_request")),
        ("no client authentication", form(&app, &no_auth, None).await, (401, "invalid_client")),
    ];
    for (what, response, (status, error)) in cases {
        assert_eq!(
            oauth_error(response).await,
            (status, error.to_owned()),
            "{what}"
        );
    }
    let wrong_type = form(
        &app,
        &format!(
            "grant_type={TOKEN_EXCHANGE}&client_id={}&client_secret={}&subject_token={subject}\
             &subject_token_type=urn:ietf:params:oauth:token-type:id_token&audience=orders",
            client["client_id"].as_str().unwrap(),
            client["client_secret"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(
        oauth_error(wrong_type).await,
        (400, "invalid_request".into())
    );
    let own = patch_as(
        &app,
        &format!("/api/clients/{}", client["client_id"].as_str().unwrap()),
        &root.access_token,
        &json!({ "exchange_audiences": [app.config.auth.audience] }),
    )
    .await;
    assert_eq!(
        own.status(),
        400,
        "this service's own audience is no exchange audience"
    );
    assert_eq!(code_of(own).await, "validation_failed");
}

async fn an_exchanged_token_ends_with_its_session_and_never_outlives_its_subject(backend: Backend) {
    let (app, _root, client, alice) = exchange_app(backend).await;
    let exchanged: Value = exchange(&app, &client, &alice.access_token, "&audience=orders")
        .await
        .json()
        .await
        .unwrap();
    let token = exchanged["access_token"].as_str().unwrap();

    app.clock.advance(Duration::from_secs(14 * 60));
    let late: Value = exchange(&app, &client, &alice.access_token, "&audience=orders")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(
        late["expires_in"], 60,
        "bounded by the subject token's remaining life"
    );
    app.clock.advance(Duration::from_secs(2 * 60));
    assert_eq!(
        oauth_error(exchange(&app, &client, &alice.access_token, "&audience=orders").await).await,
        (400, "invalid_request".into()),
        "an expired subject token"
    );
    let bob = app.signed_up("bob").await;
    let for_bob: Value = exchange(&app, &client, &bob.access_token, "&audience=orders")
        .await
        .json()
        .await
        .unwrap();
    let bobs = for_bob["access_token"].as_str().unwrap();
    assert!(introspected_active(&app, bobs).await);
    let logout = app
        .post_as("/api/auth/logout", &bob.access_token, &json!({}))
        .await;
    assert_eq!(logout.status(), 204);
    assert!(
        !introspected_active(&app, bobs).await,
        "ending the session ends it"
    );
    assert!(!introspected_active(&app, token).await, "expired with time");
    assert_eq!(
        oauth_error(exchange(&app, &client, &bob.access_token, "&audience=orders").await).await,
        (400, "invalid_request".into()),
        "a subject token of an ended session"
    );
}

async fn a_token_exchanged_again_nests_the_actors(backend: Backend) {
    let (app, root, first, alice) = exchange_app(backend).await;
    let second = created(
        &app,
        &root,
        &json!({ "name": "orders-service", "exchange_audiences": ["inventory"] }),
    )
    .await;
    let once: Value = exchange(&app, &first, &alice.access_token, "&audience=orders")
        .await
        .json()
        .await
        .unwrap();

    let twice = exchange(
        &app,
        &second,
        once["access_token"].as_str().unwrap(),
        "&audience=inventory",
    )
    .await;

    assert_eq!(twice.status(), 200);
    let twice: Value = twice.json().await.unwrap();
    let issued = claims(twice["access_token"].as_str().unwrap());
    assert_eq!(issued["sub"], alice.user_id);
    assert_eq!(issued["aud"], "inventory");
    assert_eq!(
        issued["act"],
        json!({ "sub": second["client_id"], "act": { "sub": first["client_id"] } })
    );
}

async fn exchange_audiences_are_set_shown_and_checked(backend: Backend) {
    let (app, root, client, _alice) = exchange_app(backend).await;
    let path = format!("/api/clients/{}", client["client_id"].as_str().unwrap());

    let shown: Value = app
        .get_as(&path, &root.access_token)
        .await
        .json()
        .await
        .unwrap();
    let cleared = patch_as(
        &app,
        &path,
        &root.access_token,
        &json!({ "exchange_audiences": [] }),
    )
    .await;
    let bad = app
        .post_as(
            "/api/clients",
            &root.access_token,
            &json!({ "name": "x", "exchange_audiences": ["has space"] }),
        )
        .await;

    assert_eq!(shown["exchange_audiences"], json!(["inventory", "orders"]));
    assert_eq!(shown["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(cleared.status(), 200);
    let cleared: Value = cleared.json().await.unwrap();
    assert_eq!(cleared["exchange_audiences"], json!([]));
    assert_eq!(bad.status(), 400);
    assert_eq!(code_of(bad).await, "validation_failed");
}

backend_tests! {
    refresh_grant_rotates_and_a_reuse_past_the_grace_ends_the_session,
    refresh_grant_refuses_what_it_cannot_take,
    an_allowed_client_exchanges_a_users_token_for_its_audience,
    an_exchange_is_refused_to_the_wrong_client_audience_or_subject,
    an_exchanged_token_ends_with_its_session_and_never_outlives_its_subject,
    a_token_exchanged_again_nests_the_actors,
    exchange_audiences_are_set_shown_and_checked,
}
