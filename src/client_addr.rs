//! Who a request comes from: the address per-client limits are kept under.
//!
//! Policy: the client is the TCP peer, unless the peer is one of the operator's
//! `TRUSTED_PROXIES`; then `X-Forwarded-For` is walked from the right (the hops on the left are
//! whatever the client chose to send, so only those appended by proxies we trust can be
//! believed), past the hops that are trusted proxies, and the first hop that is not one is the
//! client. When every hop is a trusted proxy, the leftmost is the client. A hop that is not an
//! IP address (`unknown`, `192.0.2.1:4711`, an empty hop, garbage, bytes that are not text)
//! met on that walk stands where the client should be: the request counts as the one shared
//! [`ClientAddr::UNKNOWN`] client, never as the proxy (whose address would give a client who
//! sends garbage a budget of its own, and let them spend the budget of every caller behind that
//! proxy). Malformed hops left of the client are never read. A trusted proxy that sends no
//! header at all is itself the client (its own health checks, say). Without `TRUSTED_PROXIES`
//! the header is never read.
//!
//! IPv6 clients are counted by their /64: one host is usually given a whole /64, and could
//! otherwise rotate through 2^64 addresses to get a fresh budget each time. IPv4-mapped IPv6
//! addresses (`::ffff:192.0.2.1`) count as the IPv4 address they carry.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;

/// The `X-Forwarded-For` header.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The address a client's limits are kept under: an IPv4 address, or an IPv6 /64 (its host
/// bits zeroed); or [`ClientAddr::UNKNOWN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientAddr(Option<IpAddr>);

impl ClientAddr {
    /// The client `ip` counts as.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(Some(IpAddr::V4(v4))),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !(u128::MAX >> 64);
                Self(Some(IpAddr::V6(Ipv6Addr::from(prefix))))
            }
        }
    }

    /// Stands for every request whose client cannot be told: a malformed `X-Forwarded-For`
    /// hop where the client should be, or no peer address (not a TCP connection: only in
    /// tests that call the App directly). They share one budget, apart from every address.
    pub const UNKNOWN: Self = Self(None);
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("unknown"),
            Some(IpAddr::V4(v4)) => v4.fmt(f),
            Some(IpAddr::V6(v6)) => write!(f, "{v6}/64"),
        }
    }
}

/// An IP network, `192.0.2.0/24` or `2001:db8::/32`; a bare address is a network of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// True when `ip` is in this network (an IPv4-mapped IPv6 address as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask32(self.prefix) & u32::from(ip) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask128(self.prefix) & u128::from(ip) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!("`{text}` is not an IP address or a CIDR range (192.0.2.0/24, 2001:db8::/32)")
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let written = IpAddr::from_str(addr).map_err(|_| bad())?;
        let bits = if written.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            // Digits only: `u8::from_str` would also take `+24`.
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(bad)?,
            Some(_) => return Err(bad()),
        };
        // An IPv4-mapped range (`::ffff:192.0.2.0/120`) is the IPv4 range it maps.
        let (addr, prefix) = match written.to_canonical() {
            IpAddr::V4(v4) if written.is_ipv6() => {
                (IpAddr::V4(v4), prefix.checked_sub(96).ok_or_else(bad)?)
            }
            canonical => (canonical, prefix),
        };
        let network = match addr {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask32(prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(prefix))),
        };
        if network != addr {
            // `10.0.0.1/8` most likely means a typo; say so rather than guess.
            return Err(format!(
                "`{text}` has host bits set; the network is `{network}/{prefix}`"
            ));
        }
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`); empty by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// True when no proxy is trusted (the header is then never read).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(ip))
    }

    /// The client of a request that arrived from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> ClientAddr {
        self.client_ip(peer, headers)
            .map_or(ClientAddr::UNKNOWN, ClientAddr::of)
    }

    /// The address of the client of a request that arrived from `peer` with `headers`, whole
    /// (not grouped into a /64 as [`ClientAddr`] is); `None` for the unknown client.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        if !self.trusts(peer) || !headers.contains_key(X_FORWARDED_FOR) {
            return Some(peer.to_canonical());
        }
        self.forwarded_client(headers).map(|ip| ip.to_canonical())
    }

    /// The first hop of `X-Forwarded-For`, from the right, that is not a trusted proxy (the
    /// leftmost hop when all are); `None` when a hop met on the way is malformed.
    fn forwarded_client(&self, headers: &HeaderMap) -> Option<IpAddr> {
        let mut hops = Vec::new();
        // Several headers are one list, in order (RFC 9110, section 5.3).
        for value in headers.get_all(X_FORWARDED_FOR) {
            // Bytes that are not text: which hop is which cannot be told.
            hops.extend(value.to_str().ok()?.split(','));
        }
        let mut client = None;
        for hop in hops.into_iter().rev() {
            let ip = IpAddr::from_str(hop.trim()).ok()?;
            client = Some(ip);
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }

    /// The client of `req` (see the module policy).
    pub fn client_of(&self, req: &HttpRequest) -> ClientAddr {
        match req.peer_addr() {
            Some(peer) => self.client(peer.ip(), req.headers()),
            None => ClientAddr::UNKNOWN,
        }
    }

    /// The whole address of the client of `req`, as [`TrustedProxies::client_ip`] finds it.
    pub fn client_ip_of(&self, req: &HttpRequest) -> Option<IpAddr> {
        self.client_ip(req.peer_addr()?.ip(), req.headers())
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// Comma-separated addresses and CIDR ranges; the empty string trusts none.
    fn from_str(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, cidr) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            cidr.fmt(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(text: &str) -> TrustedProxies {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                HeaderName::from_static(X_FORWARDED_FOR),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn cidr_ranges_contain_exactly_their_addresses() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true, "inside an IPv4 range"),
            ("10.0.0.0/8", "11.0.0.0", false, "just past an IPv4 range"),
            ("192.0.2.7", "192.0.2.7", true, "a bare IPv4 address"),
            ("192.0.2.7", "192.0.2.8", false, "its neighbour"),
            ("0.0.0.0/0", "203.0.113.9", true, "every IPv4 address"),
            (
                "2001:db8::/32",
                "2001:db8:ffff::1",
                true,
                "inside an IPv6 range",
            ),
            (
                "2001:db8::/32",
                "2001:db9::",
                false,
                "just past an IPv6 range",
            ),
            ("::1", "::1", true, "a bare IPv6 address"),
            ("::/0", "2001:db8::1", true, "every IPv6 address"),
            (
                "::/0",
                "192.0.2.1",
                false,
                "IPv6 ranges hold no IPv4 client",
            ),
            (
                "192.0.2.0/24",
                "::ffff:192.0.2.1",
                true,
                "an IPv4-mapped peer",
            ),
            (
                "::ffff:192.0.2.0/120",
                "192.0.2.1",
                true,
                "an IPv4-mapped range",
            ),
        ];
        for (cidr, addr, inside, why) in cases {
            let cidr: Cidr = cidr.parse().unwrap_or_else(|e| panic!("{why}: {e}"));
            assert_eq!(cidr.contains(ip(addr)), inside, "{why}");
        }
    }

    #[test]
    fn malformed_trusted_proxies_are_refused_with_the_entry_named() {
        let cases = [
            ("10.0.0.0/33", "prefix longer than the address"),
            ("2001:db8::/129", "IPv6 prefix too long"),
            ("10.0.0.0/", "empty prefix"),
            ("10.0.0.0/+8", "signed prefix"),
            ("10.0.0.1/8", "host bits set"),
            ("10.0.0", "not an address"),
            ("proxy.internal", "a host name"),
            ("10.0.0.0/8/8", "two prefixes"),
        ];
        for (text, why) in cases {
            let error = format!("127.0.0.1, {text}")
                .parse::<TrustedProxies>()
                .expect_err(why);
            assert!(error.contains(text), "{why}: {error}");
        }
        assert!(proxies("").is_empty());
        assert!(proxies(" , ").is_empty());
        assert_eq!(
            proxies(" 10.0.0.0/8 ,::1,").to_string(),
            "10.0.0.0/8,::1/128"
        );
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right_behind_a_trusted_proxy() {
        let trusted = proxies("127.0.0.1,10.0.0.0/8");
        let peer = ip("127.0.0.1");
        let cases: [(&[&str], &str, &str); 9] = [
            (&["203.0.113.5"], "203.0.113.5", "one hop"),
            (
                &["198.51.100.1, 203.0.113.5"],
                "203.0.113.5",
                "the rightmost untrusted hop, not what the client put on the left",
            ),
            (
                &["203.0.113.5, 10.1.1.1, 10.2.2.2"],
                "203.0.113.5",
                "trusted hops are skipped",
            ),
            (
                &["198.51.100.1", "203.0.113.5, 10.1.1.1"],
                "203.0.113.5",
                "several headers are one list",
            ),
            (
                &["10.1.1.1, 10.2.2.2"],
                "10.1.1.1",
                "all trusted: the leftmost",
            ),
            (
                &["unknown, 203.0.113.5"],
                "203.0.113.5",
                "garbage left of the client is never read",
            ),
            (
                &["junk:1:2, 198.51.100.1, 203.0.113.5, 10.1.1.1"],
                "203.0.113.5",
                "nor is anything left of the client",
            ),
            (&["2001:db8::1, 10.1.1.1"], "2001:db8::1", "an IPv6 client"),
            (
                &[" 203.0.113.5 ,10.1.1.1 "],
                "203.0.113.5",
                "spaces around hops",
            ),
        ];
        for (values, client, why) in cases {
            assert_eq!(
                trusted.client(peer, &forwarded(values)),
                ClientAddr::of(ip(client)),
                "{why}"
            );
        }
        assert_eq!(
            trusted.client(peer, &HeaderMap::new()),
            ClientAddr::of(peer),
            "no header: the proxy's own request"
        );
    }

    #[test]
    fn a_malformed_hop_where_the_client_should_be_is_the_unknown_client_not_the_proxy() {
        let trusted = proxies("127.0.0.1,10.0.0.0/8");
        let peer = ip("127.0.0.1");
        let cases: [(&[&str], &str); 10] = [
            (&["unknown"], "nginx's `unknown`"),
            (&["203.0.113.5:4711"], "an address with a port"),
            (
                &["[2001:db8::1]:443"],
                "a bracketed IPv6 address with a port",
            ),
            (&["203.0.113.5, junk"], "garbage as the last hop"),
            (
                &["203.0.113.5, unknown, 10.1.1.1"],
                "garbage behind a trusted hop",
            ),
            (&["203.0.113.5,,"], "an empty hop"),
            (&[""], "an empty header"),
            (
                &["203.0.113.5", "junk"],
                "garbage in the last of several headers",
            ),
            (&["10.1.1.1, 10.0.0.1/8"], "a range, not an address"),
            (&["203.0.113.5, 10.1.1.1 10.2.2.2"], "hops without a comma"),
        ];
        for (values, why) in cases {
            let client = trusted.client(peer, &forwarded(values));
            assert_eq!(client, ClientAddr::UNKNOWN, "{why}");
            assert_ne!(client, ClientAddr::of(peer), "{why}");
        }
        let mut not_text = HeaderMap::new();
        not_text.insert(
            HeaderName::from_static(X_FORWARDED_FOR),
            HeaderValue::from_bytes(b"203.0.113.5, \xff").unwrap(),
        );
        assert_eq!(
            trusted.client(peer, &not_text),
            ClientAddr::UNKNOWN,
            "bytes that are not text"
        );
        assert_eq!(ClientAddr::UNKNOWN.to_string(), "unknown");
        assert_ne!(
            ClientAddr::UNKNOWN,
            ClientAddr::of(ip("0.0.0.0")),
            "no address stands for the unknown client"
        );
    }

    #[test]
    fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
        let headers = forwarded(&["203.0.113.5"]);
        assert_eq!(
            TrustedProxies::default().client(ip("127.0.0.1"), &headers),
            ClientAddr::of(ip("127.0.0.1")),
            "nothing trusted"
        );
        assert_eq!(
            proxies("10.0.0.0/8").client(ip("192.0.2.1"), &headers),
            ClientAddr::of(ip("192.0.2.1")),
            "a peer outside the trusted ranges"
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_slash_64() {
        let a = ClientAddr::of(ip("2001:db8:1:2:aaaa::1"));
        assert_eq!(a, ClientAddr::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        assert_ne!(a, ClientAddr::of(ip("2001:db8:1:3::1")));
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientAddr::of(ip("::ffff:192.0.2.1")),
            ClientAddr::of(ip("192.0.2.1")),
            "an IPv4-mapped address is its IPv4 address"
        );
        assert_ne!(
            ClientAddr::of(ip("192.0.2.1")),
            ClientAddr::of(ip("192.0.2.2")),
            "IPv4 clients are not grouped"
        );
    }
}
