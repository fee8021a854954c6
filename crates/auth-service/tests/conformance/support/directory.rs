//! Administering the directory the way an administrator's client does: PUT and PATCH with a
//! bearer token, territories, territory roles, memberships, and a look inside access tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::{Account, TestApp};

pub async fn put_as(
    app: &TestApp,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let request = app.http.put(app.url(path)).bearer_auth(token);
    let request = match body {
        Some(body) => request.json(body),
        None => request,
    };
    request.send().await.expect("request sent")
}

pub async fn patch_as(app: &TestApp, path: &str, token: &str, body: &Value) -> reqwest::Response {
    let request = app.http.patch(app.url(path)).bearer_auth(token);
    request.json(body).send().await.expect("request sent")
}

pub async fn create_territory(app: &TestApp, admin: &Account, code: &str) {
    let body = json!({ "code": code, "name": code.to_uppercase() });
    let response = app
        .post_as("/api/territories", &admin.access_token, &body)
        .await;
    assert_eq!(response.status(), 201, "territory {code}");
}

pub async fn give_territory_roles(
    app: &TestApp,
    admin: &Account,
    user: &Account,
    code: &str,
    roles: Value,
) {
    let path = format!("/api/users/{}/territories/{code}/roles", user.user_id);
    let body = json!({ "roles": roles });
    let response = put_as(app, &path, &admin.access_token, Some(&body)).await;
    assert_eq!(
        response.status(),
        200,
        "roles of {} in {code}",
        user.username
    );
}

/// Makes `user` a member of territory `code`.
pub async fn add_member(app: &TestApp, admin: &Account, user: &Account, code: &str) {
    let path = format!("/api/users/{}/territories/{code}", user.user_id);
    let response = put_as(app, &path, &admin.access_token, None).await;
    assert_eq!(response.status(), 204, "{} joins {code}", user.username);
}

/// The claims of an access token, unverified.
pub fn claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}
