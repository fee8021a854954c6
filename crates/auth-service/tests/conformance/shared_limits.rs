//! Rate limits shared through Redis by several replicas, and what happens when Redis goes.

use std::time::Duration;

use auth_service::config::{Config, Rate, Secret};
use secrecy::SecretString;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::backend_tests;
use crate::support::redis::{shared_redis_for, OwnRedis};
use crate::support::{code_of, Backend, TestApp};

/// Replicas behind one trusted proxy; a random client address per test keeps parallel and
/// repeated runs from sharing counts in the shared Redis.
fn replica(config: &mut Config, redis_url: &str) {
    config.redis.url = Some(Secret(SecretString::from(redis_url.to_owned())));
    // Generous: a busy test machine must not be mistaken for a Redis outage.
    config.redis.timeout = Duration::from_secs(3);
    config.server.trusted_proxies = vec!["127.0.0.1/32".into()];
    config.limits.login_per_ip = Rate::new(4, Duration::from_secs(60));
}

async fn attempt(app: &TestApp, client: &str, username: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", client)
        .json(&json!({ "username": username, "password": "not the password" }))
        .send()
        .await
        .unwrap()
}

fn random_client() -> String {
    let bytes = Uuid::new_v4().into_bytes();
    format!("10.{}.{}.{}", bytes[0], bytes[1], bytes[2])
}

async fn two_replicas_on_one_redis_share_the_login_limits(backend: Backend) {
    let Some(redis) = shared_redis_for("two_replicas_on_one_redis_share_the_login_limits") else {
        return;
    };
    let first = backend.app_with(|config| replica(config, &redis)).await;
    let second = backend.app_with(|config| replica(config, &redis)).await;
    let client = random_client();
    let ghost = format!("ghost-{}", Uuid::new_v4().simple());

    let mut statuses = Vec::new();
    for app in [&first, &second, &first, &second] {
        statuses.push(attempt(app, &client, &ghost).await.status().as_u16());
    }
    let over_ip_limit = attempt(&second, &client, "someone-else").await;
    let other_client = random_client();
    let locked = attempt(&first, &other_client, &ghost).await;

    assert_eq!(statuses, [401, 401, 401, 401]);
    assert_eq!(over_ip_limit.status(), 429);
    assert_eq!(code_of(over_ip_limit).await, "too_many_attempts");
    // Four failures so far across both replicas; the fifth (here) locks the identifier.
    assert_eq!(locked.status(), 401);
    let after = attempt(&second, &random_client(), &ghost).await;
    assert_eq!(after.status(), 429);
    assert_eq!(code_of(after).await, "too_many_attempts");
}

/// `/ready`: its status and body.
async fn ready(app: &TestApp) -> (u16, Value) {
    let response = app.get("/ready").await;
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn a_redis_outage_falls_back_to_in_process_limits_and_recovers(backend: Backend) {
    if !OwnRedis::available("a_redis_outage_falls_back_to_in_process_limits_and_recovers") {
        return;
    }
    let mut redis = OwnRedis::start().await;
    let app = backend
        .app_with(|config| {
            replica(config, &redis.url());
            config.redis.timeout = Duration::from_millis(500);
        })
        .await;
    let (status, body) = ready(&app).await;
    assert_eq!((status, &body["checks"]["redis"]), (200, &json!("ok")));

    redis.stop();
    let client = random_client();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(attempt(&app, &client, "nobody").await.status().as_u16());
    }
    let (status, degraded) = ready(&app).await;

    assert_eq!(statuses, [401, 401, 401, 401, 429], "limits still hold");
    assert_eq!(
        status, 200,
        "SPEC §2: Redis is a soft dependency; the replica still serves"
    );
    assert_eq!(degraded["status"], "degraded", "{degraded}");
    assert_eq!(degraded["checks"]["database"], "ok");
    assert_eq!(degraded["checks"]["redis"], "degraded");

    redis.start_again().await;
    let mut recovered = false;
    for _ in 0..100 {
        let (status, body) = ready(&app).await;
        if status == 200 && body["status"] == "ok" {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the limiter did not go back to Redis");
    assert_eq!(ready(&app).await.1["checks"]["redis"], "ok");
}

backend_tests!(
    two_replicas_on_one_redis_share_the_login_limits,
    a_redis_outage_falls_back_to_in_process_limits_and_recovers,
);
