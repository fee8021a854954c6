//! Who may administer what (SPEC §5): a territory admin acts only inside its territory, there
//! is always a global admin, roles are reported as stored now, and changing an account voids
//! the links mailed for it. Two deployments (territories `dk` and `se`) share one database.

use auth_service::grpc::pb;
use serde_json::{json, Value};
use tonic::Code;

use crate::backend_tests;
use crate::support::directory::{
    add_member, create_territory, give_territory_roles, patch_as, put_as,
};
use crate::support::grpc::{assert_failed, with_bearer};
use crate::support::{code_of, token_among, with_admin, Account, Backend, TestApp, ADMIN};

const NEW_PASSWORD: &str = "violet otter juggles lanterns";

/// A deployment of territory `dk` with the bootstrap admin, and one of `se` on its database.
async fn two_deployments(backend: Backend) -> (TestApp, TestApp) {
    let dk = backend
        .app_with(|config| {
            with_admin(config);
            config.server.territory = Some("dk".into());
        })
        .await;
    let se = dk
        .beside(|config| config.server.territory = Some("se".into()))
        .await;
    (dk, se)
}

/// Usernames of the users `token` can list.
async fn listed(app: &TestApp, token: &str) -> Vec<String> {
    let response = app.get_as("/api/users?limit=100", token).await;
    assert_eq!(response.status(), 200, "listing users");
    let body: Value = response.json().await.unwrap();
    let mut names: Vec<String> = body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["username"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn status_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

const FORBIDDEN: (u16, &str) = (403, "forbidden");

fn is(answer: (u16, String), expected: (u16, &str), what: &str) {
    let (status, code) = answer;
    assert_eq!((status, code.as_str()), expected, "{what}");
}

async fn a_territory_admin_administers_only_its_own_territory(backend: Backend) {
    let (dk, se) = two_deployments(backend).await;
    let root = dk.admin().await;
    create_territory(&dk, &root, "dk").await;
    create_territory(&dk, &root, "se").await;
    let boss = dk.signed_up("boss").await;
    let dina = dk.signed_up("dina").await;
    let sven = dk.signed_up("sven").await;
    let nils = dk.signed_up("nils").await;
    give_territory_roles(&dk, &root, &boss, "dk", json!(["admin"])).await;
    add_member(&dk, &root, &dina, "dk").await;
    add_member(&dk, &root, &sven, "se").await;
    let boss = dk.logged_in(&boss).await;
    let token = boss.access_token.as_str();
    let user = |account: &Account| format!("/api/users/id/{}", account.user_id);
    let change = |account: &Account| format!("/api/users/{}", account.user_id);
    let root_id = dk.get_as("/api/auth/me", &root.access_token).await;
    let root_id = root_id.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Reading: members of dk only; anyone else is not found, so ids cannot be probed.
    assert_eq!(listed(&dk, token).await, ["boss", "dina"]);
    assert_eq!(dk.get_as(&user(&dina), token).await.status(), 200);
    assert_eq!(dk.get_as("/api/users/dina", token).await.status(), 200);
    for path in [
        user(&sven),
        format!("/api/users/id/{root_id}"),
        "/api/users/sven".into(),
        "/api/users/email/sven@example.com".into(),
        "/api/users/root".into(),
    ] {
        is(
            status_of(dk.get_as(&path, token).await).await,
            (404, "user_not_found"),
            &path,
        );
    }

    // Changing: members of dk, never a global role, never another territory, never root.
    let rename = json!({ "display_name": "Dina" });
    assert_eq!(
        patch_as(&dk, &change(&dina), token, &rename).await.status(),
        200
    );
    for (what, response) in [
        (
            "a user of se",
            patch_as(&dk, &change(&sven), token, &rename).await,
        ),
        (
            "itself a global admin",
            patch_as(
                &dk,
                &change(&boss),
                token,
                &json!({ "roles": ["user", "admin"] }),
            )
            .await,
        ),
        (
            "global roles of a member",
            patch_as(
                &dk,
                &change(&dina),
                token,
                &json!({ "roles": ["user", "moderator"] }),
            )
            .await,
        ),
        (
            "the global admin",
            patch_as(
                &dk,
                &format!("/api/users/{root_id}"),
                token,
                &json!({ "roles": ["user"] }),
            )
            .await,
        ),
        (
            "admin in se",
            put_as(
                &dk,
                &format!("/api/users/{}/territories/se/roles", boss.user_id),
                token,
                Some(&json!({ "roles": ["admin"] })),
            )
            .await,
        ),
        (
            "a member of se pulled into dk",
            put_as(
                &dk,
                &format!("/api/users/{}/territories/dk", sven.user_id),
                token,
                None,
            )
            .await,
        ),
        (
            "the global admin pulled into dk",
            put_as(
                &dk,
                &format!("/api/users/{root_id}/territories/dk"),
                token,
                None,
            )
            .await,
        ),
        (
            "a role",
            dk.post_as("/api/roles", token, &json!({ "name": "editor" }))
                .await,
        ),
        (
            "a built-in role deleted",
            dk.delete_as("/api/roles/moderator", token).await,
        ),
        (
            "a territory",
            dk.post_as(
                "/api/territories",
                token,
                &json!({ "code": "fi", "name": "FI" }),
            )
            .await,
        ),
        (
            "its own territory",
            patch_as(
                &dk,
                "/api/territories/dk",
                token,
                &json!({ "is_active": false }),
            )
            .await,
        ),
        (
            "a user of se deleted",
            dk.delete_as(&change(&sven), token).await,
        ),
    ] {
        is(status_of(response).await, FORBIDDEN, what);
    }

    // Inside dk: memberships and roles held in dk.
    let path = format!("/api/users/{}/territories/dk", nils.user_id);
    assert_eq!(put_as(&dk, &path, token, None).await.status(), 204);
    let roles = format!("/api/users/{}/territories/dk/roles", dina.user_id);
    let moderator = json!({ "roles": ["moderator"] });
    assert_eq!(
        put_as(&dk, &roles, token, Some(&moderator)).await.status(),
        200
    );
    assert_eq!(listed(&dk, token).await, ["boss", "dina", "nils"]);
    let created = dk
        .post_as(
            "/api/users",
            token,
            &json!({ "email": "olga@example.com", "username": "olga", "password": "a long enough passphrase" }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["territories"], json!(["dk"]));
    let global_role = dk
        .post_as(
            "/api/users",
            token,
            &json!({ "email": "pia@example.com", "username": "pia",
                     "password": "a long enough passphrase", "roles": ["admin"] }),
        )
        .await;
    is(
        status_of(global_role).await,
        FORBIDDEN,
        "creating a global admin",
    );

    // Another admin's credentials stay theirs.
    give_territory_roles(&dk, &root, &dina, "dk", json!(["admin"])).await;
    for patch in [
        json!({ "password": NEW_PASSWORD }),
        json!({ "email": "taken-over@example.com" }),
    ] {
        is(
            status_of(patch_as(&dk, &change(&dina), token, &patch).await).await,
            FORBIDDEN,
            "another admin's credentials",
        );
    }

    // The audit log: only entries about users of dk.
    let audit = dk.get_as("/api/audit?limit=100", token).await;
    assert_eq!(audit.status(), 200);
    let audit: Value = audit.json().await.unwrap();
    let members = [
        &boss.user_id,
        &dina.user_id,
        &nils.user_id,
        created["id"].as_str().unwrap(),
    ];
    let entries = audit["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    for entry in entries {
        let about = entry["user_id"].as_str().unwrap_or("none");
        assert!(members.contains(&about), "an entry about {about}: {entry}");
    }

    // gRPC GetUser alike.
    let mut client = dk.grpc().await;
    let get = |id: &str| {
        with_bearer(
            pb::GetUserRequest {
                user_id: id.to_owned(),
            },
            token,
        )
    };
    assert!(client.get_user(get(&dina.user_id)).await.is_ok());
    assert_failed(
        client.get_user(get(&sven.user_id)).await,
        Code::NotFound,
        "user_not_found",
    );
    assert_failed(
        client.get_user(get(&root_id)).await,
        Code::NotFound,
        "user_not_found",
    );

    // On the se deployment the dk admin is nobody special; root is still admin everywhere.
    let boss_on_se = se.logged_in(&boss).await;
    is(
        status_of(se.get_as("/api/users", &boss_on_se.access_token).await).await,
        FORBIDDEN,
        "a dk admin on se",
    );
    let root_on_se = se.admin().await;
    assert_eq!(root_on_se.username, ADMIN.1);
    assert_eq!(
        se.get_as("/api/users", &root_on_se.access_token)
            .await
            .status(),
        200
    );
}

async fn there_is_always_a_global_admin(backend: Backend) {
    let (dk, _se) = two_deployments(backend).await;
    let root = dk.admin().await;
    create_territory(&dk, &root, "dk").await;
    let boss = dk.signed_up("boss").await;
    give_territory_roles(&dk, &root, &boss, "dk", json!(["admin"])).await;
    let root_path = format!(
        "/api/users/{}",
        dk.get_as("/api/auth/me", &root.access_token)
            .await
            .json::<Value>()
            .await
            .unwrap()["id"]
            .as_str()
            .unwrap()
    );
    let token = root.access_token.as_str();

    // A territory admin does not count: root may not demote, deactivate or delete itself.
    for (what, response) in [
        (
            "demoted",
            patch_as(&dk, &root_path, token, &json!({ "roles": ["user"] })).await,
        ),
        (
            "deactivated",
            patch_as(&dk, &root_path, token, &json!({ "is_active": false })).await,
        ),
        ("deleted", dk.delete_as(&root_path, token).await),
    ] {
        is(status_of(response).await, (409, "last_admin"), what);
    }
    // Territory roles and memberships of the global admin are its own business.
    let root_roles = format!("{root_path}/territories/dk/roles");
    assert_eq!(
        put_as(&dk, &root_roles, token, Some(&json!({ "roles": [] })))
            .await
            .status(),
        200
    );
    assert_eq!(
        dk.delete_as(&format!("{root_path}/territories/dk"), token)
            .await
            .status(),
        204
    );
    let me = dk.get_as("/api/auth/me", token).await;
    assert_eq!(
        me.json::<Value>().await.unwrap()["roles"],
        json!(["admin", "user"])
    );
}

async fn introspection_reports_the_roles_stored_now(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let alice = app.signed_up("alice").await;
    let path = format!("/api/users/{}", alice.user_id);
    let promote = json!({ "roles": ["moderator", "user"] });
    assert_eq!(
        patch_as(&app, &path, &root.access_token, &promote)
            .await
            .status(),
        200
    );
    let alice = app.logged_in(&alice).await;
    let demote = json!({ "roles": ["user"] });
    assert_eq!(
        patch_as(&app, &path, &root.access_token, &demote)
            .await
            .status(),
        200
    );

    let introspected: Value = app
        .post_json(
            "/api/auth/introspect",
            &json!({ "token": alice.access_token }),
        )
        .await
        .json()
        .await
        .unwrap();
    let validated = app
        .grpc()
        .await
        .validate_token(pb::ValidateTokenRequest {
            token: alice.access_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();

    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["roles"], json!(["user"]));
    assert!(validated.valid);
    assert_eq!(validated.roles, ["user"]);
}

/// Live reset and verification links of a fresh `account`: the verification link its signup
/// mailed, and a reset link asked for now.
async fn mailed_links(app: &TestApp, account: &Account) -> (String, String) {
    let forgot = app
        .post_json(
            "/api/auth/password/forgot",
            &json!({ "email": account.email }),
        )
        .await;
    assert_eq!(forgot.status(), 202);
    let mails = app.wait_mails(&account.email, 2).await;
    assert_eq!(
        mails.len(),
        2,
        "the signup's verification mail and the reset mail"
    );
    (
        token_among(&mails, "reset-password"),
        token_among(&mails, "verify-email"),
    )
}

async fn spend(app: &TestApp, reset: &str, verify: &str) -> [(u16, String); 2] {
    let reset = app
        .post_json(
            "/api/auth/password/reset",
            &json!({ "token": reset, "new_password": NEW_PASSWORD }),
        )
        .await;
    let verify = app
        .post_json("/api/auth/email/verify", &json!({ "token": verify }))
        .await;
    [status_of(reset).await, status_of(verify).await]
}

async fn account_changes_void_the_links_mailed_before(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let root = app.admin().await;
    let invalid = || {
        [
            (400, "invalid_token".to_owned()),
            (400, "invalid_token".to_owned()),
        ]
    };

    // An email change by an administrator.
    let alice = app.signed_up("alice").await;
    let (reset, verify) = mailed_links(&app, &alice).await;
    let path = format!("/api/users/{}", alice.user_id);
    let moved = json!({ "email": "alice.new@example.com" });
    assert_eq!(
        patch_as(&app, &path, &root.access_token, &moved)
            .await
            .status(),
        200
    );
    assert_eq!(
        spend(&app, &reset, &verify).await,
        invalid(),
        "email change"
    );
    let mut grpc = app.grpc().await;
    assert_failed(
        grpc.reset_password(pb::ResetPasswordRequest {
            token: reset.clone(),
            new_password: NEW_PASSWORD.into(),
        })
        .await,
        Code::InvalidArgument,
        "invalid_token",
    );

    // The user's own password change.
    let bob = app.signed_up("bob").await;
    let (reset, verify) = mailed_links(&app, &bob).await;
    let change = app
        .post_as(
            "/api/auth/password/change",
            &bob.access_token,
            &json!({ "current_password": bob.password, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(change.status(), 204);
    assert_eq!(
        spend(&app, &reset, &verify).await,
        invalid(),
        "password change"
    );

    // A password reset spends its link and voids the others.
    let carl = app.signed_up("carl").await;
    let (reset, verify) = mailed_links(&app, &carl).await;
    let done = app
        .post_json(
            "/api/auth/password/reset",
            &json!({ "token": reset, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(done.status(), 204);
    let verify = app
        .post_json("/api/auth/email/verify", &json!({ "token": verify }))
        .await;
    assert_eq!(code_of(verify).await, "invalid_token", "after a reset");

    // Deactivation, then reactivation.
    let dora = app.signed_up("dora").await;
    let (reset, verify) = mailed_links(&app, &dora).await;
    let path = format!("/api/users/{}", dora.user_id);
    for active in [false, true] {
        let patch = json!({ "is_active": active });
        assert_eq!(
            patch_as(&app, &path, &root.access_token, &patch)
                .await
                .status(),
            200
        );
    }
    assert_eq!(
        spend(&app, &reset, &verify).await,
        invalid(),
        "deactivation"
    );
}

backend_tests! {
    a_territory_admin_administers_only_its_own_territory,
    there_is_always_a_global_admin,
    introspection_reports_the_roles_stored_now,
    account_changes_void_the_links_mailed_before,
}
