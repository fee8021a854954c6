//! The mails the service sends, and the masked address that stands for a recipient wherever
//! a mail is logged or printed.

use std::fmt;
use std::time::Duration;

/// A mail the service sends. `token` is the raw link token; it appears only in the link.
pub enum Mail {
    PasswordReset {
        to: String,
        username: String,
        token: String,
        expires_in: Duration,
    },
    EmailVerification {
        to: String,
        username: String,
        token: String,
        expires_in: Duration,
    },
}

impl Mail {
    /// Every `kind` label of the mail metrics.
    pub const KINDS: [&'static str; 2] = ["password_reset", "email_verification"];

    /// The `kind` label of the mail metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Mail::PasswordReset { .. } => "password_reset",
            Mail::EmailVerification { .. } => "email_verification",
        }
    }

    pub(super) fn to(&self) -> &str {
        match self {
            Mail::PasswordReset { to, .. } | Mail::EmailVerification { to, .. } => to,
        }
    }
}

// Hand-written so a stray `{:?}` can print neither the token nor the address.
impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("kind", &self.kind())
            .field("to", &mask_address(self.to()))
            .field("token", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

/// `alice@example.com` → `a…@example.com`: enough to tell mails apart, not an address.
pub(super) fn mask_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}…@{domain}")
        }
        None => "…".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked_to_the_first_letter_and_domain() {
        assert_eq!(mask_address("alice@example.com"), "a…@example.com");
        assert_eq!(mask_address("nonsense"), "…");
    }
}
