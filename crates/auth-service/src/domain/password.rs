//! Passwords: the policy a new password must meet (SPEC §4) and `Password`, a secret that
//! passed it.

use secrecy::{ExposeSecret, SecretString};

use crate::error::FieldError;

/// A password that passed the policy.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

/// SPEC §4, NIST 800-63B style: a length range counted in characters, no composition rules,
/// a zxcvbn guessability floor, and neither the username nor the email's local part inside.
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
    /// Lowest acceptable zxcvbn score, 0–4.
    pub min_score: u8,
}

/// How much of a password zxcvbn looks at.
const SCORED_CHARACTERS: usize = 64;

/// Shorter names are too common as substrings to forbid (`al` in "calendar").
const MIN_NAME_TO_FORBID: usize = 3;

impl PasswordPolicy {
    /// The password, or one error per broken rule, all on `field`. `email` and `username` are
    /// the account's (for a signup: as typed). A password over the maximum is refused before
    /// any other work, so an oversized input costs nothing.
    pub fn check(
        &self,
        field: &str,
        raw: &SecretString,
        email: &str,
        username: &str,
    ) -> Result<Password, Vec<FieldError>> {
        let password = raw.expose_secret();
        let length = password.chars().count();
        if length > self.max_length {
            let max = self.max_length;
            return Err(vec![FieldError::new(
                field,
                "too_long",
                format!("must be at most {max} characters"),
            )]);
        }
        let mut errors = Vec::new();
        if length < self.min_length {
            let min = self.min_length;
            errors.push(FieldError::new(
                field,
                "too_short",
                format!("must be at least {min} characters"),
            ));
        }
        let lowered = password.to_lowercase();
        let local_part = email.split('@').next().unwrap_or_default().to_lowercase();
        let username = username.to_lowercase();
        if username.chars().count() >= MIN_NAME_TO_FORBID && lowered.contains(&username) {
            errors.push(FieldError::new(
                field,
                "contains_username",
                "must not contain the username",
            ));
        }
        if local_part.chars().count() >= MIN_NAME_TO_FORBID && lowered.contains(&local_part) {
            errors.push(FieldError::new(
                field,
                "contains_email",
                "must not contain the email address",
            ));
        }
        // zxcvbn's cost grows faster than the length; the first characters decide the score
        // of any realistic password, so a long input cannot make the check expensive.
        let scored: String = password.chars().take(SCORED_CHARACTERS).collect();
        let score = u8::from(zxcvbn::zxcvbn(&scored, &[email, &username]).score());
        if score < self.min_score {
            errors.push(FieldError::new(
                field,
                "too_weak",
                format!(
                    "is too easy to guess (strength {score} of 4, at least {} needed); \
                     a few unrelated words make a strong password",
                    self.min_score
                ),
            ));
        }
        if errors.is_empty() {
            Ok(Self::accepted(raw))
        } else {
            Err(errors)
        }
    }

    fn accepted(raw: &SecretString) -> Password {
        Password(raw.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: PasswordPolicy = PasswordPolicy {
        min_length: 8,
        max_length: 128,
        min_score: 2,
    };

    fn secret(raw: &str) -> SecretString {
        SecretString::from(raw.to_owned())
    }

    fn broken_rules(password: &str, email: &str, username: &str) -> Vec<String> {
        match POLICY.check("password", &secret(password), email, username) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.code).collect(),
        }
    }

    #[test]
    fn password_length_counts_characters_not_bytes() {
        let lenient = PasswordPolicy {
            min_score: 0,
            ..POLICY
        };

        assert!(lenient
            .check("password", &secret("ææææææææ"), "", "")
            .is_ok());
        assert!(lenient
            .check("password", &secret("æææææææ"), "", "")
            .is_err());
    }

    #[test]
    fn a_strong_password_passes() {
        assert!(
            broken_rules("correct horse battery staple", "alice@example.com", "alice").is_empty()
        );
    }

    #[test]
    fn every_broken_rule_is_listed() {
        assert_eq!(
            broken_rules("alice1", "alice@example.com", "alice"),
            [
                "too_short",
                "contains_username",
                "contains_email",
                "too_weak"
            ]
        );
        assert_eq!(
            broken_rules("password", "bob@example.com", "bob"),
            ["too_weak"]
        );
        assert_eq!(
            broken_rules("glacier-Walrus-97-bobby", "bobby@example.com", "robert"),
            ["contains_email"]
        );
        assert_eq!(
            broken_rules("ROBERT tangerine kettle", "x@example.com", "Robert"),
            ["contains_username"]
        );
    }

    #[test]
    fn an_oversized_password_is_refused_before_any_other_rule() {
        let huge = "a".repeat(10_000);

        assert_eq!(broken_rules(&huge, "a@example.com", "alice"), ["too_long"]);
    }
}
