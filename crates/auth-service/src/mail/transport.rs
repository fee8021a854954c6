//! Where a built message goes: an SMTP relay, a directory of `.eml` files, or the log.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use url::Url;

use super::message::mask_address;
use super::render::{redact_tokens, Rendered};
use crate::config::MailConfig;

/// The one transport a `Mailer` uses, chosen once from the configuration.
pub(super) enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
    Log,
}

/// Why one message was not sent: a metric label and a description free of tokens and
/// addresses.
#[derive(Debug)]
pub(super) struct Failure {
    pub reason: &'static str,
    pub detail: String,
}

impl Transport {
    /// SMTP when `smtp_url` is set, else files when `file_dir` is set, else the log.
    pub fn from_config(mail: &MailConfig, pool_size: u32) -> anyhow::Result<Self> {
        if let Some(url) = &mail.smtp_url {
            return smtp(url.expose(), mail.timeout, pool_size).map(Self::Smtp);
        }
        if let Some(dir) = &mail.file_dir {
            return file(dir).map(Self::File);
        }
        Ok(Self::Log)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Smtp(_) => "smtp",
            Self::File(_) => "file",
            Self::Log => "log",
        }
    }

    pub async fn send(
        &self,
        kind: &'static str,
        message: Message,
        rendered: &Rendered,
    ) -> Result<(), Failure> {
        match self {
            Self::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|e| Failure {
                reason: "smtp",
                detail: describe_smtp_error(&e),
            }),
            Self::File(file) => file.send(message).await.map(drop).map_err(|e| Failure {
                reason: "file",
                detail: e.to_string(),
            }),
            Self::Log => {
                log(kind, &message, rendered);
                Ok(())
            }
        }
    }
}

/// Logs what would have been sent, with every link token redacted and the recipient masked.
fn log(kind: &'static str, message: &Message, rendered: &Rendered) {
    let to = message
        .envelope()
        .to()
        .first()
        .map(|address| mask_address(address.as_ref()))
        .unwrap_or_default();
    tracing::info!(
        mail.kind = kind,
        mail.to = %to,
        mail.subject = rendered.subject,
        mail.body = %redact_tokens(&rendered.text),
        "Mail logged instead of sent (no SMTP URL or file directory is configured)"
    );
}

/// A server's reply text may quote the recipient's address, so only its code is kept.
fn describe_smtp_error(error: &lettre::transport::smtp::Error) -> String {
    match error.status() {
        Some(code) if error.is_permanent() => format!("the server refused the mail ({code})"),
        Some(code) => format!("the server deferred the mail ({code})"),
        None => error.to_string(),
    }
}

fn smtp(
    url: &str,
    timeout: Duration,
    pool_size: u32,
) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let lettre_url = lettre_url(url)?;
    // The connection pool starts its cleanup task on the current runtime.
    if tokio::runtime::Handle::try_current().is_err() {
        bail!("mail.smtp_url: the SMTP mailer must be created inside the Tokio runtime");
    }
    // lettre's errors here name the scheme, the `tls` value or a URL parse problem, never the
    // URL itself, so the password cannot end up in the message.
    let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&lettre_url)
        .map_err(|e| anyhow!("mail.smtp_url cannot be used: {e}"))?;
    Ok(builder
        .timeout(Some(timeout))
        .pool_config(PoolConfig::new().max_size(pool_size))
        .build())
}

/// Turns our `smtp_url` into the URL `lettre` expects.
///
/// lettre reads `smtp://host` as *plain text* on port 25, `smtp://host?tls=required` or
/// `?tls=opportunistic` as STARTTLS (port 587 by default) and `smtps://host` as implicit TLS
/// (port 465); it rejects any other `tls` value. We make encryption the default instead:
/// `smtp://` means STARTTLS required, and plain text needs an explicit `?tls=none` (a local
/// relay), so credentials are never sent in the clear by accident.
fn lettre_url(raw: &str) -> anyhow::Result<String> {
    // `url::ParseError` describes the problem without quoting the input.
    let mut url = Url::parse(raw).map_err(|e| anyhow!("mail.smtp_url is not a valid URL: {e}"))?;
    if url.host_str().is_none_or(str::is_empty) {
        bail!("mail.smtp_url names no host");
    }
    let tls = url
        .query_pairs()
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.into_owned());
    let lettre_tls = match (url.scheme(), tls.as_deref()) {
        ("smtp", None | Some("required")) => Some("required"),
        ("smtp", Some("opportunistic")) => Some("opportunistic"),
        ("smtp", Some("none")) | ("smtps", None) => None,
        ("smtp", Some(other)) => {
            bail!("mail.smtp_url: tls must be required, opportunistic or none, not {other:?}")
        }
        ("smtps", Some(_)) => {
            bail!("mail.smtp_url: smtps:// always uses TLS; drop the tls parameter")
        }
        (scheme, _) => bail!("mail.smtp_url: the scheme must be smtp or smtps, not {scheme:?}"),
    };
    url.set_query(None);
    if let Some(tls) = lettre_tls {
        url.query_pairs_mut().append_pair("tls", tls);
    }
    Ok(url.into())
}

fn file(dir: &Path) -> anyhow::Result<AsyncFileTransport<Tokio1Executor>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("mail.file_dir {} cannot be created", dir.display()))?;
    Ok(AsyncFileTransport::new(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_smtp_urls_require_starttls() {
        assert_eq!(
            lettre_url("smtp://user:pw@mail.example.com:587").unwrap(),
            "smtp://user:pw@mail.example.com:587?tls=required"
        );
        assert_eq!(
            lettre_url("smtp://mail.example.com?tls=opportunistic").unwrap(),
            "smtp://mail.example.com?tls=opportunistic"
        );
    }

    #[test]
    fn tls_none_and_smtps_pass_through_without_a_tls_parameter() {
        assert_eq!(
            lettre_url("smtp://127.0.0.1:2525?tls=none").unwrap(),
            "smtp://127.0.0.1:2525"
        );
        assert_eq!(
            lettre_url("smtps://u:p@mail.example.com").unwrap(),
            "smtps://u:p@mail.example.com"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_the_password() {
        for bad in [
            "ftp://user:s3cret@mail.example.com",
            "smtp://user:s3cret@mail.example.com?tls=maybe",
            "smtps://user:s3cret@mail.example.com?tls=none",
            "smtp://user:s3cret@[::1",
            "user:s3cret@mail.example.com",
            "smtp:///nohost",
        ] {
            let error = lettre_url(bad).unwrap_err().to_string();
            assert!(error.starts_with("mail.smtp_url"), "{bad}: {error}");
            assert!(!error.contains("s3cret"), "{bad}: {error}");
        }
    }
}
