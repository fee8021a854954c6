//! The online check: a logged-out session is refused at once where the route asks
//! auth-service, while offline verification accepts the token until it expires.

use auth_client::AuthError;

use crate::backend_tests;
use crate::support::{Backend, Protected};

async fn the_online_check_refuses_a_session_that_ended_and_offline_still_accepts_it(
    backend: Backend,
) {
    let service = backend.service().await;
    let verifier = service.verifier();
    let protected = Protected::start(verifier.clone()).await;
    let alice = service.signed_up("alice").await;
    let before = protected.post("/payments", Some(&alice.access_token)).await;

    service.logout(&alice.access_token).await;
    let online = protected.post("/payments", Some(&alice.access_token)).await;
    let offline = protected.get("/me", Some(&alice.access_token)).await;

    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(before.body["session_id"], alice.session_id.as_str());
    assert_eq!(online.status, 401);
    assert_eq!(online.reason(), "revoked");
    assert_eq!(
        offline.status, 200,
        "offline verification cannot see the logout"
    );
    assert_eq!(
        verifier.verify_online(&alice.access_token).await,
        Err(AuthError::Revoked)
    );
}

backend_tests! {
    the_online_check_refuses_a_session_that_ended_and_offline_still_accepts_it,
}
