//! Test support: the backends, a running auth-service, the example service in front of a
//! verifier, counting proxies for the JWKS and the token endpoint, a clock for token sources,
//! and token surgery for forged tokens.

pub mod backend;
pub mod gate;
pub mod protected;
pub mod service;
pub mod token_proxy;
pub mod tokens;

pub use backend::Backend;
pub use protected::{CountingProxy, Protected};
pub use service::{clock_at, NewClient, ADMIN, PASSWORD};
pub use token_proxy::{TestClock, TokenProxy};

/// Generates `sqlite::name` and `postgres::name` for each `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::support::Backend::Postgres.available(stringify!($name)) {
                        super::$name($crate::support::Backend::Postgres).await;
                    }
                }
            )*
        }
    };
}
