//! `private_key_jwt` client authentication (RFC 7523 §2.2, SPEC §11): the client's keys,
//! inline or fetched from its `jwks_uri` (`client_jwks.rs`), the assertion checked against
//! them, and its `jti` remembered in the database until it expires, so a replay fails on
//! every replica.

use chrono::DateTime;
use jsonwebtoken::jwk::JwkSet;
use secrecy::{ExposeSecret, SecretString};

use super::clients::Clients;
use crate::crypto::client_keys::{self, AssertionRefused};
use crate::crypto::jwt::LEEWAY_SECONDS;
use crate::domain::client::{AuthMethod, StoredClient};
use crate::error::Error;

impl Clients {
    /// Whether `assertion` proves a `private_key_jwt` client (RFC 7523 §3): signed by one of
    /// its keys, for this server, fresh, and with a `jti` not seen before (remembered now,
    /// until the assertion expires). A secret client's assertion proves nothing.
    pub(super) async fn assertion_holds(
        &self,
        stored: &StoredClient,
        assertion: &SecretString,
    ) -> Result<bool, Error> {
        let ctx = &self.context;
        let client = &stored.client;
        if client.keys.auth_method != AuthMethod::PrivateKeyJwt {
            return Ok(false);
        }
        let now = ctx.now();
        let base = ctx.config.server.public_url.trim_end_matches('/');
        let token_endpoint = format!("{base}/oauth/token");
        let audiences = [token_endpoint.as_str(), ctx.config.issuer()];
        let client_id = client.id.to_string();
        let jwt = assertion.expose_secret();
        let verify = |set: &JwkSet| {
            client_keys::verify_assertion(jwt, set, &client_id, &audiences, now.timestamp())
        };
        let verdict = match (&client.keys.jwks, &client.keys.jwks_uri) {
            (Some(inline), _) => client_keys::parse_jwks(inline)
                .map_err(|_| AssertionRefused::UnknownKey)
                .and_then(|set| verify(&set)),
            (None, Some(uri)) => match self.jwks.keys(uri, now, false).await {
                None => Err(AssertionRefused::UnknownKey),
                Some(set) => match verify(&set) {
                    Err(AssertionRefused::UnknownKey) => {
                        match self.jwks.keys(uri, now, true).await {
                            Some(set) => verify(&set),
                            None => Err(AssertionRefused::UnknownKey),
                        }
                    }
                    other => other,
                },
            },
            (None, None) => Err(AssertionRefused::UnknownKey),
        };
        let accepted = match verdict {
            Ok(accepted) => accepted,
            Err(reason) => {
                tracing::debug!(client.id = %client.id, %reason, "client assertion refused");
                return Ok(false);
            }
        };
        // Accepted until `exp` plus the leeway, so remembered as long.
        let until = DateTime::from_timestamp(accepted.exp + LEEWAY_SECONDS, 0).unwrap_or(now);
        let fresh = ctx
            .store
            .record_client_assertion(client.id, &accepted.jti, until, now)
            .await?;
        if !fresh {
            tracing::debug!(client.id = %client.id, "client assertion replayed");
        }
        Ok(fresh)
    }
}
