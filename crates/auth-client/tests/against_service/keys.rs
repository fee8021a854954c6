//! The key cache against a live service: rotation is picked up without a restart, revoked keys
//! drop out at the next refresh, cached keys outlive an outage, and a flood of unknown kids
//! costs the service one JWKS fetch per interval.

use std::sync::Arc;
use std::time::Duration;

use auth_client::{AuthError, VerifierConfig};
use serde_json::json;
use tokio::task::JoinSet;

use crate::backend_tests;
use crate::support::tokens::{kid_of, with_header};
use crate::support::{Backend, CountingProxy, Protected};

async fn a_rotated_key_is_picked_up_without_a_restart(backend: Backend) {
    let service = backend.service().await;
    let proxy = CountingProxy::start(&service.base_url).await;
    let verifier = auth_client::Verifier::new(VerifierConfig::new(
        &proxy.url,
        service.config.issuer(),
        &service.config.auth.audience,
    ))
    .unwrap();
    verifier.refresh().await.unwrap();
    let protected = Arc::new(Protected::start(verifier).await);
    let alice = service.signed_up("alice").await;
    assert_eq!(
        protected.get("/me", Some(&alice.access_token)).await.status,
        200
    );

    let new_kid = service.state.services.keys.rotate().await.unwrap();
    let bob = service.signed_up("bob").await;
    proxy.hold();
    let mut requests = JoinSet::new();
    for _ in 0..20 {
        let (protected, token) = (protected.clone(), bob.access_token.clone());
        requests.spawn(async move { protected.get("/me", Some(&token)).await.status });
    }
    proxy.wait_for_fetches(2).await;
    // Give the other requests time to queue behind the fetch in flight; they pass either way.
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.release();
    let statuses = requests.join_all().await;
    let old_key = protected.get("/me", Some(&alice.access_token)).await;

    assert_eq!(kid_of(&bob.access_token), new_kid);
    assert_ne!(kid_of(&alice.access_token), new_kid);
    assert_eq!(
        statuses,
        vec![200; 20],
        "requests for the new key wait for the fetch in flight"
    );
    assert_eq!(
        proxy.fetches(),
        2,
        "the warm-up and one fetch for the new key"
    );
    assert_eq!(
        old_key.status, 200,
        "the retired key stays published until its tokens expire"
    );
}

async fn a_revoked_key_stops_verifying_after_the_next_refresh(backend: Backend) {
    let service = backend.service().await;
    let verifier = service.verifier();
    let protected = Protected::start(verifier.clone()).await;
    let alice = service.signed_up("alice").await;
    assert_eq!(
        protected.get("/me", Some(&alice.access_token)).await.status,
        200
    );
    service.state.services.keys.rotate().await.unwrap();
    let bob = service.signed_up("bob").await;

    let old_kid = kid_of(&alice.access_token);
    assert!(service.state.services.keys.revoke(&old_kid).await.unwrap());
    let before_refresh = protected.get("/me", Some(&alice.access_token)).await;
    verifier.refresh().await.unwrap();
    let after_refresh = protected.get("/me", Some(&alice.access_token)).await;
    let new_key = protected.get("/me", Some(&bob.access_token)).await;

    assert_eq!(
        before_refresh.status, 200,
        "offline, a cached key works until a refresh"
    );
    assert_eq!(after_refresh.status, 401);
    assert_eq!(after_refresh.reason(), "unknown_kid");
    assert_eq!(new_key.status, 200);
}

async fn the_background_refresh_drops_a_revoked_key(backend: Backend) {
    let service = backend.service().await;
    let verifier = service.verifier();
    let alice = service.signed_up("alice").await;
    verifier.verify(&alice.access_token).await.unwrap();
    service.state.services.keys.rotate().await.unwrap();
    let old_kid = kid_of(&alice.access_token);

    service.state.services.keys.revoke(&old_kid).await.unwrap();
    let refresher = verifier.spawn_background_refresh(Duration::from_millis(100));
    let mut outcome = verifier.verify(&alice.access_token).await;
    for _ in 0..200 {
        if outcome.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        outcome = verifier.verify(&alice.access_token).await;
    }
    refresher.abort();

    assert_eq!(outcome, Err(AuthError::UnknownKid { kid: old_kid }));
}

async fn cached_keys_keep_verifying_while_the_service_is_down(backend: Backend) {
    let mut service = backend.service().await;
    let verifier = service.verifier();
    verifier.refresh().await.unwrap();
    let protected = Protected::start(verifier.clone()).await;
    let alice = service.signed_up("alice").await;
    service.state.services.keys.rotate().await.unwrap();
    let bob = service.signed_up("bob").await;

    service.stop().await;
    let cached = protected.get("/me", Some(&alice.access_token)).await;
    let new_kid = protected.get("/me", Some(&bob.access_token)).await;
    let again = protected.get("/me", Some(&bob.access_token)).await;
    let online = protected.post("/payments", Some(&alice.access_token)).await;

    assert_eq!(cached.status, 200, "{}", cached.body);
    assert_eq!(new_kid.status, 503);
    assert_eq!(new_kid.body["code"], "service_unavailable");
    assert_eq!(new_kid.reason(), "jwks_unavailable");
    assert!(
        !new_kid.body["detail"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "no internals in the body: {}",
        new_kid.body
    );
    assert_eq!(again.reason(), "jwks_unavailable");
    let stats = verifier.stats();
    assert_eq!(
        (stats.fetches, stats.failed_fetches),
        (2, 1),
        "one failed fetch, then none within the interval"
    );
    assert_eq!(stats.cached_keys, 1, "a failed fetch keeps the cached keys");
    assert_eq!(online.status, 503);
    assert_eq!(online.reason(), "online_check_unavailable");
}

async fn a_flood_of_unknown_kids_fetches_the_jwks_once_per_interval(backend: Backend) {
    let service = backend.service().await;
    let proxy = CountingProxy::start(&service.base_url).await;
    let config = |interval| {
        VerifierConfig::new(
            &proxy.url,
            service.config.issuer(),
            &service.config.auth.audience,
        )
        .min_refresh_interval(interval)
    };
    let verifier = auth_client::Verifier::new(config(Duration::from_secs(3600))).unwrap();
    let eager = auth_client::Verifier::new(config(Duration::ZERO)).unwrap();
    let alice = service.signed_up("alice").await;
    verifier.refresh().await.unwrap();
    let forged = |i: usize| {
        with_header(&alice.access_token, |header| {
            header["kid"] = json!(format!("forged-{i}"))
        })
    };

    let mut outcomes = Vec::new();
    for burst in 0..2 {
        let mut flood = JoinSet::new();
        for i in 0..100 {
            let (verifier, token) = (verifier.clone(), forged(burst * 100 + i));
            flood.spawn(async move { verifier.verify(&token).await });
        }
        outcomes.extend(flood.join_all().await);
    }
    let after_flood = proxy.fetches();
    let genuine = verifier.verify(&alice.access_token).await;
    for i in 0..3 {
        assert!(eager.verify(&forged(i)).await.is_err());
    }

    assert!(outcomes
        .iter()
        .all(|outcome| matches!(outcome, Err(AuthError::UnknownKid { .. }))));
    assert_eq!(
        after_flood, 2,
        "the warm-up fetch and one fetch for 200 unknown kids"
    );
    assert_eq!(
        genuine
            .map(|claims| claims.username.unwrap_or_default())
            .as_deref(),
        Ok("alice")
    );
    assert_eq!(proxy.fetches(), 5, "without an interval each miss fetches");
}

backend_tests! {
    a_rotated_key_is_picked_up_without_a_restart,
    a_revoked_key_stops_verifying_after_the_next_refresh,
    the_background_refresh_drops_a_revoked_key,
    cached_keys_keep_verifying_while_the_service_is_down,
    a_flood_of_unknown_kids_fetches_the_jwks_once_per_interval,
}
