//! Issuance throughput: CSR → signed → stored certificates per second (ECDSA P-256, SQLite),
//! through `Authority::issue` and through the REST API, beside the raw ECDSA P-256 signing
//! rate, all measured in one run on one machine so that the ratios mean something.
//!
//! `cargo bench -p certmint-server --bench issuance` runs it in full (20,000 certificates per
//! path; `CERTMINT_BENCH_N` changes that). Under `cargo test` it issues a few per path, so that
//! it keeps working.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use authority::pki::csr::{self, Csr};
use authority::pki::{
    DistinguishedName, KeyType, NameAttribute, PrivateKey, Signer, SubjectAltName,
};
use authority::{Authority, IssueRequest, KeySource, Principal};
use certmint_server::{Secrets, Settings};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Requests in flight at once, for the concurrent paths.
const CONCURRENCY: usize = 64;
const PASSWORD: &str = "benchmark password 1234";

fn main() -> Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let n = match std::env::var("CERTMINT_BENCH_N") {
        Ok(v) => v.parse()?,
        Err(_) if full => 20_000,
        Err(_) => 16,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(n))
}

fn rate(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

fn report(what: &str, count: usize, took: Duration) {
    println!(
        "{what:<58} {count:>7} in {:>7.2} s = {:>9.0}/s",
        took.as_secs_f64(),
        rate(count, took)
    );
}

/// ECDSA P-256 signatures per second over a certificate-sized message, on `threads` threads.
fn raw_signing(n: usize, threads: usize) -> Result<Duration> {
    let key = PrivateKey::generate(KeyType::EcP256)?;
    let message = vec![0x5a_u8; 600];
    let start = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    for _ in 0..n / threads {
                        key.sign(&message)?;
                    }
                    Ok::<(), authority::pki::Error>(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .map_err(|_| "signing thread panicked")?
                .map_err(|e| e.to_string())
        })
    })?;
    Ok(start.elapsed())
}

/// `n` CSRs for distinct names, each with its own P-256 key (DER).
fn make_csrs(n: usize) -> Result<Vec<Vec<u8>>> {
    (0..n)
        .map(|i| {
            let key = PrivateKey::generate(KeyType::EcP256)?;
            let name = format!("host{i}.bench.example");
            let mut subject = DistinguishedName::new();
            subject.set(NameAttribute::CommonName, &name)?;
            let sans = [SubjectAltName::parse(&format!("dns:{name}"))?];
            Ok(csr::make(&key, &subject, &sans)?.der)
        })
        .collect()
}

/// Runs `job(i)` for every `i` below `n` with `concurrency` tasks; returns the wall time.
async fn drive<F, Fut>(n: usize, concurrency: usize, job: F) -> Result<Duration>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (job, next) = (job.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<(), Box<dyn std::error::Error + Send + Sync>>(());
                    }
                    job(i).await?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(start.elapsed())
}

async fn issue_direct(
    authority: Arc<Authority>,
    csrs: Arc<Vec<Vec<u8>>>,
    n: usize,
    concurrency: usize,
) -> Result<Duration> {
    drive(n, concurrency, move |i| {
        let (authority, csrs) = (authority.clone(), csrs.clone());
        async move {
            let csr = Csr::from_der(&csrs[i])?;
            authority
                .issue(
                    &Principal::local("bench"),
                    IssueRequest {
                        ca_id: None,
                        subject: csr.subject.clone(),
                        sans: csr.sans.clone(),
                        key: KeySource::Csr(Box::new(csr)),
                        template_id: None,
                        validity_days: Some(90),
                        key_usage: None,
                        extended_key_usage: None,
                        description: None,
                        source: "api",
                        renewed_from: None,
                    },
                )
                .await?;
            Ok(())
        }
    })
    .await
}

async fn issue_rest(
    base: String,
    client: reqwest::Client,
    cookie: String,
    csrf: String,
    pems: Arc<Vec<String>>,
    n: usize,
) -> Result<Duration> {
    drive(n, CONCURRENCY, move |i| {
        let (client, pems) = (client.clone(), pems.clone());
        let (url, cookie, csrf) = (
            format!("{base}/api/v2/certificates"),
            cookie.clone(),
            csrf.clone(),
        );
        async move {
            let response = client
                .post(url)
                .header("cookie", cookie)
                .header("x-csrf-token", csrf)
                .json(&serde_json::json!({"csr": pems[i], "validity_days": 90}))
                .send()
                .await?;
            if response.status() != reqwest::StatusCode::CREATED {
                return Err(format!("{}: {}", response.status(), response.text().await?).into());
            }
            Ok(())
        }
    })
    .await
}

async fn run(n: usize) -> Result<()> {
    let data = tempfile::tempdir()?;
    let settings = Settings {
        data_dir: data.path().to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        http_listen: String::new(),
        auth_rate_limit_per_minute: 0,
        ..Settings::default()
    };
    let secrets = Secrets {
        master_key: None,
        admin_password: Some(PASSWORD.into()),
    };
    let running =
        certmint_server::start(certmint_server::bootstrap::open(settings, secrets).await?).await?;
    let authority = running.app.authority.clone();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "certmint issuance benchmark: {n} certificates per path, {cores} cores, SQLite (WAL, synchronous=FULL)"
    );

    report(
        "raw ECDSA P-256 signatures, 1 thread",
        n,
        raw_signing(n, 1)?,
    );
    report(
        &format!("raw ECDSA P-256 signatures, {cores} threads"),
        n / cores * cores,
        raw_signing(n, cores)?,
    );

    let csrs = Arc::new(make_csrs(2 * n + n / 10)?);
    let serial = (n / 10).max(1);
    let took = issue_direct(authority.clone(), csrs.clone(), serial, 1).await?;
    report(
        "Authority::issue, CSR -> stored, one at a time",
        serial,
        took,
    );
    let rest_csrs: Vec<Vec<u8>> = csrs[serial..].to_vec();
    let (direct_csrs, rest_csrs) = rest_csrs.split_at(n);
    let took = issue_direct(
        authority.clone(),
        Arc::new(direct_csrs.to_vec()),
        n,
        CONCURRENCY,
    )
    .await?;
    report(
        &format!("Authority::issue, CSR -> stored, {CONCURRENCY} concurrent"),
        n,
        took,
    );

    let cert = std::fs::read(data.path().join("tls/server.crt"))?;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&cert)?])
        .build()?;
    let base = format!("https://{}", running.https_addr);
    let login = client
        .post(format!("{base}/api/v2/auth/login/password"))
        .json(&serde_json::json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await?;
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("no session cookie")?
        .to_owned();
    let body: serde_json::Value = login.json().await?;
    let csrf = body["data"]["csrf_token"]
        .as_str()
        .ok_or("no CSRF token")?
        .to_owned();
    let pems: Vec<String> = rest_csrs
        .iter()
        .map(|der| authority::pki::pem::encode("CERTIFICATE REQUEST", der))
        .collect();
    let took = issue_rest(base, client, cookie, csrf, Arc::new(pems), n).await?;
    report(
        &format!("REST POST /api/v2/certificates with a CSR, {CONCURRENCY} concurrent"),
        n,
        took,
    );

    let stored = authority
        .store()
        .count_certificates(&Default::default(), authority.now())
        .await?;
    let expected = i64::try_from(serial + 2 * n + 1)?;
    if stored != expected {
        return Err(format!("{stored} certificates stored, expected {expected}").into());
    }
    running.shutdown().await;
    Ok(())
}
