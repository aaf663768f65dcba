//! The client's address when certmint sits behind reverse proxies or load balancers.
//!
//! `X-Forwarded-For` and `Forwarded` (RFC 7239, its `for=`) are believed only from a TCP peer
//! listed in `trusted_proxies`: anyone else could write them. The client is then the right-most
//! address of the chain that is not itself a trusted proxy, because each proxy appends the
//! address it received from and only the proxies we trust are known to do so honestly; what
//! lies further left was written by the client.
//!
//! Whatever cannot be read with certainty — a header too long, too many hops, a hop that is not
//! an address (`unknown`, an obfuscated name, garbage), or the two headers naming different
//! clients (a proxy that sets one passes a client's forgery of the other through) — leaves the
//! peer as the client, never a guess and never an error.
//!
//! [`crate::listen`] resolves the address once per request into [`crate::listen::Conn`], so
//! rate limits, audit records and every other consumer see the same one.

use std::net::{IpAddr, Ipv6Addr, SocketAddrV4};

use axum::http::{HeaderMap, HeaderName, header};
use ipnet::IpNet;

/// The most bytes of one header (all its lines together) that are read.
const MAX_HEADER_BYTES: usize = 4096;
/// The most hops walked from the right before giving up.
const MAX_HOPS: usize = 20;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Reads addresses (`192.0.2.1`, `::1`) and networks (`10.0.0.0/8`, `fd00::/8`).
    ///
    /// # Errors
    /// The first entry that is neither.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| format!("'{entry}' is neither an IP address nor a network"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that arrived from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if self.0.is_empty() || !self.trusts(peer) {
            return peer;
        }
        let forwarded_for = self.walk(headers, &X_FORWARDED_FOR, x_forwarded_for_hops);
        let forwarded = self.walk(headers, &header::FORWARDED, forwarded_hops);
        match (forwarded_for, forwarded) {
            (Some(Some(a)), None) | (None, Some(Some(a))) => a,
            (Some(Some(a)), Some(Some(b))) if a == b => a,
            _ => peer,
        }
    }

    /// The client that header `name` names: `None` without the header, `Some(None)` when it
    /// cannot be read with certainty (`hops` answering `None` for a header it cannot parse).
    fn walk(
        &self,
        headers: &HeaderMap,
        name: &HeaderName,
        hops: fn(&str) -> Option<Vec<Option<IpAddr>>>,
    ) -> Option<Option<IpAddr>> {
        let mut lines = headers.get_all(name).iter().peekable();
        lines.peek()?;
        let mut text = String::new();
        for line in lines {
            let Ok(line) = line.to_str() else {
                return Some(None);
            };
            if !text.is_empty() {
                text.push(',');
            }
            text.push_str(line);
            if text.len() > MAX_HEADER_BYTES {
                return Some(None);
            }
        }
        Some(self.client_of(hops(&text)?))
    }

    /// The right-most hop that is not a trusted proxy.
    fn client_of(&self, hops: Vec<Option<IpAddr>>) -> Option<IpAddr> {
        let mut leftmost = None;
        for hop in hops.iter().rev().take(MAX_HOPS) {
            let ip = (*hop)?;
            if !self.trusts(ip) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
        // Every hop was a trusted proxy: the first of them sent the request, unless the walk
        // stopped short of the chain's start.
        leftmost.filter(|_| hops.len() <= MAX_HOPS)
    }
}

/// `X-Forwarded-For: client, proxy1, proxy2`; an empty entry is an unreadable hop.
fn x_forwarded_for_hops(text: &str) -> Option<Vec<Option<IpAddr>>> {
    Some(text.split(',').map(node).collect())
}

/// `Forwarded: for=client;proto=https, for="[2001:db8::1]:4711"`: each element's `for=`, a hop
/// without one being unreadable. `None` when a quote does not close.
fn forwarded_hops(text: &str) -> Option<Vec<Option<IpAddr>>> {
    split_unquoted(text, ',')?
        .into_iter()
        .map(|element| {
            let pairs = split_unquoted(element, ';')?;
            let mut found = None;
            for pair in pairs {
                let Some((key, value)) = pair.split_once('=') else {
                    if pair.trim().is_empty() {
                        continue;
                    }
                    return Some(None);
                };
                if key.trim().eq_ignore_ascii_case("for") {
                    if found.is_some() {
                        // Two `for=` in one element: which one is the hop is anyone's guess.
                        return Some(None);
                    }
                    found = Some(unquote(value.trim()).as_deref().and_then(node));
                }
            }
            Some(found.flatten())
        })
        .collect()
}

/// `text` split at `separator` outside quoted strings; `None` when a quote does not close.
fn split_unquoted(text: &str, separator: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if quoted {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

/// A token as is, or a quoted string's content with its escapes undone.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}

/// One hop: an address, optionally with a port (`192.0.2.1:80`, `[2001:db8::1]:443`, or an
/// obfuscated port as RFC 7239 §6.3 allows). Names, `unknown` and obfuscated identifiers are
/// not addresses.
fn node(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = inside.parse().ok()?;
        let port_ok = after.is_empty()
            || after.strip_prefix(':').is_some_and(|port| {
                !port.is_empty()
                    && port
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        return port_ok.then(|| IpAddr::V6(ip).to_canonical());
    }
    hop.parse::<SocketAddrV4>()
        .ok()
        .map(|a| IpAddr::V4(*a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(list: &[&str]) -> TrustedProxies {
        let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        TrustedProxies::parse(&list).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const PROXY: &str = "10.0.0.5";

    fn client(trusted: &[&str], peer: &str, pairs: &[(&str, &str)]) -> IpAddr {
        proxies(trusted).client(ip(peer), &headers(pairs))
    }

    #[test]
    fn parses_addresses_and_networks() {
        let p = proxies(&["10.0.0.0/8", "192.0.2.7", " ::1 ", "fd00::1/8"]);
        assert!(p.trusts(ip("10.200.3.4")));
        assert!(p.trusts(ip("192.0.2.7")));
        assert!(!p.trusts(ip("192.0.2.8")));
        assert!(p.trusts(ip("::1")));
        assert!(
            p.trusts(ip("fdab::9")),
            "the network of a host-bits address"
        );
        for bad in ["10.0.0.0/33", "example.com", "", "10.0.0.1-10.0.0.9"] {
            assert!(TrustedProxies::parse(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let forged = [
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ];
        assert_eq!(
            client(&[PROXY], "198.51.100.1", &forged),
            ip("198.51.100.1")
        );
        assert_eq!(client(&[], "198.51.100.1", &forged), ip("198.51.100.1"));
    }

    #[test]
    fn a_trusted_peer_without_headers_is_the_client() {
        assert_eq!(client(&[PROXY], PROXY, &[]), ip(PROXY));
    }

    #[test]
    fn walks_the_chain_from_the_right_past_trusted_proxies() {
        let trusted = ["10.0.0.0/24"];
        let chain = [("x-forwarded-for", "203.0.113.1, 198.51.100.2, 10.0.0.7")];
        assert_eq!(client(&trusted, PROXY, &chain), ip("198.51.100.2"));
        // What the client wrote in front is not believed.
        let chain = [("x-forwarded-for", "1.1.1.1,198.51.100.2")];
        assert_eq!(client(&trusted, PROXY, &chain), ip("198.51.100.2"));
        // Garbage the client wrote further left does not matter either.
        let chain = [("x-forwarded-for", "not an address, 198.51.100.2")];
        assert_eq!(client(&trusted, PROXY, &chain), ip("198.51.100.2"));
        // Several lines are one list.
        let lines = [
            ("x-forwarded-for", "198.51.100.3"),
            ("x-forwarded-for", "10.0.0.8"),
        ];
        assert_eq!(client(&trusted, PROXY, &lines), ip("198.51.100.3"));
        // Only proxies: the first one sent the request.
        let chain = [("x-forwarded-for", "10.0.0.9, 10.0.0.8")];
        assert_eq!(client(&trusted, PROXY, &chain), ip("10.0.0.9"));
    }

    #[test]
    fn malformed_headers_leave_the_peer() {
        for value in [
            "",
            " , ",
            "198.51.100.2, garbage",
            "198.51.100.2,",
            "unknown",
            "fe80::1%eth0",
            "[2001:db8::1",
            "[2001:db8::1]:",
            "198.51.100.2:port:80",
            "999.1.1.1",
        ] {
            assert_eq!(
                client(&[PROXY], PROXY, &[("x-forwarded-for", value)]),
                ip(PROXY),
                "X-Forwarded-For: {value}"
            );
        }
        for value in [
            "for=unknown",
            "for=_hidden",
            "proto=https",
            "for=\"[2001:db8::1]:4711",
            "for=198.51.100.2;for=198.51.100.3",
            "for=198.51.100.2, by=10.0.0.1",
            "garbage",
        ] {
            assert_eq!(
                client(&[PROXY], PROXY, &[("forwarded", value)]),
                ip(PROXY),
                "Forwarded: {value}"
            );
        }
        let mut non_ascii = HeaderMap::new();
        non_ascii.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"198.51.100.2\xff").unwrap(),
        );
        assert_eq!(proxies(&[PROXY]).client(ip(PROXY), &non_ascii), ip(PROXY));
    }

    #[test]
    fn parsing_is_bounded() {
        let trusted = ["10.0.0.0/8"];
        let long = format!("198.51.100.2,{}", "10.0.0.1,".repeat(500));
        assert!(long.len() > MAX_HEADER_BYTES);
        assert_eq!(
            client(
                &trusted,
                PROXY,
                &[("x-forwarded-for", long.trim_end_matches(','))]
            ),
            ip(PROXY)
        );
        let hops = |n: usize| {
            let mut chain = vec!["198.51.100.2".to_owned()];
            chain.extend((0..n).map(|i| format!("10.0.0.{i}")));
            chain.join(",")
        };
        assert_eq!(
            client(&trusted, PROXY, &[("x-forwarded-for", &hops(MAX_HOPS - 1))]),
            ip("198.51.100.2")
        );
        assert_eq!(
            client(&trusted, PROXY, &[("x-forwarded-for", &hops(MAX_HOPS))]),
            ip(PROXY),
            "the client lies past the hops walked"
        );
    }

    #[test]
    fn reads_ipv6_and_ports() {
        let trusted = ["::1", "10.0.0.0/8"];
        for (value, expected) in [
            ("2001:db8::7", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("198.51.100.2:51000", "198.51.100.2"),
            ("::ffff:198.51.100.2", "198.51.100.2"),
        ] {
            assert_eq!(
                client(&trusted, "::1", &[("x-forwarded-for", value)]),
                ip(expected),
                "X-Forwarded-For: {value}"
            );
        }
        // An IPv4 proxy seen over a dual-stack socket is still that proxy.
        assert_eq!(
            client(
                &trusted,
                "::ffff:10.0.0.5",
                &[("x-forwarded-for", "198.51.100.2")]
            ),
            ip("198.51.100.2")
        );
        assert_eq!(
            client(&trusted, "::ffff:198.51.100.9", &[]),
            ip("198.51.100.9"),
            "the peer itself is canonical"
        );
    }

    #[test]
    fn reads_rfc_7239_forwarded() {
        let trusted = ["10.0.0.0/8", "::1"];
        for (value, expected) in [
            ("for=198.51.100.2", "198.51.100.2"),
            ("For=198.51.100.2;proto=https;by=10.0.0.1", "198.51.100.2"),
            ("for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=\"[::1]:8443\", for=10.0.0.3", "::1"),
            ("for=\"[2001:db8::5]\"", "2001:db8::5"),
            ("for=\"198.51.100.2:80\"", "198.51.100.2"),
            ("for=\"[2001:db8::5]:_port\"", "2001:db8::5"),
            (
                "for=198.51.100.2;host=\"a,b\", for=10.0.0.2",
                "198.51.100.2",
            ),
            ("for=unknown, for=198.51.100.4", "198.51.100.4"),
            (
                "for=192.0.2.43, for=\"[2001:db8:cafe::17]\";proto=https, for=10.1.1.1",
                "2001:db8:cafe::17",
            ),
        ] {
            assert_eq!(
                client(&trusted, PROXY, &[("forwarded", value)]),
                ip(expected),
                "Forwarded: {value}"
            );
        }
        // Only proxies, the first of them `::1` in brackets.
        assert_eq!(
            client(&trusted, PROXY, &[("forwarded", "for=\"[::1]:1234\"")]),
            ip("::1")
        );
    }

    #[test]
    fn both_headers_must_agree() {
        let agree = [
            ("x-forwarded-for", "198.51.100.2"),
            ("forwarded", "for=198.51.100.2"),
        ];
        assert_eq!(client(&[PROXY], PROXY, &agree), ip("198.51.100.2"));
        // A proxy that appends X-Forwarded-For passes on the Forwarded a client forged.
        let disagree = [
            ("x-forwarded-for", "198.51.100.2"),
            ("forwarded", "for=203.0.113.66"),
        ];
        assert_eq!(client(&[PROXY], PROXY, &disagree), ip(PROXY));
        let one_unreadable = [
            ("x-forwarded-for", "198.51.100.2"),
            ("forwarded", "for=unknown"),
        ];
        assert_eq!(client(&[PROXY], PROXY, &one_unreadable), ip(PROXY));
    }
}
