//! The gRPC surface (SPEC §7): `auth.v1.AuthService` over the same use cases as HTTP, with
//! `grpc.health.v1` and server reflection (v1 and v1alpha) beside it.

mod call;
mod convert;
mod middleware;
pub mod pb;
mod service;
mod status;

use std::future::Future;

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic_health::ServingStatus;

use crate::http::serve::ConnectionLimits;
use crate::state::AppState;
use pb::auth_service_server::AuthServiceServer;
use service::AuthApi;

/// Serves gRPC on `listener` until `shutdown` resolves, then lets in-flight calls finish
/// (the caller bounds how long).
pub async fn serve(
    state: &AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limit = state.config.server.body_limit_bytes;
    let auth = AuthServiceServer::new(AuthApi::new(state))
        // SPEC §2 applies to messages too; an oversized one is answered INVALID_ARGUMENT
        // `payload_too_large` by the middleware.
        .max_decoding_message_size(limit);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AuthServiceServer<AuthApi>>().await;
    let reflection_v1 = reflection()
        .build_v1()
        .context("cannot build the gRPC reflection service")?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .context("cannot build the gRPC reflection service")?;
    // Health watchers learn that this replica is going away while its last calls finish.
    let stopping = async move {
        shutdown.await;
        for service in ["", AuthServiceServer::<AuthApi>::NAME] {
            health
                .set_service_status(service, ServingStatus::NotServing)
                .await;
        }
    };
    // The HTTP port's accept loop (SPEC §4, issue 14 L2): the same connection cap,
    // header-read bound and idle timeout on this port, which tonic's own server lacks.
    let routes = Routes::new(middleware::Edge::new(
        auth,
        state.config.server.request_timeout,
    ))
    .add_service(health_service)
    .add_service(reflection_v1)
    .add_service(reflection_v1alpha);
    let limits = ConnectionLimits::of(&state.config.server);
    crate::http::serve::serve(listener, routes.into_axum_router(), limits, stopping).await;
    Ok(())
}

/// Reflection over `auth.v1` and `grpc.health.v1` (and itself).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}
