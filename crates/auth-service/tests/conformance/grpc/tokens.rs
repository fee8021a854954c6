//! ValidateToken: the claims of a valid token, and a reason for every refused one — each
//! attack of SPEC §3, an ended session, a revoked key.

use std::time::Duration;

use auth_service::grpc::pb;
use serde_json::json;

use crate::backend_tests;
use crate::support::forge::{
    active_key, claims_for, hs256_with_public_key, revoke_key, sign_with_key, signed_by_a_stranger,
    tampered, unsigned,
};
use crate::support::grpc::{account_of, signup_request, Client};
use crate::support::{Account, Backend};

async fn validate(client: &mut Client, token: &str) -> pb::ValidateTokenResponse {
    client
        .validate_token(pb::ValidateTokenRequest {
            token: token.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Alice, signed up over gRPC.
async fn alice(client: &mut Client) -> Account {
    let answer = client.sign_up(signup_request("alice")).await.unwrap();
    account_of("alice", &answer.into_inner().tokens.unwrap())
}

async fn a_valid_token_answers_its_claims(backend: Backend) {
    let app = backend.app().await;
    let mut client = app.grpc().await;
    let alice = alice(&mut client).await;

    let verdict = validate(&mut client, &alice.access_token).await;

    assert!(verdict.valid, "{verdict:?}");
    assert_eq!(verdict.reason, "");
    assert_eq!(verdict.user_id, alice.user_id);
    assert_eq!(verdict.session_id, alice.session_id);
    assert_eq!(verdict.username, "alice");
    assert_eq!(verdict.roles, ["user"]);
    assert_eq!(verdict.amr, ["pwd"]);
    let (exp, iat) = (verdict.expires_at.unwrap(), verdict.issued_at.unwrap());
    assert_eq!(exp.seconds - iat.seconds, 900);
    assert_eq!(iat.seconds, app.clock.now().timestamp());
}

async fn every_token_attack_is_invalid_with_its_reason(backend: Backend) {
    let app = backend.app().await;
    let mut client = app.grpc().await;
    let alice = alice(&mut client).await;
    let key = active_key(&app).await;
    let claims = claims_for(&app, &alice, 0);
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("https://evil.example");
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("another-service");
    let [hs256_raw, hs256_jwk] = hs256_with_public_key(&key, &claims);

    let attacks = [
        ("alg none", unsigned(&key, &claims), "algorithm_mismatch"),
        (
            "HS256 with the raw public key",
            hs256_raw,
            "algorithm_mismatch",
        ),
        ("HS256 with the public JWK", hs256_jwk, "algorithm_mismatch"),
        (
            "an unknown kid",
            signed_by_a_stranger(&claims),
            "unknown_key",
        ),
        (
            "a tampered payload",
            tampered(&alice.access_token),
            "bad_signature",
        ),
        (
            "another issuer",
            sign_with_key(&key, &wrong_iss),
            "wrong_issuer",
        ),
        (
            "another audience",
            sign_with_key(&key, &wrong_aud),
            "wrong_audience",
        ),
        (
            "a token valid from 5 minutes on",
            sign_with_key(&key, &claims_for(&app, &alice, 5 * 60)),
            "not_yet_valid",
        ),
        ("garbage", "abc".to_owned(), "malformed"),
        ("three garbage segments", "a.b.c".to_owned(), "malformed"),
    ];
    let genuine = validate(&mut client, &sign_with_key(&key, &claims)).await;

    assert!(genuine.valid, "the forging itself is sound: {genuine:?}");
    for (what, token, reason) in attacks {
        let verdict = validate(&mut client, &token).await;
        assert!(!verdict.valid, "{what} was accepted");
        assert_eq!(verdict.reason, reason, "{what}");
        assert!(
            verdict.user_id.is_empty() && verdict.roles.is_empty(),
            "{what}"
        );
    }
}

async fn an_expired_token_is_invalid(backend: Backend) {
    let app = backend.app().await;
    let mut client = app.grpc().await;
    let alice = alice(&mut client).await;

    // Past the 15-minute lifetime and its leeway, but inside the 30-minute idle timeout.
    app.clock.advance(Duration::from_secs(16 * 60));
    let verdict = validate(&mut client, &alice.access_token).await;

    assert!(!verdict.valid);
    assert_eq!(verdict.reason, "expired");
}

async fn a_token_of_a_revoked_key_is_invalid(backend: Backend) {
    let app = backend.app().await;
    let mut client = app.grpc().await;
    let alice = alice(&mut client).await;
    let key = active_key(&app).await;
    let before = validate(&mut client, &alice.access_token).await;

    revoke_key(&app, &key.kid).await;
    // Revoked from outside the server (as `keys revoke` does): seen once the session cache
    // has stopped trusting what it read (`auth.session_cache_ttl`, under 1 s).
    app.clock.advance(app.config.auth.session_cache_ttl);
    let after = validate(&mut client, &alice.access_token).await;

    assert!(before.valid);
    assert!(!after.valid);
    assert_eq!(after.reason, "key_revoked");
}

async fn a_token_of_an_ended_session_is_invalid(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let mut client = app.grpc().await;
    let before = validate(&mut client, &alice.access_token).await;

    let logout = app
        .post_as("/api/auth/logout", &alice.access_token, &json!({}))
        .await;
    let after = validate(&mut client, &alice.access_token).await;

    assert!(before.valid);
    assert_eq!(logout.status(), 204);
    assert!(!after.valid);
    assert_eq!(after.reason, "session_ended");
}

backend_tests! {
    a_valid_token_answers_its_claims,
    every_token_attack_is_invalid_with_its_reason,
    an_expired_token_is_invalid,
    a_token_of_a_revoked_key_is_invalid,
    a_token_of_an_ended_session_is_invalid,
}
