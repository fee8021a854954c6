//! A token made by token exchange (RFC 8693, SPEC §11): a service configured for the exchange
//! audience verifies it offline and reads who acts (`act`); the issuing service's own
//! audience does not take it.

use auth_client::{AuthError, Verifier, VerifierConfig};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::support::{clock_at, Backend, ADMIN, PASSWORD};

async fn an_exchanged_token_verifies_for_its_audience_and_names_its_actor(backend: Backend) {
    let service = backend
        .service_with(
            clock_at(0),
            &[
                ("bootstrap.admin_email", "root@example.com"),
                ("bootstrap.admin_username", ADMIN),
                ("bootstrap.admin_password", PASSWORD),
            ],
        )
        .await;
    let admin = service.logged_in(ADMIN).await;
    let alice = service.signed_up("alice").await;
    let http = reqwest::Client::new();
    let client: Value = http
        .post(service.url("/api/clients"))
        .bearer_auth(&admin.access_token)
        .json(&json!({ "name": "gateway", "exchange_audiences": ["orders"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = client["client_id"].as_str().unwrap();
    let exchanged: Value = http
        .post(service.url("/oauth/token"))
        .basic_auth(id, client["client_secret"].as_str())
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", alice.access_token.as_str()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("audience", "orders"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = exchanged["access_token"].as_str().unwrap();
    let orders = Verifier::new(VerifierConfig::new(
        &service.base_url,
        service.config.issuer(),
        "orders",
    ))
    .unwrap();

    let verified = orders.verify(token).await;
    let as_the_service = service.verifier().verify(token).await;

    let claims = verified.unwrap();
    assert_eq!(claims.username.as_deref(), Some("alice"));
    assert_eq!(
        claims.sid.map(|sid| sid.to_string()),
        Some(alice.session_id.clone())
    );
    let actor = claims
        .act
        .as_ref()
        .expect("an exchanged token names its actor");
    assert_eq!(actor.sub, id);
    assert!(actor.act.is_none(), "exchanged once: no earlier actor");
    assert_eq!(as_the_service, Err(AuthError::WrongAudience));
    assert!(orders.verify(&alice.access_token).await.is_err());
}

backend_tests! {
    an_exchanged_token_verifies_for_its_audience_and_names_its_actor,
}
