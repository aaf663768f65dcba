//! The real `certmint` binary: `version` and `--help`, first start and restart, graceful
//! shutdown on SIGTERM, secrets from the environment, settings layering (file, environment,
//! flags), and local user administration next to a running server.
//!
//! Every child runs with the `CERTMINT_*` variables of the developer's environment removed, a
//! temporary data directory, and ephemeral ports. The user-administration test runs on a fresh
//! PostgreSQL database when `CERTMINT_TEST_DATABASE_URL` names a server, else on SQLite.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{
    EPHEMERAL, Http, Server, TestResult, assert_fails, certmint, err, openssl, out, run, serve,
};

/// Two different master keys (32 bytes each, base64).
const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=";

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
        (
            &["--help"][..],
            &["serve", "user", "ca", "cert", "version"][..],
        ),
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
        (&["ca", "--help"], &["list", "create"]),
        (
            &["ca", "list", "--help"],
            &[
                "--url",
                "--api-key",
                "--ca-cert",
                "CERTMINT_API_KEY",
                "--json",
            ],
        ),
        (
            &["ca", "create", "--help"],
            &[
                "--common-name",
                "--type",
                "--parent",
                "--key-algorithm",
                "--validity-days",
            ],
        ),
        (&["cert", "--help"], &["issue", "list", "revoke", "export"]),
        (
            &["cert", "issue", "--help"],
            &[
                "--san",
                "--ca-id",
                "--cert-out",
                "--key-out",
                "CERTMINT_URL",
            ],
        ),
        (
            &["cert", "list", "--help"],
            &["--status", "--search", "--page", "--per-page"],
        ),
        (
            &["cert", "revoke", "--help"],
            &["<ID>", "--reason", "keyCompromise"],
        ),
        (
            &["cert", "export", "--help"],
            &["--format", "pkcs12", "--password", "--include-key", "--out"],
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
    let issuer = openssl(&[
        "x509",
        "-noout",
        "-issuer",
        "-in",
        &cert_path.display().to_string(),
    ])?;
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
    // The command changed the database from another process, as another node would; the
    // server keeps what it read of a session for up to a second.
    std::thread::sleep(std::time::Duration::from_millis(1_200));
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

/// A self-signed certificate and its key as encrypted PKCS#8 under `password`, with
/// `iterations` PBKDF2 rounds, made by openssl in `dir`.
fn slow_key_pair(dir: &Path, password: &str, iterations: u32) -> Result<(String, String), String> {
    let path = |name: &str| dir.join(name).display().to_string();
    let (plain, cert, key) = (path("plain.key"), path("cert.pem"), path("slow.key"));
    let run = |args: &[&str]| {
        let output = openssl(args)?;
        if output.status.success() {
            Ok(())
        } else {
            Err(err(&output))
        }
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &plain,
        "-out",
        &cert,
        "-subj",
        "/CN=slow.example.test",
        "-days",
        "1",
    ])?;
    run(&[
        "pkcs8",
        "-topk8",
        "-in",
        &plain,
        "-out",
        &key,
        "-v2",
        "aes-256-cbc",
        "-v2prf",
        "hmacWithSHA256",
        "-iter",
        &iterations.to_string(),
        "-passout",
        &format!("pass:{password}"),
    ])?;
    let read = |name: &str| std::fs::read_to_string(name).map_err(|e| e.to_string());
    Ok((read(&cert)?, read(&key)?))
}

/// SIGTERM while uploaded keys' derivations fill the key-work pool and its queue: the queued
/// ones are refused, not worked through, and the process exits within the stop limit.
#[test]
fn sigterm_during_key_derivations_exits_promptly() -> TestResult {
    const PASSWORD: &str = "sigterm admin password";
    let http = Http::new();
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");
    let (cert, key) = slow_key_pair(root.path(), "derive me", 3_000_000)?;
    let server = Server::start(
        serve(&data, EPHEMERAL)
            .env("CERTMINT_ADMIN_PASSWORD", PASSWORD)
            .env("CERTMINT_CPU_WORKERS", "1")
            .env("CERTMINT_CPU_QUEUE", "16"),
        &data,
    )?;
    let client = Http::client(&server)?;
    let url = server.https_url("/api/v2/tools/match-keys");
    let pending = http.rt.block_on(async {
        let login: serde_json::Value = client
            .post(server.https_url("/api/v2/auth/login/password"))
            .json(&serde_json::json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let csrf = login["data"]["csrf_token"]
            .as_str()
            .ok_or("a CSRF token")?
            .to_owned();
        let body =
            serde_json::json!({"certificate": cert, "private_key": key, "password": "derive me"});
        let pending: Vec<_> = (0..12)
            .map(|_| {
                let request = client
                    .post(&url)
                    .header("x-csrf-token", &csrf)
                    .json(&body)
                    .send();
                tokio::spawn(request)
            })
            .collect();
        // Long enough for every request to arrive and the first derivation to start.
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        Ok::<_, Box<dyn std::error::Error>>(pending)
    })?;
    let (status, took) = server.terminate("TERM")?;
    assert!(status.success(), "SIGTERM ends certmint with {status}");
    // Twelve derivations one at a time would take several seconds; the stop limit is less.
    assert!(took < common::STOP_LIMIT, "{took:?}");
    drop(pending);
    Ok(())
}
