//! Outgoing mail through each transport: a real SMTP server (aiosmtpd), `.eml` files and the
//! log. No database is involved, so these are plain tests rather than `backend_tests!`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_service::config::{MailConfig, Secret};
use auth_service::mail::{Mail, Mailer};
use metrics_exporter_prometheus::PrometheusBuilder;
use secrecy::SecretString;

use crate::support::process::free_port;
use crate::support::smtp::{wait_for_files, Email, SmtpSink};

const PUBLIC_URL: &str = "http://auth.test:8080/";
const TOKEN: &str = "reset-token_123";
const FROM: &str = "Auth Service <no-reply@auth.test>";

fn config() -> MailConfig {
    MailConfig {
        from: FROM.into(),
        timeout: Duration::from_secs(2),
        ..MailConfig::default()
    }
}

fn smtp_config(url: &str) -> MailConfig {
    MailConfig {
        smtp_url: Some(Secret(SecretString::from(url.to_owned()))),
        ..config()
    }
}

fn reset_mail() -> Mail {
    Mail::PasswordReset {
        to: "alice@example.com".into(),
        username: "alice".into(),
        token: TOKEN.into(),
        expires_in: Duration::from_secs(3600),
    }
}

fn verification_mail() -> Mail {
    Mail::EmailVerification {
        to: "bob@example.com".into(),
        username: "bob".into(),
        token: "verify-token_456".into(),
        expires_in: Duration::from_secs(48 * 3600),
    }
}

#[tokio::test]
async fn delivering_over_smtp_sends_one_message_with_text_html_and_the_link() {
    let Some(sink) =
        SmtpSink::start("delivering_over_smtp_sends_one_message_with_text_html_and_the_link").await
    else {
        return;
    };
    let mailer = Mailer::new(&smtp_config(&sink.url()), PUBLIC_URL).unwrap();

    mailer.deliver(reset_mail()).await.unwrap();

    let messages = sink.messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let email = Email::parse(&messages[0]);
    assert_eq!(email.header("To"), Some("alice@example.com"));
    assert_eq!(email.header("X-RcptTo"), Some("alice@example.com"));
    let from = email.header("From").unwrap();
    assert!(
        from.contains("Auth Service") && from.ends_with("<no-reply@auth.test>"),
        "{from}"
    );
    assert_eq!(email.header("Subject"), Some("Reset your password"));
    assert!(email.header("Message-ID").is_some());
    assert!(email
        .header("Content-Type")
        .unwrap()
        .starts_with("multipart/alternative"));
    let link = "http://auth.test:8080/reset-password?token=reset-token_123";
    let text = email.part("text/plain").expect("a text/plain part");
    let html = email.part("text/html").expect("a text/html part");
    assert!(text.contains(link), "{text}");
    assert!(text.contains("expires in 1 hour"), "{text}");
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    assert!(html.contains("Hello alice,"), "{html}");
}

#[tokio::test]
async fn a_queued_mail_reaches_the_smtp_server() {
    let Some(sink) = SmtpSink::start("a_queued_mail_reaches_the_smtp_server").await else {
        return;
    };
    let mailer = Mailer::new(&smtp_config(&sink.url()), PUBLIC_URL).unwrap();

    mailer.send(verification_mail());

    let messages = sink.messages().await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let email = Email::parse(&messages[0]);
    assert_eq!(email.header("To"), Some("bob@example.com"));
    assert_eq!(email.header("Subject"), Some("Confirm your email address"));
    let text = email.part("text/plain").unwrap();
    assert!(
        text.contains("http://auth.test:8080/verify-email?token=verify-token_456"),
        "{text}"
    );
}

// A plain test on a current-thread runtime: the local metrics recorder sees only this thread.
#[test]
fn an_unreachable_smtp_server_fails_quickly_without_failing_the_caller_and_is_counted() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("smtp://127.0.0.1:{}?tls=none", free_port());

    let (queued_in, delivered, drained, elapsed) = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let mailer = Mailer::new(&smtp_config(&url), PUBLIC_URL).unwrap();
            let started = Instant::now();
            mailer.send(reset_mail());
            let queued_in = started.elapsed();
            let delivered = mailer.deliver(reset_mail()).await;
            let drained = mailer.drain(Duration::from_secs(5)).await;
            (queued_in, delivered, drained, started.elapsed())
        })
    });

    assert!(
        queued_in < Duration::from_millis(100),
        "send took {queued_in:?}"
    );
    let error = format!("{:#}", delivered.unwrap_err());
    assert!(error.contains("smtp"), "{error}");
    assert!(!error.contains(TOKEN), "{error}");
    assert!(!error.contains("alice@example.com"), "{error}");
    assert!(drained);
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    let rendered = metrics.render();
    let failures = rendered
        .lines()
        .find(|line| {
            line.starts_with("auth_mail_failures_total{")
                && line.contains("kind=\"password_reset\"")
                && line.contains("reason=\"smtp\"")
        })
        .unwrap_or_else(|| panic!("no failure counter in:\n{rendered}"));
    assert!(failures.ends_with(" 2"), "{failures}");
    // Exposed at 0 from the start (issue 16), and still 0: nothing was sent.
    let sent: Vec<&str> = rendered
        .lines()
        .filter(|line| line.starts_with("auth_mail_sent_total{"))
        .collect();
    assert_eq!(sent.len(), 2, "{rendered}");
    assert!(sent.iter().all(|line| line.ends_with(" 0")), "{rendered}");
}

#[tokio::test]
async fn a_silent_smtp_server_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "smtp://127.0.0.1:{}?tls=none",
        listener.local_addr().unwrap().port()
    );
    // Accepts connections and never greets, like a hung relay.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = MailConfig {
        timeout: Duration::from_secs(1),
        ..smtp_config(&url)
    };
    let mailer = Mailer::new(&config, PUBLIC_URL).unwrap();

    let started = Instant::now();
    let delivered = mailer.deliver(reset_mail()).await;
    let elapsed = started.elapsed();

    assert!(delivered.is_err());
    assert!(elapsed < Duration::from_millis(2500), "took {elapsed:?}");
    silent.abort();
}

#[tokio::test]
async fn the_file_transport_writes_an_eml_file_into_a_new_directory() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let config = MailConfig {
        file_dir: Some(outbox.clone()),
        ..config()
    };
    let mailer = Mailer::new(&config, PUBLIC_URL).unwrap();

    mailer.send(reset_mail());

    assert_eq!(mailer.transport_name(), "file");
    let files = wait_for_files(&outbox, Some("eml")).await;
    assert_eq!(files.len(), 1);
    let email = Email::parse(&files[0]);
    assert_eq!(email.header("To"), Some("alice@example.com"));
    assert_eq!(email.header("Subject"), Some("Reset your password"));
    let text = email.part("text/plain").unwrap();
    assert!(
        text.contains("/reset-password?token=reset-token_123"),
        "{text}"
    );
}

/// Collects what a test's tracing subscriber writes.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_log_transport_accepts_mail_and_logs_it_without_token_or_address() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime has one thread, so the subscriber sees everything the mailer logs.
    let _guard = tracing::subscriber::set_default(subscriber);
    let mailer = Mailer::new(&config(), PUBLIC_URL).unwrap();

    let delivered = mailer.deliver(reset_mail()).await;

    assert_eq!(mailer.transport_name(), "log");
    delivered.unwrap();
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("Mail is only logged"), "{logged}");
    assert!(
        logged.contains("/reset-password?token=[REDACTED]"),
        "{logged}"
    );
    assert!(logged.contains("Reset your password"), "{logged}");
    assert!(!logged.contains(TOKEN), "{logged}");
    assert!(!logged.contains("alice@example.com"), "{logged}");
}

#[tokio::test]
async fn the_smtp_url_wins_over_the_file_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = MailConfig {
        file_dir: Some(dir.path().to_owned()),
        ..smtp_config("smtp://127.0.0.1:2525?tls=none")
    };

    let mailer = Mailer::new(&config, PUBLIC_URL).unwrap();

    assert_eq!(mailer.transport_name(), "smtp");
}

#[tokio::test]
async fn a_bad_smtp_url_or_from_address_is_refused_without_showing_the_password() {
    let bad_urls = [
        "smtp://mailer:s3cret@[::1",
        "ftp://mailer:s3cret@mail.example.com",
        "smtp://mailer:s3cret@mail.example.com?tls=sometimes",
    ];

    let url_errors: Vec<String> = bad_urls
        .iter()
        .map(|url| {
            format!(
                "{:#}",
                Mailer::new(&smtp_config(url), PUBLIC_URL).err().unwrap()
            )
        })
        .collect();
    let from_error = Mailer::new(
        &MailConfig {
            from: "not an address".into(),
            ..smtp_config("smtp://mailer:s3cret@mail.example.com")
        },
        PUBLIC_URL,
    )
    .err()
    .unwrap();

    for error in &url_errors {
        assert!(error.contains("mail.smtp_url"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }
    let from_error = format!("{from_error:#}");
    assert!(from_error.contains("mail.from"), "{from_error}");
    assert!(!from_error.contains("s3cret"), "{from_error}");
}
