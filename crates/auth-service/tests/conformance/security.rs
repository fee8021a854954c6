//! Account security over HTTP (SPEC §4): lockout and per-IP limits, the password policy,
//! forgotten, reset and changed passwords, email verification, CORS, audit entries.

use std::time::{Duration, Instant};

use auth_service::config::Rate;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};

use crate::backend_tests;
use crate::support::{code_of, link_token, token_among, Backend, TestApp, PASSWORD};

const NEW_PASSWORD: &str = "violet otter juggles lanterns";

async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/api/auth/login",
        &json!({ "username": username, "password": password }),
    )
    .await
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(&app.db.url).await.unwrap();
    sqlx::query_scalar("SELECT action FROM audit_log ORDER BY occurred_at, id")
        .fetch_all(&mut db)
        .await
        .unwrap()
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn five_failures_lock_an_identifier_whether_or_not_it_exists(backend: Backend) {
    let app = backend.app().await;
    app.signed_up("alice").await;
    app.signed_up("bob").await;

    for name in ["alice", "ghost"] {
        for attempt in 1..=5 {
            let response = login(&app, name, "wrong password entirely").await;
            assert_eq!(response.status(), 401, "{name} attempt {attempt}");
        }
        let locked = login(&app, name, PASSWORD).await;
        assert_eq!(locked.status(), 429, "{name} is locked");
        let wait = retry_after(&locked);
        assert!((1..=900).contains(&wait), "Retry-After {wait}");
        assert_eq!(locked.headers()["content-type"], "application/problem+json");
        assert_eq!(code_of(locked).await, "too_many_attempts");
    }

    assert_eq!(login(&app, "bob", PASSWORD).await.status(), 200);
    app.clock.advance(Duration::from_secs(15 * 60 + 1));
    assert_eq!(login(&app, "alice", PASSWORD).await.status(), 200);
    let actions = audit_actions(&app).await;
    assert_eq!(actions.iter().filter(|a| *a == "lockout").count(), 2);
    assert!(actions.iter().any(|a| a == "login_failure"));
    assert!(actions.iter().any(|a| a == "login_success"));
}

async fn a_successful_login_resets_the_failure_count(backend: Backend) {
    let app = backend.app().await;
    app.signed_up("alice").await;

    for _ in 0..4 {
        assert_eq!(login(&app, "alice", "not it at all").await.status(), 401);
    }
    assert_eq!(login(&app, "alice", PASSWORD).await.status(), 200);
    for _ in 0..4 {
        assert_eq!(login(&app, "alice", "not it at all").await.status(), 401);
    }

    assert_eq!(login(&app, "alice", PASSWORD).await.status(), 200);
}

async fn per_ip_limits_answer_429_and_forged_forwarded_for_does_not_dodge_them(backend: Backend) {
    let app = backend
        .app_with(|config| {
            config.limits.login_per_ip = Rate::new(3, Duration::from_secs(60));
        })
        .await;

    let mut statuses = Vec::new();
    for n in 0..5 {
        let response = app
            .http
            .post(app.url("/api/auth/login"))
            .header("x-forwarded-for", format!("203.0.113.{n}"))
            .header("x-real-ip", format!("198.51.100.{n}"))
            .json(&json!({ "username": format!("user{n}"), "password": "whatever it is" }))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(retry_after(&response) >= 1);
            assert_eq!(code_of(response).await, "too_many_attempts");
        }
    }

    assert_eq!(statuses, [401, 401, 401, 429, 429]);
}

async fn behind_a_trusted_proxy_each_client_has_its_own_limit(backend: Backend) {
    let app = backend
        .app_with(|config| {
            config.limits.login_per_ip = Rate::new(2, Duration::from_secs(60));
            config.server.trusted_proxies = vec!["127.0.0.1/32".into()];
        })
        .await;
    let attempt = |client: &'static str| {
        app.http
            .post(app.url("/api/auth/login"))
            .header("x-forwarded-for", client)
            .json(&json!({ "username": "nobody", "password": "whatever it is" }))
            .send()
    };

    let first: Vec<u16> = futures::future::join_all((0..3).map(|_| attempt("203.0.113.7")))
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    let other = attempt("203.0.113.8").await.unwrap();

    assert_eq!(first.iter().filter(|s| **s == 429).count(), 1);
    assert_eq!(other.status(), 401);
}

async fn signup_and_forgot_password_are_limited_per_ip(backend: Backend) {
    let app = backend
        .app_with(|config| {
            config.limits.signup_per_ip = Rate::new(1, Duration::from_secs(3600));
            config.limits.forgot_password_per_ip = Rate::new(1, Duration::from_secs(900));
        })
        .await;
    app.signed_up("alice").await;

    let second = app
        .post_json(
            "/api/auth/signup",
            &json!({ "email": "bob@example.com", "username": "bob", "password": PASSWORD }),
        )
        .await;
    let forgot = async |email: &str| {
        app.post_json("/api/auth/password/forgot", &json!({ "email": email }))
            .await
    };
    let first_forgot = forgot("alice@example.com").await;
    let second_forgot = forgot("alice@example.com").await;

    assert_eq!(second.status(), 429);
    assert_eq!(code_of(second).await, "rate_limited");
    assert_eq!(first_forgot.status(), 202);
    assert_eq!(second_forgot.status(), 429);
}

async fn one_account_gets_at_most_so_many_mails(backend: Backend) {
    let app = backend
        .app_with(|config| {
            config.limits.mail_per_account = Rate::new(2, Duration::from_secs(3600));
        })
        .await;
    let alice = app.signed_up("alice").await;
    app.wait_mails(&alice.email, 1).await;

    for _ in 0..3 {
        let answer = app
            .post_json(
                "/api/auth/password/forgot",
                &json!({ "email": alice.email }),
            )
            .await;
        assert_eq!(answer.status(), 202, "the answer never changes");
    }
    // Reset links are counted after the answer: wait until two went out, so the resend is
    // counted after them.
    app.wait_mails(&alice.email, 3).await;
    let resend = app
        .post_as(
            "/api/auth/email/verify/resend",
            &alice.access_token,
            &json!({}),
        )
        .await;

    // The signup's own verification mail is not counted; two reset links use the allowance.
    app.wait_mails(&alice.email, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.mails_to(&alice.email).len(), 3);
    assert_eq!(resend.status(), 429);
    assert_eq!(code_of(resend).await, "rate_limited");
}

async fn the_password_policy_lists_every_broken_rule(backend: Backend) {
    let app = backend.app().await;

    let response = app
        .post_json(
            "/api/auth/signup",
            &json!({ "email": "carol@example.com", "username": "carol", "password": "carol1" }),
        )
        .await;
    let weak = app
        .post_json(
            "/api/auth/signup",
            &json!({ "email": "dave@example.com", "username": "dave", "password": "password123" }),
        )
        .await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "validation_failed");
    let codes: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["field"] == "password")
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "too_short",
            "contains_username",
            "contains_email",
            "too_weak"
        ]
    );
    assert_eq!(weak.status(), 400);
    let weak: Value = weak.json().await.unwrap();
    assert_eq!(weak["errors"][0]["code"], "too_weak");
}

async fn an_oversized_password_is_refused_before_hashing(backend: Backend) {
    let app = backend.app().await;
    let huge = "x".repeat(100_000 / 2);

    let signup = app
        .post_json(
            "/api/auth/signup",
            &json!({ "email": "erin@example.com", "username": "erin", "password": huge }),
        )
        .await;
    let login = login(&app, "erin", &huge).await;

    assert_eq!(signup.status(), 400);
    let body: Value = signup.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "too_long");
    assert_eq!(login.status(), 400);
    let body: Value = login.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "too_long");
}

async fn forgot_password_answers_202_alike_and_mails_only_real_accounts(backend: Backend) {
    let app = backend.app().await;
    app.signed_up("alice").await;

    let known = app
        .post_json(
            "/api/auth/password/forgot",
            &json!({ "email": "Alice@Example.com" }),
        )
        .await;
    let unknown = app
        .post_json(
            "/api/auth/password/forgot",
            &json!({ "email": "nobody@example.com" }),
        )
        .await;

    assert_eq!(known.status(), 202);
    assert_eq!(unknown.status(), 202);
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
    let mails = app.wait_mails("alice@example.com", 2).await;
    let reset = mails
        .iter()
        .find(|m| m.contains("reset-password?token="))
        .unwrap();
    assert!(reset.contains(&app.config.server.public_url));
    assert!(reset.contains("text/plain") && reset.contains("text/html"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(app.mails_to("nobody@example.com").is_empty());
}

async fn a_reset_token_sets_the_password_once_and_ends_every_session(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let other = app.logged_in(&alice).await;
    app.post_json(
        "/api/auth/password/forgot",
        &json!({ "email": alice.email }),
    )
    .await;
    let mails = app.wait_mails(&alice.email, 2).await;
    let token = token_among(&mails, "reset-password");

    let weak = app
        .post_json(
            "/api/auth/password/reset",
            &json!({ "token": token, "new_password": "alice" }),
        )
        .await;
    let reset = app
        .post_json(
            "/api/auth/password/reset",
            &json!({ "token": token, "new_password": NEW_PASSWORD }),
        )
        .await;
    let replayed = app
        .post_json(
            "/api/auth/password/reset",
            &json!({ "token": token, "new_password": NEW_PASSWORD }),
        )
        .await;

    assert_eq!(weak.status(), 400);
    let weak: Value = weak.json().await.unwrap();
    assert_eq!(weak["code"], "validation_failed");
    assert_eq!(weak["errors"][0]["field"], "new_password");
    assert_eq!(reset.status(), 204);
    assert_eq!(replayed.status(), 400);
    assert_eq!(code_of(replayed).await, "invalid_token");
    for session in [&alice.access_token, &other.access_token] {
        assert_eq!(app.get_as("/api/auth/me", session).await.status(), 401);
    }
    assert_eq!(app.refresh(&other.refresh_token).await.status(), 401);
    assert_eq!(login(&app, "alice", PASSWORD).await.status(), 401);
    assert_eq!(login(&app, "alice", NEW_PASSWORD).await.status(), 200);
    assert!(audit_actions(&app)
        .await
        .iter()
        .any(|a| a == "password_reset"));
}

async fn reset_tokens_expire_and_unknown_ones_fail(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    app.post_json(
        "/api/auth/password/forgot",
        &json!({ "email": alice.email }),
    )
    .await;
    let mails = app.wait_mails(&alice.email, 2).await;
    let token = token_among(&mails, "reset-password");

    app.clock.advance(Duration::from_secs(3601));
    let expired = app
        .post_json(
            "/api/auth/password/reset",
            &json!({ "token": token, "new_password": NEW_PASSWORD }),
        )
        .await;
    let unknown = app
        .post_json(
            "/api/auth/password/reset",
            &json!({ "token": "not-a-token", "new_password": NEW_PASSWORD }),
        )
        .await;

    assert_eq!(expired.status(), 400);
    assert_eq!(code_of(expired).await, "invalid_token");
    assert_eq!(unknown.status(), 400);
    assert_eq!(code_of(unknown).await, "invalid_token");
}

async fn links_of_deleted_users_do_not_work(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    app.post_json(
        "/api/auth/password/forgot",
        &json!({ "email": alice.email }),
    )
    .await;
    let mails = app.wait_mails(&alice.email, 2).await;
    let verify = token_among(&mails, "verify-email");
    let reset = token_among(&mails, "reset-password");
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("UPDATE users SET deleted_at = created_at")
        .execute(&mut db)
        .await
        .unwrap();

    let reset = app
        .post_json(
            "/api/auth/password/reset",
            &json!({ "token": reset, "new_password": NEW_PASSWORD }),
        )
        .await;
    let verify = app
        .post_json("/api/auth/email/verify", &json!({ "token": verify }))
        .await;

    assert_eq!(reset.status(), 400);
    assert_eq!(code_of(reset).await, "invalid_token");
    assert_eq!(verify.status(), 400);
    assert_eq!(code_of(verify).await, "invalid_token");
}

async fn changing_the_password_checks_the_current_one_and_ends_other_sessions(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let other = app.logged_in(&alice).await;
    let change = async |current: &str, new: &str| {
        app.post_as(
            "/api/auth/password/change",
            &alice.access_token,
            &json!({ "current_password": current, "new_password": new }),
        )
        .await
    };

    let wrong = change("not the password", NEW_PASSWORD).await;
    let weak = change(PASSWORD, "12345678").await;
    let changed = change(PASSWORD, NEW_PASSWORD).await;

    assert_eq!(wrong.status(), 401);
    assert_eq!(code_of(wrong).await, "invalid_credentials");
    assert_eq!(weak.status(), 400);
    assert_eq!(changed.status(), 204);
    assert_eq!(
        app.get_as("/api/auth/me", &alice.access_token)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get_as("/api/auth/me", &other.access_token)
            .await
            .status(),
        401
    );
    assert_eq!(login(&app, "alice", NEW_PASSWORD).await.status(), 200);
    let unauthenticated = app
        .post_json(
            "/api/auth/password/change",
            &json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(unauthenticated.status(), 401);
    assert!(audit_actions(&app)
        .await
        .iter()
        .any(|a| a == "password_change"));
}

async fn the_verification_link_verifies_the_address_once(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let mails = app.wait_mails(&alice.email, 1).await;
    let token = link_token(&mails[0], "verify-email");

    let resent = app
        .post_as(
            "/api/auth/email/verify/resend",
            &alice.access_token,
            &json!({}),
        )
        .await;
    let mails = app.wait_mails(&alice.email, 2).await;
    let fresh = link_token(&mails[1], "verify-email");
    let stale = app
        .post_json("/api/auth/email/verify", &json!({ "token": token }))
        .await;
    let verified = app
        .post_json("/api/auth/email/verify", &json!({ "token": fresh }))
        .await;
    let again = app
        .post_json("/api/auth/email/verify", &json!({ "token": fresh }))
        .await;

    assert_eq!(resent.status(), 202);
    assert_eq!(stale.status(), 400, "a resend replaces the earlier link");
    assert_eq!(verified.status(), 204);
    assert_eq!(again.status(), 400);
    assert_eq!(code_of(again).await, "invalid_token");
    let me: Value = app
        .get_as("/api/auth/me", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["is_verified"], true);
    assert!(audit_actions(&app)
        .await
        .iter()
        .any(|a| a == "email_verify"));
}

async fn required_verification_gates_login_until_the_link_is_used(backend: Backend) {
    let app = backend
        .app_with(|config| config.auth.require_email_verification = true)
        .await;

    let signup = app
        .post_json(
            "/api/auth/signup",
            &json!({ "email": "alice@example.com", "username": "alice", "password": PASSWORD }),
        )
        .await;
    assert_eq!(signup.status(), 201);
    let body: Value = signup.json().await.unwrap();
    assert!(body.get("access_token").is_none());
    assert_eq!(body["user"]["is_verified"], false);
    let refused = login(&app, "alice", PASSWORD).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(code_of(refused).await, "email_not_verified");

    let mails = app.wait_mails("alice@example.com", 1).await;
    let token = link_token(&mails[0], "verify-email");
    let verified = app
        .post_json("/api/auth/email/verify", &json!({ "token": token }))
        .await;

    assert_eq!(verified.status(), 204);
    assert_eq!(login(&app, "alice", PASSWORD).await.status(), 200);
}

async fn cors_allows_listed_origins_only_with_credentials(backend: Backend) {
    let app = backend
        .app_with(|config| config.server.cors_origins = vec!["https://app.example.com".into()])
        .await;
    let preflight = |origin: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert("origin", HeaderValue::from_static(origin));
        headers.insert(
            "access-control-request-method",
            HeaderValue::from_static("POST"),
        );
        headers.insert(
            "access-control-request-headers",
            HeaderValue::from_static("content-type"),
        );
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/api/auth/login"))
            .headers(headers)
            .send()
    };

    let listed = preflight("https://app.example.com").await.unwrap();
    let unlisted = preflight("https://evil.example.com").await.unwrap();
    let simple = app
        .http
        .get(app.url("/api/auth/config"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();

    assert!(listed.status().is_success());
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(listed.headers()["access-control-allow-credentials"], "true");
    assert!(unlisted
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
}

/// SPEC §4: an unknown user costs the same time as a wrong password (a dummy hash is
/// verified), measured with the production argon2 parameters. Attempts are interleaved, in
/// alternating order, so that machine load affects both kinds alike, and medians are compared.
/// A loaded machine (this suite runs tests in parallel) can disturb a round, so up to five
/// rounds are measured; a real difference in work fails all of them.
async fn unknown_users_and_wrong_passwords_take_comparable_time(backend: Backend) {
    let app = backend
        .app_with(|config| {
            config.password.argon2_memory_kib = 19 * 1024;
            config.password.argon2_iterations = 2;
            config.limits.login_failures = 10_000;
        })
        .await;
    app.signed_up("alice").await;
    let timed = async |username: &str| {
        let started = Instant::now();
        let response = login(&app, username, "wrong password here").await;
        assert_eq!(response.status(), 401);
        started.elapsed()
    };
    let median = |mut times: Vec<Duration>| {
        times.sort();
        times[times.len() / 2].as_secs_f64()
    };

    let mut ratios = Vec::new();
    for _ in 0..5 {
        let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
        for pair in 0..21 {
            if pair % 2 == 0 {
                unknown.push(timed("nobody").await);
                wrong.push(timed("alice").await);
            } else {
                wrong.push(timed("alice").await);
                unknown.push(timed("nobody").await);
            }
        }
        let ratio = median(unknown) / median(wrong);
        ratios.push(ratio);
        if (0.8..=1.2).contains(&ratio) {
            return;
        }
    }
    panic!("unknown-user / wrong-password median login time, per round: {ratios:.2?}");
}

backend_tests!(
    five_failures_lock_an_identifier_whether_or_not_it_exists,
    a_successful_login_resets_the_failure_count,
    per_ip_limits_answer_429_and_forged_forwarded_for_does_not_dodge_them,
    behind_a_trusted_proxy_each_client_has_its_own_limit,
    signup_and_forgot_password_are_limited_per_ip,
    one_account_gets_at_most_so_many_mails,
    the_password_policy_lists_every_broken_rule,
    an_oversized_password_is_refused_before_hashing,
    forgot_password_answers_202_alike_and_mails_only_real_accounts,
    a_reset_token_sets_the_password_once_and_ends_every_session,
    reset_tokens_expire_and_unknown_ones_fail,
    links_of_deleted_users_do_not_work,
    changing_the_password_checks_the_current_one_and_ends_other_sessions,
    the_verification_link_verifies_the_address_once,
    required_verification_gates_login_until_the_link_is_used,
    cors_allows_listed_origins_only_with_credentials,
    unknown_users_and_wrong_passwords_take_comparable_time,
);
