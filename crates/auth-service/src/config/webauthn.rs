//! `[webauthn]`: the relying party of passkeys (SPEC §10) — its id, its name and the origins
//! whose pages may register and use passkeys. Unset, all three follow `server.public_url`.

use serde::{Deserialize, Serialize};

use super::error::ConfigError;

/// The WebAuthn relying party.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebauthnConfig {
    /// The relying-party id passkeys are bound to: a domain (`example.com`) that every
    /// origin's host is or ends with. Unset: the host of `server.public_url`. Changing it later
    /// orphans every registered passkey.
    pub rp_id: Option<String>,
    /// The name an authenticator shows beside the account. Unset: the relying-party id.
    pub rp_name: Option<String>,
    /// The origins (`https://app.example.com`, scheme, host and port) of the pages that run
    /// the ceremonies; a response from any other origin is refused. Unset: the origin of
    /// `server.public_url`.
    pub origins: Vec<String>,
}

/// The relying party as the service uses it, defaults resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingPartyConfig {
    pub id: String,
    pub name: String,
    pub origins: Vec<url::Url>,
}

impl WebauthnConfig {
    /// Resolves the defaults from `public_url` and checks that every origin belongs to the
    /// relying-party id (WebAuthn §5.1.3: the RP id is the origin's effective domain or a
    /// registrable suffix of it); a mismatch is a configuration error, not a failure at the
    /// first ceremony.
    pub fn relying_party(&self, public_url: &str) -> Result<RelyingPartyConfig, ConfigError> {
        let public = url::Url::parse(public_url)
            .map_err(|_| ConfigError::at("server.public_url", "must be an absolute URL"))?;
        let id = match &self.rp_id {
            Some(id) => id.trim().to_ascii_lowercase(),
            None => public.host_str().unwrap_or_default().to_ascii_lowercase(),
        };
        let valid_id = !id.is_empty()
            && !id.starts_with('.')
            && !id.ends_with('.')
            && id.parse::<std::net::IpAddr>().is_err()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !valid_id {
            return Err(ConfigError::at(
                "webauthn.rp_id",
                "must be a domain name such as example.com (not an IP address, no scheme or port)",
            ));
        }
        let raw: Vec<String> = if self.origins.is_empty() {
            vec![public.origin().ascii_serialization()]
        } else {
            self.origins.clone()
        };
        let mut origins = Vec::with_capacity(raw.len());
        for (index, origin) in raw.iter().enumerate() {
            let key = format!("webauthn.origins[{index}]");
            let url = url::Url::parse(origin).map_err(|_| {
                ConfigError::at(&key, "must be an origin such as https://example.com")
            })?;
            if !matches!(url.scheme(), "https" | "http")
                || url.path() != "/" && !url.path().is_empty()
            {
                return Err(ConfigError::at(
                    &key,
                    "must be an http(s) origin without a path",
                ));
            }
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            if host != id && !host.ends_with(&format!(".{id}")) {
                return Err(ConfigError(format!(
                    "{key}: the host {host} is not the relying-party id {id} nor under it (set webauthn.rp_id)"
                )));
            }
            origins.push(url);
        }
        let name = self.rp_name.clone().unwrap_or_else(|| id.clone());
        Ok(RelyingPartyConfig { id, name, origins })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_follow_the_public_url() {
        let rp = WebauthnConfig::default()
            .relying_party("http://localhost:8080")
            .unwrap();

        assert_eq!(rp.id, "localhost");
        assert_eq!(rp.name, "localhost");
        assert_eq!(rp.origins[0].as_str(), "http://localhost:8080/");
    }

    #[test]
    fn an_origin_outside_the_rp_id_or_an_ip_rp_id_is_refused() {
        let other = WebauthnConfig {
            rp_id: Some("example.com".into()),
            origins: vec!["https://example.net".into()],
            ..WebauthnConfig::default()
        };
        let sub = WebauthnConfig {
            rp_id: Some("example.com".into()),
            origins: vec!["https://login.example.com".into()],
            ..WebauthnConfig::default()
        };

        let refused = other.relying_party("https://example.com").unwrap_err();
        assert!(
            refused.to_string().contains("webauthn.origins[0]"),
            "{refused}"
        );
        assert!(sub.relying_party("https://example.com").is_ok());
        assert!(WebauthnConfig::default()
            .relying_party("http://127.0.0.1:8080")
            .unwrap_err()
            .to_string()
            .contains("webauthn.rp_id"));
    }
}
