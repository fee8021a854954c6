//! What the OpenAPI document says about inputs beyond their Rust types: the patterns and
//! lengths the door checks (`domain/account.rs`, `services/directory/`), and the shapes a
//! derive cannot state (login's "exactly one of", introspection's two answers). Each pattern
//! admits only values the server accepts, so a client (or a fuzzer) that follows the document
//! is never refused for the form of a field.

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

use super::api_key_access;
use super::enrollment::{self, REFUSAL};

/// Role names (`NewRole::parse`): 2–50 lowercase letters, digits, `_` or `-`.
const ROLE: &str = r"^[a-z0-9_-]{2,50}$";
/// Not blank: holds a character Rust's `trim` keeps (an unanchored pattern).
const NOT_BLANK: &str = r"[^\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";
/// The default upper bound of `[password]` `max_length`.
const PASSWORD_MAX: usize = 128;

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String))
}

/// `{active: true, …}` with `required` claims, each required: the start of every kind of
/// active introspection answer.
fn active_with(required: impl IntoIterator<Item = (String, ObjectBuilder)>) -> ObjectBuilder {
    let active = ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .property(
            "active",
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Boolean))
                .enum_values(Some([true])),
        )
        .required("active");
    required.into_iter().fold(active, |object, (name, schema)| {
        object.property(name.clone(), schema).required(name)
    })
}

fn null() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::Null))
}

fn password() -> ObjectBuilder {
    string()
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Password,
        )))
        .max_length(Some(PASSWORD_MAX))
}

/// `POST /api/auth/login`: exactly one of `email` and `username` (the other absent or
/// `null`), and the password.
pub struct LoginSchema;

impl PartialSchema for LoginSchema {
    fn schema() -> RefOr<Schema> {
        let branch = |given: &str, other: &str| {
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Object))
                .property(given, string())
                .property(other, null())
                .property("password", password())
                .required(given)
                .required("password")
                .additional_properties(Some(
                    utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
                ))
        };
        OneOfBuilder::new()
            .description(Some(
                "Exactly one of `email` and `username`, and the password.",
            ))
            .item(branch("email", "username"))
            .item(branch("username", "email"))
            .into()
    }
}

impl ToSchema for LoginSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "LoginRequest".into()
    }
}

/// RFC 7662: `{"active": false}` and nothing else, or `{"active": true, …claims}`.
pub struct IntrospectionSchema;

impl PartialSchema for IntrospectionSchema {
    fn schema() -> RefOr<Schema> {
        let inactive = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Object))
            .property(
                "active",
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::Boolean))
                    .enum_values(Some([false])),
            )
            .required("active")
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ));
        let claims = |name: &str, schema: ObjectBuilder| (name.to_owned(), schema);
        let integer = || ObjectBuilder::new().schema_type(SchemaType::Type(Type::Integer));
        let uuid = || {
            string().format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Uuid,
            )))
        };
        let active = active_with([
            claims("sub", uuid()),
            claims("sid", uuid()),
            claims("username", string()),
            claims("exp", integer()),
            claims("iat", integer()),
            claims("token_type", string().enum_values(Some(["Bearer"]))),
            claims("iss", string()),
            claims("aud", string()),
        ])
            .property(
                "roles",
                utoipa::openapi::schema::ArrayBuilder::new().items(string()),
            )
            .required("roles")
            .property(
                "amr",
                utoipa::openapi::schema::ArrayBuilder::new()
                    .items(string())
                    .description(Some(
                        "RFC 8176 methods the session was authenticated with: `[\"pwd\"]`, \
                         `[\"pwd\",\"otp\",\"mfa\"]` (TOTP) or `[\"pwd\",\"mfa\"]` (a recovery code)",
                    )),
            )
            .property(
                "territory",
                string().description(Some("present when the token names a territory")),
            )
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ));
        // SPEC §11: a client's token, active while its client exists and is active.
        let client = active_with([
            claims("sub", uuid()),
            claims("client_id", uuid()),
            claims("scope", string()),
            claims("exp", integer()),
            claims("iat", integer()),
            claims("token_type", string().enum_values(Some(["Bearer"]))),
            claims("iss", string()),
            claims("aud", string()),
        ])
        .property(
            "roles",
            utoipa::openapi::schema::ArrayBuilder::new().items(string()),
        )
        .required("roles")
        .property(
            "territory",
            string().description(Some("present when the token names a territory")),
        )
        .additional_properties(Some(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
        ));
        // SPEC §11: an API key, active while it is held, unexpired and its owner active.
        let key = active_with([
            claims("token_type", string().enum_values(Some(["api_key"]))),
            claims("sub", uuid()),
            claims("owner_type", string().enum_values(Some(["user", "client"]))),
            claims("scope", string()),
            claims("iat", integer()),
        ])
        .property(
            "roles",
            utoipa::openapi::schema::ArrayBuilder::new().items(string()),
        )
        .required("roles")
        .property("username", string().description(Some("a user's key")))
        .property("client_id", uuid().description(Some("a client's key")))
        .property(
            "exp",
            integer().description(Some("absent when the key does not expire")),
        )
        .additional_properties(Some(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
        ));
        OneOfBuilder::new()
            .description(Some(
                "`{\"active\":false}` for a token that is invalid, whose session has ended or \
                 whose client is deleted or inactive, or an API key that is unknown, revoked or \
                 expired, else `{\"active\":true}` with the token's claims (RFC 7662): a \
                 user's (`sid`, `username`), a client's (`client_id`, `scope`) or an API \
                 key's (`token_type: api_key`, `owner_type`, `scope`).",
            ))
            .item(inactive)
            .item(active)
            .item(client)
            .item(key)
            .into()
    }
}

impl ToSchema for IntrospectionSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "Introspection".into()
    }
}

/// A role name, as a request names one ([`ROLE`]).
pub struct RoleName;

impl PartialSchema for RoleName {
    fn schema() -> RefOr<Schema> {
        string().pattern(Some(ROLE)).into()
    }
}

impl ToSchema for RoleName {}

/// A permission of a role: 1–100 characters, not blank.
pub struct Permission;

impl PartialSchema for Permission {
    fn schema() -> RefOr<Schema> {
        string()
            .max_length(Some(100))
            .pattern(Some(NOT_BLANK))
            .into()
    }
}

impl ToSchema for Permission {}

/// Answers that hold a user, as (path, method, status, JSON pointer of the user).
const USER_ANSWERS: &[(&str, &str, &str, &str)] = &[
    ("/api/users", "post", "201", ""),
    ("/api/auth/signup", "post", "201", "/user"),
    ("/api/auth/register", "post", "201", "/user"),
    ("/api/auth/login", "post", "200", "/user"),
    ("/api/auth/refresh", "post", "200", "/user"),
    ("/api/auth/me", "get", "200", ""),
    ("/api/auth/me", "patch", "200", ""),
    ("/api/users/id/{id}", "get", "200", ""),
    ("/api/users/{id}", "get", "200", ""),
    ("/api/users/email/{email}", "get", "200", ""),
    ("/api/users/{id}", "patch", "200", ""),
    ("/api/users", "get", "200", "/users/0"),
];

/// Operations whose path `id` is a user id.
const BY_USER_ID: &[&str] = &[
    "user_by_id",
    "patch_user",
    "delete_user",
    "add_member",
    "remove_member",
    "set_territory_roles",
];

/// OpenAPI links saying which value of an answer names a user where: `GET /api/users/{id}`
/// takes the username (its segment shares the name `id` with the routes that take the id),
/// the lookup by email takes the email, every route of [`BY_USER_ID`] takes the id, and an audit entry's `user_id`, which is `null`
/// for an entry about no user, names the user the id routes take.
fn add_links(document: &mut OpenApi) {
    // utoipa's `Link` serializes `operation_id` in snake case, which OpenAPI tools do not
    // read: the links are written as JSON beside the derived keywords instead.
    let link = |operation: &str, parameter: &str, pointer: String| {
        serde_json::json!({
            "operationId": operation,
            "parameters": { parameter: format!("$response.body#{pointer}") },
        })
    };
    let mut add = |path: &str, method: &str, status: &str, links: serde_json::Value| {
        let item = document.paths.paths.get_mut(path);
        let operation = item.and_then(|item| match method {
            "get" => item.get.as_mut(),
            "post" => item.post.as_mut(),
            "patch" => item.patch.as_mut(),
            _ => None,
        });
        let response =
            operation.and_then(|operation| operation.responses.responses.get_mut(status));
        if let Some(RefOr::T(response)) = response {
            response
                .extensions
                .get_or_insert_with(Default::default)
                .insert("links".to_owned(), links);
        }
    };
    for (path, method, status, user) in USER_ANSWERS {
        // Every route that takes a user id gets an explicit link: left to infer, a tool links
        // `GET /api/users/{id}` (a username) to `PATCH /api/users/{id}` (an id) by the path.
        let mut links = BY_USER_ID
            .iter()
            .map(|operation| {
                let name = format!("User_{operation}");
                (name, link(operation, "path.id", format!("{user}/id")))
            })
            .collect::<serde_json::Map<_, _>>();
        links.insert(
            "UserByUsername".to_owned(),
            link("user_by_username", "path.id", format!("{user}/username")),
        );
        links.insert(
            "UserByEmail".to_owned(),
            link("user_by_email", "path.email", format!("{user}/email")),
        );
        add(path, method, status, links.into());
    }
    let audit = BY_USER_ID
        .iter()
        .map(|operation| {
            let pointer = "/entries/0/user_id".to_owned();
            (
                format!("EntryUser_{operation}"),
                link(operation, "path.id", pointer),
            )
        })
        .collect::<serde_json::Map<_, _>>();
    add("/api/audit", "get", "200", audit.into());
}

/// SPEC §10: every route that takes a bearer token, except those an enrollment-only session
/// may call, answers such a session 403 `mfa_enrollment_required`; SPEC §11: every such route
/// answers an API key 403, `session_required` where no key may call it and
/// `insufficient_scope` naming the scope where one may. Said here once, from the two lists
/// (`enrollment.rs`, `api_key_access.rs`), rather than on each route.
fn add_bearer_refusals(document: &mut OpenApi) {
    use axum::http::Method;
    for (path, item) in &mut document.paths.paths {
        let operations = [
            (Method::GET, item.get.as_mut()),
            (Method::PUT, item.put.as_mut()),
            (Method::POST, item.post.as_mut()),
            (Method::DELETE, item.delete.as_mut()),
            (Method::PATCH, item.patch.as_mut()),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let bearer = serde_json::to_value(&operation.security)
                .is_ok_and(|security| security.to_string().contains("\"bearer\""));
            if !bearer {
                continue;
            }
            let mut notes = Vec::new();
            if !enrollment::allows(&method, path) {
                notes.push(REFUSAL.to_owned());
            }
            notes.push(api_key_access::refusal(&method, path));
            let responses = &mut operation.responses.responses;
            match responses.get_mut("403") {
                Some(RefOr::T(forbidden)) => {
                    for note in notes {
                        forbidden.description = format!("{}; or {note}", forbidden.description);
                    }
                }
                Some(RefOr::Ref(_)) => {}
                None => {
                    let problem = ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build();
                    let refusal = ResponseBuilder::new()
                        .description(notes.join("; or "))
                        .content("application/problem+json", problem)
                        .build();
                    responses.insert("403".to_owned(), RefOr::T(refusal));
                }
            }
        }
    }
}

/// What the route attributes cannot say: the optional bodies of refresh and logout, that a
/// user change gives `password` or `password_hash`, not both, and the links between answers
/// and the operations their values name.
pub fn finish(document: &mut OpenApi) {
    add_links(document);
    add_bearer_refusals(document);
    for path in ["/api/auth/refresh", "/api/auth/logout"] {
        let body = document
            .paths
            .paths
            .get_mut(path)
            .and_then(|item| item.post.as_mut())
            .and_then(|operation| operation.request_body.as_mut());
        if let Some(body) = body {
            body.required = Some(Required::False);
        }
    }
    let patch = document
        .components
        .as_mut()
        .and_then(|components| components.schemas.get_mut("PatchUserRequest"));
    if let Some(RefOr::T(Schema::Object(object))) = patch {
        // JSON Schema's `not`, which utoipa's model lacks, is added beside the derived keywords.
        let both = serde_json::json!({
            "required": ["password", "password_hash"],
            "properties": {
                "password": { "type": "string" },
                "password_hash": { "type": "string" },
            },
        });
        object
            .extensions
            .get_or_insert_with(Default::default)
            .insert("not".to_owned(), both);
    }
}

/// `POST /api/auth/login`'s 200: the token response, or for an account with a second factor
/// (SPEC §10) the challenge that `POST /api/auth/mfa/verify` completes, with no tokens.
pub struct LoginAnswerSchema;

impl PartialSchema for LoginAnswerSchema {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "The token response, or `{mfa_required:true, mfa_token, methods, expires_in}` \
                 when the account has a second factor.",
            ))
            .item(utoipa::openapi::Ref::from_schema_name("Tokens"))
            .item(utoipa::openapi::Ref::from_schema_name("MfaChallengeView"))
            .into()
    }
}

impl ToSchema for LoginAnswerSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "LoginAnswer".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            "Tokens".into(),
            <super::views::TokenBody as PartialSchema>::schema(),
        ));
        schemas.push((
            "MfaChallengeView".into(),
            <super::views::MfaChallengeView as PartialSchema>::schema(),
        ));
    }
}
