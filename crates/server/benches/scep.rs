//! Complete SCEP enrollments per second (PKCSReq → CertRep SUCCESS, read and decrypted by the
//! client) against certmint and against micromdm's `scepserver` (Debian's `scep`) in the same
//! run, with the same client, the same messages' shape and the same number in flight.
//!
//! `cargo bench -p certmint-server --bench scep` runs it in full: three rounds, certmint then
//! scepserver in each, each on a fresh server, 3 s of warm-up and 15 s counted
//! (`CERTMINT_BENCH_SECONDS`, `CERTMINT_BENCH_RUNS`, `CERTMINT_BENCH_WORKERS` in flight, 32 by
//! default). `-- certmint` or `-- scepserver` runs one side alone. Under `cargo test` it runs
//! each side for a second, so that it keeps working.
//!
//! Both servers run as processes of their own over plain HTTP on loopback, so the client
//! process shares the two cores with either server in the same way: certmint is this very
//! binary started again with `CERTMINT_BENCH_SCEP_CHILD` set (SQLite in a temporary directory,
//! as `certmint serve` opens it, the default profile with a static challenge); scepserver gets a
//! fresh depot with an RSA 2048 CA (`scepserver ca -init`), the same challenge, and
//! `-allowrenew 0` (so that a subject may enroll again). Client keys are RSA 2048: a pool of
//! them, with their CSRs and transient certificates, is made before the clock starts, and each
//! request is a new transaction (its own transactionID and nonce), signed with SHA-256 and
//! encrypted with AES-128-CBC to the server's RA (certmint) or CA (scepserver) certificate.
//! Requests are built before the clock starts too; the client's cost during the run is reading
//! each CertRep: checking the RA's signature and decrypting the certificate.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use authority::pki::scep::client::{self, Outcome, RaCertificate, Requester, Sent};
use authority::pki::scep::{ContentCipher, Digest, MessageType, RequestContent};
use authority::pki::{DistinguishedName, KeyType, NameAttribute, PrivateKey};
use authority::{Principal, ScepConfigChange, ScepProfileChange};
use certmint_server::{Secrets, Settings};

mod process;
use process::{cpu_time, free_port};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Set in the environment of the child process that serves certmint: its data directory.
const CHILD_ENV: &str = "CERTMINT_BENCH_SCEP_CHILD";
/// The static challenge both servers take.
const CHALLENGE: &str = "benchmark-Challenge-2026";
/// Client keys (each with its CSR and transient certificate) the requests cycle through.
const KEYS: usize = 16;
/// Requests in flight against certmint by default.
const WORKERS: usize = 32;
/// Requests in flight against scepserver by default: its file depot fails requests that
/// overlap (failInfo badRequest) from a few in flight on, and it does no more with more.
const SCEPSERVER_WORKERS: usize = 1;
/// Requests built per second counted: more than either server has completed here.
const BUILT_PER_SECOND: usize = 900;

fn main() -> Result<()> {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return serve_certmint(PathBuf::from(dir));
    }
    let full = std::env::args().any(|a| a == "--bench");
    let number = |name: &str, full_value: usize, test_value: usize| -> Result<usize> {
        match std::env::var(name) {
            Ok(v) => Ok(v.parse()?),
            Err(_) if full => Ok(full_value),
            Err(_) => Ok(test_value),
        }
    };
    let sides: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |side: &str| sides.is_empty() || sides.iter().any(|s| s == side);
    let plan = Plan {
        warmup: Duration::from_secs(if full { 3 } else { 1 }),
        seconds: Duration::from_secs(number("CERTMINT_BENCH_SECONDS", 15, 1)? as u64),
        runs: number("CERTMINT_BENCH_RUNS", 3, 1)?,
        workers: number("CERTMINT_BENCH_WORKERS", WORKERS, 8)?,
        scepserver_workers: number("CERTMINT_BENCH_SCEPSERVER_WORKERS", SCEPSERVER_WORKERS, 2)?,
        certmint: wanted("certmint"),
        scepserver: wanted("scepserver"),
    };
    if plan.scepserver && which("scepserver").is_none() {
        return Err(
            "scepserver is not installed: `apt-get install scep` (scripts/test installs it), \
             or run `-- certmint` alone"
                .into(),
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(plan))
}

struct Plan {
    warmup: Duration,
    seconds: Duration,
    runs: usize,
    workers: usize,
    scepserver_workers: usize,
    certmint: bool,
    scepserver: bool,
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// One client: its key, its signing certificate and its CSR (with the challenge).
struct Device {
    requester: Requester,
    csr: RequestContent,
}

fn devices() -> Result<Vec<Arc<Device>>> {
    std::thread::scope(|scope| {
        let made: Vec<_> = (0..KEYS)
            .map(|i| {
                scope.spawn(move || -> Result<Arc<Device>> {
                    let key = PrivateKey::generate(KeyType::Rsa { bits: 2048 })?;
                    let mut subject = DistinguishedName::new();
                    subject.set(NameAttribute::CommonName, &format!("bench-device-{i}"))?;
                    // The client's clock: a device has no authority to read the time from.
                    #[allow(clippy::disallowed_methods)]
                    let now = time::OffsetDateTime::now_utc();
                    let transient = client::transient_certificate(&key, &subject, now)?;
                    Ok(Arc::new(Device {
                        requester: Requester::new(&transient, &key)?,
                        csr: RequestContent::Csr(client::csr(&key, &subject, Some(CHALLENGE))?),
                    }))
                })
            })
            .collect();
        made.into_iter()
            .map(|h| h.join().map_err(|_| "key generation panicked")?)
            .collect()
    })
}

/// `n` PKCSReq messages to `ra`, each a transaction of its own, built on every core.
fn build(devices: &[Arc<Device>], ra: &RaCertificate, n: usize) -> Result<Vec<(usize, Sent)>> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..cores)
            .map(|core| {
                scope.spawn(move || -> Result<Vec<(usize, Sent)>> {
                    (core..n)
                        .step_by(cores)
                        .map(|i| {
                            let which = i % devices.len();
                            // Each run has a fresh server: a number is a new transaction.
                            let transaction_id = format!("bench-{i}");
                            let sent = client::request(
                                &devices[which].requester,
                                ra,
                                &client::Message {
                                    message_type: MessageType::PkcsReq,
                                    transaction_id: &transaction_id,
                                    content: &devices[which].csr,
                                    digest: Digest::Sha256,
                                    cipher: ContentCipher::Aes128Cbc,
                                },
                            )?;
                            Ok((which, sent))
                        })
                        .collect()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(n);
        for part in parts {
            all.extend(part.join().map_err(|_| "building requests panicked")??);
        }
        Ok(all)
    })
}

async fn run(plan: Plan) -> Result<()> {
    println!(
        "SCEP enrollments (PKCSReq → CertRep SUCCESS, RSA 2048 clients), {} in flight \
         (scepserver {}), {} s counted after {} s, {} run(s)",
        plan.workers,
        plan.scepserver_workers,
        plan.seconds.as_secs(),
        plan.warmup.as_secs(),
        plan.runs
    );
    let devices = devices()?;
    let mut results: Vec<(&str, Vec<Measured>)> = Vec::new();
    for round in 0..plan.runs {
        for (side, enabled) in [("certmint", plan.certmint), ("scepserver", plan.scepserver)] {
            if !enabled {
                continue;
            }
            let dir = tempfile::tempdir()?;
            let mut server = match side {
                "certmint" => start_certmint(dir.path())?,
                _ => start_scepserver(dir.path())?,
            };
            let workers = match side {
                "certmint" => plan.workers,
                _ => plan.scepserver_workers,
            };
            let measured = measure(&server, &devices, &plan, workers).await;
            server.stop();
            let measured = measured?;
            println!(
                "round {}: {side:<10} {:>7.1} enrollments/s ({} in {:.1} s, {} failed); server \
                 CPU {:.2} ms each, client CPU {:.2} ms each",
                round + 1,
                measured.rate(),
                measured.done,
                measured.elapsed.as_secs_f64(),
                measured.failed,
                measured.server_cpu_ms(),
                measured.client_cpu_ms()
            );
            if let Some(e) = &measured.first_error {
                println!("          first failure: {e}");
            }
            match results.iter_mut().find(|(s, _)| *s == side) {
                Some((_, all)) => all.push(measured),
                None => results.push((side, vec![measured])),
            }
        }
    }
    let median = |all: &[Measured]| {
        let mut rates: Vec<f64> = all.iter().map(Measured::rate).collect();
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    for (side, all) in &results {
        println!("median {side:<10} {:>7.1} enrollments/s", median(all));
    }
    if let [(_, ours), (_, theirs)] = results.as_slice() {
        println!(
            "ratio certmint / scepserver: {:.2}",
            median(ours) / median(theirs)
        );
    }
    Ok(())
}

struct Measured {
    done: u64,
    failed: u64,
    first_error: Option<String>,
    elapsed: Duration,
    server_cpu: Option<Duration>,
    client_cpu: Option<Duration>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64()
    }

    fn per_enrollment(&self, cpu: Option<Duration>) -> f64 {
        cpu.map_or(f64::NAN, |c| {
            c.as_secs_f64() * 1000.0 / self.done.max(1) as f64
        })
    }

    fn server_cpu_ms(&self) -> f64 {
        self.per_enrollment(self.server_cpu)
    }

    fn client_cpu_ms(&self) -> f64 {
        self.per_enrollment(self.client_cpu)
    }
}

/// The certificate a side's requests are encrypted to: certmint's RA (the certificate that is
/// not a CA), or scepserver's CA (it has no RA).
async fn recipient(http: &reqwest::Client, url: &str) -> Result<RaCertificate> {
    let body = http
        .get(format!("{url}?operation=GetCACert"))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let certificates = match authority::pki::bundle::read(&body, None) {
        Ok(bundle) => bundle.certificates,
        Err(_) => vec![body.to_vec()],
    };
    let chosen = if certificates.len() == 1 {
        certificates[0].clone()
    } else {
        certificates
            .into_iter()
            .find(|der| authority::pki::inspect::Certificate::parse(der).is_ok_and(|c| !c.is_ca))
            .ok_or("GetCACert gave no RA certificate")?
    };
    Ok(RaCertificate::new(&chosen)?)
}

async fn measure(
    server: &Server,
    devices: &[Arc<Device>],
    plan: &Plan,
    workers: usize,
) -> Result<Measured> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(workers)
        .build()?;
    let ra = Arc::new(recipient(&http, &server.url).await?);
    let wanted = BUILT_PER_SECOND * (plan.warmup + plan.seconds).as_secs() as usize + 64;
    let built = {
        let (devices, ra) = (devices.to_vec(), ra.clone());
        tokio::task::spawn_blocking(move || build(&devices, &ra, wanted)).await??
    };
    let built = Arc::new(built);
    // One enrollment before the clock starts, so that a broken setup fails with its reason.
    enroll(&http, &server.url, devices, &ra, &built[0]).await?;

    let next = Arc::new(AtomicUsize::new(1));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let start = Instant::now();
    let counting_from = start + plan.warmup;
    let stop_at = counting_from + plan.seconds;
    let mut tasks = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (http, url, devices, ra, built) = (
            http.clone(),
            server.url.clone(),
            devices.to_vec(),
            ra.clone(),
            built.clone(),
        );
        let (next, done, failed, first_error) = (
            next.clone(),
            done.clone(),
            failed.clone(),
            first_error.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(message) = built.get(i) else {
                    return Err::<(), String>("ran out of prebuilt requests".into());
                };
                let outcome = enroll(&http, &url, &devices, &ra, message).await;
                let now = Instant::now();
                if now >= stop_at {
                    return Ok(());
                }
                if now >= counting_from {
                    match outcome {
                        Ok(()) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .get_or_insert_with(|| e.to_string());
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep_until((counting_from).into()).await;
    let server_before = cpu_time(server.child.id());
    let client_before = cpu_time(std::process::id());
    let counted_from = Instant::now();
    for task in tasks {
        task.await??;
    }
    let elapsed = counted_from.elapsed().min(plan.seconds);
    let server_after = cpu_time(server.child.id());
    let client_after = cpu_time(std::process::id());
    let spent = |after: Option<Duration>, before: Option<Duration>| Some(after? - before?);
    let first_error = first_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    Ok(Measured {
        done: done.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        first_error,
        elapsed,
        server_cpu: spent(server_after, server_before),
        client_cpu: spent(client_after, client_before),
    })
}

/// Sends one prebuilt PKCSReq and reads its CertRep to the certificate.
async fn enroll(
    http: &reqwest::Client,
    url: &str,
    devices: &[Arc<Device>],
    ra: &Arc<RaCertificate>,
    (which, sent): &(usize, Sent),
) -> Result<()> {
    let body = http
        .post(format!("{url}?operation=PKIOperation"))
        .header("content-type", "application/x-pki-message")
        .body(sent.der.clone())
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let (device, ra, sent) = (devices[*which].clone(), ra.clone(), sent.clone());
    let reply = tokio::task::spawn_blocking(move || {
        client::read_cert_rep(&body, &device.requester, &ra, &sent)
    })
    .await??;
    match reply.outcome {
        Outcome::Success { certificates, .. } if !certificates.is_empty() => Ok(()),
        other => Err(format!("not a certificate: {other:?}").into()),
    }
}

struct Server {
    url: String,
    child: Child,
}

impl Server {
    fn stop(&mut self) {
        // certmint's child ends when its standard input closes; scepserver is killed.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_certmint(dir: &Path) -> Result<Server> {
    let mut child = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .ok_or("the certmint child ended before it listened")??;
        if let Some(url) = line.strip_prefix("scep ") {
            return Ok(Server {
                url: url.to_owned(),
                child,
            });
        }
    }
}

/// The child: certmint opened as `certmint serve` opens it (SQLite in `dir`), the default SCEP
/// profile with the static challenge; prints its SCEP URL, then serves until its standard input
/// closes.
fn serve_certmint(dir: PathBuf) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let settings = Settings {
            data_dir: dir.join("certmint"),
            listen: "127.0.0.1:0".parse()?,
            http_listen: "127.0.0.1:0".into(),
            ..Settings::default()
        };
        let secrets = Secrets {
            master_key: None,
            admin_password: Some("benchmark password 1234".into()),
        };
        let running =
            certmint_server::start(certmint_server::bootstrap::open(settings, secrets).await?)
                .await?;
        running
            .app
            .authority
            .update_scep_config(
                &Principal::local("bench"),
                ScepConfigChange {
                    profiles: vec![ScepProfileChange {
                        name: "default".into(),
                        challenge_password: Some(Some(CHALLENGE.into())),
                        ..ScepProfileChange::default()
                    }],
                    ..ScepConfigChange::default()
                },
            )
            .await?;
        let http = running.http_addr.ok_or("no plain-HTTP listener")?;
        println!("scep http://{http}/scep");
        std::io::Write::flush(&mut std::io::stdout())?;
        tokio::task::spawn_blocking(|| {
            let mut rest = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest)
        })
        .await??;
        running.shutdown().await;
        Ok(())
    })
}

/// scepserver on a fresh depot: an RSA 2048 CA made by `scepserver ca -init`.
fn start_scepserver(dir: &Path) -> Result<Server> {
    let depot = dir.join("depot");
    let status = Command::new("scepserver")
        .args(["ca", "-init", "-keySize", "2048", "-depot"])
        .arg(&depot)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("scepserver ca -init: {status}").into());
    }
    let port = free_port()?;
    let child = Command::new("scepserver")
        .arg("-depot")
        .arg(&depot)
        .args(["-port", &port.to_string(), "-challenge", CHALLENGE])
        .args(["-allowrenew", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}/scep");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if Instant::now() > deadline {
            return Err("scepserver did not listen within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Server { url, child })
}
