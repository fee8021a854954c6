//! The actions an audit entry records (docs/admin.md, "Audit log"): one variant each, so a
//! misspelled action does not compile. The text is what the `action` column holds.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// An audit row as administrators read it.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
    pub ip_address: Option<String>,
    pub request_id: Option<String>,
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    Signup,
    LoginSuccess,
    LoginFailure,
    Lockout,
    Logout,
    RefreshReuse,
    SessionTerminated,
    PasswordResetRequested,
    PasswordReset,
    PasswordChange,
    EmailVerificationSent,
    EmailVerify,
    AdminBootstrap,
    UserCreated,
    UserUpdated,
    UserDeleted,
    RoleCreated,
    RoleDeleted,
    TerritoryCreated,
    TerritoryUpdated,
    TerritoryMemberAdded,
    TerritoryMemberRemoved,
    TerritoryRolesSet,
    UsersImported,
    MfaEnabled,
    MfaDisabled,
    MfaFailure,
    MfaRecoveryCodesRegenerated,
    ClientCreated,
    ClientUpdated,
    ClientDeleted,
    ClientSecretRotated,
    ClientTokenRevoked,
    TokenExchanged,
    PasskeyAdded,
    PasskeyRenamed,
    PasskeyRemoved,
    PasskeyCounterRegressed,
    ApiKeyCreated,
    ApiKeyRevoked,
    AuthorizationCodeIssued,
    AuthorizationCodeReuse,
}

impl AuditAction {
    /// Every action, in the order of docs/admin.md.
    pub const ALL: &'static [AuditAction] = &[
        AuditAction::Signup,
        AuditAction::LoginSuccess,
        AuditAction::LoginFailure,
        AuditAction::Lockout,
        AuditAction::Logout,
        AuditAction::RefreshReuse,
        AuditAction::SessionTerminated,
        AuditAction::PasswordResetRequested,
        AuditAction::PasswordReset,
        AuditAction::PasswordChange,
        AuditAction::EmailVerificationSent,
        AuditAction::EmailVerify,
        AuditAction::AdminBootstrap,
        AuditAction::UserCreated,
        AuditAction::UserUpdated,
        AuditAction::UserDeleted,
        AuditAction::RoleCreated,
        AuditAction::RoleDeleted,
        AuditAction::TerritoryCreated,
        AuditAction::TerritoryUpdated,
        AuditAction::TerritoryMemberAdded,
        AuditAction::TerritoryMemberRemoved,
        AuditAction::TerritoryRolesSet,
        AuditAction::UsersImported,
        AuditAction::MfaEnabled,
        AuditAction::MfaDisabled,
        AuditAction::MfaFailure,
        AuditAction::MfaRecoveryCodesRegenerated,
        AuditAction::ClientCreated,
        AuditAction::ClientUpdated,
        AuditAction::ClientDeleted,
        AuditAction::ClientSecretRotated,
        AuditAction::ClientTokenRevoked,
        AuditAction::TokenExchanged,
        AuditAction::PasskeyAdded,
        AuditAction::PasskeyRenamed,
        AuditAction::PasskeyRemoved,
        AuditAction::PasskeyCounterRegressed,
        AuditAction::ApiKeyCreated,
        AuditAction::ApiKeyRevoked,
        AuditAction::AuthorizationCodeIssued,
        AuditAction::AuthorizationCodeReuse,
    ];

    /// The text kept in the `action` column and accepted by `GET /api/audit?action=`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Signup => "signup",
            AuditAction::LoginSuccess => "login_success",
            AuditAction::LoginFailure => "login_failure",
            AuditAction::Lockout => "lockout",
            AuditAction::Logout => "logout",
            AuditAction::RefreshReuse => "refresh_reuse",
            AuditAction::SessionTerminated => "session_terminated",
            AuditAction::PasswordResetRequested => "password_reset_requested",
            AuditAction::PasswordReset => "password_reset",
            AuditAction::PasswordChange => "password_change",
            AuditAction::EmailVerificationSent => "email_verification_sent",
            AuditAction::EmailVerify => "email_verify",
            AuditAction::AdminBootstrap => "admin_bootstrap",
            AuditAction::UserCreated => "user_created",
            AuditAction::UserUpdated => "user_updated",
            AuditAction::UserDeleted => "user_deleted",
            AuditAction::RoleCreated => "role_created",
            AuditAction::RoleDeleted => "role_deleted",
            AuditAction::TerritoryCreated => "territory_created",
            AuditAction::TerritoryUpdated => "territory_updated",
            AuditAction::TerritoryMemberAdded => "territory_member_added",
            AuditAction::TerritoryMemberRemoved => "territory_member_removed",
            AuditAction::TerritoryRolesSet => "territory_roles_set",
            AuditAction::UsersImported => "users_imported",
            AuditAction::MfaEnabled => "mfa_enabled",
            AuditAction::MfaDisabled => "mfa_disabled",
            AuditAction::MfaFailure => "mfa_failure",
            AuditAction::MfaRecoveryCodesRegenerated => "mfa_recovery_codes_regenerated",
            AuditAction::ClientCreated => "client_created",
            AuditAction::ClientUpdated => "client_updated",
            AuditAction::ClientDeleted => "client_deleted",
            AuditAction::ClientSecretRotated => "client_secret_rotated",
            AuditAction::ClientTokenRevoked => "client_token_revoked",
            AuditAction::TokenExchanged => "token_exchanged",
            AuditAction::PasskeyAdded => "passkey_added",
            AuditAction::PasskeyRenamed => "passkey_renamed",
            AuditAction::PasskeyRemoved => "passkey_removed",
            AuditAction::PasskeyCounterRegressed => "passkey_counter_regressed",
            AuditAction::ApiKeyCreated => "api_key_created",
            AuditAction::ApiKeyRevoked => "api_key_revoked",
            AuditAction::AuthorizationCodeIssued => "authorization_code_issued",
            AuditAction::AuthorizationCodeReuse => "authorization_code_reuse",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn each_action_is_listed_once_with_its_own_text() {
        let texts: HashSet<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(texts.len(), AuditAction::ALL.len());
        let variants: HashSet<AuditAction> = AuditAction::ALL.iter().copied().collect();
        assert_eq!(variants.len(), AuditAction::ALL.len());
    }

    #[test]
    fn the_documented_actions_are_the_variants() {
        let doc = include_str!("../../../../docs/admin.md");
        let list = doc
            .split("Actions: ")
            .nth(1)
            .and_then(|rest| rest.split(".\n").next())
            .expect("docs/admin.md lists the audit actions");
        let documented: Vec<&str> = list
            .split(',')
            .map(|item| item.trim().trim_matches('`'))
            .collect();
        let ours: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(documented, ours);
    }
}
