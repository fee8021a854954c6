//! SPEC §4 (CSRF): where a request authenticated by the refresh cookie may come from. A browser
//! sends the cookie on every request to the service, whoever wrote the page; `SameSite=Strict`
//! keeps other sites out, `SameSite=None` (a page on another site) does not. So a
//! cookie-authenticated refresh or logout must come from an origin the CORS allow-list names,
//! or from this service's own site — on top of the `Content-Type: application/json` it needs,
//! which no cross-site form can send. Bearer and body tokens are not ambient: never checked.

use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Uri};

use crate::error::Error;

/// The browser's own verdict on where a request comes from; a page cannot set or forge it.
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// Admits a cookie-authenticated request, or refuses it with `csrf_rejected`:
///
/// 1. an `Origin` listed in `allowed` (the CORS allow-list) is admitted;
/// 2. else `Sec-Fetch-Site` decides when the browser sent it: `same-origin`, `same-site` or
///    `none` (the user's own navigation) are admitted, `cross-site` is refused;
/// 3. else (an older browser, or not a browser) an `Origin` is admitted only when its host
///    and port are the ones the request was sent to; no `Origin` at all is admitted (no
///    browser sends a cross-site POST without one).
pub fn admit(headers: &HeaderMap, uri: &Uri, allowed: &[String]) -> Result<(), Error> {
    let origin = text(headers, ORIGIN.as_str());
    if origin.is_some_and(|origin| allowed.iter().any(|listed| listed == origin)) {
        return Ok(());
    }
    match text(headers, SEC_FETCH_SITE) {
        Some("same-origin" | "same-site" | "none") => return Ok(()),
        Some(_) => return Err(Error::CsrfRejected),
        None => {}
    }
    match origin {
        None => Ok(()),
        Some(origin) if is_own(origin, headers, uri) => Ok(()),
        Some(_) => Err(Error::CsrfRejected),
    }
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap_or(""))
}

/// Whether `origin` names the host and port the request was sent to (`Host`, or the
/// authority of an HTTP/2 request). `null` and other opaque origins never do.
fn is_own(origin: &str, headers: &HeaderMap, uri: &Uri) -> bool {
    let Ok(origin) = url::Url::parse(origin) else {
        return false;
    };
    let Some(host) = origin.host_str() else {
        return false;
    };
    let authority = match origin.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let target = text(headers, HOST.as_str()).or_else(|| uri.authority().map(|a| a.as_str()));
    target.is_some_and(|target| target.eq_ignore_ascii_case(&authority))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SPA: &str = "https://app.example.com";

    fn verdict(pairs: &[(&'static str, &'static str)]) -> bool {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        let uri = Uri::from_static("/api/auth/refresh");
        admit(&headers, &uri, &[SPA.to_owned()]).is_ok()
    }

    #[test]
    fn a_listed_origin_is_admitted_even_cross_site() {
        assert!(verdict(&[
            ("origin", SPA),
            ("sec-fetch-site", "cross-site")
        ]));
        assert!(verdict(&[("origin", SPA)]));
    }

    #[test]
    fn the_browser_verdict_decides_for_unlisted_origins() {
        assert!(verdict(&[
            ("origin", "https://www.example.com"),
            ("sec-fetch-site", "same-site")
        ]));
        assert!(verdict(&[("sec-fetch-site", "same-origin")]));
        assert!(!verdict(&[("sec-fetch-site", "cross-site")]));
        assert!(!verdict(&[
            ("origin", "https://auth.example.com"),
            ("host", "auth.example.com"),
            ("sec-fetch-site", "cross-site")
        ]));
    }

    #[test]
    fn without_sec_fetch_site_the_origin_must_be_the_service_itself() {
        assert!(verdict(&[
            ("origin", "https://auth.example.com"),
            ("host", "auth.example.com")
        ]));
        assert!(verdict(&[
            ("origin", "http://localhost:8080"),
            ("host", "localhost:8080")
        ]));
        assert!(!verdict(&[
            ("origin", "http://localhost:8081"),
            ("host", "localhost:8080")
        ]));
        assert!(!verdict(&[
            ("origin", "https://evil.example.net"),
            ("host", "auth.example.com")
        ]));
        assert!(!verdict(&[
            ("origin", "null"),
            ("host", "auth.example.com")
        ]));
    }

    #[test]
    fn a_request_without_browser_marks_is_admitted() {
        assert!(verdict(&[]));
        assert!(verdict(&[("host", "auth.example.com")]));
    }
}
