//! Passkeys (SPEC §10, issue 17): registration, the list, renaming and removal, the
//! passwordless login, the passkey as the second factor after a password, a cloned
//! authenticator's counter, and responses that are tampered with or meant for another
//! challenge, origin or relying party — all with the software passkey of `support/passkey.rs`.

use serde_json::{json, Value};

use crate::backend_tests;
use crate::mfa::{claims, delete_with, event_types, sqlx_actions};
use crate::support::passkey::{Claim, SoftPasskey};
use crate::support::{code_of, with_admin, Account, Backend, TestApp, PASSWORD};

/// `register/options` for `account`: the ceremony id and the options.
async fn register_options(app: &TestApp, account: &Account) -> (String, Value) {
    let response = app
        .post_as(
            "/api/auth/passkeys/register/options",
            &account.access_token,
            &json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    (
        body["ceremony_id"].as_str().unwrap().to_owned(),
        body["options"].clone(),
    )
}

async fn register_finish(
    app: &TestApp,
    account: &Account,
    ceremony: &str,
    credential: &Value,
) -> reqwest::Response {
    app.post_as(
        "/api/auth/passkeys/register/finish",
        &account.access_token,
        &json!({ "ceremony_id": ceremony, "name": "Laptop", "credential": credential }),
    )
    .await
}

/// Registers a software passkey for `account`; answers it and the finish's body.
pub(crate) async fn registered(app: &TestApp, account: &Account) -> (SoftPasskey, Value) {
    let (ceremony, options) = register_options(app, account).await;
    let (key, credential) = SoftPasskey::register(&options);
    let response = register_finish(app, account, &ceremony, &credential).await;
    assert_eq!(response.status(), 201);
    (key, response.json().await.unwrap())
}

async fn login_options(app: &TestApp) -> (String, Value) {
    let response = app
        .post_json("/api/auth/passkeys/login/options", &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    (
        body["ceremony_id"].as_str().unwrap().to_owned(),
        body["options"].clone(),
    )
}

async fn login_finish(app: &TestApp, ceremony: &str, credential: &Value) -> reqwest::Response {
    app.post_json(
        "/api/auth/passkeys/login/finish",
        &json!({ "ceremony_id": ceremony, "credential": credential }),
    )
    .await
}

/// A passwordless login with `key`.
async fn passwordless(app: &TestApp, key: &mut SoftPasskey) -> reqwest::Response {
    let (ceremony, options) = login_options(app).await;
    login_finish(app, &ceremony, &key.assert(&options)).await
}

async fn list(app: &TestApp, account: &Account) -> Vec<Value> {
    let response = app
        .get_as("/api/auth/passkeys", &account.access_token)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["passkeys"].as_array().unwrap().clone()
}

async fn password_step(app: &TestApp, account: &Account) -> Value {
    let response = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": account.username, "password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn a_passkey_is_registered_listed_renamed_and_removed(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;

    let (_, first) = registered(&app, &alice).await;
    let (_, second) = registered(&app, &alice).await;
    let listed = list(&app, &alice).await;
    let id = first["passkey"]["id"].as_str().unwrap();
    let renamed = app
        .http
        .patch(app.url(&format!("/api/auth/passkeys/{id}")))
        .bearer_auth(&alice.access_token)
        .json(&json!({ "name": " Work laptop " }))
        .send()
        .await
        .unwrap();
    let second_id = second["passkey"]["id"].as_str().unwrap();
    let removed = app
        .delete_as(
            &format!("/api/auth/passkeys/{second_id}"),
            &alice.access_token,
        )
        .await;
    let bob = app.signed_up("bob").await;
    let not_bobs = app
        .delete_as(&format!("/api/auth/passkeys/{id}"), &bob.access_token)
        .await;

    assert_eq!(first["recovery_codes"].as_array().unwrap().len(), 10);
    assert!(
        second.get("recovery_codes").is_none(),
        "codes come with the first factor only"
    );
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["name"], "Laptop");
    assert_eq!(listed[0]["backed_up"], false);
    assert_eq!(renamed.status(), 200);
    assert_eq!(
        renamed.json::<Value>().await.unwrap()["name"],
        "Work laptop"
    );
    assert_eq!(
        removed.status(),
        204,
        "not the last factor: no fresh one needed"
    );
    assert_eq!(not_bobs.status(), 404);
    assert_eq!(code_of(not_bobs).await, "passkey_not_found");
    let left = list(&app, &alice).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["name"], "Work laptop");
    let events = event_types(&app).await;
    for kind in [
        "auth:passkey.added",
        "auth:passkey.removed",
        "auth:mfa.enabled",
    ] {
        assert!(events.iter().any(|e| e == kind), "{kind} in the outbox");
    }
}

async fn a_passkey_logs_in_without_a_username_or_password(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let (mut key, _) = registered(&app, &alice).await;

    let (ceremony, options) = login_options(&app).await;
    let response = login_finish(&app, &ceremony, &key.assert(&options)).await;
    let replayed = login_finish(&app, &ceremony, &key.assert(&options)).await;

    assert!(
        options["publicKey"].get("allowCredentials").is_none()
            || options["publicKey"]["allowCredentials"] == json!([]),
        "usernameless: {options}"
    );
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("refresh_token="));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["amr"],
        json!(["hwk", "mfa"])
    );
    assert_eq!(replayed.status(), 400, "a ceremony is single use");
    assert_eq!(code_of(replayed).await, "invalid_ceremony");
    let listed = list(&app, &alice).await;
    assert!(listed[0]["last_used_at"].is_string());
}

async fn a_synced_passkey_is_a_software_key_in_amr(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let (ceremony, options) = register_options(&app, &alice).await;
    let (mut key, credential) = SoftPasskey::register_as(&options, &Claim::default(), true);
    assert_eq!(
        register_finish(&app, &alice, &ceremony, &credential)
            .await
            .status(),
        201
    );

    let response = passwordless(&app, &mut key).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["amr"],
        json!(["swk", "mfa"])
    );
    assert_eq!(list(&app, &alice).await[0]["backed_up"], true);
}

async fn a_passkey_is_the_second_factor_after_the_password(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let (mut key, _) = registered(&app, &alice).await;

    let challenge = password_step(&app, &alice).await;
    let mfa_token = challenge["mfa_token"].as_str().unwrap();
    let options = app
        .post_json(
            "/api/auth/mfa/passkey/options",
            &json!({ "mfa_token": mfa_token }),
        )
        .await;
    assert_eq!(options.status(), 200);
    let options: Value = options.json::<Value>().await.unwrap()["options"].clone();
    let assertion = key.assert(&options);
    let without = app
        .post_json(
            "/api/auth/mfa/verify",
            &json!({ "mfa_token": mfa_token, "method": "passkey", "code": "123456" }),
        )
        .await;
    let verified = app
        .post_json(
            "/api/auth/mfa/verify",
            &json!({ "mfa_token": mfa_token, "method": "passkey", "assertion": assertion }),
        )
        .await;
    let spent = app
        .post_json(
            "/api/auth/mfa/verify",
            &json!({ "mfa_token": mfa_token, "method": "passkey", "assertion": assertion }),
        )
        .await;

    assert_eq!(challenge["mfa_required"], true);
    assert_eq!(challenge["methods"], json!(["passkey", "recovery_code"]));
    let allowed = options["publicKey"]["allowCredentials"].as_array().unwrap();
    assert_eq!(allowed.len(), 1);
    assert_eq!(without.status(), 400);
    assert_eq!(code_of(without).await, "validation_failed");
    assert_eq!(verified.status(), 200);
    let body: Value = verified.json().await.unwrap();
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "hwk", "mfa"])
    );
    assert_eq!(spent.status(), 401);
    assert_eq!(code_of(spent).await, "invalid_mfa_token");
}

async fn a_cloned_authenticator_is_refused_by_its_counter(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let (mut key, _) = registered(&app, &alice).await;
    let mut clone = key.clone();

    let original = passwordless(&app, &mut key).await;
    let original_again = passwordless(&app, &mut key).await;
    let cloned = passwordless(&app, &mut clone).await;
    clone.counter = 1;
    let cloned_again = passwordless(&app, &mut clone).await;
    let still = passwordless(&app, &mut key).await;

    assert_eq!(original.status(), 200);
    assert_eq!(original_again.status(), 200);
    assert_eq!(cloned.status(), 400, "counter 1 after 2");
    assert_eq!(code_of(cloned).await, "passkey_counter_regressed");
    assert_eq!(cloned_again.status(), 400, "counter 2, not above 2");
    assert_eq!(code_of(cloned_again).await, "passkey_counter_regressed");
    assert_eq!(still.status(), 200, "the original goes on");
    let audit = sqlx_actions(&app).await;
    assert!(audit.iter().any(|a| a == "passkey_counter_regressed"));
}

async fn a_registration_for_another_origin_rp_or_challenge_is_refused(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let cases = [
        (
            "another origin",
            Claim {
                origin: "https://evil.example.net",
                ..Claim::default()
            },
        ),
        (
            "another relying party",
            Claim {
                rp_id: Some("evil.example.net"),
                ..Claim::default()
            },
        ),
        (
            "another challenge",
            Claim {
                challenge: Some("c29tZS1vdGhlci1jaGFsbGVuZ2Utb2YtMzItYnl0ZXM"),
                ..Claim::default()
            },
        ),
    ];

    for (case, claim) in cases {
        let (ceremony, options) = register_options(&app, &alice).await;
        let (_, credential) = SoftPasskey::register_as(&options, &claim, false);
        let response = register_finish(&app, &alice, &ceremony, &credential).await;
        assert_eq!(response.status(), 400, "{case}");
        assert_eq!(code_of(response).await, "invalid_passkey", "{case}");
    }
    let (ceremony, options) = register_options(&app, &alice).await;
    let (_, mut tampered) = SoftPasskey::register(&options);
    tampered["response"]["attestationObject"] = json!("AAAA");
    let garbled = register_finish(&app, &alice, &ceremony, &tampered).await;
    let (_, other_users) = register_options(&app, &alice).await;
    let (_, credential) = SoftPasskey::register(&other_users);
    let with_other_ceremony = register_finish(&app, &alice, &ceremony, &credential).await;
    let (stale, options) = register_options(&app, &alice).await;
    app.clock.advance(std::time::Duration::from_secs(301));
    let (_, credential) = SoftPasskey::register(&options);
    let expired = register_finish(&app, &alice, &stale, &credential).await;
    let not_json = app
        .post_as(
            "/api/auth/passkeys/register/finish",
            &alice.access_token,
            &json!({ "ceremony_id": ceremony, "credential": { "id": 1 } }),
        )
        .await;

    assert_eq!(garbled.status(), 400);
    assert_eq!(code_of(garbled).await, "invalid_passkey");
    assert_eq!(with_other_ceremony.status(), 400, "the ceremony was spent");
    assert_eq!(code_of(with_other_ceremony).await, "invalid_ceremony");
    assert_eq!(expired.status(), 400, "options live 5 minutes");
    assert_eq!(code_of(expired).await, "invalid_ceremony");
    assert_eq!(not_json.status(), 400);
    assert!(
        list(&app, &alice).await.is_empty(),
        "nothing was registered"
    );
    assert_eq!(
        password_step(&app, &alice).await.get("mfa_required"),
        None,
        "no second factor"
    );
}

async fn an_assertion_tampered_or_for_another_origin_is_refused_and_counted(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let (mut key, _) = registered(&app, &alice).await;
    let mut answers = Vec::new();

    let (ceremony, options) = login_options(&app).await;
    let mut tampered = key.assert(&options);
    tampered["response"]["signature"] = json!("MEUCIQDx");
    answers.push(login_finish(&app, &ceremony, &tampered).await);
    for claim in [
        Claim {
            origin: "https://evil.example.net",
            ..Claim::default()
        },
        Claim {
            origin: "http://localhost:9999",
            ..Claim::default()
        },
        Claim {
            rp_id: Some("evil.example.net"),
            ..Claim::default()
        },
    ] {
        let (ceremony, options) = login_options(&app).await;
        answers.push(login_finish(&app, &ceremony, &key.assert_as(&options, &claim)).await);
    }
    let (ceremony, _) = login_options(&app).await;
    let (_, other) = login_options(&app).await;
    answers.push(login_finish(&app, &ceremony, &key.assert(&other)).await);

    for response in answers {
        assert_eq!(response.status(), 400);
        assert_eq!(code_of(response).await, "invalid_passkey");
    }
    let locked = passwordless(&app, &mut key).await;
    assert_eq!(
        locked.status(),
        429,
        "five wrong assertions lock the factor"
    );
    assert_eq!(code_of(locked).await, "factor_locked");
    let audit = sqlx_actions(&app).await;
    assert!(audit.iter().any(|a| a == "mfa_failure"));
}

async fn removing_the_last_second_factor_needs_a_fresh_one(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let (_, registered) = registered(&app, &alice).await;
    let id = registered["passkey"]["id"].as_str().unwrap();
    let path = format!("/api/auth/passkeys/{id}");
    let code = registered["recovery_codes"][0].as_str().unwrap();

    let bare = app.delete_as(&path, &alice.access_token).await;
    let wrong = delete_with(
        &app,
        &path,
        &alice.access_token,
        &json!({ "method": "recovery_code", "code": "aaaa-bbbb-cccc-dddd" }),
    )
    .await;
    let fresh = delete_with(
        &app,
        &path,
        &alice.access_token,
        &json!({ "method": "recovery_code", "code": code }),
    )
    .await;
    let login = password_step(&app, &alice).await;

    assert_eq!(bare.status(), 403);
    assert_eq!(code_of(bare).await, "fresh_factor_required");
    assert_eq!(wrong.status(), 400);
    assert_eq!(code_of(wrong).await, "invalid_mfa_code");
    assert_eq!(fresh.status(), 204);
    assert!(
        login["access_token"].is_string(),
        "the password alone again: {login}"
    );
    assert!(event_types(&app)
        .await
        .iter()
        .any(|e| e == "auth:mfa.disabled"));
}

async fn an_admin_reset_removes_the_passkeys(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    let (mut key, passkey) = registered(&app, &alice).await;
    let passkey_id = passkey["passkey"]["id"].as_str().unwrap().to_string();

    let reset = app
        .delete_as(
            &format!("/api/users/{}/mfa", alice.user_id),
            &admin.access_token,
        )
        .await;
    let passwordless = passwordless(&app, &mut key).await;

    assert_eq!(reset.status(), 204);
    assert!(list(&app, &alice).await.is_empty());
    assert_eq!(passwordless.status(), 400);
    assert_eq!(code_of(passwordless).await, "invalid_passkey");
    // Each removed passkey is announced, as the owner's own removal announces it, so a
    // consumer that tracks a user's passkeys by event does not keep ones that are gone.
    assert_eq!(
        removed_passkey_events(&app).await,
        vec![(passkey_id.to_string(), "admin".to_string())]
    );
}

/// `(passkey_id, by)` of every `auth:passkey.removed` event in the outbox.
async fn removed_passkey_events(app: &TestApp) -> Vec<(String, String)> {
    use sqlx::{AnyConnection, Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(&app.db.url).await.unwrap();
    let rows = sqlx::query(
        "SELECT CAST(payload AS TEXT) FROM outbox WHERE event_type = 'auth:passkey.removed' ORDER BY seq",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.iter()
        .map(|row| {
            let payload: Value = serde_json::from_str(&row.get::<String, _>(0)).unwrap();
            let data = payload.get("data").unwrap_or(&payload);
            (
                data["passkey_id"].as_str().unwrap().to_string(),
                data["by"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Two removals at once of a user's only two factors: one of them needs a fresh factor, so
/// the racing pair cannot strip the account without one.
async fn two_racing_removals_cannot_remove_the_last_factor_without_a_fresh_one(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let (_, first) = registered(&app, &alice).await;
    let (_, second) = registered(&app, &alice).await;
    let path = |passkey: &Value| {
        let id = passkey["passkey"]["id"].as_str().unwrap();
        format!("/api/auth/passkeys/{id}")
    };

    let (first, second) = (path(&first), path(&second));

    let (one, two) = tokio::join!(
        app.delete_as(&first, &alice.access_token),
        app.delete_as(&second, &alice.access_token),
    );
    let mut statuses = [one.status().as_u16(), two.status().as_u16()];
    statuses.sort_unstable();

    assert_eq!(statuses, [204, 403], "one removal, one refusal");
    assert_eq!(list(&app, &alice).await.len(), 1);
}

backend_tests! {
    two_racing_removals_cannot_remove_the_last_factor_without_a_fresh_one,
    a_passkey_is_registered_listed_renamed_and_removed,
    a_passkey_logs_in_without_a_username_or_password,
    a_synced_passkey_is_a_software_key_in_amr,
    a_passkey_is_the_second_factor_after_the_password,
    a_cloned_authenticator_is_refused_by_its_counter,
    a_registration_for_another_origin_rp_or_challenge_is_refused,
    an_assertion_tampered_or_for_another_origin_is_refused_and_counted,
    removing_the_last_second_factor_needs_a_fresh_one,
    an_admin_reset_removes_the_passkeys,
}
