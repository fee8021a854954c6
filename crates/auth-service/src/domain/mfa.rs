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

/// The `amr` values that say a session was authenticated with more than a password: `mfa`
/// (a password and a second factor), and the RFC 8176 key-based methods `hwk`/`swk` (a
/// passkey, which is itself possession plus the authenticator's user verification).
pub const STRONG_AMR: [&str; 3] = ["mfa", "hwk", "swk"];

/// The `scope` claim of an enrollment-only access token (SPEC §10 `require_mfa_for_roles`).
pub const ENROLLMENT_SCOPE: &str = "mfa_enrollment";

/// SPEC §10 `auth.require_mfa_for_roles`: a session is enrollment-only when its user holds one
/// of the `required` roles (as stored now) and the session was not authenticated with a
/// second factor (`amr`, [`STRONG_AMR`]). Such a session may enroll a factor and little else;
/// the full session is the next login, which then asks for the factor. Decided from the roles
/// held now, so a role granted to a password-only session restricts it at once.
pub fn enrollment_only(required: &[String], roles: &[String], amr: &[String]) -> bool {
    let listed = roles.iter().any(|role| required.contains(role));
    listed
        && !amr
            .iter()
            .any(|method| STRONG_AMR.contains(&method.as_str()))
}

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

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[test]
    fn only_a_listed_role_without_a_second_factor_is_enrollment_only() {
        let required = strings(&["admin"]);
        let pwd = strings(&PASSWORD_AMR);

        assert!(enrollment_only(
            &required,
            &strings(&["user", "admin"]),
            &pwd
        ));
        assert!(!enrollment_only(&required, &strings(&["user"]), &pwd));
        assert!(!enrollment_only(&[], &strings(&["admin"]), &pwd));
        for amr in [
            &TOTP_AMR[..],
            &RECOVERY_CODE_AMR,
            &["hwk"],
            &["swk", "user"],
        ] {
            assert!(!enrollment_only(
                &required,
                &strings(&["admin"]),
                &strings(amr)
            ));
        }
    }
}
