//! The token source against a real auth-service: it gets a client-credentials token the
//! service's verifier accepts, keeps it, renews it before it expires, makes one request for
//! many concurrent callers, reports a wrong secret as `invalid_client` and backs off after it.

use std::time::Duration;

use auth_client::{OAuthErrorCode, TokenError, TokenKind, TokenSource, TokenSourceConfig};
use serde_json::json;

use crate::backend_tests;
use crate::support::service::Service;
use crate::support::{Backend, NewClient, TestClock, TokenProxy};

/// A token source for `client` asking through `proxy`, on `clock`.
fn source(proxy: &TokenProxy, client: &NewClient, clock: &TestClock) -> TokenSource {
    TokenSource::new(
        TokenSourceConfig::new(&proxy.url, &client.id, &client.secret)
            .scopes(["orders:read"])
            .clock(clock.reader()),
    )
    .expect("a token source")
}

async fn billing(service: &Service, ttl_seconds: u64) -> NewClient {
    service
        .client(
            "billing",
            json!({ "scopes": ["orders:read", "orders:write"], "access_token_ttl_seconds": ttl_seconds }),
        )
        .await
}

async fn the_token_source_gets_a_client_token_the_verifier_accepts(backend: Backend) {
    let service = backend.service_with_admin().await;
    let client = billing(&service, 900).await;
    let proxy = TokenProxy::start(&service.base_url).await;
    let tokens = source(&proxy, &client, &TestClock::new());

    let token = tokens.token().await.expect("a token");
    let claims = service
        .verifier()
        .verify(token.expose_secret())
        .await
        .expect("the service's own verifier accepts it");

    assert_eq!(claims.kind(), TokenKind::Client);
    assert_eq!(claims.client_id.as_deref(), Some(client.id.as_str()));
    assert_eq!(claims.sub, client.id);
    assert!(claims.has_scope("orders:read"));
    assert!(
        !claims.has_scope("orders:write"),
        "only the configured scopes are asked for"
    );
    assert_eq!(claims.sid, None);
    assert_eq!(proxy.requests(), 1);
}

async fn a_token_is_cached_and_renewed_before_it_expires(backend: Backend) {
    let service = backend.service_with_admin().await;
    // 60 s of life: renewed when less than max(10 %, 30 s) remains, i.e. after 30 s.
    let client = billing(&service, 60).await;
    let proxy = TokenProxy::start(&service.base_url).await;
    let clock = TestClock::new();
    let tokens = source(&proxy, &client, &clock);

    let first = tokens.token().await.expect("a token");
    let again = tokens.token().await.expect("the cached token");
    clock.advance(Duration::from_secs(29));
    let before_renewal = tokens.token().await.expect("the cached token");
    let requests_before_renewal = proxy.requests();
    clock.advance(Duration::from_secs(2));
    let renewed = tokens.token().await.expect("a renewed token");

    assert_eq!(again.expose_secret(), first.expose_secret());
    assert_eq!(before_renewal.expose_secret(), first.expose_secret());
    assert_eq!(
        requests_before_renewal, 1,
        "a cached token costs no request"
    );
    assert_ne!(renewed.expose_secret(), first.expose_secret());
    assert_eq!(proxy.requests(), 2);
    assert_eq!(tokens.stats().requests, 2);
}

async fn fifty_concurrent_callers_cause_one_token_request(backend: Backend) {
    let service = backend.service_with_admin().await;
    let client = billing(&service, 900).await;
    let proxy = TokenProxy::start(&service.base_url).await;
    let tokens = source(&proxy, &client, &TestClock::new());
    proxy.hold();

    let callers: Vec<_> = (0..50)
        .map(|_| {
            let tokens = tokens.clone();
            tokio::spawn(async move { tokens.token().await })
        })
        .collect();
    proxy.wait_for_requests(1).await;
    // A moment for every caller to reach the token source while the request is held.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let in_flight = proxy.requests();
    proxy.release();
    let mut answers = Vec::new();
    for caller in callers {
        answers.push(caller.await.expect("a caller").expect("a token"));
    }

    assert_eq!(in_flight, 1, "callers wait for the request in flight");
    assert_eq!(proxy.requests(), 1);
    assert!(answers
        .iter()
        .all(|token| token.expose_secret() == answers[0].expose_secret()));
}

async fn a_wrong_secret_is_invalid_client_and_retried_only_after_a_backoff(backend: Backend) {
    let service = backend.service_with_admin().await;
    let client = billing(&service, 900).await;
    let wrong = NewClient {
        id: client.id.clone(),
        secret: format!("{}x", client.secret),
    };
    let proxy = TokenProxy::start(&service.base_url).await;
    let clock = TestClock::new();
    let tokens = source(&proxy, &wrong, &clock);

    let refused = tokens.token().await;
    let at_once = tokens.token().await;
    let requests_during_backoff = proxy.requests();
    clock.advance(Duration::from_secs(1));
    let retried = tokens.token().await;

    assert!(
        matches!(
            refused,
            Err(TokenError::Refused {
                code: OAuthErrorCode::InvalidClient,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(at_once.err(), refused.err(), "the failure is handed on");
    assert_eq!(requests_during_backoff, 1, "no request during the backoff");
    assert!(retried.is_err());
    assert_eq!(proxy.requests(), 2, "retried once the backoff is over");
    assert!(!format!("{tokens:?}").contains(&wrong.secret));
}

async fn a_scope_the_client_lacks_is_invalid_scope(backend: Backend) {
    let service = backend.service_with_admin().await;
    let client = service
        .client("reports", json!({ "scopes": ["reports:read"] }))
        .await;
    let proxy = TokenProxy::start(&service.base_url).await;

    let refused = source(&proxy, &client, &TestClock::new()).token().await;

    assert!(
        matches!(
            refused,
            Err(TokenError::Refused {
                code: OAuthErrorCode::InvalidScope,
                ..
            })
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let tokens = TokenSource::new(TokenSourceConfig::new(closed, "id", "secret")).expect("source");

    let answer = tokens.token().await;

    assert!(
        matches!(answer, Err(TokenError::Unavailable { .. })),
        "{answer:?}"
    );
}

backend_tests! {
    the_token_source_gets_a_client_token_the_verifier_accepts,
    a_token_is_cached_and_renewed_before_it_expires,
    fifty_concurrent_callers_cause_one_token_request,
    a_wrong_secret_is_invalid_client_and_retried_only_after_a_backoff,
    a_scope_the_client_lacks_is_invalid_scope,
}
