//! The accept loops: HTTPS and plain HTTP, the same router behind both, and graceful shutdown.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::client_address::TrustedProxies;
use crate::client_auth::ClientChain;

/// The connection a request came in on, and who sent the request.
#[derive(Debug, Clone)]
pub struct Conn {
    /// The TCP peer: the client, or the last proxy on the way.
    pub peer: SocketAddr,
    /// The client's address, as [`TrustedProxies::client`] resolves it from the peer and the
    /// request's forwarding headers: what rate limits and audit records use.
    pub client: IpAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The certificate chain the client presented in the TLS handshake, its own first. Only
    /// the handshake signature was checked ([`crate::client_auth`]): whoever relies on it
    /// checks the chain.
    pub client_chain: Option<ClientChain>,
}

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a listener allows each client, so that slow or idle clients cannot hold the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client has to send a request's headers; also how long a kept-alive HTTP/1
    /// connection may sit idle between requests.
    pub header_read_timeout: Duration,
    /// Connections open at once; past this, new connections are closed as soon as accepted.
    pub max_connections: usize,
    /// How long shutdown waits for the requests in flight.
    pub grace: Duration,
}

/// Accepts connections on `listener` until `stop` turns true, then waits up to the grace
/// period for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
    proxies: Arc<TrustedProxies>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%remote, limit = limits.max_connections, "connection limit reached; closing a new connection");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        match &acceptor {
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                let router = router.clone();
                let proxies = proxies.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let stream =
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
                            .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                    let client_chain = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .filter(|chain| !chain.is_empty())
                        .map(|chain| {
                            Arc::new(chain.iter().map(|c| c.clone().into_owned()).collect())
                        });
                    let service = service(
                        router,
                        Conn {
                            peer: remote,
                            client: remote.ip(),
                            tls: true,
                            client_chain,
                        },
                        proxies,
                    );
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(connection.into_owned()).await {
                        tracing::debug!(%remote, error = %e, "connection ended with an error");
                    }
                });
            }
            None => {
                let service = service(
                    router.clone(),
                    Conn {
                        peer: remote,
                        client: remote.ip(),
                        tls: false,
                        client_chain: None,
                    },
                    proxies.clone(),
                );
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                    .into_owned();
                let watched = graceful.watch(connection);
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = watched.await {
                        tracing::debug!(%remote, error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(limits.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period ended with requests still in flight");
    }
}

/// The router as a hyper service for one connection, each request carrying `conn` with its
/// own client address. Nothing else reads the peer or the forwarding headers, so every
/// consumer sees this one answer (and axum's `ConnectInfo`, which would name the peer, is not
/// offered).
fn service(
    router: Router,
    conn: Conn,
    proxies: Arc<TrustedProxies>,
) -> TowerToHyperService<
    tower::util::MapRequest<Router, impl FnMut(Request<Incoming>) -> Request<Incoming> + Clone>,
> {
    TowerToHyperService::new(router.map_request(move |mut req: Request<Incoming>| {
        let client = proxies.client(conn.peer.ip(), req.headers());
        req.extensions_mut().insert(Conn {
            client,
            ..conn.clone()
        });
        req
    }))
}
