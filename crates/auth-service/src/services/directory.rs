//! Roles, territories, memberships and the roles held in a territory.

use std::sync::Arc;

use super::context::Context;

#[derive(Clone)]
pub struct Directory {
    #[allow(dead_code, reason = "being written")]
    context: Arc<Context>,
}

impl Directory {
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
    }
}
