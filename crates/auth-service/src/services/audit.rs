//! Reading the audit log, and importing users from another service.

use std::sync::Arc;

use super::context::Context;

#[derive(Clone)]
pub struct Audit {
    #[allow(dead_code, reason = "being written")]
    context: Arc<Context>,
}

impl Audit {
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
    }
}
