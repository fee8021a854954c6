//! The role guard: 403 `forbidden` without the role, 200 with it.

use crate::backend_tests;
use crate::support::{clock_at, Backend, Protected, ADMIN, PASSWORD};

async fn the_admin_route_needs_the_admin_role(backend: Backend) {
    let service = backend
        .service_with(
            clock_at(0),
            &[
                ("bootstrap.admin_email", "root@example.com"),
                ("bootstrap.admin_username", ADMIN),
                ("bootstrap.admin_password", PASSWORD),
            ],
        )
        .await;
    let protected = Protected::start(service.verifier()).await;
    let alice = service.signed_up("alice").await;
    let admin = service.logged_in(ADMIN).await;

    let as_user = protected
        .get("/admin/reports", Some(&alice.access_token))
        .await;
    let as_admin = protected
        .get("/admin/reports", Some(&admin.access_token))
        .await;
    let anonymous = protected.get("/admin/reports", None).await;

    assert_eq!(as_user.status, 403);
    assert_eq!(as_user.body["code"], "forbidden");
    assert_eq!(as_user.reason(), "missing_role");
    assert!(!as_user.headers.contains_key("www-authenticate"));
    assert_eq!(as_admin.status, 200, "{}", as_admin.body);
    assert_eq!(as_admin.body["requested_by"], ADMIN);
    assert_eq!(anonymous.status, 401);
}

backend_tests! {
    the_admin_route_needs_the_admin_role,
}
