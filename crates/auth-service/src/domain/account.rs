//! Parsing at the door: emails, usernames, passwords and profile changes, each checked once.
//! Passwords and their policy are in `password.rs`.

use secrecy::SecretString;

use super::password::{Password, PasswordPolicy};
use crate::error::{Error, FieldError};

/// A syntactically valid email address, lowercased (SPEC §5: stored lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let email = normalize_email(raw);
        let invalid = || {
            FieldError::new(
                "email",
                "invalid",
                "must be an email address such as name@example.com",
            )
        };
        if email.chars().count() > 254 {
            return Err(FieldError::new(
                "email",
                "too_long",
                "must be at most 254 characters",
            ));
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '@' || c == '"');
        if !(domain_ok && local_ok) {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`, which a password must not contain (SPEC §4).
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

/// A username: 3–50 ASCII letters, digits, `_`, `.` or `-`; unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let length = raw.chars().count();
        if !(3..=50).contains(&length) {
            return Err(FieldError::new(
                "username",
                "invalid_length",
                "must be 3 to 50 characters",
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(FieldError::new(
                "username",
                "invalid_characters",
                "may contain only letters, digits, '_', '.' and '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A checked signup.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub username: Username,
    pub password: Password,
    pub display_name: Option<String>,
}

impl NewAccount {
    /// Checks every field and reports every problem at once.
    pub fn parse(
        email: &str,
        username: &str,
        password: &SecretString,
        display_name: Option<String>,
        policy: &PasswordPolicy,
    ) -> Result<Self, Error> {
        let password = policy.check("password", password, email, username);
        let email = Email::parse(email);
        let username = Username::parse(username);
        let display_name = display_name
            .map(|name| text("display_name", &name, 100))
            .transpose();
        match (email, username, password, display_name) {
            (Ok(email), Ok(username), Ok(password), Ok(display_name)) => Ok(Self {
                email,
                username,
                password,
                display_name: display_name.flatten(),
            }),
            (email, username, password, display_name) => Err(Error::Invalid(
                [email.err(), username.err()]
                    .into_iter()
                    .flatten()
                    .chain(password.err().unwrap_or_default())
                    .chain(display_name.err())
                    .collect(),
            )),
        }
    }
}

/// How a user names themselves at login.
#[derive(Debug, Clone)]
pub enum Login {
    Email(String),
    Username(String),
}

impl Login {
    /// The identifier as it is matched against stored accounts and counted by the lockout
    /// (SPEC §5: one normalisation on both databases). Emails get the normalisation
    /// [`Email::parse`] stores them with. Usernames are ASCII (see [`Username::parse`]), so only
    /// ASCII letters are folded: `İ` (U+0130) or `K` (U+212A) stay as they are and match no
    /// account, whatever a database's own `lower()` would make of them.
    pub fn normalized(&self) -> String {
        match self {
            Login::Email(email) => normalize_email(email),
            Login::Username(username) => username.to_ascii_lowercase(),
        }
    }
}

/// Trimmed and lowercased: how emails are stored (SPEC §5), compared and counted.
fn normalize_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// Changes a user makes to their own profile; `Some(None)` clears a field.
#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    pub display_name: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub bio: Option<Option<String>>,
}

impl ProfilePatch {
    pub fn parse(
        display_name: Option<Option<String>>,
        avatar_url: Option<Option<String>>,
        bio: Option<Option<String>>,
    ) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let mut check = |field: &str, value: Option<Option<String>>, max: usize| match value {
            Some(Some(value)) => match text(field, &value, max) {
                Ok(value) => Some(value),
                Err(error) => {
                    errors.push(error);
                    None
                }
            },
            Some(None) => Some(None),
            None => None,
        };
        let display_name = check("display_name", display_name, 100);
        let bio = check("bio", bio, 1000);
        let avatar_url = check("avatar_url", avatar_url, 2048);
        if let Some(Some(url)) = &avatar_url {
            if !(url.starts_with("https://") || url.starts_with("http://"))
                || url::Url::parse(url).is_err()
            {
                errors.push(FieldError::new(
                    "avatar_url",
                    "invalid",
                    "must be an http(s) URL",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        Ok(Self {
            display_name,
            avatar_url,
            bio,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.display_name.is_none() && self.avatar_url.is_none() && self.bio.is_none()
    }
}

/// Trimmed free text of at most `max` characters; empty becomes `None`.
fn text(field: &str, value: &str, max: usize) -> Result<Option<String>, FieldError> {
    let trimmed = value.trim();
    if trimmed.chars().count() > max {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "invalid",
            "must not contain control characters",
        ));
    }
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(
            Email::parse(" Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a b@example.com",
            "alice@example",
            "a@b..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usernames_are_3_to_50_safe_characters() {
        assert!(Username::parse("al").is_err());
        assert!(Username::parse(&"a".repeat(51)).is_err());
        assert!(Username::parse("alice smith").is_err());
        assert!(Username::parse("ålice").is_err());
        assert!(Username::parse("alice.smith_1-x").is_ok());
    }

    #[test]
    fn login_identifiers_fold_ascii_usernames_and_emails_as_stored() {
        let username = |raw: &str| Login::Username(raw.to_owned()).normalized();
        let email = |raw: &str| Login::Email(raw.to_owned()).normalized();

        assert_eq!(username("IrIs"), "iris");
        assert_eq!(username("\u{130}ris"), "\u{130}ris");
        assert_eq!(username("\u{212A}ate"), "\u{212A}ate");
        assert_eq!(email(" Iris@Example.COM "), "iris@example.com");
        assert_eq!(
            email("\u{130}ris@example.com"),
            Email::parse("\u{130}ris@example.com").unwrap().as_str()
        );
    }

    const POLICY: PasswordPolicy = PasswordPolicy {
        min_length: 8,
        max_length: 128,
        min_score: 2,
    };

    #[test]
    fn a_signup_reports_every_bad_field() {
        let error = NewAccount::parse(
            "nope",
            "x",
            &SecretString::from("1".to_string()),
            None,
            &POLICY,
        )
        .unwrap_err();

        let Error::Invalid(errors) = error else {
            panic!("expected Invalid")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        // "1" is both too short and too easy to guess.
        assert_eq!(fields, ["email", "username", "password", "password"]);
    }
}
