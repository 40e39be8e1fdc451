//! Where a request comes from, and whether a rule lets it come from there.
//!
//! The client's address is the connection's peer, unless that peer is a
//! trusted proxy: then `X-Forwarded-For` is read from the right, skipping
//! trusted proxies, and the first address that is not one is the client. A
//! header from an untrusted peer is ignored, so nobody forges their way past
//! a network rule.

use std::net::IpAddr;

use ipnet::IpNet;

/// The client's address: the peer, or what trusted proxies in front of us say.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted_proxies: &[IpNet]) -> IpAddr {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut hops: Vec<IpAddr> = Vec::new();
    for part in header.split(',') {
        match part.trim().parse::<IpAddr>() {
            Ok(ip) => hops.push(ip),
            // A hop we cannot read: trust nothing to its left.
            Err(_) => hops.clear(),
        }
    }
    hops.iter().rev().find(|ip| !trusted(ip)).copied().or_else(|| hops.first().copied()).unwrap_or(peer)
}

/// Reads a list of networks (`10.0.0.0/8`, `2001:db8::/32`, or one address).
pub fn parse_networks(field: &str, nets: &[String]) -> Result<Vec<IpNet>, String> {
    nets.iter()
        .map(|n| {
            n.parse::<IpNet>()
                .or_else(|_| n.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{field}: `{n}` is not a network (e.g. 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7)"))
        })
        .collect()
}

/// Whether `ip` may use a grant whose rule names networks `from` (none: anywhere).
pub fn allowed_from(from: &[IpNet], ip: IpAddr) -> bool {
    from.is_empty() || from.iter().any(|n| n.contains(&canonical(ip)))
}

/// IPv4 addresses mapped into IPv6 (`::ffff:10.0.0.1`) count as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = nets(&["10.0.0.0/24"]);
        // A peer that is not a proxy: its header is ignored.
        assert_eq!(client_ip(ip("203.0.113.9"), Some("10.9.9.9"), &proxies), ip("203.0.113.9"));
        // Through our proxy: the client it saw.
        assert_eq!(client_ip(ip("10.0.0.5"), Some("198.51.100.7"), &proxies), ip("198.51.100.7"));
        // A client that sends its own header through our proxy cannot pick its address.
        assert_eq!(client_ip(ip("10.0.0.5"), Some("10.1.2.3, 198.51.100.7"), &proxies), ip("198.51.100.7"));
        // Two proxies of ours in a row are both skipped.
        assert_eq!(client_ip(ip("10.0.0.5"), Some("198.51.100.7, 10.0.0.6"), &proxies), ip("198.51.100.7"));
        // Garbage to the left of a good hop is not trusted either.
        assert_eq!(client_ip(ip("10.0.0.5"), Some("nonsense, 198.51.100.7"), &proxies), ip("198.51.100.7"));
        assert_eq!(client_ip(ip("10.0.0.5"), None, &proxies), ip("10.0.0.5"));
        assert_eq!(client_ip(ip("10.0.0.5"), Some("junk"), &proxies), ip("10.0.0.5"));
        assert_eq!(client_ip(ip("10.0.0.5"), Some("198.51.100.7"), &[]), ip("10.0.0.5"), "no trusted proxies: never believed");
    }

    #[test]
    fn rules_restrict_to_their_networks() {
        let from = nets(&["10.0.0.0/8", "2001:db8::/32"]);
        assert!(allowed_from(&from, ip("10.1.2.3")));
        assert!(allowed_from(&from, ip("::ffff:10.1.2.3")), "IPv4-mapped counts as IPv4");
        assert!(allowed_from(&from, ip("2001:db8::1")));
        assert!(!allowed_from(&from, ip("192.0.2.1")));
        assert!(!allowed_from(&from, ip("2001:db9::1")));
        assert!(allowed_from(&[], ip("192.0.2.1")), "no networks named: anywhere");
    }
}
