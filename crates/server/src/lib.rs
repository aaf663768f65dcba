//! certmint's front doors over HTTP: the `/api/v2` REST API, health, metrics and the OpenAPI
//! document, on an HTTPS listener and a plain-HTTP one.
//!
//! Trust boundary: everything arriving here is untrusted. The access guard authenticates and
//! checks each route's declared permission before any handler runs; handlers only parse, make
//! one call into the authority, and render.

pub mod access;
pub(crate) mod api;
mod archive;
pub mod bootstrap;
pub mod client_address;
pub mod client_auth;
pub mod config_reference;
mod console;
mod disk;
mod envelope;
mod error;
mod extract;
mod http_cache;
pub mod listen;
mod metrics;
mod openapi;
mod rate_limit;
mod security_headers;
pub mod settings;
pub mod tls;

/// Issuance allocates and frees many small buffers on every core at once (DER, names, rows);
/// glibc's allocator spent a tenth of the CPU of the issuance benchmark on that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use authority::Authority;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::PrometheusHandle;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use access::{Access, AccessTable};
pub use bootstrap::{BootError, Instance, Secrets};
pub use error::ApiError;
pub use settings::Settings;

/// What every handler can reach.
#[derive(Debug)]
pub struct Shared {
    /// The registration authority.
    pub authority: Arc<Authority>,
    /// The settings in force.
    pub settings: Settings,
    /// Each route's access rule, read from the OpenAPI document.
    pub access: AccessTable,
    /// The limits on the doors that check passwords.
    pub limits: rate_limit::Limiters,
    /// The Prometheus recorder.
    pub metrics: PrometheusHandle,
    /// When this process started serving.
    pub started_at: OffsetDateTime,
    /// This node's name, as its job runs and leases carry it.
    pub node: String,
    /// The certificate the HTTPS listener presents.
    pub listener: Arc<tls::ListenerCert>,
    /// The OpenAPI document as served.
    pub openapi: serde_json::Value,
    /// The console's work in progress on this node.
    pub(crate) works: console::Works,
    /// Raised when this node must start again (after a restore replaced the database).
    restart: Arc<tokio::sync::Notify>,
    /// The base of every URL handed to clients (`external_url`), when set.
    pub external_url: Option<String>,
    /// The proxies whose forwarding headers name the client.
    pub proxies: Arc<client_address::TrustedProxies>,
}

impl Shared {
    /// Asks the process to start this node again once the response in hand has gone out.
    pub(crate) fn restart_soon(&self) {
        let restart = self.restart.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            restart.notify_one();
        });
    }

    /// Waits until this node must start again: open and start it anew (`certmint serve`
    /// does), since what it holds in memory no longer matches the database.
    pub async fn restart_requested(&self) {
        self.restart.notified().await;
    }

    /// The absolute base URL of links sent out of band (mail): `external_url`, else
    /// `public_url`. Never the request's Host header, which the client chooses.
    pub fn public_base(&self) -> String {
        self.external_url
            .clone()
            .or_else(|| self.settings.public_url().ok())
            .unwrap_or_default()
    }

    /// `path` as clients are shown it: under `external_url` when that is set, else as is.
    pub fn link(&self, path: &str) -> String {
        match &self.external_url {
            Some(base) => format!("{base}{path}"),
            None => path.to_owned(),
        }
    }
}

/// Shared state, cheap to clone.
pub type App = Arc<Shared>;

/// Builds the router and its state, for node `node` presenting `listener` on HTTPS.
///
/// # Errors
/// [`BootError::Settings`] when a route lacks an access declaration or metrics cannot start.
pub fn build(
    authority: Arc<Authority>,
    settings: Settings,
    listener: Arc<tls::ListenerCert>,
    node: String,
) -> Result<(Router, App), BootError> {
    let (router, mut doc) = api::routes(&settings).split_for_parts();
    let (responder, responder_doc) = api::responder_routes(&settings).split_for_parts();
    doc.merge(responder_doc);
    openapi::unique_operation_ids(&mut doc);
    let openapi = serde_json::to_value(&doc).map_err(|e| BootError::Settings(e.to_string()))?;
    let access = AccessTable::from_openapi(&openapi).map_err(BootError::Settings)?;
    let settings_error = |e: settings::SettingsError| BootError::Settings(e.to_string());
    let external_url = settings.external_url().map_err(settings_error)?;
    let proxies = Arc::new(settings.trusted_proxies().map_err(settings_error)?);
    let app = Arc::new(Shared {
        limits: rate_limit::Limiters::new(settings.auth_rate_limit_per_minute),
        metrics: metrics::handle().map_err(BootError::Settings)?,
        started_at: authority.now(),
        node,
        listener,
        authority,
        settings,
        access,
        openapi: openapi::publishable(&openapi),
        works: console::Works::default(),
        restart: Arc::new(tokio::sync::Notify::new()),
        external_url,
        proxies,
    });
    let max_body = app.settings.max_body_bytes;
    let router = router
        .fallback(unrouted)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn_with_state(app.clone(), access::guard))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let request_id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(app.clone());
    // The responder's routes (OCSP, CRLs, CA certificates) stay off the middleware stack for
    // speed (see BENCHMARKS.md): they get their one header from a layer that needs no boxing.
    let responder = responder
        .with_state(app.clone())
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            axum::http::HeaderValue::from_static("nosniff"),
        ));
    let router = responder.merge(
        router
            .merge(console::routes(app.clone()))
            .layer(axum::middleware::from_fn(security_headers::add)),
    );
    Ok((router, app))
}

/// Marks 404s that no route produced, so clients (and tests) can tell them from a missing
/// resource.
pub const UNROUTED_HEADER: &str = "x-certmint-unrouted";

async fn unrouted(uri: axum::http::Uri) -> impl IntoResponse {
    let mut response = ApiError::not_found(format!("no route for {}", uri.path())).into_response();
    response
        .headers_mut()
        .insert(UNROUTED_HEADER, axum::http::HeaderValue::from_static("1"));
    response
}

async fn wrong_method() -> impl IntoResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

/// A server that is listening.
#[derive(Debug)]
pub struct Running {
    /// Where HTTPS is served.
    pub https_addr: SocketAddr,
    /// Where plain HTTP is served, if enabled.
    pub http_addr: Option<SocketAddr>,
    /// The state behind both listeners.
    pub app: App,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, waits for requests in flight (up to the grace period), and closes the
    /// database.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // Requests queued for key work would each hold the shutdown up for seconds.
        self.app.authority.cpu().close();
        for task in self.tasks {
            let _ = task.await;
        }
        self.app.authority.close().await;
    }
}

/// Binds the listeners and starts serving.
///
/// # Errors
/// [`BootError::Io`] when a socket cannot tell its address; [`BootError::Settings`] as for
/// [`build`].
pub async fn start(instance: Instance) -> Result<Running, BootError> {
    let limits = listen::Limits {
        header_read_timeout: Duration::from_secs(
            instance.settings.header_read_timeout_seconds.max(1),
        ),
        max_connections: instance.settings.max_connections.max(1),
        grace: Duration::from_secs(instance.settings.shutdown_grace_seconds),
    };
    let https_addr = bootstrap::local_addr(&instance.https)?;
    let http_addr = instance
        .http
        .as_ref()
        .map(bootstrap::local_addr)
        .transpose()?;
    let node = authority::node_name()?;
    let (router, app) = build(
        instance.authority,
        instance.settings,
        instance.listener,
        node.clone(),
    )?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = vec![
        tokio::spawn(
            app.authority
                .clone()
                .run_background_as(node, stopped.clone()),
        ),
        tokio::spawn(tls::follow(
            app.authority.clone(),
            app.listener.clone(),
            stopped.clone(),
        )),
    ];
    tasks.push(tokio::spawn(listen::serve(
        instance.https,
        router.clone(),
        Some(instance.tls),
        stopped.clone(),
        limits,
        app.proxies.clone(),
    )));
    if let Some(http) = instance.http {
        tasks.push(tokio::spawn(listen::serve(
            http,
            router,
            None,
            stopped,
            limits,
            app.proxies.clone(),
        )));
    }
    tracing::info!(%https_addr, http_addr = ?http_addr, "certmint is listening");
    Ok(Running {
        https_addr,
        http_addr,
        app,
        stop,
        tasks,
    })
}
