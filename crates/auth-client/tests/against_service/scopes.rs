//! Service identities at the example service: `RequireScope` lets in a client's token with the
//! scope and refuses one without it (403 `insufficient_scope`); user routes refuse a client's
//! token (403 `user_token_required`); online, a deactivated client is refused at once. And
//! service A calls service B through the token source's tower layer.

use auth_client::{TokenSource, TokenSourceConfig};
use serde_json::json;
use tower::{Service as _, ServiceBuilder, ServiceExt};

use crate::backend_tests;
use crate::support::service::Service;
use crate::support::{Backend, NewClient, Protected};

async fn token_for(service: &Service, client: &NewClient) -> String {
    let tokens = TokenSource::new(TokenSourceConfig::new(
        &service.base_url,
        &client.id,
        &client.secret,
    ))
    .expect("a token source");
    tokens
        .token()
        .await
        .expect("a token")
        .expose_secret()
        .to_owned()
}

async fn the_scope_guard_admits_a_client_token_with_the_scope_and_refuses_others(backend: Backend) {
    let service = backend.service_with_admin().await;
    let protected = Protected::start(service.verifier()).await;
    let reader = service
        .client("reader", json!({ "scopes": ["orders:read"] }))
        .await;
    let writer = service
        .client("writer", json!({ "scopes": ["orders:write"] }))
        .await;
    let alice = service.signed_up("alice").await;
    let reader_token = token_for(&service, &reader).await;
    let writer_token = token_for(&service, &writer).await;

    let admitted = protected.get("/orders", Some(&reader_token)).await;
    let without_scope = protected.get("/orders", Some(&writer_token)).await;
    let as_user = protected.get("/orders", Some(&alice.access_token)).await;
    let anonymous = protected.get("/orders", None).await;

    assert_eq!(admitted.status, 200, "{}", admitted.body);
    assert_eq!(admitted.body["client_id"], reader.id.as_str());
    assert_eq!(without_scope.status, 403);
    assert_eq!(without_scope.body["code"], "forbidden");
    assert_eq!(without_scope.reason(), "missing_scope");
    assert_eq!(
        without_scope.headers["www-authenticate"],
        "Bearer error=\"insufficient_scope\", scope=\"orders:read\""
    );
    assert_eq!(as_user.status, 403, "a user's login token has no scopes");
    assert_eq!(as_user.reason(), "missing_scope");
    assert_eq!(anonymous.status, 401);
}

async fn user_routes_refuse_a_client_token(backend: Backend) {
    let service = backend.service_with_admin().await;
    let protected = Protected::start(service.verifier()).await;
    let reader = service
        .client(
            "reader",
            json!({ "scopes": ["orders:read"], "roles": ["admin"] }),
        )
        .await;
    let token = token_for(&service, &reader).await;

    let me = protected.get("/me", Some(&token)).await;
    let admin = protected.get("/admin/reports", Some(&token)).await;
    let payment = protected.post("/payments", Some(&token)).await;

    for refused in [&me, &admin, &payment] {
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert_eq!(refused.reason(), "user_token_required");
    }
}

async fn online_the_scope_guard_refuses_a_deactivated_client_at_once(backend: Backend) {
    let service = backend.service_with_admin().await;
    let protected = Protected::start(service.verifier()).await;
    let reader = service
        .client("reader", json!({ "scopes": ["orders:read"] }))
        .await;
    let token = token_for(&service, &reader).await;
    let before = protected.post("/orders/export", Some(&token)).await;

    service
        .patch_client(&reader.id, json!({ "is_active": false }))
        .await;
    let online = protected.post("/orders/export", Some(&token)).await;
    let offline = protected.get("/orders", Some(&token)).await;

    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(before.body["kind"], "Client");
    assert_eq!(online.status, 401);
    assert_eq!(online.reason(), "revoked");
    assert_eq!(
        offline.status, 200,
        "offline verification cannot see the deactivation"
    );
}

async fn service_a_calls_service_b_through_the_tower_layer(backend: Backend) {
    let service = backend.service_with_admin().await;
    let protected = Protected::start(service.verifier()).await;
    let reader = service
        .client("reader", json!({ "scopes": ["orders:read"] }))
        .await;
    let tokens = TokenSource::new(TokenSourceConfig::new(
        &service.base_url,
        &reader.id,
        &reader.secret,
    ))
    .expect("a token source");
    let http = reqwest::Client::new();
    // Service A's outgoing stack: any tower service of `http::Request`s, here over reqwest.
    let mut client = ServiceBuilder::new().layer(tokens.layer()).service_fn(
        move |request: http::Request<String>| {
            let http = http.clone();
            async move {
                let request = reqwest::Request::try_from(request)?;
                Ok::<_, reqwest::Error>(http.execute(request).await?.status().as_u16())
            }
        },
    );
    let orders = http::Request::get(protected.url("/orders"))
        .body(String::new())
        .expect("a request");

    let status = client
        .ready()
        .await
        .expect("ready")
        .call(orders)
        .await
        .expect("an answer");

    assert_eq!(status, 200);
    assert_eq!(tokens.stats().requests, 1);
}

backend_tests! {
    the_scope_guard_admits_a_client_token_with_the_scope_and_refuses_others,
    user_routes_refuse_a_client_token,
    online_the_scope_guard_refuses_a_deactivated_client_at_once,
    service_a_calls_service_b_through_the_tower_layer,
}
