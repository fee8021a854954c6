//! The HTTP skeleton: health, readiness, metrics, problem bodies, request ids, headers, limits.

use serde_json::Value;

use crate::backend_tests;
use crate::support::chaos::ChaosProxy;
use crate::support::{Backend, TestApp};

async fn health_and_ready_answer_ok(backend: Backend) {
    let app = backend.app().await;

    let health = app.get("/health").await;
    let ready = app.get("/ready").await;

    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap()["checks"]["database"],
        "ok"
    );
}

async fn an_unknown_route_is_a_problem_with_a_request_id(backend: Backend) {
    let app = backend.app().await;

    let response = app.get("/api/nothing-here").await;

    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["status"], 404);
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    assert_eq!(body["request_id"], request_id.as_str());
}

async fn a_wrong_method_is_a_405_problem(backend: Backend) {
    let app = backend.app().await;

    let response = app.http.delete(app.url("/health")).send().await.unwrap();

    assert_eq!(response.status(), 405);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "method_not_allowed"
    );
}

async fn every_response_carries_the_security_headers(backend: Backend) {
    let app = backend.app().await;

    for path in ["/health", "/nope"] {
        let response = app.get(path).await;

        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(
            headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
        assert!(
            headers.get("strict-transport-security").is_none(),
            "HSTS is off by default"
        );
    }
}

async fn hsts_is_sent_when_switched_on(backend: Backend) {
    let app = backend.app_with(|config| config.server.hsts = true).await;

    let response = app.get("/health").await;

    assert!(response.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .starts_with("max-age="));
}

async fn a_client_request_id_is_echoed_and_a_forged_one_replaced(backend: Backend) {
    let app = backend.app().await;

    let kept = app
        .http
        .get(app.url("/health"))
        .header("x-request-id", "trace-abc_123")
        .send()
        .await
        .unwrap();
    let forged = app
        .http
        .get(app.url("/health"))
        .header("x-request-id", "evil\" level=error")
        .send()
        .await
        .unwrap();

    assert_eq!(kept.headers()["x-request-id"], "trace-abc_123");
    let replaced = forged.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(replaced).is_ok(), "{replaced}");
}

async fn a_body_over_64_kib_is_refused_with_413(backend: Backend) {
    let app = backend.app().await;

    let response = app
        .http
        .post(app.url("/api/auth/login"))
        .body(vec![b'a'; 64 * 1024 + 1])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 413);
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "payload_too_large"
    );
}

async fn metrics_count_requests_by_route_and_status(backend: Backend) {
    let app = backend.app().await;
    app.get("/health").await;
    app.get("/nope").await;

    let text = app.get("/metrics").await.text().await.unwrap();

    assert!(
        text.contains(r#"auth_http_requests_total{method="GET",route="/health",status="200"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"auth_http_requests_total{method="GET",route="unmatched",status="404"}"#),
        "{text}"
    );
    assert!(
        text.contains("auth_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

async fn graceful_shutdown_lets_the_server_stop_cleanly(backend: Backend) {
    let app = backend.app().await;

    let result = app.stop().await;

    assert!(result.is_ok(), "{result:?}");
}

backend_tests! {
    health_and_ready_answer_ok,
    an_unknown_route_is_a_problem_with_a_request_id,
    a_wrong_method_is_a_405_problem,
    every_response_carries_the_security_headers,
    hsts_is_sent_when_switched_on,
    a_client_request_id_is_echoed_and_a_forged_one_replaced,
    a_body_over_64_kib_is_refused_with_413,
    metrics_count_requests_by_route_and_status,
    graceful_shutdown_lets_the_server_stop_cleanly,
}

/// PostgreSQL only: a network database can go away under a running server; an embedded
/// SQLite file cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_losing_the_database_answers_503_and_recovers() {
    if !Backend::Postgres.available("losing_the_database_answers_503_and_recovers") {
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
    config.database.acquire_timeout = std::time::Duration::from_millis(500);
    let app = TestApp::start(db, config).await;

    proxy.cut();
    let ready_down = app.get("/ready").await;

    assert_eq!(ready_down.status(), 503);
    let body: Value = ready_down.json().await.unwrap();
    assert_eq!(body["code"], "service_unavailable");
    assert!(body["checks"]["database"].is_string(), "{body}");

    proxy.restore();
    let mut recovered = false;
    for _ in 0..50 {
        if app.get("/ready").await.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "/ready did not recover after the database came back"
    );
}
