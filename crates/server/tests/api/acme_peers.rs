//! ACME test equipment: the peers a real ACME exchange needs besides our server.
//!
//! - [`DnsServer`], [`HttpResponder`] and [`TlsAlpnResponder`] answer dns-01, http-01 and
//!   tls-alpn-01 challenges (RFC 8555 §8.3–8.4, RFC 8737, RFC 8738) on 127.0.0.1, each on an
//!   ephemeral port and a thread of its own (so they answer whatever the test's runtime is doing),
//!   and stop when dropped.
//! - [`Certbot`] and [`Lego`] drive the real clients, each in temporary directories of its own;
//!   every run is bounded by [`TOOL_TIMEOUT`].
//!
//! A missing tool fails the test that needs it — `scripts/test` installs them — and never skips.
//! The self-tests at the bottom check the responders directly and the client drivers against
//! pebble, so that a broken piece of equipment fails here rather than inside an ACME test.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, ServerName, SubjectPublicKeyInfoDer, UnixTime,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use x509_parser::extensions::GeneralName;

/// How long one run of an ACME client may take before the test fails.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// The ALPN protocol of tls-alpn-01 (RFC 8737 §6.2).
pub const ACME_TLS_1: &[u8] = b"acme-tls/1";

/// The path prefix of http-01 resources (RFC 8555 §8.3).
const CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";

/// Largest DNS answer sent over UDP to a client that announced EDNS (RFC 6891; DNS flag day
/// 2020 size).
const EDNS_UDP_PAYLOAD: u16 = 1232;

/// A port on 127.0.0.1 that was free a moment ago, for tools that must be told their port
/// before they start (certbot's standalone server, a server's validator settings). Another
/// process may take it in between; tests accept that small race.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// The reverse-DNS name of `ip` (RFC 1035 §3.5, RFC 3596 §2.5), which a tls-alpn-01 validator
/// sends as SNI for an IP identifier (RFC 8738 §6).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::new();
            for byte in v6.octets().iter().rev() {
                let _ = write!(name, "{:x}.{:x}.", byte & 0x0f, byte >> 4);
            }
            name + "ip6.arpa"
        }
    }
}

/// Lower case and without the trailing dot: the key the responders file names under.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A responder's serving loop on a thread and runtime of its own; stopped and joined on drop.
struct Background {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Runs the future made by `serve` (on the new thread, so it may convert std sockets to
    /// tokio ones) until the handle is dropped.
    fn spawn<F, Fut>(name: &str, serve: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for a test responder");
                runtime.block_on(async move {
                    tokio::select! {
                        () = serve() => {}
                        _ = stopped => {}
                    }
                });
            })
            .unwrap_or_else(|e| panic!("a thread for the {name}: {e}"));
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// dns-01 (and name resolution for the validator)
// ---------------------------------------------------------------------------------------------

/// A tiny authoritative DNS server on 127.0.0.1 (UDP, and TCP on the same port).
///
/// It answers A/AAAA for names given to [`DnsServer::add_host`] and TXT from
/// [`DnsServer::set_txt`] plus the files in [`DnsServer::records_dir`]: the file named after
/// the lower-case FQDN without its trailing dot holds one TXT value per line, so a hook script
/// can publish records. Every answer copies the question and sets AA; an unknown name gets
/// NXDOMAIN, a known name without records of the asked type an empty NOERROR (both with a
/// zero-TTL SOA, so nothing caches the absence). TTLs are 0.
pub struct DnsServer {
    // Declared first so the serving thread stops before the records directory goes.
    _serving: Background,
    addr: SocketAddr,
    zone: Arc<Zone>,
    records: tempfile::TempDir,
}

struct Zone {
    dir: PathBuf,
    txt: Mutex<HashMap<String, Vec<String>>>,
    hosts: Mutex<HashMap<String, Vec<IpAddr>>>,
    queries: Mutex<Vec<(String, RecordType)>>,
}

impl DnsServer {
    /// Starts the server on an ephemeral port of 127.0.0.1.
    pub fn start() -> Self {
        let records = tempfile::tempdir().expect("DNS server: a records directory");
        let zone = Arc::new(Zone {
            dir: records.path().to_path_buf(),
            txt: Mutex::default(),
            hosts: Mutex::default(),
            queries: Mutex::default(),
        });
        let (udp, tcp) = bind_udp_and_tcp();
        let addr = udp.local_addr().expect("DNS server: its address");
        let serving_zone = zone.clone();
        let _serving = Background::spawn("DNS server", move || serve_dns(serving_zone, udp, tcp));
        Self {
            _serving,
            addr,
            zone,
            records,
        }
    }

    /// Where the server listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory of TXT record files (see the type's documentation).
    pub fn records_dir(&self) -> &Path {
        self.records.path()
    }

    /// Replaces the in-memory TXT values of `name` (one record each); no values removes them.
    pub fn set_txt(&self, name: &str, values: &[&str]) {
        let mut txt = lock(&self.zone.txt);
        if values.is_empty() {
            txt.remove(&normalize(name));
        } else {
            txt.insert(
                normalize(name),
                values.iter().map(|v| (*v).to_owned()).collect(),
            );
        }
    }

    /// Makes `name` resolve to `ip` (A for IPv4, AAAA for IPv6), besides earlier addresses.
    pub fn add_host(&self, name: &str, ip: IpAddr) {
        let mut hosts = lock(&self.zone.hosts);
        let addresses = hosts.entry(normalize(name)).or_default();
        if !addresses.contains(&ip) {
            addresses.push(ip);
        }
    }

    /// Every question asked so far, as (normalized name, type).
    pub fn queries(&self) -> Vec<(String, RecordType)> {
        lock(&self.zone.queries).clone()
    }
}

/// A UDP socket and a TCP listener on the same ephemeral port of 127.0.0.1.
fn bind_udp_and_tcp() -> (std::net::UdpSocket, std::net::TcpListener) {
    for _ in 0..20 {
        let udp = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("DNS server: bind UDP on 127.0.0.1");
        let port = udp.local_addr().expect("DNS server: UDP address").port();
        if let Ok(tcp) = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            udp.set_nonblocking(true)
                .expect("DNS server: non-blocking UDP");
            tcp.set_nonblocking(true)
                .expect("DNS server: non-blocking TCP");
            return (udp, tcp);
        }
    }
    panic!("DNS server: no port of 127.0.0.1 was free for both UDP and TCP in 20 tries")
}

async fn serve_dns(zone: Arc<Zone>, udp: std::net::UdpSocket, tcp: std::net::TcpListener) {
    let udp = tokio::net::UdpSocket::from_std(udp).expect("DNS server: tokio UDP socket");
    let tcp = tokio::net::TcpListener::from_std(tcp).expect("DNS server: tokio TCP listener");
    let udp_zone = zone.clone();
    let over_udp = async move {
        let mut buffer = vec![0; 65_535];
        loop {
            // Errors here are ICMP leftovers of earlier answers; the socket stays usable.
            let Ok((len, peer)) = udp.recv_from(&mut buffer).await else {
                continue;
            };
            if let Some(answer) = udp_zone.answer(&buffer[..len], true) {
                let _ = udp.send_to(&answer, peer).await;
            }
        }
    };
    let over_tcp = async move {
        loop {
            match tcp.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_dns_tcp(zone.clone(), stream));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    };
    tokio::join!(over_udp, over_tcp);
}

/// DNS over TCP: each message is preceded by its length in two bytes (RFC 1035 §4.2.2).
async fn serve_dns_tcp(zone: Arc<Zone>, mut stream: tokio::net::TcpStream) {
    loop {
        let Ok(len) = stream.read_u16().await else {
            return;
        };
        let mut request = vec![0; usize::from(len)];
        if stream.read_exact(&mut request).await.is_err() {
            return;
        }
        let Some(answer) = zone.answer(&request, false) else {
            return;
        };
        let Ok(answer_len) = u16::try_from(answer.len()) else {
            return;
        };
        if stream.write_u16(answer_len).await.is_err() || stream.write_all(&answer).await.is_err() {
            return;
        }
    }
}

impl Zone {
    /// The wire answer to the wire `request`, or nothing for what is not a query.
    fn answer(&self, request: &[u8], over_udp: bool) -> Option<Vec<u8>> {
        let request = Message::from_vec(request).ok()?;
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata.authoritative = true;
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.add_queries(request.queries.iter().cloned());
        let mut udp_limit = 512;
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_UDP_PAYLOAD);
            response.set_edns(edns);
            udp_limit = request.max_payload().clamp(512, EDNS_UDP_PAYLOAD).into();
        }
        match (request.metadata.op_code, request.queries.as_slice()) {
            (OpCode::Query, [query]) => self.resolve(query, &mut response),
            (OpCode::Query, _) => response.metadata.response_code = ResponseCode::FormErr,
            _ => response.metadata.response_code = ResponseCode::NotImp,
        }
        let wire = response.to_vec().ok()?;
        if over_udp && wire.len() > udp_limit {
            return response.truncate().to_vec().ok();
        }
        Some(wire)
    }

    fn resolve(&self, query: &Query, response: &mut Message) {
        let owner = query.name().clone();
        let name = normalize(&owner.to_ascii());
        lock(&self.queries).push((name.clone(), query.query_type()));
        let txt = self.txt_values(&name);
        let hosts = lock(&self.hosts).get(&name).cloned();
        if txt.is_none() && hosts.is_none() {
            response.metadata.response_code = ResponseCode::NXDomain;
            response.add_authority(no_data_soa(&owner));
            return;
        }
        let hosts = hosts.unwrap_or_default();
        let data: Vec<RData> = match query.query_type() {
            RecordType::A => hosts
                .iter()
                .filter_map(|ip| match ip {
                    IpAddr::V4(v4) => Some(RData::A(A(*v4))),
                    IpAddr::V6(_) => None,
                })
                .collect(),
            RecordType::AAAA => hosts
                .iter()
                .filter_map(|ip| match ip {
                    IpAddr::V6(v6) => Some(RData::AAAA(AAAA(*v6))),
                    IpAddr::V4(_) => None,
                })
                .collect(),
            // A character-string holds at most 255 bytes (RFC 1035 §3.3); longer values are
            // split over several strings of one record (RFC 7208 §3.3 style).
            RecordType::TXT => txt
                .unwrap_or_default()
                .iter()
                .map(|value| RData::TXT(TXT::from_bytes(value.as_bytes().chunks(255).collect())))
                .collect(),
            _ => Vec::new(),
        };
        if data.is_empty() {
            response.add_authority(no_data_soa(&owner));
        } else {
            response.add_answers(
                data.into_iter()
                    .map(|rdata| Record::from_rdata(owner.clone(), 0, rdata)),
            );
        }
    }

    /// The TXT values of `name` from memory and from its record file; `None` when neither
    /// knows the name.
    fn txt_values(&self, name: &str) -> Option<Vec<String>> {
        let mut values = lock(&self.txt).get(name).cloned();
        // Only plain names map to files: nothing may climb out of the directory.
        let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\']);
        if plain && let Ok(text) = std::fs::read_to_string(self.dir.join(name)) {
            values.get_or_insert_default().extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .map(str::to_owned),
            );
        }
        values
    }
}

/// A zero-TTL, zero-minimum SOA for negative answers, so resolvers do not cache them
/// (RFC 2308 §5).
fn no_data_soa(owner: &Name) -> Record {
    let host = |name: &str| Name::from_ascii(name).expect("a valid SOA name");
    Record::from_rdata(
        owner.clone(),
        0,
        RData::SOA(SOA::new(
            host("ns.dns-server.test."),
            host("hostmaster.dns-server.test."),
            1,
            60,
            60,
            60,
            0,
        )),
    )
}

// ---------------------------------------------------------------------------------------------
// http-01
// ---------------------------------------------------------------------------------------------

/// An http-01 responder on 127.0.0.1: `GET /.well-known/acme-challenge/{token}` answers the key
/// authorization set for the token; everything else is 404 (405 for other methods).
pub struct HttpResponder {
    _serving: Background,
    port: u16,
    state: Arc<HttpState>,
}

#[derive(Default)]
struct HttpState {
    tokens: Mutex<HashMap<String, String>>,
    requests: Mutex<Vec<HttpRequest>>,
}

/// One request an [`HttpResponder`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    /// The Host header, empty when there was none.
    pub host: String,
    pub path: String,
}

impl HttpResponder {
    /// Starts the responder on an ephemeral port of 127.0.0.1.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("HTTP responder: bind on 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("HTTP responder: non-blocking listener");
        let port = listener
            .local_addr()
            .expect("HTTP responder: address")
            .port();
        let state = Arc::new(HttpState::default());
        let serving_state = state.clone();
        let _serving = Background::spawn("HTTP responder", move || async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .expect("HTTP responder: tokio listener");
            let app = axum::Router::new()
                .fallback(http_challenge)
                .with_state(serving_state);
            let _ = axum::serve(listener, app).await;
        });
        Self {
            _serving,
            port,
            state,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves `key_authorization` for `token` from now on.
    pub fn set(&self, token: &str, key_authorization: &str) {
        lock(&self.state.tokens).insert(token.to_owned(), key_authorization.to_owned());
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<HttpRequest> {
        lock(&self.state.requests).clone()
    }
}

async fn http_challenge(State(state): State<Arc<HttpState>>, request: Request<Body>) -> Response {
    let path = request.uri().path().to_owned();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    lock(&state.requests).push(HttpRequest {
        method: request.method().to_string(),
        host,
        path: path.clone(),
    });
    if request.method() != Method::GET {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let key_authorization = path
        .strip_prefix(CHALLENGE_PATH)
        .and_then(|token| lock(&state.tokens).get(token).cloned());
    match key_authorization {
        Some(body) => ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// tls-alpn-01
// ---------------------------------------------------------------------------------------------

/// A tls-alpn-01 responder (RFC 8737) on 127.0.0.1.
///
/// It completes a handshake only with a client that offers the `acme-tls/1` ALPN protocol and
/// sends as SNI a name given to [`TlsAlpnResponder::set`] (or the reverse-DNS name of an address
/// given to [`TlsAlpnResponder::set_ip`], RFC 8738 §6). It then presents a fresh self-signed
/// certificate whose only SAN is that identifier and which carries the critical acmeIdentifier
/// extension holding SHA-256 of the key authorization, negotiates `acme-tls/1`, and closes.
pub struct TlsAlpnResponder {
    _serving: Background,
    port: u16,
    certificates: Arc<AlpnCertificates>,
}

#[derive(Debug, Default)]
struct AlpnCertificates {
    by_server_name: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    hellos: Mutex<Vec<TlsHello>>,
}

/// What a client offered in one ClientHello to a [`TlsAlpnResponder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsHello {
    /// The SNI, lower case.
    pub server_name: Option<String>,
    /// The offered ALPN protocols, lossily as text.
    pub alpn: Vec<String>,
}

impl TlsAlpnResponder {
    /// Starts the responder on an ephemeral port of 127.0.0.1.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("TLS-ALPN responder: bind on 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("TLS-ALPN responder: non-blocking listener");
        let port = listener
            .local_addr()
            .expect("TLS-ALPN responder: address")
            .port();
        let certificates = Arc::new(AlpnCertificates::default());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS-ALPN responder: protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(certificates.clone());
        config.alpn_protocols = vec![ACME_TLS_1.to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let _serving = Background::spawn("TLS-ALPN responder", move || async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .expect("TLS-ALPN responder: tokio listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    if let Ok(Ok(mut tls)) = handshake.await {
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        Self {
            _serving,
            port,
            certificates,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Answers SNI `name` with a challenge certificate for the DNS identifier `name`.
    pub fn set(&self, name: &str, key_authorization: &str) {
        let san = rcgen::SanType::DnsName(
            normalize(name)
                .try_into()
                .unwrap_or_else(|e| panic!("TLS-ALPN responder: {name:?} as a dNSName: {e}")),
        );
        self.insert(normalize(name), san, key_authorization);
    }

    /// Answers SNI `reverse_name(ip)` with a challenge certificate for the IP identifier `ip`
    /// (an iPAddress SAN, RFC 8738 §6).
    pub fn set_ip(&self, ip: IpAddr, key_authorization: &str) {
        self.insert(
            reverse_name(ip),
            rcgen::SanType::IpAddress(ip),
            key_authorization,
        );
    }

    /// Every ClientHello received so far, in order.
    pub fn hellos(&self) -> Vec<TlsHello> {
        lock(&self.certificates.hellos).clone()
    }

    fn insert(&self, server_name: String, san: rcgen::SanType, key_authorization: &str) {
        let certificate = challenge_certificate(san, key_authorization);
        lock(&self.certificates.by_server_name).insert(server_name, certificate);
    }
}

impl ResolvesServerCert for AlpnCertificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let server_name = hello.server_name().map(normalize);
        let alpn: Vec<Vec<u8>> = hello
            .alpn()
            .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
            .unwrap_or_default();
        lock(&self.hellos).push(TlsHello {
            server_name: server_name.clone(),
            alpn: alpn
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect(),
        });
        // RFC 8737 §3: the challenge certificate is only for a client asking for acme-tls/1.
        if !alpn.iter().any(|protocol| protocol == ACME_TLS_1) {
            return None;
        }
        lock(&self.by_server_name).get(&server_name?).cloned()
    }
}

/// A self-signed certificate with `san` as its only SAN and the critical acmeIdentifier
/// extension over `key_authorization` (RFC 8737 §3).
fn challenge_certificate(san: rcgen::SanType, key_authorization: &str) -> Arc<CertifiedKey> {
    let digest = Sha256::digest(key_authorization.as_bytes());
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = vec![san];
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(&digest)];
    let key = rcgen::KeyPair::generate().expect("TLS-ALPN responder: a key pair");
    let certificate = params
        .self_signed(&key)
        .expect("TLS-ALPN responder: a challenge certificate");
    // Not `CertifiedKey::from_der`: its consistency check parses the certificate with webpki,
    // which refuses the critical acmeIdentifier extension it does not know.
    let key = rustls::crypto::aws_lc_rs::default_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .expect("TLS-ALPN responder: the certificate's key");
    let certified = CertifiedKey::new(vec![certificate.der().clone()], key);
    Arc::new(certified)
}

// ---------------------------------------------------------------------------------------------
// The real clients
// ---------------------------------------------------------------------------------------------

/// The certbot to run: `CERTMINT_TEST_CERTBOT`, else `certbot` on PATH.
///
/// # Panics
///
/// When neither exists: a test that needs certbot fails without it (scripts/test installs it).
pub fn certbot() -> PathBuf {
    tool("certbot", "CERTMINT_TEST_CERTBOT")
}

/// The lego to run: `CERTMINT_TEST_LEGO`, else `lego` on PATH.
///
/// # Panics
///
/// When neither exists: a test that needs lego fails without it (scripts/test installs it).
pub fn lego() -> PathBuf {
    tool("lego", "CERTMINT_TEST_LEGO")
}

/// The program `name` to run: the path in `variable`, else `name` on PATH.
///
/// # Panics
///
/// When neither exists: a test that needs a tool fails without it.
pub fn tool(name: &str, variable: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            is_executable(&path),
            "{variable}={} is not an executable file; this test needs {name} \
             (scripts/test installs it)",
            path.display()
        );
        return path;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
        .unwrap_or_else(|| {
            panic!(
                "this test needs {name}: it is not on PATH and {variable} is not set \
                 (scripts/test installs it and sets what is needed)"
            )
        })
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The end of one client run.
#[derive(Debug)]
pub struct ToolRun {
    pub status: ExitStatus,
    /// stdout, then stderr.
    pub output: String,
}

impl ToolRun {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics with the output unless the run succeeded.
    #[track_caller]
    pub fn assert_success(&self, what: &str) {
        assert!(
            self.success(),
            "{what} failed ({}):\n{}",
            self.status,
            self.output
        );
    }
}

/// Runs `program` with stdin closed, waiting at most [`TOOL_TIMEOUT`]; `None` when it ran out
/// of time (it is killed then).
async fn run_tool(
    program: &Path,
    args: &[OsString],
    env: &[(&str, &OsStr)],
    dir: &Path,
) -> Option<ToolRun> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        // Everything these tools talk to is on 127.0.0.1.
        .env("NO_PROXY", "*")
        .env("no_proxy", "*")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = tokio::time::timeout(TOOL_TIMEOUT, command.output())
        .await
        .ok()?
        .unwrap_or_else(|e| panic!("could not run {}: {e}", program.display()));
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Some(ToolRun {
        status: output.status,
        output: text,
    })
}

/// Writes an executable shell script.
fn write_script(path: &Path, body: &str) {
    std::fs::write(path, body)
        .unwrap_or_else(|e| panic!("writing the hook {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("making {} executable: {e}", path.display()));
}

/// `path` single-quoted for sh.
fn sh_quote(path: &Path) -> String {
    let text = path.to_str().expect("a UTF-8 path");
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The files certbot keeps for one certificate under `live/{name}/`.
#[derive(Debug, Clone)]
pub struct LiveCertificate {
    pub fullchain: String,
    pub cert: String,
    pub chain: String,
    pub privkey: String,
}

/// Drives certbot against one ACME directory, in temporary config, work and logs directories
/// of its own; non-interactive, `--agree-tos`, and `--register-unsafely-without-email` unless
/// [`Certbot::email`] is given. The server's TLS is trusted through `REQUESTS_CA_BUNDLE`.
pub struct Certbot {
    binary: PathBuf,
    directory: String,
    ca_bundle: PathBuf,
    email: Option<String>,
    eab: Option<(String, String)>,
    home: tempfile::TempDir,
}

impl Certbot {
    /// certbot for the ACME directory `directory` (a URL), trusting the PEM file `ca_bundle`
    /// for its TLS.
    pub fn new(directory: &str, ca_bundle: &Path) -> Self {
        let home = tempfile::tempdir().expect("certbot: a temporary directory");
        for dir in ["config", "work", "logs", "hooks"] {
            std::fs::create_dir(home.path().join(dir)).expect("certbot: its directories");
        }
        Self {
            binary: certbot(),
            directory: directory.to_owned(),
            ca_bundle: ca_bundle.to_path_buf(),
            email: None,
            eab: None,
            home,
        }
    }

    /// Registers with this contact address instead of none.
    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.to_owned());
        self
    }

    /// Registers with external account binding (`--eab-kid`, `--eab-hmac-key`, base64url).
    pub fn eab(mut self, kid: &str, hmac_key: &str) -> Self {
        self.eab = Some((kid.to_owned(), hmac_key.to_owned()));
        self
    }

    /// certbot's configuration directory (accounts, `live/`, `renewal/`).
    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join("config")
    }

    /// Runs certbot with `args` (a subcommand and its flags) and the common flags: directories,
    /// server, non-interactive, terms, contact and EAB.
    ///
    /// # Panics
    ///
    /// When certbot cannot be started or runs longer than [`TOOL_TIMEOUT`].
    pub async fn command(&self, args: &[&str]) -> ToolRun {
        let home = self.home.path();
        let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
        for (flag, value) in [
            ("--config-dir", home.join("config")),
            ("--work-dir", home.join("work")),
            ("--logs-dir", home.join("logs")),
        ] {
            all.push(flag.into());
            all.push(value.into());
        }
        for flag in [
            "--server",
            self.directory.as_str(),
            "--non-interactive",
            "--agree-tos",
            "--max-log-backups",
            "0",
        ] {
            all.push(flag.into());
        }
        match &self.email {
            Some(email) => all.extend(["--email", email, "--no-eff-email"].map(OsString::from)),
            None => all.push("--register-unsafely-without-email".into()),
        }
        if let Some((kid, hmac_key)) = &self.eab {
            all.extend(["--eab-kid", kid, "--eab-hmac-key", hmac_key].map(OsString::from));
        }
        let env = [("REQUESTS_CA_BUNDLE", self.ca_bundle.as_os_str())];
        run_tool(&self.binary, &all, &env, home)
            .await
            .unwrap_or_else(|| {
                panic!(
                    "certbot {args:?} did not finish within {} s; its log:\n{}",
                    TOOL_TIMEOUT.as_secs(),
                    self.log()
                )
            })
    }

    /// `certbot register`: creates the account (with EAB when set).
    pub async fn register(&self) -> ToolRun {
        self.command(&["register"]).await
    }

    /// `certbot certonly --standalone`: http-01 answered by certbot itself on
    /// 127.0.0.1:`http_port`, for `domains`.
    pub async fn certonly_standalone(&self, http_port: u16, domains: &[&str]) -> ToolRun {
        let port = http_port.to_string();
        let mut args = vec![
            "certonly",
            "--standalone",
            "--http-01-port",
            &port,
            "--http-01-address",
            "127.0.0.1",
        ];
        for domain in domains {
            args.extend(["-d", *domain]);
        }
        self.command(&args).await
    }

    /// `certbot certonly --manual --preferred-challenges dns`, with hooks that publish the
    /// validation in `dns`'s records directory (appending, so a wildcard and its apex can both
    /// be pending) and remove it afterwards.
    pub async fn certonly_dns(&self, dns: &DnsServer, domains: &[&str]) -> ToolRun {
        let records = sh_quote(dns.records_dir());
        let hooks = self.home.path().join("hooks");
        let record_file = format!(
            "file={records}/$(printf '%s' \"_acme-challenge.$CERTBOT_DOMAIN\" | \
             tr '[:upper:]' '[:lower:]')\n"
        );
        let auth = hooks.join("dns-auth");
        write_script(
            &auth,
            &format!(
                "#!/bin/sh\n# certbot --manual-auth-hook: publishes the dns-01 TXT value.\n\
                 set -eu\n{record_file}printf '%s\\n' \"$CERTBOT_VALIDATION\" >> \"$file\"\n"
            ),
        );
        let cleanup = hooks.join("dns-cleanup");
        write_script(
            &cleanup,
            &format!(
                "#!/bin/sh\n# certbot --manual-cleanup-hook: withdraws the dns-01 TXT value.\n\
                 set -eu\n{record_file}[ -f \"$file\" ] || exit 0\n\
                 rest=$(grep -vxF \"$CERTBOT_VALIDATION\" \"$file\" || true)\n\
                 if [ -n \"$rest\" ]; then printf '%s\\n' \"$rest\" > \"$file\"; \
                 else rm -f \"$file\"; fi\n"
            ),
        );
        let auth = auth.to_str().expect("a UTF-8 path");
        let cleanup = cleanup.to_str().expect("a UTF-8 path");
        let mut args = vec![
            "certonly",
            "--manual",
            "--preferred-challenges",
            "dns",
            "--manual-auth-hook",
            auth,
            "--manual-cleanup-hook",
            cleanup,
        ];
        for domain in domains {
            args.extend(["-d", *domain]);
        }
        self.command(&args).await
    }

    /// `certbot renew --force-renewal`: renews every certificate now, with the challenge
    /// settings each was obtained with.
    pub async fn renew_forced(&self) -> ToolRun {
        self.command(&["renew", "--force-renewal", "--no-random-sleep-on-renew"])
            .await
    }

    /// `certbot revoke --cert-path`, with `reason` (certbot's names, e.g. `keycompromise`) when
    /// given; the files are kept.
    pub async fn revoke(&self, cert_path: &Path, reason: Option<&str>) -> ToolRun {
        let cert_path = cert_path.to_str().expect("a UTF-8 path");
        let mut args = vec![
            "revoke",
            "--cert-path",
            cert_path,
            "--no-delete-after-revoke",
        ];
        if let Some(reason) = reason {
            args.extend(["--reason", reason]);
        }
        self.command(&args).await
    }

    /// `live/{name}/` — `name` is the first domain requested, without a leading `*.`.
    pub fn live_dir(&self, name: &str) -> PathBuf {
        self.config_dir().join("live").join(name)
    }

    /// The PEM files of `live/{name}/`.
    ///
    /// # Panics
    ///
    /// When one is missing, with certbot's log.
    pub fn live(&self, name: &str) -> LiveCertificate {
        let dir = self.live_dir(name);
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| {
                panic!(
                    "certbot's {}/{file}: {e}; its log:\n{}",
                    dir.display(),
                    self.log()
                )
            })
        };
        LiveCertificate {
            fullchain: read("fullchain.pem"),
            cert: read("cert.pem"),
            chain: read("chain.pem"),
            privkey: read("privkey.pem"),
        }
    }

    /// certbot's log so far (every run appends to it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("logs/letsencrypt.log")).unwrap_or_default()
    }
}

/// How lego answers challenges.
pub enum LegoSolver<'a> {
    /// http-01 by lego's own server on 127.0.0.1:`port` (`--http --http.port`).
    Http01 { port: u16 },
    /// tls-alpn-01 by lego's own server on 127.0.0.1:`port` (`--tls --tls.port`).
    TlsAlpn01 { port: u16 },
    /// dns-01 through lego's `exec` provider, writing records into the server's records
    /// directory and checking them against it (`--dns exec --dns.resolvers`).
    Dns01(&'a DnsServer),
}

/// The files lego keeps for one certificate under `certificates/`.
#[derive(Debug, Clone)]
pub struct LegoCertificate {
    /// The certificate followed by its issuer (lego bundles by default).
    pub certificate: String,
    pub issuer: String,
    pub key: String,
}

/// Drives lego (v4 syntax) against one ACME directory, with its data in a temporary `--path`.
/// The server's TLS is trusted through `LEGO_CA_CERTIFICATES`.
pub struct Lego {
    binary: PathBuf,
    directory: String,
    ca_bundle: PathBuf,
    email: String,
    eab: Option<(String, String)>,
    home: tempfile::TempDir,
}

impl Lego {
    /// lego for the ACME directory `directory` (a URL) with the account contact `email` (lego
    /// requires one), trusting the PEM file `ca_bundle` for its TLS.
    pub fn new(directory: &str, ca_bundle: &Path, email: &str) -> Self {
        let home = tempfile::tempdir().expect("lego: a temporary directory");
        Self {
            binary: lego(),
            directory: directory.to_owned(),
            ca_bundle: ca_bundle.to_path_buf(),
            email: email.to_owned(),
            eab: None,
            home,
        }
    }

    /// Registers with external account binding (`--eab --kid --hmac`, base64url).
    pub fn eab(mut self, kid: &str, hmac_key: &str) -> Self {
        self.eab = Some((kid.to_owned(), hmac_key.to_owned()));
        self
    }

    /// lego's `--path`.
    pub fn path(&self) -> PathBuf {
        self.home.path().join("data")
    }

    /// Runs lego with the common global flags (server, terms, contact, path, EAB) followed by
    /// `args` (more global flags, then a command and its flags).
    ///
    /// # Panics
    ///
    /// When lego cannot be started or runs longer than [`TOOL_TIMEOUT`].
    pub async fn command(&self, args: &[&str]) -> ToolRun {
        self.command_with_env(args, &[]).await
    }

    async fn command_with_env(&self, args: &[&str], env: &[(&str, &OsStr)]) -> ToolRun {
        let mut all: Vec<OsString> = vec![
            "--server".into(),
            (&self.directory).into(),
            "--accept-tos".into(),
            "--email".into(),
            (&self.email).into(),
            "--path".into(),
            self.path().into(),
        ];
        if let Some((kid, hmac_key)) = &self.eab {
            all.extend(["--eab", "--kid", kid, "--hmac", hmac_key].map(OsString::from));
        }
        all.extend(args.iter().map(OsString::from));
        let mut env = env.to_vec();
        env.push(("LEGO_CA_CERTIFICATES", self.ca_bundle.as_os_str()));
        run_tool(&self.binary, &all, &env, self.home.path())
            .await
            .unwrap_or_else(|| {
                panic!(
                    "lego {args:?} did not finish within {} s",
                    TOOL_TIMEOUT.as_secs()
                )
            })
    }

    /// `lego run`: registers if needed and obtains a certificate for `domains`.
    pub async fn run(&self, solver: LegoSolver<'_>, domains: &[&str]) -> ToolRun {
        self.with_solver(solver, domains, &["run"]).await
    }

    /// `lego renew`, forced (`--days` beyond any validity).
    pub async fn renew_forced(&self, solver: LegoSolver<'_>, domains: &[&str]) -> ToolRun {
        self.with_solver(
            solver,
            domains,
            &["renew", "--days", "100000", "--no-random-sleep"],
        )
        .await
    }

    /// `lego revoke` of the certificate for `domains`, with an RFC 5280 reason code when given;
    /// the files are kept.
    pub async fn revoke(&self, domains: &[&str], reason: Option<u8>) -> ToolRun {
        let reason = reason.map(|r| r.to_string());
        let mut args = Vec::new();
        for domain in domains {
            args.extend(["--domains", *domain]);
        }
        args.extend(["revoke", "--keep"]);
        if let Some(reason) = &reason {
            args.extend(["--reason", reason]);
        }
        self.command(&args).await
    }

    /// The files of the certificate whose first domain is `domain`.
    ///
    /// # Panics
    ///
    /// When one is missing.
    pub fn certificate(&self, domain: &str) -> LegoCertificate {
        let stem = domain.replace('*', "_");
        let dir = self.path().join("certificates");
        let read = |suffix: &str| {
            let path = dir.join(format!("{stem}{suffix}"));
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("lego's {}: {e}", path.display()))
        };
        LegoCertificate {
            certificate: read(".crt"),
            issuer: read(".issuer.crt"),
            key: read(".key"),
        }
    }

    async fn with_solver(
        &self,
        solver: LegoSolver<'_>,
        domains: &[&str],
        command: &[&str],
    ) -> ToolRun {
        let mut args: Vec<String> = Vec::new();
        let mut env: Vec<(&str, OsString)> = Vec::new();
        match solver {
            LegoSolver::Http01 { port } => {
                args.extend([
                    "--http".into(),
                    "--http.port".into(),
                    format!("127.0.0.1:{port}"),
                ]);
            }
            LegoSolver::TlsAlpn01 { port } => {
                args.extend([
                    "--tls".into(),
                    "--tls.port".into(),
                    format!("127.0.0.1:{port}"),
                ]);
            }
            LegoSolver::Dns01(dns) => {
                let script = self.home.path().join("dns-exec");
                write_script(
                    &script,
                    &format!(
                        "#!/bin/sh\n# lego --dns exec: $1 is present or cleanup, $2 the FQDN, \
                         $3 the TXT value.\nset -eu\n\
                         file={}/$(printf '%s' \"${{2%.}}\" | tr '[:upper:]' '[:lower:]')\n\
                         case \"$1\" in\n\
                         present) printf '%s\\n' \"$3\" >> \"$file\" ;;\n\
                         cleanup)\n  [ -f \"$file\" ] || exit 0\n  \
                         rest=$(grep -vxF \"$3\" \"$file\" || true)\n  \
                         if [ -n \"$rest\" ]; then printf '%s\\n' \"$rest\" > \"$file\"; \
                         else rm -f \"$file\"; fi ;;\n\
                         esac\n",
                        sh_quote(dns.records_dir())
                    ),
                );
                env.extend([
                    ("EXEC_PATH", script.into_os_string()),
                    ("EXEC_PROPAGATION_TIMEOUT", "30".into()),
                    ("EXEC_POLLING_INTERVAL", "1".into()),
                    // The same FQDN (a wildcard and its apex) is solved in sequence, 60 s
                    // apart by default.
                    ("EXEC_SEQUENCE_INTERVAL", "1".into()),
                ]);
                args.extend([
                    "--dns".into(),
                    "exec".into(),
                    "--dns.resolvers".into(),
                    dns.addr().to_string(),
                    "--dns.disable-cp".into(),
                ]);
            }
        }
        for domain in domains {
            args.extend(["--domains".into(), (*domain).to_owned()]);
        }
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(command);
        let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        self.command_with_env(&args, &env).await
    }
}

// ---------------------------------------------------------------------------------------------
// Self-tests
// ---------------------------------------------------------------------------------------------

/// A resolver that asks only `dns`, without caching.
fn resolver_for(dns: &DnsServer) -> Resolver<TokioRuntimeProvider> {
    let mut server = NameServerConfig::udp(dns.addr().ip());
    server.connections[0].port = dns.addr().port();
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_parts(None, vec![], vec![server]),
        TokioRuntimeProvider::default(),
    );
    builder.options_mut().cache_size = 0;
    builder.options_mut().attempts = 1;
    builder.build().expect("a resolver")
}

async fn txt(resolver: &Resolver<TokioRuntimeProvider>, name: &str) -> Vec<String> {
    let lookup = resolver
        .txt_lookup(name)
        .await
        .unwrap_or_else(|e| panic!("TXT {name}: {e}"));
    let mut values: Vec<String> = lookup
        .answers()
        .iter()
        .map(|record| match &record.data {
            RData::TXT(txt) => txt
                .txt_data
                .iter()
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect(),
            other => panic!("TXT {name} answered {other:?}"),
        })
        .collect();
    values.sort();
    values
}

/// One raw query, by UDP or TCP, and the parsed answer.
async fn raw_query(dns: &DnsServer, name: &str, kind: RecordType, over_tcp: bool) -> Message {
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::from_ascii(name).expect("name"), kind));
    let wire = query.to_vec().expect("query wire");
    let answer = if over_tcp {
        let mut stream = tokio::net::TcpStream::connect(dns.addr())
            .await
            .expect("TCP");
        stream
            .write_u16(u16::try_from(wire.len()).expect("short"))
            .await
            .expect("send");
        stream.write_all(&wire).await.expect("send");
        let len = stream.read_u16().await.expect("answer length");
        let mut answer = vec![0; usize::from(len)];
        stream.read_exact(&mut answer).await.expect("answer");
        answer
    } else {
        let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("UDP");
        socket.send_to(&wire, dns.addr()).await.expect("send");
        let mut answer = vec![0; 4096];
        let len = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut answer))
            .await
            .expect("an answer within 5 s")
            .expect("answer");
        answer.truncate(len);
        answer
    };
    let answer = Message::from_vec(&answer).expect("a DNS message");
    assert_eq!(answer.metadata.id, query.metadata.id, "the id is copied");
    assert_eq!(answer.metadata.message_type, MessageType::Response);
    assert!(answer.metadata.authoritative, "AA is set");
    assert_eq!(answer.queries, query.queries, "the question is copied");
    answer
}

#[tokio::test]
async fn dns_server_answers_txt_from_memory_and_files_a_and_nxdomain() {
    let dns = DnsServer::start();
    let resolver = resolver_for(&dns);

    dns.set_txt("_acme-challenge.Memory.example.", &["first", "second"]);
    assert_eq!(
        txt(&resolver, "_acme-challenge.memory.example.").await,
        ["first", "second"]
    );
    // One value of 300 bytes comes back whole.
    let long = "x".repeat(300);
    dns.set_txt("long.example", &[&long]);
    assert_eq!(txt(&resolver, "long.example.").await, [long]);

    std::fs::write(
        dns.records_dir().join("_acme-challenge.file.example"),
        "from-a-hook\n\nsecond-line\n",
    )
    .expect("record file");
    // Names are case-insensitive: the file is found for a mixed-case question.
    assert_eq!(
        txt(&resolver, "_acme-challenge.FILE.example.").await,
        ["from-a-hook", "second-line"]
    );

    dns.add_host("www.example", IpAddr::V4(Ipv4Addr::LOCALHOST));
    dns.add_host("www.example", "::1".parse().expect("IPv6"));
    let a = resolver
        .ipv4_lookup("www.example.")
        .await
        .expect("A www.example");
    assert!(
        matches!(a.answers(), [Record { data: RData::A(A(ip)), .. }] if *ip == Ipv4Addr::LOCALHOST),
        "{:?}",
        a.answers()
    );
    let aaaa = resolver
        .ipv6_lookup("www.example.")
        .await
        .expect("AAAA www.example");
    assert_eq!(aaaa.answers().len(), 1, "{:?}", aaaa.answers());

    let missing = resolver
        .txt_lookup("nowhere.example.")
        .await
        .expect_err("an unknown name");
    assert!(missing.is_nx_domain(), "NXDOMAIN, got {missing}");

    // Raw exchanges, to see the header: AA and the question copied, NOERROR without data for
    // a known name, NXDOMAIN otherwise; over UDP and TCP alike.
    for over_tcp in [false, true] {
        let answer = raw_query(&dns, "www.example.", RecordType::A, over_tcp).await;
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert_eq!(answer.answers.len(), 1);
        let answer = raw_query(&dns, "www.example.", RecordType::TXT, over_tcp).await;
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert!(answer.answers.is_empty());
        let answer = raw_query(&dns, "nowhere.example.", RecordType::A, over_tcp).await;
        assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
        assert!(answer.answers.is_empty());
    }

    // Values can be withdrawn, and every question was seen.
    dns.set_txt("_acme-challenge.memory.example", &[]);
    let gone = resolver
        .txt_lookup("_acme-challenge.memory.example.")
        .await
        .expect_err("a withdrawn name");
    assert!(gone.is_nx_domain(), "NXDOMAIN, got {gone}");
    assert!(
        dns.queries()
            .contains(&("_acme-challenge.file.example".into(), RecordType::TXT))
    );
}

#[tokio::test]
async fn http_responder_serves_set_tokens_and_404s_others() {
    let http = HttpResponder::start();
    http.set("tok-1", "tok-1.thumbprint");
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", http.port());

    let response = client
        .get(url("/.well-known/acme-challenge/tok-1"))
        .header("host", "a.example")
        .send()
        .await
        .expect("GET a set token");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.expect("body"), "tok-1.thumbprint");

    for path in [
        "/.well-known/acme-challenge/tok-2",
        "/.well-known/acme-challenge/",
        "/tok-1",
    ] {
        let response = client.get(url(path)).send().await.expect("GET");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let response = client
        .post(url("/.well-known/acme-challenge/tok-1"))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    let first = &http.requests()[0];
    assert_eq!(
        (
            first.method.as_str(),
            first.host.as_str(),
            first.path.as_str()
        ),
        ("GET", "a.example", "/.well-known/acme-challenge/tok-1")
    );
    assert_eq!(http.requests().len(), 5);
}

/// Accepts any server certificate — the self-test inspects the challenge certificate itself —
/// but checks the handshake signature with its key. TLS 1.3 only: rustls's certificate-based
/// signature checks parse the certificate with webpki, which refuses the critical
/// acmeIdentifier extension, so the key is taken from the raw SubjectPublicKeyInfo.
#[derive(Debug)]
struct DangerAcceptAnyServerCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for DangerAcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "this test client offers only TLS 1.3".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert)
            .map_err(|e| rustls::Error::General(format!("the server certificate: {e}")))?;
        let spki = SubjectPublicKeyInfoDer::from(parsed.tbs_certificate.subject_pki.raw);
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &spki,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A handshake with `responder` sending `sni` and offering `alpn`: the negotiated protocol and
/// the certificate presented, or the handshake error.
async fn alpn_handshake(
    responder: &TlsAlpnResponder,
    sni: &str,
    alpn: &[&[u8]],
) -> Result<(Option<Vec<u8>>, CertificateDer<'static>), std::io::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(DangerAcceptAnyServerCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, responder.port()))
        .await
        .expect("connect");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(sni.to_owned()).expect("SNI"), tcp)
        .await?;
    let session = tls.get_ref().1;
    let certificate = session.peer_certificates().expect("a certificate")[0].clone();
    Ok((session.alpn_protocol().map(<[u8]>::to_vec), certificate))
}

/// Checks `der` is a tls-alpn-01 certificate for `expected_san` over `key_authorization`.
fn assert_challenge_certificate(
    der: &[u8],
    expected_san: &GeneralName<'_>,
    key_authorization: &str,
) {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).expect("X.509");
    let san = certificate
        .subject_alternative_name()
        .expect("one SAN extension")
        .expect("a SAN extension");
    assert_eq!(san.value.general_names, std::slice::from_ref(expected_san));
    let acme = certificate
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
        .expect("the acmeIdentifier extension");
    assert!(acme.critical, "acmeIdentifier is critical");
    let mut expected = vec![0x04, 0x20];
    expected.extend_from_slice(&Sha256::digest(key_authorization.as_bytes()));
    assert_eq!(
        acme.value, expected,
        "an OCTET STRING of SHA-256(key authorization)"
    );
}

#[tokio::test]
async fn tls_alpn_responder_presents_acme_identifier_certificates() {
    let responder = TlsAlpnResponder::start();
    responder.set("Alpn.Example", "token.thumbprint");
    let ip: IpAddr = "192.0.2.7".parse().expect("IP");
    responder.set_ip(ip, "ip-token.thumbprint");

    let (alpn, certificate) = alpn_handshake(&responder, "alpn.example", &[ACME_TLS_1])
        .await
        .expect("handshake for a DNS identifier");
    assert_eq!(alpn.as_deref(), Some(ACME_TLS_1));
    assert_challenge_certificate(
        &certificate,
        &GeneralName::DNSName("alpn.example"),
        "token.thumbprint",
    );

    let (alpn, certificate) = alpn_handshake(&responder, "7.2.0.192.in-addr.arpa", &[ACME_TLS_1])
        .await
        .expect("handshake for an IP identifier");
    assert_eq!(alpn.as_deref(), Some(ACME_TLS_1));
    assert_challenge_certificate(
        &certificate,
        &GeneralName::IPAddress(&[192, 0, 2, 7]),
        "ip-token.thumbprint",
    );

    // No challenge certificate without acme-tls/1, nor for a name it was not given.
    alpn_handshake(&responder, "alpn.example", &[b"http/1.1"])
        .await
        .expect_err("no acme-tls/1 offered");
    alpn_handshake(&responder, "alpn.example", &[])
        .await
        .expect_err("no ALPN at all");
    alpn_handshake(&responder, "other.example", &[ACME_TLS_1])
        .await
        .expect_err("an unknown name");

    let hellos = responder.hellos();
    assert_eq!(hellos.len(), 5);
    assert_eq!(
        hellos[0],
        TlsHello {
            server_name: Some("alpn.example".into()),
            alpn: vec!["acme-tls/1".into()],
        }
    );
}

#[test]
fn reverse_names_follow_rfc_1035_and_rfc_3596() {
    for (ip, name) in [
        ("192.0.2.5", "5.2.0.192.in-addr.arpa"),
        ("127.0.0.1", "1.0.0.127.in-addr.arpa"),
        (
            "4321:0:1:2:3:4:567:89ab",
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa",
        ),
        (
            "::1",
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
        ),
    ] {
        assert_eq!(reverse_name(ip.parse().expect("IP")), name, "{ip}");
    }
}

#[tokio::test]
async fn the_acme_clients_are_installed() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (tool, expected) in [(certbot(), "certbot"), (lego(), "lego version")] {
        let run = run_tool(&tool, &["--version".into()], &[], dir.path())
            .await
            .expect("--version in time");
        run.assert_success(&format!("{} --version", tool.display()));
        assert!(run.output.contains(expected), "{}", run.output);
    }
}

// The client drivers, against pebble (the ACME test server, scripts/test installs it) with
// its validator resolving names through a DnsServer.

const PEBBLE_EAB_KID: &str = "kid-certmint";
const PEBBLE_EAB_HMAC: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

struct Pebble {
    directory: String,
    /// The PEM of the CA that issued pebble's own TLS certificate.
    ca_bundle: PathBuf,
    _child: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Pebble {
    /// pebble validating http-01 on `http_port` and tls-alpn-01 on `tls_port` of the addresses
    /// `dns` gives, requiring EAB (with [`PEBBLE_EAB_KID`]) when `eab` is set.
    async fn start(dns: &DnsServer, http_port: u16, tls_port: u16, eab: bool) -> Self {
        let dir = tempfile::tempdir().expect("pebble: a directory");
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::default();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pebble front end test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("params")
            .signed_by(&key, &issuer)
            .expect("pebble's TLS certificate");
        let ca_bundle = dir.path().join("ca.pem");
        std::fs::write(&ca_bundle, ca.pem()).expect("write");
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).expect("write");
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("write");

        let listen = free_port();
        let mut eab_keys = serde_json::Map::new();
        eab_keys.insert(PEBBLE_EAB_KID.into(), PEBBLE_EAB_HMAC.into());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{}", free_port()),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": eab,
            "externalAccountMACKeys": eab_keys,
        }});
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).expect("write");
        let log = std::fs::File::create(dir.path().join("pebble.log")).expect("log");
        let child = tokio::process::Command::new(tool("pebble", "CERTMINT_TEST_PEBBLE"))
            .arg("-config")
            .arg(&config_path)
            .arg("-dnsserver")
            .arg(dns.addr().to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("pebble starts");
        let pebble = Self {
            directory: format!("https://127.0.0.1:{listen}/dir"),
            ca_bundle,
            _child: child,
            dir,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, listen))
                .await
                .is_ok()
            {
                return pebble;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("pebble did not listen within 10 s:\n{}", pebble.log())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }
}

/// The subject alternative names of the first certificate in `pem`.
fn dns_names(pem: &str) -> Vec<String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM");
    let certificate = pem.parse_x509().expect("X.509");
    let san = certificate
        .subject_alternative_name()
        .expect("one SAN extension")
        .expect("a SAN extension");
    let mut names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(name) => (*name).to_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn certbot_driver_obtains_renews_and_revokes_with_http_01() {
    let dns = DnsServer::start();
    for name in ["a.certbot.example", "b.certbot.example"] {
        dns.add_host(name, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let http_port = free_port();
    let pebble = Pebble::start(&dns, http_port, free_port(), false).await;
    let certbot = Certbot::new(&pebble.directory, &pebble.ca_bundle);

    certbot
        .certonly_standalone(http_port, &["a.certbot.example", "b.certbot.example"])
        .await
        .assert_success(&format!(
            "certbot certonly --standalone; pebble:\n{}",
            pebble.log()
        ));
    let first = certbot.live("a.certbot.example");
    assert_eq!(
        dns_names(&first.cert),
        ["a.certbot.example", "b.certbot.example"]
    );
    assert!(first.fullchain.starts_with(&first.cert));
    assert!(first.fullchain.ends_with(&first.chain));
    assert!(first.privkey.contains("PRIVATE KEY"));

    certbot
        .renew_forced()
        .await
        .assert_success("certbot renew --force-renewal");
    let renewed = certbot.live("a.certbot.example");
    assert_ne!(renewed.cert, first.cert, "a new certificate");

    let cert_path = certbot.live_dir("a.certbot.example").join("cert.pem");
    certbot
        .revoke(&cert_path, Some("keycompromise"))
        .await
        .assert_success("certbot revoke");
    // A second revocation is refused by the server: the first one took.
    let again = certbot.revoke(&cert_path, None).await;
    assert!(!again.success(), "{}", again.output);
}

#[tokio::test]
async fn certbot_driver_obtains_a_wildcard_with_dns_01_hooks() {
    let dns = DnsServer::start();
    let pebble = Pebble::start(&dns, free_port(), free_port(), false).await;
    let certbot = Certbot::new(&pebble.directory, &pebble.ca_bundle).email("ops@certbot.example");

    certbot
        .certonly_dns(&dns, &["*.Wild.example", "wild.example"])
        .await
        .assert_success(&format!(
            "certbot certonly --manual (dns); pebble:\n{}",
            pebble.log()
        ));
    assert_eq!(
        dns_names(&certbot.live("wild.example").cert),
        ["*.wild.example", "wild.example"]
    );
    // The validator asked our server; the cleanup hook withdrew both values.
    assert!(
        dns.queries()
            .contains(&("_acme-challenge.wild.example".into(), RecordType::TXT))
    );
    assert!(
        !dns.records_dir()
            .join("_acme-challenge.wild.example")
            .exists(),
        "cleaned up"
    );
}

#[tokio::test]
async fn certbot_driver_registers_with_external_account_binding() {
    let dns = DnsServer::start();
    let pebble = Pebble::start(&dns, free_port(), free_port(), true).await;

    let without = Certbot::new(&pebble.directory, &pebble.ca_bundle);
    let refused = without.register().await;
    assert!(!refused.success(), "EAB is required: {}", refused.output);

    Certbot::new(&pebble.directory, &pebble.ca_bundle)
        .eab(PEBBLE_EAB_KID, PEBBLE_EAB_HMAC)
        .register()
        .await
        .assert_success("certbot register --eab-kid --eab-hmac-key");
}

#[tokio::test]
async fn lego_driver_obtains_with_http_01_tls_alpn_01_and_dns_01() {
    let dns = DnsServer::start();
    for name in ["http.lego.example", "tls.lego.example"] {
        dns.add_host(name, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let (http_port, tls_port) = (free_port(), free_port());
    let pebble = Pebble::start(&dns, http_port, tls_port, true).await;
    let lego = Lego::new(&pebble.directory, &pebble.ca_bundle, "ops@lego.example")
        .eab(PEBBLE_EAB_KID, PEBBLE_EAB_HMAC);

    lego.run(
        LegoSolver::Http01 { port: http_port },
        &["http.lego.example"],
    )
    .await
    .assert_success(&format!("lego --http run; pebble:\n{}", pebble.log()));
    let first = lego.certificate("http.lego.example");
    assert_eq!(dns_names(&first.certificate), ["http.lego.example"]);
    assert!(first.certificate.contains(first.issuer.trim()), "bundled");
    assert!(first.key.contains("PRIVATE KEY"));

    lego.renew_forced(
        LegoSolver::Http01 { port: http_port },
        &["http.lego.example"],
    )
    .await
    .assert_success("lego renew");
    assert_ne!(
        lego.certificate("http.lego.example").certificate,
        first.certificate
    );
    lego.revoke(&["http.lego.example"], Some(1))
        .await
        .assert_success("lego revoke");

    lego.run(
        LegoSolver::TlsAlpn01 { port: tls_port },
        &["tls.lego.example"],
    )
    .await
    .assert_success(&format!("lego --tls run; pebble:\n{}", pebble.log()));
    assert_eq!(
        dns_names(&lego.certificate("tls.lego.example").certificate),
        ["tls.lego.example"]
    );

    lego.run(
        LegoSolver::Dns01(&dns),
        &["*.dns.lego.example", "dns.lego.example"],
    )
    .await
    .assert_success(&format!("lego --dns exec run; pebble:\n{}", pebble.log()));
    assert_eq!(
        dns_names(&lego.certificate("*.dns.lego.example").certificate),
        ["*.dns.lego.example", "dns.lego.example"]
    );
    assert!(
        !dns.records_dir()
            .join("_acme-challenge.dns.lego.example")
            .exists(),
        "cleaned up"
    );
}
