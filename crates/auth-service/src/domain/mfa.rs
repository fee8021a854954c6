//! Second factors (SPEC §10): the methods a login challenge offers and the RFC 8176
//! authentication methods (`amr`) a session records.

/// `amr` of a password login: RFC 8176 `pwd`.
pub const PASSWORD_AMR: [&str; 1] = ["pwd"];
/// `amr` after a password and a TOTP code: `pwd`, `otp` (a one-time password) and `mfa`.
pub const TOTP_AMR: [&str; 3] = ["pwd", "otp", "mfa"];
/// `amr` after a password and a recovery code: `pwd` and `mfa`. A recovery code is single
/// use but no OTP generator (RFC 8176 `otp`), and RFC 8176 has no closer value; a relying
/// party that wants the authenticator app itself asks for `otp`.
pub const RECOVERY_CODE_AMR: [&str; 2] = ["pwd", "mfa"];

/// A second factor presented at the login challenge or as a fresh factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaMethod {
    Totp,
    RecoveryCode,
}

impl MfaMethod {
    /// The methods a challenge offers to an account with a confirmed TOTP factor.
    pub const OFFERED: [MfaMethod; 2] = [MfaMethod::Totp, MfaMethod::RecoveryCode];

    pub fn as_str(self) -> &'static str {
        match self {
            MfaMethod::Totp => "totp",
            MfaMethod::RecoveryCode => "recovery_code",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::OFFERED.into_iter().find(|m| m.as_str() == raw)
    }

    /// The `amr` a session authenticated with a password and this method records.
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            MfaMethod::Totp => &TOTP_AMR,
            MfaMethod::RecoveryCode => &RECOVERY_CODE_AMR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_from_their_text_only() {
        for method in MfaMethod::OFFERED {
            assert_eq!(MfaMethod::parse(method.as_str()), Some(method));
        }
        assert_eq!(MfaMethod::parse("passkey"), None);
        assert_eq!(MfaMethod::Totp.amr(), ["pwd", "otp", "mfa"]);
    }
}
