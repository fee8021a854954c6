//! PostgreSQL: users, their roles and territories — every method is in `shared/users.rs`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::*;
use super::rows::{
    commit, commit_found, credentials_by_id, insert_session, insert_user, user_fields, Run,
};
use super::PgStore;
use crate::domain::user::{Credentials, DEFAULT_ROLE};
use crate::domain::{Login, ProfilePatch, User};
use crate::store::contract::UserStore;
use crate::store::effects::Effects;
use crate::store::error::StoreResult;
use crate::store::records::{NewRefreshToken, NewSession, NewUser};
use crate::store::shared::rows::UserRow;
use crate::store::shared::users::user_store;

user_store! {
    impl UserStore for PgStore {}
}
