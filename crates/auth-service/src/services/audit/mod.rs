//! Reading the audit log (SPEC §2, `GET /api/audit`), and importing users from another
//! service (`auth-service users import`). This file holds the `Audit` service and the audit
//! log's paging; `import.rs` adds the import to the same service.

pub mod import;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use uuid::Uuid;

use super::context::Context;
use super::sessions::CurrentSession;
use crate::domain::audit::AuditRecord;
use crate::error::{Error, FieldError};
use crate::store::AuditFilter;

/// Page size of `GET /api/audit` when none is asked for, and the largest allowed.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

/// One page of the audit log, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub entries: Vec<AuditRecord>,
    /// Opaque; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Parses the query of `GET /api/audit`, reporting every bad field at once.
pub fn audit_filter(
    user_id: Option<&str>,
    action: Option<&str>,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<AuditFilter, Error> {
    let mut errors = Vec::new();
    let user_id = user_id.and_then(|raw| {
        Uuid::parse_str(raw)
            .map_err(|_| errors.push(FieldError::new("user_id", "invalid", "must be a UUID")))
            .ok()
    });
    let limit = match limit.map(str::parse::<u32>) {
        None => DEFAULT_LIMIT,
        Some(Ok(limit)) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(_) => {
            let message = format!("must be a whole number from 1 to {MAX_LIMIT}");
            errors.push(FieldError::new("limit", "invalid", message));
            DEFAULT_LIMIT
        }
    };
    let before = cursor.and_then(|raw| {
        decode_cursor(raw)
            .ok_or_else(|| {
                errors.push(FieldError::new(
                    "cursor",
                    "invalid_cursor",
                    "is not a cursor this service gave out",
                ));
            })
            .ok()
    });
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    Ok(AuditFilter {
        user_id,
        action: action.map(str::to_owned),
        before,
        limit,
        member_of: None,
    })
}

/// A cursor is the last id of a page, base64url: opaque to clients, checkable here.
fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(raw: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    Uuid::from_slice(&bytes).ok()
}

#[derive(Clone)]
pub struct Audit {
    context: Arc<Context>,
}

impl Audit {
    pub fn new(context: Arc<Context>) -> Self {
        Self { context }
    }

    /// A page of entries, newest first; `next_cursor` continues strictly after its last one.
    /// A territory admin reads entries about users of its territory only (SPEC §5).
    pub async fn entries(
        &self,
        caller: &CurrentSession,
        filter: AuditFilter,
    ) -> Result<AuditPage, Error> {
        let scope = self.context.admin_scope(caller).await?;
        let filter = AuditFilter {
            member_of: scope.territory().map(str::to_owned),
            ..filter
        };
        let limit = filter.limit as usize;
        // One extra row tells whether another page exists, so the last page has no cursor.
        let probe = AuditFilter {
            limit: filter.limit + 1,
            ..filter
        };
        let mut entries = self.context.store.audit_entries(&probe).await?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_cursor = entries
            .last()
            .filter(|_| more)
            .map(|last| encode_cursor(last.id));
        Ok(AuditPage {
            entries,
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let id = Uuid::now_v7();

        let cursor = encode_cursor(id);

        assert_eq!(decode_cursor(&cursor), Some(id));
        assert_eq!(decode_cursor("not a cursor"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode(b"short")), None);
    }

    #[test]
    fn the_audit_query_reports_every_bad_field() {
        let Err(Error::Invalid(errors)) =
            audit_filter(Some("nope"), None, Some("101"), Some("%%%"))
        else {
            panic!("expected a validation error");
        };

        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["user_id", "limit", "cursor"]);
        assert_eq!(errors[2].code, "invalid_cursor");
        assert!(audit_filter(None, None, Some("0"), None).is_err());
        let filter = audit_filter(None, Some("signup"), None, None).unwrap();
        assert_eq!(filter.limit, DEFAULT_LIMIT);
    }
}
