//! Test servers (HTTP, DNS) and helpers the challenges' tests share.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::{RData, Record};
use http_body_util::Full;
use hyper::header::HOST;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use super::{ValidationConfig, Validator};
use crate::acme::{Identifier, Problem, ProblemType};
use crate::outbound::AddressPolicy;

pub(super) const TOKEN: &str = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
pub(super) const KEY_AUTHORIZATION: &str =
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ";
pub(super) const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub(super) type Outcome = Result<(), Problem>;

pub(super) fn dns(name: &str) -> Identifier {
    Identifier::Dns(name.to_owned())
}

/// A configuration for loopback tests: private addresses allowed, the test names map to
/// 127.0.0.1, one attempt, and a DNS server address where nothing answers (tests that use DNS
/// set their own).
pub(super) fn config(http_port: u16, tls_port: u16) -> ValidationConfig {
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
        address_policy: AddressPolicy::dangerous_allow_private(),
        ..ValidationConfig::default()
    }
}

/// `config` with the default address policy: public addresses only.
pub(super) fn public_only(config: ValidationConfig) -> ValidationConfig {
    ValidationConfig {
        address_policy: AddressPolicy::public_only(),
        ..config
    }
}

pub(super) fn validator(config: ValidationConfig) -> Validator {
    Validator::new(config).expect("test validator")
}

#[track_caller]
pub(super) fn assert_problem(
    outcome: &Outcome,
    kind: ProblemType,
    detail: &str,
    identifier: &Identifier,
) {
    match outcome {
        Ok(()) => panic!("expected a {kind:?} problem, got success"),
        Err(problem) => {
            assert_eq!(problem.kind, kind, "{problem}");
            assert!(problem.detail.contains(detail), "{problem}");
            assert_eq!(problem.identifier.as_deref(), Some(identifier), "{problem}");
        }
    }
}

/// The problem's detail holds none of `forbidden`: what the network said, or where the
/// validator connected.
#[track_caller]
pub(super) fn assert_tells_nothing_read(outcome: &Outcome, forbidden: &[&str]) {
    let Err(problem) = outcome else {
        panic!("expected a problem, got success");
    };
    for text in forbidden {
        assert!(!problem.detail.contains(text), "{text:?} in {problem}");
    }
}

// ---- an HTTP server ----

/// Requests an [`http_server`] saw: (Host header, path).
#[derive(Default)]
pub(super) struct Seen(Mutex<Vec<(String, String)>>);

impl Seen {
    pub(super) fn requests(&self) -> Vec<(String, String)> {
        self.0.lock().map(|seen| seen.clone()).unwrap_or_default()
    }
}

type Handler = dyn Fn(usize, &str) -> Response<Full<Bytes>> + Send + Sync;

/// Serves HTTP/1.1 on `listener`; `handler` gets the request's number (from 0) and path.
pub(super) fn http_server(
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

pub(super) async fn bind_loopback() -> (TcpListener, u16) {
    let listener = TcpListener::bind((LOCALHOST, 0))
        .await
        .expect("test listener");
    let port = listener.local_addr().expect("test address").port();
    (listener, port)
}

pub(super) fn respond(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = StatusCode::from_u16(status).expect("test status");
    response
}

pub(super) const CHALLENGE_PATH: &str = concat!(
    "/.well-known/acme-challenge/",
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
);

pub(super) fn answer_challenge(_: usize, path: &str) -> Response<Full<Bytes>> {
    if path == CHALLENGE_PATH {
        respond(200, format!("{KEY_AUTHORIZATION} \r\n"))
    } else {
        respond(404, "not found")
    }
}

// ---- a DNS server ----

/// Names (lower case, with the final dot) and their records; everything else is NXDOMAIN.
#[derive(Default, Clone)]
pub(super) struct Zone {
    records: HashMap<String, Vec<RData>>,
    pub(super) servfail: HashSet<String>,
    /// Answered over UDP with the TC bit and no records; the full answer only over TCP.
    pub(super) truncated: HashSet<String>,
}

impl Zone {
    pub(super) fn with(mut self, name: &str, rdata: RData) -> Self {
        self.records.entry(name.to_owned()).or_default().push(rdata);
        self
    }
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
pub(super) async fn dns_server(zone: Zone) -> SocketAddr {
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
