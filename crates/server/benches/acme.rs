//! Complete ACME orders per second (new order → http-01 → finalize → download) from a Rust
//! client (instant-acme) on loopback, against certmint and against Pebble (Debian's `pebble`,
//! the reference ACME test server) in the same run, with the same client, the same challenge
//! responder and the same identifier, so that the ratio means something.
//!
//! `cargo bench -p certmint-server --bench acme` runs it in full: three rounds, certmint then
//! Pebble in each, each on a fresh server, 3 s of warm-up and 15 s counted
//! (`CERTMINT_BENCH_SECONDS`, `CERTMINT_BENCH_RUNS`). Workers in flight per server:
//! `CERTMINT_BENCH_CERTMINT_WORKERS` and `CERTMINT_BENCH_PEBBLE_WORKERS`. `-- certmint` or
//! `-- pebble` runs one side alone; `-- sweep` runs each side at several worker counts (5 s
//! each) to find the one that gives it the most orders. Under `cargo test` it runs each side for
//! a second, so that it keeps working.
//!
//! Both servers run as processes of their own, so the client process (the load generator and
//! the challenge responder) shares the two cores with either server in the same way: certmint is
//! this very binary started again with `CERTMINT_BENCH_ACME_CHILD` set (SQLite in a temporary
//! directory, as `certmint serve` opens it), Pebble is `pebble` with `PEBBLE_VA_NOSLEEP=1`,
//! `PEBBLE_WFE_NONCEREJECT=0` and `PEBBLE_AUTHZREUSE=0` (no deliberate sleeps, no rejected
//! nonces, and valid authorizations reused for about 1 order in 100 instead of half: those
//! orders need no validation, and are counted). certmint's per-account and per-address limits
//! and its caps of validations in flight are off, as Pebble has none. The identifier of every order is the IP address 127.0.0.1
//! (RFC 8738), which needs no DNS on either side. The CSRs (P-256, the form instant-acme's
//! `finalize()` makes) are made before the clock starts, so the client's cost per order is
//! small and the same for both servers. A run in which no order completes for 2 s (Pebble
//! deadlocks now and then) is reported and made again on a fresh server.

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use authority::Principal;
use authority::acme::AcmeSettingsChange;
use axum::body::{Bytes, HttpBody as _};
use axum::extract::{Path as UrlPath, State};
use axum::http::{self, StatusCode};
use certmint_server::{Secrets, Settings};
use instant_acme::{
    Account, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, HttpClient,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};

mod process;
use process::{cpu_time, free_port};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Set in the environment of the child process that serves certmint: its data directory.
const CHILD_ENV: &str = "CERTMINT_BENCH_ACME_CHILD";
/// The http-01 port the child's validator uses (the responder's).
const CHILD_HTTP_PORT_ENV: &str = "CERTMINT_BENCH_ACME_HTTP_PORT";
/// Validations in flight certmint allows in the benchmark: more than any run has.
const VALIDATIONS_UNCAPPED: usize = 4096;
/// Accounts the workers of one run share, round-robin.
const ACCOUNTS: usize = 4;
/// Distinct CSRs (each with its own P-256 key) the orders cycle through.
const CSRS: usize = 1024;
/// Workers in flight against certmint by default: the most orders in `-- sweep` on the
/// 2-core machine of BENCHMARKS.md.
const CERTMINT_WORKERS: usize = 128;
/// Workers in flight against Pebble by default: the most orders in `-- sweep` (more only
/// lengthen its queue: it is CPU-bound from here).
const PEBBLE_WORKERS: usize = 16;
/// Worker counts tried by `-- sweep`.
const SWEEP_CERTMINT: &[usize] = &[16, 32, 64, 128, 192, 256];
const SWEEP_PEBBLE: &[usize] = &[4, 8, 16, 32, 64];

/// A run in which no order completes for this long is a stall: reported, and run again on a
/// fresh server (at most [`ATTEMPTS`] times).
const STALL: Duration = Duration::from_secs(2);
const ATTEMPTS: usize = 3;

/// The identifier of every order.
const IDENTIFIER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn main() -> Result<()> {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return serve_certmint(PathBuf::from(dir));
    }
    let full = std::env::args().any(|a| a == "--bench");
    let env_number = |name: &str, full_value: usize, test_value: usize| -> Result<usize> {
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
    let sweep = sides.iter().any(|s| s == "sweep");
    let wanted = |side: &str| sides.iter().all(|s| s == "sweep") || sides.iter().any(|s| s == side);
    let plan = Plan {
        warmup: Duration::from_secs(if full { 3 } else { 1 }),
        seconds: Duration::from_secs(env_number(
            "CERTMINT_BENCH_SECONDS",
            if sweep { 5 } else { 15 },
            1,
        )? as u64),
        runs: env_number("CERTMINT_BENCH_RUNS", 3, 1)?,
        certmint_workers: env_number("CERTMINT_BENCH_CERTMINT_WORKERS", CERTMINT_WORKERS, 8)?,
        pebble_workers: env_number("CERTMINT_BENCH_PEBBLE_WORKERS", PEBBLE_WORKERS, 4)?,
        certmint: wanted("certmint"),
        pebble: wanted("pebble"),
        sweep,
    };
    if plan.pebble {
        // Fails loudly rather than measuring one side only.
        let path = std::env::var_os("PATH").unwrap_or_default();
        if !std::env::split_paths(&path).any(|dir| dir.join("pebble").is_file()) {
            return Err(
                "pebble is not installed: `apt-get install pebble` (scripts/test installs it), \
                 or run `-- certmint` alone"
                    .into(),
            );
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(plan))
}

/// What to measure.
struct Plan {
    warmup: Duration,
    seconds: Duration,
    runs: usize,
    certmint_workers: usize,
    pebble_workers: usize,
    certmint: bool,
    pebble: bool,
    sweep: bool,
}

/// Polling: short, the same for both servers. instant-acme waits before its first look.
fn retries() -> RetryPolicy {
    RetryPolicy::default()
        .initial_delay(Duration::from_millis(10))
        .backoff(1.5)
        .timeout(Duration::from_secs(30))
}

async fn run(plan: Plan) -> Result<()> {
    let work = tempfile::tempdir()?;
    let responder = Responder::start().await?;
    let csrs = Arc::new(make_csrs(CSRS)?);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "ACME benchmark: complete orders (new order, http-01, finalize with a P-256 CSR, download) \
         for IP 127.0.0.1, {cores} cores, {ACCOUNTS} accounts, polling from 10 ms (x1.5), \
         {} s warm-up + {} s counted, a fresh server for every run",
        plan.warmup.as_secs(),
        plan.seconds.as_secs()
    );
    let mut failed = 0;
    if plan.sweep {
        for (side, counts) in [("certmint", SWEEP_CERTMINT), ("pebble", SWEEP_PEBBLE)] {
            if !(side == "certmint" && plan.certmint || side == "pebble" && plan.pebble) {
                continue;
            }
            for &workers in counts {
                let label = format!("sweep {side}");
                let run =
                    measure_retrying(&label, side, work.path(), &responder, &csrs, workers, &plan)
                        .await?;
                failed += run.errors;
            }
        }
    } else {
        let mut rows = Vec::new();
        for round in 1..=plan.runs {
            let mut row = [None, None];
            let sides = [
                (plan.certmint, "certmint", plan.certmint_workers),
                (plan.pebble, "pebble", plan.pebble_workers),
            ];
            for (rate, (wanted, side, workers)) in row.iter_mut().zip(sides) {
                if !wanted {
                    continue;
                }
                let label = format!("run {round} {side}");
                let run =
                    measure_retrying(&label, side, work.path(), &responder, &csrs, workers, &plan)
                        .await?;
                failed += run.errors;
                *rate = Some(run.rate());
            }
            rows.push(row);
        }
        println!();
        for (i, row) in rows.iter().enumerate() {
            match row {
                [Some(c), Some(p)] => println!(
                    "run {}: certmint {c:>7.1}/s, Pebble {p:>7.1}/s, ratio {:.2}",
                    i + 1,
                    c / p
                ),
                [Some(c), None] => println!("run {}: certmint {c:>7.1}/s", i + 1),
                [None, Some(p)] => println!("run {}: Pebble {p:>7.1}/s", i + 1),
                [None, None] => {}
            }
        }
        let median = |mut v: Vec<f64>| -> Option<f64> {
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            Some(v[v.len() / 2])
        };
        let certmint = median(rows.iter().filter_map(|r| r[0]).collect());
        let pebble = median(rows.iter().filter_map(|r| r[1]).collect());
        let ratios = median(rows.iter().filter_map(|r| Some(r[0]? / r[1]?)).collect());
        if let (Some(c), Some(p), Some(r)) = (certmint, pebble, ratios) {
            println!("median: certmint {c:.1}/s, Pebble {p:.1}/s, ratio {r:.2}");
        }
    }
    if failed > 0 {
        return Err(format!("{failed} orders failed (see above)").into());
    }
    Ok(())
}

// ---- The measurement ----

/// What one run of one server gave.
struct Run {
    workers: usize,
    window: Duration,
    /// Orders completed inside the window, with their latencies (whole order).
    latencies: Vec<Duration>,
    /// Time spent in each step by the orders counted, summed.
    steps: [Duration; 5],
    errors: u64,
    first_error: Option<String>,
    /// Orders counted that needed no validation: the server reused a valid authorization.
    reused: u64,
    /// The longest time inside the window in which no order completed.
    longest_pause: Duration,
    requests: u64,
    validations: u64,
    server_cpu: Option<Duration>,
    client_cpu: Option<Duration>,
}

const STEP_NAMES: [&str; 5] = [
    "new order",
    "challenge",
    "until ready",
    "finalize",
    "download",
];

impl Run {
    /// Whether the server stopped completing orders for a while (Pebble 2.4 now and then
    /// deadlocks under concurrent orders; BENCHMARK-PEERS.md).
    fn stalled(&self) -> bool {
        self.latencies.is_empty() || self.longest_pause > STALL
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.window.as_secs_f64()
    }

    fn print(&self, what: &str) {
        let n = self.latencies.len().max(1);
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let pick = |q: f64| {
            sorted
                .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        let cpu = |cpu: Option<Duration>| {
            cpu.map_or_else(
                || "?".to_owned(),
                |cpu| {
                    format!(
                        "{:.0} µs/order ({:.2} cores)",
                        cpu.as_secs_f64() * 1e6 / n as f64,
                        cpu.as_secs_f64() / self.window.as_secs_f64()
                    )
                },
            )
        };
        println!(
            "{what:<22} {:>4} workers: {:>6} orders in {} s = {:>7.1}/s; p50 {:.0} ms, p99 {:.0} ms; \
             {:.1} requests and {:.1} validation fetches per order; CPU server {}, client {}",
            self.workers,
            self.latencies.len(),
            self.window.as_secs(),
            self.rate(),
            pick(0.5),
            pick(0.99),
            self.requests as f64 / n as f64,
            self.validations as f64 / n as f64,
            cpu(self.server_cpu),
            cpu(self.client_cpu),
        );
        let steps: Vec<String> = STEP_NAMES
            .iter()
            .zip(self.steps)
            .map(|(name, d)| format!("{name} {:.1}", d.as_secs_f64() * 1e3 / n as f64))
            .collect();
        println!("{:<28} mean ms per step: {}", "", steps.join(", "));
        if self.reused > 0 {
            println!(
                "{:<28} {} of these orders reused a valid authorization (no validation)",
                "", self.reused
            );
        }
        if self.errors > 0 {
            println!(
                "{:<28} {} orders FAILED; the first: {}",
                "",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            );
        }
    }
}

/// A server under test: its ACME directory, the CA its HTTPS certificate chains to, its process.
struct Server {
    directory: String,
    tls_root_pem: Vec<u8>,
    child: Child,
    /// Pebble's log, shown when something fails.
    log: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // certmint's child stops when its standard input closes; Pebble is killed.
        drop(self.child.stdin.take());
        if self.log.is_some() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// [`measure_side`], printed, and run again on a fresh server after a stall.
async fn measure_retrying(
    label: &str,
    side: &str,
    work: &Path,
    responder: &Responder,
    csrs: &Arc<Vec<Vec<u8>>>,
    workers: usize,
    plan: &Plan,
) -> Result<Run> {
    let mut attempt = 1;
    loop {
        let run = measure_side(side, work, responder, csrs, workers, plan).await?;
        run.print(label);
        if !run.stalled() || attempt == ATTEMPTS {
            return Ok(run);
        }
        println!(
            "{:<28} STALLED: no order completed for {:.1} s; again on a fresh server",
            "",
            run.longest_pause.as_secs_f64()
        );
        attempt += 1;
    }
}

async fn measure_side(
    side: &str,
    work: &Path,
    responder: &Responder,
    csrs: &Arc<Vec<Vec<u8>>>,
    workers: usize,
    plan: &Plan,
) -> Result<Run> {
    let dir = tempfile::tempdir_in(work)?;
    let server = match side {
        "certmint" => start_certmint(dir.path(), responder.port)?,
        _ => start_pebble(dir.path(), responder.port).await?,
    };
    let outcome = drive(&server, responder, csrs, workers, plan).await;
    if let (Err(_) | Ok(Run { errors: 1.., .. }), Some(log)) = (&outcome, &server.log) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        eprintln!(
            "{side} log (last lines, newest first):\n{}",
            tail.join("\n")
        );
    }
    drop(server);
    outcome
}

/// One order from start to certificate, with the time each step took.
async fn order_once(
    account: &Account,
    responder: &Responder,
    csr: &[u8],
    steps: &mut [Duration; 5],
) -> Result<bool> {
    let mut mark = Instant::now();
    let mut lap = |steps: &mut [Duration; 5], i: usize| {
        let now = Instant::now();
        steps[i] += now - mark;
        mark = now;
    };
    let identifiers = [Identifier::Ip(IDENTIFIER)];
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
    lap(steps, 0);
    let mut tokens = Vec::new();
    let mut reused = false;
    {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                // Pebble reuses a valid authorization now and then even with
                // PEBBLE_AUTHZREUSE=0 (it reuses unless `rand.Intn(100) > percent`, so 1 % of
                // the time at 0); a client uses it, as RFC 8555 §7.1.3 has it. Counted.
                AuthorizationStatus::Valid => {
                    reused = true;
                    continue;
                }
                other => return Err(format!("an authorization is {other:?}").into()),
            }
            let mut challenge = authz
                .challenge(ChallengeType::Http01)
                .ok_or("no http-01 challenge offered")?;
            responder.set(&challenge.token, challenge.key_authorization().as_str());
            tokens.push(challenge.token.clone());
            challenge.set_ready().await?;
        }
    }
    lap(steps, 1);
    let status = order.poll_ready(&retries()).await;
    lap(steps, 2);
    let outcome: Result<()> = async {
        let status = status?;
        if status != OrderStatus::Ready {
            return Err(format!("order is {status:?}: {:?}", order.state().error).into());
        }
        order.finalize_csr(csr).await?;
        lap(steps, 3);
        // A server that issues at once answers finalize with a valid order: download at once.
        let chain = match order.state().status {
            OrderStatus::Valid => order.certificate().await?.ok_or("no certificate")?,
            _ => order.poll_certificate(&retries()).await?,
        };
        lap(steps, 4);
        if !chain.contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!("not a certificate chain: {chain:.100}").into());
        }
        Ok(())
    }
    .await;
    for token in &tokens {
        responder.remove(token);
    }
    outcome.map(|()| reused)
}

/// What the workers share while a run lasts.
struct Tally {
    latencies: Vec<Duration>,
    completions: Vec<Instant>,
    steps: [Duration; 5],
    errors: u64,
    first_error: Option<String>,
    reused: u64,
}

impl Tally {
    fn new() -> Self {
        Self {
            latencies: Vec::new(),
            completions: Vec::new(),
            steps: [Duration::ZERO; 5],
            errors: 0,
            first_error: None,
            reused: 0,
        }
    }
}

async fn drive(
    server: &Server,
    responder: &Responder,
    csrs: &Arc<Vec<Vec<u8>>>,
    workers: usize,
    plan: &Plan,
) -> Result<Run> {
    let requests = Arc::new(AtomicU64::new(0));
    let http = Http::new(&server.tls_root_pem, requests.clone())?;
    let mut accounts = Vec::with_capacity(ACCOUNTS);
    for _ in 0..ACCOUNTS {
        let (account, _) = Account::builder_with_http(Box::new(http.clone()))
            .create(
                &NewAccount {
                    contact: &["mailto:bench@example.test"],
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                server.directory.clone(),
                None,
            )
            .await?;
        accounts.push(account);
    }
    // One order before the clock starts, so a broken setup fails with its reason.
    order_once(&accounts[0], responder, &csrs[0], &mut [Duration::ZERO; 5]).await?;

    let tally = Arc::new(Mutex::new(Tally::new()));
    let start = Instant::now();
    let counting_from = start + plan.warmup;
    let until = counting_from + plan.seconds;
    let stop = Arc::new(AtomicBool::new(false));
    let next_csr = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let account = accounts[w % ACCOUNTS].clone();
            let (responder, csrs, tally, stop, next_csr) = (
                responder.clone(),
                csrs.clone(),
                tally.clone(),
                stop.clone(),
                next_csr.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let i = next_csr.fetch_add(1, Ordering::Relaxed) as usize % csrs.len();
                    let began = Instant::now();
                    let mut steps = [Duration::ZERO; 5];
                    let outcome = order_once(&account, &responder, &csrs[i], &mut steps).await;
                    let ended = Instant::now();
                    if ended < counting_from || ended > until {
                        continue;
                    }
                    let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
                    match outcome {
                        Ok(reused) => {
                            tally.reused += u64::from(reused);
                            tally.latencies.push(ended - began);
                            tally.completions.push(ended);
                            for (sum, step) in tally.steps.iter_mut().zip(steps) {
                                *sum += step;
                            }
                        }
                        Err(e) => {
                            tally.errors += 1;
                            tally.first_error.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
            })
        })
        .collect();
    let pid = server.child.id();
    tokio::time::sleep_until(counting_from.into()).await;
    let (server_before, client_before) = (cpu_time(pid), cpu_time(std::process::id()));
    let (requests_before, validations_before) =
        (requests.load(Ordering::Relaxed), responder.fetches());
    tokio::time::sleep_until(until.into()).await;
    let (server_after, client_after) = (cpu_time(pid), cpu_time(std::process::id()));
    let (requests_after, validations_after) =
        (requests.load(Ordering::Relaxed), responder.fetches());
    stop.store(true, Ordering::Relaxed);
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    let tally = std::mem::replace(
        &mut *tally.lock().unwrap_or_else(PoisonError::into_inner),
        Tally::new(),
    );
    let mut completions = tally.completions;
    completions.sort();
    let longest_pause = std::iter::once(counting_from)
        .chain(completions)
        .chain(std::iter::once(until))
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    let spent = |after: Option<Duration>, before: Option<Duration>| {
        after.zip(before).map(|(a, b)| a.saturating_sub(b))
    };
    Ok(Run {
        workers,
        window: plan.seconds,
        latencies: tally.latencies,
        steps: tally.steps,
        errors: tally.errors,
        first_error: tally.first_error,
        reused: tally.reused,
        longest_pause,
        requests: requests_after - requests_before,
        validations: validations_after - validations_before,
        server_cpu: spent(server_after, server_before),
        client_cpu: spent(client_after, client_before),
    })
}

/// `n` CSRs for IP 127.0.0.1 with an empty subject, each with its own P-256 key, as
/// instant-acme's `finalize()` makes them (DER).
fn make_csrs(n: usize) -> Result<Vec<Vec<u8>>> {
    (0..n)
        .map(|_| {
            let mut params = rcgen::CertificateParams::new(vec![IDENTIFIER.to_string()])?;
            params.distinguished_name = rcgen::DistinguishedName::new();
            let key = rcgen::KeyPair::generate()?;
            Ok(params.serialize_request(&key)?.der().to_vec())
        })
        .collect()
}

// ---- The client's HTTP ----

/// instant-acme's HTTP client: reqwest, which sets TCP_NODELAY (instant-acme's default client
/// does not, which costs ~40 ms a request on loopback), HTTP/1.1 keep-alive, trusting only
/// the server's TLS root. Counts the requests sent.
#[derive(Clone)]
struct Http {
    client: reqwest::Client,
    requests: Arc<AtomicU64>,
}

impl Http {
    fn new(root_pem: &[u8], requests: Arc<AtomicU64>) -> Result<Self> {
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(root_pem)?])
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .build()?;
        Ok(Self { client, requests })
    }
}

impl HttpClient for Http {
    fn request(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<BytesResponse, instant_acme::Error>> + Send>>
    {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let client = self.client.clone();
        Box::pin(async move {
            let other = |e: Box<dyn std::error::Error + Send + Sync>| instant_acme::Error::Other(e);
            let (parts, body) = request.into_parts();
            let body = body_bytes(body);
            let mut sent = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers);
            if !body.is_empty() {
                sent = sent.body(body);
            }
            let response = sent.send().await.map_err(|e| other(e.into()))?;
            let mut head = http::Response::new(());
            *head.status_mut() = response.status();
            *head.headers_mut() = response.headers().clone();
            let bytes = response.bytes().await.map_err(|e| other(e.into()))?;
            let (parts, ()) = head.into_parts();
            Ok(BytesResponse {
                parts,
                body: Box::new(bytes),
            })
        })
    }
}

/// The bytes of one of instant-acme's request bodies, which hold them whole (one frame, ready
/// at once).
fn body_bytes(body: BodyWrapper<Bytes>) -> Bytes {
    let mut body = std::pin::pin!(body);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match body.as_mut().poll_frame(&mut cx) {
        std::task::Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}

// ---- The http-01 responder, shared by both servers ----

/// Answers `GET /.well-known/acme-challenge/{token}` on 127.0.0.1 from a shared token map, on
/// this process's runtime; counts the fetches.
#[derive(Clone)]
struct Responder {
    port: u16,
    state: Arc<ResponderState>,
}

#[derive(Default)]
struct ResponderState {
    tokens: Mutex<HashMap<String, String>>,
    fetches: AtomicU64,
}

impl Responder {
    async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(ResponderState::default());
        let app = axum::Router::new()
            .route(
                "/.well-known/acme-challenge/{token}",
                axum::routing::get(answer),
            )
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { port, state })
    }

    fn set(&self, token: &str, key_authorization: &str) {
        self.state
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.to_owned(), key_authorization.to_owned());
    }

    fn remove(&self, token: &str) {
        self.state
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }

    fn fetches(&self) -> u64 {
        self.state.fetches.load(Ordering::Relaxed)
    }
}

async fn answer(
    State(state): State<Arc<ResponderState>>,
    UrlPath(token): UrlPath<String>,
) -> std::result::Result<String, StatusCode> {
    state.fetches.fetch_add(1, Ordering::Relaxed);
    state
        .tokens
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&token)
        .cloned()
        .ok_or(StatusCode::NOT_FOUND)
}

// ---- certmint, in a process of its own ----

/// Starts this binary again as certmint's server (see [`serve_certmint`]) and waits until it
/// says where it listens.
fn start_certmint(dir: &Path, http_port: u16) -> Result<Server> {
    let mut child = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, dir)
        .env(CHILD_HTTP_PORT_ENV, http_port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut directory = None;
    let mut root = None;
    while directory.is_none() || root.is_none() {
        let line = lines
            .next()
            .ok_or("the certmint child ended before it listened")??;
        if let Some(url) = line.strip_prefix("directory ") {
            directory = Some(url.to_owned());
        } else if let Some(path) = line.strip_prefix("root ") {
            root = Some(std::fs::read(path)?);
        }
    }
    Ok(Server {
        directory: directory.ok_or("no directory")?,
        tls_root_pem: root.ok_or("no root")?,
        child,
        log: None,
    })
}

/// The child: certmint opened as `certmint serve` opens it (SQLite in `dir`), its validator
/// reaching http-01 on the responder's port, the per-account order limit off (Pebble has none);
/// prints its directory URL and the root its HTTPS certificate chains to, then serves until its
/// standard input closes.
fn serve_certmint(dir: PathBuf) -> Result<()> {
    let http_port: u16 = std::env::var(CHILD_HTTP_PORT_ENV)?.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut settings = Settings {
            data_dir: dir.join("certmint"),
            listen: "127.0.0.1:0".parse()?,
            http_listen: "127.0.0.1:0".into(),
            ..Settings::default()
        };
        settings.acme.validation.http_port = http_port;
        // The responder is on loopback; the caps of validations in flight are off like the
        // other limits, as Pebble has none.
        settings.acme.validation.allow_private_addresses = true;
        settings.acme.validation.max_in_flight = VALIDATIONS_UNCAPPED;
        settings.acme.validation.max_in_flight_per_account = VALIDATIONS_UNCAPPED;
        let secrets = Secrets {
            master_key: None,
            admin_password: Some("benchmark password 1234".into()),
        };
        let running =
            certmint_server::start(certmint_server::bootstrap::open(settings, secrets).await?)
                .await?;
        let authority = running.app.authority.clone();
        authority
            .update_acme_settings(
                &Principal::local("bench"),
                AcmeSettingsChange {
                    orders_per_account_hour: Some(0),
                    accounts_per_address_hour: Some(0),
                    ..AcmeSettingsChange::default()
                },
            )
            .await?;
        let ca = authority.default_ca().await?;
        let chain = authority.ca_chain(ca.id).await?;
        let root = dir.join("root.pem");
        std::fs::write(
            &root,
            authority::pki::pem::encode("CERTIFICATE", chain.last().ok_or("no root")?),
        )?;
        println!("directory https://{}/acme/directory", running.https_addr);
        println!("root {}", root.display());
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

// ---- Pebble ----

/// Pebble validating http-01 on `http_port` of 127.0.0.1, with a TLS certificate of our own
/// making (the Debian package ships none) and the variables that turn its deliberate
/// slowness off.
async fn start_pebble(dir: &Path, http_port: u16) -> Result<Server> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pebble front end bench CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate()?;
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?
        .signed_by(&key, &issuer)?;
    std::fs::write(dir.join("cert.pem"), leaf.pem())?;
    std::fs::write(dir.join("key.pem"), key.serialize_pem())?;
    let listen = free_port()?;
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{listen}"),
        "managementListenAddress": format!("127.0.0.1:{}", free_port()?),
        "certificate": dir.join("cert.pem"),
        "privateKey": dir.join("key.pem"),
        "httpPort": http_port,
        "tlsPort": free_port()?,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
    }});
    let config_path = dir.join("pebble.json");
    std::fs::write(&config_path, config.to_string())?;
    let log = dir.join("pebble.log");
    let out = std::fs::File::create(&log)?;
    let child = Command::new("pebble")
        .arg("-config")
        .arg(&config_path)
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .env("PEBBLE_AUTHZREUSE", "0")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .map_err(|e| format!("pebble could not be run (scripts/test installs it): {e}"))?;
    let server = Server {
        directory: format!("https://127.0.0.1:{listen}/dir"),
        tls_root_pem: ca.pem().into_bytes(),
        child,
        log: Some(log.clone()),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, listen))
            .await
            .is_ok()
        {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "pebble did not listen within 10 s:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    )
    .into())
}
