//! The real `certmint` binary: first start, restarts, secrets from the environment, settings
//! layering, local user administration, and graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn certmint() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_certmint"));
    for (name, _) in std::env::vars() {
        if name.starts_with("CERTMINT_") {
            command.env_remove(name);
        }
    }
    command.env("CERTMINT_LOG_LEVEL", "warn");
    command
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn run(command: &mut Command) -> Output {
    command.output().expect("certmint runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `curl` answers: the HTTP status and the body.
fn curl(args: &[&str]) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/test installs it)");
    let out = text(&output.stdout);
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn login(https: u16, dir: &Path, username: &str, password: &str) -> u16 {
    let cert = dir.join("tls/server.crt");
    let body = format!(r#"{{"username":"{username}","password":"{password}"}}"#);
    curl(&[
        "--cacert",
        cert.to_str().unwrap_or_default(),
        "-H",
        "content-type: application/json",
        "-d",
        &body,
        &format!("https://127.0.0.1:{https}/api/v2/auth/login/password"),
    ])
    .0
}

struct Server {
    child: Child,
    https: u16,
    http: u16,
    stdout: Vec<String>,
}

impl Server {
    /// Starts `certmint serve` on free ports and waits until it says it is serving.
    fn start(dir: &Path, configure: impl FnOnce(&mut Command)) -> Result<Self, String> {
        let (https, http) = (free_port(), free_port());
        let mut command = certmint();
        command
            .args(["serve", "--data-dir"])
            .arg(dir)
            .args([
                "--listen",
                &format!("127.0.0.1:{https}"),
                "--http-listen",
                &format!("127.0.0.1:{http}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        configure(&mut command);
        let mut child = command.spawn().map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| e.to_string())?;
            let serving = line.starts_with("certmint is serving");
            lines.push(line);
            if serving {
                return Ok(Self {
                    child,
                    https,
                    http,
                    stdout: lines,
                });
            }
        }
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        let _ = child.wait();
        Err(format!(
            "certmint serve stopped before serving: {lines:?} {stderr}"
        ))
    }

    fn admin_password(&self) -> Option<String> {
        let at = self
            .stdout
            .iter()
            .position(|l| l.contains("shown only this once"))?;
        self.stdout.get(at + 2).map(|l| l.trim().to_owned())
    }

    /// Sends SIGTERM and returns whether the process exited successfully within `limit`.
    fn terminate(mut self, limit: Duration) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        false
    }
}

#[test]
fn version_and_help_for_every_command() {
    let out = run(certmint().arg("version"));
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("certmint {}", env!("CARGO_PKG_VERSION"))
    );
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["user", "--help"],
        &["user", "create", "--help"],
        &["user", "list", "--help"],
        &["user", "reset-password", "--help"],
        &["version", "--help"],
    ] {
        let out = run(certmint().args(args));
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage: certmint"), "{args:?}");
    }
}

#[test]
fn first_start_restart_and_graceful_shutdown() -> TestResult {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), |_| {})?;
    let password = server
        .admin_password()
        .ok_or("the first start prints the admin password")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(dir.path().join("master.key"))?
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let cert = std::fs::read(dir.path().join("tls/server.crt"))?;
    assert_eq!(
        curl(&[&format!("http://127.0.0.1:{}/health", server.http)]).0,
        200
    );
    assert_eq!(login(server.https, dir.path(), "admin", &password), 200);
    assert!(
        server.terminate(Duration::from_secs(10)),
        "SIGTERM ends certmint cleanly"
    );

    let again = Server::start(dir.path(), |_| {})?;
    assert!(
        again.admin_password().is_none(),
        "the password is printed once only"
    );
    assert_eq!(login(again.https, dir.path(), "admin", &password), 200);
    assert_eq!(
        std::fs::read(dir.path().join("tls/server.crt"))?,
        cert,
        "the certificate is kept"
    );
    assert!(again.terminate(Duration::from_secs(10)));
    Ok(())
}

#[test]
fn secrets_from_the_environment() -> TestResult {
    let dir = tempfile::tempdir()?;
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let server = Server::start(dir.path(), |c| {
        c.env("CERTMINT_ADMIN_PASSWORD", "from the environment")
            .env("CERTMINT_MASTER_KEY", key);
    })?;
    assert!(server.admin_password().is_none());
    assert!(
        !dir.path().join("master.key").exists(),
        "no key file when the key comes from the environment"
    );
    assert_eq!(
        login(server.https, dir.path(), "admin", "from the environment"),
        200
    );
    assert!(server.terminate(Duration::from_secs(10)));

    let other = "HxwdHh8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRo=";
    let out = run(certmint()
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--http-listen", ""])
        .env("CERTMINT_MASTER_KEY", other));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("another master key"),
        "{}",
        text(&out.stderr)
    );

    let fresh = tempfile::tempdir()?;
    let out = run(certmint()
        .args(["serve", "--data-dir"])
        .arg(fresh.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("CERTMINT_ADMIN_PASSWORD", "short"));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("CERTMINT_ADMIN_PASSWORD"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

#[test]
fn settings_layer_file_then_environment_then_flags() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (file_port, env_port) = (free_port(), free_port());
    let config = dir.path().join("certmint.toml");
    std::fs::write(
        &config,
        format!("http_listen = \"127.0.0.1:{file_port}\"\nlog_format = \"json\"\n"),
    )?;
    let data = dir.path().join("data");

    // The file alone.
    let mut command = certmint();
    command
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("stdout")?).lines();
    let serving = lines
        .find(|l| {
            l.as_ref()
                .is_ok_and(|l| l.starts_with("certmint is serving"))
        })
        .ok_or("never served")??;
    assert!(
        serving.contains(&format!("http://127.0.0.1:{file_port}")),
        "{serving}"
    );
    let _ = child.kill();
    let _ = child.wait();

    // The environment wins over the file, and a flag over both.
    let server = Server::start(&data, |c| {
        c.arg("--config")
            .arg(&config)
            .env("CERTMINT_HTTP_LISTEN", format!("127.0.0.1:{env_port}"));
    })?;
    assert_eq!(
        curl(&[&format!("http://127.0.0.1:{}/health", server.http)]).0,
        200,
        "the flag's port answers"
    );
    assert_ne!(
        curl(&[&format!("http://127.0.0.1:{env_port}/health")]).0,
        200
    );
    assert!(server.terminate(Duration::from_secs(10)));

    let mut bad = std::fs::File::create(dir.path().join("bad.toml"))?;
    bad.write_all(b"no_such_setting = 1\n")?;
    let out = run(certmint()
        .args(["serve", "--config"])
        .arg(dir.path().join("bad.toml"))
        .arg("--data-dir")
        .arg(&data));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no_such_setting"),
        "{}",
        text(&out.stderr)
    );
    let out = run(certmint()
        .args(["serve", "--data-dir"])
        .arg(&data)
        .env("CERTMINT_LOCKOUT_THRESHOLD", "many"));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("CERTMINT_LOCKOUT_THRESHOLD"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

fn password_from(out: &Output) -> Option<String> {
    text(&out.stdout).lines().find_map(|l| {
        l.split_once("(shown once): ")
            .map(|(_, p)| p.trim().to_owned())
    })
}

#[test]
fn local_user_administration() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let out = run(certmint()
        .args([
            "user",
            "create",
            "--username",
            "bob",
            "--role",
            "operator",
            "--data-dir",
        ])
        .arg(d));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bob = password_from(&out).ok_or("a generated password")?;

    let mut child = certmint()
        .args([
            "user",
            "create",
            "--username",
            "carol",
            "--password-stdin",
            "--data-dir",
        ])
        .arg(d)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("stdin")?
        .write_all(b"carol's long password\n")?;
    let out = child.wait_with_output()?;
    assert!(out.status.success());
    assert!(password_from(&out).is_none());

    let out = run(certmint()
        .args([
            "user",
            "create",
            "--username",
            "eve",
            "--role",
            "root",
            "--data-dir",
        ])
        .arg(d));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown role"));

    let out = run(certmint().args(["user", "list", "--data-dir"]).arg(d));
    let list = text(&out.stdout);
    assert!(
        list.contains("bob") && list.contains("operator") && list.contains("carol"),
        "{list}"
    );

    let out = run(certmint()
        .args(["user", "reset-password", "bob", "--data-dir"])
        .arg(d));
    assert!(out.status.success());
    let new_bob = password_from(&out).ok_or("a new password")?;
    let out = run(certmint()
        .args(["user", "reset-password", "nobody", "--data-dir"])
        .arg(d));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no user 'nobody'"));

    let server = Server::start(d, |_| {})?;
    assert!(
        server.admin_password().is_none(),
        "users exist, so no admin is made"
    );
    assert_eq!(login(server.https, d, "bob", &new_bob), 200);
    assert_eq!(login(server.https, d, "bob", &bob), 401);
    assert_eq!(
        login(server.https, d, "carol", "carol's long password"),
        200
    );
    assert!(server.terminate(Duration::from_secs(10)));
    Ok(())
}
