//! ForgotPassword and ResetPassword over gRPC: the same answer for every address, the mailed
//! link, its single use.

use auth_service::grpc::pb;
use tonic::Code;

use crate::backend_tests;
use crate::support::grpc::{assert_failed, login_request};
use crate::support::{token_among, Backend, PASSWORD};

const NEW_PASSWORD: &str = "violet otter juggles lanterns";

async fn forgot_password_answers_alike_and_the_mailed_token_resets_once(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let mut client = app.grpc().await;
    let forgot = |email: &str| pb::ForgotPasswordRequest {
        email: email.to_owned(),
    };
    let reset = |token: &str, password: &str| pb::ResetPasswordRequest {
        token: token.to_owned(),
        new_password: password.to_owned(),
    };

    let known = client.forgot_password(forgot("Alice@Example.com")).await;
    let unknown = client.forgot_password(forgot("nobody@example.com")).await;
    let not_an_address = client.forgot_password(forgot("nobody")).await;
    let mails = app.wait_mails(&alice.email, 2).await;
    let token = token_among(&mails, "reset-password");
    let bad_token = client
        .reset_password(reset("not-a-token", NEW_PASSWORD))
        .await;
    let weak = client.reset_password(reset(&token, "alice")).await;
    let done = client.reset_password(reset(&token, NEW_PASSWORD)).await;
    let replayed = client.reset_password(reset(&token, NEW_PASSWORD)).await;

    assert_eq!(
        known.unwrap().into_inner(),
        unknown.unwrap().into_inner(),
        "no enumeration"
    );
    assert_failed(not_an_address, Code::InvalidArgument, "validation_failed");
    assert_failed(bad_token, Code::InvalidArgument, "invalid_token");
    let weak = weak.unwrap_err();
    assert_eq!(weak.code(), Code::InvalidArgument);
    let fields = weak
        .metadata()
        .get("x-field-errors")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(fields.starts_with("new_password:"), "{fields}");
    assert!(done.is_ok());
    assert_failed(replayed, Code::InvalidArgument, "invalid_token");
    let old = client.login(login_request("alice", PASSWORD)).await;
    assert_failed(old, Code::Unauthenticated, "invalid_credentials");
    assert!(client
        .login(login_request("alice", NEW_PASSWORD))
        .await
        .is_ok());
    assert_eq!(
        app.get_as("/api/auth/me", &alice.access_token)
            .await
            .status(),
        401
    );
}

async fn forgot_password_is_limited_per_address(backend: Backend) {
    let app = backend
        .app_with(|config| {
            config.limits.forgot_password_per_ip =
                auth_service::config::Rate::new(1, std::time::Duration::from_secs(900));
        })
        .await;
    let mut client = app.grpc().await;
    let forgot = || pb::ForgotPasswordRequest {
        email: "alice@example.com".to_owned(),
    };

    let first = client.forgot_password(forgot()).await;
    let second = client.forgot_password(forgot()).await;

    assert!(first.is_ok());
    let status = second.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status.metadata().get("x-error-code").unwrap(),
        "rate_limited"
    );
    assert!(status.metadata().get("retry-after").is_some());
}

backend_tests! {
    forgot_password_answers_alike_and_the_mailed_token_resets_once,
    forgot_password_is_limited_per_address,
}
