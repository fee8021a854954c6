//! `POST /oauth/token` (SPEC §11, RFC 6749): the client-credentials grant with both client
//! authentications, scope narrowing, every RFC 6749 §5.2 error it can answer, refused inactive
//! and deleted clients, the claims of a client's token, and what the rest of the service makes
//! of such a token.

use auth_service::grpc::pb;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::clients::{created, form, token_basic, token_post};
use crate::support::directory::{claims, patch_as};
use crate::support::{code_of, with_admin, Backend, TestApp};

/// The RFC 6749 §5.2 error of an answer, checked for its shape: JSON, never cached.
pub async fn oauth_error(response: reqwest::Response) -> (u16, String, Option<String>) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    assert!(body["error_description"].is_string(), "{body}");
    let challenge = headers
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned());
    (
        status,
        body["error"].as_str().unwrap().to_owned(),
        challenge,
    )
}

async fn app_with_client(backend: Backend) -> (TestApp, Value) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let client = created(
        &app,
        &root,
        &json!({ "name": "billing", "scopes": ["orders:read", "orders:write"], "roles": ["moderator"] }),
    )
    .await;
    (app, client)
}

async fn both_client_authentications_grant_a_token_with_the_documented_claims(backend: Backend) {
    let (app, client) = app_with_client(backend).await;
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();

    let by_basic = token_basic(&app, id, secret, "").await;
    let by_post = token_post(&app, &client, "&scope=orders:read").await;

    assert_eq!(by_basic.status(), 200);
    assert_eq!(by_basic.headers()["cache-control"], "no-store");
    let basic: Value = by_basic.json().await.unwrap();
    assert_eq!(basic["token_type"], "Bearer");
    assert_eq!(basic["scope"], "orders:read orders:write", "all its scopes");
    assert_eq!(
        basic["expires_in"],
        app.config.auth.access_token_ttl.as_secs()
    );
    assert_eq!(by_post.status(), 200);
    let post: Value = by_post.json().await.unwrap();
    assert_eq!(post["scope"], "orders:read", "narrowed");
    let token = claims(basic["access_token"].as_str().unwrap());
    assert_eq!(token["sub"], id);
    assert_eq!(token["client_id"], id);
    assert_eq!(token["scope"], "orders:read orders:write");
    assert_eq!(token["roles"], json!(["moderator"]));
    assert_eq!(token["iss"], app.config.issuer());
    assert_eq!(token["aud"], app.config.auth.audience);
    assert!(token.get("sid").is_none() && token.get("email").is_none());
    let header = jsonwebtoken::decode_header(basic["access_token"].as_str().unwrap()).unwrap();
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwks["keys"][0]["kid"],
        header.kid.unwrap(),
        "the users' key"
    );
}

async fn every_error_is_an_rfc_6749_error(backend: Backend) {
    let (app, client) = app_with_client(backend).await;
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();
    let post = format!("client_id={id}&client_secret={secret}");
    let json_body = app
        .http
        .post(app.url("/oauth/token"))
        .json(&json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    let unknown = uuid::Uuid::now_v7().to_string();

    let cases = [
        ("a JSON body", json_body),
        (
            "a repeated parameter",
            form(
                &app,
                &format!("grant_type=client_credentials&grant_type=client_credentials&{post}"),
                None,
            )
            .await,
        ),
        (
            "a broken escape",
            form(
                &app,
                &format!("grant_type=client_credentials&scope=%zz&{post}"),
                None,
            )
            .await,
        ),
        ("no grant_type", form(&app, &post, None).await),
        (
            "two authentications",
            form(
                &app,
                &format!("grant_type=client_credentials&{post}"),
                Some((id, secret)),
            )
            .await,
        ),
        (
            "a secret without an id",
            form(
                &app,
                &format!("grant_type=client_credentials&client_secret={secret}"),
                None,
            )
            .await,
        ),
    ];
    for (what, response) in cases {
        assert_eq!(
            oauth_error(response).await,
            (400, "invalid_request".into(), None),
            "{what}"
        );
    }
    let challenge = Some(r#"Basic realm="auth-service", charset="UTF-8""#.to_owned());
    let cases = [
        (
            "unknown client, Basic",
            token_basic(&app, &unknown, secret, "").await,
            &challenge,
        ),
        (
            "wrong secret, Basic",
            token_basic(&app, id, "wrong", "").await,
            &challenge,
        ),
        (
            "not a Basic header",
            app.http
                .post(app.url("/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", "Basic !!!")
                .body("grant_type=client_credentials")
                .send()
                .await
                .unwrap(),
            &challenge,
        ),
        (
            "wrong secret, post",
            form(
                &app,
                &format!("grant_type=client_credentials&client_id={id}&client_secret=wrong"),
                None,
            )
            .await,
            &None,
        ),
        (
            "no authentication",
            form(&app, "grant_type=client_credentials", None).await,
            &None,
        ),
    ];
    for (what, response, expected) in cases {
        assert_eq!(
            oauth_error(response).await,
            (401, "invalid_client".into(), expected.clone()),
            "{what}"
        );
    }
    for (what, scope) in [
        ("not its scope", "admin"),
        ("one of two not its", "orders:read%20admin"),
        ("malformed", "a%22b"),
    ] {
        let response = token_basic(&app, id, secret, &format!("&scope={scope}")).await;
        assert_eq!(
            oauth_error(response).await,
            (400, "invalid_scope".into(), None),
            "{what}"
        );
    }
    for grant in ["password", "implicit", "device_code"] {
        let response = form(&app, &format!("grant_type={grant}&{post}"), None).await;
        assert_eq!(
            oauth_error(response).await,
            (400, "unsupported_grant_type".into(), None),
            "{grant}"
        );
    }
    // The authorization code grant is served (authorize.rs): without a code, a malformed
    // request.
    let no_code = form(&app, &format!("grant_type=authorization_code&{post}"), None).await;
    assert_eq!(
        oauth_error(no_code).await,
        (400, "invalid_request".into(), None)
    );
    let ignored = token_basic(&app, id, secret, "&audience=x&scope=").await;
    assert_eq!(
        ignored.status(),
        200,
        "unknown and empty parameters are ignored (RFC 6749 §3.2)"
    );
}

async fn inactive_and_deleted_clients_are_refused_and_their_tokens_go_inactive(backend: Backend) {
    let (app, client) = app_with_client(backend).await;
    let root = app.admin().await;
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();
    let path = format!("/api/clients/{id}");
    let granted: Value = token_basic(&app, id, secret, "")
        .await
        .json()
        .await
        .unwrap();
    let token = granted["access_token"].as_str().unwrap();
    let introspect = |token: &str| {
        let app = &app;
        let body = json!({ "token": token });
        async move {
            app.post_json("/api/auth/introspect", &body)
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };

    let active = introspect(token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], id);
    assert_eq!(active["scope"], "orders:read orders:write");
    assert!(active.get("sid").is_none());

    let off = patch_as(
        &app,
        &path,
        &root.access_token,
        &json!({ "is_active": false }),
    )
    .await;
    assert_eq!(off.status(), 200);
    assert_eq!(
        oauth_error(token_basic(&app, id, secret, "").await).await.1,
        "invalid_client"
    );
    assert_eq!(introspect(token).await, json!({ "active": false }));

    let on = patch_as(
        &app,
        &path,
        &root.access_token,
        &json!({ "is_active": true }),
    )
    .await;
    assert_eq!(on.status(), 200);
    assert_eq!(introspect(token).await["active"], true);
    assert_eq!(app.delete_as(&path, &root.access_token).await.status(), 204);
    assert_eq!(
        oauth_error(token_post(&app, &client, "").await).await.1,
        "invalid_client"
    );
    assert_eq!(introspect(token).await, json!({ "active": false }));
}

async fn a_client_token_acts_for_no_user_and_validate_token_reports_its_client(backend: Backend) {
    let (app, client) = app_with_client(backend).await;
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();
    let granted: Value = token_basic(&app, id, secret, "&scope=orders:write")
        .await
        .json()
        .await
        .unwrap();
    let token = granted["access_token"].as_str().unwrap();

    let me = app.get_as("/api/auth/me", token).await;
    let admin = app.get_as("/api/clients", token).await;
    let validated = app
        .grpc()
        .await
        .validate_token(pb::ValidateTokenRequest {
            token: token.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();

    assert_eq!(me.status(), 403);
    assert_eq!(code_of(me).await, "user_token_required");
    assert_eq!(code_of(admin).await, "user_token_required");
    assert!(validated.valid, "{validated:?}");
    assert_eq!(validated.client_id, id);
    assert_eq!(validated.scope, "orders:write");
    assert_eq!(validated.user_id, "");
    assert_eq!(validated.roles, ["moderator"]);
}

async fn a_client_is_limited_per_client(backend: Backend) {
    let app = backend
        .app_with(|config| {
            with_admin(config);
            config.limits.token_per_client.max = 2;
        })
        .await;
    let root = app.admin().await;
    let client = created(&app, &root, &json!({ "name": "busy" })).await;
    let other = created(&app, &root, &json!({ "name": "calm" })).await;

    for _ in 0..2 {
        assert_eq!(token_post(&app, &client, "").await.status(), 200);
    }
    let limited = token_post(&app, &client, "").await;

    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(
        token_post(&app, &other, "").await.status(),
        200,
        "per client"
    );
}

backend_tests! {
    both_client_authentications_grant_a_token_with_the_documented_claims,
    every_error_is_an_rfc_6749_error,
    inactive_and_deleted_clients_are_refused_and_their_tokens_go_inactive,
    a_client_token_acts_for_no_user_and_validate_token_reports_its_client,
    a_client_is_limited_per_client,
}
