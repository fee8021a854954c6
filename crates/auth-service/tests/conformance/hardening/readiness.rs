//! `/ready` (SPEC §2): 503 only when this replica cannot serve; Redis found out by probing
//! and reported `degraded` with a 200; `?strict=true` 503 for any failed check; no raw
//! error text.

use std::time::Duration;

use auth_service::config::Secret;
use secrecy::SecretString;
use serde_json::Value;

use crate::backend_tests;
use crate::support::chaos::ChaosProxy;
use crate::support::redis::OwnRedis;
use crate::support::{Backend, TestApp};

/// Far longer than a probe takes to notice (about a second): reaching it is a failure.
const NOTICED_WITHIN: Duration = Duration::from_secs(15);

async fn ready(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app.get(path).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Asks only `/ready` (nothing that uses the limiter) until `checks.redis` reads `want`.
async fn wait_redis(app: &TestApp, want: &str) -> (u16, Value) {
    let deadline = tokio::time::Instant::now() + NOTICED_WITHIN;
    loop {
        let (status, body) = ready(app, "/ready").await;
        if body["checks"]["redis"] == want {
            return (status, body);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "checks.redis is not {want}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn an_idle_replica_reports_a_redis_outage_as_degraded_and_keeps_serving(backend: Backend) {
    if !OwnRedis::available("an_idle_replica_reports_a_redis_outage_as_degraded_and_keeps_serving")
    {
        return;
    }
    let mut redis = OwnRedis::start().await;
    let app = backend
        .app_with(|config| {
            config.redis.url = Some(Secret(SecretString::from(redis.url())));
            config.redis.timeout = Duration::from_millis(500);
        })
        .await;
    let (up_status, up) = wait_redis(&app, "ok").await;

    redis.stop();
    let (down_status, down) = wait_redis(&app, "degraded").await;
    let (strict_status, strict) = ready(&app, "/ready?strict=true").await;
    redis.start_again().await;
    let (back_status, back) = wait_redis(&app, "ok").await;

    assert_eq!(
        (up_status, &up["status"]),
        (200, &Value::from("ok")),
        "{up}"
    );
    assert_eq!(
        down_status, 200,
        "SPEC §2: Redis is a soft dependency: {down}"
    );
    assert_eq!(down["status"], "degraded", "{down}");
    assert_eq!(down["checks"]["database"], "ok", "{down}");
    assert_eq!(strict_status, 503, "{strict}");
    assert_eq!(strict["code"], "service_unavailable", "{strict}");
    assert_eq!(strict["checks"]["redis"], "degraded", "{strict}");
    assert_eq!(
        (back_status, &back["status"]),
        (200, &Value::from("ok")),
        "{back}"
    );
}

async fn strict_readiness_is_200_while_everything_answers(backend: Backend) {
    let app = backend.app().await;

    let (status, body) = ready(&app, "/ready?strict=true").await;
    let (bad_status, _) = ready(&app, "/ready?strict=maybe").await;

    assert_eq!(
        (status, &body["status"]),
        (200, &Value::from("ok")),
        "{body}"
    );
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(bad_status, 400);
}

backend_tests! {
    an_idle_replica_reports_a_redis_outage_as_degraded_and_keeps_serving,
    strict_readiness_is_200_while_everything_answers,
}

/// PostgreSQL only (an embedded SQLite file cannot go away): the database check says
/// `unavailable` and nothing of the driver's error text, which names hosts and ports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_lost_database_is_503_without_its_error_text() {
    if !Backend::Postgres.available("a_lost_database_is_503_without_its_error_text") {
        return;
    }
    let db = crate::support::backend::TestDatabase::create(Backend::Postgres).await;
    let mut url = url::Url::parse(&db.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = ChaosProxy::start(
        tokio::net::lookup_host(target)
            .await
            .unwrap()
            .next()
            .unwrap(),
    )
    .await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    let mut config = crate::support::test_config(url.as_str());
    config.database.acquire_timeout = Duration::from_millis(500);
    let app = TestApp::start(db, config).await;

    proxy.cut();
    let (status, body) = ready(&app, "/ready").await;

    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "service_unavailable", "{body}");
    assert_eq!(body["checks"]["database"], "unavailable", "{body}");
    let text = body.to_string();
    assert!(!text.contains(&proxy.addr.port().to_string()), "{text}");
    assert!(!text.to_lowercase().contains("pool"), "{text}");
}
