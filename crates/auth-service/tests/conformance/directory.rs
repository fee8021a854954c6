//! Roles, territories, memberships and territory roles (SPEC §2), and the territory roles
//! that access tokens carry (SPEC §3).

use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};

use crate::backend_tests;
use crate::support::directory::{claims, create_territory, give_territory_roles, patch_as, put_as};
use crate::support::{code_of, with_admin, Account, Backend, TestApp};

const NO_USER: &str = "00000000-0000-7000-8000-000000000000";

async fn me(app: &TestApp, account: &Account) -> Value {
    let response = app.get_as("/api/auth/me", &account.access_token).await;
    response.json().await.unwrap()
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(&app.db.url).await.unwrap();
    sqlx::query_scalar("SELECT action FROM audit_log ORDER BY occurred_at, id")
        .fetch_all(&mut db)
        .await
        .unwrap()
}

async fn user_updated_events(app: &TestApp) -> i64 {
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(&app.db.url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE event_type = 'auth:user.updated'")
        .fetch_one(&mut db)
        .await
        .unwrap()
}

async fn directory_routes_need_a_token_and_the_admin_role(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let alice = app.signed_up("alice").await;
    let token = &alice.access_token;
    let member = format!("/api/users/{}/territories/dk", alice.user_id);
    let roles = format!("{member}/roles");

    let anonymous = [
        app.get("/api/roles").await,
        app.post_json("/api/roles", &json!({ "name": "editor" }))
            .await,
        app.get("/api/territories").await,
    ];
    let forbidden = [
        app.get_as("/api/roles", token).await,
        app.post_as("/api/roles", token, &json!({ "name": "editor" }))
            .await,
        app.delete_as("/api/roles/moderator", token).await,
        app.get_as("/api/territories", token).await,
        app.post_as(
            "/api/territories",
            token,
            &json!({ "code": "dk", "name": "DK" }),
        )
        .await,
        patch_as(&app, "/api/territories/dk", token, &json!({ "name": "x" })).await,
        put_as(&app, &member, token, None).await,
        app.delete_as(&member, token).await,
        put_as(&app, &roles, token, Some(&json!({ "roles": [] }))).await,
    ];

    for response in anonymous {
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    for response in forbidden {
        assert_eq!(response.status(), 403, "{}", response.url());
        assert_eq!(code_of(response).await, "forbidden");
    }
}

async fn an_admin_creates_lists_and_deletes_roles(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let token = &admin.access_token;

    let created = app
        .post_as(
            "/api/roles",
            token,
            &json!({ "name": "editor", "description": "Edits", "permissions": ["posts:write", "posts:read"] }),
        )
        .await;
    let bare = app
        .post_as("/api/roles", token, &json!({ "name": "a_b-9" }))
        .await;
    let list: Value = app.get_as("/api/roles", token).await.json().await.unwrap();
    let deleted = app.delete_as("/api/roles/editor", token).await;
    let again = app.delete_as("/api/roles/editor", token).await;
    let after: Value = app.get_as("/api/roles", token).await.json().await.unwrap();

    assert_eq!(created.status(), 201);
    let role: Value = created.json().await.unwrap();
    assert_eq!(role["name"], "editor");
    assert_eq!(role["description"], "Edits");
    assert_eq!(role["permissions"], json!(["posts:read", "posts:write"]));
    assert!(role["created_at"].is_string());
    assert_eq!(bare.status(), 201);
    let bare: Value = bare.json().await.unwrap();
    assert_eq!(bare["description"], Value::Null);
    assert_eq!(bare["permissions"], json!([]));
    let names: Vec<&str> = list["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|role| role["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a_b-9", "admin", "editor", "moderator", "user"]);
    assert_eq!(
        list["roles"][2]["permissions"],
        json!(["posts:read", "posts:write"])
    );
    assert_eq!(deleted.status(), 204);
    assert_eq!(again.status(), 404);
    assert_eq!(code_of(again).await, "role_not_found");
    assert_eq!(after["roles"].as_array().unwrap().len(), 4);
    let actions = audit_actions(&app).await;
    assert_eq!(actions.iter().filter(|a| *a == "role_created").count(), 2);
    assert!(actions.iter().any(|a| a == "role_deleted"));
}

async fn roles_refuse_duplicates_bad_names_and_deleting_built_ins(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let token = &admin.access_token;
    let create = async |body: Value| app.post_as("/api/roles", token, &body).await;

    assert_eq!(create(json!({ "name": "editor" })).await.status(), 201);
    let duplicate = create(json!({ "name": "editor" })).await;
    let built_in_name = create(json!({ "name": "admin" })).await;
    let mut bad = Vec::new();
    for name in ["e", "Editor", "has space", "ödit", &"x".repeat(51)] {
        bad.push(create(json!({ "name": name })).await);
    }
    let unknown_field = create(json!({ "name": "ok", "color": "red" })).await;
    let mut built_in = Vec::new();
    for name in ["admin", "moderator", "user"] {
        built_in.push(app.delete_as(&format!("/api/roles/{name}"), token).await);
    }
    let missing = app.delete_as("/api/roles/ghost", token).await;

    assert_eq!(duplicate.status(), 409);
    assert_eq!(code_of(duplicate).await, "role_exists");
    assert_eq!(built_in_name.status(), 409);
    assert_eq!(code_of(built_in_name).await, "role_exists");
    for response in bad {
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["errors"][0]["field"], "name");
    }
    assert_eq!(unknown_field.status(), 400);
    for response in built_in {
        assert_eq!(response.status(), 409);
        assert_eq!(code_of(response).await, "built_in_role");
    }
    assert_eq!(missing.status(), 404);
    assert_eq!(code_of(missing).await, "role_not_found");
}

async fn deleting_a_role_removes_its_grants(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    let token = &admin.access_token;
    app.post_as("/api/roles", token, &json!({ "name": "editor" }))
        .await;
    create_territory(&app, &admin, "dk").await;
    give_territory_roles(&app, &admin, &alice, "dk", json!(["editor", "moderator"])).await;
    let events_before = user_updated_events(&app).await;

    let deleted = app.delete_as("/api/roles/editor", token).await;
    let again = put_as(
        &app,
        &format!("/api/users/{}/territories/dk/roles", alice.user_id),
        token,
        Some(&json!({ "roles": ["editor"] })),
    )
    .await;

    assert_eq!(deleted.status(), 204);
    assert_eq!(user_updated_events(&app).await, events_before + 1);
    assert_eq!(again.status(), 400);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "unknown_role");
}

async fn an_admin_creates_lists_and_patches_territories(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let token = &admin.access_token;

    let se = app
        .post_as(
            "/api/territories",
            token,
            &json!({ "code": "se", "name": "Sweden", "description": "Nordics", "is_active": false }),
        )
        .await;
    let dk = app
        .post_as(
            "/api/territories",
            token,
            &json!({ "code": "dk", "name": "Denmark" }),
        )
        .await;
    let patched = patch_as(
        &app,
        "/api/territories/se",
        token,
        &json!({ "name": "Sverige", "description": null, "is_active": true }),
    )
    .await;
    let only_description = patch_as(
        &app,
        "/api/territories/dk",
        token,
        &json!({ "description": "Danmark" }),
    )
    .await;
    let list: Value = app
        .get_as("/api/territories", token)
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(se.status(), 201);
    let se: Value = se.json().await.unwrap();
    assert_eq!(se["is_active"], false);
    assert_eq!(se["description"], "Nordics");
    assert_eq!(dk.status(), 201);
    let dk: Value = dk.json().await.unwrap();
    assert_eq!(dk["is_active"], true);
    assert_eq!(dk["description"], Value::Null);
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["name"], "Sverige");
    assert_eq!(patched["description"], Value::Null);
    assert_eq!(patched["is_active"], true);
    assert_eq!(patched["created_at"], se["created_at"]);
    let only_description: Value = only_description.json().await.unwrap();
    assert_eq!(only_description["name"], "Denmark");
    assert_eq!(only_description["description"], "Danmark");
    let codes: Vec<&str> = list["territories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["dk", "se"]);
    assert_eq!(list["territories"][1]["name"], "Sverige");
    assert!(list["territories"][0]["updated_at"].is_string());
    let actions = audit_actions(&app).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "territory_created").count(),
        2
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "territory_updated").count(),
        2
    );
}

async fn territories_refuse_duplicates_bad_codes_and_unknown_codes(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let token = &admin.access_token;
    create_territory(&app, &admin, "dk").await;

    let duplicate = app
        .post_as(
            "/api/territories",
            token,
            &json!({ "code": "dk", "name": "Again" }),
        )
        .await;
    let mut bad = Vec::new();
    for code in ["d", "DK", "d_k", "abcdefghijk", "d k"] {
        let body = json!({ "code": code, "name": "X" });
        bad.push(app.post_as("/api/territories", token, &body).await);
    }
    let empty_name = app
        .post_as(
            "/api/territories",
            token,
            &json!({ "code": "no", "name": " " }),
        )
        .await;
    let missing = patch_as(&app, "/api/territories/xx", token, &json!({ "name": "X" })).await;
    let unknown_field =
        patch_as(&app, "/api/territories/dk", token, &json!({ "code": "se" })).await;

    assert_eq!(duplicate.status(), 409);
    assert_eq!(code_of(duplicate).await, "territory_exists");
    for response in bad {
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["field"], "code");
    }
    assert_eq!(empty_name.status(), 400);
    assert_eq!(missing.status(), 404);
    assert_eq!(code_of(missing).await, "territory_not_found");
    assert_eq!(unknown_field.status(), 400);
}

async fn memberships_are_idempotent_and_name_what_is_missing(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    let token = &admin.access_token;
    create_territory(&app, &admin, "dk").await;
    let path = format!("/api/users/{}/territories/dk", alice.user_id);

    let first = put_as(&app, &path, token, None).await;
    let second = put_as(&app, &path, token, None).await;
    let member = me(&app, &alice).await;
    let removed = app.delete_as(&path, token).await;
    let removed_again = app.delete_as(&path, token).await;
    let after = me(&app, &alice).await;
    let no_user = put_as(
        &app,
        &format!("/api/users/{NO_USER}/territories/dk"),
        token,
        None,
    )
    .await;
    let no_territory = put_as(
        &app,
        &format!("/api/users/{}/territories/xx", alice.user_id),
        token,
        None,
    )
    .await;
    let bad_id = put_as(&app, "/api/users/nope/territories/dk", token, None).await;
    let delete_no_user = app
        .delete_as(&format!("/api/users/{NO_USER}/territories/dk"), token)
        .await;
    let delete_no_territory = app
        .delete_as(
            &format!("/api/users/{}/territories/xx", alice.user_id),
            token,
        )
        .await;
    let delete_bad_id = app.delete_as("/api/users/nope/territories/dk", token).await;

    assert_eq!(first.status(), 204);
    assert_eq!(second.status(), 204);
    assert_eq!(member["territories"], json!(["dk"]));
    assert_eq!(removed.status(), 204);
    assert_eq!(removed_again.status(), 204);
    assert_eq!(after["territories"], json!([]));
    assert_eq!(no_user.status(), 404);
    assert_eq!(code_of(no_user).await, "user_not_found");
    assert_eq!(no_territory.status(), 404);
    assert_eq!(code_of(no_territory).await, "territory_not_found");
    assert_eq!(bad_id.status(), 400);
    assert_eq!(code_of(bad_id).await, "validation_failed");
    assert_eq!(delete_no_user.status(), 404);
    assert_eq!(code_of(delete_no_user).await, "user_not_found");
    assert_eq!(delete_no_territory.status(), 404);
    assert_eq!(code_of(delete_no_territory).await, "territory_not_found");
    assert_eq!(delete_bad_id.status(), 400);
    // Only the changes were recorded: one join, one removal.
    let actions = audit_actions(&app).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "territory_member_added")
            .count(),
        1
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "territory_member_removed")
            .count(),
        1
    );
    assert_eq!(user_updated_events(&app).await, 2);
}

async fn territory_roles_are_replaced_and_join_the_user(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    let token = &admin.access_token;
    create_territory(&app, &admin, "dk").await;
    let path = format!("/api/users/{}/territories/dk/roles", alice.user_id);
    let put =
        async |roles: Value| put_as(&app, &path, token, Some(&json!({ "roles": roles }))).await;

    let first = put(json!(["moderator", "admin", "moderator"])).await;
    let joined = me(&app, &alice).await;
    let replaced = put(json!(["moderator"])).await;
    let unknown = put(json!(["moderator", "wizard"])).await;
    let no_user = put_as(
        &app,
        &format!("/api/users/{NO_USER}/territories/dk/roles"),
        token,
        Some(&json!({ "roles": [] })),
    )
    .await;
    let no_territory = put_as(
        &app,
        &format!("/api/users/{}/territories/xx/roles", alice.user_id),
        token,
        Some(&json!({ "roles": [] })),
    )
    .await;
    let bad_id = put_as(
        &app,
        "/api/users/nope/territories/dk/roles",
        token,
        Some(&json!({ "roles": [] })),
    )
    .await;
    let missing_roles = put_as(&app, &path, token, Some(&json!({}))).await;

    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(
        first,
        json!({ "territory": "dk", "roles": ["admin", "moderator"] })
    );
    assert_eq!(joined["territories"], json!(["dk"]));
    assert_eq!(replaced.status(), 200);
    let replaced: Value = replaced.json().await.unwrap();
    assert_eq!(replaced["roles"], json!(["moderator"]));
    assert_eq!(unknown.status(), 400);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "roles");
    assert_eq!(body["errors"][0]["code"], "unknown_role");
    assert_eq!(no_user.status(), 404);
    assert_eq!(code_of(no_user).await, "user_not_found");
    assert_eq!(no_territory.status(), 404);
    assert_eq!(code_of(no_territory).await, "territory_not_found");
    assert_eq!(bad_id.status(), 400);
    assert_eq!(missing_roles.status(), 400);
    // Without a deployment territory, territory roles stay out of the global ones.
    assert_eq!(me(&app, &alice).await["roles"], json!(["user"]));
    let actions = audit_actions(&app).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "territory_roles_set")
            .count(),
        2
    );
}

async fn removing_a_member_removes_their_roles_in_that_territory(backend: Backend) {
    let app = backend
        .app_with(|config| {
            with_admin(config);
            config.server.territory = Some("dk".into());
        })
        .await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    create_territory(&app, &admin, "dk").await;
    give_territory_roles(&app, &admin, &alice, "dk", json!(["moderator"])).await;
    let path = format!("/api/users/{}/territories/dk", alice.user_id);

    let before = me(&app, &alice).await;
    let removed = app.delete_as(&path, &admin.access_token).await;
    let after = me(&app, &alice).await;

    assert_eq!(before["roles"], json!(["moderator", "user"]));
    assert_eq!(removed.status(), 204);
    assert_eq!(after["roles"], json!(["user"]));
    assert_eq!(after["territories"], json!([]));
}

async fn tokens_carry_the_roles_held_in_the_deployments_territory(backend: Backend) {
    let app = backend
        .app_with(|config| {
            with_admin(config);
            config.server.territory = Some("dk".into());
        })
        .await;
    let admin = app.admin().await;
    let alice = app.signed_up("alice").await;
    create_territory(&app, &admin, "dk").await;
    create_territory(&app, &admin, "se").await;
    app.post_as(
        "/api/roles",
        &admin.access_token,
        &json!({ "name": "editor" }),
    )
    .await;
    give_territory_roles(&app, &admin, &alice, "dk", json!(["moderator"])).await;
    give_territory_roles(&app, &admin, &alice, "se", json!(["editor"])).await;

    let again = app.logged_in(&alice).await;
    let claims = claims(&again.access_token);
    let me = me(&app, &again).await;

    assert_eq!(claims["territory"], "dk");
    assert_eq!(claims["roles"], json!(["moderator", "user"]));
    assert_eq!(me["territories"], json!(["dk", "se"]));
    assert_eq!(me["roles"], json!(["moderator", "user"]));
}

backend_tests! {
    directory_routes_need_a_token_and_the_admin_role,
    an_admin_creates_lists_and_deletes_roles,
    roles_refuse_duplicates_bad_names_and_deleting_built_ins,
    deleting_a_role_removes_its_grants,
    an_admin_creates_lists_and_patches_territories,
    territories_refuse_duplicates_bad_codes_and_unknown_codes,
    memberships_are_idempotent_and_name_what_is_missing,
    territory_roles_are_replaced_and_join_the_user,
    removing_a_member_removes_their_roles_in_that_territory,
    tokens_carry_the_roles_held_in_the_deployments_territory,
}
