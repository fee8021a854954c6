//! Connections that cannot pin the server (issue 14 L2): a request head that never ends, a
//! silent or idle connection, on HTTP/1 and HTTP/2 (prior knowledge), and a cap on how many
//! connections are served at once.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::backend_tests;
use crate::support::{Backend, TestApp};

/// Far above every bound configured here: a connection still open then was never closed.
const GENEROUS: Duration = Duration::from_secs(15);

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 0x4, 0, 0, 0, 0, 0];

/// An HTTP/2 HEADERS frame on stream 1 for `GET http://x/health`; `complete` sets END_HEADERS
/// (and END_STREAM), otherwise the server waits for a CONTINUATION that never comes.
fn h2_get_health(complete: bool) -> Vec<u8> {
    // HPACK: :method GET (static 2), :scheme http (static 6), :path and :authority as
    // literals with indexed names (static 4 and 1), without indexing.
    let mut block = vec![0x82, 0x86, 0x04, 7];
    block.extend_from_slice(b"/health");
    block.extend_from_slice(&[0x01, 1, b'x']);
    let flags = if complete { 0x4 | 0x1 } else { 0x1 };
    let length = u32::try_from(block.len()).unwrap().to_be_bytes();
    let mut frame = vec![length[1], length[2], length[3], 0x1, flags, 0, 0, 0, 1];
    frame.extend_from_slice(&block);
    frame
}

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.base_url.trim_start_matches("http://");
    TcpStream::connect(address).await.unwrap()
}

/// Whether the server closes `stream` within `within` (EOF or reset), reading what it sends.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut sink = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut sink))
        .await
        .is_ok()
}

/// Reads HTTP/2 frames until a HEADERS frame (type 1) arrives on stream 1.
async fn h2_response_headers(stream: &mut TcpStream) {
    loop {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).await.unwrap();
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).await.unwrap();
        let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        if head[3] == 0x1 && stream_id == 1 {
            return;
        }
    }
}

/// Reads one whole HTTP/1.1 answer to `GET /health` (its body is short and has a length).
async fn h1_health(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !answer.ends_with(b"{\"status\":\"ok\"}") {
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "closed before answering");
        answer.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

async fn a_request_head_that_never_ends_is_closed_within_the_header_timeout(backend: Backend) {
    let app = backend
        .app_with(|config| {
            config.server.header_read_timeout = Duration::from_secs(1);
            config.server.idle_timeout = Duration::from_secs(600);
        })
        .await;
    let mut partial_h1 = connect(&app).await;
    let mut silent = connect(&app).await;
    let mut partial_h2 = connect(&app).await;
    let mut preface_only = connect(&app).await;

    partial_h1
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: 1")
        .await
        .unwrap();
    partial_h2.write_all(H2_PREFACE).await.unwrap();
    partial_h2.write_all(H2_SETTINGS).await.unwrap();
    partial_h2.write_all(&h2_get_health(false)).await.unwrap();
    preface_only.write_all(&H2_PREFACE[..10]).await.unwrap();

    assert!(
        closed_within(&mut partial_h1, GENEROUS).await,
        "HTTP/1 head"
    );
    assert!(
        closed_within(&mut silent, GENEROUS).await,
        "silent connection"
    );
    assert!(
        closed_within(&mut partial_h2, GENEROUS).await,
        "HTTP/2 header block"
    );
    assert!(
        closed_within(&mut preface_only, GENEROUS).await,
        "half a preface"
    );
}

async fn an_idle_connection_is_closed_after_the_idle_timeout(backend: Backend) {
    let app = backend
        .app_with(|config| {
            config.server.header_read_timeout = Duration::from_secs(600);
            config.server.idle_timeout = Duration::from_secs(1);
        })
        .await;
    let mut h1 = connect(&app).await;
    let mut h2 = connect(&app).await;

    let answer = h1_health(&mut h1).await;
    h2.write_all(H2_PREFACE).await.unwrap();
    h2.write_all(H2_SETTINGS).await.unwrap();
    h2.write_all(&h2_get_health(true)).await.unwrap();
    h2_response_headers(&mut h2).await;

    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        closed_within(&mut h1, GENEROUS).await,
        "idle HTTP/1 keep-alive"
    );
    assert!(closed_within(&mut h2, GENEROUS).await, "idle HTTP/2");
}

async fn connections_beyond_the_cap_wait_until_one_closes(backend: Backend) {
    let mut app = backend
        .app_with(|config| {
            config.server.max_connections = 2;
            config.server.header_read_timeout = Duration::from_secs(600);
            config.server.idle_timeout = Duration::from_secs(600);
        })
        .await;
    // The harness's own pooled connection would count against the cap: let it go.
    app.http = reqwest::Client::new();
    let mut first = connect(&app).await;
    let mut second = connect(&app).await;
    h1_health(&mut first).await;
    h1_health(&mut second).await;

    let mut third = connect(&app).await;
    let waiting = tokio::time::timeout(Duration::from_millis(500), h1_health(&mut third)).await;
    drop(first);
    let served = tokio::time::timeout(GENEROUS, h1_health(&mut third)).await;

    assert!(
        waiting.is_err(),
        "a third connection was served past a cap of 2"
    );
    assert!(
        served.is_ok(),
        "the third connection was not served after one closed"
    );
    assert!(h1_health(&mut second).await.starts_with("HTTP/1.1 200"));
}

async fn the_grpc_port_has_the_same_bounds(backend: Backend) {
    let app = backend
        .app_with(|config| {
            config.server.header_read_timeout = Duration::from_secs(1);
            config.server.idle_timeout = Duration::from_secs(600);
            config.server.max_connections = 3;
        })
        .await;
    let address = app.grpc_url.trim_start_matches("http://").to_owned();
    let mut silent = TcpStream::connect(&address).await.unwrap();
    let mut preface_only = TcpStream::connect(&address).await.unwrap();
    preface_only.write_all(&H2_PREFACE[..10]).await.unwrap();

    assert!(
        closed_within(&mut silent, GENEROUS).await,
        "silent gRPC connection"
    );
    assert!(
        closed_within(&mut preface_only, GENEROUS).await,
        "half a preface on the gRPC port"
    );
    // Still serving, through the same accept loop.
    let health = tonic_health::pb::health_client::HealthClient::new(app.grpc_channel().await)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await;
    assert!(health.is_ok(), "{health:?}");
}

backend_tests! {
    the_grpc_port_has_the_same_bounds,
    a_request_head_that_never_ends_is_closed_within_the_header_timeout,
    an_idle_connection_is_closed_after_the_idle_timeout,
    connections_beyond_the_cap_wait_until_one_closes,
}
