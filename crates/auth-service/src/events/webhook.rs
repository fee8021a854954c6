//! Standard Webhooks: each event POSTed to an operator's endpoint as its envelope JSON, signed
//! with HMAC-SHA256 over `{id}.{timestamp}.{body}` (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64>`). A 2xx delivers it; a 410 disables the endpoint until the
//! service restarts; anything else (or no answer in time) is retried.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use ring::hmac;

use crate::config::WebhookConfig;
use crate::store::PendingEvent;

/// What an endpoint made of one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A 2xx answer.
    Delivered,
    /// Another answer, or none in time: try again later; says why (never the URL).
    Retry(String),
    /// 410 Gone: the endpoint wants no more events.
    Gone,
}

/// One configured endpoint and its client.
pub struct WebhookSink {
    config: WebhookConfig,
    name: String,
    key: hmac::Key,
    client: reqwest::Client,
    enabled: AtomicBool,
}

impl WebhookSink {
    /// The endpoints of `events.webhooks` (validated at start), each answering within
    /// `timeout` per call.
    pub fn from_config(webhooks: &[WebhookConfig], timeout: Duration) -> anyhow::Result<Vec<Self>> {
        // Redirects are not followed: the operator names the endpoint, a redirect is retried.
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("auth-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| anyhow::anyhow!("cannot build the webhook client: {error}"))?;
        webhooks
            .iter()
            .map(|config| {
                let name = config.name();
                let key = config
                    .key()
                    .ok_or_else(|| anyhow::anyhow!("webhook {name}: unusable secret"))?;
                Ok(Self {
                    config: config.clone(),
                    name,
                    key: hmac::Key::new(hmac::HMAC_SHA256, &key),
                    client: client.clone(),
                    enabled: AtomicBool::new(true),
                })
            })
            .collect()
    }

    /// The endpoint's name: its delivery state's key and its metrics' `endpoint` label.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether events of `event_type` go to this endpoint.
    pub fn wants(&self, event_type: &str) -> bool {
        self.config.wants(event_type)
    }

    /// False once the endpoint answered 410, until the service restarts.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    pub fn disable(&self) {
        self.enabled.store(false, Ordering::SeqCst);
    }

    /// POSTs one event, signed at `now`.
    pub async fn deliver(&self, event: &PendingEvent, now: DateTime<Utc>) -> Delivery {
        let id = event.id.to_string();
        let timestamp = now.timestamp();
        let signature = sign(&self.key, &id, timestamp, &event.payload);
        let sent = self
            .client
            .post(self.config.url.expose())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(event.payload.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => Delivery::Delivered,
            Ok(response) if response.status() == http::StatusCode::GONE => Delivery::Gone,
            Ok(response) => Delivery::Retry(format!("webhook: answered {}", response.status())),
            Err(error) if error.is_timeout() => {
                Delivery::Retry("webhook: no answer in time".into())
            }
            // The URL may carry a token: errors are shown without it.
            Err(error) => Delivery::Retry(format!("webhook: {}", error.without_url())),
        }
    }
}

/// `v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn sign(key: &hmac::Key, id: &str, timestamp: i64, body: &str) -> String {
    let signed = format!("{id}.{timestamp}.{body}");
    let tag = hmac::sign(key, signed.as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn the_signature_matches_the_standard_webhooks_example() {
        let secret = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);

        let signature = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );

        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
