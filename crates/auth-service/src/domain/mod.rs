//! Plain types and pure rules: no async, no I/O, no sqlx, no axum.

pub mod account;
pub mod api_key;
pub mod audit;
pub mod authority;
pub mod authorization;
pub mod client;
pub mod device;
pub mod directory;
pub mod event;
pub mod mfa;
pub mod passkey;
pub mod password;
pub mod session;
pub mod token;
pub mod user;

pub use account::{Email, Login, NewAccount, ProfilePatch, Username};
pub use audit::AuditAction;
pub use device::Device;
pub use event::Event;
pub use password::{Password, PasswordPolicy};
pub use session::{EndReason, Session};
pub use user::User;
