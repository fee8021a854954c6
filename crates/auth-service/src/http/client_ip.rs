//! The client's address: the socket peer, unless the peer is a trusted proxy, in which case
//! the nearest untrusted address of `X-Forwarded-For` (or `X-Real-IP`) — SPEC §3/§4.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

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
}
