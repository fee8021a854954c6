//! Requests with arbitrary paths, headers and bodies through the real router.
//!
//! The router is built once, over a SQLite database in a temporary folder, with a bootstrap
//! admin and a user `alice` signed in; requests go through `tower::ServiceExt::oneshot`, so
//! everything from routing and extraction (JSON parsing, path and query decoding) to the
//! services and the store runs. Properties:
//! - nothing panics (a handler panic is turned into a 500 by the router and caught below);
//! - every answer is below 500;
//! - a body that is not one JSON document is never accepted (no 2xx) by a route that reads one.
//!
//! Input layout (see `fuzz/README.md`): `[route][flags][path bytes][0xFF][body]`.
#![no_main]

mod request_json_fixture;

use std::sync::{Mutex, OnceLock};

use axum::body::Body;
use axum::http::{header, Method, Request};
use libfuzzer_sys::fuzz_target;
use request_json_fixture::{Fixture, Who};

/// Method, path template (`{}` is filled from the input) and whether the route reads a JSON body.
const ROUTES: &[(&str, &str, bool)] = &[
    ("POST", "/api/auth/signup", true),
    ("POST", "/api/auth/register", true),
    ("POST", "/api/auth/login", true),
    ("POST", "/api/auth/refresh", true),
    ("POST", "/api/auth/logout", true),
    ("PATCH", "/api/auth/me", true),
    ("POST", "/api/auth/introspect", true),
    ("POST", "/api/auth/password/forgot", true),
    ("POST", "/api/auth/password/reset", true),
    ("POST", "/api/auth/password/change", true),
    ("POST", "/api/auth/email/verify", true),
    ("POST", "/api/auth/email/verify/resend", false),
    ("POST", "/api/users", true),
    ("PATCH", "/api/users/{}", true),
    ("GET", "/api/users/{}", false),
    ("GET", "/api/users/id/{}", false),
    ("GET", "/api/users/email/{}", false),
    ("DELETE", "/api/users/{}", false),
    ("GET", "/api/users", false),
    ("POST", "/api/roles", true),
    ("DELETE", "/api/roles/{}", false),
    ("POST", "/api/territories", true),
    ("PATCH", "/api/territories/{}", true),
    ("PUT", "/api/users/{}/territories/{}", false),
    ("DELETE", "/api/users/{}/territories/{}", false),
    ("PUT", "/api/users/{}/territories/{}/roles", true),
    ("GET", "/api/audit", false),
    ("DELETE", "/api/auth/sessions/{}", false),
    ("DELETE", "/api/auth/sessions/all", false),
    ("GET", "/api/auth/session", false),
    ("GET", "/api/auth/sessions", false),
    ("POST", "/api/auth/activity", false),
    ("GET", "/api/auth/me", false),
    ("GET", "/health", false),
    ("GET", "/ready", false),
    ("GET", "/.well-known/jwks.json", false),
    ("GET", "/api/docs/{}", false),
    ("GET", "/api/auth/config", false),
    ("GET", "/api/roles", false),
    ("GET", "/api/territories", false),
];

const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("application/merge-patch+json"),
    Some("APPLICATION/JSON"),
    None,
    Some("text/plain"),
    Some("application/x-www-form-urlencoded"),
    Some("application/json; charset=\u{7f}"),
];

/// Bytes kept as they are in a raw path (everything else is percent-encoded).
fn path_safe(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~/?&=%+!$'()*,;:@".contains(&byte)
}

/// Bytes kept as they are in a path segment.
fn segment_safe(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)
}

fn encode(bytes: &[u8], safe: fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if safe(byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A path segment: a few bytes name real things, the rest is percent-encoded.
fn segment(fixture: &Fixture, bytes: &[u8]) -> String {
    match bytes {
        [] => fixture.alice.id.to_string(),
        [1] => fixture.admin.id.to_string(),
        [2] => encode(fixture.alice.email.as_bytes(), segment_safe),
        [3] => "dk".to_owned(),
        [4] => fixture.alice.session.to_string(),
        bytes => encode(bytes, segment_safe),
    }
}

/// The body, with `$ALICE_REFRESH`, `$ALICE_ACCESS`, `$ALICE_ID` and `$ADMIN_ID` replaced.
fn substitute(fixture: &Fixture, body: &[u8]) -> Vec<u8> {
    if !body.contains(&b'$') {
        return body.to_vec();
    }
    let mut out = body.to_vec();
    for (name, value) in [
        ("$ALICE_REFRESH", fixture.alice.refresh.as_str()),
        ("$ALICE_ACCESS", fixture.alice.access.as_str()),
        ("$ALICE_ID", &fixture.alice.id.to_string()),
        ("$ADMIN_ID", &fixture.admin.id.to_string()),
    ] {
        out = replace(&out, name.as_bytes(), value.as_bytes());
    }
    out
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// `FUZZ_TRACE=1`: print every request and its answer (for reproducing a crash).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

fn fixture() -> &'static Mutex<Fixture> {
    static FIXTURE: OnceLock<Mutex<Fixture>> = OnceLock::new();
    FIXTURE.get_or_init(|| Mutex::new(Fixture::start()))
}

fuzz_target!(|data: &[u8]| {
    let [route, flags, rest @ ..] = data else {
        return;
    };
    let mut fixture = fixture()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (method, template, reads_json) = ROUTES[usize::from(*route) % ROUTES.len()];
    let (path_bytes, body) = match rest.iter().position(|&b| b == 0xFF) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let raw_path = flags & 0b0010_0000 != 0;
    let uri = if raw_path {
        format!("/{}", encode(path_bytes, path_safe))
    } else {
        let mut parts = path_bytes.split(|&b| b == 0xFE);
        let mut uri = String::new();
        let mut pieces = template.split("{}").peekable();
        while let Some(piece) = pieces.next() {
            uri.push_str(piece);
            if pieces.peek().is_some() {
                uri.push_str(&segment(&fixture, parts.next().unwrap_or_default()));
            }
        }
        if let Some(query) = parts.next().filter(|query| !query.is_empty()) {
            uri.push('?');
            uri.push_str(&encode(query, |b| segment_safe(b) || b"=&%+".contains(&b)));
        }
        uri
    };
    let who = match flags & 0b11 {
        0 => Who::Nobody,
        1 => Who::Admin,
        2 => Who::Alice,
        _ => Who::Forged,
    };
    let content_type = CONTENT_TYPES[usize::from((flags >> 2) & 0b111) % CONTENT_TYPES.len()];
    let refresh_cookie = flags & 0b0100_0000 != 0;
    let body = substitute(&fixture, body);

    let mut request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("a known method"))
        .uri(&uri);
    if let Some(token) = fixture.bearer(who) {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    if refresh_cookie {
        request = request.header(
            header::COOKIE,
            format!("refresh_token={}", fixture.alice.refresh),
        );
    }
    let Ok(request) = request.body(Body::from(body.clone())) else {
        return;
    };
    let (status, answer) = fixture.send(request);
    if trace() {
        eprintln!(
            "{method} {uri} → {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    assert!(
        status.as_u16() < 500,
        "{method} {uri} answered {status}: {}",
        String::from_utf8_lossy(&answer)
    );
    let json_declared = content_type.is_some_and(|mime| {
        let mime = mime
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
    });
    let body_ignored = template == "/api/auth/logout" && !matches!(who, Who::Nobody | Who::Forged);
    let blank = body.iter().all(u8::is_ascii_whitespace);
    if reads_json && json_declared && !raw_path && !body_ignored && !blank {
        let well_formed = serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
        assert!(
            well_formed || !status.is_success(),
            "{method} {uri} accepted a body that is not JSON ({status}): {:?}",
            String::from_utf8_lossy(&body)
        );
    }
    let spent = matches!(template, "/api/auth/refresh" | "/api/auth/logout");
    fixture.recover(method != "GET", spent);
});
