//! Lifecycle automation (issue 21): how fast the `webhook_delivery` job delivers a backlog of
//! events, and what the `expiry_scan` job costs over a large inventory.
//!
//! Webhooks: a receiver in a second process (this binary again, an axum server on 127.0.0.1)
//! checks each request's `X-Certmint-Signature` and counts deliveries, per endpoint, and
//! whether each endpoint's events arrive in order. The authority (SQLite) gets one endpoint,
//! then four, and `CERTMINT_BENCH_EVENTS` outbox events (20,000) queued through the store; the
//! job is then asked to run (through the scheduler, its own schedule switched off) again and
//! again until the receiver has every delivery. Reported: deliveries per second, the job's own
//! run time, and the CPU time per delivery of the server process and of the receiver.
//!
//! Expiry scan: `CERTMINT_BENCH_CERTIFICATES` certificates (1,000,000) stored in bulk through
//! the store, expiring evenly over the next two years, expiry alerts at 30, 14, 7 and 1 days,
//! then the scan run twice, each in a child process of its own so that its peak RSS (`VmHWM`)
//! is the scan's alone: the first run announces every certificate within 30 days, the second
//! finds them all announced. With `CERTMINT_TEST_DATABASE_URL` set, the scan is measured on a
//! fresh PostgreSQL database too.
//!
//! `cargo bench -p certmint-server --bench lifecycle` runs it in full; `-- webhooks` or
//! `-- expiry` runs one part. Under `cargo test` it runs with 40 events and 2,000
//! certificates, so that it keeps working.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use authority::jobs::{ExpiryAlertsChange, JobChange};
use authority::{Authority, Principal, SystemClock, WebhookInput};
use certmint_server::Settings;
use store::{CertFields, NewCertificate, NewEvent};

mod process;
use process::{cpu_time, free_port};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The receiver's signing secret, shared by every endpoint.
const SECRET: &str = "whsec_benchmark_secret_0123456789";
/// Set (to the port it listens on) in the receiver process.
const RECEIVER: &str = "CERTMINT_BENCH_RECEIVER";
/// Set (to the data directory) in a scan process.
const SCAN: &str = "CERTMINT_BENCH_SCAN_DIR";
/// Set (to the database URL) in a scan process on PostgreSQL.
const SCAN_DATABASE: &str = "CERTMINT_BENCH_SCAN_DATABASE";
/// Rows stored per write transaction while loading.
const BATCH: usize = 5_000;
/// The most the webhook part waits for one run of deliveries.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(240);

fn main() -> Result<()> {
    if let Ok(port) = std::env::var(RECEIVER) {
        return receiver(port.parse()?);
    }
    if let Some(dir) = std::env::var_os(SCAN) {
        let database = std::env::var(SCAN_DATABASE).unwrap_or_default();
        return runtime()?.block_on(scan_once(Path::new(&dir), database));
    }
    let full = std::env::args().any(|a| a == "--bench");
    let number = |name: &str, full_value: usize, test_value: usize| -> Result<usize> {
        Ok(match std::env::var(name) {
            Ok(v) => v.parse()?,
            Err(_) if full => full_value,
            Err(_) => test_value,
        })
    };
    let events = number("CERTMINT_BENCH_EVENTS", 20_000, 40)?;
    let certificates = number("CERTMINT_BENCH_CERTIFICATES", 1_000_000, 2_000)?;
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    let runtime = runtime()?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("lifecycle automation, SQLite, {cores} cores");
    if wanted("webhooks") {
        for endpoints in [1, 4] {
            runtime.block_on(webhooks(events, endpoints))?;
        }
    }
    if wanted("expiry") {
        runtime.block_on(expiry(certificates, None))?;
        if full && let Ok(admin) = std::env::var("CERTMINT_TEST_DATABASE_URL") {
            let url = runtime.block_on(store::testing::fresh_postgres_database(&admin))?;
            runtime.block_on(expiry(certificates, Some(url)))?;
        }
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn settings(data: &Path, database_url: Option<&str>) -> Settings {
    Settings {
        data_dir: data.to_path_buf(),
        database_url: database_url.unwrap_or_default().to_owned(),
        listen: std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        http_listen: String::new(),
        ..Settings::default()
    }
}

async fn open(data: &Path, database_url: Option<&str>) -> Result<Arc<Authority>> {
    let settings = settings(data, database_url);
    Ok(Arc::new(
        certmint_server::bootstrap::open_authority(&settings, None, Arc::new(SystemClock)).await?,
    ))
}

/// A store connection beside the authority's, for loading rows in bulk.
async fn bulk_store(authority: &Authority, url: &str) -> Result<store::Store> {
    Ok(store::Store::connect(url, 2)
        .await?
        .with_chain_key(authority.vault().audit_chain_key()))
}

/// What the receiver counted.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// Deliveries with a good signature.
    good: u64,
    /// Deliveries with a missing or wrong signature.
    bad: u64,
    /// Deliveries whose event id was not above the endpoint's previous one.
    out_of_order: u64,
}

/// The receiver process: answers every POST 200 after checking its signature, and
/// `GET /count` with what it counted, until its parent kills it.
fn receiver(port: u16) -> Result<()> {
    type State = Arc<Mutex<(Counts, BTreeMap<String, u64>)>>;
    async fn hook(
        axum::extract::State(state): axum::extract::State<State>,
        axum::extract::Path(endpoint): axum::extract::Path<String>,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> &'static str {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let good = header("x-certmint-signature")
            .and_then(|s| s.split_once(','))
            .and_then(|(t, v1)| {
                let t: i64 = t.strip_prefix("t=")?.parse().ok()?;
                let body = std::str::from_utf8(&body).ok()?;
                Some(v1.strip_prefix("v1=")? == authority::sign_webhook(SECRET.as_bytes(), t, body))
            })
            .unwrap_or(false);
        let event: u64 = header("idempotency-key")
            .and_then(|k| k.parse().ok())
            .unwrap_or(0);
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        let (counts, last) = &mut *state;
        if good {
            counts.good += 1;
        } else {
            counts.bad += 1;
        }
        let previous = last.entry(endpoint).or_default();
        if event <= *previous {
            counts.out_of_order += 1;
        }
        *previous = event;
        "ok"
    }
    async fn count(axum::extract::State(state): axum::extract::State<State>) -> String {
        let (c, _) = *state.lock().unwrap_or_else(PoisonError::into_inner);
        format!("{} {} {}", c.good, c.bad, c.out_of_order)
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let state: State = Arc::default();
        let app = axum::Router::new()
            .route("/hook/{endpoint}", axum::routing::post(hook))
            .route("/count", axum::routing::get(count))
            .with_state(state);
        // The parent kills it; until then it serves.
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// The receiver process, with its port.
struct Receiver {
    child: std::process::Child,
    port: u16,
}

impl Receiver {
    async fn start() -> Result<Self> {
        let port = free_port()?;
        let child = std::process::Command::new(std::env::current_exe()?)
            .env(RECEIVER, port.to_string())
            .spawn()?;
        let receiver = Self { child, port };
        for _ in 0..250 {
            if receiver.counts().await.is_ok() {
                return Ok(receiver);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err("the receiver did not start within 5 s".into())
    }

    async fn counts(&self) -> Result<Counts> {
        let text = reqwest::get(format!("http://127.0.0.1:{}/count", self.port))
            .await?
            .text()
            .await?;
        let numbers: Vec<u64> = text
            .split_whitespace()
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()?;
        match numbers[..] {
            [good, bad, out_of_order] => Ok(Counts {
                good,
                bad,
                out_of_order,
            }),
            _ => Err(format!("the receiver answered {text}").into()),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks for a run of `job` and waits until it ended; returns its duration and summary.
async fn run_job(authority: &Authority, job: &str) -> Result<(Duration, String)> {
    let admin = Principal::local("bench");
    let before = authority.job(&admin, job).await?.row.runs;
    authority.request_job_run(&admin, job).await?;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let row = authority.job(&admin, job).await?.row;
        if row.runs > before
            && let Some(last) = row.last.filter(|l| l.finished_at.is_some())
        {
            if let Some(error) = last.error {
                return Err(format!("{job} failed: {error}").into());
            }
            let took = Duration::from_millis(u64::try_from(last.duration_ms.unwrap_or(0))?);
            return Ok((took, last.summary.unwrap_or_default()));
        }
    }
}

/// Delivers `events` events to `endpoints` endpoints and reports the rate.
async fn webhooks(events: usize, endpoints: usize) -> Result<()> {
    let data = tempfile::tempdir()?;
    let authority = open(data.path(), None).await?;
    authority.configure_webhooks(authority::outbound::AddressPolicy::dangerous_allow_private())?;
    let admin = Principal::local("bench");
    authority
        .update_job(
            &admin,
            "webhook_delivery",
            JobChange {
                enabled: Some(false),
                schedule: None,
            },
        )
        .await?;
    let receiver = Receiver::start().await?;
    for i in 0..endpoints {
        authority
            .create_webhook(
                &admin,
                WebhookInput {
                    name: Some(format!("receiver {i}")),
                    url: Some(format!("http://127.0.0.1:{}/hook/{i}", receiver.port)),
                    secret: Some(SECRET.into()),
                    ..WebhookInput::default()
                },
            )
            .await?;
    }
    let store = bulk_store(&authority, &settings(data.path(), None).database_url()).await?;
    let now = authority.now();
    for first in (0..events).step_by(BATCH) {
        let batch: Vec<NewEvent> = (first..events.min(first + BATCH))
            .map(|i| NewEvent {
                event_type: "certificate_issued".into(),
                resource_type: "certificate".into(),
                resource_id: (i + 1).to_string(),
                payload: serde_json::json!({
                    "ca_id": 1,
                    "serial": format!("{:032x}", i + 1),
                    "common_name": format!("host-{i}.example.com"),
                    "not_after": "2027-03-06T12:00:00Z",
                }),
            })
            .collect();
        let rows: Vec<_> = batch.iter().map(|e| (e, now)).collect();
        let mut tx = store.begin_write().await?;
        tx.queue_events(&rows).await?;
        tx.commit().await?;
    }
    store.close().await;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let background = tokio::spawn(authority.clone().run_background(stopped));
    let expected = (events * endpoints) as u64;
    let server_cpu = cpu_time(std::process::id());
    let receiver_cpu = cpu_time(receiver.child.id());
    let started = Instant::now();
    let (mut runs, mut job_time) = (0, Duration::ZERO);
    let mut counts = Counts::default();
    while counts.good + counts.bad < expected && started.elapsed() < DELIVERY_DEADLINE {
        let (took, _) = run_job(&authority, "webhook_delivery").await?;
        runs += 1;
        job_time += took;
        counts = receiver.counts().await?;
    }
    let wall = started.elapsed();
    let per_delivery = |before: Option<Duration>, pid: u32| {
        let spent = cpu_time(pid)?.checked_sub(before?)?;
        Some(spent.as_secs_f64() * 1e6 / counts.good.max(1) as f64)
    };
    let server_us = per_delivery(server_cpu, std::process::id());
    let receiver_us = per_delivery(receiver_cpu, receiver.child.id());
    let _ = stop.send(true);
    background.await?;
    authority.close().await;
    let delivered = counts.good + counts.bad;
    println!(
        "webhooks, {endpoints} endpoint(s), {events} events each: {delivered} of {expected} \
         delivered in {:.2} s ({:.0}/s), {runs} job runs taking {:.2} s ({:.0}/s of job time); \
         CPU per delivery: server {} µs, receiver {} µs; {} bad signatures, {} out of order",
        wall.as_secs_f64(),
        delivered as f64 / wall.as_secs_f64(),
        job_time.as_secs_f64(),
        delivered as f64 / job_time.as_secs_f64().max(1e-3),
        server_us.map_or("?".into(), |v| format!("{v:.0}")),
        receiver_us.map_or("?".into(), |v| format!("{v:.0}")),
        counts.bad,
        counts.out_of_order,
    );
    if counts.bad > 0 || counts.out_of_order > 0 {
        return Err("the receiver got deliveries badly signed or out of order".into());
    }
    if delivered < expected {
        return Err(format!(
            "only {delivered} of {expected} deliveries within {DELIVERY_DEADLINE:?}"
        )
        .into());
    }
    Ok(())
}

/// Stores `n` certificates expiring evenly over the next two years, switches expiry alerts
/// on, and runs the scan twice, each in a process of its own.
async fn expiry(n: usize, database_url: Option<String>) -> Result<()> {
    let data = tempfile::tempdir()?;
    let url = database_url.as_deref();
    let backend = if url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let authority = open(data.path(), url).await?;
    let admin = Principal::local("bench");
    authority
        .update_expiry_alerts(
            &admin,
            ExpiryAlertsChange {
                enabled: Some(true),
                thresholds: Some(vec![30, 14, 7, 1]),
                recipients: None,
            },
        )
        .await?;
    // The scheduled scan must not run beside the measured ones.
    authority
        .update_job(
            &admin,
            "expiry_scan",
            JobChange {
                enabled: Some(false),
                schedule: None,
            },
        )
        .await?;
    let store = bulk_store(&authority, &settings(data.path(), url).database_url()).await?;
    let started = Instant::now();
    let now = authority.now();
    let span = time::Duration::days(730);
    // About the size of a P-256 certificate's DER; the scan never reads it.
    let der = vec![0x30_u8; 600];
    for first in (0..n).step_by(BATCH) {
        let batch: Vec<NewCertificate> = (first..n.min(first + BATCH))
            .map(|i| {
                let not_after = now + span * ((i + 1) as f64 / n as f64);
                let cn = format!("host-{i}.example.com");
                NewCertificate {
                    refid: uuid::Uuid::now_v7().to_string(),
                    ca_id: None,
                    key_id: None,
                    template_id: None,
                    owner_id: None,
                    renewed_from: None,
                    description: None,
                    sans: vec![format!("dns:{cn}")],
                    is_ca: false,
                    source: authority::CertificateSource::Imported,
                    cert: CertFields {
                        subject: format!("CN={cn},O=Example"),
                        common_name: Some(cn),
                        issuer: "CN=Bench CA,O=Example".into(),
                        serial: format!("{:032x}", i + 1),
                        not_before: not_after - time::Duration::days(730),
                        not_after,
                        key_type: "EC P-256".into(),
                        signature_algorithm: "ecdsa-with-SHA256".into(),
                        subject_key_id: None,
                        authority_key_id: None,
                        fingerprint_sha256: format!("{:064x}", i + 1),
                        der: der.clone(),
                    },
                }
            })
            .collect();
        let rows: Vec<_> = batch.iter().map(|c| (c, now)).collect();
        let mut tx = store.begin_write().await?;
        tx.insert_certificates(&rows).await?;
        tx.commit().await?;
    }
    store.close().await;
    authority.close().await;
    let size = std::fs::metadata(data.path().join("certmint.db")).map_or(0, |m| m.len());
    println!(
        "expiry scan, {backend}: {n} certificates loaded in {:.1} s{}",
        started.elapsed().as_secs_f64(),
        if url.is_none() {
            format!(", database {} MiB", size / (1024 * 1024))
        } else {
            String::new()
        }
    );
    for label in ["first run", "second run (all announced)"] {
        let output = std::process::Command::new(std::env::current_exe()?)
            .env(SCAN, data.path())
            .env(SCAN_DATABASE, url.unwrap_or_default())
            .output()?;
        if !output.status.success() {
            return Err(format!(
                "the scan process failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        println!(
            "expiry scan, {backend}, {n} certificates, {label}: {}",
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(())
}

/// Peak resident set size so far, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A scan process: opens the authority, runs the scan once, prints what it took.
async fn scan_once(data: &Path, database_url: String) -> Result<()> {
    let url = (!database_url.is_empty()).then_some(database_url);
    let authority = open(data, url.as_deref()).await?;
    let opened_kib = peak_rss_kib();
    let cpu = cpu_time(std::process::id());
    let started = Instant::now();
    let scan = authority.check_expiry(&Principal::local("bench")).await?;
    let wall = started.elapsed();
    let cpu = cpu_time(std::process::id())
        .zip(cpu)
        .and_then(|(after, before)| after.checked_sub(before));
    let peak_kib = peak_rss_kib();
    authority.close().await;
    let mib =
        |kib: Option<u64>| kib.map_or("?".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0));
    println!(
        "{} notices in {:.2} s, CPU {}, peak RSS {} (after opening the database: {})",
        scan.notices.len(),
        wall.as_secs_f64(),
        cpu.map_or("?".into(), |c| format!("{:.2} s", c.as_secs_f64())),
        mib(peak_kib),
        mib(opened_kib),
    );
    Ok(())
}
