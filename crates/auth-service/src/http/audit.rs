//! `/api/audit`: the audit log, newest first (SPEC §2). Requires the `admin` role.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::Problem;
use super::extract::{AdminRole, Authorized};
use crate::domain::audit::AuditRecord;
use crate::error::Error;
use crate::services::audit::{audit_filter, AuditPage};
use crate::state::AppState;

/// The query of `GET /api/audit`; every filter given must match.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only entries about this user.
    #[param(value_type = Option<Uuid>)]
    user_id: Option<String>,
    /// Only entries with this action (`signup`, `login_failure`, `user_created`, …).
    action: Option<String>,
    /// Entries per page, 1–100; 50 when absent.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = r"^[A-Za-z0-9_-]{21}[AQgw]$")]
    cursor: Option<String>,
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEntry)]
pub struct AuditEntryView {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// Who did it; absent for the user's own actions seen anonymously and for the CLI.
    pub actor_id: Option<Uuid>,
    /// The user the entry is about.
    pub user_id: Option<Uuid>,
    #[schema(example = "login_failure")]
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub ip_address: Option<String>,
    pub request_id: Option<String>,
}

impl From<AuditRecord> for AuditEntryView {
    fn from(record: AuditRecord) -> Self {
        Self {
            id: record.id,
            occurred_at: record.occurred_at,
            actor_id: record.actor_id,
            user_id: record.user_id,
            action: record.action,
            target_type: record.target_type,
            target_id: record.target_id,
            details: record.details,
            ip_address: record.ip_address,
            request_id: record.request_id,
        }
    }
}

/// A page of audit entries, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditPage)]
pub struct AuditPageView {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<AuditPage> for AuditPageView {
    fn from(page: AuditPage) -> Self {
        Self {
            entries: page.entries.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// Audit entries, newest first, with keyset pagination.
#[utoipa::path(get, path = "/api/audit", tag = "audit", security(("bearer" = [])),
    params(AuditParams),
    responses(
        (status = 200, body = AuditPageView),
        (status = 400, description = "`validation_failed`: `user_id` not a UUID, `limit` out of range, or `cursor` not one this service gave (`invalid_cursor`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: not an admin", body = Problem, content_type = "application/problem+json"),
))]
pub async fn list_audit_entries(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<AdminRole>,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Result<axum::Json<AuditPageView>, Error> {
    let Query(params) =
        query.map_err(|_| Error::invalid("query", "invalid", "the query string is malformed"))?;
    let filter = audit_filter(
        params.user_id.as_deref(),
        params.action.as_deref(),
        params.limit.as_deref(),
        params.cursor.as_deref(),
    )?;
    let page = state.services.audit.entries(&caller, filter).await?;
    Ok(axum::Json(page.into()))
}
