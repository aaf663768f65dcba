//! The real `certmint` binary: `version` and `--help`, first start and restart, graceful
//! shutdown on SIGTERM, secrets from the environment, settings layering (file, environment,
//! flags), and local user administration next to a running server.
//!
//! Every child runs with the `CERTMINT_*` variables of the developer's environment removed, a
//! temporary data directory, and ephemeral ports. The user-administration test runs on a fresh
//! PostgreSQL database when `CERTMINT_TEST_DATABASE_URL` names a server, else on SQLite.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Two different master keys (32 bytes each, base64).
const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=";

/// How long a server may take to say it is serving, and to exit after SIGTERM.
const START_LIMIT: Duration = Duration::from_secs(30);
const STOP_LIMIT: Duration = Duration::from_secs(5);

/// The binary, with no `CERTMINT_*` variable inherited from whoever runs the tests.
fn certmint() -> Command {
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
fn serve(data: &Path, http: Option<&str>) -> Command {
    let mut command = certmint();
    command
        .args(["serve", "--log-level", "warn", "--data-dir"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0"]);
    if let Some(http) = http {
        command.args(["--http-listen", http]);
    }
    command
}

const EPHEMERAL: Option<&str> = Some("127.0.0.1:0");

fn run(command: &mut Command) -> Output {
    command.output().expect("certmint runs")
}

fn out(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn err(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that a command failed with a message on stderr containing every one of `needles`.
fn assert_fails(output: &Output, needles: &[&str]) {
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

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The password a `user` command printed (`… (shown once): <password>`).
fn printed_password(output: &Output) -> Option<String> {
    out(output).lines().find_map(|l| {
        l.split_once("(shown once): ")
            .map(|(_, p)| p.trim().to_owned())
    })
}

/// Runs `command` with `input` on its standard input.
fn run_with_stdin(command: &mut Command, input: &str) -> Result<Output, std::io::Error> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes())?;
    }
    child.wait_with_output()
}

/// A running `certmint serve`. Dropping it kills the process if it is still running.
struct Server {
    child: Child,
    data: PathBuf,
    https: SocketAddr,
    http: Option<SocketAddr>,
    /// Standard output up to and including the "serving" line.
    stdout: Vec<String>,
    /// Standard error, in a file so that the server can never block on a full pipe.
    stderr: tempfile::NamedTempFile,
}

impl Server {
    /// Spawns `command` (made by [`serve`] on `data`) and waits until it says it is serving.
    fn start(command: &mut Command, data: &Path) -> Result<Self, String> {
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
    fn admin_password(&self) -> Option<String> {
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

    fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.https)
    }

    /// Sends `signal` (`TERM`, `INT`) and waits (up to [`STOP_LIMIT`]) for the process to exit;
    /// returns its status and how long it took.
    fn terminate(mut self, signal: &str) -> Result<(ExitStatus, Duration), String> {
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
    fn stop(self) -> TestResult {
        self.stop_with("TERM")
    }

    /// [`Server::terminate`] with `signal`, asserting a clean exit.
    fn stop_with(self, signal: &str) -> TestResult {
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
struct Login<'a> {
    username: &'a str,
    password: &'a str,
}

/// A blocking façade over reqwest, for these synchronous tests.
struct Http {
    rt: tokio::runtime::Runtime,
}

impl Http {
    fn new() -> Self {
        Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime"),
        }
    }

    /// `GET http://127.0.0.1:{port}/health`: the status, or `None` when nothing answers.
    fn health(&self, port: u16) -> Option<u16> {
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
    fn client(server: &Server) -> Result<reqwest::Client, Box<dyn std::error::Error>> {
        let pem = std::fs::read(server.data.join("tls/server.crt"))?;
        Ok(reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem)?])
            .cookie_store(true)
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()?)
    }

    /// Logs in over HTTPS on `client`; returns the status.
    fn login_on(
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
    fn login(
        &self,
        server: &Server,
        username: &str,
        password: &str,
    ) -> Result<u16, Box<dyn std::error::Error>> {
        self.login_on(&Self::client(server)?, server, username, password)
    }

    /// `GET /api/v2/auth/verify` with `client`'s session cookie; returns the status.
    fn verify(
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
    fn database_args(&self) -> Vec<String> {
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
    fn drop_database(&self, args: &[String]) {
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

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn version_and_help_for_every_command() {
    let version = format!("certmint {}", env!("CARGO_PKG_VERSION"));
    let output = run(certmint().arg("version"));
    assert!(output.status.success());
    assert_eq!(out(&output).trim(), version);
    let output = run(certmint().arg("--version"));
    assert!(output.status.success());
    assert_eq!(out(&output).trim(), version);

    for (args, mentions) in [
        (&["--help"][..], &["serve", "user", "version"][..]),
        (
            &["serve", "--help"],
            &["--data-dir", "--listen", "--http-listen"],
        ),
        (&["user", "--help"], &["create", "list", "reset-password"]),
        (
            &["user", "create", "--help"],
            &["--username", "--role", "--password-stdin"],
        ),
        (&["user", "list", "--help"], &["--data-dir"]),
        (
            &["user", "reset-password", "--help"],
            &["<USERNAME>", "--password-stdin"],
        ),
        (&["version", "--help"], &[]),
    ] {
        let output = run(certmint().args(args));
        assert!(output.status.success(), "{args:?}: {}", err(&output));
        let help = out(&output);
        assert!(help.contains("Usage: certmint"), "{args:?}: {help}");
        for mention in mentions {
            assert!(help.contains(mention), "{args:?} lacks {mention}: {help}");
        }
    }

    let output = run(certmint().arg("no-such-command"));
    assert!(!output.status.success());
    assert!(err(&output).contains("no-such-command"), "{}", err(&output));
}

#[test]
fn first_start_restart_and_graceful_shutdown() -> TestResult {
    let http = Http::new();
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");

    let server = Server::start(&mut serve(&data, EPHEMERAL), &data)?;
    let password = server
        .admin_password()
        .ok_or("the first start prints the admin password")?;
    assert!(password.len() >= 12, "{password:?}");
    assert_eq!(
        server
            .stdout
            .iter()
            .filter(|l| l.contains(&password))
            .count(),
        1,
        "the password is printed once: {:?}",
        server.stdout
    );
    let cert_path = data.join("tls/server.crt");
    let key_path = data.join("master.key");
    #[cfg(unix)]
    {
        assert_eq!(mode(&data), 0o700, "the data directory is private");
        assert_eq!(mode(&key_path), 0o600, "the master key file is private");
        assert_eq!(mode(&data.join("tls/server.key.sealed")), 0o600);
    }
    let cert = std::fs::read(&cert_path)?;
    let key = std::fs::read(&key_path)?;
    // The listener's certificate comes from the default hierarchy made at first start: the
    // file holds it and the issuing intermediate.
    assert_eq!(
        String::from_utf8_lossy(&cert)
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    let issuer = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-issuer", "-in"])
        .arg(&cert_path)
        .output()
        .map_err(|e| format!("the openssl command is required for this test: {e}"))?;
    assert!(
        String::from_utf8_lossy(&issuer.stdout).contains("certmint Issuing CA"),
        "{issuer:?}"
    );

    let port = server.http.ok_or("HTTP listener")?.port();
    assert_eq!(http.health(port), Some(200));
    // A session whose keep-alive connection stays open across the shutdown.
    let admin = Http::client(&server)?;
    assert_eq!(http.login_on(&admin, &server, "admin", &password)?, 200);
    assert_eq!(http.verify(&admin, &server)?, 200);
    assert_eq!(http.login(&server, "admin", "not the password")?, 401);
    server.stop()?;
    assert_eq!(http.health(port), None, "nothing listens after shutdown");

    let again = Server::start(&mut serve(&data, EPHEMERAL), &data)?;
    assert!(
        again.admin_password().is_none() && !again.stdout.iter().any(|l| l.contains(&password)),
        "a restart prints no password: {:?}",
        again.stdout
    );
    assert_eq!(http.login(&again, "admin", &password)?, 200);
    assert_eq!(std::fs::read(&cert_path)?, cert, "the certificate is kept");
    assert_eq!(std::fs::read(&key_path)?, key, "the master key is kept");
    // Ctrl-C (SIGINT) shuts down just as cleanly.
    again.stop_with("INT")
}

#[test]
fn admin_password_from_the_environment() -> TestResult {
    let http = Http::new();
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");
    let chosen = "chosen by the operator";
    let server = Server::start(
        serve(&data, EPHEMERAL).env("CERTMINT_ADMIN_PASSWORD", chosen),
        &data,
    )?;
    assert!(
        server.admin_password().is_none() && !server.stdout.iter().any(|l| l.contains(chosen)),
        "nothing is printed when the password comes from the environment: {:?}",
        server.stdout
    );
    assert_eq!(http.login(&server, "admin", chosen)?, 200);
    server.stop()?;

    // Too short for the policy (12 characters by default): serve refuses to start.
    let fresh = root.path().join("fresh");
    let output = run(serve(&fresh, Some("")).env("CERTMINT_ADMIN_PASSWORD", "elevenchars"));
    assert_fails(&output, &["CERTMINT_ADMIN_PASSWORD", "at least 12"]);
    Ok(())
}

#[test]
fn master_key_from_the_environment() -> TestResult {
    let http = Http::new();
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");
    let password = "admin password for the key test";
    let with_key = |key: &str| {
        let mut command = serve(&data, EPHEMERAL);
        command
            .env("CERTMINT_MASTER_KEY", key)
            .env("CERTMINT_ADMIN_PASSWORD", password);
        command
    };

    let server = Server::start(&mut with_key(KEY_A), &data)?;
    assert!(
        !data.join("master.key").exists(),
        "no key file when the key comes from the environment"
    );
    assert!(data.join("tls/server.key.sealed").exists());
    assert_eq!(http.login(&server, "admin", password)?, 200);
    server.stop()?;

    // The same key opens the sealed TLS key again.
    let server = Server::start(&mut with_key(KEY_A), &data)?;
    assert_eq!(http.login(&server, "admin", password)?, 200);
    server.stop()?;

    // Another key cannot open it: a clear refusal, not a half-started server.
    let output = run(&mut with_key(KEY_B));
    assert_fails(&output, &["another master key"]);
    assert!(!data.join("master.key").exists());

    // A key that is not 32 bytes is refused, naming the variable.
    let output = run(&mut with_key("c2hvcnQ="));
    assert_fails(&output, &["CERTMINT_MASTER_KEY", "32 bytes"]);

    // Without the variable, a fresh key file would never open what is sealed: refused, and no
    // key file is left behind.
    let output = run(serve(&data, EPHEMERAL).env("CERTMINT_ADMIN_PASSWORD", password));
    assert_fails(&output, &["master.key is missing", "CERTMINT_MASTER_KEY"]);
    assert!(!data.join("master.key").exists());
    Ok(())
}

#[test]
fn settings_layer_file_then_environment_then_flags() -> TestResult {
    let http = Http::new();
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    let config = root.path().join("certmint.toml");
    std::fs::write(
        &config,
        format!("password_min_length = 20\nhttp_listen = \"127.0.0.1:{file_port}\"\n"),
    )?;
    let sixteen = "sixteen chars ok";
    let long = "a password of more than twenty characters";

    // The file's password_min_length: a 16-character admin password is refused ...
    let output = run(serve(&root.path().join("refused"), None)
        .arg("--config")
        .arg(&config)
        .env("CERTMINT_ADMIN_PASSWORD", sixteen));
    assert_fails(&output, &["CERTMINT_ADMIN_PASSWORD", "at least 20"]);

    // ... and the file's http_listen is where plain HTTP is served.
    let server = Server::start(
        serve(&data, None)
            .arg("--config")
            .arg(&config)
            .env("CERTMINT_ADMIN_PASSWORD", long),
        &data,
    )?;
    assert_eq!(server.http.map(|a| a.port()), Some(file_port));
    assert_eq!(http.health(file_port), Some(200));
    server.stop()?;

    // The environment wins over the file (given here through CERTMINT_CONFIG).
    let server = Server::start(
        serve(&data, None)
            .env("CERTMINT_CONFIG", &config)
            .env("CERTMINT_HTTP_LISTEN", format!("127.0.0.1:{env_port}")),
        &data,
    )?;
    assert_eq!(http.health(env_port), Some(200));
    assert_eq!(http.health(file_port), None);
    server.stop()?;

    // The flag wins over both.
    let server = Server::start(
        serve(&data, Some(&format!("127.0.0.1:{flag_port}")))
            .arg("--config")
            .arg(&config)
            .env("CERTMINT_HTTP_LISTEN", format!("127.0.0.1:{env_port}")),
        &data,
    )?;
    assert_eq!(http.health(flag_port), Some(200));
    assert_eq!(http.health(env_port), None);
    assert_eq!(http.health(file_port), None);
    server.stop()?;

    // The local commands read the same layers: the file's minimum, then the environment's.
    let create = |name: &str| {
        let mut command = certmint();
        command
            .args(["user", "create", "--password-stdin", "--username", name])
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data);
        command
    };
    let output = run_with_stdin(&mut create("dave"), &format!("{sixteen}\n"))?;
    assert_fails(&output, &["at least 20"]);
    let output = run_with_stdin(
        create("dave").env("CERTMINT_PASSWORD_MIN_LENGTH", "16"),
        &format!("{sixteen}\n"),
    )?;
    assert!(output.status.success(), "{}", err(&output));

    // Mistakes name what is wrong.
    let bad = root.path().join("bad.toml");
    std::fs::write(&bad, "no_such_setting = 1\n")?;
    let output = run(serve(&data, Some("")).arg("--config").arg(&bad));
    assert_fails(&output, &["no_such_setting"]);
    let output = run(serve(&data, Some("")).env("CERTMINT_NO_SUCH_SETTING", "1"));
    assert_fails(&output, &["CERTMINT_NO_SUCH_SETTING"]);
    let output = run(serve(&data, Some("")).env("CERTMINT_LOCKOUT_THRESHOLD", "many"));
    assert_fails(&output, &["CERTMINT_LOCKOUT_THRESHOLD"]);
    let output = run(serve(&data, Some(""))
        .arg("--config")
        .arg(root.path().join("absent.toml")));
    assert_fails(&output, &["absent.toml"]);
    Ok(())
}

/// `(username, role)` of each row of `certmint user list`.
fn listed(output: &Output) -> Vec<(String, String)> {
    out(output)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut fields = l.split_whitespace().skip(1);
            Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
        })
        .collect()
}

#[test]
fn local_user_administration_next_to_a_running_server() -> TestResult {
    let http = Http::new();
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");
    let database = http.database_args();
    let user = |args: &[&str]| {
        let mut command = certmint();
        command
            .arg("user")
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .args(&database);
        command
    };

    let server = Server::start(serve(&data, EPHEMERAL).args(&database), &data)?;
    assert!(server.admin_password().is_some());

    // A generated password, printed once, that logs in on the running server.
    let output = run(&mut user(&[
        "create",
        "--username",
        "bob",
        "--role",
        "operator",
    ]));
    assert!(output.status.success(), "{}", err(&output));
    assert!(out(&output).contains("role operator"), "{}", out(&output));
    let bob = printed_password(&output).ok_or("a generated password")?;
    assert_eq!(http.login(&server, "bob", &bob)?, 200);

    // A password from standard input is not printed.
    let carol = "carol's own long password";
    let output = run_with_stdin(
        &mut user(&[
            "create",
            "--username",
            "carol",
            "--email",
            "carol@example.test",
            "--password-stdin",
        ]),
        &format!("{carol}\n"),
    )?;
    assert!(output.status.success(), "{}", err(&output));
    assert!(printed_password(&output).is_none() && !out(&output).contains(carol));
    assert_eq!(http.login(&server, "carol", carol)?, 200);

    // Refusals: a taken name, an unknown role, a password below the policy.
    let output = run(&mut user(&["create", "--username", "bob"]));
    assert_fails(&output, &["username 'bob' is taken"]);
    let output = run(&mut user(&[
        "create",
        "--username",
        "eve",
        "--role",
        "root",
    ]));
    assert_fails(&output, &["unknown role 'root'"]);
    let output = run_with_stdin(
        &mut user(&["create", "--username", "eve", "--password-stdin"]),
        "too short\n",
    )?;
    assert_fails(&output, &["at least 12"]);

    let output = run(&mut user(&["list"]));
    assert!(output.status.success(), "{}", err(&output));
    assert_eq!(
        listed(&output),
        [("admin", "admin"), ("bob", "operator"), ("carol", "viewer")]
            .map(|(u, r)| (u.to_owned(), r.to_owned())),
        "{}",
        out(&output)
    );
    assert!(out(&output).contains("carol@example.test"));

    // A reset prints a new password, ends bob's sessions, and the old password stops working.
    let session = Http::client(&server)?;
    assert_eq!(http.login_on(&session, &server, "bob", &bob)?, 200);
    assert_eq!(http.verify(&session, &server)?, 200);
    let output = run(&mut user(&["reset-password", "bob"]));
    assert!(output.status.success(), "{}", err(&output));
    let new_bob = printed_password(&output).ok_or("a new password")?;
    assert_ne!(new_bob, bob);
    assert_eq!(
        http.verify(&session, &server)?,
        401,
        "the reset ended bob's session"
    );
    assert_eq!(http.login(&server, "bob", &new_bob)?, 200);
    assert_eq!(http.login(&server, "bob", &bob)?, 401);

    // A reset from standard input.
    let output = run_with_stdin(
        &mut user(&["reset-password", "carol", "--password-stdin"]),
        "carol's next long password\n",
    )?;
    assert!(output.status.success(), "{}", err(&output));
    assert!(printed_password(&output).is_none());
    assert_eq!(
        http.login(&server, "carol", "carol's next long password")?,
        200
    );

    let output = run_with_stdin(
        &mut user(&["reset-password", "carol", "--password-stdin"]),
        "too short\n",
    )?;
    assert_fails(&output, &["at least 12"]);
    let output = run(&mut user(&["reset-password", "nobody"]));
    assert_fails(&output, &["no user 'nobody'"]);
    server.stop()?;
    http.drop_database(&database);
    Ok(())
}
