//! Talking gRPC the way another service does: the generated tonic client over a socket.

use auth_service::grpc::pb;
use auth_service::grpc::pb::auth_service_client::AuthServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use super::{Account, TestApp, PASSWORD};

pub type Client = AuthServiceClient<Channel>;

impl TestApp {
    /// A channel to the gRPC listener.
    pub async fn grpc_channel(&self) -> Channel {
        Channel::from_shared(self.grpc_url.clone())
            .expect("a gRPC URL")
            .connect()
            .await
            .expect("the gRPC listener accepts")
    }

    /// The `auth.v1.AuthService` client.
    pub async fn grpc(&self) -> Client {
        AuthServiceClient::new(self.grpc_channel().await)
    }
}

/// `message` with `authorization: Bearer <token>`.
pub fn with_bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ASCII token"),
    );
    request
}

/// The stable code of a failed call, checked to be both in `x-error-code` and the message.
pub fn error_code(status: &Status) -> String {
    let code = status
        .metadata()
        .get("x-error-code")
        .unwrap_or_else(|| panic!("no x-error-code in {status:?}"))
        .to_str()
        .expect("ASCII code")
        .to_owned();
    assert!(
        status.message().starts_with(&format!("{code}: ")),
        "the message names the code: {status:?}"
    );
    code
}

/// Asserts that `result` failed with `code` and the stable `stable` code.
#[track_caller]
pub fn assert_failed<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, stable: &str) {
    let status = result.expect_err("the call fails");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(error_code(&status), stable, "{status:?}");
}

pub fn signup_request(name: &str) -> pb::SignUpRequest {
    pb::SignUpRequest {
        email: format!("{name}@example.com"),
        username: name.to_owned(),
        password: PASSWORD.to_owned(),
        display_name: None,
    }
}

pub fn login_request(username: &str, password: &str) -> pb::LoginRequest {
    pb::LoginRequest {
        identifier: Some(pb::login_request::Identifier::Username(username.to_owned())),
        password: password.to_owned(),
    }
}

/// An account from a gRPC token response.
pub fn account_of(name: &str, tokens: &pb::TokenResponse) -> Account {
    let user = tokens.user.as_ref().expect("the user");
    Account {
        username: name.to_owned(),
        email: user.email.clone(),
        password: PASSWORD.to_owned(),
        access_token: tokens.access_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
        session_id: tokens.session_id.clone(),
        user_id: user.id.clone(),
    }
}
