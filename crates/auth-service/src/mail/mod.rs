//! Outgoing mail (SPEC §4): password reset and email verification links, sent through SMTP,
//! written as `.eml` files, or logged with the tokens redacted. Sending is queued and bounded so
//! neither a slow relay nor a burst of requests can hold up or pile up behind the caller.

mod message;
mod render;
mod transport;

pub use message::Mail;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;
use tokio::sync::Semaphore;

use crate::config::MailConfig;
use render::{render, Links, Rendered};
use transport::{Failure, Transport};

/// Messages talking to the transport at once (also the SMTP connection pool size).
const CONCURRENT_SENDS: usize = 8;
/// Messages accepted by [`Mailer::send`] and not finished yet, sending ones included. Past
/// this, new mail is dropped and counted rather than queued without bound.
const QUEUE_CAPACITY: usize = 256;

/// Sends the service's mail. Cheap to clone: clones share the transport and the queue.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.transport_name())
            .finish_non_exhaustive()
    }
}

struct Inner {
    transport: Transport,
    from: Mailbox,
    links: Links,
    /// Upper bound for one message, connection included.
    timeout: Duration,
    /// One permit per accepted message until it is finished.
    queued: Arc<Semaphore>,
    /// One permit per message talking to the transport.
    sending: Semaphore,
}

impl Mailer {
    /// Chooses the transport: SMTP when `mail.smtp_url` is set, else `.eml` files in
    /// `mail.file_dir`, else the log. Errors only for a configuration that cannot work (bad
    /// SMTP URL, bad `From` address, uncreatable directory), naming the key but never the
    /// URL's password. Call it inside the Tokio runtime.
    pub fn new(mail: &MailConfig, public_url: &str) -> anyhow::Result<Self> {
        let from: Mailbox = mail
            .from
            .parse()
            .map_err(|e| anyhow!("mail.from is not a valid address: {e}"))?;
        let transport = Transport::from_config(mail, CONCURRENT_SENDS as u32)?;
        register_metrics(&transport);
        if matches!(transport, Transport::Log) {
            tracing::warn!(
                "Mail is only logged, not sent: set APP__MAIL__SMTP_URL (or APP__MAIL__FILE_DIR) \
                 to deliver password reset and verification links"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                from,
                links: Links::new(public_url),
                timeout: mail.timeout,
                queued: Arc::new(Semaphore::new(QUEUE_CAPACITY)),
                sending: Semaphore::new(CONCURRENT_SENDS),
            }),
        })
    }

    /// `"smtp"`, `"file"` or `"log"`.
    pub fn transport_name(&self) -> &'static str {
        self.inner.transport.name()
    }

    /// Queues the message and returns at once: sending never blocks or fails the request
    /// that triggered it. A failure is logged (without token or address) and counted in
    /// `auth_mail_failures_total{kind, reason}`; a success in `auth_mail_sent_total{kind}`.
    pub fn send(&self, mail: Mail) {
        let kind = mail.kind();
        let Ok(slot) = Arc::clone(&self.inner.queued).try_acquire_owned() else {
            count_failure(kind, "queue_full");
            tracing::warn!(mail.kind = kind, "Mail dropped: the send queue is full");
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            count_failure(kind, "no_runtime");
            tracing::warn!(
                mail.kind = kind,
                "Mail dropped: no async runtime to send it"
            );
            return;
        };
        let mailer = self.clone();
        runtime.spawn(async move {
            let _slot = slot;
            if let Err(failure) = mailer.attempt(mail).await {
                tracing::warn!(
                    mail.kind = kind,
                    mail.transport = mailer.transport_name(),
                    reason = failure.reason,
                    error = %failure.detail,
                    "Mail not sent"
                );
            }
        });
    }

    /// Sends and waits, for tests and the CLI. Counted like [`Mailer::send`]; the error is
    /// returned, not logged.
    pub async fn deliver(&self, mail: Mail) -> anyhow::Result<()> {
        let kind = mail.kind();
        self.attempt(mail).await.map_err(|failure| {
            anyhow!(
                "the {kind} mail was not sent ({} transport, {}): {}",
                self.transport_name(),
                failure.reason,
                failure.detail
            )
        })
    }

    /// Waits up to `within` for every queued mail to finish (for graceful shutdown). Returns
    /// whether the queue emptied in time.
    pub async fn drain(&self, within: Duration) -> bool {
        let all = u32::try_from(QUEUE_CAPACITY).unwrap_or(u32::MAX);
        matches!(
            tokio::time::timeout(within, self.inner.queued.acquire_many(all)).await,
            Ok(Ok(_))
        )
    }

    /// Builds and sends one mail within the configured timeout, and counts the outcome.
    async fn attempt(&self, mail: Mail) -> Result<(), Failure> {
        let kind = mail.kind();
        let result = match self.inner.sending.acquire().await {
            Ok(_permit) => {
                let sent = async {
                    let (message, rendered) = self.build(&mail)?;
                    self.inner.transport.send(kind, message, &rendered).await
                };
                tokio::time::timeout(self.inner.timeout, sent)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Failure {
                            reason: "timeout",
                            detail: format!("no answer within {:?}", self.inner.timeout),
                        })
                    })
            }
            Err(_closed) => Err(Failure {
                reason: "closed",
                detail: "the mailer is shutting down".into(),
            }),
        };
        match &result {
            Ok(()) => metrics::counter!("auth_mail_sent_total", "kind" => kind).increment(1),
            Err(failure) => count_failure(kind, failure.reason),
        }
        result
    }

    fn build(&self, mail: &Mail) -> Result<(Message, Rendered), Failure> {
        let to: Mailbox = mail.to().parse().map_err(|_| Failure {
            reason: "address",
            detail: "the recipient is not a valid address".into(),
        })?;
        let rendered = render(mail, &self.inner.links);
        let message = Message::builder()
            .from(self.inner.from.clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(None)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text.clone(),
                rendered.html.clone(),
            ))
            .context("building the message")
            .map_err(|e| Failure {
                reason: "build",
                detail: format!("{e:#}"),
            })?;
        Ok((message, rendered))
    }
}

/// Puts every mail series this transport can move at 0, so an alert on
/// `auth_mail_failures_total` has a series before the first failure (issue 16).
fn register_metrics(transport: &Transport) {
    // What any transport can fail with, then the transport's own refusal (the log never
    // refuses).
    let mut reasons = vec!["address", "build", "timeout", "closed"];
    if !matches!(transport, Transport::Log) {
        reasons.push(transport.name());
    }
    for kind in Mail::KINDS {
        metrics::counter!("auth_mail_sent_total", "kind" => kind).increment(0);
        for reason in &reasons {
            metrics::counter!("auth_mail_failures_total", "kind" => kind, "reason" => *reason)
                .increment(0);
        }
    }
}

fn count_failure(kind: &'static str, reason: &'static str) {
    metrics::counter!("auth_mail_failures_total", "kind" => kind, "reason" => reason).increment(1);
}
