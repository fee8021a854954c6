//! `private_key_jwt` client authentication at `POST /oauth/token` (RFC 7523 §2.2, SPEC §11):
//! a client registered with an inline JWK Set or a `jwks_uri` proves itself with a signed
//! assertion, once per `jti`; every failure is `invalid_client`, and a client of one method
//! cannot authenticate with the other.

use std::sync::{Arc, Mutex};

use auth_service::config::SigningAlgorithm;
use auth_service::crypto::keys::{self, KeyMaterial};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::clients::{created, form, token_post};
use crate::support::directory::{claims, patch_as};
use crate::support::{code_of, with_admin, Account, Backend, TestApp};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn key(algorithm: SigningAlgorithm) -> KeyMaterial {
    keys::generate(algorithm).unwrap()
}

fn jwks(keys: &[&KeyMaterial]) -> Value {
    json!({ "keys": keys.iter().map(|key| key.public_jwk.clone()).collect::<Vec<_>>() })
}

/// An assertion signed by `key` with these claims (`kid` from the key).
fn signed(key: &KeyMaterial, claims: &Value) -> String {
    let (algorithm, encoding) = match key.algorithm {
        SigningAlgorithm::EdDSA => (Algorithm::EdDSA, EncodingKey::from_ed_der(&key.private_der)),
        SigningAlgorithm::ES256 => (Algorithm::ES256, EncodingKey::from_ec_der(&key.private_der)),
        SigningAlgorithm::RS256 => (
            Algorithm::RS256,
            EncodingKey::from_rsa_der(&key.private_der),
        ),
    };
    let mut header = Header::new(algorithm);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &encoding).unwrap()
}

/// The claims of a good assertion by `client_id` for `app`, at the service's clock.
fn good_claims(app: &TestApp, client_id: &str) -> Value {
    let now = app.clock.now().timestamp();
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": format!("{}/oauth/token", app.config.server.public_url.trim_end_matches('/')),
        "iat": now,
        "exp": now + 60,
        "jti": uuid::Uuid::now_v7().to_string(),
    })
}

async fn with_assertion(app: &TestApp, assertion: &str, extra: &str) -> reqwest::Response {
    let body = format!(
        "grant_type=client_credentials&client_assertion_type={ASSERTION_TYPE}\
         &client_assertion={assertion}{extra}"
    );
    form(app, &body, None).await
}

async fn oauth_error(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn key_client(app: &TestApp, admin: &Account, keys: &Value) -> String {
    let client = created(
        app,
        admin,
        &json!({ "name": "signer", "scopes": ["orders:read"],
                 "token_endpoint_auth_method": "private_key_jwt", "jwks": keys }),
    )
    .await;
    assert!(client.get("client_secret").is_none(), "{client}");
    assert_eq!(client["token_endpoint_auth_method"], "private_key_jwt");
    client["client_id"].as_str().unwrap().to_owned()
}

async fn a_signed_assertion_authenticates_once(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let signer = key(SigningAlgorithm::ES256);
    let id = key_client(&app, &root, &jwks(&[&signer])).await;
    let id = id.as_str();
    let assertion = signed(&signer, &good_claims(&app, id));

    let first = with_assertion(&app, &assertion, "").await;
    let replay = with_assertion(&app, &assertion, "").await;

    assert_eq!(first.status(), 200);
    let token: Value = first.json().await.unwrap();
    assert_eq!(claims(token["access_token"].as_str().unwrap())["sub"], id);
    assert_eq!(
        oauth_error(replay).await,
        (401, "invalid_client".into()),
        "a replayed jti"
    );
    let named = with_assertion(
        &app,
        &signed(&signer, &good_claims(&app, id)),
        &format!("&client_id={id}"),
    )
    .await;
    assert_eq!(named.status(), 200, "client_id may name the issuer");
    let mut issuer_aud = good_claims(&app, id);
    issuer_aud["aud"] = json!([app.config.issuer()]);
    let by_issuer = with_assertion(&app, &signed(&signer, &issuer_aud), "").await;
    assert_eq!(
        by_issuer.status(),
        200,
        "the issuer is an accepted audience"
    );
    let ed = key(SigningAlgorithm::EdDSA);
    let path = format!("/api/clients/{id}");
    let rekeyed = patch_as(
        &app,
        &path,
        &root.access_token,
        &json!({ "jwks": jwks(&[&ed]) }),
    )
    .await;
    assert_eq!(rekeyed.status(), 200);
    let by_ed = with_assertion(&app, &signed(&ed, &good_claims(&app, id)), "").await;
    assert_eq!(by_ed.status(), 200, "EdDSA");
}

async fn every_bad_assertion_is_invalid_client(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let signer = key(SigningAlgorithm::ES256);
    let id = key_client(&app, &root, &jwks(&[&signer])).await;
    let id = id.as_str();
    let other_id = uuid::Uuid::now_v7().to_string();
    let change = |name: &str, value: Value| {
        let mut claims = good_claims(&app, id);
        claims[name] = value;
        claims
    };
    let now = app.clock.now().timestamp();
    let mut impostor = key(SigningAlgorithm::ES256);
    impostor.kid = signer.kid.clone();
    let mut no_jti = good_claims(&app, id);
    no_jti.as_object_mut().unwrap().remove("jti");

    let cases = [
        (
            "expired",
            signed(&signer, &change("exp", json!(now - 60))),
            "",
        ),
        (
            "exp too far ahead",
            signed(&signer, &change("exp", json!(now + 3600))),
            "",
        ),
        (
            "wrong aud",
            signed(
                &signer,
                &change("aud", json!("https://elsewhere/oauth/token")),
            ),
            "",
        ),
        (
            "another client as iss",
            signed(&signer, &change("iss", json!(other_id))),
            "",
        ),
        (
            "sub not the client",
            signed(&signer, &change("sub", json!(other_id))),
            "",
        ),
        ("no jti", signed(&signer, &no_jti), ""),
        (
            "wrong key, same kid",
            signed(&impostor, &good_claims(&app, id)),
            "",
        ),
        (
            "client_id not the iss",
            signed(&signer, &good_claims(&app, id)),
            "&client_id=00000000-0000-7000-8000-000000000000",
        ),
        ("garbage", "a.b.c".to_owned(), &format!("&client_id={id}")),
    ];
    for (what, assertion, extra) in cases {
        assert_eq!(
            oauth_error(with_assertion(&app, &assertion, extra).await).await,
            (401, "invalid_client".into()),
            "{what}"
        );
    }
    let oversized = with_assertion(&app, &"a".repeat(9 * 1024), "").await;
    assert_eq!(
        oauth_error(oversized).await,
        (400, "invalid_request".into())
    );
    let wrong_type = form(
        &app,
        &format!(
            "grant_type=client_credentials&client_assertion_type=urn:x&client_assertion={}",
            signed(&signer, &good_claims(&app, id))
        ),
        None,
    )
    .await;
    assert_eq!(
        oauth_error(wrong_type).await,
        (400, "invalid_request".into())
    );
    let good = with_assertion(&app, &signed(&signer, &good_claims(&app, id)), "").await;
    assert_eq!(good.status(), 200, "the failures changed nothing");
}

async fn a_client_uses_only_its_own_method(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let signer = key(SigningAlgorithm::ES256);
    let secret_client = created(&app, &root, &json!({ "name": "secret" })).await;
    let secret_id = secret_client["client_id"].as_str().unwrap();
    let path = format!("/api/clients/{secret_id}");

    let assertion_of_secret_client =
        with_assertion(&app, &signed(&signer, &good_claims(&app, secret_id)), "").await;
    let moved = patch_as(
        &app,
        &path,
        &root.access_token,
        &json!({ "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks(&[&signer]) }),
    )
    .await;
    let old_secret = token_post(&app, &secret_client, "").await;
    let rotation = app
        .post_as(&format!("{path}/secret"), &root.access_token, &json!({}))
        .await;

    assert_eq!(
        oauth_error(assertion_of_secret_client).await,
        (401, "invalid_client".into()),
        "a secret client has no keys"
    );
    assert_eq!(moved.status(), 200);
    assert_eq!(
        oauth_error(old_secret).await,
        (401, "invalid_client".into()),
        "a private_key_jwt client's secret stops at once"
    );
    assert_eq!(
        rotation.status(),
        400,
        "a private_key_jwt client gets no secret"
    );
    let by_key = with_assertion(&app, &signed(&signer, &good_claims(&app, secret_id)), "").await;
    assert_eq!(by_key.status(), 200);
    let mixed = form(
        &app,
        &format!(
            "grant_type=client_credentials&client_assertion_type={ASSERTION_TYPE}&client_assertion={}",
            signed(&signer, &good_claims(&app, secret_id))
        ),
        Some((secret_id, "anything")),
    )
    .await;
    assert_eq!(
        oauth_error(mixed).await,
        (400, "invalid_request".into()),
        "two methods at once"
    );
}

async fn client_keys_are_checked_when_set(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let signer = key(SigningAlgorithm::ES256);
    let bad = [
        (
            "no keys",
            json!({ "token_endpoint_auth_method": "private_key_jwt" }),
        ),
        (
            "both",
            json!({ "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks(&[&signer]), "jwks_uri": "https://keys.example/jwks" }),
        ),
        (
            "keys on a secret client",
            json!({ "jwks": jwks(&[&signer]) }),
        ),
        (
            "plain http elsewhere",
            json!({ "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://keys.example/jwks" }),
        ),
        (
            "a symmetric key",
            json!({ "token_endpoint_auth_method": "private_key_jwt", "jwks": { "keys": [{ "kty": "oct", "k": "c2VjcmV0" }] } }),
        ),
        (
            "not a set",
            json!({ "token_endpoint_auth_method": "private_key_jwt", "jwks": { "x": 1 } }),
        ),
        (
            "an unknown method",
            json!({ "token_endpoint_auth_method": "tls_client_auth" }),
        ),
    ];
    for (what, mut body) in bad {
        body["name"] = json!("keys");
        let response = app.post_as("/api/clients", &root.access_token, &body).await;
        assert_eq!(response.status(), 400, "{what}");
        assert_eq!(code_of(response).await, "validation_failed", "{what}");
    }
    let loopback = app
        .post_as(
            "/api/clients",
            &root.access_token,
            &json!({ "name": "local", "token_endpoint_auth_method": "private_key_jwt",
                     "jwks_uri": "http://127.0.0.1:1/jwks" }),
        )
        .await;
    assert_eq!(loopback.status(), 201, "http on a loopback address");
    let shown: Value = loopback.json().await.unwrap();
    assert_eq!(shown["jwks_uri"], "http://127.0.0.1:1/jwks");
}

/// A JWKS server on port 0: answers the set in `keys`, counting the fetches.
async fn jwks_server(keys: Arc<Mutex<Value>>, fetches: Arc<Mutex<u32>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let keys = keys.clone();
            let fetches = fetches.clone();
            async move {
                *fetches.lock().unwrap() += 1;
                let set = keys.lock().unwrap().clone();
                axum::Json(set)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}/jwks")
}

async fn a_jwks_uri_is_cached_and_refetched_for_an_unknown_kid_past_the_floor(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let first = key(SigningAlgorithm::ES256);
    let second = key(SigningAlgorithm::EdDSA);
    let served = Arc::new(Mutex::new(jwks(&[&first])));
    let fetches = Arc::new(Mutex::new(0));
    let uri = jwks_server(served.clone(), fetches.clone()).await;
    let client = created(
        &app,
        &root,
        &json!({ "name": "remote", "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri }),
    )
    .await;
    let id = client["client_id"].as_str().unwrap();

    let by_first = with_assertion(&app, &signed(&first, &good_claims(&app, id)), "").await;
    let again = with_assertion(&app, &signed(&first, &good_claims(&app, id)), "").await;
    *served.lock().unwrap() = jwks(&[&second]);
    let too_soon = with_assertion(&app, &signed(&second, &good_claims(&app, id)), "").await;
    let fetched_before_floor = *fetches.lock().unwrap();
    app.clock.advance(std::time::Duration::from_secs(11));
    let by_second = with_assertion(&app, &signed(&second, &good_claims(&app, id)), "").await;

    assert_eq!(by_first.status(), 200);
    assert_eq!(again.status(), 200);
    assert_eq!(oauth_error(too_soon).await, (401, "invalid_client".into()));
    assert_eq!(
        fetched_before_floor, 1,
        "cached; an unknown kid within the floor fetches nothing"
    );
    assert_eq!(
        by_second.status(),
        200,
        "an unknown kid past the floor refetches"
    );
    assert_eq!(*fetches.lock().unwrap(), 2);
}

backend_tests! {
    a_signed_assertion_authenticates_once,
    every_bad_assertion_is_invalid_client,
    a_client_uses_only_its_own_method,
    client_keys_are_checked_when_set,
    a_jwks_uri_is_cached_and_refetched_for_an_unknown_kid_past_the_floor,
}
