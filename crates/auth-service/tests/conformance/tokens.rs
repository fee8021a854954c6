//! Access-token verification (SPEC §3): every forged, altered, stale or orphaned token is
//! refused by `/api/auth/me` (401) and reported inactive by `/api/auth/introspect`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::backend_tests;
use crate::support::forge::{
    active_key, claims_for, hs256_with_public_key, revoke_key, sign_with_key, signed_by_a_stranger,
    tampered, unsigned,
};
use crate::support::{code_of, Account, Backend, TestApp};

async fn introspect(app: &TestApp, token: &str) -> (u16, Value) {
    let response = app
        .post_json("/api/auth/introspect", &json!({ "token": token }))
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// `/me` answers 401 with a Bearer challenge, and introspection answers `{"active": false}`.
async fn assert_refused(app: &TestApp, token: &str, what: &str) {
    let me = app.get_as("/api/auth/me", token).await;
    let (status, body) = introspect(app, token).await;

    assert_eq!(me.status(), 401, "/me accepted {what}");
    assert_eq!(me.headers()["www-authenticate"], "Bearer", "{what}");
    assert_eq!(code_of(me).await, "unauthorized", "{what}");
    assert_eq!(status, 200, "introspection of {what}");
    assert_eq!(body, json!({ "active": false }), "introspection of {what}");
}

async fn assert_accepted(app: &TestApp, token: &str, account: &Account) {
    let me = app.get_as("/api/auth/me", token).await;
    let (status, body) = introspect(app, token).await;

    assert_eq!(me.status(), 200);
    assert_eq!(status, 200);
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["sub"], account.user_id.as_str(), "{body}");
    assert_eq!(body["sid"], account.session_id.as_str(), "{body}");
    assert_eq!(body["username"], account.username.as_str(), "{body}");
    assert_eq!(body["roles"], json!(["user"]), "{body}");
    let (exp, iat) = (body["exp"].as_i64().unwrap(), body["iat"].as_i64().unwrap());
    assert_eq!(exp - iat, 900, "{body}");
}

async fn a_genuine_token_is_accepted_and_introspected_as_active(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let token = alice.access_token.clone();

    assert_accepted(&app, &token, &alice).await;
}

async fn an_alg_none_token_is_refused(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let key = active_key(&app).await;

    let unsigned = unsigned(&key, &claims_for(&app, &alice, 0));

    assert_refused(&app, &unsigned, "an alg:none token").await;
}

async fn an_hs256_token_keyed_with_the_public_key_is_refused(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let key = active_key(&app).await;

    let [with_raw, with_jwk] = hs256_with_public_key(&key, &claims_for(&app, &alice, 0));

    assert_refused(&app, &with_raw, "HS256 keyed with the raw public key").await;
    assert_refused(&app, &with_jwk, "HS256 keyed with the public JWK text").await;
}

async fn a_token_with_a_tampered_payload_is_refused(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let tampered = tampered(&alice.access_token);

    assert_refused(&app, &tampered, "a token whose roles were changed to admin").await;
}

async fn an_expired_token_is_refused(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    // Past the 15-minute lifetime and its leeway, but inside the 30-minute idle timeout.
    app.clock.advance(Duration::from_secs(16 * 60));

    assert_refused(&app, &alice.access_token, "a token 16 minutes old").await;
}

async fn a_token_not_yet_valid_is_refused(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let key = active_key(&app).await;

    let early = sign_with_key(&key, &claims_for(&app, &alice, 5 * 60));

    assert_refused(&app, &early, "a token valid from 5 minutes on").await;
}

async fn a_token_crafted_with_the_real_key_and_claims_is_accepted(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let key = active_key(&app).await;

    let crafted = sign_with_key(&key, &claims_for(&app, &alice, 0));

    assert_accepted(&app, &crafted, &alice).await;
}

async fn a_token_for_another_issuer_or_audience_is_refused(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let key = active_key(&app).await;
    let mut wrong_iss = claims_for(&app, &alice, 0);
    let mut wrong_aud = claims_for(&app, &alice, 0);

    wrong_iss["iss"] = json!("https://evil.example");
    wrong_aud["aud"] = json!("another-service");

    assert_refused(
        &app,
        &sign_with_key(&key, &wrong_iss),
        "a token from another issuer",
    )
    .await;
    assert_refused(
        &app,
        &sign_with_key(&key, &wrong_aud),
        "a token for another audience",
    )
    .await;
}

async fn a_token_signed_by_an_unknown_key_is_refused(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let forged = signed_by_a_stranger(&claims_for(&app, &alice, 0));

    assert_refused(&app, &forged, "a token naming an unknown kid").await;
}

async fn a_token_signed_by_a_revoked_key_is_refused(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let key = active_key(&app).await;

    revoke_key(&app, &key.kid).await;

    assert_refused(&app, &alice.access_token, "a token signed by a revoked key").await;
}

async fn a_token_is_refused_after_logout(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let logout = app
        .post_as("/api/auth/logout", &alice.access_token, &json!({}))
        .await;

    assert_eq!(logout.status(), 204);
    assert_refused(&app, &alice.access_token, "a token of a logged-out session").await;
}

async fn malformed_tokens_are_refused(backend: Backend) {
    let app = backend.app().await;

    for token in ["abc", "a.b.c"] {
        assert_refused(&app, token, token).await;
    }
    let empty = app.get_as("/api/auth/me", "").await;

    assert_eq!(empty.status(), 401);
    assert_eq!(empty.headers()["www-authenticate"], "Bearer");
    assert_eq!(code_of(empty).await, "unauthorized");
}

backend_tests! {
    a_genuine_token_is_accepted_and_introspected_as_active,
    an_alg_none_token_is_refused,
    an_hs256_token_keyed_with_the_public_key_is_refused,
    a_token_with_a_tampered_payload_is_refused,
    an_expired_token_is_refused,
    a_token_not_yet_valid_is_refused,
    a_token_crafted_with_the_real_key_and_claims_is_accepted,
    a_token_for_another_issuer_or_audience_is_refused,
    a_token_signed_by_an_unknown_key_is_refused,
    a_token_signed_by_a_revoked_key_is_refused,
    a_token_is_refused_after_logout,
    malformed_tokens_are_refused,
}
