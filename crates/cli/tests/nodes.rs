//! Two `certmint serve` processes on one database, behind no proxy: what one node writes the
//! other serves (a certificate issued on one is read, revoked and answered by OCSP on the
//! other within a second), scheduled jobs run on one node at a time, and when the node that
//! holds a job's lease is killed (SIGKILL) the other takes the job over.
//!
//! Webhooks go out once per event, whichever node runs the delivery job.
//!
//! On a fresh PostgreSQL database when `CERTMINT_TEST_DATABASE_URL` names a server, else on
//! one SQLite file that both processes open.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{EPHEMERAL, Http, Server, TestResult, api_key, call, serve};
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "the admin password for node tests";
/// Both nodes open what the other sealed.
const MASTER_KEY: &str = "bm9kZXMgc2hhcmUgb25lIG1hc3RlciBrZXkgISEhISE=";
/// A job's lease, as the scheduler takes it: a killed holder's job moves within this.
const LEASE: Duration = Duration::from_secs(15);

/// A node: the process and an API key for its admin.
struct Node {
    server: Server,
    key: String,
}

impl Node {
    /// A node on `data`, with `args` (the database's, and a configuration file if any).
    fn start(
        http: &Http,
        data: &Path,
        args: &[String],
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let server = Server::start(
            serve(data, EPHEMERAL)
                .args(args)
                .env("CERTMINT_MASTER_KEY", MASTER_KEY)
                .env("CERTMINT_ADMIN_PASSWORD", ADMIN_PASSWORD),
            data,
        )?;
        let key = api_key(http, &server, ADMIN_PASSWORD, &["*"])?;
        Ok(Self { server, key })
    }

    fn call(
        &self,
        http: &Http,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), Box<dyn std::error::Error>> {
        call(http, &self.server, &self.key, method, path, body)
    }

    fn get(&self, http: &Http, path: &str) -> Result<Value, Box<dyn std::error::Error>> {
        let (status, body) = self.call(http, Method::GET, path, None)?;
        if status != 200 {
            return Err(format!("GET {path}: {status} {body}").into());
        }
        Ok(body["data"].clone())
    }

    fn pid(&self) -> u32 {
        self.server.child.id()
    }

    /// The job `name` as this node reads it.
    fn job(&self, http: &Http, name: &str) -> Result<Value, Box<dyn std::error::Error>> {
        self.get(http, &format!("/api/v2/system/jobs/{name}"))
    }
}

/// The process id in a job run's node name (`host/pid/random`).
fn pid_of(run: &Value) -> Option<u32> {
    run["node"].as_str()?.split('/').nth(1)?.parse().ok()
}

/// What `openssl ocsp` says of the certificate with id `id`, asking `asked`'s responder.
fn ocsp_status(
    http: &Http,
    asked: &Node,
    holder: &Node,
    id: i64,
    dir: &Path,
) -> Result<String, Box<dyn std::error::Error>> {
    common::ocsp_status(http, &asked.server, &holder.server, &holder.key, id, dir)
}

/// The `--database-url` arguments: those of [`Http::database_args`], or one SQLite file in
/// `root` that both nodes open.
fn shared_database(http: &Http, root: &Path) -> Vec<String> {
    let database = http.database_args();
    if !database.is_empty() {
        return database;
    }
    let file = root.join("shared.db");
    vec![
        "--database-url".into(),
        format!("sqlite://{}?mode=rwc", file.display()),
    ]
}

#[test]
fn two_nodes_share_the_work_and_one_takes_over_from_the_other() -> TestResult {
    let http = Http::new();
    let root = tempfile::tempdir()?;
    let database = shared_database(&http, root.path());
    let a = Node::start(&http, &root.path().join("a"), &database)?;
    let b = Node::start(&http, &root.path().join("b"), &database)?;

    // Issued on one node, read and revoked on the other, answered revoked by the first.
    let (status, issued) = a.call(
        &http,
        Method::POST,
        "/api/v2/certificates",
        Some(json!({"common_name": "nodes.example.test", "validity_days": 30})),
    )?;
    assert_eq!(status, 201, "{issued}");
    let id = issued["data"]["id"].as_i64().ok_or("an id")?;
    assert_eq!(
        b.get(&http, &format!("/api/v2/certificates/{id}"))?["common_name"],
        "nodes.example.test"
    );
    let said = ocsp_status(&http, &a, &b, id, root.path())?;
    assert!(said.contains(": good"), "{said}");
    let (status, revoked) = b.call(
        &http,
        Method::POST,
        &format!("/api/v2/certificates/{id}/revoke"),
        Some(json!({"reason": "keyCompromise"})),
    )?;
    assert_eq!(status, 200, "{revoked}");
    let since = Instant::now();
    let said = loop {
        let said = ocsp_status(&http, &a, &b, id, root.path())?;
        if said.contains(": revoked") || since.elapsed() > Duration::from_secs(1) {
            break said;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        said.contains(": revoked") && said.contains("keyCompromise"),
        "the other node within a second: {said}"
    );

    // A job due every second, on two nodes that each look every second: runs on one node at
    // a time, so about once a second, not twice.
    let (status, body) = a.call(
        &http,
        Method::PATCH,
        "/api/v2/system/jobs/recovery",
        Some(json!({"schedule": "every 1s"})),
    )?;
    assert_eq!(status, 200, "{body}");
    let before = b.job(&http, "recovery")?["runs"].as_i64().ok_or("runs")?;
    let watched = Instant::now();
    let mut ran_on = std::collections::BTreeSet::new();
    while watched.elapsed() < Duration::from_secs(8) {
        if let Some(pid) = pid_of(&a.job(&http, "recovery")?["last_run"]) {
            ran_on.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let runs = b.job(&http, "recovery")?["runs"].as_i64().ok_or("runs")? - before;
    let seconds = i64::try_from(watched.elapsed().as_secs())? + 1;
    assert!(
        (seconds / 2..=seconds + 1).contains(&runs),
        "{runs} runs in {seconds} s on two nodes"
    );
    assert!(
        ran_on.iter().all(|pid| [a.pid(), b.pid()].contains(pid)),
        "{ran_on:?}"
    );

    // The CRL and OCSP jobs run where the revocation publisher runs. Kill that node: the
    // other takes the lease over within one lease period and runs them.
    let crl = a.job(&http, "crl_refresh")?;
    let holder = pid_of(&crl["last_run"]).ok_or_else(|| format!("no run yet: {crl}"))?;
    let (dead, alive) = if holder == a.pid() { (a, b) } else { (b, a) };
    assert_eq!(holder, dead.pid());
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &dead.pid().to_string()])
        .status()?;
    assert!(killed.success());
    let (status, asked) = alive.call(
        &http,
        Method::POST,
        "/api/v2/system/jobs/crl_refresh/run",
        None,
    )?;
    assert_eq!(status, 202, "{asked}");
    let since = Instant::now();
    let run = loop {
        let job = alive.job(&http, "crl_refresh")?;
        let run = job["last_run"].clone();
        if pid_of(&run) == Some(alive.pid()) && run["outcome"] == "succeeded" {
            break run;
        }
        assert!(
            since.elapsed() < LEASE + Duration::from_secs(5),
            "the surviving node did not take the job over: {job}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        run["summary"]
            .as_str()
            .is_some_and(|s| s.ends_with("CRLs published")),
        "{run}"
    );

    // And it still issues and answers.
    let (status, issued) = alive.call(
        &http,
        Method::POST,
        "/api/v2/certificates",
        Some(json!({"common_name": "after.example.test", "validity_days": 30})),
    )?;
    assert_eq!(status, 201, "{issued}");
    let id = issued["data"]["id"].as_i64().ok_or("an id")?;
    let said = ocsp_status(&http, &alive, &alive, id, root.path())?;
    assert!(said.contains(": good"), "{said}");
    drop(dead);
    alive.server.stop()?;
    http.drop_database(&database);
    Ok(())
}

/// What a webhook receiver got: each delivery's `Idempotency-Key`, event type and the id of
/// the resource it is about, in the order received.
type Deliveries = Arc<Mutex<Vec<(String, String, String)>>>;

/// A webhook receiver on 127.0.0.1 that answers 200 to every request, on threads of its own
/// (the tests' runtime only runs while a request is made).
struct Receiver {
    url: String,
    got: Deliveries,
}

impl Receiver {
    fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let got = Deliveries::default();
        let kept = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let kept = kept.clone();
                std::thread::spawn(move || receive(stream, &kept));
            }
        });
        Ok(Self { url, got })
    }

    fn got(&self) -> Vec<(String, String, String)> {
        self.got.lock().unwrap().clone()
    }
}

/// Serves the requests of one connection (kept alive between deliveries), until it closes.
fn receive(stream: TcpStream, got: &Mutex<Vec<(String, String, String)>>) {
    let Ok(read) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let payload: Value = serde_json::from_slice(&body).unwrap_or_default();
        got.lock().unwrap().push((
            headers.get("idempotency-key").cloned().unwrap_or_default(),
            headers.get("x-certmint-event").cloned().unwrap_or_default(),
            payload["data"]["resource_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ));
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

#[test]
fn two_nodes_deliver_each_webhook_event_once() -> TestResult {
    /// Certificates issued, half on each node.
    const ISSUED: usize = 12;
    let http = Http::new();
    let root = tempfile::tempdir()?;
    let mut args = shared_database(&http, root.path());
    let config = root.path().join("certmint.toml");
    std::fs::write(&config, "[webhooks]\nallow_private_targets = true\n")?;
    args.extend(["--config".into(), config.display().to_string()]);
    let a = Node::start(&http, &root.path().join("a"), &args)?;
    let b = Node::start(&http, &root.path().join("b"), &args)?;
    let receiver = Receiver::start()?;

    // The delivery job due every second on two nodes that each look every second: both get
    // to run it while the certificates come in.
    let (status, body) = a.call(
        &http,
        Method::PATCH,
        "/api/v2/system/jobs/webhook_delivery",
        Some(json!({"schedule": "every 1s"})),
    )?;
    assert_eq!(status, 200, "{body}");
    let (status, made) = a.call(
        &http,
        Method::POST,
        "/api/v2/webhooks",
        Some(json!({"name": "once", "url": receiver.url, "events": ["certificate_issued"]})),
    )?;
    assert_eq!(status, 201, "{made}");
    let hook = made["data"]["id"].as_i64().ok_or("a webhook id")?;

    let mut issued = std::collections::BTreeSet::new();
    for n in 0..ISSUED {
        let node = if n % 2 == 0 { &a } else { &b };
        let (status, body) = node.call(
            &http,
            Method::POST,
            "/api/v2/certificates",
            Some(json!({"common_name": format!("hook{n}.example.test"), "validity_days": 30})),
        )?;
        assert_eq!(status, 201, "{body}");
        issued.insert(body["data"]["id"].as_i64().ok_or("an id")?.to_string());
        std::thread::sleep(Duration::from_millis(150));
    }

    let since = Instant::now();
    while receiver.got().len() < ISSUED {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "{} of {ISSUED} deliveries within a minute: {:?}",
            receiver.got().len(),
            receiver.got()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A few more runs of the job on either node: nothing is sent again.
    std::thread::sleep(Duration::from_secs(5));
    let got = receiver.got();
    assert_eq!(got.len(), ISSUED, "each event once: {got:?}");
    let keys: std::collections::BTreeSet<&str> = got.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(keys.len(), ISSUED, "no event twice: {got:?}");
    assert!(!keys.contains(""), "each has its Idempotency-Key: {got:?}");
    assert!(
        got.iter()
            .all(|(_, event, _)| event == "certificate_issued"),
        "{got:?}"
    );
    let about: std::collections::BTreeSet<String> =
        got.iter().map(|(_, _, id)| id.clone()).collect();
    assert_eq!(about, issued, "every certificate announced");

    // Both nodes read the same log: every delivery made at the first attempt.
    for node in [&a, &b] {
        let log = node.get(&http, &format!("/api/v2/webhooks/{hook}/deliveries"))?;
        let log = log.as_array().ok_or("a delivery log")?;
        assert_eq!(log.len(), ISSUED, "{log:?}");
        assert!(
            log.iter()
                .all(|d| d["status"] == "delivered" && d["attempts"] == 1),
            "{log:?}"
        );
    }
    let job = b.job(&http, "webhook_delivery")?;
    assert!(
        job["runs"].as_i64().is_some_and(|runs| runs > 1),
        "the job ran: {job}"
    );
    a.server.stop()?;
    b.server.stop()?;
    http.drop_database(&args);
    Ok(())
}
