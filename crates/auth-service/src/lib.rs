//! auth-service: the authentication, session and user service of the platform.

pub mod app;
pub mod caller;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod http;
pub mod import;
pub mod limits;
pub mod mail;
pub mod services;
pub mod store;
pub mod telemetry;

pub use app::App;
pub use config::Config;
