//! What the limiter counts (a scope per client IP, a login attempt) and how a refusal says
//! when to come back; both count stores answer in these terms.

use std::time::Duration;

use crate::config::{LimitsConfig, Rate};

/// Which per-client-IP limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    LoginIp,
    SignupIp,
    ForgotPasswordIp,
    LookupIp,
    /// Reset and verification mails per account, so nobody can flood one mailbox.
    MailPerAccount,
    /// Token requests and authenticated revocations per OAuth client (SPEC §11).
    TokenPerClient,
    /// Introspection requests per OAuth client (`POST /oauth/introspect`).
    IntrospectPerClient,
    /// Revocations without client authentication, per client IP (`POST /oauth/revoke`).
    RevokePerIp,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::LoginIp,
        Scope::SignupIp,
        Scope::ForgotPasswordIp,
        Scope::LookupIp,
        Scope::MailPerAccount,
        Scope::TokenPerClient,
        Scope::IntrospectPerClient,
        Scope::RevokePerIp,
    ];

    /// The metric label and Redis key segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::LoginIp => "login_ip",
            Scope::SignupIp => "signup_ip",
            Scope::ForgotPasswordIp => "forgot_password_ip",
            Scope::LookupIp => "lookup_ip",
            Scope::MailPerAccount => "mail_account",
            Scope::TokenPerClient => "token_client",
            Scope::IntrospectPerClient => "introspect_client",
            Scope::RevokePerIp => "revoke_ip",
        }
    }

    pub(super) fn rate(self, config: &LimitsConfig) -> Rate {
        match self {
            Scope::LoginIp => config.login_per_ip,
            Scope::SignupIp => config.signup_per_ip,
            Scope::ForgotPasswordIp => config.forgot_password_per_ip,
            Scope::LookupIp => config.lookup_per_ip,
            Scope::MailPerAccount => config.mail_per_account,
            Scope::TokenPerClient => config.token_per_client,
            Scope::IntrospectPerClient => config.introspect_per_client,
            Scope::RevokePerIp => config.revoke_per_ip,
        }
    }
}

/// A login attempt that [`Limiter::attempt`] let through and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// This attempt's count reached `login_failures`: the identifier is locked from now on.
    /// The caller audits the lockout once, and only if this attempt's password is wrong (a
    /// correct one resets the count).
    pub locked_now: bool,
}

/// A refusal always asks the client to wait a little, even at the very end of a window.
pub(super) fn at_least_a_millisecond(wait: Duration) -> Duration {
    wait.max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_reads_its_own_rate() {
        let config = LimitsConfig::default();

        assert_eq!(Scope::LoginIp.rate(&config), config.login_per_ip);
        assert_eq!(Scope::SignupIp.rate(&config), config.signup_per_ip);
        assert_eq!(
            Scope::ForgotPasswordIp.rate(&config),
            config.forgot_password_per_ip
        );
        assert_eq!(Scope::LookupIp.rate(&config), config.lookup_per_ip);
    }
}
