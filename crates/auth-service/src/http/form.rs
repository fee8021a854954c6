//! The body of the OAuth endpoints (`/oauth/token`, `/oauth/introspect`, `/oauth/revoke`):
//! `application/x-www-form-urlencoded` only, decoded strictly, every refusal an RFC 6749 §5.2
//! `invalid_request`.

use std::collections::HashMap;

use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;

use crate::error::{Error, OAuthError};

pub fn invalid_request(detail: &str) -> Error {
    Error::OAuth(OAuthError::InvalidRequest(detail.to_owned()))
}

/// The request's form, after checking that it says it is one (any other content type is
/// `invalid_request`, as RFC 6749 §5.2 answers a malformed request, never 415).
pub fn read_form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, Error> {
    let form_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    form(body)
}

/// A form body, strictly: `name=value` pairs joined by `&`, percent-encoded UTF-8 with `+`
/// for space. An empty value counts as absent (RFC 6749 §3.2); a name given twice is refused.
fn form(body: &[u8]) -> Result<HashMap<String, String>, Error> {
    let text = std::str::from_utf8(body).map_err(|_| invalid_request("the form is not UTF-8"))?;
    let mut form = HashMap::new();
    for pair in text.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let malformed = || invalid_request("the form is not validly percent-encoded");
        let name = percent_decode(name).ok_or_else(malformed)?;
        let value = percent_decode(value).ok_or_else(malformed)?;
        if form.contains_key(&name) {
            return Err(invalid_request(&format!("{name} is given more than once")));
        }
        if !value.is_empty() {
            form.insert(name, value);
        } else {
            // Remember the name, so that a second copy is still refused.
            form.insert(name, String::new());
        }
    }
    form.retain(|_, value| !value.is_empty());
    Ok(form)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; the bytes must
/// be UTF-8. `None` for a broken escape (which a lenient decoder would keep as text) or bytes
/// that are not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let hex_at = |at: usize| bytes.get(at).is_some_and(u8::is_ascii_hexdigit);
    let broken =
        (0..bytes.len()).any(|at| bytes[at] == b'%' && !(hex_at(at + 1) && hex_at(at + 2)));
    if broken {
        return None;
    }
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_form_is_decoded_strictly() {
        let form = form(b"grant_type=client_credentials&scope=a+b%3Ac&empty=&x").unwrap();

        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["scope"], "a b:c");
        assert!(!form.contains_key("empty") && !form.contains_key("x"));
        for bad in [
            &b"a=%zz"[..],
            b"a=%4",
            b"a=%ff",
            b"a=%+1",
            b"a=1&a=2",
            b"a=&a=2",
            b"\xff=1",
        ] {
            assert!(super::form(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_a_form_content_type_is_read() {
        let mut headers = HeaderMap::new();
        assert!(read_form(&headers, b"a=1").is_err());

        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(read_form(&headers, b"a=1").is_err());

        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
        );
        assert_eq!(read_form(&headers, b"a=1").unwrap()["a"], "1");
    }
}
