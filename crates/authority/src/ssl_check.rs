//! The SSL check tool: a TLS handshake with a server someone names, to report the certificate
//! chain it presents — subject, issuer, expiry, names, whether the chain holds together.
//!
//! Trust boundary: the host and port come from an API caller, and everything the server sends
//! back is its own. The connection goes through [`outbound::connect`] under the configured
//! [`AddressPolicy`] (public addresses only unless a setting allows more), so the tool cannot
//! be pointed at the server's own network; the whole check is bounded in time, rustls bounds
//! the handshake messages it reads, and no more than [`MAX_CHAIN`] certificates are parsed.
//! Nothing is sent after the handshake, and a refusal never says which address was refused.

use std::net::SocketAddr;
use std::time::Duration;

use pki::inspect;
use rustls::pki_types::ServerName;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;

use crate::outbound::{self, AddressPolicy, ConnectError};
use crate::{Authority, Error, Permission, Principal, Result};

/// The longest a check may take, name resolution and handshake included.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Certificates of a presented chain that are read; real chains hold two to four.
pub const MAX_CHAIN: usize = 10;
/// Longest host name accepted (RFC 1035's limit on a name's text form).
const MAX_HOST_CHARS: usize = 253;

/// What a server presented in a TLS handshake.
#[derive(Debug, Clone)]
pub struct SslReport {
    /// The host name or address asked about.
    pub host: String,
    /// The port connected to.
    pub port: u16,
    /// `TLSv1.3` or `TLSv1.2`.
    pub protocol: String,
    /// The cipher suite negotiated, by its IANA name.
    pub cipher_suite: String,
    /// The server's certificate.
    pub certificate: inspect::Certificate,
    /// The certificates presented after it, in order (with it, at most [`MAX_CHAIN`]).
    pub chain: Vec<inspect::Certificate>,
    /// Whether the server certificate names the host (SANs, RFC 6125).
    pub host_matches: bool,
    /// Whether each certificate of the chain carries the signature of the next one and all
    /// are within their validity now. Whether the top of the chain is trusted is not judged.
    pub chain_valid: bool,
}

impl Authority {
    /// Where the SSL check tool may connect: public addresses only unless `policy` says
    /// otherwise. Set once, at start; without it the check uses public addresses only.
    ///
    /// # Errors
    /// [`Error::Conflict`] when it was set already.
    pub fn configure_ssl_check(&self, policy: AddressPolicy) -> Result<()> {
        self.ssl_check_policy
            .set(policy)
            .map_err(|_| Error::Conflict("the SSL check is already configured".into()))
    }

    /// Connects to `host:port`, completes a TLS handshake (with `host` as SNI when it is a
    /// name) and reports the chain presented, without trusting it.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:certificates`; [`Error::Invalid`] for an empty or
    /// overlong host, port 0, a name that does not resolve, only refused addresses (loopback,
    /// private and other non-public ranges, unless allowed), a failed connection or handshake,
    /// no certificate, or no answer within [`CHECK_TIMEOUT`].
    pub async fn check_ssl(
        &self,
        principal: &Principal,
        host: &str,
        port: u16,
    ) -> Result<SslReport> {
        principal.require(
            Permission::ReadCertificates,
            "checking a server's certificate",
        )?;
        let host = host.trim().trim_end_matches('.');
        if host.is_empty() || host.len() > MAX_HOST_CHARS || port == 0 {
            return Err(Error::Invalid(format!(
                "give a host of 1 to {MAX_HOST_CHARS} characters and a port from 1 to 65535"
            )));
        }
        let policy = self
            .ssl_check_policy
            .get()
            .cloned()
            .unwrap_or_else(AddressPolicy::public_only);
        let target = format!("{host}:{port}");
        let deadline = Instant::now() + CHECK_TIMEOUT;
        let timed_out =
            || Error::Invalid(format!("{target} did not answer within {CHECK_TIMEOUT:?}"));
        let addresses: Vec<SocketAddr> =
            timeout_at(deadline, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| timed_out())?
                .map_err(|_| Error::Invalid(format!("{host} does not resolve")))?
                .collect();
        let stream = connect(&policy, &addresses, &target, deadline).await?;
        let server_name = ServerName::try_from(host.to_owned()).map_err(|_| {
            Error::Invalid(format!("'{host}' is neither a host name nor an address"))
        })?;
        let tls = TlsConnector::from(crate::acme::validation::accept_any_chain(Vec::new())?);
        let tls = timeout_at(deadline, tls.connect(server_name, stream))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| {
                tracing::debug!(target, "SSL check handshake failed: {e}");
                Error::Invalid(format!("the TLS handshake with {target} failed"))
            })?;
        let (_, session) = tls.get_ref();
        let protocol = match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "unknown",
        };
        let cipher_suite = session
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown");
        let presented: Vec<Vec<u8>> = session
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .take(MAX_CHAIN)
            .map(|c| c.as_ref().to_vec())
            .collect();
        let (protocol, cipher_suite) = (protocol.to_owned(), cipher_suite.to_owned());
        // Nothing more is read from the server: close before the parsing work.
        drop(tls);
        let host = host.to_owned();
        let now = self.now();
        self.cpu
            .run(move || {
                let mut chain = presented
                    .iter()
                    .map(|der| inspect::Certificate::parse(der))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|_| {
                        Error::Invalid(format!(
                            "{target} presented a certificate that does not parse"
                        ))
                    })?
                    .into_iter();
                let Some(certificate) = chain.next() else {
                    return Err(Error::Invalid(format!("{target} presented no certificate")));
                };
                let chain: Vec<_> = chain.collect();
                let linked = std::iter::once(&certificate)
                    .chain(&chain)
                    .zip(&chain)
                    .all(|(child, issuer)| child.is_issued_by(issuer));
                let chain_valid = linked
                    && std::iter::once(&certificate)
                        .chain(&chain)
                        .all(|c| c.not_before <= now && now < c.not_after);
                let host_matches = certificate.names_host(&host);
                Ok(SslReport {
                    host,
                    port,
                    protocol,
                    cipher_suite,
                    certificate,
                    chain,
                    host_matches,
                    chain_valid,
                })
            })
            .await
    }
}

/// The first address of `addresses` that `policy` allows and that answers before `deadline`.
/// Refusals name no address: the caller learns only that the target is not reachable from
/// here, not where its name points.
async fn connect(
    policy: &AddressPolicy,
    addresses: &[SocketAddr],
    target: &str,
    deadline: Instant,
) -> Result<tokio::net::TcpStream> {
    let allowed: Vec<SocketAddr> = addresses
        .iter()
        .copied()
        .filter(|a| policy.check(a.ip()).is_ok())
        .collect();
    if allowed.is_empty() {
        return Err(Error::Invalid(format!(
            "{target} leads only to addresses the SSL check does not connect to (loopback, \
             private, link-local and other non-public ranges)"
        )));
    }
    for peer in allowed {
        match timeout_at(deadline, outbound::connect(policy, peer)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(ConnectError::Refused { .. })) => {}
            Ok(Err(e)) => tracing::debug!(target, "SSL check connection failed: {e}"),
            Err(_) => break,
        }
    }
    Err(Error::Invalid(format!("could not connect to {target}")))
}
