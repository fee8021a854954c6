//! Test support: backends, the running app, and outage staging.

pub mod api;
pub mod app;
pub mod backend;
pub mod chaos;
pub mod directory;
pub mod forge;
pub mod grpc;
pub mod kafka;
pub mod nats;
pub mod owned;
pub mod passkey;
pub mod process;
pub mod rabbitmq;
pub mod redis;
pub mod smtp;
pub mod webhooks;

pub use api::{code_of, link_token, token_among, with_admin, Account, ADMIN, PASSWORD};
pub use app::{test_config, TestApp};
pub use backend::Backend;

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
