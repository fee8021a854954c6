//! What both transports learn about the caller from HTTP headers or gRPC metadata (the same
//! names): the client address — the socket peer, unless the peer is a trusted proxy, in which
//! case the nearest untrusted address of `X-Forwarded-For` (or `X-Real-IP`), SPEC §3/§4 — the
//! user agent, the request id and the bearer token.

use std::net::{IpAddr, SocketAddr};

use http::header::{AUTHORIZATION, USER_AGENT};
use http::HeaderMap;
use ipnet::IpNet;

use crate::services::RequestContext;

/// The longest user agent kept with a session or an audit entry.
const USER_AGENT_CHARS: usize = 512;

/// The longest client-sent request id accepted.
const REQUEST_ID_BYTES: usize = 128;

/// Who is asking: the client address behind `proxies`, the user agent and the request id.
pub fn request_context(
    proxies: &TrustedProxies,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> RequestContext {
    RequestContext {
        ip: proxies.client_ip(peer, headers),
        user_agent: headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(USER_AGENT_CHARS).collect()),
        request_id: request_id(headers),
    }
}

/// The client-sent `x-request-id`, when acceptable.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .filter(|value| acceptable_request_id(value.as_bytes()))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A client-sent `x-request-id` is kept only when short and made of characters that cannot
/// forge log lines; otherwise a fresh id replaces it.
pub fn acceptable_request_id(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= REQUEST_ID_BYTES
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The bearer token of the `Authorization` header, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// Configured proxy ranges (validated at config load).
#[derive(Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn parse(entries: &[String]) -> Self {
        Self(
            entries
                .iter()
                .filter_map(|entry| {
                    entry
                        .parse::<IpNet>()
                        .ok()
                        .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
                })
                .collect(),
        )
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Headers are believed only when the peer is trusted; a spoofed header from anyone else
    /// is ignored, so it cannot dodge a per-IP limit.
    pub fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer.map(|addr| addr.ip())?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        // Every header line, in order: a proxy may append its own line rather than extend the
        // client's, and only the hops it added can be believed.
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|hop| hop.trim().parse().ok())
            .collect();
        if !hops.is_empty() {
            // Walk from the nearest hop outwards; the first address we do not trust is the client.
            if let Some(client) = hops.iter().rev().find(|ip| !self.trusts(**ip)) {
                return Some(*client);
            }
            if let Some(first) = hops.first() {
                return Some(*first);
            }
        }
        headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .or(Some(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn an_untrusted_peer_cannot_spoof_its_address() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into()]);
        let peer = Some("203.0.113.9:4000".parse().unwrap());

        let ip = proxies.client_ip(peer, &headers(&[("x-forwarded-for", "1.2.3.4")]));

        assert_eq!(ip, Some("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn a_trusted_proxy_is_skipped_to_the_nearest_untrusted_hop() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into()]);
        let peer = Some("10.0.0.2:4000".parse().unwrap());

        let ip = proxies.client_ip(
            peer,
            &headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.3")]),
        );

        assert_eq!(ip, Some("198.51.100.7".parse().unwrap()));
    }

    #[test]
    fn x_real_ip_is_used_when_there_is_no_forwarded_for() {
        let proxies = TrustedProxies::parse(&["127.0.0.1".into()]);
        let peer = Some("127.0.0.1:4000".parse().unwrap());

        let ip = proxies.client_ip(peer, &headers(&[("x-real-ip", "198.51.100.8")]));

        assert_eq!(ip, Some("198.51.100.8".parse().unwrap()));
    }

    #[test]
    fn every_forwarded_for_line_counts_and_only_proxy_hops_are_believed() {
        let proxies = TrustedProxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]);
        let peer = Some("127.0.0.1:4000".parse().unwrap());
        let mut forged = HeaderMap::new();
        forged.append("x-forwarded-for", "1.2.3.4".parse().unwrap());
        forged.append("x-forwarded-for", "198.51.100.9, 10.0.0.3".parse().unwrap());

        let ip = proxies.client_ip(peer, &forged);

        assert_eq!(ip, Some("198.51.100.9".parse().unwrap()));
    }

    #[test]
    fn request_ids_that_could_forge_log_lines_are_dropped() {
        assert!(acceptable_request_id(b"3f2a-01:job.7_x"));
        assert!(!acceptable_request_id(b""));
        assert!(!acceptable_request_id(b"id\nlevel=error"));
        assert!(!acceptable_request_id(&[b'a'; REQUEST_ID_BYTES + 1]));
    }

    #[test]
    fn only_the_bearer_scheme_with_a_token_counts() {
        assert_eq!(
            bearer(&headers(&[("authorization", "bearer abc")])),
            Some("abc")
        );
        assert_eq!(bearer(&headers(&[("authorization", "Basic abc")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearer ")])), None);
    }
}
