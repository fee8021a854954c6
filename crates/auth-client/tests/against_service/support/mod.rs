//! Test support: the backends, a running auth-service, the example service in front of a
//! verifier, a counting JWKS proxy, and token surgery for forged tokens.

pub mod backend;
pub mod protected;
pub mod service;
pub mod tokens;

pub use backend::Backend;
pub use protected::{CountingProxy, Protected};
pub use service::{clock_at, ADMIN, PASSWORD};

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
