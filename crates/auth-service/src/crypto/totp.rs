//! Second-factor codes (SPEC §10): TOTP per RFC 6238 through `totp-rs` (SHA-1, 6 digits,
//! 30-second steps, one step of skew either way), the enrollment's `otpauth://` URI and QR
//! code (SVG, `qrcode`), and recovery codes.

use qrcode::render::svg;
use qrcode::QrCode;
use secrecy::{ExposeSecret, SecretString};
use totp_rs::{Algorithm, Builder, Secret, Totp};

use super::keys::random_bytes;
use super::tokens::hash_token;

/// RFC 4226 §4 asks for at least 128 bits and recommends 160: the SHA-1 block of HOTP.
pub const SECRET_BYTES: usize = 20;
/// Seconds per step (RFC 6238's default, what every authenticator app assumes).
pub const STEP_SECONDS: u64 = 30;
/// How many recovery codes an enrollment (or a regeneration) answers.
pub const RECOVERY_CODES: usize = 10;

/// A new random TOTP secret.
pub fn new_secret() -> anyhow::Result<Vec<u8>> {
    Ok(random_bytes::<SECRET_BYTES>()?.to_vec())
}

/// The TOTP of `secret` for `account` at `issuer` (both shown by authenticator apps).
pub fn totp(secret: &[u8], issuer: &str, account: &str) -> anyhow::Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECONDS)
        .with_secret(Secret::from(secret.to_vec()))
        .with_issuer(Some(issuer_name(issuer)))
        .with_account_name(label(account))
        .build()
        .map_err(|error| anyhow::anyhow!("building the TOTP failed: {error}"))
}

/// The issuer as authenticator apps show it: the host of the issuer URL
/// (`https://auth.example.com` → `auth.example.com`).
fn issuer_name(issuer: &str) -> String {
    let host = issuer
        .split_once("://")
        .map_or(issuer, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or(issuer);
    label(host)
}

/// `otpauth://` labels use `:` to separate issuer from account; it cannot appear inside either.
fn label(text: &str) -> String {
    text.replace(':', "_")
}

/// The step a code is valid for at `unix_seconds` (±1 step), if it is valid; a malformed code
/// (not six digits) is simply not valid.
pub fn matching_step(totp: &Totp, code: &str, unix_seconds: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp.check(code, unix_seconds)
}

/// What enrollment answers: the base32 secret, its `otpauth://` URI and that URI as a QR
/// code in SVG.
pub struct Enrollment {
    pub secret: SecretString,
    pub otpauth_uri: SecretString,
    pub qr_svg: String,
}

pub fn enrollment(totp: &Totp) -> anyhow::Result<Enrollment> {
    let uri = totp
        .to_url()
        .map_err(|error| anyhow::anyhow!("the otpauth URI: {error}"))?;
    let qr = QrCode::new(uri.as_bytes())?;
    let qr_svg = qr
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(Enrollment {
        secret: SecretString::from(totp.secret().to_base32()),
        otpauth_uri: SecretString::from(uri),
        qr_svg,
    })
}

/// A recovery code as shown (`xxxx-xxxx-xxxx-xxxx`, 80 random bits in lowercase base32) and
/// what the database keeps of it. SHA-256 without salt or stretching is enough here: the code
/// is random with 80 bits of entropy, not a password a person chose.
pub struct RecoveryCode {
    pub plaintext: SecretString,
    pub hash: Vec<u8>,
}

pub fn recovery_codes() -> anyhow::Result<Vec<RecoveryCode>> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = random_bytes::<10>()?;
            let text = base32_lower(&bytes);
            let shown = text
                .as_bytes()
                .chunks(4)
                .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
                .collect::<Vec<_>>()
                .join("-");
            Ok(RecoveryCode {
                hash: recovery_code_hash(&shown),
                plaintext: SecretString::from(shown),
            })
        })
        .collect()
}

/// The stored form of a presented recovery code: case, spaces and dashes do not matter.
pub fn recovery_code_hash(presented: &str) -> Vec<u8> {
    let normal: String = presented
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    hash_token(&normal)
}

fn base32_lower(bytes: &[u8]) -> String {
    Secret::from(bytes.to_vec()).to_base32().to_lowercase()
}

/// A code's shape, for messages: recovery codes are 16 base32 characters (dashes allowed).
pub fn looks_like_recovery_code(code: &SecretString) -> bool {
    let normal: Vec<char> = code
        .expose_secret()
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .collect();
    normal.len() == 16 && normal.iter().all(char::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_one_step_either_side_are_accepted_two_are_not() {
        let secret = new_secret().unwrap();
        let totp = totp(&secret, "https://auth.example.com", "alice@example.com").unwrap();
        let now = 1_700_000_000;
        let step = now / STEP_SECONDS;

        for (offset, accepted) in [(0i64, true), (-1, true), (1, true), (-2, false), (2, false)] {
            let at = (now as i64 + offset * STEP_SECONDS as i64) as u64;
            let code = totp.generate(at).to_string();
            let matched = matching_step(&totp, &code, now);
            assert_eq!(matched.is_some(), accepted, "offset {offset}");
            if accepted {
                assert_eq!(matched, Some((step as i64 + offset) as u64));
            }
        }
        assert_eq!(matching_step(&totp, "12345", now), None);
        assert_eq!(matching_step(&totp, "abcdef", now), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_match_in_any_case() {
        let codes = recovery_codes().unwrap();

        assert_eq!(codes.len(), RECOVERY_CODES);
        let first = codes[0].plaintext.expose_secret();
        assert_eq!(first.len(), 19);
        assert_eq!(recovery_code_hash(&first.to_uppercase()), codes[0].hash);
        assert_eq!(recovery_code_hash(&first.replace('-', "")), codes[0].hash);
        assert!(looks_like_recovery_code(&codes[0].plaintext));
        let distinct: std::collections::HashSet<_> = codes.iter().map(|c| &c.hash).collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
    }

    #[test]
    fn enrollment_gives_a_base32_secret_an_otpauth_uri_and_an_svg() {
        let totp = totp(&new_secret().unwrap(), "https://auth.example.com", "alice").unwrap();

        let enrollment = enrollment(&totp).unwrap();

        assert_eq!(enrollment.secret.expose_secret().len(), 32);
        assert!(enrollment
            .otpauth_uri
            .expose_secret()
            .starts_with("otpauth://totp/"));
        assert!(enrollment.qr_svg.contains("<svg"));
        assert!(enrollment
            .otpauth_uri
            .expose_secret()
            .contains("issuer=auth.example.com"));
    }
}
