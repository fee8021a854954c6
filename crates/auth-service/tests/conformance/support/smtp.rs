//! A real SMTP server for mail tests: Python's `aiosmtpd`, storing what it receives in a
//! Maildir, plus a small reader for the raw messages. Under `CI` a missing `aiosmtpd` fails the
//! test with what to install; elsewhere the test prints SKIPPED and passes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::process::free_port;

/// How long tests wait for a message to show up.
const ARRIVAL_DEADLINE: Duration = Duration::from_secs(10);

/// An `aiosmtpd` process on a free port; killed when dropped.
pub struct SmtpSink {
    child: Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the server and waits until it accepts connections, or returns `None` (with a
    /// SKIPPED note) when `aiosmtpd` is missing outside CI.
    pub async fn start(test: &str) -> Option<Self> {
        if !aiosmtpd_installed() {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "CI is set but Python's aiosmtpd is missing: install it with \
                     `python3 -m pip install aiosmtpd` (.ci/run does)"
                );
            }
            eprintln!(
                "SKIPPED mail::{test}: aiosmtpd is not installed (python3 -m pip install aiosmtpd)"
            );
            return None;
        }
        // Another process may take the free port before aiosmtpd binds it; then try another.
        for _ in 0..3 {
            if let Some(sink) = Self::launch().await {
                return Some(sink);
            }
        }
        panic!("aiosmtpd did not start; run `python3 -m aiosmtpd -n -l 127.0.0.1:2525` to see why");
    }

    async fn launch() -> Option<Self> {
        let maildir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            // Python's Maildir makes its `cur`, `new` and `tmp` only when the path is new.
            .arg(maildir.path().join("maildir"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run python3 -m aiosmtpd");
        let mut sink = Self {
            child,
            port,
            maildir,
        };
        let deadline = Instant::now() + ARRIVAL_DEADLINE;
        while Instant::now() < deadline {
            if sink.child.try_wait().ok().flatten().is_some() {
                return None;
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(sink);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// An `smtp_url` for this server, without TLS.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// The raw messages received so far, waiting up to a deadline for the first one.
    pub async fn messages(&self) -> Vec<String> {
        wait_for_files(&self.maildir.path().join("maildir").join("new"), None).await
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aiosmtpd_installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

/// The contents of the files in `dir` (those ending in `ext`, when given), waiting up to a
/// deadline for the first one to appear.
pub async fn wait_for_files(dir: &Path, ext: Option<&str>) -> Vec<String> {
    let deadline = Instant::now() + ARRIVAL_DEADLINE;
    loop {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                    .filter(|path| ext.is_none_or(|ext| path.extension() == Some(ext.as_ref())))
                    .collect()
            })
            .unwrap_or_default();
        if !paths.is_empty() || Instant::now() >= deadline {
            paths.sort();
            return paths
                .iter()
                .map(|path| std::fs::read_to_string(path).expect("read a received message"))
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A received message (or one MIME part of it): headers and decoded body.
#[derive(Debug)]
pub struct Email {
    headers: Vec<(String, String)>,
    body: String,
}

impl Email {
    pub fn parse(raw: &str) -> Self {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            match headers.last_mut() {
                Some((_, value)) if line.starts_with([' ', '\t']) => {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                _ => {
                    if let Some((name, value)) = line.split_once(':') {
                        headers.push((name.trim().to_owned(), value.trim().to_owned()));
                    }
                }
            }
        }
        Self {
            headers,
            body: body.to_owned(),
        }
    }

    /// The first header called `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body with its transfer encoding undone.
    pub fn text(&self) -> String {
        let encoding = self
            .header("Content-Transfer-Encoding")
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        match encoding.as_str() {
            "quoted-printable" => decode_quoted_printable(&self.body),
            "base64" => {
                let compact: String = self.body.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .expect("valid base64 body");
                String::from_utf8(bytes).expect("UTF-8 body")
            }
            _ => self.body.clone(),
        }
    }

    /// The parts of a multipart message.
    pub fn parts(&self) -> Vec<Email> {
        let content_type = self.header("Content-Type").unwrap_or_default();
        let Some((_, boundary)) = content_type.split_once("boundary=") else {
            return Vec::new();
        };
        let boundary = boundary
            .split(';')
            .next()
            .unwrap_or_default()
            .trim_matches('"');
        let delimiter = format!("--{boundary}");
        self.body
            .split(&delimiter)
            .skip(1)
            .take_while(|part| !part.starts_with("--"))
            .map(|part| Email::parse(part.trim_start_matches('\n')))
            .collect()
    }

    /// The decoded body of the first part whose `Content-Type` starts with `content_type`.
    pub fn part(&self, content_type: &str) -> Option<String> {
        self.parts()
            .into_iter()
            .find(|part| {
                part.header("Content-Type")
                    .is_some_and(|value| value.starts_with(content_type))
            })
            .map(|part| part.text())
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8 body")
}
