//! Offline verification through the example service: genuine tokens pass; missing, expired,
//! early, tampered, unsigned, HMAC-signed and foreign tokens are refused with a 401 problem.

use auth_client::AuthError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::backend_tests;
use crate::support::tokens::{self, kid_of, with_header, with_payload};
use crate::support::{clock_at, Backend, Protected};

async fn a_fresh_token_opens_the_protected_route(backend: Backend) {
    let service = backend.service().await;
    let protected = Protected::start(service.verifier()).await;
    let alice = service.signed_up("alice").await;

    let public = protected.get("/public", None).await;
    let me = protected.get("/me", Some(&alice.access_token)).await;

    assert_eq!(public.status, 200);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["username"], "alice");
    assert_eq!(me.body["roles"], json!(["user"]));
}

async fn a_request_without_a_usable_bearer_token_gets_a_problem_with_a_challenge(backend: Backend) {
    let service = backend.service().await;
    let protected = Protected::start(service.verifier()).await;

    let missing = protected.get("/me", None).await;
    let basic = protected.get_with_header("/me", "Basic YWxpY2U6cHc=").await;
    let garbage = protected.get("/me", Some("not-a-jwt")).await;

    assert_eq!(missing.status, 401);
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    assert_eq!(missing.headers["content-type"], "application/problem+json");
    assert_eq!(missing.body["code"], "unauthorized");
    assert_eq!(missing.reason(), "missing_token");
    assert_eq!(basic.status, 401);
    assert_eq!(basic.reason(), "malformed_header");
    assert_eq!(garbage.status, 401);
    assert_eq!(
        garbage.headers["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(garbage.reason(), "malformed_token");
}

async fn an_expired_token_is_refused(backend: Backend) {
    // The service's clock runs an hour behind: its 15-minute token expired 45 minutes ago.
    let service = backend.service_with(clock_at(-3600), &[]).await;
    let protected = Protected::start(service.verifier()).await;
    let alice = service.signed_up("alice").await;

    let me = protected.get("/me", Some(&alice.access_token)).await;

    assert_eq!(me.status, 401);
    assert_eq!(me.reason(), "expired");
}

async fn a_token_from_a_clock_ahead_is_accepted_within_the_leeway_only(backend: Backend) {
    let slightly_ahead = backend.service_with(clock_at(5), &[]).await;
    let far_ahead = backend.service_with(clock_at(5 * 60), &[]).await;
    let early = far_ahead.signed_up("alice").await;
    let skewed = slightly_ahead.signed_up("alice").await;

    let refused = Protected::start(far_ahead.verifier())
        .await
        .get("/me", Some(&early.access_token))
        .await;
    let accepted = Protected::start(slightly_ahead.verifier())
        .await
        .get("/me", Some(&skewed.access_token))
        .await;

    assert_eq!(refused.status, 401);
    assert_eq!(refused.reason(), "not_yet_valid");
    assert_eq!(accepted.status, 200, "{}", accepted.body);
}

async fn a_tampered_token_is_refused(backend: Backend) {
    let service = backend.service().await;
    let protected = Protected::start(service.verifier()).await;
    let alice = service.signed_up("alice").await;

    let promoted = with_payload(&alice.access_token, |claims| {
        claims["roles"] = json!(["user", "admin"]);
    });
    let me = protected.get("/me", Some(&promoted)).await;
    let admin = protected.get("/admin/reports", Some(&promoted)).await;

    assert_eq!(me.status, 401);
    assert_eq!(me.reason(), "bad_signature");
    assert_eq!(
        admin.status, 401,
        "the forged admin role must not reach the guard"
    );
}

async fn unsigned_hmac_and_mismatched_algorithm_tokens_are_refused(backend: Backend) {
    let service = backend.service().await;
    let verifier = service.verifier();
    let protected = Protected::start(verifier.clone()).await;
    let alice = service.signed_up("alice").await;
    let kid = kid_of(&alice.access_token);
    let claims = tokens::payload(&alice.access_token);
    let jwks = service.jwks().await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .unwrap();
    let raw_public = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let hmac = |secret: &[u8]| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret).unwrap()).unwrap()
    };

    let unsigned = format!(
        "{}.{}.",
        tokens::encode(&json!({ "alg": "none", "typ": "JWT", "kid": kid })),
        tokens::encode(&claims)
    );
    let with_raw_key = hmac(&raw_public);
    let with_jwk_text = hmac(jwk.to_string().as_bytes());
    // Relabelled as another algorithm this client accepts, not the key's own.
    let other = if jwk["alg"] == "EdDSA" {
        "ES256"
    } else {
        "EdDSA"
    };
    let relabelled = with_header(&alice.access_token, |header| header["alg"] = json!(other));

    for (token, what) in [
        (&unsigned, "alg none"),
        (&with_raw_key, "HS256 keyed with the raw public key"),
        (&with_jwk_text, "HS256 keyed with the JWK text"),
    ] {
        let me = protected.get("/me", Some(token)).await;
        assert_eq!(me.status, 401, "{what}");
        assert_eq!(me.reason(), "algorithm_not_allowed", "{what}");
    }
    assert_eq!(
        verifier.stats().fetches,
        0,
        "no key is fetched for a refused algorithm"
    );
    let relabelled = protected.get("/me", Some(&relabelled)).await;
    assert_eq!(relabelled.status, 401);
    assert_eq!(relabelled.reason(), "algorithm_not_allowed");
}

async fn a_token_for_another_issuer_or_audience_is_refused(backend: Backend) {
    let service = backend.service().await;
    let alice = service.signed_up("alice").await;
    let other_issuer = auth_client::Verifier::new(auth_client::VerifierConfig::new(
        &service.base_url,
        "https://evil.example",
        &service.config.auth.audience,
    ))
    .unwrap();
    let other_audience = auth_client::Verifier::new(auth_client::VerifierConfig::new(
        &service.base_url,
        service.config.issuer(),
        "billing",
    ))
    .unwrap();

    let issuer = other_issuer.verify(&alice.access_token).await;
    let audience = other_audience.verify(&alice.access_token).await;

    assert_eq!(issuer, Err(AuthError::WrongIssuer));
    assert_eq!(audience, Err(AuthError::WrongAudience));
}

async fn tokens_of_every_signing_algorithm_are_verified(backend: Backend) {
    for algorithm in ["RS256", "ES256", "EdDSA"] {
        let service = backend
            .service_with(clock_at(0), &[("auth.signing_algorithm", algorithm)])
            .await;
        let alice = service.signed_up("alice").await;

        let claims = service.verifier().verify(&alice.access_token).await;

        assert_eq!(tokens::header(&alice.access_token)["alg"], algorithm);
        assert_eq!(
            claims.map(|c| c.username.unwrap_or_default()).as_deref(),
            Ok("alice"),
            "{algorithm}"
        );
    }
}

backend_tests! {
    a_fresh_token_opens_the_protected_route,
    a_request_without_a_usable_bearer_token_gets_a_problem_with_a_challenge,
    an_expired_token_is_refused,
    a_token_from_a_clock_ahead_is_accepted_within_the_leeway_only,
    a_tampered_token_is_refused,
    unsigned_hmac_and_mismatched_algorithm_tokens_are_refused,
    a_token_for_another_issuer_or_audience_is_refused,
    tokens_of_every_signing_algorithm_are_verified,
}
