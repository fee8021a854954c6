//! Extractors: JSON bodies that answer problems, the authenticated session, the request context.

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::{DeserializeOwned, Deserializer, Visitor};

use super::{api_key_access, enrollment};
use crate::caller::{self, bearer};
use crate::crypto::api_keys;
use crate::crypto::jwt::Rejection;
use crate::error::{Error, FieldError};
use crate::services::sessions::CurrentSession;
use crate::services::RequestContext;
use crate::state::AppState;

/// For `#[serde(default, deserialize_with = "…")]` on a field `null` may clear: `Some(None)`
/// for an explicit `null`, `None` when the field is absent.
pub fn nullable<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(serde::Deserialize::deserialize(deserializer)?))
}

/// The `{id}` of a path as a UUID; 400 naming `id` when it is not one.
pub fn path_id(raw: &str) -> Result<uuid::Uuid, Error> {
    uuid::Uuid::parse_str(raw).map_err(|_| Error::invalid("id", "invalid", "must be a UUID"))
}

/// A JSON body. Wrong content type → 415, bad JSON → 400 `malformed_body`, a field of the
/// wrong type, missing or unknown → 400 `validation_failed` naming the field.
pub struct Json<T>(pub T);

pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(Error::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    Error::PayloadTooLarge
                } else {
                    Error::MalformedBody("the body could not be read".into())
                }
            })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses a JSON document into `T`, describing failures as SPEC §2 problems. A struct is read
/// only from a JSON object (any other top level is `validation_failed`), anything but
/// whitespace after the document is `malformed_body`, and a NUL character in any string is
/// `validation_failed` naming where it is (PostgreSQL cannot store it in text, and no field
/// has a use for it).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value = deserialize(ObjectOnly(&mut *deserializer))?;
    deserializer
        .end()
        .map_err(|error| Error::MalformedBody(error.to_string()))?;
    if has_escaped_nul(bytes) {
        return Err(nul_fields(bytes));
    }
    Ok(value)
}

fn deserialize<'de, T: DeserializeOwned>(
    deserializer: ObjectOnly<&mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>>,
) -> Result<T, Error> {
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                let field = quoted(&message)
                    .filter(|_| {
                        message.starts_with("unknown field") || message.starts_with("missing field")
                    })
                    .map(|name| match path.as_str() {
                        "." => name.to_owned(),
                        path if path == name || path.ends_with(&format!(".{name}")) => {
                            path.to_owned()
                        }
                        path => format!("{path}.{name}"),
                    })
                    .unwrap_or_else(|| path.trim_start_matches('.').to_owned());
                let code = if message.starts_with("unknown field") {
                    "unknown_field"
                } else if message.starts_with("missing field") {
                    "required"
                } else {
                    "invalid_type"
                };
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                Error::Invalid(vec![FieldError::new(field, code, message)])
            }
            _ => Error::MalformedBody(inner.to_string()),
        }
    })
}

/// The top level of a body, where a struct is read only from a JSON object: serde's derived
/// structs also take an array of their fields in order (`[null, null]` would clear a profile),
/// which no route documents. Reading the struct as a map leaves every other shape to serde's
/// own "invalid type" error. Everything else is passed through unchanged.
struct ObjectOnly<D>(D);

macro_rules! forward {
    ($($method:ident($($argument:ident: $type:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(
                self,
                $($argument: $type,)*
                visitor: V,
            ) -> Result<V::Value, Self::Error> {
                self.0.$method($($argument,)* visitor)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }

    forward! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }
}

/// Whether a JSON text that parsed contains `\u0000`. Raw control characters are invalid in
/// JSON strings and a backslash appears only inside strings, so each backslash starts an
/// escape: skipping the escaped character keeps `\\u0000` (a backslash, then text) apart.
fn has_escaped_nul(bytes: &[u8]) -> bool {
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' {
            if bytes[index + 1..].starts_with(b"u0000") {
                return true;
            }
            index += 2;
        } else {
            index += 1;
        }
    }
    false
}

/// `validation_failed` naming each string (or key) of the document that holds a NUL.
fn nul_fields(bytes: &[u8]) -> Error {
    fn walk(value: &serde_json::Value, path: &str, found: &mut Vec<FieldError>) {
        let here = |key: &str| {
            if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            }
        };
        match value {
            serde_json::Value::String(text) if text.contains('\0') => found.push(nul_field(path)),
            serde_json::Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    walk(item, &here(&index.to_string()), found);
                }
            }
            serde_json::Value::Object(fields) => {
                for (key, item) in fields {
                    if key.contains('\0') {
                        found.push(nul_field(&here(&key.replace('\0', "\\u0000"))));
                    }
                    walk(item, &here(key), found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        walk(&value, "", &mut found);
    }
    if found.is_empty() {
        found.push(nul_field(""));
    }
    Error::Invalid(found)
}

/// The one wording of a NUL refusal, for bodies, paths and queries alike.
pub fn nul_field(field: &str) -> FieldError {
    FieldError::new(field, "invalid", "must not contain a NUL character")
}

/// The first back-quoted name in a serde message.
fn quoted(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(&message[start..end])
}

/// The caller of a valid bearer token; 401 `unauthorized` without one. SPEC §10: an
/// enrollment-only session is 403 `mfa_enrollment_required` outside the routes of
/// [`enrollment::ENROLLMENT_ROUTES`].
impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or(Error::Unauthorized)?;
        if api_keys::looks_like_key(token) {
            return key_session(parts, state, token).await;
        }
        let current = state
            .services
            .sessions
            .authenticate(token)
            .await?
            .map_err(refused)?;
        if current.enrollment_only {
            let route = parts
                .extensions
                .get::<MatchedPath>()
                .map(MatchedPath::as_str);
            if !route.is_some_and(|route| enrollment::allows(&parts.method, route)) {
                return Err(Error::MfaEnrollmentRequired);
            }
        }
        Ok(current)
    }
}

/// SPEC §11: the caller of a user's API key, on the routes of
/// [`api_key_access::API_KEY_ROUTES`] with the scope each needs; an invalid key is 401
/// `unauthorized`, a client's key 403 `user_token_required`, any other route 403
/// `session_required`.
async fn key_session(
    parts: &Parts,
    state: &AppState,
    token: &str,
) -> Result<CurrentSession, Error> {
    let api_keys = &state.services.api_keys;
    let current = api_keys.authenticate_user(token).await?.map_err(refused)?;
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    if let Some(key) = &current.api_key {
        api_key_access::admit(&parts.method, route, key)?;
    }
    Ok(current)
}

/// Why a bearer token was refused, as the answer says it: a client's token is valid but acts
/// for no user (403 `user_token_required`, SPEC §11); anything else is 401 `unauthorized`.
fn refused(rejection: Rejection) -> Error {
    match rejection {
        Rejection::ClientToken => Error::UserTokenRequired,
        _ => Error::Unauthorized,
    }
}

/// A role a route requires (checked by [`CurrentSession::has_role`]).
pub trait RequiredRole {
    const NAME: &'static str;
}

/// Administrators.
pub struct AdminRole;

impl RequiredRole for AdminRole {
    const NAME: &'static str = crate::services::admin::ADMIN_ROLE;
}

/// An authenticated caller holding role `R`: without a valid token 401 `unauthorized`, without
/// the role 403 `forbidden`. As an extractor: `Authorized(caller, _): Authorized<AdminRole>`.
pub struct Authorized<R: RequiredRole>(pub CurrentSession, pub PhantomData<R>);

impl<R: RequiredRole> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = CurrentSession::from_request_parts(parts, state).await?;
        if caller.has_role(R::NAME) {
            Ok(Self(caller, PhantomData))
        } else {
            Err(Error::Forbidden)
        }
    }
}

/// The caller, if a valid bearer token is present; no token or a bad one is `None`.
pub struct MaybeSession(pub Option<CurrentSession>);

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = bearer(&parts.headers) else {
            return Ok(Self(None));
        };
        // The routes that take an optional bearer (logout) end sessions: never for a key.
        if api_keys::looks_like_key(token) {
            return Err(Error::SessionRequired);
        }
        Ok(Self(
            state.services.sessions.authenticate(token).await?.ok(),
        ))
    }
}

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        Ok(caller::request_context(
            &state.proxies,
            peer,
            &parts.headers,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only parsing is tested")]
    struct Body {
        email: String,
        count: u32,
    }

    fn field_of(error: Error) -> (String, String) {
        match error {
            Error::Invalid(errors) => (errors[0].field.clone(), errors[0].code.clone()),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn problems_name_the_field() {
        assert_eq!(
            field_of(parse_json::<Body>(br#"{"email":"a","count":1,"x":1}"#).unwrap_err()),
            ("x".into(), "unknown_field".into())
        );
        assert_eq!(
            field_of(parse_json::<Body>(br#"{"count":1}"#).unwrap_err()),
            ("email".into(), "required".into())
        );
        assert_eq!(
            field_of(parse_json::<Body>(br#"{"email":"a","count":"x"}"#).unwrap_err()),
            ("count".into(), "invalid_type".into())
        );
        assert!(matches!(
            parse_json::<Body>(b"{nope").unwrap_err(),
            Error::MalformedBody(_)
        ));
    }

    #[test]
    fn a_struct_is_read_only_from_an_object() {
        for body in [&br#"["a", 1]"#[..], b"[]", b"5", b"null", br#""a""#] {
            assert_eq!(
                field_of(parse_json::<Body>(body).unwrap_err()).1,
                "invalid_type",
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(parse_json::<Vec<u32>>(b"[1, 2]").is_ok());
        assert!(parse_json::<Option<Vec<u32>>>(b"null").unwrap().is_none());
    }

    #[test]
    fn trailing_garbage_is_malformed_and_trailing_whitespace_is_not() {
        assert!(matches!(
            parse_json::<Body>(br#"{"email":"a","count":1} xx"#).unwrap_err(),
            Error::MalformedBody(_)
        ));
        assert!(parse_json::<Body>(b"{\"email\":\"a\",\"count\":1}\r\n ").is_ok());
    }

    #[test]
    fn a_nul_is_refused_where_it_is_and_an_escaped_backslash_is_not_one() {
        assert_eq!(
            field_of(parse_json::<Body>(br#"{"email":"a\u0000b","count":1}"#).unwrap_err()),
            ("email".into(), "invalid".into())
        );
        assert!(parse_json::<Body>(br#"{"email":"a\\u0000b","count":1}"#).is_ok());
    }
}
