//! The HTTP surface: every route is listed here, with the layers every request passes.

mod api_key_access;
mod api_keys;
mod audit;
mod auth;
mod authorize;
mod client_secret;
mod clients;
mod csrf;
mod directory;
mod docs;
mod enrollment;
pub mod error;
mod extract;
mod form;
mod grants;
mod health;
mod introspect;
mod me;
mod mfa;
mod middleware;
mod oauth;
mod oauth_tokens;
mod passkeys;
mod recovery;
mod schema;
pub mod serve;
mod sessions;
mod users;
mod views;
mod wellknown;

use std::any::Any;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::Error;
use crate::state::AppState;

/// Every API route, each registered together with its OpenAPI description.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(health::metrics))
        .routes(routes!(wellknown::jwks))
        .routes(routes!(wellknown::openid_configuration))
        .routes(routes!(wellknown::oauth_authorization_server))
        .routes(routes!(oauth::token))
        .routes(routes!(authorize::authorize_page))
        .routes(routes!(authorize::authorize))
        .routes(routes!(oauth_tokens::introspect_token))
        .routes(routes!(oauth_tokens::revoke_token))
        .routes(routes!(auth::get_config))
        .routes(routes!(auth::signup))
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(me::get_me, me::update_me))
        .routes(routes!(sessions::get_session))
        .routes(routes!(sessions::list_sessions))
        .routes(routes!(sessions::delete_other_sessions))
        .routes(routes!(sessions::delete_session))
        .routes(routes!(sessions::record_activity))
        .routes(routes!(introspect::introspect))
        .routes(routes!(mfa::enroll_totp, mfa::remove_totp))
        .routes(routes!(mfa::confirm_totp))
        .routes(routes!(mfa::regenerate_recovery_codes))
        .routes(routes!(mfa::verify_mfa))
        .routes(routes!(mfa::reset_user_mfa))
        .routes(routes!(passkeys::register_options))
        .routes(routes!(passkeys::register_finish))
        .routes(routes!(passkeys::list_passkeys))
        .routes(routes!(passkeys::rename_passkey, passkeys::delete_passkey))
        .routes(routes!(passkeys::login_options))
        .routes(routes!(passkeys::login_finish))
        .routes(routes!(passkeys::mfa_passkey_options))
        .routes(routes!(recovery::forgot_password))
        .routes(routes!(recovery::reset_password))
        .routes(routes!(recovery::change_password))
        .routes(routes!(recovery::verify_email))
        .routes(routes!(recovery::resend_verification))
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(users::user_by_id))
        .routes(routes!(users::user_by_email))
        .routes(routes!(
            users::user_by_username,
            users::patch_user,
            users::delete_user
        ))
        .routes(routes!(directory::list_roles, directory::create_role))
        .routes(routes!(directory::delete_role))
        .routes(routes!(
            directory::list_territories,
            directory::create_territory
        ))
        .routes(routes!(directory::update_territory))
        .routes(routes!(directory::add_member, directory::remove_member))
        .routes(routes!(directory::set_territory_roles))
        .routes(routes!(audit::list_audit_entries))
        .routes(routes!(clients::create_client, clients::list_clients))
        .routes(routes!(
            clients::get_client,
            clients::patch_client,
            clients::delete_client
        ))
        .routes(routes!(client_secret::rotate_client_secret))
        .routes(routes!(api_keys::create_api_key, api_keys::list_api_keys))
        .routes(routes!(api_keys::delete_api_key))
        .routes(routes!(
            api_keys::create_client_api_key,
            api_keys::list_client_api_keys
        ))
        .routes(routes!(api_keys::delete_client_api_key))
}

/// The OpenAPI document (`auth-service openapi`, `/api/docs/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    document(api())
}

/// The assembled document, with what the route attributes cannot say added.
fn document(api: OpenApiRouter<AppState>) -> utoipa::openapi::OpenApi {
    let mut document = api.split_for_parts().1;
    schema::finish(&mut document);
    document
}

/// Builds the router with all routes and layers.
pub fn router(state: &AppState) -> Router {
    let server = &state.config.server;
    let document = document(api());
    let (api, _) = api().split_for_parts();
    let routes = api
        .merge(docs::router(&document))
        .route_layer(axum::middleware::from_fn(middleware::label_route))
        .layer(DefaultBodyLimit::max(server.body_limit_bytes))
        .fallback(|| async { Error::NotFound })
        .with_state(state.clone());

    let layers = ServiceBuilder::new()
        .layer(axum::middleware::from_fn(middleware::sanitize_request_id))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_failure(()),
        )
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        // SPEC §4: headers on every response; routes that need another CSP set their own.
        .layer(set_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set_header(header::REFERRER_POLICY, "no-referrer"))
        .layer(set_header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ))
        .option_layer(server.hsts.then(|| {
            set_header(
                header::STRICT_TRANSPORT_SECURITY,
                "max-age=31536000; includeSubDomains",
            )
        }))
        // Inside the header layers, so that preflight answers carry them too.
        .option_layer(cors(&server.cors_origins))
        .layer(axum::middleware::from_fn(error::finish_problems))
        .layer(axum::middleware::from_fn(middleware::refuse_nul))
        .layer(CatchPanicLayer::custom(answer_panic))
        .layer(axum::middleware::from_fn_with_state(
            server.request_timeout,
            middleware::enforce_timeout,
        ))
        .layer(RequestBodyLimitLayer::new(server.body_limit_bytes));
    routes.layer(layers)
}

/// The span every log line of a request is written in.
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request.id = %request_id,
        method = %request.method(),
        path = %loggable_path(request.uri().path()),
    )
}

/// The path as it may be logged: an email address in a lookup path is masked (no emails in logs).
fn loggable_path(path: &str) -> String {
    match path.split_once("/email/") {
        Some((head, _)) => format!("{head}/email/[REDACTED]"),
        None => path.chars().take(256).collect(),
    }
}

/// SPEC §4: only listed origins, with credentials; none listed means no cross-origin access.
/// Preflights are answered by the layer before any route runs.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

fn set_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// A panic becomes a 500 problem; `finish_problems` adds the request id.
fn answer_panic(_: Box<dyn Any + Send + 'static>) -> Response {
    Error::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
}
