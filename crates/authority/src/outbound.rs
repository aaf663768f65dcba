//! Where certmint may connect out to: the one address policy of every outbound connection
//! (ACME validation now; webhooks, SMTP, LDAP and OIDC as they come).
//!
//! Trust boundary: the names and addresses an outbound connection goes to come from clients
//! (an ACME identifier, a redirect, a webhook URL). Without this check a client could make the
//! server read its own loopback services, the cloud metadata endpoint or any host of the
//! private network and report what it found. The policy is applied to the address actually
//! connected to, after resolution, so DNS rebinding gains nothing.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpStream;

/// A special-purpose range that outbound connections do not reach unless allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reserved {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 0.0.0.0/8 ("this network"), ::.
    Unspecified,
    /// 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (RFC 1918).
    Private,
    /// 100.64.0.0/10, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    /// 169.254.0.0/16 (where cloud metadata lives), fe80::/10.
    LinkLocal,
    /// fc00::/7, unique local (RFC 4193), and the deprecated site-local fec0::/10.
    UniqueLocal,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 240.0.0.0/4 with 255.255.255.255, 192.0.0.0/24 and 192.88.99.0/24, the discard
    /// prefix 100::/64, 2001::/23, local-use NAT64 64:ff9b:1::/48 and SRv6 5f00::/16:
    /// reserved or protocol assignments, never a web server of the applicant's.
    Reserved,
    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20
    /// (documentation) and 198.18.0.0/15 (benchmarking).
    Documentation,
}

impl Reserved {
    /// What the range is, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Unspecified => "unspecified",
            Self::Private => "private",
            Self::SharedAddressSpace => "shared address space (CGNAT)",
            Self::LinkLocal => "link-local",
            Self::UniqueLocal => "unique local",
            Self::Multicast => "multicast",
            Self::Reserved => "reserved",
            Self::Documentation => "documentation or benchmarking",
        }
    }
}

impl fmt::Display for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The special-purpose range `ip` lies in, or `None` for a globally reachable address.
///
/// IPv6 addresses that carry an IPv4 address — IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:aabb:ccdd::/48` — are judged by the
/// IPv4 address they carry, since that is where the packets end up.
pub fn classify(ip: IpAddr) -> Option<Reserved> {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Reserved> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => Reserved::Unspecified,
        (127, _, _) => Reserved::Loopback,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => Reserved::Private,
        (100, 64..=127, _) => Reserved::SharedAddressSpace,
        (169, 254, _) => Reserved::LinkLocal,
        (224..=239, _, _) => Reserved::Multicast,
        (240..=255, _, _) | (192, 0, 0) | (192, 88, 99) => Reserved::Reserved,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) | (198, 18..=19, _) => Reserved::Documentation,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Reserved> {
    if ip.is_unspecified() {
        return Some(Reserved::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Reserved::Loopback);
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let s = ip.segments();
    Some(match s {
        [0x0100, 0, 0, 0, ..] => Reserved::Reserved,
        [0x0064, 0xff9b, 0x0001, ..] => Reserved::Reserved,
        [0x2001, 0x0000..=0x01ff, ..] => Reserved::Reserved,
        [0x2001, 0x0db8, ..] => Reserved::Documentation,
        [0x3fff, 0x0000..=0x0fff, ..] => Reserved::Documentation,
        [0x5f00, ..] => Reserved::Reserved,
        [0xfc00..=0xfdff, ..] | [0xfec0..=0xfeff, ..] => Reserved::UniqueLocal,
        [0xfe80..=0xfebf, ..] => Reserved::LinkLocal,
        [0xff00..=0xffff, ..] => Reserved::Multicast,
        _ => return None,
    })
}

/// The IPv4 address an IPv6 address carries, for the forms that route to it.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // IPv4-mapped, IPv4-compatible (deprecated, ::/96) and NAT64's well-known prefix.
        [0, 0, 0, 0, 0, 0xffff, hi, lo]
        | [0, 0, 0, 0, 0, 0, hi, lo]
        | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

/// Which addresses outbound connections may reach: by default only globally reachable ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow_private: bool,
    allowed: BTreeSet<IpAddr>,
}

impl AddressPolicy {
    /// Only globally reachable addresses (the default).
    pub fn public_only() -> Self {
        Self::default()
    }

    /// Every address, reserved ranges included: for tests and labs where the peers sit on
    /// loopback or a private network.
    ///
    /// Security: a client can then make the server read any internal service it can reach.
    pub fn dangerous_allow_private() -> Self {
        Self {
            allow_private: true,
            ..Self::default()
        }
    }

    /// The same policy, also allowing the one address `ip` whatever its range.
    #[must_use]
    pub fn allowing(mut self, ip: IpAddr) -> Self {
        self.allowed.insert(ip);
        self
    }

    /// Whether reserved ranges are allowed.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// `Ok` when `ip` may be connected to; otherwise the range that refuses it.
    ///
    /// # Errors
    /// The [`Reserved`] range of a refused address.
    pub fn check(&self, ip: IpAddr) -> Result<(), Reserved> {
        if self.allow_private || self.allowed.contains(&ip) {
            return Ok(());
        }
        classify(ip).map_or(Ok(()), Err)
    }
}

/// Why [`connect`] did not give a connection. The addresses are for the operator's log; a
/// client is told only the kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The address is in a range the policy refuses.
    #[error("{peer} is a {range} address, which outbound connections do not reach")]
    Refused {
        /// The address refused.
        peer: SocketAddr,
        /// Its range.
        range: Reserved,
    },
    /// The connection could not be made.
    #[error("could not connect to {peer}: {source}")]
    Io {
        /// The address tried.
        peer: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// Opens a TCP connection to `peer` if `policy` allows it, and checks the address the stream
/// is actually connected to as well, so nothing on the way (a proxy setting, an address
/// translated by the operating system) can land it on a refused one.
///
/// # Errors
/// [`ConnectError::Refused`] before any packet is sent, or after connecting when the stream's
/// peer is refused; [`ConnectError::Io`] when the connection fails.
pub async fn connect(policy: &AddressPolicy, peer: SocketAddr) -> Result<TcpStream, ConnectError> {
    let refused = |peer: SocketAddr| {
        policy
            .check(peer.ip())
            .map_err(|range| ConnectError::Refused { peer, range })
    };
    refused(peer)?;
    let stream = TcpStream::connect(peer)
        .await
        .map_err(|source| ConnectError::Io { peer, source })?;
    let actual = stream
        .peer_addr()
        .map_err(|source| ConnectError::Io { peer, source })?;
    refused(actual)?;
    Ok(stream)
}

/// Why [`connect_host`] did not give a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The name did not resolve, or resolved to nothing.
    #[error("{0} does not resolve")]
    Unresolved(String),
    /// Every address it resolved to is in a range the policy refuses.
    #[error("{host} is at a {range} address, which outbound connections do not reach")]
    Refused {
        /// The name asked for.
        host: String,
        /// The range of the (last) address refused.
        range: Reserved,
    },
    /// No allowed address took the connection.
    #[error(transparent)]
    Failed(ConnectError),
    /// Resolving and connecting took longer than allowed.
    #[error("could not connect to {0} in time")]
    TimedOut(String),
}

/// Resolves `host` and opens a TCP connection to the first of its addresses on `port` that
/// `policy` allows and that answers, all before `deadline`; each address goes through
/// [`connect`].
///
/// # Errors
/// [`HostError`]: why no connection was made.
pub async fn connect_host(
    policy: &AddressPolicy,
    host: &str,
    port: u16,
    deadline: tokio::time::Instant,
) -> Result<TcpStream, HostError> {
    let attempt = async {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| HostError::Unresolved(host.to_owned()))?
            .collect();
        let mut last = HostError::Unresolved(host.to_owned());
        for peer in addresses {
            match connect(policy, peer).await {
                Ok(stream) => return Ok(stream),
                // A refusal is what to report only when no address was even tried.
                Err(ConnectError::Refused { range, .. }) => {
                    if !matches!(last, HostError::Failed(_)) {
                        last = HostError::Refused {
                            host: host.to_owned(),
                            range,
                        };
                    }
                }
                Err(e) => last = HostError::Failed(e),
            }
        }
        Err(last)
    };
    tokio::time::timeout_at(deadline, attempt)
        .await
        .map_err(|_| HostError::TimedOut(format!("{host}:{port}")))?
}

/// A TLS client configuration for outbound connections that verifies the peer's certificate
/// and name against the system's roots and `own_roots` (DER: certmint's own CAs, so a mail
/// relay or directory holding a certificate certmint issued is trusted).
///
/// # Errors
/// The provider's error when it offers no safe protocol version (never with aws-lc-rs).
pub(crate) fn tls_client_config(
    own_roots: &[Vec<u8>],
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots.add_parsable_certificates(
        own_roots
            .iter()
            .map(|der| rustls::pki_types::CertificateDer::from(der.clone())),
    );
    Ok(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// Resolves names for an HTTP client, keeping only the addresses `policy` allows. (An URL
/// naming an address is not resolved: its caller checks that address itself.)
#[derive(Debug, Clone)]
pub(crate) struct PolicyResolver(AddressPolicy);

impl PolicyResolver {
    /// A resolver held to `policy`.
    pub(crate) fn new(policy: AddressPolicy) -> Self {
        Self(policy)
    }
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| policy.check(a.ip()).is_ok())
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{host} resolves only to addresses outbound connections do not reach"
                )
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// What a failed HTTP request reports, with its causes and without the URL's query;
/// `timeout` is the limit a request that timed out ran into.
pub(crate) fn describe(e: reqwest::Error, timeout: std::time::Duration) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        format!("no answer within {timeout:?}")
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn every_special_range_is_classified() {
        use Reserved as R;
        let cases: &[(&str, Option<Reserved>)] = &[
            // IPv4
            ("0.0.0.0", Some(R::Unspecified)),
            ("0.1.2.3", Some(R::Unspecified)),
            ("127.0.0.1", Some(R::Loopback)),
            ("127.0.0.2", Some(R::Loopback)),
            ("127.255.255.255", Some(R::Loopback)),
            ("10.0.0.1", Some(R::Private)),
            ("10.255.255.255", Some(R::Private)),
            ("172.16.0.1", Some(R::Private)),
            ("172.31.255.255", Some(R::Private)),
            ("172.15.255.255", None),
            ("172.32.0.0", None),
            ("192.168.1.1", Some(R::Private)),
            ("100.64.0.1", Some(R::SharedAddressSpace)),
            ("100.127.255.255", Some(R::SharedAddressSpace)),
            ("100.63.255.255", None),
            ("100.128.0.0", None),
            ("169.254.169.254", Some(R::LinkLocal)),
            ("224.0.0.1", Some(R::Multicast)),
            ("239.255.255.255", Some(R::Multicast)),
            ("240.0.0.1", Some(R::Reserved)),
            ("255.255.255.255", Some(R::Reserved)),
            ("192.0.0.8", Some(R::Reserved)),
            ("192.88.99.1", Some(R::Reserved)),
            ("192.0.2.1", Some(R::Documentation)),
            ("198.51.100.7", Some(R::Documentation)),
            ("203.0.113.9", Some(R::Documentation)),
            ("198.18.0.1", Some(R::Documentation)),
            ("198.19.255.255", Some(R::Documentation)),
            ("198.20.0.0", None),
            ("8.8.8.8", None),
            ("93.184.216.34", None),
            ("192.0.1.1", None),
            // IPv6
            ("::", Some(R::Unspecified)),
            ("::1", Some(R::Loopback)),
            ("fe80::1", Some(R::LinkLocal)),
            ("febf::1", Some(R::LinkLocal)),
            ("fc00::1", Some(R::UniqueLocal)),
            ("fd12:3456::1", Some(R::UniqueLocal)),
            ("fec0::1", Some(R::UniqueLocal)),
            ("ff02::1", Some(R::Multicast)),
            ("100::1", Some(R::Reserved)),
            ("2001::1", Some(R::Reserved)),
            ("2001:1ff::1", Some(R::Reserved)),
            ("64:ff9b:1::1", Some(R::Reserved)),
            ("5f00::1", Some(R::Reserved)),
            ("2001:db8::1", Some(R::Documentation)),
            ("3fff::1", Some(R::Documentation)),
            ("2001:4860:4860::8888", None),
            ("2606:4700::1111", None),
            // IPv6 carrying IPv4: judged by the IPv4 address.
            ("::ffff:127.0.0.1", Some(R::Loopback)),
            ("::ffff:169.254.169.254", Some(R::LinkLocal)),
            ("::ffff:10.1.2.3", Some(R::Private)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(R::Loopback)),
            ("::10.0.0.1", Some(R::Private)),
            ("::8.8.8.8", None),
            ("64:ff9b::127.0.0.1", Some(R::Loopback)),
            ("64:ff9b::a9fe:a9fe", Some(R::LinkLocal)),
            ("64:ff9b::8.8.8.8", None),
            ("2002:7f00:1::1", Some(R::Loopback)),
            ("2002:c0a8:0101::", Some(R::Private)),
            ("2002:0808:0808::1", None),
        ];
        for (text, expected) in cases {
            assert_eq!(classify(ip(text)), *expected, "{text}");
        }
    }

    #[test]
    fn the_policy_refuses_reserved_ranges_unless_allowed() {
        let public = AddressPolicy::public_only();
        assert_eq!(public.check(ip("127.0.0.1")), Err(Reserved::Loopback));
        assert_eq!(public.check(ip("8.8.8.8")), Ok(()));
        assert!(!public.allows_private());
        assert_eq!(AddressPolicy::default(), public);

        let one = AddressPolicy::public_only().allowing(ip("127.0.0.1"));
        assert_eq!(one.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(one.check(ip("127.0.0.2")), Err(Reserved::Loopback));
        assert_eq!(one.check(ip("::ffff:127.0.0.1")), Err(Reserved::Loopback));

        let lab = AddressPolicy::dangerous_allow_private();
        assert!(lab.allows_private());
        for text in ["127.0.0.2", "10.0.0.1", "::1", "169.254.169.254"] {
            assert_eq!(lab.check(ip(text)), Ok(()), "{text}");
        }
    }

    #[tokio::test]
    async fn connect_refuses_a_reserved_address_unless_it_is_allowed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("test listener");
        let peer = listener.local_addr().expect("test address");
        let refused = connect(&AddressPolicy::public_only(), peer).await;
        assert!(
            matches!(
                refused,
                Err(ConnectError::Refused {
                    range: Reserved::Loopback,
                    ..
                })
            ),
            "{refused:?}"
        );
        let allowed = AddressPolicy::public_only().allowing(peer.ip());
        assert!(connect(&allowed, peer).await.is_ok());
    }
}
