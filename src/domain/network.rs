//! Where a request comes from, and whether a rule lets it come from there.
//!
//! The client's address is the connection's peer, unless that peer is a
//! trusted proxy: then `X-Forwarded-For` is read from the right, skipping
//! trusted proxies, and the first address that is not one is the client. A
//! header from an untrusted peer is ignored, so nobody forges their way past
//! a network rule.
//!
//! Three readings another program may make differently are fixed here:
//! - A request may carry the header more than once (a proxy appending its
//!   own line, as HAProxy's `option forwardfor` does); the lines are one list,
//!   in order (RFC 9110, 5.3), so the proxy's own hop is the rightmost.
//! - IPv4 peers on a dual-stack listener arrive as `::ffff:a.b.c.d`; every
//!   address is made canonical before it is compared with anything.
//! - A hop that is not a bare address (`unknown`, an address with a port)
//!   stands for a client nobody can name: the request is refused rather than
//!   given an address — least of all the proxy's own.

use std::net::IpAddr;

use ipnet::IpNet;

/// A trusted proxy named a hop that is no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a trusted proxy forwarded for `{0}`, which is not an IP address")]
pub struct UnreadableHop(pub String);

/// The client's address: the peer, or what trusted proxies in front of us
/// say. `forwarded_for` holds every `X-Forwarded-For` line, in order.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted_proxies: &[IpNet],
) -> Result<IpAddr, UnreadableHop> {
    let peer = canonical(peer);
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return Ok(peer);
    }
    let hops: Vec<&str> = forwarded_for.into_iter().flat_map(|line| line.split(',')).map(str::trim).collect();
    let mut leftmost = peer;
    for hop in hops.iter().rev() {
        let ip = hop.parse::<IpAddr>().map(canonical).map_err(|_| UnreadableHop(hop.escape_debug().to_string()))?;
        if !trusted(&ip) {
            return Ok(ip);
        }
        leftmost = ip;
    }
    // Every hop was a proxy of ours: the first of them is where it started.
    Ok(leftmost)
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
pub fn canonical(ip: IpAddr) -> IpAddr {
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

    fn client(peer: &str, lines: &[&str], proxies: &[IpNet]) -> Result<IpAddr, UnreadableHop> {
        client_ip(ip(peer), lines.iter().copied(), proxies)
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = nets(&["10.0.0.0/24"]);
        // A peer that is not a proxy: its header is ignored, even unreadable.
        assert_eq!(client("203.0.113.9", &["10.9.9.9"], &proxies), Ok(ip("203.0.113.9")));
        assert_eq!(client("203.0.113.9", &["unknown"], &proxies), Ok(ip("203.0.113.9")));
        // Through our proxy: the client it saw.
        assert_eq!(client("10.0.0.5", &["198.51.100.7"], &proxies), Ok(ip("198.51.100.7")));
        // A client that sends its own header through our proxy cannot pick its address.
        assert_eq!(client("10.0.0.5", &["10.1.2.3, 198.51.100.7"], &proxies), Ok(ip("198.51.100.7")));
        // Two proxies of ours in a row are both skipped.
        assert_eq!(client("10.0.0.5", &["198.51.100.7, 10.0.0.6"], &proxies), Ok(ip("198.51.100.7")));
        // Garbage to the left of a good hop is never read.
        assert_eq!(client("10.0.0.5", &["nonsense, 198.51.100.7"], &proxies), Ok(ip("198.51.100.7")));
        assert_eq!(client("10.0.0.5", &[], &proxies), Ok(ip("10.0.0.5")));
        assert_eq!(client("10.0.0.5", &["198.51.100.7"], &[]), Ok(ip("10.0.0.5")), "no trusted proxies: never believed");
        // Only proxies of ours: the first of them.
        assert_eq!(client("10.0.0.5", &["10.0.0.7, 10.0.0.6"], &proxies), Ok(ip("10.0.0.7")));
    }

    /// Regression (hardening round two, finding 2): only the first header line
    /// was read, so with a proxy that appends its own line the client's
    /// forged line decided the address.
    #[test]
    fn every_forwarded_for_line_counts_and_the_rightmost_untrusted_hop_wins() {
        let proxies = nets(&["10.0.0.0/24"]);
        assert_eq!(client("10.0.0.5", &["10.1.2.3", "198.51.100.7"], &proxies), Ok(ip("198.51.100.7")));
        assert_eq!(client("10.0.0.5", &["10.1.2.3, 192.0.2.1", "198.51.100.7, 10.0.0.6"], &proxies), Ok(ip("198.51.100.7")));
    }

    /// Regression (finding 2): an unreadable hop made the proxy's own address the client's.
    #[test]
    fn a_hop_that_is_not_an_address_is_refused_never_the_proxys_own() {
        let proxies = nets(&["10.0.0.0/24"]);
        for bad in ["unknown", "198.51.100.7:4711", "[2001:db8::1]:443", "", "junk, 10.0.0.6"] {
            assert!(client("10.0.0.5", &[bad], &proxies).is_err(), "{bad:?}");
        }
        assert_eq!(client("10.0.0.5", &["198.51.100.7", "unknown"], &proxies), Err(UnreadableHop("unknown".into())));
    }

    /// Regression (finding 3): on a dual-stack listener an IPv4 proxy is
    /// `::ffff:10.0.0.5`, which matched no IPv4 `trusted_proxies` entry.
    #[test]
    fn mapped_ipv4_peers_and_hops_are_read_as_ipv4() {
        let proxies = nets(&["10.0.0.0/24"]);
        assert_eq!(client("::ffff:10.0.0.5", &["198.51.100.7"], &proxies), Ok(ip("198.51.100.7")));
        assert_eq!(client("::ffff:10.0.0.5", &["::ffff:198.51.100.7, ::ffff:10.0.0.6"], &proxies), Ok(ip("198.51.100.7")));
        assert_eq!(client("::ffff:203.0.113.9", &[], &proxies), Ok(ip("203.0.113.9")), "one address, one failure bucket");
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
