//! Two `certmint serve` processes on one database, behind no proxy: what one node writes the
//! other serves (a certificate issued on one is read, revoked and answered by OCSP on the
//! other within a second), scheduled jobs run on one node at a time, and when the node that
//! holds a job's lease is killed (SIGKILL) the other takes the job over.
//!
//! On a fresh PostgreSQL database when `CERTMINT_TEST_DATABASE_URL` names a server, else on
//! one SQLite file that both processes open.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{EPHEMERAL, Http, Server, TestResult, api_key, call, openssl, serve};
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
    fn start(
        http: &Http,
        data: &Path,
        database: &[String],
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let server = Server::start(
            serve(data, EPHEMERAL)
                .args(database)
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

    /// A download's text, over HTTPS with the API key.
    fn text(&self, http: &Http, path: &str) -> Result<String, Box<dyn std::error::Error>> {
        let client = Http::client(&self.server)?;
        http.rt.block_on(async {
            Ok(client
                .get(self.server.https_url(path))
                .bearer_auth(&self.key)
                .send()
                .await?
                .error_for_status()?
                .text()
                .await?)
        })
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

/// What `openssl ocsp` says of the certificate with id `id`, asking `node`'s responder.
fn ocsp_status(
    http: &Http,
    asked: &Node,
    holder: &Node,
    id: i64,
    dir: &Path,
) -> Result<String, Box<dyn std::error::Error>> {
    let chain = holder.text(
        http,
        &format!("/api/v2/certificates/{id}/export?format=chain"),
    )?;
    let blocks: Vec<&str> = chain
        .split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .collect();
    let (leaf, issuer) = (
        blocks.first().ok_or("a leaf")?,
        blocks.get(1).ok_or("an issuer")?,
    );
    std::fs::write(dir.join("leaf.pem"), leaf.trim())?;
    std::fs::write(dir.join("issuer.pem"), issuer.trim())?;
    let http_addr = asked.server.http.ok_or("the plain-HTTP listener")?;
    let output = openssl(&[
        "ocsp",
        "-issuer",
        &dir.join("issuer.pem").display().to_string(),
        "-cert",
        &dir.join("leaf.pem").display().to_string(),
        "-url",
        &format!("http://{http_addr}/ocsp"),
        "-noverify",
        "-no_nonce",
    ])?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn two_nodes_share_the_work_and_one_takes_over_from_the_other() -> TestResult {
    let http = Http::new();
    let root = tempfile::tempdir()?;
    let mut database = http.database_args();
    if database.is_empty() {
        let file = root.path().join("shared.db");
        database = vec![
            "--database-url".into(),
            format!("sqlite://{}?mode=rwc", file.display()),
        ];
    }
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
