//! `/api/roles` and `/api/territories`: roles, territories, memberships and territory roles.

use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;

/// The routes of this module, each with its OpenAPI description.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
