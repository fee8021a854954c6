//! `[oauth]`: the authorization endpoint (SPEC §11, the authorization code grant).

use serde::{Deserialize, Serialize};

use super::error::ConfigError;

/// Where `GET /oauth/authorize` sends the browser: the platform's login page, which signs the
/// user in with the JSON API and calls `POST /api/auth/authorize`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthConfig {
    /// An absolute https URL (http only on localhost, 127.0.0.1 or [::1]) without a fragment;
    /// the authorization request's query is appended to it. Unset: the authorization endpoint
    /// answers every valid request with `error=temporarily_unavailable`.
    pub login_url: Option<String>,
}

impl OAuthConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let Some(login) = &self.login_url else {
            return Ok(());
        };
        let url = url::Url::parse(login)
            .map_err(|_| ConfigError::at("oauth.login_url", "must be an absolute URL"))?;
        let loopback = matches!(
            url.host(),
            Some(url::Host::Domain("localhost"))
                | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
                | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
        );
        let secure = url.scheme() == "https" || (url.scheme() == "http" && loopback);
        if !secure || url.host().is_none() || url.fragment().is_some() {
            return Err(ConfigError::at(
                "oauth.login_url",
                "must be https (http only on localhost) with a host and no fragment",
            ));
        }
        Ok(())
    }
}
