//! SQLite: the row helpers every area borrows (from `shared/rows.rs`), and the SQL of theirs
//! that differs here.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::*;
use crate::domain::user::Credentials;
use crate::domain::EndReason;
use crate::store::effects::Effects;
use crate::store::error::{StoreError, StoreResult};
use crate::store::records::{MemberChange, NewRefreshToken, NewSession, NewUser};
use crate::store::shared::rows::{row_helpers, UserRow};

/// A user's columns (table alias `u`) with their roles — global, plus those held in the
/// territory bound at `territory` (a parameter such as `$2`) — and territories, in one row:
/// the hot paths (`me`, login, refresh, every bearer check) make one round trip.
/// SQLite: no arrays; `json_group_array` (sorted when decoded, see `ListColumn`).
pub(super) fn user_fields(territory: &str) -> String {
    format!(
        "u.id, u.email, u.username, u.display_name, u.avatar_url, u.bio, u.is_verified, \
         u.is_active, u.created_at, u.updated_at, u.password_hash, \
         (SELECT json_group_array(role_name) FROM (SELECT DISTINCT r.role_name \
            FROM user_roles r WHERE r.user_id = u.id \
            AND (r.territory_code IS NULL OR r.territory_code = {territory}))) AS roles, \
         (SELECT json_group_array(territory_code) FROM (SELECT t.territory_code \
            FROM user_territories t WHERE t.user_id = u.id)) AS territories"
    )
}

/// SQLite: a null parameter needs no type.
const END_USER_SESSIONS: &str = "UPDATE sessions SET ended_at = $3, end_reason = $4 \
     WHERE user_id = $1 AND ended_at IS NULL AND ($2 IS NULL OR id <> $2) RETURNING id";

row_helpers!();
