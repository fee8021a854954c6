//! One client-credentials request to `POST {base}/oauth/token` (RFC 6749 §4.4): the form, the
//! client's HTTP Basic credentials (`client_secret_basic`, §2.3.1), and the answer read into a
//! token (§5.1) or a typed refusal (§5.2).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::header::{ACCEPT, AUTHORIZATION, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::{ConfigError, OAuthErrorCode, TokenError};

/// Token endpoint answers larger than this are refused; real ones are under 2 KiB.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The longest access token accepted; auth-service's are under 2 KiB.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The longest `error_description` kept.
const MAX_DESCRIPTION_CHARS: usize = 256;

/// The lifetime assumed when an answer omits `expires_in` (RFC 6749 §5.1 only recommends it).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// The longest `Retry-After` honoured, so a bad header cannot park a service for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A token as the endpoint granted it.
pub(crate) struct Granted {
    pub access_token: SecretString,
    pub lifetime: Duration,
    pub scope: Option<String>,
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, marked sensitive so no `Debug` of a
/// header map shows it (RFC 6749 §2.3.1).
pub(crate) fn basic_credentials(
    client_id: &str,
    secret: &SecretString,
) -> Result<HeaderValue, ConfigError> {
    let encode =
        |text: &str| -> String { url::form_urlencoded::byte_serialize(text.as_bytes()).collect() };
    let pair: String = [encode(client_id), encode(secret.expose_secret())].join(":");
    let mut value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(pair)))
        .map_err(|_| ConfigError::Credentials)?;
    value.set_sensitive(true);
    Ok(value)
}

/// Asks `url` for a client-credentials token with `scope` (all the client's when `None`).
pub(crate) async fn request(
    http: &reqwest::Client,
    url: &str,
    credentials: &HeaderValue,
    scope: Option<&str>,
) -> Result<Granted, TokenError> {
    let unavailable = |error: reqwest::Error| TokenError::Unavailable {
        reason: format!("POST {url}: {error}"),
    };
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let response = http
        .post(url)
        .header(AUTHORIZATION, credentials.clone())
        .header(ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(unavailable)?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_limited(response).await.map_err(unavailable)?;
    match body {
        Some(body) => read_answer(status, &headers, &body),
        None => Err(TokenError::InvalidResponse {
            reason: "the answer is too large".to_owned(),
        }),
    }
}

/// The body, read chunk by chunk and abandoned past [`MAX_ANSWER_BYTES`] (`None`), so a
/// misbehaving endpoint cannot make this service buffer an unbounded answer.
async fn read_limited(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    token_type: String,
    expires_in: Option<u64>,
    scope: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
    error_description: Option<String>,
}

/// The answer as a token (200) or a typed failure.
fn read_answer(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Granted, TokenError> {
    let invalid = |reason: &str| TokenError::InvalidResponse {
        reason: reason.to_owned(),
    };
    if body.len() > MAX_ANSWER_BYTES {
        return Err(invalid("the answer is too large"));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(TokenError::RateLimited {
            retry_after: retry_after(headers),
        });
    }
    if status.is_server_error() {
        return Err(TokenError::Unavailable {
            reason: format!("the token endpoint answered {status}"),
        });
    }
    if !status.is_success() {
        // RFC 6749 §5.2: 400, or 401 for a client that failed to authenticate.
        let refusal: ErrorAnswer = serde_json::from_slice(body)
            .map_err(|_| invalid(&format!("{status} without an RFC 6749 error")))?;
        return Err(TokenError::Refused {
            code: OAuthErrorCode::parse(&refusal.error),
            description: refusal
                .error_description
                .map(|text| text.chars().take(MAX_DESCRIPTION_CHARS).collect()),
        });
    }
    let answer: TokenAnswer =
        serde_json::from_slice(body).map_err(|_| invalid("not an RFC 6749 §5.1 token answer"))?;
    if !answer.token_type.eq_ignore_ascii_case("bearer") {
        return Err(invalid("the token type is not Bearer"));
    }
    let header_safe = answer.access_token.len() <= MAX_TOKEN_BYTES
        && !answer.access_token.is_empty()
        && answer
            .access_token
            .bytes()
            .all(|byte| byte.is_ascii_graphic());
    if !header_safe {
        return Err(invalid("the access token cannot be sent as a bearer token"));
    }
    Ok(Granted {
        access_token: SecretString::from(answer.access_token),
        lifetime: answer
            .expires_in
            .map_or(DEFAULT_LIFETIME, Duration::from_secs),
        scope: answer.scope,
    })
}

/// `Retry-After` in seconds (the form auth-service sends), at most [`MAX_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|seconds| Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(status: u16, body: &str) -> Result<Granted, TokenError> {
        read_answer(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    #[test]
    fn a_bearer_token_answer_is_read_with_its_lifetime() {
        let granted = read(
            200,
            r#"{"access_token":"a.b.c","token_type":"bearer","expires_in":900,"scope":"x y","new":1}"#,
        )
        .unwrap();
        let defaulted = read(200, r#"{"access_token":"a.b.c","token_type":"Bearer"}"#).unwrap();

        assert_eq!(granted.access_token.expose_secret(), "a.b.c");
        assert_eq!(granted.lifetime, Duration::from_secs(900));
        assert_eq!(granted.scope.as_deref(), Some("x y"));
        assert_eq!(defaulted.lifetime, DEFAULT_LIFETIME);
    }

    #[test]
    fn answers_that_are_not_bearer_tokens_are_refused() {
        for body in [
            r#"{"access_token":"a.b.c","token_type":"mac"}"#,
            r#"{"access_token":"","token_type":"Bearer"}"#,
            r#"{"access_token":"a b","token_type":"Bearer"}"#,
            r#"{"token_type":"Bearer"}"#,
            "<html>",
        ] {
            assert!(
                matches!(read(200, body), Err(TokenError::InvalidResponse { .. })),
                "{body}"
            );
        }
    }

    #[test]
    fn rfc_6749_errors_are_typed() {
        let refused = read(
            401,
            r#"{"error":"invalid_client","error_description":"the client is not known"}"#,
        );
        let scope = read(400, r#"{"error":"invalid_scope"}"#);

        assert_eq!(
            refused.err(),
            Some(TokenError::Refused {
                code: OAuthErrorCode::InvalidClient,
                description: Some("the client is not known".into()),
            })
        );
        assert!(matches!(
            scope,
            Err(TokenError::Refused {
                code: OAuthErrorCode::InvalidScope,
                description: None
            })
        ));
        assert!(matches!(
            read(400, "not json"),
            Err(TokenError::InvalidResponse { .. })
        ));
    }

    #[test]
    fn outages_and_rate_limits_are_told_apart() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let mut huge = HeaderMap::new();
        huge.insert(RETRY_AFTER, HeaderValue::from_static("86400"));

        let limited = read_answer(StatusCode::TOO_MANY_REQUESTS, &headers, b"{}");
        let capped = read_answer(StatusCode::TOO_MANY_REQUESTS, &huge, b"{}");

        assert!(matches!(read(503, ""), Err(TokenError::Unavailable { .. })));
        assert_eq!(
            limited.err(),
            Some(TokenError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            })
        );
        assert_eq!(
            capped.err(),
            Some(TokenError::RateLimited {
                retry_after: Some(MAX_RETRY_AFTER)
            })
        );
    }

    #[test]
    fn basic_credentials_are_form_encoded_and_sensitive() {
        let secret = SecretString::from("s:cr t+".to_owned());

        let value = basic_credentials("my id", &secret).unwrap();

        let encoded = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
        assert_eq!(STANDARD.decode(encoded).unwrap(), b"my+id:s%3Acr+t%2B");
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains(encoded));
    }
}
