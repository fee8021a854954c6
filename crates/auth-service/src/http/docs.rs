//! `/api/docs`: the OpenAPI 3.1 document of every route and Swagger UI, both from the binary.
//!
//! The document is assembled from the `#[utoipa::path]` attributes of the handlers as the
//! router registers them (see [`super::api`]), so a route cannot exist undocumented. Swagger
//! UI's files come from `utoipa-swagger-ui`'s vendored distribution: nothing is fetched from a
//! CDN at run time or downloaded at build time.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;
use utoipa::Modify;

use crate::error::Error;

pub const DOCUMENT_PATH: &str = "/api/docs/openapi.json";

/// SPEC §4: the strict CSP is relaxed here only, and only as far as Swagger UI needs (its own
/// scripts and styles, inline style attributes, `data:` images, fetching the document).
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/// The parts of the document no handler states: title, tags, the bearer scheme.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "auth-service",
        description = "Authentication, sessions and users. Errors are `application/problem+json` \
                       with a stable `code`. No string anywhere may hold a NUL character \
                       (U+0000): 400 `validation_failed`."
    ),
    paths(serve_document, serve_index),
    modifiers(&BearerScheme),
    tags(
        (name = "auth", description = "Signup, login, refresh, logout and the caller's profile"),
        (name = "sessions", description = "The caller's sessions"),
        (name = "mfa", description = "Second factors: TOTP, recovery codes and the login challenge"),
        (name = "passkeys", description = "Passkeys (WebAuthn): registration, the caller's list, passwordless login"),
        (name = "users", description = "Administration of users (role `admin`)"),
        (name = "directory", description = "Roles, territories and memberships (role `admin`)"),
        (name = "audit", description = "The audit log (role `admin`)"),
        (name = "password", description = "Forgotten and changed passwords, email verification"),
        (name = "tokens", description = "For other services: introspection and public keys"),
        (name = "oauth", description = "OAuth 2 for the platform's own services: the token endpoint"),
        (name = "clients", description = "Administration of OAuth 2 clients (role `admin`)"),
        (name = "api-keys", description = "The caller's API keys (personal access tokens, `ask_…`)"),
        (name = "operations", description = "Health, readiness, metrics and this documentation"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A session's access token (JWT); on the routes whose 403 answer names a \
                         scope, also an API key (`ask_…`, SPEC §11)",
                    ))
                    .build(),
            ),
        );
        // RFC 6749 §2.3.1: a client's id and secret, form-encoded, at `POST /oauth/token`.
        components.add_security_scheme(
            "client_secret_basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

#[derive(Clone)]
struct Docs {
    document: Bytes,
    ui: Arc<utoipa_swagger_ui::Config<'static>>,
}

/// Routes serving the document and the UI, with their own CSP.
pub fn router<S: Clone + Send + Sync + 'static>(document: &OpenApi) -> Router<S> {
    let docs = Docs {
        document: serde_json::to_vec(document).unwrap_or_default().into(),
        ui: Arc::new(utoipa_swagger_ui::Config::new([DOCUMENT_PATH]).validator_url("none")),
    };
    Router::new()
        .route(DOCUMENT_PATH, get(serve_document))
        .route("/api/docs", get(serve_index))
        .route("/api/docs/", get(serve_index))
        .route("/api/docs/{*file}", get(serve_file))
        .layer(SetResponseHeaderLayer::overriding(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        ))
        .with_state(docs)
}

/// This document.
#[utoipa::path(get, path = "/api/docs/openapi.json", tag = "operations",
    responses((status = 200, description = "the OpenAPI 3.1 document", body = serde_json::Value)))]
async fn serve_document(State(docs): State<Docs>) -> Response {
    ([(CONTENT_TYPE, "application/json")], docs.document).into_response()
}

/// Swagger UI for this document.
#[utoipa::path(get, path = "/api/docs", tag = "operations",
    responses((status = 200, description = "an HTML page", body = String, content_type = "text/html")))]
// Swagger UI's page, answered at `/api/docs` itself (no redirect): a `<base>` makes its
// relative asset links resolve under `/api/docs/`.
async fn serve_index(State(docs): State<Docs>) -> Result<Response, Error> {
    let page = swagger_file("index.html", &docs)?;
    let html = String::from_utf8_lossy(&page.bytes).replacen(
        "<head>",
        "<head>\n    <base href=\"/api/docs/\">",
        1,
    );
    Ok(([(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

async fn serve_file(State(docs): State<Docs>, Path(file): Path<String>) -> Result<Response, Error> {
    let file = swagger_file(&file, &docs)?;
    Ok(([(CONTENT_TYPE, file.content_type)], file.bytes.into_owned()).into_response())
}

fn swagger_file(name: &str, docs: &Docs) -> Result<utoipa_swagger_ui::SwaggerFile<'static>, Error> {
    utoipa_swagger_ui::serve(name, docs.ui.clone())
        .map_err(|error| Error::Internal(anyhow::anyhow!("swagger ui: {error}")))?
        .ok_or(Error::NotFound)
}
