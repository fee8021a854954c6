//! `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009), SPEC §11: what
//! introspection tells of each kind of token and of tokens that are not active, who may ask,
//! what revoking each kind ends (and where: the JSON introspection, refresh, the session list,
//! gRPC, another replica), every RFC error, and that a refused request changes nothing.

use std::time::Duration;

use auth_service::grpc::pb;
use serde_json::{json, Value};
use sqlx::Row;

use crate::backend_tests;
use crate::clients::{created, db, token_basic};
use crate::oauth::oauth_error;
use crate::support::directory::patch_as;
use crate::support::{with_admin, Account, Backend, TestApp};

/// A form POST to `path` with `body`, with HTTP Basic when given.
async fn post_form(
    app: &TestApp,
    path: &str,
    body: &str,
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let request = app
        .http
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    let request = match basic {
        Some((id, secret)) => request.basic_auth(id, Some(secret)),
        None => request,
    };
    request.send().await.unwrap()
}

/// A client's id and secret.
fn id_secret(client: &Value) -> (&str, &str) {
    (
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
    )
}

/// `/oauth/introspect` as `client` (HTTP Basic): the answer, checked to be JSON and unstored.
async fn introspect(app: &TestApp, client: &Value, token: &str, extra: &str) -> Value {
    let response = post_form(
        app,
        "/oauth/introspect",
        &format!("token={token}{extra}"),
        Some(id_secret(client)),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

/// `/oauth/revoke`, anonymously or as `client`: 200 with an empty body, never stored.
async fn revoke(app: &TestApp, client: Option<&Value>, body: &str) {
    let response = post_form(app, "/oauth/revoke", body, client.map(id_secret)).await;
    assert_eq!(response.status(), 200, "revoking: {body}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.text().await.unwrap(), "");
}

/// What `/api/auth/introspect` (JSON, anonymous) says of an access token.
async fn json_active(app: &TestApp, token: &str) -> bool {
    let answer: Value = app
        .post_json("/api/auth/introspect", &json!({ "token": token }))
        .await
        .json()
        .await
        .unwrap();
    answer["active"].as_bool().unwrap()
}

/// A client's access token (client credentials, HTTP Basic).
async fn client_token(app: &TestApp, client: &Value) -> String {
    let (id, secret) = id_secret(client);
    let granted: Value = token_basic(app, id, secret, "").await.json().await.unwrap();
    granted["access_token"].as_str().unwrap().to_owned()
}

/// An app with an administrator and one client, `billing`, which resource servers use.
async fn app_with_client(backend: Backend) -> (TestApp, Value) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let client = created(
        &app,
        &root,
        &json!({ "name": "billing", "scopes": ["orders:read"], "roles": ["moderator"] }),
    )
    .await;
    (app, client)
}

async fn session_count(app: &TestApp, account: &Account) -> usize {
    let sessions: Value = app
        .get_as("/api/auth/sessions", &account.access_token)
        .await
        .json()
        .await
        .unwrap();
    sessions["sessions"].as_array().unwrap().len()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(&mut db(app).await)
        .await
        .unwrap()
        .get::<i64, _>(0)
}

async fn introspection_tells_what_each_kind_of_active_token_is(backend: Backend) {
    let (app, resource_server) = app_with_client(backend).await;
    let alice = app.signed_up("alice").await;
    let service = client_token(&app, &resource_server).await;
    let (service_id, _) = id_secret(&resource_server);

    let user = introspect(&app, &resource_server, &alice.access_token, "").await;
    let client = introspect(&app, &resource_server, &service, "").await;
    let refresh = introspect(&app, &resource_server, &alice.refresh_token, "").await;

    assert_eq!(user["active"], true);
    assert_eq!(user["token_type"], "Bearer");
    assert_eq!(user["sub"], alice.user_id);
    assert_eq!(user["sid"], alice.session_id);
    assert_eq!(user["username"], "alice");
    assert_eq!(user["roles"], json!(["user"]));
    assert_eq!(user["iss"], app.config.issuer());
    assert_eq!(user["aud"], app.config.auth.audience);
    for claim in ["exp", "iat", "nbf"] {
        assert!(user[claim].is_i64(), "{claim}: {user}");
    }
    assert!(user["jti"].is_string() && user.get("client_id").is_none());
    assert_eq!(client["active"], true);
    assert_eq!(client["token_type"], "Bearer");
    assert_eq!(client["client_id"], service_id);
    assert_eq!(client["sub"], service_id);
    assert_eq!(client["scope"], "orders:read");
    assert_eq!(client["roles"], json!(["moderator"]));
    assert!(client["jti"].is_string() && client.get("sid").is_none());
    let mut keys: Vec<&str> = refresh
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "active",
            "exp",
            "iat",
            "iss",
            "sid",
            "sub",
            "token_type",
            "username"
        ],
        "a refresh token answers its user, session and life, no hash: {refresh}"
    );
    assert_eq!(refresh["token_type"], "refresh_token");
    assert_eq!(refresh["sub"], alice.user_id);
    assert_eq!(refresh["sid"], alice.session_id);
    let ttl = i64::try_from(app.config.auth.refresh_token_ttl.as_secs()).unwrap();
    assert_eq!(
        refresh["exp"].as_i64().unwrap() - refresh["iat"].as_i64().unwrap(),
        ttl
    );
    // A hint only orders the search (RFC 7662 §2.1); one this server does not know is ignored.
    for (token, hint) in [
        (&alice.access_token, "refresh_token"),
        (&alice.refresh_token, "access_token"),
        (&alice.refresh_token, "refresh_token"),
        (&service, "id_token"),
    ] {
        let answer = introspect(
            &app,
            &resource_server,
            token,
            &format!("&token_type_hint={hint}"),
        )
        .await;
        assert_eq!(answer["active"], true, "hint {hint}");
    }
}

async fn introspection_is_inactive_for_garbage_expired_spent_and_ended_tokens(backend: Backend) {
    let (app, resource_server) = app_with_client(backend).await;
    let alice = app.signed_up("alice").await;
    let ended = app.logged_in(&alice).await;
    let inactive = json!({ "active": false });
    let mut tampered = alice.access_token.clone();
    tampered.pop();
    tampered.push(if alice.access_token.ends_with('A') {
        'B'
    } else {
        'A'
    });
    let long = "a".repeat(10_000);
    let ask = format!("ask_{}_abc123", "x".repeat(32));

    for garbage in ["garbage", "a.b.c", &tampered, &ask, &long] {
        assert_eq!(
            introspect(&app, &resource_server, garbage, "").await,
            inactive,
            "{garbage:.40}"
        );
    }

    let path = format!("/api/auth/sessions/{}", ended.session_id);
    assert_eq!(
        app.delete_as(&path, &alice.access_token).await.status(),
        204
    );
    for token in [&ended.access_token, &ended.refresh_token] {
        assert_eq!(
            introspect(&app, &resource_server, token, "").await,
            inactive,
            "ended session"
        );
    }
    let refreshed: Value = app
        .refresh(&alice.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    let successor = refreshed["refresh_token"].as_str().unwrap();
    assert_eq!(
        introspect(&app, &resource_server, &alice.refresh_token, "").await,
        inactive,
        "a spent refresh token, even inside the grace window"
    );
    assert_eq!(
        introspect(&app, &resource_server, successor, "").await["active"],
        true
    );

    app.clock.advance(Duration::from_secs(16 * 60));
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        introspect(&app, &resource_server, access, "").await,
        inactive,
        "expired"
    );
    assert_eq!(
        introspect(&app, &resource_server, successor, "").await["active"],
        true,
        "the refresh token outlives the access token"
    );
    app.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(
        introspect(&app, &resource_server, successor, "").await,
        inactive,
        "the session went idle"
    );
}

async fn introspection_needs_an_authenticated_active_client(backend: Backend) {
    let (app, resource_server) = app_with_client(backend).await;
    let root = app.admin().await;
    let alice = app.signed_up("alice").await;
    let (id, secret) = id_secret(&resource_server);
    let token = format!("token={}", alice.access_token);
    let challenge = Some(r#"Basic realm="auth-service", charset="UTF-8""#.to_owned());
    let plain = created(&app, &root, &json!({ "name": "no scopes at all" })).await;

    let cases = [
        (
            "none",
            post_form(&app, "/oauth/introspect", &token, None).await,
            None,
        ),
        (
            "client_id alone",
            post_form(
                &app,
                "/oauth/introspect",
                &format!("{token}&client_id={id}"),
                None,
            )
            .await,
            None,
        ),
        (
            "wrong secret, post",
            post_form(
                &app,
                "/oauth/introspect",
                &format!("{token}&client_id={id}&client_secret=wrong"),
                None,
            )
            .await,
            None,
        ),
        (
            "wrong secret, Basic",
            post_form(&app, "/oauth/introspect", &token, Some((id, "wrong"))).await,
            challenge.clone(),
        ),
        (
            "a bearer token",
            app.http
                .post(app.url("/oauth/introspect"))
                .header("content-type", "application/x-www-form-urlencoded")
                .bearer_auth(&alice.access_token)
                .body(token.clone())
                .send()
                .await
                .unwrap(),
            challenge.clone(),
        ),
    ];
    for (what, response, expected) in cases {
        assert_eq!(
            oauth_error(response).await,
            (401, "invalid_client".into(), expected),
            "{what}"
        );
    }
    let path = format!("/api/clients/{id}");
    let off = patch_as(
        &app,
        &path,
        &root.access_token,
        &json!({ "is_active": false }),
    )
    .await;
    assert_eq!(off.status(), 200);
    let response = post_form(&app, "/oauth/introspect", &token, Some((id, secret))).await;
    assert_eq!(
        oauth_error(response).await.1,
        "invalid_client",
        "an inactive client"
    );
    let by_post = post_form(
        &app,
        "/oauth/introspect",
        &format!(
            "{token}&client_id={}&client_secret={}",
            plain["client_id"].as_str().unwrap(),
            plain["client_secret"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(by_post.status(), 200);
    let answer: Value = by_post.json().await.unwrap();
    assert_eq!(
        answer["active"], true,
        "any active client may introspect, without a scope for it"
    );
}

async fn malformed_requests_are_rfc_errors_and_change_nothing(backend: Backend) {
    let (app, client) = app_with_client(backend).await;
    let alice = app.signed_up("alice").await;
    let (id, secret) = id_secret(&client);
    let token = format!("token={}", alice.refresh_token);

    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let json_body = app
            .http
            .post(app.url(path))
            .basic_auth(id, Some(secret))
            .json(&json!({ "token": alice.refresh_token }))
            .send()
            .await
            .unwrap();
        let cases = [
            ("a JSON body", json_body),
            (
                "no token",
                post_form(
                    &app,
                    path,
                    "token_type_hint=refresh_token",
                    Some((id, secret)),
                )
                .await,
            ),
            (
                "a repeated token",
                post_form(&app, path, &format!("{token}&{token}"), Some((id, secret))).await,
            ),
            (
                "a broken escape",
                post_form(&app, path, &format!("{token}%zz"), Some((id, secret))).await,
            ),
            (
                "two authentications",
                post_form(
                    &app,
                    path,
                    &format!("{token}&client_id={id}&client_secret={secret}"),
                    Some((id, secret)),
                )
                .await,
            ),
            (
                "a secret without an id",
                post_form(&app, path, &format!("{token}&client_secret={secret}"), None).await,
            ),
        ];
        for (what, response) in cases {
            assert_eq!(
                oauth_error(response).await,
                (400, "invalid_request".into(), None),
                "{path}: {what}"
            );
        }
    }
    let unknown_hint = post_form(
        &app,
        "/oauth/revoke",
        &format!("{token}&token_type_hint=id_token"),
        None,
    )
    .await;
    assert_eq!(
        oauth_error(unknown_hint).await,
        (400, "unsupported_token_type".into(), None)
    );
    let wrong_basic = post_form(&app, "/oauth/revoke", &token, Some((id, "wrong"))).await;
    assert_eq!(oauth_error(wrong_basic).await.0, 401);
    let wrong_post = post_form(
        &app,
        "/oauth/revoke",
        &format!("{token}&client_id={id}&client_secret=wrong"),
        None,
    )
    .await;
    assert_eq!(oauth_error(wrong_post).await.1, "invalid_client");

    assert_eq!(
        app.refresh(&alice.refresh_token).await.status(),
        200,
        "the session lives"
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox WHERE event_type = 'auth:user.logout'"
        )
        .await,
        0
    );
}

async fn revoking_a_refresh_token_ends_its_session(backend: Backend) {
    let (app, resource_server) = app_with_client(backend).await;
    let alice = app.signed_up("alice").await;
    let phone = app.logged_in(&alice).await;
    assert_eq!(session_count(&app, &alice).await, 2);

    revoke(
        &app,
        None,
        &format!(
            "token={}&token_type_hint=refresh_token",
            phone.refresh_token
        ),
    )
    .await;

    assert_eq!(app.refresh(&phone.refresh_token).await.status(), 401);
    assert!(!json_active(&app, &phone.access_token).await);
    assert_eq!(
        introspect(&app, &resource_server, &phone.access_token, "").await,
        json!({ "active": false })
    );
    assert_eq!(
        app.get_as("/api/auth/me", &phone.access_token)
            .await
            .status(),
        401
    );
    assert_eq!(
        session_count(&app, &alice).await,
        1,
        "the other session goes on"
    );
    assert!(json_active(&app, &alice.access_token).await);
    let logouts = "SELECT count(*) FROM outbox WHERE event_type = 'auth:user.logout'";
    assert_eq!(count(&app, logouts).await, 1, "a logout, with its event");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = 'logout'"
        )
        .await,
        1
    );

    revoke(&app, None, &format!("token={}", phone.refresh_token)).await;
    revoke(&app, None, "token=never-issued-token").await;
    assert_eq!(
        count(&app, logouts).await,
        1,
        "an invalid token changes nothing"
    );
}

async fn revoking_a_spent_refresh_token_still_ends_the_session(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let refreshed: Value = app
        .refresh(&alice.refresh_token)
        .await
        .json()
        .await
        .unwrap();

    revoke(&app, None, &format!("token={}", alice.refresh_token)).await;

    let successor = refreshed["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh(successor).await.status(), 401);
    assert!(!json_active(&app, refreshed["access_token"].as_str().unwrap()).await);
}

async fn revoking_a_users_access_token_ends_its_session(backend: Backend) {
    let (app, resource_server) = app_with_client(backend).await;
    let alice = app.signed_up("alice").await;
    let laptop = app.logged_in(&alice).await;

    // An authenticated client may revoke a user's token too; a wrong hint is only a hint.
    revoke(
        &app,
        Some(&resource_server),
        &format!(
            "token={}&token_type_hint=refresh_token",
            laptop.access_token
        ),
    )
    .await;

    assert_eq!(
        app.get_as("/api/auth/me", &laptop.access_token)
            .await
            .status(),
        401
    );
    assert_eq!(app.refresh(&laptop.refresh_token).await.status(), 401);
    assert!(!json_active(&app, &laptop.access_token).await);
    let validated = app
        .grpc()
        .await
        .validate_token(pb::ValidateTokenRequest {
            token: laptop.access_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!validated.valid);
    assert_eq!(validated.reason, "session_ended");
    assert_eq!(session_count(&app, &alice).await, 1);
}

async fn a_client_revokes_its_own_token_on_every_replica(backend: Backend) {
    let (app, owner) = app_with_client(backend).await;
    let root = app.admin().await;
    let other = created(&app, &root, &json!({ "name": "other" })).await;
    let replica = app.beside(|_| {}).await;
    let token = client_token(&app, &owner).await;
    let body = format!("token={token}");
    assert!(json_active(&replica, &token).await);

    let by_other = post_form(&app, "/oauth/revoke", &body, Some(id_secret(&other))).await;
    let anonymous = post_form(&app, "/oauth/revoke", &body, None).await;

    assert_eq!(
        oauth_error(by_other).await,
        (400, "unauthorized_client".into(), None),
        "RFC 7009 §2.1: only the token's own client"
    );
    assert_eq!(
        oauth_error(anonymous).await,
        (401, "invalid_client".into(), None)
    );
    assert!(json_active(&app, &token).await, "refusals change nothing");

    revoke(
        &app,
        Some(&owner),
        &format!("{body}&token_type_hint=access_token"),
    )
    .await;

    assert!(!json_active(&app, &token).await);
    assert!(
        !json_active(&replica, &token).await,
        "the other replica refuses it too"
    );
    assert_eq!(
        introspect(&replica, &other, &token, "").await,
        json!({ "active": false })
    );
    let validated = replica
        .grpc()
        .await
        .validate_token(pb::ValidateTokenRequest {
            token: token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!validated.valid);
    assert_eq!(validated.reason, "token_revoked");
    let fresh = client_token(&replica, &owner).await;
    assert!(json_active(&replica, &fresh).await, "only that token");
    revoke(&replica, Some(&owner), &body).await;
    assert_eq!(count(&app, "SELECT count(*) FROM revoked_tokens").await, 1);
    let audited = "SELECT count(*) FROM audit_log WHERE action = 'client_token_revoked' \
                   AND target_type = 'client'";
    assert_eq!(count(&app, audited).await, 1, "audited once");
}

async fn expired_revocations_are_swept_by_the_next_one(backend: Backend) {
    let (app, client) = app_with_client(backend).await;
    let first = client_token(&app, &client).await;
    revoke(&app, Some(&client), &format!("token={first}")).await;
    assert_eq!(count(&app, "SELECT count(*) FROM revoked_tokens").await, 1);

    app.clock.advance(Duration::from_secs(16 * 60));
    let second = client_token(&app, &client).await;
    revoke(&app, Some(&client), &format!("token={second}")).await;

    assert_eq!(
        count(&app, "SELECT count(*) FROM revoked_tokens").await,
        1,
        "the expired token's row is gone"
    );
    assert!(!json_active(&app, &second).await);
}

async fn introspection_and_revocation_are_rate_limited(backend: Backend) {
    let app = backend
        .app_with(|config| {
            with_admin(config);
            config.limits.introspect_per_client.max = 2;
            config.limits.revoke_per_ip.max = 2;
        })
        .await;
    let root = app.admin().await;
    let busy = created(&app, &root, &json!({ "name": "busy" })).await;
    let calm = created(&app, &root, &json!({ "name": "calm" })).await;

    for _ in 0..2 {
        introspect(&app, &busy, "x", "").await;
        revoke(&app, None, "token=x").await;
    }
    let introspected =
        post_form(&app, "/oauth/introspect", "token=x", Some(id_secret(&busy))).await;
    let revoked = post_form(&app, "/oauth/revoke", "token=x", None).await;

    for response in [introspected, revoked] {
        assert_eq!(response.status(), 429);
        assert!(response.headers().contains_key("retry-after"));
    }
    introspect(&app, &calm, "x", "").await;
    revoke(&app, Some(&calm), "token=x").await;
}

/// An API key (SPEC §11) is a token of its own kind at both endpoints: introspection says
/// whom it acts for; its holder revokes it, but no other client may revoke a client's key.
async fn api_keys_are_introspected_and_revoked_at_the_oauth_endpoints(backend: Backend) {
    let (app, billing) = app_with_client(backend).await;
    let root = app.admin().await;
    let other = created(&app, &root, &json!({ "name": "other" })).await;
    let alice = app.signed_up("alice").await;
    let mine = json!({ "name": "cli", "scopes": ["orders:read"] });
    let created_key: Value = app
        .post_as("/api/auth/api-keys", &alice.access_token, &mine)
        .await
        .json()
        .await
        .unwrap();
    let user_key = created_key["key"].as_str().unwrap();
    let path = format!(
        "/api/clients/{}/api-keys",
        billing["client_id"].as_str().unwrap()
    );
    let theirs = json!({ "name": "nightly", "scopes": ["orders:read"] });
    let client_key: Value = app
        .post_as(&path, &root.access_token, &theirs)
        .await
        .json()
        .await
        .unwrap();
    let client_key = client_key["key"].as_str().unwrap();

    let answer = introspect(&app, &other, user_key, "&token_type_hint=refresh_token").await;

    assert_eq!(answer["active"], true, "a hint only orders the search");
    assert_eq!(answer["token_type"], "api_key");
    assert_eq!(answer["sub"], alice.user_id.as_str());
    assert_eq!(answer["username"], "alice");
    assert_eq!(answer["scope"], "orders:read");
    assert_eq!(answer["jti"], created_key["id"]);
    let answer = introspect(&app, &other, client_key, "").await;
    assert_eq!(answer["client_id"], billing["client_id"]);
    assert_eq!(answer["sub"], billing["client_id"]);

    let by_other = post_form(
        &app,
        "/oauth/revoke",
        &format!("token={client_key}"),
        Some(id_secret(&other)),
    )
    .await;
    assert_eq!(
        oauth_error(by_other).await,
        (400, "unauthorized_client".into(), None),
        "another client may not end a client's key"
    );
    assert!(
        json_active(&app, client_key).await,
        "refusals change nothing"
    );

    revoke(&app, None, &format!("token={user_key}")).await;
    revoke(&app, Some(&billing), &format!("token={client_key}")).await;
    revoke(&app, None, &format!("token={user_key}")).await;

    for key in [user_key, client_key] {
        assert!(!json_active(&app, key).await);
        assert_eq!(
            introspect(&app, &other, key, "").await,
            json!({ "active": false })
        );
    }
    let keys = "SELECT count(*) FROM api_keys";
    assert_eq!(count(&app, keys).await, 0, "both keys are gone");
    let audited = "SELECT count(*) FROM audit_log WHERE action = 'api_key_revoked'";
    assert_eq!(count(&app, audited).await, 2, "each revoked once");
}

backend_tests! {
    api_keys_are_introspected_and_revoked_at_the_oauth_endpoints,
    introspection_tells_what_each_kind_of_active_token_is,
    introspection_is_inactive_for_garbage_expired_spent_and_ended_tokens,
    introspection_needs_an_authenticated_active_client,
    malformed_requests_are_rfc_errors_and_change_nothing,
    revoking_a_refresh_token_ends_its_session,
    revoking_a_spent_refresh_token_still_ends_the_session,
    revoking_a_users_access_token_ends_its_session,
    a_client_revokes_its_own_token_on_every_replica,
    expired_revocations_are_swept_by_the_next_one,
    introspection_and_revocation_are_rate_limited,
}
