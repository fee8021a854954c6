//! What the OpenAPI document says about inputs beyond their Rust types: the patterns and
//! lengths the door checks (`domain/account.rs`, `services/directory/`), and the shapes a
//! derive cannot state (login's "exactly one of", introspection's two answers). Each pattern
//! admits only values the server accepts, so a client (or a fuzzer) that follows the document
//! is never refused for the form of a field.

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{OpenApi, RefOr, Required};
use utoipa::{PartialSchema, ToSchema};

/// Role names (`NewRole::parse`): 2–50 lowercase letters, digits, `_` or `-`.
const ROLE: &str = r"^[a-z0-9_-]{2,50}$";
/// Not blank: holds a character Rust's `trim` keeps (an unanchored pattern).
const NOT_BLANK: &str = r"[^\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";
/// The default upper bound of `[password]` `max_length`.
const PASSWORD_MAX: usize = 128;

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String))
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
        let mut active = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Object))
            .property(
                "active",
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::Boolean))
                    .enum_values(Some([true])),
            )
            .required("active");
        for (name, schema) in [
            claims("sub", uuid()),
            claims("sid", uuid()),
            claims("username", string()),
            claims("exp", integer()),
            claims("iat", integer()),
            claims("token_type", string().enum_values(Some(["Bearer"]))),
            claims("iss", string()),
            claims("aud", string()),
        ] {
            active = active.property(name.clone(), schema).required(name);
        }
        active = active
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
        OneOfBuilder::new()
            .description(Some(
                "`{\"active\":false}` for a token that is invalid or whose session has ended, \
                 else `{\"active\":true}` with the token's claims (RFC 7662).",
            ))
            .item(inactive)
            .item(active)
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

/// What the route attributes cannot say: the optional bodies of refresh and logout, and
/// that a user change gives `password` or `password_hash`, not both.
pub fn finish(document: &mut OpenApi) {
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
