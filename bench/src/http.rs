//! A lean HTTP/1.1 client for the load: one keep-alive connection per worker, requests built
//! once and cloned, no pool, no cookie jar, no redirects. The client shares the cores with the
//! service it measures, so every microsecond it spends per request is one the service loses.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A request ready to send: clone it, send the clone.
pub type Prepared = Request<Full<Bytes>>;

/// How long one setup request may take; load requests have no timeout (closed loop).
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the service listens: a plain `http://host:port` base URL, resolved once.
#[derive(Debug, Clone)]
pub struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    base: String,
}

impl Target {
    pub async fn resolve(base_url: &str) -> anyhow::Result<Self> {
        let base = base_url.trim_end_matches('/').to_owned();
        let uri: Uri = base.parse().with_context(|| format!("not a URL: {base}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only plain http:// services can be benchmarked, not {base}");
        }
        let authority = uri
            .authority()
            .with_context(|| format!("no host in {base}"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((authority.host(), port))
            .await
            .with_context(|| format!("cannot resolve {}", authority.host()))?
            .next()
            .with_context(|| format!("{} has no address", authority.host()))?;
        Ok(Self {
            addr,
            host: HeaderValue::from_str(authority.as_str())?,
            base,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request to `path` with `Host` set; `body` non-empty means a JSON body.
    pub fn prepare(
        &self,
        method: Method,
        path: &str,
        headers: &[(http::HeaderName, &str)],
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Prepared> {
        self.prepare_as(method, path, headers, body, "application/json")
    }

    /// [`Target::prepare`] with a body of `content_type` (e.g. a form for `/oauth/token`).
    pub fn prepare_as(
        &self,
        method: Method,
        path: &str,
        headers: &[(http::HeaderName, &str)],
        body: impl Into<Bytes>,
        content_type: &'static str,
    ) -> anyhow::Result<Prepared> {
        let body = body.into();
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if !body.is_empty() {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        for (name, value) in headers {
            builder = builder.header(name, *value);
        }
        builder
            .body(Full::new(body))
            .with_context(|| format!("cannot build a request to {path}"))
    }

    /// One request on a connection of its own, with a timeout: for setup and probes.
    pub async fn send_once(&self, request: Prepared) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut connection = Connection::new(self.clone());
        tokio::time::timeout(SETUP_TIMEOUT, connection.send(request))
            .await
            .context("no answer within 30 s")?
    }
}

/// One keep-alive connection, opened on first use and again after it breaks.
pub struct Connection {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            sender: None,
        }
    }

    /// Sends `request` and reads the whole answer, so the connection can carry the next one.
    pub async fn send(&mut self, request: Prepared) -> anyhow::Result<(StatusCode, Bytes)> {
        let result = self.exchange(request).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn exchange(&mut self, request: Prepared) -> anyhow::Result<(StatusCode, Bytes)> {
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => self.sender.insert(connect(self.target.addr).await?),
        };
        sender.ready().await.context("connection closed")?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading the body")?
            .to_bytes();
        Ok((status, body))
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection task ends when the sender is dropped or the server closes it.
    tokio::spawn(connection);
    Ok(sender)
}
