//! SignUp, Login, Refresh, Logout and GetUser over gRPC.

use std::time::Duration;

use auth_service::config::Rate;
use auth_service::grpc::pb;
use serde_json::json;
use tonic::Code;

use crate::backend_tests;
use crate::support::grpc::{assert_failed, login_request, signup_request, with_bearer};
use crate::support::{with_admin, Backend, ADMIN, PASSWORD};

async fn signup_answers_tokens_and_a_taken_email_or_username_is_already_exists(backend: Backend) {
    let app = backend.app().await;
    let mut client = app.grpc().await;

    let answer = client
        .sign_up(signup_request("alice"))
        .await
        .unwrap()
        .into_inner();
    let same_email = client
        .sign_up(pb::SignUpRequest {
            username: "alice2".into(),
            ..signup_request("alice")
        })
        .await;
    let same_username = client
        .sign_up(pb::SignUpRequest {
            email: "other@example.com".into(),
            ..signup_request("alice")
        })
        .await;

    let tokens = answer.tokens.expect("tokens");
    let user = answer.user.expect("the user");
    assert_eq!(user.email, "alice@example.com");
    assert_eq!(user.roles, ["user"]);
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.user.as_ref().unwrap().id, user.id);
    let me = app.get_as("/api/auth/me", &tokens.access_token).await;
    assert_eq!(me.status(), 200, "a gRPC token works over HTTP");
    assert_failed(same_email, Code::AlreadyExists, "email_taken");
    assert_failed(same_username, Code::AlreadyExists, "username_taken");
}

async fn signup_without_verification_answers_the_user_alone(backend: Backend) {
    let app = backend
        .app_with(|config| config.auth.require_email_verification = true)
        .await;
    let mut client = app.grpc().await;

    let answer = client
        .sign_up(signup_request("alice"))
        .await
        .unwrap()
        .into_inner();
    let login = client.login(login_request("alice", PASSWORD)).await;

    assert!(answer.tokens.is_none());
    assert!(!answer.user.unwrap().is_verified);
    assert_failed(login, Code::PermissionDenied, "email_not_verified");
}

async fn login_by_username_or_email_and_bad_credentials_answer_alike(backend: Backend) {
    let app = backend.app().await;
    app.signed_up("alice").await;
    let mut client = app.grpc().await;

    let by_username = client.login(login_request("alice", PASSWORD)).await;
    let by_email = client
        .login(pb::LoginRequest {
            identifier: Some(pb::login_request::Identifier::Email(
                "Alice@Example.com".into(),
            )),
            password: PASSWORD.into(),
        })
        .await;
    let wrong = client
        .login(login_request("alice", "not the password"))
        .await;
    let unknown = client.login(login_request("ghost", PASSWORD)).await;

    let by_username = by_username.unwrap().into_inner();
    assert_eq!(by_username.user.unwrap().username, "alice");
    assert!(by_username.expires_in > 0 && by_username.refresh_expires_in > 0);
    assert_eq!(by_email.unwrap().into_inner().token_type, "Bearer");
    assert_failed(wrong, Code::Unauthenticated, "invalid_credentials");
    assert_failed(unknown, Code::Unauthenticated, "invalid_credentials");
}

async fn repeated_failures_lock_the_identifier_with_retry_after(backend: Backend) {
    let app = backend.app().await;
    app.signed_up("alice").await;
    let mut client = app.grpc().await;

    for _ in 1..=5 {
        let wrong = client.login(login_request("alice", "wrong password")).await;
        assert_failed(wrong, Code::Unauthenticated, "invalid_credentials");
    }
    let locked = client.login(login_request("alice", PASSWORD)).await;

    let status = locked.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status.metadata().get("x-error-code").unwrap(),
        "too_many_attempts"
    );
    let wait: u64 = status
        .metadata()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "retry-after {wait}");
    let over_http = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": "alice", "password": PASSWORD }),
        )
        .await;
    assert_eq!(over_http.status(), 429, "HTTP sees the same lock");
}

async fn http_and_grpc_share_the_per_address_limits(backend: Backend) {
    let app = backend
        .app_with(|config| {
            config.limits.login_per_ip = Rate::new(2, Duration::from_secs(60));
            config.limits.signup_per_ip = Rate::new(1, Duration::from_secs(3600));
        })
        .await;
    let mut client = app.grpc().await;
    app.signed_up("alice").await;
    let over_http = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": "alice", "password": PASSWORD }),
        )
        .await;

    let second = client.login(login_request("alice", PASSWORD)).await;
    let third = client.login(login_request("alice", PASSWORD)).await;
    let signup = client.sign_up(signup_request("bob")).await;

    assert_eq!(over_http.status(), 200);
    assert!(second.is_ok());
    assert_failed(third, Code::ResourceExhausted, "too_many_attempts");
    assert_failed(signup, Code::ResourceExhausted, "rate_limited");
}

async fn refresh_rotates_and_a_reused_token_ends_the_session(backend: Backend) {
    let app = backend.app().await;
    let mut client = app.grpc().await;
    let first = client
        .sign_up(signup_request("alice"))
        .await
        .unwrap()
        .into_inner()
        .tokens
        .unwrap();
    let refresh = |token: &str| pb::RefreshRequest {
        refresh_token: token.to_owned(),
    };

    let second = client
        .refresh(refresh(&first.refresh_token))
        .await
        .unwrap()
        .into_inner();
    app.clock.advance(Duration::from_secs(11));
    let reused = client.refresh(refresh(&first.refresh_token)).await;
    let successor = client.refresh(refresh(&second.refresh_token)).await;
    let unknown = client.refresh(refresh("not-a-refresh-token")).await;

    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.session_id, first.session_id);
    assert_failed(reused, Code::Unauthenticated, "refresh_token_reused");
    assert_failed(successor, Code::Unauthenticated, "invalid_refresh_token");
    assert_failed(unknown, Code::Unauthenticated, "invalid_refresh_token");
}

async fn logout_ends_the_session_of_the_bearer_or_of_the_refresh_token(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let other = app.logged_in(&alice).await;
    let mut client = app.grpc().await;
    let validate = |token: &str| pb::ValidateTokenRequest {
        token: token.to_owned(),
    };

    client
        .logout(with_bearer(
            pb::LogoutRequest::default(),
            &alice.access_token,
        ))
        .await
        .unwrap();
    client
        .logout(pb::LogoutRequest {
            refresh_token: other.refresh_token.clone(),
        })
        .await
        .unwrap();
    let neither = client.logout(pb::LogoutRequest::default()).await;

    for account in [&alice, &other] {
        let verdict = client
            .validate_token(validate(&account.access_token))
            .await
            .unwrap()
            .into_inner();
        assert!(!verdict.valid);
        assert_eq!(verdict.reason, "session_ended");
    }
    assert_failed(neither, Code::Unauthenticated, "unauthorized");
}

async fn get_user_answers_the_caller_and_only_admins_may_read_others(backend: Backend) {
    let app = backend.app_with(with_admin).await;
    let alice = app.signed_up("alice").await;
    let bob = app.signed_up("bob").await;
    let admin = app.admin().await;
    let mut client = app.grpc().await;
    let get = |token: &str, id: &str| {
        with_bearer(
            pb::GetUserRequest {
                user_id: id.to_owned(),
            },
            token,
        )
    };
    let unknown = uuid::Uuid::now_v7().to_string();

    let own = client.get_user(get(&alice.access_token, "")).await;
    let own_by_id = client
        .get_user(get(&alice.access_token, &alice.user_id))
        .await;
    let others = client
        .get_user(get(&alice.access_token, &bob.user_id))
        .await;
    let probing = client.get_user(get(&alice.access_token, &unknown)).await;
    let by_admin = client
        .get_user(get(&admin.access_token, &bob.user_id))
        .await;
    let missing = client.get_user(get(&admin.access_token, &unknown)).await;
    let not_an_id = client.get_user(get(&admin.access_token, "bob")).await;
    let anonymous = client.get_user(pb::GetUserRequest::default()).await;

    let user_of = |answer: Result<tonic::Response<pb::GetUserResponse>, tonic::Status>| {
        answer.unwrap().into_inner().user.unwrap()
    };
    assert_eq!(user_of(own).username, "alice");
    assert_eq!(user_of(own_by_id).id, alice.user_id);
    assert_failed(others, Code::PermissionDenied, "forbidden");
    assert_failed(probing, Code::PermissionDenied, "forbidden");
    assert_eq!(user_of(by_admin).username, "bob");
    assert_failed(missing, Code::NotFound, "user_not_found");
    assert_failed(not_an_id, Code::InvalidArgument, "validation_failed");
    assert_failed(anonymous, Code::Unauthenticated, "unauthorized");
    assert_eq!(admin.username, ADMIN.1);
}

backend_tests! {
    signup_answers_tokens_and_a_taken_email_or_username_is_already_exists,
    signup_without_verification_answers_the_user_alone,
    login_by_username_or_email_and_bad_credentials_answer_alike,
    repeated_failures_lock_the_identifier_with_retry_after,
    http_and_grpc_share_the_per_address_limits,
    refresh_rotates_and_a_reused_token_ends_the_session,
    logout_ends_the_session_of_the_bearer_or_of_the_refresh_token,
    get_user_answers_the_caller_and_only_admins_may_read_others,
}
