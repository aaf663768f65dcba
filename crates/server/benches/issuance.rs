//! Issuance throughput: CSR → signed → stored certificates per second (ECDSA P-256, SQLite),
//! through `Authority::issue`, through the REST API and through EST `simpleenroll`, beside the
//! raw ECDSA P-256 signing rate, all measured in one run on one machine so that the ratios
//! mean something.
//!
//! `cargo bench -p certmint-server --bench issuance` runs it in full (20,000 certificates per
//! path; `CERTMINT_BENCH_N` changes that); `-- direct` (or `signing`, `verify`, `serial`, `rest`,
//! `est`) runs only the paths named, for profiling one. Under `cargo test` it issues a few per path, so that it
//! keeps working. `CERTMINT_BENCH_WITHOUT_INDEXES=a,b` drops those indexes first, to measure
//! what they cost beside a run that keeps them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use authority::pki::csr::{self, Csr};
use authority::pki::{
    DistinguishedName, KeyType, NameAttribute, PrivateKey, Signer, SubjectAltName,
};
use authority::{Authority, IssueRequest, KeySource, Principal};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use certmint_server::{Secrets, Settings};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Requests in flight at once, for the concurrent paths. A durable commit takes 10–20 ms on
/// the disks this runs on, so by Little's law 10,000 certificates a second need at least 200
/// in flight; fewer callers measure the disk's latency, not the pipeline. Twice the writer's
/// largest batch keeps both cores building and signing the next batch while one commits.
const CONCURRENCY: usize = 1024;
const PASSWORD: &str = "benchmark password 1234";
const EST_USER: &str = "bench-device";

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
    // Any other argument names a path to run alone: signing, verify, serial, direct, rest, est.
    let paths: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let seconds = match std::env::var("CERTMINT_BENCH_SECONDS") {
        Ok(v) => v.parse()?,
        Err(_) if full => 10,
        Err(_) => 1,
    };
    runtime.block_on(run(n, seconds, &paths))
}

fn rate(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

/// CPU time (user + system) this process and its children that ended (wrk) have used so far,
/// where Linux tells it.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    // The kernel reports in USER_HZ, which is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// Wall time and CPU time of one measured path.
struct Took {
    wall: Duration,
    cpu: Option<Duration>,
}

async fn measure<Fut>(work: Fut) -> Result<Took>
where
    Fut: std::future::Future<Output = Result<Duration>>,
{
    let cpu_before = cpu_time();
    let wall = work.await?;
    let cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok(Took { wall, cpu })
}

fn report(what: &str, count: usize, took: &Took) {
    let cpu = took.cpu.map_or_else(String::new, |cpu| {
        format!(
            ", CPU {:>5.0} µs each ({:.2} cores busy)",
            cpu.as_secs_f64() * 1e6 / count as f64,
            cpu.as_secs_f64() / took.wall.as_secs_f64()
        )
    });
    println!(
        "{what:<58} {count:>7} in {:>7.2} s = {:>9.0}/s{cpu}",
        took.wall.as_secs_f64(),
        rate(count, took.wall)
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

/// Parses and verifies (proof of possession) every CSR on one thread: the part of each
/// issuance no pipeline can avoid, beside signing.
fn csr_checks(csrs: &[Vec<u8>]) -> Result<Duration> {
    let start = Instant::now();
    for der in csrs {
        Csr::from_der(der)?;
    }
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
                        source: authority::CertificateSource::Api,
                        renewed_from: None,
                    },
                )
                .await?;
            Ok(())
        }
    })
    .await
}

/// Logs in as the admin over HTTPS; returns the session cookie and the CSRF token.
async fn log_in(base: &str, data: &std::path::Path) -> Result<(String, String)> {
    let cert = std::fs::read(data.join("tls/server.crt"))?;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&cert)?])
        .build()?;
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
    Ok((cookie, csrf))
}

/// The wrk script: each request posts the next line of the file named by the first argument
/// to the path named by the second; an answer other than the status named by the third is
/// counted and the first one printed. The arguments after those are headers, `Name: value`.
const WRK_SCRIPT: &str = r#"
local bodies, headers, sent, refused, path, expected = {}, {}, 0, 0, "", 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  path = args[2]
  expected = tonumber(args[3])
  for i = 4, #args do
    local name, value = args[i]:match("^([^:]+): (.*)$")
    headers[name] = value
  end
end
function request()
  sent = sent + 1
  return wrk.format("POST", path, headers, bodies[(sent - 1) % #bodies + 1])
end
function response(status, _, body)
  if status ~= expected then
    refused = refused + 1
    if refused == 1 then io.stderr:write("refused: " .. status .. " " .. body .. "\n") end
  end
end
"#;

/// What one wrk run reported.
struct WrkRun {
    completed: usize,
    wall: Duration,
}

/// What wrk sends: one request body per line, to `path`, with `headers`, each answered
/// with `expected`.
struct WrkLoad<'a> {
    path: &'a str,
    bodies: Vec<String>,
    headers: Vec<String>,
    expected: u16,
}

/// Drives `load` against the server for `seconds` over `connections` keep-alive HTTPS
/// connections from wrk, a second process, as real clients would; the measured CPU is this
/// process's and wrk's together. Fails when wrk is missing, got another answer than the
/// expected one, or had an error.
async fn drive_wrk(
    running: &certmint_server::Running,
    data: &std::path::Path,
    load: WrkLoad<'_>,
    connections: usize,
    seconds: u64,
) -> Result<WrkRun> {
    let base = format!("https://{}", running.https_addr);
    let bodies = data.join("bench-bodies.txt");
    std::fs::write(&bodies, load.bodies.join("\n"))?;
    let script = data.join("bench-issue.lua");
    std::fs::write(&script, WRK_SCRIPT)?;
    let connections = connections.to_string();
    let output = tokio::process::Command::new("wrk")
        .args([
            "-t",
            "1",
            "-c",
            &connections,
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "10s",
        ])
        .arg("-s")
        .arg(&script)
        .arg(&base)
        .arg("--")
        .arg(&bodies)
        .args([load.path.to_owned(), load.expected.to_string()])
        .args(&load.headers)
        .output()
        .await
        .map_err(|e| format!("wrk could not be run (scripts/test installs it): {e}"))?;
    let report = String::from_utf8_lossy(&output.stdout);
    let problems = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || problems.contains("refused:") || report.contains("Socket errors")
    {
        return Err(format!("wrk: {report}{problems}").into());
    }
    // "12345 requests in 8.00s, 1.23MB read"
    let (completed, wall) = report
        .lines()
        .find_map(|line| {
            let (count, rest) = line.trim().split_once(" requests in ")?;
            let secs = rest.split_once('s')?.0;
            Some((
                count.parse().ok()?,
                Duration::from_secs_f64(secs.parse().ok()?),
            ))
        })
        .ok_or_else(|| format!("wrk printed no count: {report}"))?;
    Ok(WrkRun { completed, wall })
}

/// `POST /api/v2/certificates` with `{"csr": …}` for each CSR, as the admin's session.
async fn rest_load<'a>(
    running: &certmint_server::Running,
    data: &std::path::Path,
    csrs: &[Vec<u8>],
) -> Result<WrkLoad<'a>> {
    let (cookie, csrf) = log_in(&format!("https://{}", running.https_addr), data).await?;
    Ok(WrkLoad {
        path: "/api/v2/certificates",
        bodies: csrs
            .iter()
            .map(|der| {
                let pem = authority::pki::pem::encode("CERTIFICATE REQUEST", der);
                serde_json::json!({"csr": pem, "validity_days": 90}).to_string()
            })
            .collect(),
        headers: vec![
            format!("Cookie: {cookie}"),
            format!("X-CSRF-Token: {csrf}"),
            "Content-Type: application/json".to_owned(),
        ],
        expected: 201,
    })
}

/// EST `simpleenroll` (RFC 7030 §4.2.1) for each CSR, base64 on one line, with HTTP Basic
/// credentials; turns EST on with those credentials first.
async fn est_load<'a>(authority: &Authority, csrs: &[Vec<u8>]) -> Result<WrkLoad<'a>> {
    authority
        .update_est_settings(
            &Principal::local("bench"),
            authority::est::EstSettingsChange {
                enabled: Some(true),
                username: Some(EST_USER.to_owned()),
                password: Some(Some(PASSWORD.to_owned().into())),
                ..Default::default()
            },
        )
        .await?;
    let basic = B64.encode(format!("{EST_USER}:{PASSWORD}"));
    Ok(WrkLoad {
        path: "/.well-known/est/simpleenroll",
        bodies: csrs.iter().map(|der| B64.encode(der)).collect(),
        headers: vec![
            format!("Authorization: Basic {basic}"),
            "Content-Type: application/pkcs10".to_owned(),
        ],
        expected: 200,
    })
}

async fn stored(authority: &Authority) -> Result<i64> {
    Ok(authority
        .reader()
        .count_certificates(&Default::default(), authority.now())
        .await?)
}

/// Drops the indexes that `CERTMINT_BENCH_WITHOUT_INDEXES` names (comma-separated) from the
/// migrated database at `url`, before the server opens it: the same build then measures what
/// those indexes cost issuance, beside a run that keeps them. Returns the names dropped.
async fn without_indexes(url: &str) -> Result<Vec<String>> {
    let Ok(names) = std::env::var("CERTMINT_BENCH_WITHOUT_INDEXES") else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(bad) = names
        .iter()
        .find(|n| !n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    {
        return Err(format!("'{bad}' is not an index name").into());
    }
    let store = store::Store::connect(url, 1).await?;
    store.migrate().await?;
    for name in &names {
        store.execute_raw(&format!("DROP INDEX {name}")).await?;
    }
    store.close().await;
    Ok(names)
}

async fn run(n: usize, seconds: u64, paths: &[String]) -> Result<()> {
    let wanted = |path: &str| paths.is_empty() || paths.iter().any(|p| p == path);
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
    let dropped = without_indexes(&settings.database_url()).await?;
    let running =
        certmint_server::start(certmint_server::bootstrap::open(settings, secrets).await?).await?;
    let authority = running.app.authority.clone();
    if !dropped.is_empty() {
        println!("without the indexes {}", dropped.join(", "));
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "certmint issuance benchmark: {n} certificates per path, {cores} cores, SQLite (WAL, synchronous=FULL)"
    );

    if wanted("signing") {
        report(
            "raw ECDSA P-256 signatures, 1 thread",
            n,
            &measure(async { raw_signing(n, 1) }).await?,
        );
        report(
            &format!("raw ECDSA P-256 signatures, {cores} threads"),
            n / cores * cores,
            &measure(async { raw_signing(n, cores) }).await?,
        );
    }

    if wanted("verify") {
        let csrs = make_csrs(n)?;
        report(
            "CSR parse + signature check, 1 thread",
            n,
            &measure(async { csr_checks(&csrs) }).await?,
        );
    }

    let serial = (n / 10).max(1);
    let mut issued = 0;
    if wanted("serial") {
        let csrs = Arc::new(make_csrs(serial)?);
        let took = measure(issue_direct(authority.clone(), csrs, serial, 1)).await?;
        report(
            "Authority::issue, CSR -> stored, one at a time",
            serial,
            &took,
        );
        issued += serial;
    }
    if wanted("direct") {
        let csrs = Arc::new(make_csrs(n)?);
        let took = measure(issue_direct(authority.clone(), csrs, n, CONCURRENCY)).await?;
        report(
            &format!("Authority::issue, CSR -> stored, {CONCURRENCY} concurrent"),
            n,
            &took,
        );
        issued += n;
    }
    // Every issuance acknowledged so far is stored, and nothing else (but the listener's own).
    let expected = i64::try_from(issued + 1)?;
    let before = stored(&authority).await?;
    if before != expected {
        return Err(format!("{before} certificates stored, expected {expected}").into());
    }

    // The two front doors that take a CSR over HTTPS, one after the other on the same server.
    let connections = CONCURRENCY.min(n);
    for (path, what) in [
        ("rest", "REST POST /api/v2/certificates with a CSR"),
        ("est", "EST simpleenroll, HTTP Basic"),
    ] {
        if !wanted(path) {
            continue;
        }
        let csrs = make_csrs(n)?;
        let load = if path == "rest" {
            rest_load(&running, data.path(), &csrs).await?
        } else {
            est_load(&authority, &csrs).await?
        };
        let before = stored(&authority).await?;
        let mut completed = 0;
        let took = measure(async {
            let done = drive_wrk(&running, data.path(), load, connections, seconds).await?;
            completed = done.completed;
            Ok(done.wall)
        })
        .await?;
        report(
            &format!("{what}, {connections} connections (wrk)"),
            completed,
            &took,
        );
        // Requests still in flight when wrk stopped may be stored too, so this is a lower bound.
        let written = usize::try_from(stored(&authority).await? - before)?;
        if written < completed {
            return Err(
                format!("wrk saw {completed} certificates issued, {written} stored").into(),
            );
        }
    }
    running.shutdown().await;
    Ok(())
}
