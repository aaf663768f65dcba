//! http-01 (RFC 8555 §8.3): a GET of the token under `/.well-known/acme-challenge/` on the
//! identifier, following bounded redirects, whose body must be the key authorization.

use std::net::IpAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper::header::{CONTENT_LENGTH, HOST, LOCATION, USER_AGENT};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use url::{Position, Url};

use super::{Failure, Validator, connect, within};
use crate::acme::{Identifier, ProblemType};

/// The largest http-01 body read; anything longer is an incorrect response.
const MAX_BODY: usize = 8 * 1024;
/// Redirects followed for one http-01 request.
const MAX_REDIRECTS: usize = 10;
/// Sent on http-01 requests, so operators can recognise the validator in their logs.
const USER_AGENT_VALUE: &str = concat!("certmint-va/", env!("CARGO_PKG_VERSION"));

impl Validator {
    pub(super) async fn http01(
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
            // Only the URL the client asked about is named: redirect targets were read from
            // the network.
            let target = match redirects {
                0 => first.clone(),
                n => format!(
                    "{first} (after {n} redirect{})",
                    if n == 1 { "" } else { "s" }
                ),
            };
            match self.fetch(&url, &target, redirects > 0, deadline).await? {
                Fetched::Body(body) => return check_body(&target, &body, key_authorization),
                Fetched::Redirect(next) => {
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return Err(Failure::new(
                            ProblemType::Connection,
                            format!("too many redirects: {target} redirected again"),
                        ));
                    }
                    self.check_redirect(&target, &next)?;
                    url = next;
                }
            }
        }
    }

    /// Redirects are followed only to `http://` on the configured port, like the first request.
    fn check_redirect(&self, from: &str, to: &Url) -> Result<(), Failure> {
        let port = self.config.http_port;
        let refused = |why: String| {
            tracing::debug!(%to, "http-01 redirect not followed");
            Err(Failure::new(
                ProblemType::Connection,
                format!("{from} redirected to a URL that is not followed: {why}"),
            ))
        };
        if to.scheme() != "http" {
            return refused(format!("only http:// URLs on port {port} are"));
        }
        if to.port_or_known_default() != Some(port) {
            return refused(format!("only port {port} is used for http-01"));
        }
        Ok(())
    }

    /// One GET of `url`, named `target` in problems: a redirect target, or a 200 body of at
    /// most [`MAX_BODY`] bytes. The name of a `redirected` request is not the client's, so
    /// how its lookup failed is not told either.
    async fn fetch(
        &self,
        url: &Url,
        target: &str,
        redirected: bool,
        deadline: Instant,
    ) -> Result<Fetched, Failure> {
        let connection = |detail: String| Failure::new(ProblemType::Connection, detail);
        let addresses = match url.host() {
            Some(url::Host::Domain(name)) if !redirected => self.addresses(name, deadline).await?,
            Some(url::Host::Domain(name)) => {
                self.addresses(name, deadline).await.map_err(|failure| {
                    tracing::debug!(%url, "resolving a redirect target failed: {}", failure.detail);
                    Failure::new(
                        failure.kind,
                        format!("{target}: the redirect target's name could not be resolved"),
                    )
                })?
            }
            Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            None => return Err(connection(format!("{target} has no host"))),
        };
        let port = url.port_or_known_default().unwrap_or(self.config.http_port);
        let stream = connect(
            &self.config.address_policy,
            &addresses,
            port,
            target,
            deadline,
        )
        .await?;
        let failed = |what: &str, e: hyper::Error| {
            tracing::debug!(%url, "http-01 {what} failed: {e}");
            connection(format!("{what} {target} failed: {}", http_failure(&e)))
        };
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(64 * 1024)
            .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| failed("the HTTP connection to", e))?;
        let request = hyper::Request::get(&url[Position::BeforePath..Position::AfterQuery])
            .header(HOST, &url[Position::BeforeHost..Position::AfterPort])
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Empty::new())
            .map_err(|e| connection(format!("cannot form the request for {target}: {e}")))?;
        let exchange = async {
            let response = within(deadline, sender.send_request(request), || {
                connection(format!("timed out waiting for the response from {target}"))
            })
            .await?
            .map_err(|e| failed("fetching", e))?;
            read_response(url, target, response, deadline).await
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
}

/// What one http-01 request gave.
enum Fetched {
    /// A 200 response's body.
    Body(Vec<u8>),
    /// A redirect to this URL (not yet checked).
    Redirect(Url),
}

/// The class of an HTTP failure, without anything the peer sent.
fn http_failure(error: &hyper::Error) -> &'static str {
    if error.is_timeout() {
        "it timed out"
    } else if error.is_parse() || error.is_parse_status() {
        "the response is not valid HTTP/1.1"
    } else if error.is_incomplete_message() {
        "the connection closed before the response was complete"
    } else if error.is_body_write_aborted() || error.is_closed() || error.is_canceled() {
        "the connection closed"
    } else {
        "the connection broke off"
    }
}

/// Reads the head and, for a 200, the body (at most [`MAX_BODY`] bytes) of `response` to
/// `url`, named `target` in problems.
async fn read_response(
    url: &Url,
    target: &str,
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
        let unusable = || {
            Failure::new(
                ProblemType::Connection,
                format!("{target} answered {status} without a usable Location header"),
            )
        };
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(unusable)?;
        return url.join(location).map(Fetched::Redirect).map_err(|e| {
            tracing::debug!(%url, location, "http-01 redirect is not a URL: {e}");
            unusable()
        });
    }
    if status != StatusCode::OK {
        return Err(Failure::new(
            ProblemType::Unauthorized,
            format!("{target} answered {status}; http-01 needs 200 OK"),
        ));
    }
    let too_large = || {
        Failure::new(
            ProblemType::IncorrectResponse,
            format!("the response from {target} is larger than {MAX_BODY} bytes"),
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
                format!("timed out reading the response body from {target}"),
            )
        })
        .await?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| {
            tracing::debug!(%url, "reading an http-01 body failed: {e}");
            Failure::new(
                ProblemType::Connection,
                format!(
                    "reading the response body from {target} failed: {}",
                    http_failure(&e)
                ),
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
/// What the body holds instead is not said: on a misdirected request it is someone else's
/// data (the operator's log has its length).
fn check_body(target: &str, body: &[u8], key_authorization: &str) -> Result<(), Failure> {
    if body.trim_ascii_end() == key_authorization.as_bytes() {
        Ok(())
    } else {
        tracing::debug!(
            target,
            length = body.len(),
            "http-01 body is not the key authorization"
        );
        Err(Failure::new(
            ProblemType::IncorrectResponse,
            format!(
                "the body of {target} is not the key authorization: expected \
                 {key_authorization:?}"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::Arc;
    use std::time::Duration;

    use hickory_resolver::proto::rr::RData;
    use hickory_resolver::proto::rr::rdata::A;
    use http_body_util::Full;
    use hyper::Response;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use crate::acme::ChallengeType;
    use crate::acme::validation::ValidationConfig;
    use crate::acme::validation::test_support::{
        CHALLENGE_PATH, KEY_AUTHORIZATION, LOCALHOST, Outcome, Seen, TOKEN, Zone, answer_challenge,
        assert_problem, assert_tells_nothing_read, bind_loopback, config, dns, dns_server,
        http_server, public_only, respond, validator,
    };
    use crate::outbound::AddressPolicy;

    fn redirect(status: u16, location: &str) -> Response<Full<Bytes>> {
        let mut response = respond(status, "");
        response
            .headers_mut()
            .insert(LOCATION, location.parse().expect("test location"));
        response
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
        http_server(listener, |_, _| respond(200, "INTERNAL-SECRET-TOKEN"));
        let identifier = dns("example.test");
        let outcome = http01(&validator(config(port, 1)), &identifier).await;
        assert_problem(
            &outcome,
            ProblemType::IncorrectResponse,
            "is not the key authorization",
            &identifier,
        );
        assert_tells_nothing_read(&outcome, &["INTERNAL-SECRET", "127.0.0.1"]);
    }

    // ---- addresses the validator does not connect to ----

    /// A secret-keeping server: it answers every request with a secret, and records them.
    fn secret_server(listener: TcpListener) -> Arc<Seen> {
        http_server(listener, |_, _| respond(200, "INTERNAL-SECRET-TOKEN"))
    }

    #[tokio::test]
    async fn http01_does_not_connect_to_loopback_by_default() {
        let (listener, port) = bind_loopback().await;
        let seen = secret_server(listener);
        let validator = validator(public_only(config(port, 1)));
        let identifier = dns("example.test");
        let outcome = http01(&validator, &identifier).await;
        assert_problem(
            &outcome,
            ProblemType::Connection,
            "does not connect to",
            &identifier,
        );
        assert_tells_nothing_read(&outcome, &["INTERNAL-SECRET", "127.0.0.1"]);
        assert!(seen.requests().is_empty());
    }

    /// `::ffff:127.0.0.1` is 127.0.0.1 to the kernel: refused even where 127.0.0.1 itself is
    /// explicitly allowed, since the policy judges the IPv4 address it carries.
    #[tokio::test]
    async fn http01_does_not_connect_to_an_ipv4_mapped_loopback_address() {
        let (listener, port) = bind_loopback().await;
        let seen = secret_server(listener);
        let mut config = config(port, 1);
        config.address_policy = AddressPolicy::public_only().allowing(LOCALHOST);
        let mapped = Identifier::Ip(IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()));
        let outcome = http01(&validator(config), &mapped).await;
        assert_problem(
            &outcome,
            ProblemType::Connection,
            "does not connect to",
            &mapped,
        );
        assert!(seen.requests().is_empty());
    }

    /// The reproduction of issue 17: an allowed server redirects to another address, where
    /// the secret is. The redirect's own address is checked, by IP and by name.
    #[tokio::test]
    async fn http01_does_not_follow_a_redirect_to_a_refused_address() {
        let (listener, port) = bind_loopback().await;
        let internal = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let secret = secret_server(
            TcpListener::bind((internal, port))
                .await
                .expect("test listener on 127.0.0.2"),
        );
        let metadata = "/latest/meta-data/iam/security-credentials/role";
        let seen = http_server(listener, move |n, _| match n % 2 {
            0 => redirect(302, &format!("http://127.0.0.2:{port}{metadata}")),
            _ => redirect(302, &format!("http://metadata.test:{port}{metadata}")),
        });
        let mut lab = config(port, 1);
        lab.hosts.insert("metadata.test".into(), internal);
        let refusing = validator(ValidationConfig {
            address_policy: AddressPolicy::public_only().allowing(LOCALHOST),
            ..lab.clone()
        });
        let identifier = dns("example.test");
        for _ in 0..2 {
            let outcome = http01(&refusing, &identifier).await;
            assert_problem(
                &outcome,
                ProblemType::Connection,
                "(after 1 redirect) leads only to addresses the validator does not connect to",
                &identifier,
            );
            assert_tells_nothing_read(
                &outcome,
                &["INTERNAL-SECRET", "127.0.0.2", "meta-data", "metadata.test"],
            );
        }
        assert_eq!(seen.requests().len(), 2);
        assert!(secret.requests().is_empty());

        // Allowed, the same redirects are followed (and the body is still not echoed).
        let outcome = http01(&validator(lab), &identifier).await;
        assert_problem(
            &outcome,
            ProblemType::IncorrectResponse,
            "(after 1 redirect) is not the key authorization",
            &identifier,
        );
        assert_tells_nothing_read(&outcome, &["INTERNAL-SECRET", "127.0.0.2", "meta-data"]);
        assert_eq!(secret.requests().len(), 1);
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

    /// The name in a redirect is the network's, not the client's: how its lookup went is not
    /// told, so the validator cannot be used to probe the server's resolver.
    #[tokio::test]
    async fn http01_does_not_say_why_a_redirect_target_did_not_resolve() {
        let (listener, port) = bind_loopback().await;
        http_server(listener, move |_, _| {
            redirect(302, &format!("http://db.corp.internal:{port}/"))
        });
        let mut config = config(port, 1);
        config.dns_resolver = Some(dns_server(Zone::default()).await);
        let identifier = dns("example.test");
        let outcome = http01(&validator(config), &identifier).await;
        assert_problem(
            &outcome,
            ProblemType::Dns,
            "the redirect target's name could not be resolved",
            &identifier,
        );
        assert_tells_nothing_read(&outcome, &["corp.internal"]);
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
        assert_tells_nothing_read(&outcome, &["127.0.0.1"]);
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
}
