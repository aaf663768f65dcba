//! The database unreachable under OCSP load: the responder keeps serving the answers it
//! signed before, until their nextUpdate, answers what it holds nothing for with `tryLater`
//! (never `internalError`, never an HTTP error), CRLs and CA certificates keep downloading,
//! and everything recovers by itself when the database is back. On PostgreSQL the database is
//! cut off by a proxy the test controls; on SQLite another connection holds its write lock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG};
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::common::{ADMIN_PASSWORD, Auth, TestResult, database_url};
use crate::ocsp::{Pki, REQUEST_TYPE, TRY_LATER, assert_verified, plain, run};

/// How long each load phase sends requests.
const LOAD: Duration = Duration::from_secs(3);
/// Concurrent clients during the load.
const CLIENTS: usize = 4;
/// More than a response's validity (24 hours by default) takes to reach its refresh time.
const PAST_REFRESH: time::Duration = time::Duration::hours(13);

/// A TCP proxy to PostgreSQL that the test can cut (every connection dropped, new ones
/// refused) and restore on the same port.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    serving: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> TestResult<Self> {
        let mut proxy = Self {
            addr: "127.0.0.1:0".parse()?,
            upstream,
            serving: None,
        };
        proxy.restore()?;
        Ok(proxy)
    }

    /// Listens again on the same port and forwards to PostgreSQL.
    fn restore(&mut self) -> TestResult {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(self.addr)?;
        let listener = socket.listen(64)?;
        self.addr = listener.local_addr()?;
        self.serving = Some(tokio::spawn(forward(listener, self.upstream)));
        Ok(())
    }

    /// Stops listening and drops every connection: the connections are tasks of the serving
    /// task's set, which aborting it drops.
    async fn cut(&mut self) {
        if let Some(serving) = self.serving.take() {
            serving.abort();
            let _ = serving.await;
        }
    }
}

async fn forward(listener: TcpListener, upstream: SocketAddr) {
    let mut connections = JoinSet::new();
    while let Ok((mut inbound, _)) = listener.accept().await {
        connections.spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// How the test takes the database away.
enum Backend {
    Postgres(Proxy),
    Sqlite,
}

/// The database taken away: the proxy cut, or SQLite's write lock held by another connection.
enum Outage {
    Cut,
    Locked(store::Store, store::WriteTx),
}

/// A server on the database of this test pass; on PostgreSQL, reached through a [`Proxy`].
async fn start() -> TestResult<(Pki, Backend)> {
    let url = database_url().await;
    if url.is_empty() {
        let pki = Pki::start_with(|_| {}).await?;
        return Ok((pki, Backend::Sqlite));
    }
    let mut proxied = reqwest::Url::parse(&url)?;
    let host = proxied
        .host_str()
        .ok_or("no host in the database URL")?
        .to_owned();
    let port = proxied.port().unwrap_or(5432);
    let upstream = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .next()
        .ok_or("the database host does not resolve")?;
    let proxy = Proxy::start(upstream).await?;
    proxied
        .set_host(Some("127.0.0.1"))
        .map_err(|e| e.to_string())?;
    proxied
        .set_port(Some(proxy.addr.port()))
        .map_err(|()| "port")?;
    let proxied = proxied.to_string();
    let pki = Pki::start_with(move |s| s.database_url = proxied).await?;
    Ok((pki, Backend::Postgres(proxy)))
}

/// What each load request must get back.
struct Expected {
    name: String,
    request: Vec<u8>,
    answer: Vec<u8>,
}

/// What the load got: right answers by name, and every other one described.
#[derive(Default)]
struct Tally {
    right: HashMap<String, u64>,
    wrong: Vec<String>,
}

/// Sends each request in `expected` from [`CLIENTS`] clients of its own, one after the other,
/// for [`LOAD`] (a slow answer for one certificate holds up no other); counts the answers.
async fn load(url: &str, expected: &Arc<Vec<Expected>>) -> TestResult<Tally> {
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for which in (0..expected.len()).flat_map(|i| [i; CLIENTS]) {
        let (url, expected, http) = (url.to_owned(), expected.clone(), plain());
        clients.spawn(async move {
            let e = &expected[which];
            let mut tally = Tally::default();
            while started.elapsed() < LOAD {
                match ask(&http, &url, e).await {
                    None => *tally.right.entry(e.name.clone()).or_default() += 1,
                    Some(wrong) => tally.wrong.push(wrong),
                }
            }
            tally
        });
    }
    let mut all = Tally::default();
    while let Some(tally) = clients.join_next().await {
        let tally = tally?;
        for (name, n) in tally.right {
            *all.right.entry(name).or_default() += n;
        }
        all.wrong.extend(tally.wrong);
    }
    Ok(all)
}

/// POSTs `e`'s request: `None` for its expected answer, else what came instead.
async fn ask(http: &reqwest::Client, url: &str, e: &Expected) -> Option<String> {
    let sent = http
        .post(url)
        .header(CONTENT_TYPE, REQUEST_TYPE)
        .body(e.request.clone())
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(err) => return Some(format!("{}: {err}", e.name)),
    };
    let status = response.status();
    match response.bytes().await {
        Ok(body) if status == StatusCode::OK && body == e.answer => None,
        Ok(body) => Some(format!(
            "{}: HTTP {status}, {} octets starting {:02x?}",
            e.name,
            body.len(),
            &body[..body.len().min(8)]
        )),
        Err(err) => Some(format!("{}: body: {err}", e.name)),
    }
}

/// GETs `path` from the plain-HTTP listener: status, the headers that matter, body.
async fn download(pki: &Pki, path: &str) -> TestResult<(StatusCode, Option<String>, Vec<u8>)> {
    let response = plain()
        .get(format!("{}{path}", pki.server.http))
        .timeout(Duration::from_secs(30))
        .send()
        .await?;
    let status = response.status();
    let cache = response
        .headers()
        .get(CACHE_CONTROL)
        .zip(response.headers().get(ETAG))
        .and_then(|(c, e)| Some(format!("{} {}", c.to_str().ok()?, e.to_str().ok()?)));
    Ok((status, cache, response.bytes().await?.to_vec()))
}

/// GETs `path` with API key `key`: the status and the body as text.
async fn get(pki: &Pki, path: &str, key: &str) -> TestResult<(StatusCode, String)> {
    let response = pki
        .server
        .request(reqwest::Method::GET, path, &Auth::Bearer(key), None)
        .await;
    Ok((response.status(), response.text().await?))
}

/// During the outage, long after the keys were last checked against the database: the
/// responder's status and the metrics are read with a key this node checked before, and
/// report the outage; the key's permissions still hold. When the database cannot be read at
/// all (the proxy cut), a key this node never checked, and any route that does not answer from
/// memory, get 503; a held SQLite write lock leaves reads working, so there they get through.
async fn see_the_outage(
    pki: &Pki,
    monitor: &str,
    metrics_only: &str,
    unseen: &str,
    unreadable: bool,
) -> TestResult {
    let (status, body) = get(pki, "/metrics", monitor).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("certmint_ocsp_database_reachable 0"),
        "the metrics do not say the database is unreachable"
    );
    let (status, body) = get(pki, "/api/v2/ocsp/status", monitor).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let view: Value = serde_json::from_str(&body)?;
    assert_eq!(view["data"]["database"], "unreachable", "{body}");
    assert!(view["data"]["last_database_failure"].is_string(), "{body}");
    assert_eq!(view["data"]["cas_listed"], !unreadable, "{body}");
    let (status, body) = get(pki, "/api/v2/ocsp/status", metrics_only).await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    if unreadable {
        for (path, key) in [
            ("/metrics", unseen),
            ("/api/v2/ocsp/status", unseen),
            ("/api/v2/ocsp/stats", monitor),
        ] {
            let (status, body) = get(pki, path, key).await?;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        }
    }
    Ok(())
}

async fn ocsp_status(pki: &Pki, session: &crate::common::Session) -> TestResult<Value> {
    let (status, body) = pki
        .server
        .call(
            reqwest::Method::GET,
            "/api/v2/ocsp/status",
            &Auth::Session(session),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(body["data"].clone())
}

#[tokio::test]
async fn ocsp_crls_and_ca_certificates_are_served_through_a_database_outage() -> TestResult {
    let (pki, mut backend) = start().await?;
    let dir = pki.path("");

    // Two certificates asked about with the real client, so their answers are held; one
    // issued but never asked about.
    pki.issue("good").await?;
    let revoked = pki.issue("revoked").await?;
    pki.issue("unasked").await?;
    pki.revoke(revoked, "keyCompromise").await?;
    let mut expected = Vec::new();
    for (name, says) in [("good", ": good"), ("revoked", ": revoked")] {
        let cert = format!("{name}.pem");
        let der = format!("{name}.der");
        let out = pki
            .ocsp(&[
                "-issuer",
                "issuing.pem",
                "-cert",
                &cert,
                "-no_nonce",
                "-respout",
                &der,
            ])
            .await?;
        assert_verified(&out);
        assert!(out.contains(&format!("{cert}{says}")), "{out}");
        expected.push(Expected {
            name: name.into(),
            request: pki
                .request(
                    &format!("{name}.req"),
                    &["-issuer", "issuing.pem", "-cert", &cert, "-no_nonce"],
                )
                .await?,
            answer: std::fs::read(pki.path(&der))?,
        });
    }
    expected.push(Expected {
        name: "unasked".into(),
        request: pki
            .request(
                "unasked.req",
                &[
                    "-issuer",
                    "issuing.pem",
                    "-cert",
                    "unasked.pem",
                    "-no_nonce",
                ],
            )
            .await?,
        answer: TRY_LATER.to_vec(),
    });
    let expected = Arc::new(expected);

    // The CRL and the CA certificates, as relying parties fetch them.
    let refid = {
        let (status, cas) = pki
            .server
            .call(
                reqwest::Method::GET,
                "/api/v2/cas",
                &Auth::Session(&pki.admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{cas}");
        cas["data"]
            .as_array()
            .and_then(|cas| cas.iter().find(|c| c["is_default"] == true))
            .and_then(|c| c["refid"].as_str())
            .ok_or("default CA")?
            .to_owned()
    };
    let downloads = [
        format!("/crl/{refid}.crl"),
        format!("/ca/{refid}.cer"),
        format!("/ca/{refid}.pem"),
    ];
    let mut before = Vec::new();
    for path in &downloads {
        let deadline = Instant::now() + Duration::from_secs(20);
        let got = loop {
            let got = download(&pki, path).await?;
            if got.0 == StatusCode::OK || Instant::now() > deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(got.0, StatusCode::OK, "{path}");
        before.push(got);
    }

    // A monitoring key and a narrower one, both used before the outage as a scraper would,
    // and one never used. All created first: creating a key changes the credentials, and
    // what was remembered before the change is not trusted.
    let (_, monitor) = pki
        .server
        .api_key(&pki.admin, &["read:metrics", "read:cas"])
        .await;
    let (_, metrics_only) = pki.server.api_key(&pki.admin, &["read:metrics"]).await;
    let (_, unseen) = pki
        .server
        .api_key(&pki.admin, &["read:metrics", "read:cas"])
        .await;
    for key in [&monitor, &metrics_only] {
        let (status, body) = get(&pki, "/metrics", key).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // The database goes away.
    let outage = match &mut backend {
        Backend::Postgres(proxy) => {
            proxy.cut().await;
            Outage::Cut
        }
        Backend::Sqlite => {
            let store = pki.server.raw_store().await;
            let lock = store.begin_write().await?;
            Outage::Locked(store, lock)
        }
    };
    let url = pki.url();
    let first = load(&url, &expected).await?;
    see_the_outage(
        &pki,
        &monitor,
        &metrics_only,
        &unseen,
        matches!(outage, Outage::Cut),
    )
    .await?;
    // Past their refresh time, the answers held would be checked against the database.
    pki.server.clock.advance(PAST_REFRESH);
    let second = load(&url, &expected).await?;
    for (phase, tally) in [("fresh", &first), ("due for refresh", &second)] {
        assert!(tally.wrong.is_empty(), "{phase}: {:#?}", tally.wrong);
        for e in expected.iter() {
            assert!(
                tally.right.get(&e.name).copied().unwrap_or(0) > 0,
                "{phase}: no answer for {}",
                e.name
            );
        }
        eprintln!("{phase}: {:?}", tally.right);
    }
    for (path, (status, cache, body)) in downloads.iter().zip(&before) {
        let now = download(&pki, path).await?;
        assert_eq!(now.0, *status, "{path} during the outage");
        assert_eq!(now.2, *body, "{path} during the outage");
        if path.starts_with("/crl/") {
            assert!(now.1.is_some() && cache.is_some(), "{path}: {:?}", now.1);
        }
    }
    // An answer given during the outage, as the real client reads it.
    let resp = pki.path("outage-good.der");
    let answered = plain()
        .post(&url)
        .header(CONTENT_TYPE, REQUEST_TYPE)
        .body(expected[0].request.clone())
        .send()
        .await?
        .bytes()
        .await?;
    std::fs::write(&resp, &answered)?;
    let (_, out) = run(
        &dir,
        &[
            "ocsp",
            "-respin",
            "outage-good.der",
            "-CAfile",
            "chain.pem",
            "-issuer",
            "issuing.pem",
            "-cert",
            "good.pem",
            "-no_nonce",
        ],
    )
    .await?;
    assert!(out.contains("good.pem: good"), "{out}");

    // It comes back; the server recovers by itself.
    match (outage, &mut backend) {
        (Outage::Cut, Backend::Postgres(proxy)) => proxy.restore()?,
        (Outage::Locked(store, lock), _) => {
            drop(lock);
            store.close().await;
        }
        _ => return Err("outage and backend disagree".into()),
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let unasked = loop {
        let answer = plain()
            .post(&url)
            .header(CONTENT_TYPE, REQUEST_TYPE)
            .body(expected[2].request.clone())
            .send()
            .await?;
        assert_eq!(answer.status(), StatusCode::OK);
        let body = answer.bytes().await?.to_vec();
        if body != TRY_LATER || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_ne!(
        unasked, TRY_LATER,
        "still tryLater 30 s after the database came back"
    );
    std::fs::write(pki.path("unasked.der"), &unasked)?;
    let (_, out) = run(
        &dir,
        &[
            "ocsp",
            "-respin",
            "unasked.der",
            "-CAfile",
            "chain.pem",
            "-issuer",
            "issuing.pem",
            "-cert",
            "unasked.pem",
            "-no_nonce",
            // Signed by the server's clock, 13 hours ahead of this one.
            "-validity_period",
            "50000",
        ],
    )
    .await?;
    assert!(out.contains("unasked.pem: good"), "{out}");

    // The session expired with the clock's jump: a new one, and issuance works again.
    let admin = pki.server.login("admin", ADMIN_PASSWORD).await;
    let (status, body) = crate::common::post(
        &pki.server,
        &admin,
        "/api/v2/certificates",
        serde_json::json!({"common_name": "after.example.test", "validity_days": 30}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let status = ocsp_status(&pki, &admin).await?;
    assert_eq!(status["database"], "ok", "{status}");
    assert!(status["last_database_failure"].is_string(), "{status}");
    let stale = status["served_stale_during_outage"]
        .as_u64()
        .ok_or("served_stale")?;
    let try_later = status["try_later"].as_u64().ok_or("try_later")?;
    // Every answer for the held certificates in the second phase was served stale, and every
    // answer for the one never asked about was tryLater.
    let held = second.right["good"] + second.right["revoked"];
    assert!(
        stale >= held,
        "{stale} served stale, {held} answered: {status}"
    );
    let asked_unasked = first.right["unasked"] + second.right["unasked"];
    assert!(
        try_later >= asked_unasked,
        "{try_later} tryLater, {asked_unasked} sent: {status}"
    );
    let metrics = pki
        .server
        .request(
            reqwest::Method::GET,
            "/metrics",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(metrics.status(), StatusCode::OK);
    let metrics = metrics.text().await?;
    for name in [
        "certmint_ocsp_served_stale_total",
        "certmint_ocsp_database_reachable",
        "certmint_ocsp_database_last_failure_timestamp_seconds",
        "certmint_ocsp_answers_total{answer=\"try_later\"}",
    ] {
        assert!(metrics.contains(name), "no {name} in the metrics");
    }
    Ok(())
}
