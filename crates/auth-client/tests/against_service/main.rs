//! auth-client against a real auth-service: the example service of `examples/` verifies the
//! service's tokens, on SQLite and on PostgreSQL (`TEST_DATABASE_URL`, required under `CI`).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a failed step must fail the test loudly"
)]

mod support;

mod exchange;
mod keys;
mod online;
mod roles;
mod scopes;
mod token_source;
mod verification;

/// The example program; its router is what the tests call.
#[expect(
    dead_code,
    reason = "the example's `main` runs as a program, not in the tests"
)]
#[path = "../../examples/protected_service.rs"]
mod protected_service;
