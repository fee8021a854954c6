//! Per-client-address rate limits (SPEC §4): the use cases that HTTP and gRPC share count
//! their callers here, so both transports are limited alike.

use std::net::{IpAddr, Ipv6Addr};

use super::context::{Context, RequestContext};
use crate::error::Error;
use crate::limits::{Limiter, Scope};

impl Context {
    /// Counts the request against a per-client-address limit; `rate_limited` when over it.
    pub async fn limit_by_ip(&self, scope: Scope, request: &RequestContext) -> Result<(), Error> {
        limit_by_ip(&self.limiter, scope, request).await
    }
}

async fn limit_by_ip(
    limiter: &Limiter,
    scope: Scope,
    request: &RequestContext,
) -> Result<(), Error> {
    let client = request.ip.map(limit_key).unwrap_or_default();
    limiter
        .hit(scope, &client)
        .await
        .map_err(|retry_after| Error::RateLimited { retry_after })
}

/// What a per-address limit counts under: the address, or for IPv6 its /64, since one host
/// commonly holds a whole /64 and could otherwise take a fresh address per request.
fn limit_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let network = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", Ipv6Addr::from(network))
        }
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let same_net: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let mapped: IpAddr = "::ffff:203.0.113.5".parse().unwrap();

        assert_eq!(limit_key(one), "2001:db8:1:2::/64");
        assert_eq!(limit_key(one), limit_key(same_net));
        assert_eq!(limit_key(mapped), "203.0.113.5");
    }
}
