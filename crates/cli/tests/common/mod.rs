//! What the CLI's test binaries share: the real `certmint` binary with a clean environment, a
//! running `certmint serve` on ephemeral ports, and a small blocking HTTP client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// How long a server may take to say it is serving, and to exit after SIGTERM.
pub const START_LIMIT: Duration = Duration::from_secs(30);
pub const STOP_LIMIT: Duration = Duration::from_secs(5);

/// The binary, with no `CERTMINT_*` variable inherited from whoever runs the tests.
pub fn certmint() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_certmint"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CERTMINT_") {
            command.env_remove(name);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// `certmint serve` on `data` with an ephemeral HTTPS port; `http` is the `--http-listen` flag,
/// if any.
pub fn serve(data: &Path, http: Option<&str>) -> Command {
    serve_logging(data, http, "warn")
}

/// [`serve`], logging at `level` (a tracing filter) to standard error.
pub fn serve_logging(data: &Path, http: Option<&str>, level: &str) -> Command {
    let mut command = certmint();
    command
        .args(["serve", "--log-level", level, "--data-dir"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0"]);
    if let Some(http) = http {
        command.args(["--http-listen", http]);
    }
    command
}

pub const EPHEMERAL: Option<&str> = Some("127.0.0.1:0");

/// Runs `openssl args`; the tests need it, so its absence is a failure.
pub fn openssl(args: &[&str]) -> Result<Output, String> {
    Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| format!("the openssl command is required for this test: {e}"))
}

pub fn run(command: &mut Command) -> Output {
    command.output().expect("certmint runs")
}

pub fn out(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn err(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that a command failed with a message on stderr containing every one of `needles`.
pub fn assert_fails(output: &Output, needles: &[&str]) {
    assert!(
        !output.status.success(),
        "expected a failure; stdout: {}; stderr: {}",
        out(output),
        err(output)
    );
    let stderr = err(output);
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr does not mention {needle:?}: {stderr}"
        );
    }
}

/// A running `certmint serve`. Dropping it kills the process if it is still running.
pub struct Server {
    pub child: Child,
    pub data: PathBuf,
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    /// Standard output up to and including the "serving" line.
    pub stdout: Vec<String>,
    /// Standard error, in a file so that the server can never block on a full pipe.
    pub stderr: tempfile::NamedTempFile,
}

impl Server {
    /// Spawns `command` (made by [`serve`] on `data`) and waits until it says it is serving.
    pub fn start(command: &mut Command, data: &Path) -> Result<Self, String> {
        let stderr = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        let log = stderr.reopen().map_err(|e| e.to_string())?;
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        // A thread reads standard output for as long as the process lives, so the wait below
        // can time out, and later output never finds a closed pipe.
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // After the wait below, nobody listens: keep draining all the same.
                let _ = lines_tx.send(line);
            }
        });
        let started = Instant::now();
        let mut lines = Vec::new();
        let fail = |mut child: Child, lines: &[String], log: &Path, why: &str| {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(log).unwrap_or_default();
            Err(format!(
                "certmint serve {why}; stdout: {lines:?}; stderr: {log}"
            ))
        };
        loop {
            let left = START_LIMIT.saturating_sub(started.elapsed());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    let serving = line.starts_with("certmint is serving");
                    // "certmint is serving HTTPS on https://A and HTTP on http://B" (or "(disabled)")
                    let addresses = line
                        .strip_prefix("certmint is serving HTTPS on https://")
                        .and_then(|rest| rest.split_once(" and HTTP on "))
                        .and_then(|(https, http)| {
                            let http = http.strip_prefix("http://").and_then(|a| a.parse().ok());
                            Some((https.parse().ok()?, http))
                        });
                    lines.push(line);
                    match addresses {
                        Some((https, http)) => {
                            return Ok(Self {
                                child,
                                data: data.to_owned(),
                                https,
                                http,
                                stdout: lines,
                                stderr,
                            });
                        }
                        None if serving => {
                            return fail(child, &lines, stderr.path(), "printed no addresses");
                        }
                        None => {}
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return fail(
                        child,
                        &lines,
                        stderr.path(),
                        "did not start serving in time",
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return fail(child, &lines, stderr.path(), "stopped before serving");
                }
            }
        }
    }

    /// The admin password printed at first start (the line after the announcement, indented).
    pub fn admin_password(&self) -> Option<String> {
        let at = self
            .stdout
            .iter()
            .position(|l| l.contains("shown only this once"))?;
        self.stdout
            .get(at + 1..)?
            .iter()
            .map(|l| l.trim())
            .find(|l| !l.is_empty())
            .map(str::to_owned)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.https)
    }

    /// Sends `signal` (`TERM`, `INT`) and waits (up to [`STOP_LIMIT`]) for the process to exit;
    /// returns its status and how long it took.
    pub fn terminate(mut self, signal: &str) -> Result<(ExitStatus, Duration), String> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .map_err(|e| e.to_string())?;
        if !sent.success() {
            return Err(format!("kill -TERM {pid} failed"));
        }
        let started = Instant::now();
        while started.elapsed() < STOP_LIMIT {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok((status, started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let log = std::fs::read_to_string(self.stderr.path()).unwrap_or_default();
        Err(format!(
            "certmint did not exit within {STOP_LIMIT:?} of SIG{signal}; stderr: {log}"
        ))
    }

    /// Stops with SIGTERM, asserting a clean exit.
    pub fn stop(self) -> TestResult {
        self.stop_with("TERM")
    }

    /// [`Server::terminate`] with `signal`, asserting a clean exit.
    pub fn stop_with(self, signal: &str) -> TestResult {
        let (status, took) = self.terminate(signal)?;
        assert!(status.success(), "SIG{signal} ends certmint with {status}");
        assert!(took < STOP_LIMIT);
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(serde::Serialize)]
pub struct Login<'a> {
    username: &'a str,
    password: &'a str,
}

/// A blocking façade over reqwest, for these synchronous tests.
pub struct Http {
    pub rt: tokio::runtime::Runtime,
}

impl Http {
    pub fn new() -> Self {
        Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime"),
        }
    }

    /// `GET http://127.0.0.1:{port}/health`: the status, or `None` when nothing answers.
    pub fn health(&self, port: u16) -> Option<u16> {
        self.rt.block_on(async {
            let client = reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()
                .ok()?;
            let response = client
                .get(format!("http://127.0.0.1:{port}/health"))
                .send()
                .await
                .ok()?;
            Some(response.status().as_u16())
        })
    }

    /// A client that trusts only the server's own certificate, with a cookie jar.
    pub fn client(server: &Server) -> Result<reqwest::Client, Box<dyn std::error::Error>> {
        let pem = std::fs::read(server.data.join("tls/server.crt"))?;
        Ok(reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem)?])
            .cookie_store(true)
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()?)
    }

    /// Logs in over HTTPS on `client`; returns the status.
    pub fn login_on(
        &self,
        client: &reqwest::Client,
        server: &Server,
        username: &str,
        password: &str,
    ) -> Result<u16, Box<dyn std::error::Error>> {
        self.rt.block_on(async {
            let response = client
                .post(server.https_url("/api/v2/auth/login/password"))
                .json(&Login { username, password })
                .send()
                .await?;
            Ok(response.status().as_u16())
        })
    }

    /// Logs in over HTTPS with a fresh client; returns the status.
    pub fn login(
        &self,
        server: &Server,
        username: &str,
        password: &str,
    ) -> Result<u16, Box<dyn std::error::Error>> {
        self.login_on(&Self::client(server)?, server, username, password)
    }

    /// `GET /api/v2/auth/verify` with `client`'s session cookie; returns the status.
    pub fn verify(
        &self,
        client: &reqwest::Client,
        server: &Server,
    ) -> Result<u16, Box<dyn std::error::Error>> {
        self.rt.block_on(async {
            let response = client
                .get(server.https_url("/api/v2/auth/verify"))
                .send()
                .await?;
            Ok(response.status().as_u16())
        })
    }

    /// `--database-url` arguments for a fresh PostgreSQL database when
    /// `CERTMINT_TEST_DATABASE_URL` is set (it must then be reachable); none for SQLite.
    pub fn database_args(&self) -> Vec<String> {
        match std::env::var("CERTMINT_TEST_DATABASE_URL") {
            Ok(admin) if !admin.is_empty() => {
                let url = self
                    .rt
                    .block_on(store::testing::fresh_postgres_database(&admin))
                    .unwrap_or_else(|e| {
                        panic!("CERTMINT_TEST_DATABASE_URL is set but unusable: {e}")
                    });
                vec!["--database-url".into(), url]
            }
            _ => Vec::new(),
        }
    }
}

impl Http {
    /// Drops the PostgreSQL database [`Http::database_args`] made, after a passing test.
    pub fn drop_database(&self, args: &[String]) {
        let (Some(url), Ok(admin)) = (args.get(1), std::env::var("CERTMINT_TEST_DATABASE_URL"))
        else {
            return;
        };
        let name = url
            .split('?')
            .next()
            .and_then(|base| base.rsplit('/').next())
            .unwrap_or_default();
        if !name.starts_with("certmint_test_") {
            return;
        }
        self.rt.block_on(async {
            if let Ok(server) = store::Store::connect(&admin, 1).await {
                let _ = server
                    .execute_raw(&format!("DROP DATABASE IF EXISTS {name}"))
                    .await;
                server.close().await;
            }
        });
    }
}

/// Logs in as admin with `password` (session cookie + CSRF token) and creates an API key with
/// `permissions`.
pub fn api_key(
    http: &Http,
    server: &Server,
    password: &str,
    permissions: &[&str],
) -> Result<String, Box<dyn std::error::Error>> {
    let client = Http::client(server)?;
    http.rt.block_on(async {
        let login: serde_json::Value = client
            .post(server.https_url("/api/v2/auth/login/password"))
            .json(&serde_json::json!({"username": "admin", "password": password}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let csrf = login["data"]["csrf_token"].as_str().ok_or("a CSRF token")?;
        let created: serde_json::Value = client
            .post(server.https_url("/api/v2/account/apikeys"))
            .header("x-csrf-token", csrf)
            .json(&serde_json::json!({"name": "cli test", "permissions": permissions}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(created["data"]["key"]
            .as_str()
            .ok_or("the key's secret")?
            .to_owned())
    })
}

/// `method path` over HTTPS with the API key and a JSON body, if any: the status and the
/// JSON answer (null when there is none).
pub fn call(
    http: &Http,
    server: &Server,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(u16, serde_json::Value), Box<dyn std::error::Error>> {
    let client = Http::client(server)?;
    http.rt.block_on(async {
        let mut request = client
            .request(method, server.https_url(path))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or_default()))
    })
}

/// A download's text over HTTPS with the API key.
pub fn text(
    http: &Http,
    server: &Server,
    key: &str,
    path: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let client = Http::client(server)?;
    http.rt.block_on(async {
        Ok(client
            .get(server.https_url(path))
            .bearer_auth(key)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    })
}

/// What `openssl ocsp` says of the certificate with id `id` (read from `holder` with `key`),
/// asking `asked`'s responder.
pub fn ocsp_status(
    http: &Http,
    asked: &Server,
    holder: &Server,
    key: &str,
    id: i64,
    dir: &Path,
) -> Result<String, Box<dyn std::error::Error>> {
    let chain = text(
        http,
        holder,
        key,
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
    let http_addr = asked.http.ok_or("the plain-HTTP listener")?;
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
