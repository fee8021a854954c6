//! Plain types and pure rules: no async, no I/O, no sqlx, no axum.

pub mod account;
pub mod authority;
pub mod device;
pub mod password;
pub mod session;
pub mod user;

pub use account::{Email, Login, NewAccount, ProfilePatch, Username};
pub use device::Device;
pub use password::{Password, PasswordPolicy};
pub use session::{EndReason, Session};
pub use user::User;
