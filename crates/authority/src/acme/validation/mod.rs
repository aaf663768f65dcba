//! Challenge validation: http-01, dns-01 and tls-alpn-01 against the real network.
//!
//! Trust boundary: everything that comes back from the network — DNS answers, HTTP status,
//! headers and bodies, TLS certificates — is the applicant's input. It is bounded (time, size,
//! redirects), never unwrapped, and turned into a [`Problem`] that says what was wrong without
//! quoting it: a problem names the failure, the URL or identifier the client asked about and
//! a status code, never a body, header, certificate or the address connected to (those go to
//! the debug log). http-01 and tls-alpn-01 connect only where the configured
//! [`AddressPolicy`] allows, checked on every address actually connected to, redirects
//! included, so the validator cannot be pointed at the server's own network.
//!
//! Problem types, used the same way by the three challenges:
//! * `incorrectResponse` — an answer came back and it is wrong (body, TXT value, certificate);
//! * `unauthorized` — the answer is absent (HTTP status other than 200, no TXT record);
//! * `connection` — the target could not be reached or the conversation broke off, addresses
//!   the address policy refuses, and redirects this validator will not follow (another scheme
//!   or port, or more than ten): like Boulder, it reports that it could not get to the
//!   resource the applicant pointed at;
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

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;

pub use self::slots::Admission;
use self::slots::Slots;
pub(crate) use self::tls_alpn01::accept_any_chain;
use super::identifiers::MAX_IDENTIFIERS;
use super::{ChallengeType, Identifier, Problem, ProblemType};
use crate::Error;
use crate::outbound::{self, AddressPolicy, ConnectError};

mod dns01;
mod http01;
mod slots;
#[cfg(test)]
mod test_support;
mod tls_alpn01;

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
    /// Which addresses http-01 and tls-alpn-01 may connect to, redirects included (default:
    /// public ones only).
    pub address_policy: AddressPolicy,
    /// Validations running at once, all accounts together (default 64); more wait.
    pub max_in_flight: usize,
    /// Validations running at once for one account (default 8); more wait, up to
    /// [`MAX_IDENTIFIERS`](super::identifiers::MAX_IDENTIFIERS) in all for the account, so
    /// that the largest order answered at once still fits; past that, `rateLimited`.
    pub max_in_flight_per_account: usize,
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
            address_policy: AddressPolicy::public_only(),
            max_in_flight: 64,
            max_in_flight_per_account: 8,
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
    slots: Arc<Slots>,
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
    /// [`Error::Invalid`] for a zero port, timeout, attempt count or cap of validations in
    /// flight, or when `dns_resolver` is `None` and the system's resolver configuration cannot
    /// be read; [`Error::Internal`] when the resolver or TLS configuration cannot be built.
    pub fn new(mut config: ValidationConfig) -> Result<Self, Error> {
        if config.http_port == 0 || config.tls_port == 0 {
            return Err(Error::Invalid("acme.validation ports must not be 0".into()));
        }
        if config.attempts == 0 {
            return Err(Error::Invalid(
                "acme.validation.attempts must be at least 1".into(),
            ));
        }
        if config.max_in_flight == 0 || config.max_in_flight_per_account == 0 {
            return Err(Error::Invalid(
                "acme.validation.max_in_flight and max_in_flight_per_account must be at least 1"
                    .into(),
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
        let tls = TlsConnector::from(tls_alpn01::tls_config()?);
        let slots = Arc::new(Slots::new(
            config.max_in_flight,
            config.max_in_flight_per_account,
            MAX_IDENTIFIERS,
            retry_after(&config),
        ));
        Ok(Self {
            config,
            resolver,
            tls,
            slots,
        })
    }

    /// Takes a place for one more validation of `account`'s; run the validation through the
    /// returned [`Admission`], which waits for a free slot.
    ///
    /// # Errors
    /// `rateLimited`, with `Retry-After`, when the account already has as many validations
    /// under way or waiting as one order can have identifiers.
    pub fn admit(&self, account: i64) -> Result<Admission, Error> {
        self.slots.admit(account)
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

/// Connects to `port` on the first reachable of `addresses` that `policy` allows: the first
/// IPv6 and then the first IPv4 address, as Boulder does, giving the first half of the
/// remaining time when both exist. `target` names what is reached in problem details: never
/// an address, which may be one the client has no business learning about.
async fn connect(
    policy: &AddressPolicy,
    addresses: &[IpAddr],
    port: u16,
    target: &str,
    deadline: Instant,
) -> Result<TcpStream, Failure> {
    let allowed: Vec<IpAddr> = addresses
        .iter()
        .copied()
        .filter(|ip| match policy.check(*ip) {
            Ok(()) => true,
            Err(range) => {
                tracing::debug!(%ip, %range, target, "validation will not connect to a reserved address");
                false
            }
        })
        .collect();
    let candidates: Vec<IpAddr> = [
        allowed.iter().find(|ip| ip.is_ipv6()),
        allowed.iter().find(|ip| ip.is_ipv4()),
    ]
    .into_iter()
    .flatten()
    .copied()
    .collect();
    let mut failure = Failure::new(
        ProblemType::Connection,
        format!(
            "{target} leads only to addresses the validator does not connect to (loopback, \
             private, link-local and other non-public ranges)"
        ),
    );
    for (index, ip) in candidates.iter().enumerate() {
        let peer = SocketAddr::new(*ip, port);
        let until = if index + 1 < candidates.len() {
            let now = Instant::now();
            now + deadline.saturating_duration_since(now) / 2
        } else {
            deadline
        };
        failure = match timeout_at(until, outbound::connect(policy, peer)).await {
            Ok(Ok(stream)) => {
                // Latency only; a failure here changes nothing about the validation.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => {
                tracing::debug!(target, "validation connection failed: {e}");
                let detail = match e {
                    ConnectError::Io { source, .. } => {
                        format!("could not connect to {target}: {}", source.kind())
                    }
                    _ => format!("{target} leads to an address the validator does not connect to"),
                };
                Failure::new(ProblemType::Connection, detail)
            }
            Err(_) => Failure::new(
                ProblemType::Connection,
                format!("timed out connecting to {target}"),
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

/// The `Retry-After` of an account refused more validations: what one validation of theirs
/// may take, every attempt and backoff included, at least a second.
fn retry_after(config: &ValidationConfig) -> u32 {
    let backoffs = config.backoff.saturating_mul(
        2u32.saturating_pow(config.attempts.saturating_sub(1))
            .saturating_sub(1),
    );
    let total = config
        .timeout
        .saturating_mul(config.attempts)
        .saturating_add(backoffs);
    u32::try_from(total.as_secs().max(1)).unwrap_or(u32::MAX)
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_support::{
        KEY_AUTHORIZATION, LOCALHOST, TOKEN, assert_problem, config, dns, validator,
    };

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
            |c| c.max_in_flight = 0,
            |c| c.max_in_flight_per_account = 0,
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
        assert_eq!(defaults.address_policy, AddressPolicy::public_only());
        assert_eq!(
            (defaults.max_in_flight, defaults.max_in_flight_per_account),
            (64, 8)
        );
    }

    #[test]
    fn a_refused_account_is_told_to_wait_as_long_as_a_validation_may_take() {
        // Three attempts of 10 s, with waits of 0.5 s and 1 s between them.
        assert_eq!(retry_after(&ValidationConfig::default()), 31);
        let quick = ValidationConfig {
            timeout: Duration::from_millis(100),
            attempts: 1,
            ..ValidationConfig::default()
        };
        assert_eq!(retry_after(&quick), 1);
    }

    #[test]
    fn the_default_configuration_reads_the_system_resolvers() {
        if std::path::Path::new("/etc/resolv.conf").exists() {
            assert!(Validator::new(ValidationConfig::default()).is_ok());
        }
    }
}
