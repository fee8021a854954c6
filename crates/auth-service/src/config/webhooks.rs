//! `[[events.webhooks]]`: the endpoints that receive every event (or the types they name) as a
//! signed Standard Webhooks request. Operators configure them; no request can add one.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::secret::Secret;
use crate::domain::Event;

/// The prefix of a Standard Webhooks signing secret: `whsec_<base64 of the key>`.
const SECRET_PREFIX: &str = "whsec_";

/// One webhook endpoint.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Names the endpoint in logs, metrics (`endpoint` label) and its delivery state, which
    /// follows the name: renaming an endpoint starts it afresh. Default: the URL's host, port
    /// and path.
    #[serde(default)]
    pub name: Option<String>,
    /// `https://…` (or `http://…`) that each event is POSTed to. Kept secret, since a URL
    /// may carry a token in its query.
    pub url: Secret,
    /// The signing secret, `whsec_` and the base64 of 24 to 64 random bytes (Standard
    /// Webhooks).
    pub secret: Secret,
    /// The event types to send: exact types (`auth:user.registered`) or prefixes ending in
    /// `*` (`auth:session.*`); empty sends every type.
    #[serde(default)]
    pub types: Vec<String>,
}

impl WebhookConfig {
    /// The endpoint's name: `name`, else the URL's `host[:port]/path`.
    pub fn name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match url::Url::parse(self.url.expose()) {
            Ok(url) => {
                let host = url.host_str().unwrap_or_default();
                match url.port() {
                    Some(port) => format!("{host}:{port}{}", url.path()),
                    None => format!("{host}{}", url.path()),
                }
            }
            Err(_) => String::new(),
        }
    }

    /// The HMAC key the secret encodes; `None` when it is not `whsec_<base64>`.
    pub fn key(&self) -> Option<Vec<u8>> {
        let encoded = self.secret.expose().strip_prefix(SECRET_PREFIX)?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
    }

    /// Whether events of `event_type` go to this endpoint.
    pub fn wants(&self, event_type: &str) -> bool {
        self.types.is_empty()
            || self
                .types
                .iter()
                .any(|pattern| type_matches(pattern, event_type))
    }

    /// Checks the endpoint `events.webhooks[index]`.
    pub(super) fn validate(&self, index: usize) -> Result<(), ConfigError> {
        let key = |field: &str| format!("events.webhooks[{index}].{field}");
        let url_ok = url::Url::parse(self.url.expose())
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some());
        if !url_ok {
            return Err(ConfigError::at(
                &key("url"),
                "must be an http:// or https:// URL with a host",
            ));
        }
        if !self.key().is_some_and(|key| (24..=64).contains(&key.len())) {
            return Err(ConfigError::at(
                &key("secret"),
                "must be whsec_ followed by the base64 of 24 to 64 random bytes",
            ));
        }
        let name = self.name();
        if name.is_empty()
            || name.len() > 200
            || name
                .chars()
                .any(|c| c.is_control() || c == '"' || c == '\\')
        {
            return Err(ConfigError::at(
                &key("name"),
                "must be 1 to 200 printable characters without quotes or backslashes",
            ));
        }
        for pattern in &self.types {
            let known = Event::ALL_KINDS
                .iter()
                .any(|kind| type_matches(pattern, kind));
            let star_at_end_only = pattern.find('*').is_none_or(|at| at == pattern.len() - 1);
            if !known || !star_at_end_only {
                return Err(ConfigError::at(
                    &key("types"),
                    &format!(
                        "{pattern:?} names no event type (an exact type such as \
                         auth:user.registered, or a prefix ending in *)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `auth:session.*` matches every type it prefixes; anything else only itself.
fn type_matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => event_type.starts_with(prefix),
        None => pattern == event_type,
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn endpoint(url: &str, secret: &str, types: &[&str]) -> WebhookConfig {
        WebhookConfig {
            name: None,
            url: Secret(SecretString::from(url.to_owned())),
            secret: Secret(SecretString::from(secret.to_owned())),
            types: types.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn types_are_exact_or_a_prefix_with_a_star() {
        let all = endpoint("https://hooks.example/in", SECRET, &[]);
        let sessions = endpoint("https://hooks.example/in", SECRET, &["auth:session.*"]);
        let one = endpoint("https://hooks.example/in", SECRET, &["auth:user.login"]);

        assert!(all.wants("auth:user.login"));
        assert!(sessions.wants("auth:session.created"));
        assert!(!sessions.wants("auth:sessions.bulk_terminated"));
        assert!(one.wants("auth:user.login"));
        assert!(!one.wants("auth:user.logout"));
        assert!(one.validate(0).is_ok() && sessions.validate(0).is_ok());
    }

    #[test]
    fn bad_urls_secrets_and_types_are_refused_by_key() {
        let refused = |config: WebhookConfig| config.validate(2).unwrap_err().to_string();

        assert!(refused(endpoint("ftp://x/in", SECRET, &[])).contains("webhooks[2].url"));
        assert!(refused(endpoint("https://x/in", "MfKQ9r8GKYqrTwjUPD8I", &[])).contains(".secret"));
        assert!(refused(endpoint("https://x/in", "whsec_c2hvcnQ=", &[])).contains(".secret"));
        assert!(refused(endpoint("https://x/in", SECRET, &["auth:nope"])).contains(".types"));
        assert!(refused(endpoint("https://x/in", SECRET, &["auth:*.login"])).contains(".types"));
    }

    #[test]
    fn the_default_name_is_host_port_and_path_without_the_query() {
        let config = endpoint("https://hooks.example:8443/in?token=abc", SECRET, &[]);

        assert_eq!(config.name(), "hooks.example:8443/in");
    }
}
