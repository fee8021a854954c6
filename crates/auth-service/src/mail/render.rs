//! The words of each mail: subject, plain text and HTML, with the link built from
//! `server.public_url`. Pure functions, so the wording is tested without a transport.

use std::time::Duration;

use super::message::Mail;

/// One mail made ready to send: what the user reads, in both forms.
#[derive(Clone)]
pub(super) struct Rendered {
    pub subject: &'static str,
    pub text: String,
    pub html: String,
}

/// Builds the links users follow back to the service.
#[derive(Debug, Clone)]
pub(super) struct Links {
    base: String,
}

impl Links {
    pub fn new(public_url: &str) -> Self {
        Self {
            base: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// `{public_url}/{page}?token={token}`, with the token URL-encoded.
    pub fn link(&self, page: &str, token: &str) -> String {
        let token: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
        format!("{}/{page}?token={token}", self.base)
    }
}

pub(super) fn render(mail: &Mail, links: &Links) -> Rendered {
    match mail {
        Mail::PasswordReset {
            username,
            token,
            expires_in,
            ..
        } => {
            let link = links.link("reset-password", token);
            let expiry = expiry(*expires_in);
            Rendered {
                subject: "Reset your password",
                text: format!(
                    "Hello {username},\n\n\
                     someone asked to reset the password of your account. To choose a new \
                     password, open this link:\n\n{link}\n\n\
                     The link expires in {expiry} and works once.\n\n\
                     If this wasn't you, you can ignore this email: your password stays as it is.\n"
                ),
                html: html_page(
                    username,
                    "someone asked to reset the password of your account.",
                    "Choose a new password",
                    &link,
                    &format!("The link expires in {expiry} and works once."),
                    "If this wasn't you, you can ignore this email: your password stays as it is.",
                ),
            }
        }
        Mail::EmailVerification {
            username,
            token,
            expires_in,
            ..
        } => {
            let link = links.link("verify-email", token);
            let expiry = expiry(*expires_in);
            Rendered {
                subject: "Confirm your email address",
                text: format!(
                    "Hello {username},\n\n\
                     please confirm your email address by opening this link:\n\n{link}\n\n\
                     The link expires in {expiry}.\n\n\
                     If you didn't create an account, you can ignore this email.\n"
                ),
                html: html_page(
                    username,
                    "please confirm your email address.",
                    "Confirm my email address",
                    &link,
                    &format!("The link expires in {expiry}."),
                    "If you didn't create an account, you can ignore this email.",
                ),
            }
        }
    }
}

fn html_page(
    username: &str,
    intro: &str,
    action: &str,
    link: &str,
    expiry: &str,
    ignore: &str,
) -> String {
    let username = escape_html(username);
    let link = escape_html(link);
    format!(
        "<!DOCTYPE html>\n<html><body>\n\
         <p>Hello {username},</p>\n\
         <p>{intro}</p>\n\
         <p><a href=\"{link}\">{action}</a></p>\n\
         <p>Or paste this address into your browser:<br>{link}</p>\n\
         <p>{expiry}</p>\n\
         <p>{ignore}</p>\n\
         </body></html>\n"
    )
}

/// "45 minutes", "1 hour", "48 hours": whole hours when the lifetime is a whole number of
/// hours, else minutes rounded up, so the mail never promises more time than the token has.
fn expiry(lifetime: Duration) -> String {
    let seconds = lifetime.as_secs();
    let hours = seconds / 3600;
    let (count, unit) = if hours > 0 && hours * 3600 == seconds {
        (hours, "hour")
    } else {
        (seconds.div_ceil(60).max(1), "minute")
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Replaces every link token in `text` with `[REDACTED]`, for the log transport.
// Tokens are bearer secrets: whoever reads one can reset the password (STYLE §4).
pub(super) fn redact_tokens(text: &str) -> String {
    const KEY: &str = "token=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (before, after) = rest.split_at(at + KEY.len());
        out.push_str(before);
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '&' | '"' | '\'' | '<' | '>'))
            .unwrap_or(after.len());
        if end > 0 {
            out.push_str("[REDACTED]");
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "tok+en/with=odd_chars";

    fn reset(username: &str) -> Mail {
        Mail::PasswordReset {
            to: "alice@example.com".into(),
            username: username.into(),
            token: TOKEN.into(),
            expires_in: Duration::from_secs(3600),
        }
    }

    #[test]
    fn links_trim_the_trailing_slash_and_encode_the_token() {
        let links = Links::new("https://auth.example.com/base/");

        let link = links.link("reset-password", TOKEN);

        assert_eq!(
            link,
            "https://auth.example.com/base/reset-password?token=tok%2Ben%2Fwith%3Dodd_chars"
        );
    }

    #[test]
    fn a_reset_mail_carries_the_link_expiry_and_an_ignore_note_in_both_forms() {
        let rendered = render(&reset("alice"), &Links::new("http://localhost:8080"));

        let link = "http://localhost:8080/reset-password?token=tok%2Ben%2Fwith%3Dodd_chars";
        assert_eq!(rendered.subject, "Reset your password");
        for body in [&rendered.text, &rendered.html] {
            assert!(body.contains(link), "{body}");
            assert!(body.contains("expires in 1 hour"), "{body}");
            assert!(body.contains("you can ignore this email"), "{body}");
        }
    }

    #[test]
    fn a_verification_mail_links_to_the_verify_page() {
        let mail = Mail::EmailVerification {
            to: "bob@example.com".into(),
            username: "bob".into(),
            token: "abc".into(),
            expires_in: Duration::from_secs(48 * 3600),
        };

        let rendered = render(&mail, &Links::new("http://localhost:8080"));

        assert_eq!(rendered.subject, "Confirm your email address");
        assert!(rendered
            .text
            .contains("http://localhost:8080/verify-email?token=abc"));
        assert!(rendered.text.contains("expires in 48 hours"));
    }

    #[test]
    fn the_username_is_escaped_in_html() {
        let rendered = render(&reset("<b>&eve</b>"), &Links::new("http://localhost"));

        assert!(rendered.html.contains("Hello &lt;b&gt;&amp;eve&lt;/b&gt;,"));
        assert!(!rendered.html.contains("<b>&eve"));
    }

    #[test]
    fn expiry_is_in_whole_hours_or_minutes_rounded_up() {
        assert_eq!(expiry(Duration::from_secs(3600)), "1 hour");
        assert_eq!(expiry(Duration::from_secs(7200)), "2 hours");
        assert_eq!(expiry(Duration::from_secs(45 * 60)), "45 minutes");
        assert_eq!(expiry(Duration::from_secs(90 * 60)), "90 minutes");
        assert_eq!(expiry(Duration::from_secs(61)), "2 minutes");
        assert_eq!(expiry(Duration::from_secs(5)), "1 minute");
    }

    #[test]
    fn redaction_removes_every_token_from_a_rendered_body() {
        let rendered = render(&reset("alice"), &Links::new("http://localhost:8080"));

        let text = redact_tokens(&rendered.text);
        let html = redact_tokens(&rendered.html);

        for body in [&text, &html] {
            assert!(!body.contains("tok%2Ben"), "{body}");
            assert!(body.contains("/reset-password?token=[REDACTED]"), "{body}");
        }
        assert!(html.contains("href=\"http://localhost:8080/reset-password?token=[REDACTED]\""));
    }

    #[test]
    fn redaction_stops_at_delimiters_and_leaves_other_text_alone() {
        assert_eq!(
            redact_tokens("a?token=x1&b=2 token= end token=y"),
            "a?token=[REDACTED]&b=2 token= end token=[REDACTED]"
        );
        assert_eq!(redact_tokens("no secrets here"), "no secrets here");
    }
}
