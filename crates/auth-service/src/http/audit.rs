//! `/api/audit`: the audit log, newest first.

use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;

/// The routes of this module, each with its OpenAPI description.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
