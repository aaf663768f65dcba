//! The client commands (`certmint ca …`, `certmint cert …`) of the real binary against a real
//! `certmint serve`: an API key made through the REST API, the server's TLS certificate verified
//! against certmint's root CA downloaded from `/ca/{refid}.pem`, and the results checked with
//! `openssl` (required: a test that needs it fails when it is missing).
//!
//! The end-to-end test runs on a fresh PostgreSQL database when `CERTMINT_TEST_DATABASE_URL`
//! names a server, else on SQLite.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{
    EPHEMERAL, Http, Server, TestResult, api_key, assert_fails, call, certmint, err, openssl, out,
    run, serve_logging,
};
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "the admin password for client tests";

/// A running server, an API key for its admin, and its root CA certificate in a file.
struct Fixture {
    http: Http,
    server: Server,
    database: Vec<String>,
    key: String,
    root_pem: PathBuf,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn start() -> Result<Self, Box<dyn std::error::Error>> {
        Self::start_logging("warn")
    }

    /// [`Fixture::start`] with the server logging at `level`.
    fn start_logging(level: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let http = Http::new();
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let database = http.database_args();
        let server = Server::start(
            serve_logging(&data, EPHEMERAL, level)
                .args(&database)
                .env("CERTMINT_ADMIN_PASSWORD", ADMIN_PASSWORD),
            &data,
        )?;
        let key = api_key(&http, &server, ADMIN_PASSWORD, &["*"])?;
        // The root's refid from the API, its certificate from the public download on the
        // plain-HTTP listener: what an operator does before the first client command.
        let (status, cas) = call(&http, &server, &key, Method::GET, "/api/v2/cas", None)?;
        assert_eq!(status, 200, "{cas}");
        let refid = cas["data"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["ca_type"] == "root"))
            .and_then(|c| c["refid"].as_str())
            .ok_or("a root CA in the list")?
            .to_owned();
        let root_pem = dir.path().join("root.pem");
        std::fs::write(&root_pem, download_ca(&http, &server, &refid)?)?;
        Ok(Self {
            http,
            server,
            database,
            key,
            root_pem,
            dir,
        })
    }

    fn url(&self) -> String {
        self.server.https_url("")
    }

    /// `certmint <args> --url … --api-key … --ca-cert root.pem`.
    fn cli(&self, args: &[&str]) -> Command {
        let mut command = client_command();
        command
            .args(args)
            .args(["--url", &self.url(), "--api-key", &self.key, "--ca-cert"])
            .arg(&self.root_pem);
        command
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn stop(self) -> TestResult {
        let Self {
            http,
            server,
            database,
            ..
        } = self;
        server.stop()?;
        http.drop_database(&database);
        Ok(())
    }
}

/// The binary with no proxy settings from the environment, so that it talks to 127.0.0.1
/// directly.
fn client_command() -> Command {
    let mut command = certmint();
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env_remove(name);
    }
    command
}

/// `GET http://…/ca/{refid}.pem` on the plain-HTTP listener, without credentials.
fn download_ca(
    http: &Http,
    server: &Server,
    refid: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let addr = server.http.ok_or("the plain-HTTP listener")?;
    http.rt.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(client
            .get(format!("http://{addr}/ca/{refid}.pem"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    })
}

fn succeeded(output: &Output, what: &str) -> Result<String, String> {
    if output.status.success() {
        Ok(out(output))
    } else {
        Err(format!(
            "{what} failed; stdout: {}; stderr: {}",
            out(output),
            err(output)
        ))
    }
}

/// The JSON a `--json` command printed.
fn json_of(output: &Output) -> Result<Value, Box<dyn std::error::Error>> {
    succeeded(output, "the command")?;
    Ok(serde_json::from_str(&out(output))?)
}

/// The first column of each table row (after the header) of a list command.
fn ids(output: &Output) -> Vec<String> {
    out(output)
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("page "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> Result<u32, std::io::Error> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[test]
fn ca_and_cert_commands_end_to_end() -> TestResult {
    let f = Fixture::start()?;

    // ca list: the two CAs made at first start, as a table and as the server's JSON.
    let output = run(&mut f.cli(&["ca", "list"]));
    let table = succeeded(&output, "ca list")?;
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains("certmint Root CA") && table.contains("certmint Issuing CA"),
        "{table}"
    );
    assert_eq!(ids(&output).len(), 2, "{table}");
    let listed = json_of(&run(&mut f.cli(&["ca", "list", "--json"])))?;
    assert_eq!(listed["meta"]["total"], 2, "{listed}");
    let root = listed["data"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["ca_type"] == "root"))
        .ok_or("the root in the JSON")?;
    let root_id = root["id"].as_i64().ok_or("root id")?.to_string();

    // ca create: an intermediate under the root (the type follows from --parent).
    let created = json_of(&run(&mut f.cli(&[
        "ca",
        "create",
        "--name",
        "cli-issuing",
        "--common-name",
        "CLI Test Issuing CA",
        "--organization",
        "certmint tests",
        "--parent",
        &root_id,
        "--key-algorithm",
        "EC",
        "--curve",
        "P-384",
        "--validity-days",
        "400",
        "--allow-no-template",
        "--json",
    ])))?;
    let intermediate = &created["data"];
    assert_eq!(intermediate["ca_type"], "intermediate", "{created}");
    assert_eq!(intermediate["parent_id"].to_string(), root_id);
    assert_eq!(intermediate["key_type"], "EC P-384", "{created}");
    let inter_id = intermediate["id"].as_i64().ok_or("id")?.to_string();
    let inter_refid = intermediate["refid"].as_str().ok_or("refid")?;
    let inter_pem = f.path("intermediate.pem");
    std::fs::write(&inter_pem, download_ca(&f.http, &f.server, inter_refid)?)?;
    let output = run(&mut f.cli(&["ca", "list"]));
    assert!(
        ids(&output).contains(&inter_id) && out(&output).contains("cli-issuing"),
        "{}",
        out(&output)
    );
    // A human summary for a root, and the server's refusal of a taken name.
    let output = run(&mut f.cli(&[
        "ca",
        "create",
        "--common-name",
        "CLI Test Root",
        "--key-algorithm",
        "Ed25519",
    ]));
    let summary = succeeded(&output, "ca create")?;
    assert!(
        summary.contains("created root CA 'CLI Test Root'") && summary.contains("Ed25519"),
        "{summary}"
    );
    let output = run(&mut f.cli(&[
        "ca",
        "create",
        "--name",
        "cli-issuing",
        "--common-name",
        "Another",
        "--parent",
        &root_id,
    ]));
    assert_fails(&output, &["409"]);

    // cert issue: certificate, chain and key files from the new intermediate.
    let (cert, chain, key) = (f.path("web.pem"), f.path("chain.pem"), f.path("web.key"));
    let output = run(&mut f.cli(&[
        "cert",
        "issue",
        "--common-name",
        "web.cli.test",
        "--san",
        "dns:web.cli.test",
        "--san",
        "ip:192.0.2.10",
        "--ca-id",
        &inter_id,
        "--validity-days",
        "30",
        "--key-algorithm",
        "RSA",
        "--key-size",
        "2048",
        "--cert-out",
        &text(&cert),
        "--chain-out",
        &text(&chain),
        "--key-out",
        &text(&key),
    ]));
    let summary = succeeded(&output, "cert issue")?;
    let cert_id = summary
        .lines()
        .find_map(|l| l.strip_prefix("issued certificate "))
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| format!("no id in: {summary}"))?
        .to_owned();
    assert!(summary.contains("key written to"), "{summary}");
    assert!(std::fs::read_to_string(&key)?.contains("-----BEGIN PRIVATE KEY-----"));
    #[cfg(unix)]
    assert_eq!(mode(&key)?, 0o600, "the key file is private");
    assert_eq!(
        std::fs::read_to_string(&chain)?
            .matches("BEGIN CERTIFICATE")
            .count(),
        3,
        "leaf, intermediate, root"
    );
    let verified = openssl(&[
        "verify",
        "-CAfile",
        &text(&f.root_pem),
        "-untrusted",
        &text(&inter_pem),
        &text(&cert),
    ])?;
    assert!(
        succeeded(&verified, "openssl verify")?.contains(": OK"),
        "{}",
        out(&verified)
    );
    let sans = succeeded(
        &openssl(&[
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            &text(&cert),
        ])?,
        "openssl x509",
    )?;
    assert!(
        sans.contains("DNS:web.cli.test") && sans.contains("IP Address:192.0.2.10"),
        "{sans}"
    );
    let cert_key = openssl(&["x509", "-noout", "-pubkey", "-in", &text(&cert)])?;
    let file_key = openssl(&["pkey", "-pubout", "-in", &text(&key)])?;
    assert_eq!(
        succeeded(&cert_key, "openssl x509 -pubkey")?,
        succeeded(&file_key, "openssl pkey")?,
        "the key file holds the certificate's key"
    );

    // cert list --search finds it, in the table and in the JSON.
    let output = run(&mut f.cli(&["cert", "list", "--search", "web.cli.test"]));
    assert_eq!(
        ids(&output),
        std::slice::from_ref(&cert_id),
        "{}",
        out(&output)
    );
    assert!(out(&output).contains("active"), "{}", out(&output));
    let found = json_of(&run(&mut f.cli(&[
        "cert", "list", "--search", "web.cli", "--ca-id", &inter_id, "--json",
    ])))?;
    assert_eq!(found["meta"]["total"], 1, "{found}");
    let sans = found["data"][0]["san"].as_array().ok_or("san")?;
    assert!(
        sans.contains(&json!("dns:web.cli.test")) && sans.contains(&json!("ip:192.0.2.10")),
        "{found}"
    );

    // cert export: PKCS#12 that openssl opens with the password (and not without it), and DER
    // raw on standard output when it is not a terminal.
    let p12 = f.path("web.p12");
    let output = run(&mut f.cli(&[
        "cert",
        "export",
        &cert_id,
        "--format",
        "pkcs12",
        "--password",
        "pkcs12 password",
        "--out",
        &text(&p12),
    ]));
    succeeded(&output, "cert export pkcs12")?;
    #[cfg(unix)]
    assert_eq!(mode(&p12)?, 0o600, "a PKCS#12 file holds the key");
    let info = openssl(&[
        "pkcs12",
        "-info",
        "-nokeys",
        "-in",
        &text(&p12),
        "-passin",
        "pass:pkcs12 password",
    ])?;
    let info = succeeded(&info, "openssl pkcs12 -info")?;
    assert!(
        info.contains("subject=CN=web.cli.test") || info.contains("subject=CN = web.cli.test"),
        "{info}"
    );
    let wrong = openssl(&[
        "pkcs12",
        "-info",
        "-nokeys",
        "-in",
        &text(&p12),
        "-passin",
        "pass:not the password",
    ])?;
    assert!(!wrong.status.success(), "a wrong password does not open it");
    let output = run(&mut f.cli(&["cert", "export", &cert_id, "--format", "der"]));
    succeeded(&output, "cert export der")?;
    let der = openssl(&["x509", "-outform", "DER", "-in", &text(&cert)])?;
    assert!(der.status.success());
    assert_eq!(output.stdout, der.stdout, "the DER is written raw");
    let output = run(&mut f.cli(&["cert", "export", &cert_id, "--format", "pkcs12"]));
    assert_fails(&output, &["--password"]);

    // cert revoke, then the revoked list shows it and the active one does not.
    let output = run(&mut f.cli(&[
        "cert",
        "revoke",
        &cert_id,
        "--reason",
        "keyCompromise",
        "--comments",
        "lost laptop",
    ]));
    let said = succeeded(&output, "cert revoke")?;
    assert!(
        said.contains("revoked") && said.contains("keyCompromise"),
        "{said}"
    );
    let output = run(&mut f.cli(&["cert", "list", "--status", "revoked"]));
    assert_eq!(
        ids(&output),
        std::slice::from_ref(&cert_id),
        "{}",
        out(&output)
    );
    let output = run(&mut f.cli(&[
        "cert",
        "list",
        "--status",
        "active",
        "--search",
        "web.cli.test",
    ]));
    assert!(ids(&output).is_empty(), "{}", out(&output));
    // Twice is refused with the server's own words.
    let output = run(&mut f.cli(&["cert", "revoke", &cert_id, "--reason", "superseded"]));
    assert_fails(&output, &["409", "already revoked"]);
    let output = run(&mut f.cli(&["cert", "revoke", &cert_id, "--reason", "boredom"]));
    assert_fails(&output, &["unknown revocation reason 'boredom'"]);

    // The environment in place of the flags.
    let output = run(client_command()
        .args(["cert", "list", "--status", "revoked"])
        .env("CERTMINT_URL", f.url())
        .env("CERTMINT_API_KEY", &f.key)
        .env("CERTMINT_CA_CERT", &f.root_pem));
    assert_eq!(ids(&output), [cert_id], "{}", err(&output));

    f.stop()
}

/// A PKCS#12 password given in the query string (as `GET …/export` allows) never reaches the
/// log, even with every crate logging at debug, whether the export succeeds or is refused.
#[test]
fn a_password_in_a_query_string_is_never_logged() -> TestResult {
    const SECRET: &str = "Query-Secret-7c41e9";
    let f = Fixture::start_logging("debug")?;
    let client = Http::client(&f.server)?;
    let statuses = f.http.rt.block_on(async {
        let issued: Value = client
            .post(f.server.https_url("/api/v2/certificates"))
            .bearer_auth(&f.key)
            .json(&json!({"common_name": "logged.example.test", "validity_days": 30}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = issued["data"]["id"].as_i64().ok_or("an id")?;
        let mut statuses = Vec::new();
        for format in ["pkcs12", "not-a-format"] {
            let response = client
                .get(f.server.https_url(&format!(
                    "/api/v2/certificates/{id}/export?format={format}&password={SECRET}"
                )))
                .bearer_auth(&f.key)
                .send()
                .await?;
            statuses.push(response.status().as_u16());
        }
        Ok::<_, Box<dyn std::error::Error>>(statuses)
    })?;
    assert_eq!(statuses[0], 200, "the export with a password in the query");
    assert!((400..500).contains(&statuses[1]), "{statuses:?}");
    let log = std::fs::read_to_string(f.server.stderr.path())?;
    // The requests were logged, so the absence below means something.
    assert!(log.contains("/export"), "{log}");
    assert!(!log.contains(SECRET), "the password is in the log: {log}");
    f.stop()
}

#[test]
fn client_failures_are_clear() -> TestResult {
    let f = Fixture::start()?;
    let url = f.url();
    let root = text(&f.root_pem);

    // A key the server does not know: its 401 and its message.
    let output = run(client_command().args([
        "ca",
        "list",
        "--url",
        &url,
        "--api-key",
        "cm_not_a_real_key",
        "--ca-cert",
        &root,
    ]));
    assert_fails(&output, &["401", "invalid API key"]);

    // Without --ca-cert the server's certificate is not trusted: say so and what to do.
    let output = run(client_command().args(["ca", "list", "--url", &url, "--api-key", &f.key]));
    assert_fails(&output, &["not trusted", "--ca-cert", "/ca/<refid>.pem"]);

    // Nothing listening.
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let output = run(client_command().args([
        "ca",
        "list",
        "--url",
        &format!("https://127.0.0.1:{port}"),
        "--api-key",
        &f.key,
        "--ca-cert",
        &root,
    ]));
    assert_fails(&output, &["cannot reach the server"]);

    // No key at all, a CA file that is not one, and a URL that is not one.
    let output = run(client_command().args(["ca", "list", "--url", &url]));
    assert_fails(&output, &["--api-key"]);
    let not_pem = f.path("not.pem");
    std::fs::write(&not_pem, "hello")?;
    let output = run(client_command()
        .args([
            "ca",
            "list",
            "--url",
            &url,
            "--api-key",
            &f.key,
            "--ca-cert",
        ])
        .arg(&not_pem));
    assert_fails(&output, &["no PEM certificate"]);
    let output =
        run(client_command().args(["ca", "list", "--url", "localhost:8443", "--api-key", &f.key]));
    assert_fails(&output, &["--url"]);

    // A key without export:keys: the certificate is issued, the key is refused, and the
    // message says both.
    let limited = api_key(
        &f.http,
        &f.server,
        ADMIN_PASSWORD,
        &["read:certificates", "write:certificates"],
    )?;
    let key = f.path("denied.key");
    let output = run(client_command().args([
        "cert",
        "issue",
        "--common-name",
        "nokey.cli.test",
        "--url",
        &url,
        "--api-key",
        &limited,
        "--ca-cert",
        &root,
        "--key-out",
        &text(&key),
    ]));
    assert_fails(&output, &["was issued, but", "403", "export:keys"]);
    assert!(!key.exists());
    // A missing output directory is refused before anything is issued.
    let output = run(&mut f.cli(&[
        "cert",
        "issue",
        "--common-name",
        "never.cli.test",
        "--cert-out",
        &text(&f.path("absent/cert.pem")),
    ]));
    assert_fails(&output, &["--cert-out", "does not exist"]);
    let output = run(&mut f.cli(&["cert", "list", "--search", "never.cli.test"]));
    assert!(ids(&output).is_empty(), "{}", out(&output));
    f.stop()
}
