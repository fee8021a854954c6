//! What surrounds the RPCs: bad input, health, reflection, the client address and request id
//! in audit entries, events, metrics.

use auth_service::grpc::pb;
use sqlx::Row;
use tonic::{Code, Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::backend_tests;
use crate::support::forge::connect_raw;
use crate::support::grpc::{assert_failed, login_request, signup_request};
use crate::support::{Backend, TestApp, PASSWORD};

/// `(ip_address, request_id)` of each audit entry with `action`, oldest first.
async fn audited(app: &TestApp, action: &str) -> Vec<(Option<String>, Option<String>)> {
    let mut db = connect_raw(app).await;
    sqlx::query(
        "SELECT ip_address, request_id FROM audit_log WHERE action = $1 ORDER BY occurred_at, id",
    )
    .bind(action)
    .fetch_all(&mut db)
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect()
}

fn with_metadata<T>(message: T, pairs: &[(&'static str, &str)]) -> Request<T> {
    let mut request = Request::new(message);
    for (key, value) in pairs {
        request.metadata_mut().insert(*key, value.parse().unwrap());
    }
    request
}

fn field_errors(result: Result<impl std::fmt::Debug, Status>) -> String {
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        status.metadata().get("x-error-code").unwrap(),
        "validation_failed"
    );
    status
        .metadata()
        .get("x-field-errors")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

async fn missing_fields_are_invalid_argument_naming_every_one(backend: Backend) {
    let app = backend.app().await;
    let mut client = app.grpc().await;

    let signup = client.sign_up(pb::SignUpRequest::default()).await;
    let login = client.login(pb::LoginRequest::default()).await;
    let refresh = client.refresh(pb::RefreshRequest::default()).await;
    let validate = client
        .validate_token(pb::ValidateTokenRequest::default())
        .await;
    let forgot = client
        .forgot_password(pb::ForgotPasswordRequest::default())
        .await;
    let reset = client
        .reset_password(pb::ResetPasswordRequest::default())
        .await;

    assert_eq!(
        field_errors(signup),
        "email:required,username:required,password:required"
    );
    assert_eq!(field_errors(login), "email:required,password:required");
    assert_eq!(field_errors(refresh), "refresh_token:required");
    assert_eq!(field_errors(validate), "token:required");
    assert_eq!(field_errors(forgot), "email:required");
    assert_eq!(field_errors(reset), "token:required,new_password:required");
}

async fn undecodable_and_oversized_messages_are_invalid_argument(backend: Backend) {
    let app = backend.app().await;
    let mut client = app.grpc().await;
    let mut raw = tonic::client::Grpc::new(app.grpc_channel().await);
    raw.ready().await.unwrap();
    // Field 1 as a varint where ValidateTokenRequest has a string: not a valid message.
    let wrong_wire_type = pb::ValidateTokenResponse {
        valid: true,
        ..pb::ValidateTokenResponse::default()
    };
    let codec: tonic_prost::ProstCodec<pb::ValidateTokenResponse, pb::ValidateTokenResponse> =
        tonic_prost::ProstCodec::default();

    let malformed = raw
        .unary(
            Request::new(wrong_wire_type),
            http::uri::PathAndQuery::from_static("/auth.v1.AuthService/ValidateToken"),
            codec,
        )
        .await;
    let oversized = client
        .sign_up(pb::SignUpRequest {
            display_name: Some("x".repeat(70 * 1024)),
            ..signup_request("alice")
        })
        .await;
    let after = client.sign_up(signup_request("alice")).await;

    assert_failed(malformed, Code::InvalidArgument, "malformed_body");
    assert_failed(oversized, Code::InvalidArgument, "payload_too_large");
    assert!(after.is_ok(), "the server still answers: {after:?}");
}

async fn health_answers_serving_for_the_server_and_the_auth_service(backend: Backend) {
    let app = backend.app().await;
    let mut health = HealthClient::new(app.grpc_channel().await);
    let check = |service: &str| HealthCheckRequest {
        service: service.to_owned(),
    };

    let server = health.check(check("")).await.unwrap().into_inner();
    let auth = health
        .check(check("auth.v1.AuthService"))
        .await
        .unwrap()
        .into_inner();
    let unknown = health.check(check("no.such.Service")).await;

    assert_eq!(server.status(), ServingStatus::Serving);
    assert_eq!(auth.status(), ServingStatus::Serving);
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);
}

async fn reflection_lists_and_describes_the_auth_service(backend: Backend) {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let app = backend.app().await;
    let mut reflection = ServerReflectionClient::new(app.grpc_channel().await);
    let ask = |request: MessageRequest| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };

    let mut answers = reflection
        .server_reflection_info(futures::stream::iter([
            ask(MessageRequest::ListServices(String::new())),
            ask(MessageRequest::FileContainingSymbol(
                "auth.v1.AuthService".into(),
            )),
        ]))
        .await
        .unwrap()
        .into_inner();
    let listed = answers.message().await.unwrap().unwrap().message_response;
    let described = answers.message().await.unwrap().unwrap().message_response;

    let Some(MessageResponse::ListServicesResponse(list)) = listed else {
        panic!("not a service list: {listed:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"auth.v1.AuthService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
    let Some(MessageResponse::FileDescriptorResponse(files)) = described else {
        panic!("not a descriptor: {described:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

async fn reflection_v1alpha_lists_the_auth_service_too(backend: Backend) {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    let app = backend.app().await;
    let mut reflection = ServerReflectionClient::new(app.grpc_channel().await);

    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(futures::stream::iter([list]))
        .await
        .unwrap()
        .into_inner();
    let listed = answers.message().await.unwrap().unwrap().message_response;

    let Some(MessageResponse::ListServicesResponse(list)) = listed else {
        panic!("not a service list: {listed:?}");
    };
    assert!(list.service.iter().any(|s| s.name == "auth.v1.AuthService"));
}

async fn a_grpc_login_is_audited_with_the_client_address_and_emits_its_events(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let mut client = app.grpc().await;
    // Not from a trusted proxy: the forwarded address is ignored.
    let wrong = with_metadata(
        login_request("alice", "not the password"),
        &[
            ("x-request-id", "grpc-failed-1"),
            ("x-forwarded-for", "203.0.113.9"),
        ],
    );
    let right = with_metadata(
        login_request("alice", PASSWORD),
        &[("x-request-id", "grpc-login-1")],
    );

    let failed = client.login(wrong).await;
    let answer = client.login(right).await.unwrap();

    assert_failed(failed, Code::Unauthenticated, "invalid_credentials");
    assert_eq!(
        answer.metadata().get("x-request-id").unwrap(),
        "grpc-login-1"
    );
    let localhost = Some("127.0.0.1".to_owned());
    assert_eq!(
        audited(&app, "login_failure").await,
        [(localhost.clone(), Some("grpc-failed-1".to_owned()))]
    );
    assert_eq!(
        audited(&app, "login_success").await,
        [(localhost, Some("grpc-login-1".to_owned()))]
    );
    let mut db = connect_raw(&app).await;
    let events: Vec<String> =
        sqlx::query_scalar("SELECT event_type FROM outbox WHERE CAST(user_id AS TEXT) = $1")
            .bind(&alice.user_id)
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(events.iter().filter(|e| *e == "auth:user.login").count(), 1);
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "auth:session.created")
            .count(),
        2,
        "signup and login each created a session: {events:?}"
    );
}

async fn behind_a_trusted_proxy_the_forwarded_address_is_the_client(backend: Backend) {
    let app = backend
        .app_with(|config| config.server.trusted_proxies = vec!["127.0.0.1/32".into()])
        .await;
    app.signed_up("alice").await;
    let mut client = app.grpc().await;

    let login = with_metadata(
        login_request("alice", PASSWORD),
        &[("x-forwarded-for", "203.0.113.7")],
    );
    let answer = client.login(login).await.unwrap();

    let generated = answer
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    let entries = audited(&app, "login_success").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0.as_deref(), Some("203.0.113.7"));
    assert_eq!(
        entries[0].1.as_deref(),
        Some(generated),
        "a generated request id"
    );
}

async fn grpc_calls_are_counted_in_the_metrics(backend: Backend) {
    let app = backend.app().await;
    let mut client = app.grpc().await;

    let _ = client
        .validate_token(pb::ValidateTokenRequest::default())
        .await;
    let _ = client
        .validate_token(pb::ValidateTokenRequest {
            token: "abc".into(),
        })
        .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();

    for labels in [
        r#"rpc="ValidateToken",code="InvalidArgument""#,
        r#"rpc="ValidateToken",code="Ok""#,
    ] {
        assert!(
            metrics
                .lines()
                .any(|line| line.starts_with("auth_grpc_requests_total{") && line.contains(labels)),
            "{labels} not counted"
        );
    }
    assert!(metrics.contains("auth_grpc_request_duration_seconds"));
}

backend_tests! {
    missing_fields_are_invalid_argument_naming_every_one,
    undecodable_and_oversized_messages_are_invalid_argument,
    health_answers_serving_for_the_server_and_the_auth_service,
    reflection_lists_and_describes_the_auth_service,
    reflection_v1alpha_lists_the_auth_service_too,
    a_grpc_login_is_audited_with_the_client_address_and_emits_its_events,
    behind_a_trusted_proxy_the_forwarded_address_is_the_client,
    grpc_calls_are_counted_in_the_metrics,
}
