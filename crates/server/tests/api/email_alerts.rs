//! Email and expiry alerts against a real SMTP server (aiosmtpd, saving to a Maildir): the
//! settings, a test message, the expiry scan mailing each certificate once per threshold in
//! one multipart message per recipient, and the events it queues.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::acme_peers::tool;
use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer, post};

/// A mail received: its recipient, subject, and plain and HTML bodies.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) to: String,
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

/// aiosmtpd on a free loopback port, saving every message into a Maildir.
pub(crate) struct SmtpServer {
    child: tokio::process::Child,
    pub(crate) port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

/// How the test mail server takes connections and mail.
enum Smtp<'a> {
    /// In the clear, from anyone.
    Plain,
    /// Only after AUTH with `user` and `password`, over STARTTLS or implicit TLS, with the
    /// certificate and key in the PEM files `cert` and `key`.
    Secured {
        implicit_tls: bool,
        cert: &'a Path,
        key: &'a Path,
        user: &'a str,
        password: &'a str,
    },
}

impl SmtpServer {
    pub(crate) async fn start() -> TestResult<Self> {
        Self::start_as(Smtp::Plain).await
    }

    async fn start_as(how: Smtp<'_>) -> TestResult<Self> {
        let python = tool("aiosmtpd", "CERTMINT_TEST_AIOSMTPD");
        let dir = tempfile::tempdir()?;
        let maildir = dir.path().join("mail");
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = tokio::process::Command::new(python);
        match how {
            Smtp::Plain => {
                command
                    .args(["-m", "aiosmtpd", "-n", "-l"])
                    .arg(format!("127.0.0.1:{port}"))
                    .args(["-c", "aiosmtpd.handlers.Mailbox"])
                    .arg(&maildir);
            }
            Smtp::Secured {
                implicit_tls,
                cert,
                key,
                user,
                password,
            } => {
                // Mailbox wants the Maildir to be there when a session starts.
                for sub in ["cur", "new", "tmp"] {
                    std::fs::create_dir_all(maildir.join(sub))?;
                }
                command
                    .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/smtp_tls.py"))
                    .args(["127.0.0.1", &port.to_string()])
                    .arg(&maildir)
                    .arg(if implicit_tls { "tls" } else { "starttls" })
                    .args([cert, key])
                    .args([user, password]);
            }
        }
        let child = command.stdout(Stdio::null()).kill_on_drop(true).spawn()?;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(Self {
                    child,
                    port,
                    maildir,
                    _dir: dir,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("aiosmtpd did not start listening".into())
    }

    /// Takes the messages received so far (parsed), leaving the Maildir empty.
    pub(crate) fn take(&self) -> TestResult<Vec<Received>> {
        let mut out = self
            .take_raw()?
            .iter()
            .map(|raw| parse(raw))
            .collect::<TestResult<Vec<_>>>()?;
        out.sort_by(|a, b| a.to.cmp(&b.to));
        Ok(out)
    }

    /// Takes the messages received so far as they came, leaving the Maildir empty.
    pub(crate) fn take_raw(&self) -> TestResult<Vec<Vec<u8>>> {
        let new = self.maildir.join("new");
        let mut out = Vec::new();
        if !new.exists() {
            return Ok(out);
        }
        for entry in std::fs::read_dir(&new)? {
            let path = entry?.path();
            out.push(std::fs::read(&path)?);
            std::fs::remove_file(&path)?;
        }
        Ok(out)
    }
}

fn parse(raw: &[u8]) -> TestResult<Received> {
    use mailparse::MailHeaderMap;
    let mail = mailparse::parse_mail(raw)?;
    assert_eq!(mail.ctype.mimetype, "multipart/alternative");
    let part = |kind: &str| -> TestResult<String> {
        Ok(mail
            .subparts
            .iter()
            .find(|p| p.ctype.mimetype == kind)
            .ok_or(format!("no {kind} part"))?
            .get_body()?)
    };
    Ok(Received {
        to: mail.headers.get_first_value("To").ok_or("To")?,
        subject: mail.headers.get_first_value("Subject").ok_or("Subject")?,
        text: part("text/plain")?,
        html: part("text/html")?,
    })
}

async fn issue(server: &TestServer, admin: &Session, cn: &str, days: i64) -> TestResult<String> {
    let (status, body) = post(
        server,
        admin,
        "/api/v2/certificates",
        json!({"common_name": cn, "san": [format!("dns:{cn}")], "validity_days": days}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Ok(body["data"]["id"].as_i64().ok_or("id")?.to_string())
}

async fn call(
    server: &TestServer,
    s: &Session,
    m: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    server.call(m, path, &Auth::Session(s), body).await
}

#[tokio::test]
async fn email_settings_test_message_and_expiry_alerts() -> TestResult {
    let smtp = SmtpServer::start().await?;
    let server = TestServer::start_with(|s| s.email.allow_private_targets = true).await;
    let admin = server.admin().await;
    // The outbox events are read below as the scan left them: no webhook delivery takes them.
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/system/jobs/webhook_delivery",
            &Auth::Session(&admin),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Nothing set up: the login page hears no, without logging in.
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/auth/email-configured",
            &Auth::None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["configured"], false);

    // Bad input is refused.
    for bad in [
        json!({"port": 0}),
        json!({"port": 70000}),
        json!({"security": "ssl"}),
        json!({"from_address": "not an address"}),
        json!({"security": "none", "password": "secret"}),
        json!({"enabled": true}),
    ] {
        let (status, body) = call(
            &server,
            &admin,
            Method::PATCH,
            "/api/v2/settings/email",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }

    let (status, body) = call(
        &server,
        &admin,
        Method::PATCH,
        "/api/v2/settings/email",
        Some(json!({"enabled": true, "host": "127.0.0.1", "port": smtp.port, "security": "starttls",
                    "username": "mailer", "password": "hunter2-smtp", "from_address": "certmint@example.test"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["password_set"], true);
    assert!(!body.to_string().contains("hunter2-smtp"));
    // aiosmtpd offers no STARTTLS and takes mail unauthenticated: plain, no password.
    let (status, body) = call(
        &server,
        &admin,
        Method::PATCH,
        "/api/v2/settings/email",
        Some(json!({"password": "", "username": "", "security": "none"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["password_set"], false);
    assert_eq!(body["data"]["security"], "none");
    let (status, body) = call(&server, &admin, Method::GET, "/api/v2/settings/email", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.to_string().contains("hunter2-smtp"));
    assert_eq!(body["data"]["port"], smtp.port);
    let (_, body) = server
        .call(
            Method::GET,
            "/api/v2/auth/email-configured",
            &Auth::None,
            None,
        )
        .await;
    assert_eq!(body["data"]["configured"], true);

    // A non-administrator may neither read nor change nor send.
    server.user(&admin, "olive", "operator").await;
    let olive = server.login("olive", ADMIN_PASSWORD).await;
    for (m, path) in [
        (Method::GET, "/api/v2/settings/email"),
        (Method::GET, "/api/v2/system/alerts/expiry"),
        (Method::POST, "/api/v2/system/alerts/expiry/check"),
    ] {
        let (status, body) = call(&server, &olive, m, path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    let (status, _) = call(
        &server,
        &olive,
        Method::POST,
        "/api/v2/settings/email/test",
        Some(json!({"to": "a@example.test"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A test message arrives.
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/settings/email/test",
        json!({"to": "ops@example.test"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = smtp.take()?;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].to, "ops@example.test");
    assert!(
        got[0].text.contains("test message from certmint"),
        "{got:?}"
    );
    let (status, _) = post(
        &server,
        &admin,
        "/api/v2/settings/email/test",
        json!({"to": "nope"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Expiry alerts: bad thresholds and recipients are refused.
    for bad in [
        json!({"thresholds": [0]}),
        json!({"thresholds": [366]}),
        json!({"thresholds": []}),
        json!({"recipients": ["bad address"]}),
    ] {
        let (status, body) = call(
            &server,
            &admin,
            Method::PUT,
            "/api/v2/system/alerts/expiry",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (_, body) = call(
        &server,
        &admin,
        Method::GET,
        "/api/v2/system/alerts/expiry",
        None,
    )
    .await;
    assert_eq!(body["data"]["thresholds"], json!([30, 14, 7, 1]), "{body}");
    let (status, body) = call(
        &server,
        &admin,
        Method::PUT,
        "/api/v2/system/alerts/expiry",
        Some(json!({"enabled": true, "thresholds": [7, 30, 14], "recipients": ["pki@example.test", "sec@example.test"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["thresholds"], json!([30, 14, 7]));

    let soon = issue(&server, &admin, "soon.example.test", 5).await?;
    let later = issue(&server, &admin, "later.example.test", 20).await?;
    issue(&server, &admin, "far.example.test", 200).await?;

    // The scheduled job announces both, once each, in one message per recipient.
    crate::jobs::run_job(&server, &admin, "expiry_scan").await?;
    let got = smtp.take()?;
    let configured: Vec<&Received> = got
        .iter()
        .filter(|m| m.to == "pki@example.test" || m.to == "sec@example.test")
        .collect();
    assert_eq!(
        configured.len(),
        2,
        "one message per configured recipient: {got:?}"
    );
    for m in &configured {
        for text in [&m.text, &m.html] {
            assert!(text.contains("soon.example.test"), "{m:?}");
            assert!(text.contains("later.example.test"), "{m:?}");
            assert!(!text.contains("far.example.test"), "{m:?}");
        }
        assert!(m.text.contains("expires in 5 days"), "{m:?}");
        assert!(m.html.contains("<table>"), "{m:?}");
        assert!(m.subject.contains("2 certificates"), "{m:?}");
    }
    let mut recipients: Vec<&str> = got.iter().map(|m| m.to.as_str()).collect();
    recipients.dedup();
    assert_eq!(
        recipients.len(),
        got.len(),
        "one message per recipient: {got:?}"
    );

    let store = server.raw_store().await;
    let expiring = store.pending_events("certificate_expiring", 100).await?;
    let thresholds: Vec<(String, i64)> = expiring
        .iter()
        .map(|(_, id, p)| (id.clone(), p["threshold_days"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(thresholds.len(), 2, "{expiring:?}");
    assert!(thresholds.contains(&(soon.clone(), 7)), "{thresholds:?}");
    assert!(thresholds.contains(&(later.clone(), 30)), "{thresholds:?}");

    // Again: nothing new.
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/system/alerts/expiry/check",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["notices"], json!([]), "{body}");
    assert_eq!(body["data"]["messages_sent"], 0);
    assert!(smtp.take()?.is_empty());

    // Six days on: `later` crosses 14 days and `soon` has expired; nothing else.
    server
        .clock
        .advance(time::Duration::days(6) + time::Duration::hours(1));
    let admin = server.admin().await;
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/system/alerts/expiry/check",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut notices: Vec<(String, i64)> = body["data"]["notices"]
        .as_array()
        .ok_or("notices")?
        .iter()
        .map(|n| {
            (
                n["id"].as_i64().unwrap_or(-1).to_string(),
                n["threshold_days"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    notices.sort();
    let mut expected = vec![(soon.clone(), 0), (later.clone(), 14)];
    expected.sort();
    assert_eq!(notices, expected, "{body}");
    let got = smtp.take()?;
    let pki = got
        .iter()
        .find(|m| m.to == "pki@example.test")
        .ok_or("pki mail")?;
    assert!(
        pki.text.contains("later.example.test") && pki.text.contains("soon.example.test"),
        "{pki:?}"
    );
    assert!(pki.text.contains("expired"), "{pki:?}");
    let expired = store.pending_events("certificate_expired", 100).await?;
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0].1, soon);
    assert_eq!(
        store
            .pending_events("certificate_expiring", 100)
            .await?
            .len(),
        3
    );
    Ok(())
}

#[tokio::test]
async fn mail_to_a_private_address_is_refused_unless_allowed() -> TestResult {
    let smtp = SmtpServer::start().await?;
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, body) = call(
        &server,
        &admin,
        Method::PATCH,
        "/api/v2/settings/email",
        Some(json!({"host": "127.0.0.1", "port": smtp.port, "security": "none", "from_address": "certmint@example.test"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/settings/email/test",
        json!({"to": "ops@example.test"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("allow_private_targets"), "{body}");
    assert!(smtp.take()?.is_empty());
    drop(smtp.child);
    Ok(())
}

/// Sends a test message to ops@example.test; the status and the body.
async fn send_test(server: &TestServer, admin: &Session) -> (StatusCode, Value) {
    post(
        server,
        admin,
        "/api/v2/settings/email/test",
        json!({"to": "ops@example.test"}),
    )
    .await
}

/// Writes the certificate and key of a server certificate for 127.0.0.1 from certmint's own
/// default CA into `dir`: the files a mail relay of the organisation would have.
pub(crate) async fn own_server_certificate(
    server: &TestServer,
    admin: &Session,
    dir: &Path,
) -> TestResult<(PathBuf, PathBuf)> {
    let (status, body) = post(
        server,
        admin,
        "/api/v2/certificates",
        json!({"common_name": "localhost", "san": ["dns:localhost", "ip:127.0.0.1"], "validity_days": 30}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_i64().ok_or("id")?;
    let response = server
        .request(
            Method::GET,
            &format!("/api/v2/certificates/{id}/export?format=pem"),
            &Auth::Session(admin),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cert = dir.join("relay.crt");
    std::fs::write(&cert, response.bytes().await?)?;
    let (status, body) = post(
        server,
        admin,
        &format!("/api/v2/certificates/{id}/key"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let key = dir.join("relay.key");
    std::fs::write(&key, body["data"]["private_key"].as_str().ok_or("key")?)?;
    Ok((cert, key))
}

#[tokio::test]
async fn mail_over_starttls_and_implicit_tls_with_a_password() -> TestResult {
    let server = TestServer::start_with(|s| s.email.allow_private_targets = true).await;
    let admin = server.admin().await;
    let dir = tempfile::tempdir()?;
    let (cert, key) = own_server_certificate(&server, &admin, dir.path()).await?;
    // The same names, signed by no CA certmint knows.
    let (stranger_cert, stranger_key) = (dir.path().join("self.crt"), dir.path().join("self.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&stranger_key)
        .arg("-out")
        .arg(&stranger_cert)
        .output()?;
    assert!(made.status.success(), "{made:?}");

    for (security, implicit_tls) in [("starttls", false), ("tls", true)] {
        let smtp = SmtpServer::start_as(Smtp::Secured {
            implicit_tls,
            cert: &cert,
            key: &key,
            user: "mailer",
            password: "hunter2-smtp",
        })
        .await?;
        let (status, body) = call(
            &server,
            &admin,
            Method::PATCH,
            "/api/v2/settings/email",
            Some(json!({"enabled": true, "host": "127.0.0.1", "port": smtp.port, "security": security,
                        "username": "mailer", "password": "hunter2-smtp",
                        "from_address": "certmint@example.test"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = send_test(&server, &admin).await;
        assert_eq!(status, StatusCode::OK, "{security}: {body}");
        let got = smtp.take()?;
        assert_eq!(got.len(), 1, "{security}: {got:?}");
        assert_eq!(got[0].to, "ops@example.test");

        // A wrong password: the server refuses, nothing is sent, and the answer says why.
        let (status, body) = call(
            &server,
            &admin,
            Method::PATCH,
            "/api/v2/settings/email",
            Some(json!({"password": "not-the-password"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = send_test(&server, &admin).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{security}: {body}");
        // The server's own refusal, at once, not a timeout.
        assert!(body.to_string().contains("did not take the mail"), "{body}");
        assert!(body.to_string().contains("535"), "{body}");
        assert!(smtp.take()?.is_empty());
    }

    // A relay whose certificate chains to no trusted root never sees the password.
    for (security, implicit_tls) in [("starttls", false), ("tls", true)] {
        let smtp = SmtpServer::start_as(Smtp::Secured {
            implicit_tls,
            cert: &stranger_cert,
            key: &stranger_key,
            user: "mailer",
            password: "hunter2-smtp",
        })
        .await?;
        let (status, body) = call(
            &server,
            &admin,
            Method::PATCH,
            "/api/v2/settings/email",
            Some(json!({"port": smtp.port, "security": security, "password": "hunter2-smtp"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = send_test(&server, &admin).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{security}: {body}");
        assert!(
            body.to_string().to_lowercase().contains("certificate"),
            "{security}: {body}"
        );
        assert!(smtp.take()?.is_empty());
    }
    Ok(())
}
