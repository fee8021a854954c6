//! Token surgery: read and rewrite the parts of a genuine token to forge bad ones.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

fn part(token: &str, index: usize) -> Value {
    let segment = token.split('.').nth(index).expect("a JWT part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64url")).expect("JSON")
}

pub fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

pub fn header(token: &str) -> Value {
    part(token, 0)
}

pub fn payload(token: &str) -> Value {
    part(token, 1)
}

pub fn kid_of(token: &str) -> String {
    header(token)["kid"].as_str().expect("kid").to_owned()
}

/// `token` with its header changed by `change`, the payload and signature kept.
pub fn with_header(token: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut header = header(token);
    change(&mut header);
    let (_, rest) = token.split_once('.').expect("a JWT");
    format!("{}.{rest}", encode(&header))
}

/// `token` with its payload changed by `change`, the header and signature kept.
pub fn with_payload(token: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut payload = payload(token);
    change(&mut payload);
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", parts[0], encode(&payload), parts[2])
}
