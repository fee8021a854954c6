//! Passkeys (SPEC §10): a registered credential as its owner sees it, the purposes of a
//! WebAuthn ceremony, and the RFC 8176 `amr` of a passkey login.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The method name of a passkey at the login challenge (`methods`, `method`).
pub const PASSKEY_METHOD: &str = "passkey";

/// The longest name a passkey may be given.
pub const MAX_NAME_CHARS: usize = 64;

/// A passkey as listed to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyInfo {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The authenticator reported the credential as backed up (synced across devices).
    pub backed_up: bool,
}

/// What a stored ceremony state is for: each finishing step takes only its own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyPurpose {
    /// `register/options` → `register/finish`, bound to the user.
    Register,
    /// `login/options` → `login/finish` (usernameless), bound to nobody.
    Login,
    /// `mfa/passkey/options` → `mfa/verify`, bound to the user and the `mfa_token`.
    SecondFactor,
}

impl CeremonyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyPurpose::Register => "register",
            CeremonyPurpose::Login => "login",
            CeremonyPurpose::SecondFactor => "mfa",
        }
    }
}

/// RFC 8176 `amr` of a session a passkey opened. A device-bound passkey (the authenticator
/// reports no backup) is a hardware-secured key, `hwk`; a synced one (backup state set: the
/// private key leaves the device for the provider's sync) is `swk`. The library requires
/// user verification (PIN or biometrics) on every passkey ceremony, so the passkey alone is
/// two factors: `mfa`.
pub fn passkey_amr(backed_up: bool, after_password: bool) -> &'static [&'static str] {
    match (after_password, backed_up) {
        (false, false) => &["hwk", "mfa"],
        (false, true) => &["swk", "mfa"],
        (true, false) => &["pwd", "hwk", "mfa"],
        (true, true) => &["pwd", "swk", "mfa"],
    }
}

/// A passkey's name: trimmed, 1 to `MAX_NAME_CHARS` characters, no control characters.
pub fn passkey_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let fits = (1..=MAX_NAME_CHARS).contains(&name.chars().count());
    (fits && !name.chars().any(char::is_control)).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_synced_passkey_is_a_software_key_and_a_device_bound_one_hardware() {
        assert_eq!(passkey_amr(false, false), ["hwk", "mfa"]);
        assert_eq!(passkey_amr(true, true), ["pwd", "swk", "mfa"]);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(passkey_name("  laptop "), Some("laptop".to_owned()));
        assert_eq!(passkey_name("   "), None);
        assert_eq!(passkey_name(&"x".repeat(65)), None);
        assert_eq!(passkey_name("a\nb"), None);
    }
}
