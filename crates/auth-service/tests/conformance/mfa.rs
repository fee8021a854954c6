//! Second factors (SPEC §10, issue 17): TOTP enrollment, the login challenge, recovery codes,
//! the factor lockout, removal with a fresh factor, an administrator's reset, and `amr`.
//! TOTP codes are computed here from the enrolled secret with `totp-rs`, at the server's
//! (manual) clock.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tonic::Code;
use totp_rs::{Algorithm, Builder, Secret, Totp};

use auth_service::config::Secret as ConfigSecret;
use secrecy::SecretString;

use crate::backend_tests;
use auth_service::grpc::pb;

use crate::support::grpc::{assert_failed, login_request, Client};
use crate::support::redis::shared_redis_for;
use crate::support::{code_of, with_admin, Account, Backend, TestApp, PASSWORD};

/// An enrolled TOTP factor as its owner's authenticator app holds it.
pub(crate) struct Enrolled {
    pub totp: Totp,
    pub recovery_codes: Vec<String>,
}

/// The code the app shows `steps` steps (30 s each) from the server's now.
fn code(app: &TestApp, totp: &Totp, steps: i64) -> String {
    let at = app.clock.now().timestamp() + steps * 30;
    totp.generate(u64::try_from(at).unwrap()).to_string()
}

fn app_totp(secret: &str) -> Totp {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap()
}

/// Enrolls and confirms TOTP for `account`; the clock then moves to the next step, so the
/// next code is not the confirming one.
pub(crate) async fn enrolled(app: &TestApp, account: &Account) -> Enrolled {
    let response = app
        .post_as(
            "/api/auth/mfa/totp",
            &account.access_token,
            &json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let secret = body["secret"].as_str().unwrap();
    assert!(body["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    assert!(body["qr_svg"].as_str().unwrap().contains("<svg"));
    let totp = app_totp(secret);
    let confirm = app
        .post_as(
            "/api/auth/mfa/totp/confirm",
            &account.access_token,
            &json!({ "code": code(app, &totp, 0) }),
        )
        .await;
    assert_eq!(confirm.status(), 200);
    let body: Value = confirm.json().await.unwrap();
    let recovery_codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    app.clock.advance(Duration::from_secs(30));
    Enrolled {
        totp,
        recovery_codes,
    }
}

/// The password step: answers the challenge's `mfa_token`.
async fn password_step(app: &TestApp, account: &Account) -> String {
    let response = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": account.username, "password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("set-cookie").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["mfa_required"], true);
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn verify(app: &TestApp, mfa_token: &str, method: &str, code: &str) -> reqwest::Response {
    app.post_json(
        "/api/auth/mfa/verify",
        &json!({ "mfa_token": mfa_token, "method": method, "code": code }),
    )
    .await
}

pub(crate) fn claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

pub(crate) async fn delete_with(
    app: &TestApp,
    path: &str,
    token: &str,
    body: &Value,
) -> reqwest::Response {
    app.http
        .delete(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn enrollment_answers_ten_recovery_codes_once(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let factor = enrolled(&app, &alice).await;
    let again = app
        .post_as(
            "/api/auth/mfa/totp/confirm",
            &alice.access_token,
            &json!({ "code": code(&app, &factor.totp, 0) }),
        )
        .await;
    let restart = app
        .post_as(
            "/api/auth/mfa/totp",
            &alice.access_token,
            &json!({ "password": PASSWORD }),
        )
        .await;

    assert_eq!(factor.recovery_codes.len(), 10);
    assert_eq!(again.status(), 409);
    assert_eq!(code_of(again).await, "mfa_already_enrolled");
    assert_eq!(restart.status(), 409);
    assert_eq!(code_of(restart).await, "mfa_already_enrolled");
}

async fn enrollment_needs_the_password_and_a_right_first_code(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let no_pending = app
        .post_as(
            "/api/auth/mfa/totp/confirm",
            &alice.access_token,
            &json!({ "code": "123456" }),
        )
        .await;
    let wrong_password = app
        .post_as(
            "/api/auth/mfa/totp",
            &alice.access_token,
            &json!({ "password": "not the password at all" }),
        )
        .await;
    let started: Value = app
        .post_as(
            "/api/auth/mfa/totp",
            &alice.access_token,
            &json!({ "password": PASSWORD }),
        )
        .await
        .json()
        .await
        .unwrap();
    let totp = app_totp(started["secret"].as_str().unwrap());
    let wrong = app
        .post_as(
            "/api/auth/mfa/totp/confirm",
            &alice.access_token,
            &json!({ "code": code(&app, &totp, 3) }),
        )
        .await;
    let malformed = app
        .post_as(
            "/api/auth/mfa/totp/confirm",
            &alice.access_token,
            &json!({ "code": "12ab" }),
        )
        .await;
    let still_password_only = app.logged_in(&alice).await;

    assert_eq!(no_pending.status(), 409);
    assert_eq!(code_of(no_pending).await, "no_pending_enrollment");
    assert_eq!(wrong_password.status(), 401);
    assert_eq!(code_of(wrong_password).await, "invalid_credentials");
    assert_eq!(wrong.status(), 400);
    assert_eq!(code_of(wrong).await, "invalid_mfa_code");
    assert_eq!(malformed.status(), 400);
    assert_eq!(code_of(malformed).await, "invalid_mfa_code");
    assert_eq!(
        claims(&still_password_only.access_token)["amr"],
        json!(["pwd"])
    );
}

async fn login_with_totp_issues_tokens_only_after_the_second_step(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let factor = enrolled(&app, &alice).await;

    let mfa_token = password_step(&app, &alice).await;
    let response = verify(&app, &mfa_token, "totp", &code(&app, &factor.totp, 0)).await;

    assert_eq!(response.status(), 200);
    assert!(response.headers().get("set-cookie").is_some());
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["amr"], json!(["pwd", "otp", "mfa"]));
    let me = app.get_as("/api/auth/me", access).await;
    assert_eq!(me.status(), 200);
    let introspection: Value = app
        .post_json("/api/auth/introspect", &json!({ "token": access }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(introspection["active"], true);
    assert_eq!(introspection["amr"], json!(["pwd", "otp", "mfa"]));
    let refreshed: Value = app
        .refresh(body["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "otp", "mfa"]),
        "refresh keeps the session's amr"
    );
    assert_eq!(claims(&alice.access_token)["amr"], json!(["pwd"]));
}

async fn a_replayed_code_is_refused(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let factor = enrolled(&app, &alice).await;
    let now_code = code(&app, &factor.totp, 0);
    let first = password_step(&app, &alice).await;
    assert_eq!(verify(&app, &first, "totp", &now_code).await.status(), 200);

    let second = password_step(&app, &alice).await;
    let replay = verify(&app, &second, "totp", &now_code).await;
    let older = verify(&app, &second, "totp", &code(&app, &factor.totp, -1)).await;
    let next = verify(&app, &second, "totp", &code(&app, &factor.totp, 1)).await;

    assert_eq!(replay.status(), 400);
    assert_eq!(code_of(replay).await, "invalid_mfa_code");
    assert_eq!(
        older.status(),
        400,
        "a step at or below the last used is refused"
    );
    assert_eq!(next.status(), 200, "the mfa_token survives wrong codes");
}

async fn one_step_of_skew_is_accepted_and_two_are_not(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let factor = enrolled(&app, &alice).await;
    app.clock.advance(Duration::from_secs(5 * 30));
    let mfa_token = password_step(&app, &alice).await;

    let two_behind = verify(&app, &mfa_token, "totp", &code(&app, &factor.totp, -2)).await;
    let two_ahead = verify(&app, &mfa_token, "totp", &code(&app, &factor.totp, 2)).await;
    let one_behind = verify(&app, &mfa_token, "totp", &code(&app, &factor.totp, -1)).await;
    let again = password_step(&app, &alice).await;
    let one_ahead = verify(&app, &again, "totp", &code(&app, &factor.totp, 1)).await;

    assert_eq!(two_behind.status(), 400);
    assert_eq!(two_ahead.status(), 400);
    assert_eq!(one_behind.status(), 200);
    assert_eq!(one_ahead.status(), 200);
}

async fn a_recovery_code_works_once(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let factor = enrolled(&app, &alice).await;
    let recovery = factor.recovery_codes[3].clone();

    let first = password_step(&app, &alice).await;
    let used = verify(&app, &first, "recovery_code", &recovery.to_uppercase()).await;
    let second = password_step(&app, &alice).await;
    let reused = verify(&app, &second, "recovery_code", &recovery).await;
    let other = verify(&app, &second, "recovery_code", &factor.recovery_codes[4]).await;

    assert_eq!(used.status(), 200);
    let body: Value = used.json().await.unwrap();
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa"])
    );
    assert_eq!(reused.status(), 400);
    assert_eq!(code_of(reused).await, "invalid_mfa_code");
    assert_eq!(other.status(), 200);
}

async fn wrong_codes_lock_the_factor(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let factor = enrolled(&app, &alice).await;
    let mfa_token = password_step(&app, &alice).await;

    for _ in 0..5 {
        let wrong = verify(&app, &mfa_token, "recovery_code", "aaaa-bbbb-cccc-dddd").await;
        assert_eq!(wrong.status(), 400);
    }
    let locked = verify(&app, &mfa_token, "totp", &code(&app, &factor.totp, 0)).await;

    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key("retry-after"));
    assert_eq!(code_of(locked).await, "factor_locked");
    app.clock.advance(Duration::from_secs(15 * 60 + 1));
    let later = password_step(&app, &alice).await;
    let after = verify(&app, &later, "totp", &code(&app, &factor.totp, 0)).await;
    assert_eq!(after.status(), 200, "the lock lapses after limits.lockout");
    let audit = sqlx_actions(&app).await;
    assert!(audit.iter().any(|a| a == "mfa_failure"));
    assert!(audit.iter().any(|a| a == "lockout"));
}

pub(crate) async fn sqlx_actions(app: &TestApp) -> Vec<String> {
    use sqlx::{AnyConnection, Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("SELECT action FROM audit_log")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect()
}

pub(crate) async fn event_types(app: &TestApp) -> Vec<String> {
    use sqlx::{AnyConnection, Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("SELECT event_type FROM outbox")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect()
}

async fn an_mfa_token_is_single_use_and_lapses_after_five_minutes(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let factor = enrolled(&app, &alice).await;

    let spent = password_step(&app, &alice).await;
    assert_eq!(
        verify(&app, &spent, "totp", &code(&app, &factor.totp, 0))
            .await
            .status(),
        200
    );
    let lapsing = password_step(&app, &alice).await;
    app.clock.advance(Duration::from_secs(5 * 60 + 1));
    let reused = verify(&app, &spent, "totp", &code(&app, &factor.totp, 0)).await;
    let lapsed = verify(&app, &lapsing, "totp", &code(&app, &factor.totp, 0)).await;
    let unknown = verify(&app, "not-a-token", "totp", &code(&app, &factor.totp, 0)).await;
    let bad_method = verify(&app, &lapsing, "sms", "123456").await;

    assert_eq!(reused.status(), 401);
    assert_eq!(code_of(reused).await, "invalid_mfa_token");
    assert_eq!(lapsed.status(), 401);
    assert_eq!(code_of(lapsed).await, "invalid_mfa_token");
    assert_eq!(unknown.status(), 401);
    assert_eq!(code_of(unknown).await, "invalid_mfa_token");
    assert_eq!(bad_method.status(), 400);
    assert_eq!(code_of(bad_method).await, "validation_failed");
}

async fn removing_totp_needs_a_fresh_factor(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let factor = enrolled(&app, &alice).await;

    let without = delete_with(
        &app,
        "/api/auth/mfa/totp",
        &alice.access_token,
        &json!({ "method": "totp", "code": "000000" }),
    )
    .await;
    let regenerated = app
        .post_as(
            "/api/auth/mfa/recovery-codes",
            &alice.access_token,
            &json!({ "method": "recovery_code", "code": factor.recovery_codes[0] }),
        )
        .await;
    let old_code = factor.recovery_codes[1].clone();
    let with_old = delete_with(
        &app,
        "/api/auth/mfa/totp",
        &alice.access_token,
        &json!({ "method": "recovery_code", "code": old_code }),
    )
    .await;
    let removed = delete_with(
        &app,
        "/api/auth/mfa/totp",
        &alice.access_token,
        &json!({ "method": "totp", "code": code(&app, &factor.totp, 0) }),
    )
    .await;
    let twice = delete_with(
        &app,
        "/api/auth/mfa/totp",
        &alice.access_token,
        &json!({ "method": "totp", "code": code(&app, &factor.totp, 1) }),
    )
    .await;
    let back_to_password = app.logged_in(&alice).await;

    assert_eq!(without.status(), 400);
    assert_eq!(code_of(without).await, "invalid_mfa_code");
    assert_eq!(regenerated.status(), 200);
    let body: Value = regenerated.json().await.unwrap();
    assert_eq!(body["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(with_old.status(), 400, "regenerating voids the old codes");
    assert_eq!(removed.status(), 204);
    assert_eq!(twice.status(), 409);
    assert_eq!(code_of(twice).await, "mfa_not_enrolled");
    assert_eq!(
        claims(&back_to_password.access_token)["amr"],
        json!(["pwd"])
    );
    let events = event_types(&app).await;
    for kind in ["auth:mfa.enabled", "auth:mfa.disabled", "auth:mfa.failed"] {
        assert!(events.iter().any(|e| e == kind), "{kind} in the outbox");
    }
}

async fn an_admin_resets_a_users_second_factor(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    let bob = app.signed_up("bob").await;
    enrolled(&app, &alice).await;

    let by_user = app
        .delete_as(
            &format!("/api/users/{}/mfa", alice.user_id),
            &bob.access_token,
        )
        .await;
    let reset = app
        .delete_as(
            &format!("/api/users/{}/mfa", alice.user_id),
            &admin.access_token,
        )
        .await;
    let again = app
        .delete_as(
            &format!("/api/users/{}/mfa", alice.user_id),
            &admin.access_token,
        )
        .await;
    let missing = app
        .delete_as(
            "/api/users/0193f0a4-7c1e-7b52-9d1a-2f6c8e4b1a10/mfa",
            &admin.access_token,
        )
        .await;
    let password_only = app.logged_in(&alice).await;

    assert_eq!(by_user.status(), 403);
    assert_eq!(reset.status(), 204);
    assert_eq!(again.status(), 409);
    assert_eq!(code_of(again).await, "mfa_not_enrolled");
    assert_eq!(missing.status(), 404);
    assert_eq!(claims(&password_only.access_token)["amr"], json!(["pwd"]));
    assert!(sqlx_actions(&app).await.iter().any(|a| a == "mfa_disabled"));
}

async fn the_password_step_issues_no_session(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    enrolled(&app, &alice).await;
    let before: Value = app
        .get_as("/api/auth/sessions", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();

    password_step(&app, &alice).await;
    let wrong_password = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": "alice", "password": "wrong password entirely" }),
        )
        .await;
    let after: Value = app
        .get_as("/api/auth/sessions", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(wrong_password.status(), 401);
    assert_eq!(code_of(wrong_password).await, "invalid_credentials");
    assert_eq!(before, after, "no session was created by the password step");
}

async fn the_factor_lockout_is_shared_by_replicas_through_redis(backend: Backend) {
    let Some(redis) = shared_redis_for("the_factor_lockout_is_shared_by_replicas_through_redis")
    else {
        return;
    };
    let on_redis = |config: &mut auth_service::Config| {
        config.redis.url = Some(ConfigSecret(SecretString::from(redis.clone())));
        config.redis.timeout = Duration::from_secs(3);
    };
    let first = backend.app_with(on_redis).await;
    let second = first.beside(on_redis).await;
    let alice = first.signed_up("alice").await;
    let factor = enrolled(&first, &alice).await;
    second.clock.advance(Duration::from_secs(30));
    let mfa_token = password_step(&first, &alice).await;

    for app in [&first, &second, &first, &second, &first] {
        let wrong = verify(app, &mfa_token, "recovery_code", "aaaa-bbbb-cccc-dddd").await;
        assert_eq!(wrong.status(), 400);
    }
    let locked = verify(&second, &mfa_token, "totp", &code(&second, &factor.totp, 0)).await;

    assert_eq!(locked.status(), 429);
    assert_eq!(code_of(locked).await, "factor_locked");
}

/// gRPC `Login` with the right password: the challenge and no tokens, as over HTTP.
async fn grpc_password_step(grpc: &mut Client, account: &Account) -> String {
    let answer = grpc
        .login(login_request(&account.username, PASSWORD))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.mfa_required, "{answer:?}");
    assert_eq!(answer.methods, ["totp", "recovery_code"]);
    assert_eq!(answer.expires_in, 300);
    assert!(answer.access_token.is_empty() && answer.refresh_token.is_empty());
    assert!(answer.session_id.is_empty() && answer.user.is_none());
    assert!(!answer.mfa_token.is_empty());
    answer.mfa_token
}

fn verify_request(mfa_token: &str, method: &str, code: &str) -> pb::VerifyMfaRequest {
    pb::VerifyMfaRequest {
        mfa_token: mfa_token.to_owned(),
        method: method.to_owned(),
        code: code.to_owned(),
    }
}

async fn grpc_login_answers_the_challenge_and_verify_mfa_completes_it(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let factor = enrolled(&app, &alice).await;
    let mut grpc = app.grpc().await;
    let sessions_before: Value = app
        .get_as("/api/auth/sessions", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();

    let mfa_token = grpc_password_step(&mut grpc, &alice).await;
    let sessions_after: Value = app
        .get_as("/api/auth/sessions", &alice.access_token)
        .await
        .json()
        .await
        .unwrap();
    let tokens = grpc
        .verify_mfa(verify_request(
            &mfa_token,
            "totp",
            &code(&app, &factor.totp, 0),
        ))
        .await
        .unwrap()
        .into_inner();
    let spent = grpc
        .verify_mfa(verify_request(
            &mfa_token,
            "recovery_code",
            &factor.recovery_codes[0],
        ))
        .await;
    let verdict = grpc
        .validate_token(pb::ValidateTokenRequest {
            token: tokens.access_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();

    assert_eq!(
        sessions_before, sessions_after,
        "the password step made no session"
    );
    assert!(!tokens.mfa_required && tokens.mfa_token.is_empty());
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.user.unwrap().username, "alice");
    assert_eq!(
        claims(&tokens.access_token)["amr"],
        json!(["pwd", "otp", "mfa"])
    );
    assert!(verdict.valid, "{verdict:?}");
    assert_eq!(verdict.session_id, tokens.session_id);
    assert_eq!(verdict.amr, ["pwd", "otp", "mfa"]);
    assert_failed(spent, Code::Unauthenticated, "invalid_mfa_token");
}

async fn grpc_verify_mfa_follows_the_http_rules(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let factor = enrolled(&app, &alice).await;
    let mut grpc = app.grpc().await;
    let mfa_token = grpc_password_step(&mut grpc, &alice).await;

    let unknown_token = grpc
        .verify_mfa(verify_request("not-a-token", "totp", "123456"))
        .await;
    let empty = grpc.verify_mfa(pb::VerifyMfaRequest::default()).await;
    let unknown_method = grpc
        .verify_mfa(verify_request(&mfa_token, "sms", "123456"))
        .await;
    let wrong = grpc
        .verify_mfa(verify_request(
            &mfa_token,
            "recovery_code",
            "aaaa-bbbb-cccc-dddd",
        ))
        .await;
    let with_recovery = grpc
        .verify_mfa(verify_request(
            &mfa_token,
            "recovery_code",
            &factor.recovery_codes[0],
        ))
        .await
        .unwrap()
        .into_inner();
    let verdict = grpc
        .validate_token(pb::ValidateTokenRequest {
            token: with_recovery.access_token,
        })
        .await
        .unwrap()
        .into_inner();
    let mut locked = Ok(());
    let second = grpc_password_step(&mut grpc, &alice).await;
    for _ in 0..5 {
        let attempt = grpc
            .verify_mfa(verify_request(&second, "totp", "000000"))
            .await;
        locked = attempt.map(|_| ());
    }
    let after_lock = grpc
        .verify_mfa(verify_request(
            &second,
            "totp",
            &code(&app, &factor.totp, 0),
        ))
        .await;

    assert_failed(unknown_token, Code::Unauthenticated, "invalid_mfa_token");
    assert_failed(empty, Code::InvalidArgument, "validation_failed");
    assert_failed(unknown_method, Code::InvalidArgument, "validation_failed");
    assert_failed(wrong, Code::InvalidArgument, "invalid_mfa_code");
    assert_eq!(verdict.amr, ["pwd", "mfa"]);
    assert_failed(locked, Code::InvalidArgument, "invalid_mfa_code");
    assert_failed(after_lock, Code::ResourceExhausted, "factor_locked");
}

backend_tests! {
    grpc_login_answers_the_challenge_and_verify_mfa_completes_it,
    grpc_verify_mfa_follows_the_http_rules,
    the_factor_lockout_is_shared_by_replicas_through_redis,
    enrollment_answers_ten_recovery_codes_once,
    enrollment_needs_the_password_and_a_right_first_code,
    login_with_totp_issues_tokens_only_after_the_second_step,
    a_replayed_code_is_refused,
    one_step_of_skew_is_accepted_and_two_are_not,
    a_recovery_code_works_once,
    wrong_codes_lock_the_factor,
    an_mfa_token_is_single_use_and_lapses_after_five_minutes,
    removing_totp_needs_a_fresh_factor,
    an_admin_resets_a_users_second_factor,
    the_password_step_issues_no_session,
}
