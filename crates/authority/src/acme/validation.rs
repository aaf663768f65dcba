//! Challenge validation: http-01, dns-01 and tls-alpn-01 against the real network.
//!
//! Trust boundary: everything that comes back from the network — DNS answers, HTTP status,
//! headers and bodies, TLS certificates — is the applicant's input. It is bounded (time, size,
//! redirects), never unwrapped, and turned into a [`Problem`] that says what was wrong.
//!
//! Problem types, used the same way by the three challenges:
//! * `incorrectResponse` — an answer came back and it is wrong (body, TXT value, certificate);
//! * `unauthorized` — the answer is absent (HTTP status other than 200, no TXT record);
//! * `connection` — the target could not be reached or the conversation broke off, and
//!   redirects this validator will not follow (another scheme or port, or more than ten): like
//!   Boulder, it reports that it could not get to the resource the applicant pointed at;
//! * `dns` — a name could not be resolved or the resolver failed;
//! * `tls` — the tls-alpn-01 handshake failed or did not negotiate `acme-tls/1`;
//! * `malformed` — the challenge cannot apply to the identifier (dns-01 for an IP address,
//!   RFC 8738 §7; http-01 or tls-alpn-01 for a wildcard) or the token is not base64url.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper::header::{CONTENT_LENGTH, HOST, LOCATION, USER_AGENT};
use hyper_util::rt::TokioIo;
use pki::acme::{AlpnIdentifier, check_tls_alpn_certificate};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls13_signature_with_raw_key};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;
use url::{Position, Url};

use super::{ChallengeType, Identifier, Problem, ProblemType};
use crate::Error;

/// The ALPN protocol of tls-alpn-01 (RFC 8737 §6.2).
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// The largest http-01 body read; anything longer is an incorrect response.
const MAX_BODY: usize = 8 * 1024;
/// Redirects followed for one http-01 request.
const MAX_REDIRECTS: usize = 10;
/// Sent on http-01 requests, so operators can recognise the validator in their logs.
const USER_AGENT_VALUE: &str = concat!("certmint-va/", env!("CARGO_PKG_VERSION"));

/// Where and how challenges are checked. Operators set these in TOML as `[acme.validation]`.
#[derive(Debug, Clone)]
pub struct ValidationConfig {
    /// The port http-01 requests go to, and the only port redirects may go to (default 80).
    pub http_port: u16,
    /// The port tls-alpn-01 handshakes go to (default 443).
    pub tls_port: u16,
    /// The DNS server to ask (UDP, TCP when a reply is truncated); `None` uses the system's
    /// resolvers from `/etc/resolv.conf`.
    pub dns_resolver: Option<SocketAddr>,
    /// Static name → address mappings, consulted before DNS for http-01 and tls-alpn-01.
    pub hosts: BTreeMap<String, IpAddr>,
    /// The time one attempt may take, redirects and DNS included (default 10 s).
    pub timeout: Duration,
    /// Attempts in all before a challenge fails (default 3).
    pub attempts: u32,
    /// The delay before the first retry, doubling after each (default 500 ms).
    pub backoff: Duration,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            http_port: 80,
            tls_port: 443,
            dns_resolver: None,
            hosts: BTreeMap::new(),
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// Checks challenges against the network. Built once per server; cheap to share (`Arc`) and
/// safe to call concurrently from many tasks: the DNS resolver and the TLS configuration are
/// made once here, and each validation opens only its own connections.
pub struct Validator {
    config: ValidationConfig,
    resolver: TokioResolver,
    tls: TlsConnector,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// A validator for `config`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a zero port, timeout or attempt count, or when `dns_resolver` is
    /// `None` and the system's resolver configuration cannot be read; [`Error::Internal`] when
    /// the resolver or TLS configuration cannot be built.
    pub fn new(mut config: ValidationConfig) -> Result<Self, Error> {
        if config.http_port == 0 || config.tls_port == 0 {
            return Err(Error::Invalid("acme.validation ports must not be 0".into()));
        }
        if config.attempts == 0 {
            return Err(Error::Invalid(
                "acme.validation.attempts must be at least 1".into(),
            ));
        }
        if config.timeout.is_zero() {
            return Err(Error::Invalid(
                "acme.validation.timeout must be more than 0".into(),
            ));
        }
        config.hosts = config
            .hosts
            .into_iter()
            .map(|(name, ip)| (normalise_name(&name), ip))
            .collect();
        let resolver = resolver(&config)?;
        let tls = TlsConnector::from(tls_config()?);
        Ok(Self {
            config,
            resolver,
            tls,
        })
    }

    /// Checks one challenge: `Ok(())` when the response is right; otherwise the problem to record
    /// on the challenge, with `identifier` set.
    ///
    /// Each attempt is bounded by the configured timeout; a failed attempt is retried after the
    /// backoff (doubling) until the configured number of attempts is spent, and the last
    /// attempt's problem is returned. A challenge that cannot apply to the identifier fails at
    /// once with `malformed`, without touching the network.
    pub async fn validate(
        &self,
        kind: ChallengeType,
        identifier: &Identifier,
        token: &str,
        key_authorization: &str,
    ) -> Result<(), Problem> {
        let about =
            |failure: Failure| Problem::new(failure.kind, failure.detail).about(identifier.clone());
        check_applicable(kind, identifier, token).map_err(about)?;
        let mut delay = self.config.backoff;
        let mut attempt = 1;
        loop {
            let deadline = Instant::now() + self.config.timeout;
            let outcome = timeout_at(
                deadline,
                self.attempt(kind, identifier, token, key_authorization, deadline),
            )
            .await
            .unwrap_or_else(|_| Err(self.timed_out(kind)));
            match outcome {
                Ok(()) => return Ok(()),
                Err(failure) if attempt >= self.config.attempts => return Err(about(failure)),
                Err(failure) => {
                    // Not the detail: it can quote the response body and the token.
                    tracing::debug!(
                        challenge = kind.as_str(),
                        %identifier,
                        attempt,
                        problem = ?failure.kind,
                        "challenge validation attempt failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(
        &self,
        kind: ChallengeType,
        identifier: &Identifier,
        token: &str,
        key_authorization: &str,
        deadline: Instant,
    ) -> Result<(), Failure> {
        match kind {
            ChallengeType::Http01 => {
                self.http01(identifier, token, key_authorization, deadline)
                    .await
            }
            ChallengeType::Dns01 => self.dns01(identifier, key_authorization).await,
            ChallengeType::TlsAlpn01 => {
                self.tls_alpn01(identifier, key_authorization, deadline)
                    .await
            }
        }
    }

    fn timed_out(&self, kind: ChallengeType) -> Failure {
        let kind_of_problem = match kind {
            ChallengeType::Dns01 => ProblemType::Dns,
            ChallengeType::Http01 | ChallengeType::TlsAlpn01 => ProblemType::Connection,
        };
        Failure::new(
            kind_of_problem,
            format!(
                "{} validation timed out after {}",
                kind.as_str(),
                seconds(self.config.timeout)
            ),
        )
    }

    // ---- http-01 (RFC 8555 §8.3) ----

    async fn http01(
        &self,
        identifier: &Identifier,
        token: &str,
        key_authorization: &str,
        deadline: Instant,
    ) -> Result<(), Failure> {
        let host = match identifier {
            Identifier::Dns(name) => name.clone(),
            Identifier::Ip(IpAddr::V4(ip)) => ip.to_string(),
            Identifier::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        };
        let first = format!(
            "http://{host}:{}/.well-known/acme-challenge/{token}",
            self.config.http_port
        );
        let mut url = Url::parse(&first).map_err(|e| {
            Failure::new(
                ProblemType::Malformed,
                format!("cannot form the URL {first}: {e}"),
            )
        })?;
        let mut redirects = 0;
        loop {
            match self.fetch(&url, deadline).await? {
                Fetched::Body(body) => return check_body(&url, &body, key_authorization),
                Fetched::Redirect(next) => {
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return Err(Failure::new(
                            ProblemType::Connection,
                            format!(
                                "too many redirects: {url} redirected again after {MAX_REDIRECTS}"
                            ),
                        ));
                    }
                    self.check_redirect(&url, &next)?;
                    url = next;
                }
            }
        }
    }

    /// Redirects are followed only to `http://` on the configured port, like the first request.
    fn check_redirect(&self, from: &Url, to: &Url) -> Result<(), Failure> {
        let port = self.config.http_port;
        if to.scheme() != "http" {
            return Err(Failure::new(
                ProblemType::Connection,
                format!(
                    "{from} redirected to {to}, which is not followed: only http:// URLs on port \
                     {port} are"
                ),
            ));
        }
        if to.port_or_known_default() != Some(port) {
            return Err(Failure::new(
                ProblemType::Connection,
                format!(
                    "{from} redirected to {to}, which is not followed: only port {port} is \
                     used for http-01"
                ),
            ));
        }
        Ok(())
    }

    /// One GET: a redirect target, or a 200 body of at most [`MAX_BODY`] bytes.
    async fn fetch(&self, url: &Url, deadline: Instant) -> Result<Fetched, Failure> {
        let connection = |detail: String| Failure::new(ProblemType::Connection, detail);
        let addresses = match url.host() {
            Some(url::Host::Domain(name)) => self.addresses(name, deadline).await?,
            Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            None => return Err(connection(format!("{url} has no host"))),
        };
        let port = url.port_or_known_default().unwrap_or(self.config.http_port);
        let (stream, peer) = connect(&addresses, port, deadline).await?;
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(64 * 1024)
            .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| connection(format!("HTTP connection to {peer} failed: {e}")))?;
        let request = hyper::Request::get(&url[Position::BeforePath..Position::AfterQuery])
            .header(HOST, &url[Position::BeforeHost..Position::AfterPort])
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Empty::new())
            .map_err(|e| connection(format!("cannot form the request for {url}: {e}")))?;
        let exchange = async {
            let response = within(deadline, sender.send_request(request), || {
                connection(format!(
                    "timed out waiting for the response from {url} ({peer})"
                ))
            })
            .await?
            .map_err(|e| connection(format!("fetching {url} from {peer} failed: {e}")))?;
            read_response(url, peer, response, deadline).await
        };
        // Drive the connection in this task alongside the exchange, so nothing outlives it.
        let mut conn = std::pin::pin!(conn);
        let mut exchange = std::pin::pin!(exchange);
        tokio::select! {
            biased;
            outcome = &mut exchange => outcome,
            _ = &mut conn => exchange.await,
        }
    }

    /// The addresses of `name`: the static hosts first, then A and AAAA records.
    async fn addresses(&self, name: &str, deadline: Instant) -> Result<Vec<IpAddr>, Failure> {
        let name = normalise_name(name);
        if let Some(ip) = self.config.hosts.get(&name) {
            return Ok(vec![*ip]);
        }
        let dns = |detail: String| Failure::new(ProblemType::Dns, detail);
        let lookup = within(
            deadline,
            self.resolver.lookup_ip(format!("{name}.")),
            || dns(format!("timed out looking up A/AAAA records for {name}")),
        )
        .await?
        .map_err(|e| match e {
            e if e.is_no_records_found() => dns(format!("no A or AAAA records for {name}")),
            e => dns(format!(
                "looking up A/AAAA records for {name} failed: {}",
                dns_error(&e)
            )),
        })?;
        let addresses: Vec<IpAddr> = lookup.iter().collect();
        if addresses.is_empty() {
            return Err(dns(format!("no A or AAAA records for {name}")));
        }
        Ok(addresses)
    }

    // ---- dns-01 (RFC 8555 §8.4) ----

    async fn dns01(&self, identifier: &Identifier, key_authorization: &str) -> Result<(), Failure> {
        let Identifier::Dns(name) = identifier else {
            return Err(not_for_ip());
        };
        let base = name.strip_prefix("*.").unwrap_or(name);
        let record = format!("_acme-challenge.{}", normalise_name(base));
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(key_authorization.as_bytes()));
        let lookup = match self.resolver.txt_lookup(format!("{record}.")).await {
            Ok(lookup) => lookup,
            Err(e) if e.is_no_records_found() => {
                return Err(Failure::new(
                    ProblemType::Unauthorized,
                    format!("no TXT record at {record}"),
                ));
            }
            Err(e) => {
                return Err(Failure::new(
                    ProblemType::Dns,
                    format!(
                        "looking up TXT records at {record} failed: {}",
                        dns_error(&e)
                    ),
                ));
            }
        };
        let values: Vec<Vec<u8>> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => Some(txt.txt_data.concat()),
                _ => None,
            })
            .collect();
        if values.is_empty() {
            return Err(Failure::new(
                ProblemType::Unauthorized,
                format!("no TXT record at {record}"),
            ));
        }
        if values.iter().any(|value| value == expected.as_bytes()) {
            return Ok(());
        }
        let found: Vec<String> = values.iter().take(3).map(|v| excerpt(v)).collect();
        Err(Failure::new(
            ProblemType::IncorrectResponse,
            format!(
                "no TXT record at {record} holds the expected value {expected:?}; found {} \
                 record(s): {}",
                values.len(),
                found.join(", ")
            ),
        ))
    }

    // ---- tls-alpn-01 (RFC 8737, RFC 8738 §6) ----

    async fn tls_alpn01(
        &self,
        identifier: &Identifier,
        key_authorization: &str,
        deadline: Instant,
    ) -> Result<(), Failure> {
        let (addresses, sni, expected) = match identifier {
            Identifier::Dns(name) => (
                self.addresses(name, deadline).await?,
                normalise_name(name),
                AlpnIdentifier::Dns(name),
            ),
            Identifier::Ip(ip) => (vec![*ip], reverse_dns_name(*ip), AlpnIdentifier::Ip(*ip)),
        };
        let server_name = ServerName::try_from(sni.clone()).map_err(|e| {
            Failure::new(
                ProblemType::Malformed,
                format!("{sni} cannot be sent as a TLS server name: {e}"),
            )
        })?;
        let (stream, peer) = connect(&addresses, self.config.tls_port, deadline).await?;
        let tls = within(deadline, self.tls.connect(server_name, stream), || {
            Failure::new(
                ProblemType::Tls,
                format!("timed out in the TLS handshake with {peer} (SNI {sni})"),
            )
        })
        .await?
        .map_err(|e| {
            Failure::new(
                ProblemType::Tls,
                format!("the TLS handshake with {peer} (SNI {sni}) failed: {e}"),
            )
        })?;
        let (_, session) = tls.get_ref();
        if session.alpn_protocol() != Some(ACME_TLS_ALPN) {
            let got = match session.alpn_protocol() {
                Some(other) => format!("negotiated {}", excerpt(other)),
                None => "negotiated no protocol".to_owned(),
            };
            return Err(Failure::new(
                ProblemType::Tls,
                format!("{peer} (SNI {sni}) {got}; tls-alpn-01 needs ALPN \"acme-tls/1\""),
            ));
        }
        let certificate = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or_else(|| {
                Failure::new(ProblemType::Tls, format!("{peer} presented no certificate"))
            })?;
        check_tls_alpn_certificate(certificate.as_ref(), expected, key_authorization).map_err(
            |reason| {
                Failure::new(
                    ProblemType::IncorrectResponse,
                    format!(
                        "the certificate {peer} presented for {sni} is not a valid tls-alpn-01 \
                         response: {reason}"
                    ),
                )
            },
        )
    }
}

/// Why an attempt failed: the type and detail of the problem [`Validator::validate`] returns.
#[derive(Debug)]
struct Failure {
    kind: ProblemType,
    detail: String,
}

impl Failure {
    fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

/// What one http-01 request gave.
enum Fetched {
    /// A 200 response's body.
    Body(Vec<u8>),
    /// A redirect to this URL (not yet checked).
    Redirect(Url),
}

/// Reads the head and, for a 200, the body (at most [`MAX_BODY`] bytes) of `response`.
async fn read_response(
    url: &Url,
    peer: SocketAddr,
    response: hyper::Response<hyper::body::Incoming>,
    deadline: Instant,
) -> Result<Fetched, Failure> {
    let status = response.status();
    if matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    ) {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                Failure::new(
                    ProblemType::Connection,
                    format!("{url} answered {status} without a readable Location header"),
                )
            })?;
        let next = url.join(location).map_err(|e| {
            Failure::new(
                ProblemType::Connection,
                format!(
                    "{url} redirected to {}, which is not a valid URL: {e}",
                    excerpt(location.as_bytes())
                ),
            )
        })?;
        return Ok(Fetched::Redirect(next));
    }
    if status != StatusCode::OK {
        return Err(Failure::new(
            ProblemType::Unauthorized,
            format!("{url} ({peer}) answered {status}; http-01 needs 200 OK"),
        ));
    }
    let too_large = || {
        Failure::new(
            ProblemType::IncorrectResponse,
            format!("the response from {url} is larger than {MAX_BODY} bytes"),
        )
    };
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut body = response.into_body();
    let mut content = Vec::new();
    loop {
        let frame = within(deadline, body.frame(), || {
            Failure::new(
                ProblemType::Connection,
                format!("timed out reading the response body from {url} ({peer})"),
            )
        })
        .await?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| {
            Failure::new(
                ProblemType::Connection,
                format!("reading the response body from {url} ({peer}) failed: {e}"),
            )
        })?;
        if let Some(data) = frame.data_ref() {
            if content.len() + data.len() > MAX_BODY {
                return Err(too_large());
            }
            content.extend_from_slice(data);
        }
    }
    Ok(Fetched::Body(content))
}

/// The body must be the key authorization; trailing whitespace is ignored (RFC 8555 §8.3).
fn check_body(url: &Url, body: &[u8], key_authorization: &str) -> Result<(), Failure> {
    if body.trim_ascii_end() == key_authorization.as_bytes() {
        Ok(())
    } else {
        Err(Failure::new(
            ProblemType::IncorrectResponse,
            format!(
                "the body of {url} is not the key authorization: expected {key_authorization:?}, \
                 got {}",
                excerpt(body)
            ),
        ))
    }
}

/// Connects to `port` on the first reachable of `addresses`: the first IPv6 and then the first
/// IPv4 address, as Boulder does, giving the first half of the remaining time when both exist.
async fn connect(
    addresses: &[IpAddr],
    port: u16,
    deadline: Instant,
) -> Result<(TcpStream, SocketAddr), Failure> {
    let candidates: Vec<IpAddr> = [
        addresses.iter().find(|ip| ip.is_ipv6()),
        addresses.iter().find(|ip| ip.is_ipv4()),
    ]
    .into_iter()
    .flatten()
    .copied()
    .collect();
    let mut failure = Failure::new(ProblemType::Connection, "no address to connect to");
    for (index, ip) in candidates.iter().enumerate() {
        let peer = SocketAddr::new(*ip, port);
        let until = if index + 1 < candidates.len() {
            let now = Instant::now();
            now + deadline.saturating_duration_since(now) / 2
        } else {
            deadline
        };
        failure = match timeout_at(until, TcpStream::connect(peer)).await {
            Ok(Ok(stream)) => {
                // Latency only; a failure here changes nothing about the validation.
                let _ = stream.set_nodelay(true);
                return Ok((stream, peer));
            }
            Ok(Err(e)) => Failure::new(
                ProblemType::Connection,
                format!("could not connect to {peer}: {e}"),
            ),
            Err(_) => Failure::new(
                ProblemType::Connection,
                format!("timed out connecting to {peer}"),
            ),
        };
    }
    Err(failure)
}

/// Awaits `future` until `deadline`; past it, the problem `on_timeout` makes.
async fn within<T>(
    deadline: Instant,
    future: impl Future<Output = T>,
    on_timeout: impl FnOnce() -> Failure,
) -> Result<T, Failure> {
    timeout_at(deadline, future).await.map_err(|_| on_timeout())
}

/// Refuses, before any network traffic, a challenge that cannot apply to `identifier`.
fn check_applicable(
    kind: ChallengeType,
    identifier: &Identifier,
    token: &str,
) -> Result<(), Failure> {
    let wildcard = matches!(identifier, Identifier::Dns(name) if name.starts_with("*."));
    match kind {
        ChallengeType::Dns01 if matches!(identifier, Identifier::Ip(_)) => Err(not_for_ip()),
        ChallengeType::Http01 | ChallengeType::TlsAlpn01 if wildcard => Err(Failure::new(
            ProblemType::Malformed,
            format!(
                "{} cannot validate the wildcard {identifier}; only dns-01 can",
                kind.as_str()
            ),
        )),
        ChallengeType::Http01
            if token.is_empty()
                || !token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Err(Failure::new(
                ProblemType::Malformed,
                "the challenge token is not base64url",
            ))
        }
        _ => Ok(()),
    }
}

fn not_for_ip() -> Failure {
    Failure::new(
        ProblemType::Malformed,
        "dns-01 cannot validate an IP address identifier (RFC 8738 §7)",
    )
}

/// The resolver: the configured server over UDP and TCP, or the system's configuration.
/// Nothing is cached, so a retry sees a record the applicant has just provisioned, and the
/// system hosts file is not read (the configured `hosts` are the only static names).
fn resolver(config: &ValidationConfig) -> Result<TokioResolver, Error> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match config.dns_resolver {
        Some(server) => {
            let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
            for connection in &mut name_server.connections {
                connection.port = server.port();
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![name_server]),
                provider,
            )
        }
        None => TokioResolver::builder(provider).map_err(|e| {
            Error::Invalid(format!(
                "cannot read the system's DNS configuration (set acme.validation.dns_resolver): {e}"
            ))
        })?,
    };
    let options = builder.options_mut();
    options.timeout = config.timeout;
    options.cache_size = 0;
    options.positive_max_ttl = Some(Duration::ZERO);
    options.negative_max_ttl = Some(Duration::ZERO);
    options.use_hosts_file = ResolveHosts::Never;
    builder
        .build()
        .map_err(|e| Error::Internal(format!("cannot build the DNS resolver: {e}")))
}

/// The tls-alpn-01 client configuration: TLS 1.2 and 1.3, ALPN `acme-tls/1` only, no session
/// resumption, and [`DangerousAcceptAnyChain`] in place of certificate path validation.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(DangerousAcceptAnyChain {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| {
            Error::Internal(format!(
                "cannot build the tls-alpn-01 TLS configuration: {e}"
            ))
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Accepts any certificate chain — the tls-alpn-01 certificate is self-signed by design, and its
/// content is checked afterwards by [`check_tls_alpn_certificate`] — but still verifies the
/// handshake signatures, so the peer must hold the private key of the certificate it presents.
///
/// Security: only for tls-alpn-01. Used anywhere else this would accept any server.
#[derive(Debug)]
struct DangerousAcceptAnyChain {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for DangerousAcceptAnyChain {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // As rustls' `verify_tls12_signature`, which tries every algorithm the scheme maps to,
        // but with the key taken from the certificate by x509-parser (see `spki`).
        let candidates = self
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algorithms)| *algorithms)
            .ok_or(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
        let spki = spki(cert)?;
        let key = webpki::RawPublicKeyEntity::try_from(&spki)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if candidates.iter().any(|algorithm| {
            key.verify_signature(*algorithm, message, dss.signature())
                .is_ok()
        }) {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::BadSignature,
            ))
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature_with_raw_key(message, &spki(cert)?, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The public key of a tls-alpn-01 certificate. rustls' own helpers parse the certificate with
/// webpki, which refuses the critical acmeIdentifier extension every such certificate carries.
fn spki(cert: &CertificateDer<'_>) -> Result<SubjectPublicKeyInfoDer<'static>, rustls::Error> {
    pki::acme::subject_public_key_info(cert.as_ref())
        .map(|spki| SubjectPublicKeyInfoDer::from(spki.to_vec()))
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))
}

/// The reverse-mapping name of `ip`, sent as SNI for an IP identifier (RFC 8738 §6), e.g.
/// `1.2.0.192.in-addr.arpa`, or nibble by nibble under `ip6.arpa`.
fn reverse_dns_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, c, d] = ip.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(ip) => {
            let mut name = String::with_capacity(72);
            for byte in ip.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

/// Lower case, without a trailing dot.
fn normalise_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A resolver error without the noise of the query's debug form.
fn dns_error(error: &NetError) -> String {
    match error {
        NetError::Timeout => "the DNS server did not answer in time".to_owned(),
        other => other.to_string(),
    }
}

/// At most 100 bytes of `bytes`, quoted and escaped, for a problem detail.
fn excerpt(bytes: &[u8]) -> String {
    const SHOWN: usize = 100;
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN)]).into_owned();
    if bytes.len() > SHOWN {
        format!("{shown:?} (of {} bytes)", bytes.len())
    } else {
        format!("{shown:?}")
    }
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::{HashMap, HashSet};
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::Mutex;

    use hickory_resolver::proto::op::{Message, ResponseCode};
    use hickory_resolver::proto::rr::Record;
    use hickory_resolver::proto::rr::rdata::{A, TXT};
    use http_body_util::Full;
    use hyper::{Request, Response};
    use rcgen::{CertificateParams, CustomExtension, KeyPair, SanType};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, UdpSocket};

    const TOKEN: &str = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
    const KEY_AUTHORIZATION: &str =
        "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ";
    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    type Outcome = Result<(), Problem>;

    fn dns(name: &str) -> Identifier {
        Identifier::Dns(name.to_owned())
    }

    /// A configuration for loopback tests: the test names map to 127.0.0.1, one attempt, and a
    /// DNS server address where nothing answers (tests that use DNS set their own).
    fn config(http_port: u16, tls_port: u16) -> ValidationConfig {
        ValidationConfig {
            http_port,
            tls_port,
            dns_resolver: Some(SocketAddr::new(LOCALHOST, 9)),
            hosts: [("example.test", LOCALHOST), ("Other.Test.", LOCALHOST)]
                .into_iter()
                .map(|(name, ip)| (name.to_owned(), ip))
                .collect(),
            timeout: Duration::from_secs(3),
            attempts: 1,
            backoff: Duration::from_millis(20),
        }
    }

    fn validator(config: ValidationConfig) -> Validator {
        Validator::new(config).expect("test validator")
    }

    #[track_caller]
    fn assert_problem(outcome: &Outcome, kind: ProblemType, detail: &str, identifier: &Identifier) {
        match outcome {
            Ok(()) => panic!("expected a {kind:?} problem, got success"),
            Err(problem) => {
                assert_eq!(problem.kind, kind, "{problem}");
                assert!(problem.detail.contains(detail), "{problem}");
                assert_eq!(problem.identifier.as_deref(), Some(identifier), "{problem}");
            }
        }
    }

    // ---- an HTTP server ----

    /// Requests an [`http_server`] saw: (Host header, path).
    #[derive(Default)]
    struct Seen(Mutex<Vec<(String, String)>>);

    impl Seen {
        fn requests(&self) -> Vec<(String, String)> {
            self.0.lock().map(|seen| seen.clone()).unwrap_or_default()
        }
    }

    type Handler = dyn Fn(usize, &str) -> Response<Full<Bytes>> + Send + Sync;

    /// Serves HTTP/1.1 on `listener`; `handler` gets the request's number (from 0) and path.
    fn http_server(
        listener: TcpListener,
        handler: impl Fn(usize, &str) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Arc<Seen> {
        let seen = Arc::new(Seen::default());
        let handler: Arc<Handler> = Arc::new(handler);
        let state = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, seen) = (handler.clone(), state.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<_>| {
                        let host = request
                            .headers()
                            .get(HOST)
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let path = request.uri().path().to_owned();
                        let number = {
                            let mut seen = seen.0.lock().expect("test lock");
                            seen.push((host, path.clone()));
                            seen.len() - 1
                        };
                        let response = handler(number, &path);
                        async move { Ok::<_, std::convert::Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        seen
    }

    async fn bind_loopback() -> (TcpListener, u16) {
        let listener = TcpListener::bind((LOCALHOST, 0))
            .await
            .expect("test listener");
        let port = listener.local_addr().expect("test address").port();
        (listener, port)
    }

    fn respond(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(body.into()));
        *response.status_mut() = StatusCode::from_u16(status).expect("test status");
        response
    }

    fn redirect(status: u16, location: &str) -> Response<Full<Bytes>> {
        let mut response = respond(status, "");
        response
            .headers_mut()
            .insert(LOCATION, location.parse().expect("test location"));
        response
    }

    const CHALLENGE_PATH: &str = concat!(
        "/.well-known/acme-challenge/",
        "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
    );

    fn answer_challenge(_: usize, path: &str) -> Response<Full<Bytes>> {
        if path == CHALLENGE_PATH {
            respond(200, format!("{KEY_AUTHORIZATION} \r\n"))
        } else {
            respond(404, "not found")
        }
    }

    async fn http01(validator: &Validator, identifier: &Identifier) -> Outcome {
        validator
            .validate(ChallengeType::Http01, identifier, TOKEN, KEY_AUTHORIZATION)
            .await
    }

    // ---- http-01 ----

    #[tokio::test]
    async fn http01_passes_with_the_key_authorization_and_sends_the_name_as_host() {
        let (listener, port) = bind_loopback().await;
        let seen = http_server(listener, answer_challenge);
        let validator = validator(config(port, 1));
        assert_eq!(http01(&validator, &dns("example.test")).await, Ok(()));
        assert_eq!(
            seen.requests(),
            vec![(format!("example.test:{port}"), CHALLENGE_PATH.to_owned())]
        );
    }

    #[tokio::test]
    async fn http01_passes_for_ip_identifiers() {
        let (listener, port) = bind_loopback().await;
        let seen = http_server(listener, answer_challenge);
        let validator = validator(config(port, 1));
        assert_eq!(http01(&validator, &Identifier::Ip(LOCALHOST)).await, Ok(()));
        assert_eq!(seen.requests()[0].0, format!("127.0.0.1:{port}"));

        // IPv6 in brackets, where the machine has ::1.
        let Ok(listener6) = TcpListener::bind((Ipv6Addr::LOCALHOST, port)).await else {
            return;
        };
        let seen6 = http_server(listener6, answer_challenge);
        let v6 = Identifier::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(http01(&validator, &v6).await, Ok(()));
        assert_eq!(seen6.requests()[0].0, format!("[::1]:{port}"));
    }

    #[tokio::test]
    async fn http01_resolves_names_through_the_configured_dns_server() {
        let (listener, port) = bind_loopback().await;
        http_server(listener, answer_challenge);
        let zone = Zone::default().with("web.test.", RData::A(A(Ipv4Addr::LOCALHOST)));
        let mut config = config(port, 1);
        config.dns_resolver = Some(dns_server(zone).await);
        let validator = validator(config);
        assert_eq!(http01(&validator, &dns("web.test")).await, Ok(()));
        let missing = dns("missing.test");
        assert_problem(
            &http01(&validator, &missing).await,
            ProblemType::Dns,
            "no A or AAAA records for missing.test",
            &missing,
        );
    }

    #[tokio::test]
    async fn http01_refuses_a_wrong_body() {
        let (listener, port) = bind_loopback().await;
        http_server(listener, |_, _| respond(200, "something.else"));
        let identifier = dns("example.test");
        let outcome = http01(&validator(config(port, 1)), &identifier).await;
        assert_problem(
            &outcome,
            ProblemType::IncorrectResponse,
            "\"something.else\"",
            &identifier,
        );
    }

    #[tokio::test]
    async fn http01_treats_a_404_as_unauthorized() {
        let (listener, port) = bind_loopback().await;
        http_server(listener, |_, _| respond(404, "nope"));
        let identifier = dns("example.test");
        let outcome = http01(&validator(config(port, 1)), &identifier).await;
        assert_problem(
            &outcome,
            ProblemType::Unauthorized,
            "404 Not Found",
            &identifier,
        );
    }

    #[tokio::test]
    async fn http01_follows_redirects_on_the_same_port() {
        let (listener, port) = bind_loopback().await;
        let seen = http_server(listener, move |_, path| match path {
            "/final" => respond(200, KEY_AUTHORIZATION),
            "/relative" => redirect(307, "/final"),
            _ => redirect(302, &format!("http://other.test:{port}/relative")),
        });
        let validator = validator(config(port, 1));
        assert_eq!(http01(&validator, &dns("example.test")).await, Ok(()));
        let hosts_and_paths = seen.requests();
        assert_eq!(
            hosts_and_paths,
            vec![
                (format!("example.test:{port}"), CHALLENGE_PATH.to_owned()),
                (format!("other.test:{port}"), "/relative".to_owned()),
                (format!("other.test:{port}"), "/final".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn http01_refuses_redirects_to_another_port_or_scheme() {
        let (elsewhere, other_port) = bind_loopback().await;
        let elsewhere_seen = http_server(elsewhere, answer_challenge);
        let identifier = dns("example.test");
        for (scheme, same_port, detail) in [
            ("http", false, "only port"),
            ("https", true, "only http:// URLs"),
            ("ftp", true, "only http:// URLs"),
        ] {
            let (listener, port) = bind_loopback().await;
            let target_port = if same_port { port } else { other_port };
            let location = format!("{scheme}://example.test:{target_port}{CHALLENGE_PATH}");
            http_server(listener, move |_, _| redirect(301, &location));
            let outcome = http01(&validator(config(port, 1)), &identifier).await;
            assert_problem(&outcome, ProblemType::Connection, detail, &identifier);
        }
        assert!(elsewhere_seen.requests().is_empty());
    }

    #[tokio::test]
    async fn http01_gives_up_after_ten_redirects() {
        let (listener, port) = bind_loopback().await;
        let seen = http_server(listener, |n, _| redirect(302, &format!("/hop{n}")));
        let identifier = dns("example.test");
        let outcome = http01(&validator(config(port, 1)), &identifier).await;
        assert_problem(
            &outcome,
            ProblemType::Connection,
            "too many redirects",
            &identifier,
        );
        assert_eq!(seen.requests().len(), 1 + MAX_REDIRECTS);
    }

    #[tokio::test]
    async fn http01_refuses_an_oversized_body() {
        let (listener, port) = bind_loopback().await;
        http_server(listener, |_, _| {
            respond(200, format!("{KEY_AUTHORIZATION}{}", " ".repeat(MAX_BODY)))
        });
        let identifier = dns("example.test");
        let outcome = http01(&validator(config(port, 1)), &identifier).await;
        assert_problem(
            &outcome,
            ProblemType::IncorrectResponse,
            "larger than 8192 bytes",
            &identifier,
        );
    }

    /// A body without a length that never ends: the validator must stop reading at the cap
    /// rather than wait for the end (which would be a timeout, a `connection` problem).
    #[tokio::test]
    async fn http01_stops_reading_an_endless_body() {
        let (listener, port) = bind_loopback().await;
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 1024];
                    let _ = stream.read(&mut request).await;
                    let head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = [b'a'; 1024];
                    while stream.write_all(&chunk).await.is_ok() {}
                });
            }
        });
        let identifier = dns("example.test");
        let mut config = config(port, 1);
        config.timeout = Duration::from_secs(5);
        let started = std::time::Instant::now();
        let outcome = http01(&validator(config), &identifier).await;
        assert_problem(
            &outcome,
            ProblemType::IncorrectResponse,
            "larger than",
            &identifier,
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn http01_reports_connection_refused_after_every_attempt() {
        let (listener, port) = bind_loopback().await;
        drop(listener);
        let mut config = config(port, 1);
        config.attempts = 3;
        config.backoff = Duration::from_millis(50);
        let identifier = dns("example.test");
        let started = std::time::Instant::now();
        let outcome = http01(&validator(config), &identifier).await;
        assert_problem(&outcome, ProblemType::Connection, "refused", &identifier);
        // Two waits between three attempts: 50 ms, then 100 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn http01_makes_exactly_the_configured_number_of_attempts() {
        let (listener, port) = bind_loopback().await;
        let seen = http_server(listener, |_, _| respond(404, ""));
        let mut config = config(port, 1);
        config.attempts = 3;
        let identifier = dns("example.test");
        let outcome = http01(&validator(config), &identifier).await;
        assert_problem(&outcome, ProblemType::Unauthorized, "404", &identifier);
        assert_eq!(seen.requests().len(), 3);
    }

    #[tokio::test]
    async fn http01_passes_when_the_second_attempt_is_right() {
        let (listener, port) = bind_loopback().await;
        let seen = http_server(listener, |n, path| match n {
            0 => respond(404, "not yet"),
            _ => answer_challenge(n, path),
        });
        let mut config = config(port, 1);
        config.attempts = 2;
        assert_eq!(
            http01(&validator(config), &dns("example.test")).await,
            Ok(())
        );
        assert_eq!(seen.requests().len(), 2);
    }

    #[tokio::test]
    async fn http01_times_out_a_silent_server() {
        let (listener, port) = bind_loopback().await;
        // Accepts connections (the kernel does) but never answers.
        let _keep = listener;
        let mut config = config(port, 1);
        config.timeout = Duration::from_millis(300);
        let identifier = dns("example.test");
        let outcome = http01(&validator(config), &identifier).await;
        assert_problem(&outcome, ProblemType::Connection, "timed out", &identifier);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_validations_run_concurrently() {
        let (listener, port) = bind_loopback().await;
        http_server(listener, answer_challenge);
        let validator = Arc::new(validator(config(port, 1)));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let validator = validator.clone();
                tokio::spawn(async move { http01(&validator, &dns("example.test")).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("test task"), Ok(()));
        }
    }

    // ---- refusals before the network ----

    #[tokio::test]
    async fn challenges_that_cannot_apply_are_malformed_at_once() {
        let validator = validator(config(1, 1));
        let ip = Identifier::Ip(LOCALHOST);
        let wildcard = dns("*.example.test");
        let cases = [
            (ChallengeType::Dns01, &ip, TOKEN, "RFC 8738"),
            (ChallengeType::Http01, &wildcard, TOKEN, "wildcard"),
            (ChallengeType::TlsAlpn01, &wildcard, TOKEN, "wildcard"),
            (ChallengeType::Http01, &ip, "../../etc/passwd", "base64url"),
            (ChallengeType::Http01, &ip, "", "base64url"),
        ];
        for (kind, identifier, token, detail) in cases {
            let outcome = validator
                .validate(kind, identifier, token, KEY_AUTHORIZATION)
                .await;
            assert_problem(&outcome, ProblemType::Malformed, detail, identifier);
        }
    }

    #[test]
    fn bad_configurations_are_refused() {
        for change in [
            (|c: &mut ValidationConfig| c.attempts = 0) as fn(&mut ValidationConfig),
            |c| c.timeout = Duration::ZERO,
            |c| c.http_port = 0,
            |c| c.tls_port = 0,
        ] {
            let mut config = config(80, 443);
            change(&mut config);
            assert!(matches!(Validator::new(config), Err(Error::Invalid(_))));
        }
        let defaults = ValidationConfig::default();
        assert_eq!((defaults.http_port, defaults.tls_port), (80, 443));
        assert_eq!(
            (defaults.attempts, defaults.timeout),
            (3, Duration::from_secs(10))
        );
        assert_eq!(defaults.backoff, Duration::from_millis(500));
    }

    #[test]
    fn the_default_configuration_reads_the_system_resolvers() {
        if std::path::Path::new("/etc/resolv.conf").exists() {
            assert!(Validator::new(ValidationConfig::default()).is_ok());
        }
    }

    // ---- a DNS server ----

    /// Names (lower case, with the final dot) and their records; everything else is NXDOMAIN.
    #[derive(Default, Clone)]
    struct Zone {
        records: HashMap<String, Vec<RData>>,
        servfail: HashSet<String>,
        /// Answered over UDP with the TC bit and no records; the full answer only over TCP.
        truncated: HashSet<String>,
    }

    impl Zone {
        fn with(mut self, name: &str, rdata: RData) -> Self {
            self.records.entry(name.to_owned()).or_default().push(rdata);
            self
        }
    }

    fn txt(strings: &[&str]) -> RData {
        RData::TXT(TXT::new(strings.iter().map(|s| (*s).to_owned()).collect()))
    }

    fn dns_answer(zone: &Zone, request: &[u8], over_udp: bool) -> Option<Vec<u8>> {
        let request = Message::from_vec(request).ok()?;
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.recursion_available = true;
        response.metadata.authoritative = true;
        response.add_queries(request.queries.clone());
        let query = request.queries.first()?;
        let name = query.name().to_ascii().to_ascii_lowercase();
        if zone.servfail.contains(&name) {
            response.metadata.response_code = ResponseCode::ServFail;
        } else if over_udp && zone.truncated.contains(&name) {
            response.metadata.truncation = true;
        } else if let Some(records) = zone.records.get(&name) {
            for rdata in records
                .iter()
                .filter(|r| r.record_type() == query.query_type())
            {
                response.add_answer(Record::from_rdata(query.name().clone(), 0, rdata.clone()));
            }
        } else {
            response.metadata.response_code = ResponseCode::NXDomain;
        }
        response.to_vec().ok()
    }

    /// A DNS server for `zone` on a loopback port, over UDP and TCP.
    async fn dns_server(zone: Zone) -> SocketAddr {
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind((LOCALHOST, 0)).await.expect("test socket");
            let address = udp.local_addr().expect("test address");
            if let Ok(tcp) = TcpListener::bind(address).await {
                break (udp, tcp);
            }
        };
        let address = udp.local_addr().expect("test address");
        let udp_zone = zone.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            while let Ok((length, from)) = udp.recv_from(&mut buffer).await {
                if let Some(answer) = dns_answer(&udp_zone, &buffer[..length], true) {
                    let _ = udp.send_to(&answer, from).await;
                }
            }
        });
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = tcp.accept().await {
                let zone = zone.clone();
                tokio::spawn(async move {
                    while let Ok(length) = stream.read_u16().await {
                        let mut request = vec![0u8; usize::from(length)];
                        if stream.read_exact(&mut request).await.is_err() {
                            return;
                        }
                        let Some(answer) = dns_answer(&zone, &request, false) else {
                            return;
                        };
                        let Ok(length) = u16::try_from(answer.len()) else {
                            return;
                        };
                        if stream.write_u16(length).await.is_err()
                            || stream.write_all(&answer).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        address
    }

    // ---- dns-01 ----

    fn expected_txt() -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(KEY_AUTHORIZATION.as_bytes()))
    }

    async fn dns_validator(zone: Zone) -> Validator {
        let mut config = config(1, 1);
        config.dns_resolver = Some(dns_server(zone).await);
        validator(config)
    }

    async fn dns01(validator: &Validator, identifier: &Identifier) -> Outcome {
        validator
            .validate(ChallengeType::Dns01, identifier, TOKEN, KEY_AUTHORIZATION)
            .await
    }

    #[tokio::test]
    async fn dns01_passes_when_any_txt_record_matches() {
        let expected = expected_txt();
        let (head, tail) = expected.split_at(10);
        let zone = Zone::default()
            .with("_acme-challenge.one.test.", txt(&["unrelated"]))
            .with("_acme-challenge.one.test.", txt(&[&expected]))
            // Strings of one record are concatenated.
            .with("_acme-challenge.split.test.", txt(&[head, tail]));
        let validator = dns_validator(zone).await;
        assert_eq!(dns01(&validator, &dns("one.test")).await, Ok(()));
        assert_eq!(dns01(&validator, &dns("split.test")).await, Ok(()));
    }

    #[tokio::test]
    async fn dns01_validates_a_wildcard_at_its_base_name() {
        let zone = Zone::default().with("_acme-challenge.wild.test.", txt(&[&expected_txt()]));
        let validator = dns_validator(zone).await;
        assert_eq!(dns01(&validator, &dns("*.wild.test")).await, Ok(()));
    }

    #[tokio::test]
    async fn dns01_refuses_a_wrong_value() {
        let zone = Zone::default().with("_acme-challenge.wrong.test.", txt(&["not-the-digest"]));
        let validator = dns_validator(zone).await;
        let identifier = dns("wrong.test");
        assert_problem(
            &dns01(&validator, &identifier).await,
            ProblemType::IncorrectResponse,
            "\"not-the-digest\"",
            &identifier,
        );
    }

    #[tokio::test]
    async fn dns01_without_a_record_is_unauthorized() {
        let zone = Zone::default()
            // The name exists, with an A record but no TXT (NODATA).
            .with(
                "_acme-challenge.nodata.test.",
                RData::A(A(Ipv4Addr::LOCALHOST)),
            );
        let validator = dns_validator(zone).await;
        for name in ["absent.test", "nodata.test"] {
            let identifier = dns(name);
            assert_problem(
                &dns01(&validator, &identifier).await,
                ProblemType::Unauthorized,
                &format!("no TXT record at _acme-challenge.{name}"),
                &identifier,
            );
        }
    }

    #[tokio::test]
    async fn dns01_reports_resolver_failures_as_dns() {
        let mut zone = Zone::default();
        zone.servfail
            .insert("_acme-challenge.broken.test.".to_owned());
        let servfail = dns_validator(zone).await;
        let identifier = dns("broken.test");
        assert_problem(
            &dns01(&servfail, &identifier).await,
            ProblemType::Dns,
            "_acme-challenge.broken.test",
            &identifier,
        );

        // A resolver that never answers.
        let silent = UdpSocket::bind((LOCALHOST, 0)).await.expect("test socket");
        let mut config = config(1, 1);
        config.dns_resolver = Some(silent.local_addr().expect("test address"));
        config.timeout = Duration::from_millis(300);
        let outcome = dns01(&validator(config), &identifier).await;
        assert_problem(&outcome, ProblemType::Dns, "", &identifier);
    }

    #[tokio::test]
    async fn dns01_retries_over_tcp_when_the_udp_answer_is_truncated() {
        let mut zone = Zone::default().with("_acme-challenge.big.test.", txt(&[&expected_txt()]));
        zone.truncated
            .insert("_acme-challenge.big.test.".to_owned());
        let validator = dns_validator(zone).await;
        assert_eq!(dns01(&validator, &dns("big.test")).await, Ok(()));
    }

    // ---- tls-alpn-01 ----

    struct TlsResponder {
        port: u16,
        /// The SNI of each handshake.
        server_names: Arc<Mutex<Vec<Option<String>>>>,
    }

    /// A TLS server presenting a certificate for `san` whose acmeIdentifier holds the digest
    /// of `key_authorization`, offering `alpn` and the given TLS versions.
    async fn tls_responder(
        san: SanType,
        key_authorization: &str,
        alpn: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> TlsResponder {
        tls_responder_signing(san, key_authorization, alpn, versions, false).await
    }

    /// As [`tls_responder`]; with `foreign_key`, the handshake is signed with a key other than
    /// the certificate's.
    async fn tls_responder_signing(
        san: SanType,
        key_authorization: &str,
        alpn: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
        foreign_key: bool,
    ) -> TlsResponder {
        let key = KeyPair::generate().expect("test key");
        let handshake_key = if foreign_key {
            KeyPair::generate().expect("test key")
        } else {
            KeyPair::try_from(key.serialize_der()).expect("test key")
        };
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![san];
        params.custom_extensions = vec![CustomExtension::new_acme_identifier(&Sha256::digest(
            key_authorization.as_bytes(),
        ))];
        let cert = params.self_signed(&key).expect("test certificate");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        // Not `with_single_cert`: it parses the certificate with webpki, which refuses the
        // critical acmeIdentifier extension.
        let signing_key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                handshake_key.serialize_der(),
            )))
            .expect("test signing key");
        let server_names = Arc::new(Mutex::new(Vec::new()));
        let resolver = RecordingResolver {
            key: Arc::new(rustls::sign::CertifiedKey::new(
                vec![cert.der().clone()],
                signing_key,
            )),
            server_names: server_names.clone(),
        };
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("test versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let (listener, port) = bind_loopback().await;
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = acceptor.accept(stream).await;
                });
            }
        });
        TlsResponder { port, server_names }
    }

    /// Presents one certificate and records the SNI of each ClientHello (before the client
    /// can finish its handshake, so tests need not wait for the server).
    #[derive(Debug)]
    struct RecordingResolver {
        key: Arc<rustls::sign::CertifiedKey>,
        server_names: Arc<Mutex<Vec<Option<String>>>>,
    }

    impl rustls::server::ResolvesServerCert for RecordingResolver {
        fn resolve(
            &self,
            hello: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            let sni = hello.server_name().map(str::to_owned);
            self.server_names.lock().ok()?.push(sni);
            Some(self.key.clone())
        }
    }

    fn tls13() -> Vec<&'static rustls::SupportedProtocolVersion> {
        vec![&rustls::version::TLS13]
    }

    async fn tls_alpn01(responder: &TlsResponder, identifier: &Identifier) -> Outcome {
        validator(config(1, responder.port))
            .validate(
                ChallengeType::TlsAlpn01,
                identifier,
                TOKEN,
                KEY_AUTHORIZATION,
            )
            .await
    }

    fn example_test_san() -> SanType {
        SanType::DnsName("example.test".try_into().expect("test name"))
    }

    #[tokio::test]
    async fn tls_alpn01_passes_with_the_right_certificate() {
        for versions in [tls13(), vec![&rustls::version::TLS12]] {
            let responder = tls_responder(
                example_test_san(),
                KEY_AUTHORIZATION,
                &[ACME_TLS_ALPN],
                &versions,
            )
            .await;
            assert_eq!(tls_alpn01(&responder, &dns("example.test")).await, Ok(()));
            assert_eq!(
                *responder.server_names.lock().expect("test lock"),
                vec![Some("example.test".to_owned())]
            );
        }
    }

    #[tokio::test]
    async fn tls_alpn01_passes_for_an_ip_identifier_with_the_reverse_name_as_sni() {
        let responder = tls_responder(
            SanType::IpAddress(LOCALHOST),
            KEY_AUTHORIZATION,
            &[ACME_TLS_ALPN],
            &tls13(),
        )
        .await;
        assert_eq!(
            tls_alpn01(&responder, &Identifier::Ip(LOCALHOST)).await,
            Ok(())
        );
        assert_eq!(
            *responder.server_names.lock().expect("test lock"),
            vec![Some("1.0.0.127.in-addr.arpa".to_owned())]
        );
    }

    #[tokio::test]
    async fn tls_alpn01_refuses_a_wrong_digest_or_name() {
        let identifier = dns("example.test");
        let responder = tls_responder(
            example_test_san(),
            "other.authorization",
            &[ACME_TLS_ALPN],
            &tls13(),
        )
        .await;
        assert_problem(
            &tls_alpn01(&responder, &identifier).await,
            ProblemType::IncorrectResponse,
            "SHA-256",
            &identifier,
        );
        let wrong_name = SanType::DnsName("other.test".try_into().expect("test name"));
        let responder =
            tls_responder(wrong_name, KEY_AUTHORIZATION, &[ACME_TLS_ALPN], &tls13()).await;
        assert_problem(
            &tls_alpn01(&responder, &identifier).await,
            ProblemType::IncorrectResponse,
            "other.test",
            &identifier,
        );
    }

    #[tokio::test]
    async fn tls_alpn01_needs_the_acme_alpn() {
        let identifier = dns("example.test");
        // No ALPN at all: the handshake succeeds without a protocol.
        let responder = tls_responder(example_test_san(), KEY_AUTHORIZATION, &[], &tls13()).await;
        assert_problem(
            &tls_alpn01(&responder, &identifier).await,
            ProblemType::Tls,
            "negotiated no protocol",
            &identifier,
        );
        // Only other protocols: the server refuses the handshake.
        let responder =
            tls_responder(example_test_san(), KEY_AUTHORIZATION, &[b"h2"], &tls13()).await;
        assert_problem(
            &tls_alpn01(&responder, &identifier).await,
            ProblemType::Tls,
            "handshake",
            &identifier,
        );
    }

    /// The chain is not checked, but the handshake signature is: a responder that shows the
    /// right certificate without holding its key fails.
    #[tokio::test]
    async fn tls_alpn01_checks_the_handshake_signature() {
        let identifier = dns("example.test");
        for versions in [tls13(), vec![&rustls::version::TLS12]] {
            let responder = tls_responder_signing(
                example_test_san(),
                KEY_AUTHORIZATION,
                &[ACME_TLS_ALPN],
                &versions,
                true,
            )
            .await;
            assert_problem(
                &tls_alpn01(&responder, &identifier).await,
                ProblemType::Tls,
                "BadSignature",
                &identifier,
            );
        }
    }

    #[tokio::test]
    async fn tls_alpn01_reports_a_plain_tcp_server_as_tls() {
        let (listener, port) = bind_loopback().await;
        http_server(listener, answer_challenge);
        let identifier = dns("example.test");
        let outcome = validator(config(1, port))
            .validate(
                ChallengeType::TlsAlpn01,
                &identifier,
                TOKEN,
                KEY_AUTHORIZATION,
            )
            .await;
        assert_problem(&outcome, ProblemType::Tls, "handshake", &identifier);
    }

    #[test]
    fn reverse_names_follow_rfc_8738() {
        assert_eq!(
            reverse_dns_name("192.0.2.1".parse().expect("test address")),
            "1.2.0.192.in-addr.arpa"
        );
        // The example of RFC 8738 §6.
        assert_eq!(
            reverse_dns_name("2001:db8::1".parse().expect("test address")),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
