//! Audit forwarding to syslog over REST: records reach a collector on loopback as RFC 5424
//! messages in octet-counted frames, in order; while the collector is down audit writes go on
//! and nothing is lost once it is back; the settings are checked, the address policy holds
//! and only `admin:system` may see or change any of it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};
use crate::jobs::run_job;

const SETTINGS: &str = "/api/v2/system/audit/syslog";
const TEST: &str = "/api/v2/system/audit/syslog/test";

/// A syslog collector on 127.0.0.1 that reads octet-counted frames (RFC 6587 §3.4.1) and
/// keeps each message; a frame that is not `MSG-LEN SP MSG` is kept as `MALFORMED …`.
struct Collector {
    port: u16,
    tls: Option<tokio_rustls::TlsAcceptor>,
    messages: Arc<Mutex<Vec<String>>>,
    accept: Option<JoinHandle<()>>,
}

impl Collector {
    /// A collector over plain TCP, or over TLS with `tls`.
    async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> TestResult<Self> {
        let mut collector = Self {
            port: 0,
            tls,
            messages: Arc::default(),
            accept: None,
        };
        collector.listen().await?;
        Ok(collector)
    }

    /// Listens on its port again (any port the first time).
    async fn listen(&mut self) -> TestResult {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(([127, 0, 0, 1], self.port).into())?;
        let listener = socket.listen(16)?;
        self.port = listener.local_addr()?.port();
        let messages = self.messages.clone();
        let tls = self.tls.clone();
        self.accept = Some(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let messages = messages.clone();
                match tls.clone() {
                    None => drop(tokio::spawn(read_frames(stream, messages))),
                    Some(acceptor) => drop(tokio::spawn(async move {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            read_frames(stream, messages).await;
                        }
                    })),
                }
            }
        }));
        Ok(())
    }

    /// Stops listening: connections are refused until [`Collector::listen`].
    async fn stop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
    }

    fn messages(&self) -> Vec<String> {
        self.messages.lock().expect("messages").clone()
    }
}

async fn read_frames(mut stream: impl AsyncRead + Unpin, messages: Arc<Mutex<Vec<String>>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                if !buffer.is_empty() {
                    let rest = String::from_utf8_lossy(&buffer).into_owned();
                    messages
                        .lock()
                        .expect("messages")
                        .push(format!("MALFORMED trailing bytes: {rest}"));
                }
                return;
            }
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
        while let Some(space) = buffer.iter().position(|b| *b == b' ') {
            let length = std::str::from_utf8(&buffer[..space])
                .ok()
                .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|l| l.parse::<usize>().ok());
            let Some(length) = length else {
                let bad = String::from_utf8_lossy(&buffer).into_owned();
                messages
                    .lock()
                    .expect("messages")
                    .push(format!("MALFORMED frame: {bad}"));
                return;
            };
            if buffer.len() < space + 1 + length {
                break;
            }
            let message: Vec<u8> = buffer.drain(..space + 1 + length).skip(space + 1).collect();
            let text =
                String::from_utf8(message).unwrap_or_else(|e| format!("MALFORMED utf-8: {e}"));
            messages.lock().expect("messages").push(text);
        }
    }
}

/// A message taken apart: PRI, the header fields, the structured data and the JSON body.
struct Parsed {
    pri: u16,
    timestamp: String,
    app: String,
    msgid: String,
    sd: String,
    body: Value,
}

fn parse(message: &str) -> TestResult<Parsed> {
    let (head, json) = message
        .split_once(" \u{feff}")
        .ok_or(format!("no BOM-started MSG in {message}"))?;
    let mut fields = head.splitn(7, ' ');
    let mut next = || fields.next().ok_or(format!("a field is missing in {head}"));
    let pri_version = next()?;
    let pri = pri_version
        .strip_prefix('<')
        .and_then(|p| p.strip_suffix(">1"))
        .ok_or(format!("bad PRI and VERSION {pri_version}"))?
        .parse()?;
    let timestamp = next()?.to_owned();
    let _host = next()?;
    let app = next()?.to_owned();
    let procid = next()?;
    assert_eq!(procid, "-", "{message}");
    let msgid = next()?.to_owned();
    let sd = next()?.to_owned();
    Ok(Parsed {
        pri,
        timestamp,
        app,
        msgid,
        sd,
        body: serde_json::from_str(json)?,
    })
}

async fn put(server: &TestServer, auth: &Auth<'_>, body: Value) -> (StatusCode, Value) {
    server.call(Method::PUT, SETTINGS, auth, Some(body)).await
}

async fn status(server: &TestServer, admin: &Session) -> TestResult<Value> {
    let (code, body) = server
        .call(Method::GET, SETTINGS, &Auth::Session(admin), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    Ok(body["data"].clone())
}

/// Waits until the collector holds at least `count` messages.
async fn collected(collector: &Collector, count: usize) -> TestResult<Vec<String>> {
    for _ in 0..100 {
        let messages = collector.messages();
        if messages.len() >= count {
            return Ok(messages);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "the collector got {} messages, not {count}",
        collector.messages().len()
    )
    .into())
}

/// An audited change that costs little: the retention period set to `days`.
async fn audited_change(server: &TestServer, admin: &Session, days: i64) {
    let (code, body) = server
        .call(
            Method::PUT,
            "/api/v2/system/audit/retention",
            &Auth::Session(admin),
            Some(json!({"retention_days": days})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

/// Checks that `messages` are the audit records `first..` in order with no gap, each matching
/// the stored record; returns the last id.
async fn check_in_order(
    server: &TestServer,
    admin: &Session,
    messages: &[String],
    first: i64,
) -> TestResult<i64> {
    let mut expected = first;
    for message in messages {
        let parsed = parse(message)?;
        let id = parsed.body["id"]
            .as_i64()
            .ok_or(format!("id in {message}"))?;
        assert_eq!(id, expected, "records in order, none missing: {message}");
        let (code, record) = server
            .call(
                Method::GET,
                &format!("/api/v2/audit/logs/{id}"),
                &Auth::Session(admin),
                None,
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{record}");
        let record = &record["data"];
        assert_eq!(parsed.app, "certmint");
        assert_eq!(parsed.msgid, record["action"], "{message}");
        assert_eq!(parsed.body["action"], record["action"], "{message}");
        assert_eq!(parsed.body["hash"], record["hash"], "{message}");
        assert!(
            parsed
                .sd
                .starts_with(&format!("[certmint@32473 id=\"{id}\" ")),
            "{message}"
        );
        assert!(
            parsed.sd.contains(&format!(
                "hash=\"{}\"",
                record["hash"].as_str().ok_or("hash")?
            )),
            "{message}"
        );
        let success = record["success"].as_bool().ok_or("success")?;
        // local3 (19) * 8 + notice (5) or warning (4)
        assert_eq!(parsed.pri, if success { 157 } else { 156 }, "{message}");
        let outcome = if success { "success" } else { "failure" };
        assert!(
            parsed.sd.contains(&format!("outcome=\"{outcome}\"")),
            "{message}"
        );
        assert!(
            parsed.timestamp.ends_with('Z') && parsed.timestamp.len() == 27,
            "{message}"
        );
        expected += 1;
    }
    Ok(expected - 1)
}

#[tokio::test]
async fn audit_records_reach_syslog_in_order_and_none_is_lost_while_it_is_down() -> TestResult {
    let server = TestServer::start_with(|s| s.syslog.allow_private_targets = true).await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let mut collector = Collector::start(None).await?;

    let (code, body) = put(
        &server,
        &auth,
        json!({"enabled": true, "host": "127.0.0.1", "port": collector.port,
               "protocol": "tcp", "facility": "local3"}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["enabled"], true, "{body}");
    assert_eq!(data["protocol"], "tcp", "{body}");
    assert_eq!(data["facility"], "local3", "{body}");
    let start = data["status"]["last_forwarded_id"]
        .as_i64()
        .ok_or("the cursor starts when forwarding is turned on")?;
    assert_eq!(data["status"]["backlog"], 1, "the change itself: {body}");

    // A failure and a few successes.
    let response = server
        .client
        .post(server.url("/api/v2/auth/login/password"))
        .json(&json!({"username": "admin", "password": "wrong"}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    for days in [400, 401, 402] {
        audited_change(&server, &admin, days).await;
    }
    let ran = run_job(&server, &admin, "syslog_forward").await?;
    assert_eq!(ran["last_run"]["outcome"], "succeeded", "{ran}");
    let first = collected(&collector, 6).await?;
    let last = check_in_order(&server, &admin, &first, start + 1).await?;
    let actions: Vec<String> = first
        .iter()
        .map(|m| parse(m).map(|p| p.msgid))
        .collect::<TestResult<_>>()?;
    assert_eq!(actions[0], "audit_syslog_updated", "{actions:?}");
    assert!(actions.contains(&"login_failed".to_owned()), "{actions:?}");
    let now = status(&server, &admin).await?;
    assert_eq!(now["status"]["last_forwarded_id"], last, "{now}");
    assert_eq!(now["status"]["backlog"], 0, "{now}");
    assert_eq!(now["status"]["forwarded"], first.len(), "{now}");

    // The collector goes away: audit writes carry on as fast, and the forwarder backs off.
    collector.stop().await;
    for days in [403, 404, 405, 406] {
        let started = Instant::now();
        audited_change(&server, &admin, days).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "an audited write took {:?} with syslog down",
            started.elapsed()
        );
    }
    let ran = run_job(&server, &admin, "syslog_forward").await?;
    assert_eq!(ran["last_run"]["outcome"], "failed", "{ran}");
    let down = status(&server, &admin).await?;
    assert_eq!(down["status"]["last_forwarded_id"], last, "{down}");
    assert_eq!(down["status"]["failures"], 1, "{down}");
    assert!(down["status"]["backlog"].as_i64() >= Some(5), "{down}");
    let error = down["status"]["last_error"].as_str().ok_or("last error")?;
    assert!(error.contains("could not connect"), "{error}");
    assert!(down["status"]["next_attempt_at"].is_string(), "{down}");

    // Back on the same port: within its backoff the forwarder waits, then sends the rest.
    collector.listen().await?;
    let ran = run_job(&server, &admin, "syslog_forward").await?;
    let summary = ran["last_run"]["summary"].as_str().unwrap_or_default();
    assert!(summary.starts_with("waiting until"), "{ran}");
    assert_eq!(collector.messages().len(), first.len());
    server.clock.advance(time::Duration::seconds(6));
    let ran = run_job(&server, &admin, "syslog_forward").await?;
    assert_eq!(ran["last_run"]["outcome"], "succeeded", "{ran}");
    let all = collected(&collector, first.len() + 6).await?;
    let newest = check_in_order(&server, &admin, &all, start + 1).await?;
    let retention = all
        .iter()
        .filter(|m| m.contains(" audit_retention_updated "))
        .count();
    assert_eq!(retention, 7, "every retention change, once");
    let after = status(&server, &admin).await?;
    assert_eq!(after["status"]["last_forwarded_id"], newest, "{after}");
    assert_eq!(after["status"]["backlog"], 0, "{after}");
    assert_eq!(after["status"]["failures"], 0, "{after}");
    assert!(after["status"]["next_attempt_at"].is_null(), "{after}");

    // The test message: taken, and not an audit record.
    let (code, tried) = server.call(Method::POST, TEST, &auth, None).await;
    assert_eq!(code, StatusCode::OK, "{tried}");
    assert_eq!(tried["data"]["sent"], true, "{tried}");
    let with_test = collected(&collector, all.len() + 1).await?;
    let test = parse(with_test.last().ok_or("test message")?)?;
    assert_eq!(test.msgid, "syslog_test");
    assert_eq!(test.body["username"], "admin");

    // Off: nothing more is sent.
    let (code, body) = put(&server, &auth, json!({"enabled": false})).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let ran = run_job(&server, &admin, "syslog_forward").await?;
    assert_eq!(
        ran["last_run"]["summary"], "syslog forwarding is off",
        "{ran}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(collector.messages().len(), with_test.len());
    Ok(())
}

#[tokio::test]
async fn syslog_settings_are_checked_and_private_targets_refused() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);

    let (code, body) = server.call(Method::POST, TEST, &auth, None).await;
    assert_eq!(
        code,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no host yet: {body}"
    );
    let defaults = status(&server, &admin).await?;
    assert_eq!(defaults["enabled"], false, "{defaults}");
    assert_eq!(defaults["protocol"], "tls", "{defaults}");
    assert_eq!(defaults["port"], 6514, "{defaults}");
    assert_eq!(defaults["facility"], "authpriv", "{defaults}");
    assert!(
        defaults["status"]["last_forwarded_id"].is_null(),
        "{defaults}"
    );

    for (body, says) in [
        (json!({"host": "127.0.0.1"}), "allow_private_targets"),
        (json!({"host": "10.0.0.7"}), "allow_private_targets"),
        (json!({"host": "::1"}), "allow_private_targets"),
        (json!({"host": "logs example"}), "not a host name"),
        (json!({"protocol": "udp"}), "tcp or tls"),
        (json!({"protocol": "relp"}), "tcp or tls"),
        (json!({"port": 0}), "1 to 65535"),
        (json!({"port": 70000}), "1 to 65535"),
        (json!({"facility": "everything"}), "not a syslog facility"),
        (json!({"ca_pem": "not a certificate"}), "no PEM certificate"),
        (
            json!({"ca_pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}),
            "certificates only",
        ),
        (json!({"ca_pem": "x".repeat(70_000)}), "at most"),
        (json!({"enabled": true}), "needs the server's host"),
    ] {
        let (code, answer) = put(&server, &auth, body.clone()).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}: {message}");
    }
    let (code, answer) = put(&server, &auth, json!({"hots": "logs.example.net"})).await;
    assert!(code.is_client_error(), "{answer}");
    let (code, answer) = put(&server, &auth, json!({"port": "514"})).await;
    assert!(code.is_client_error(), "{answer}");
    let unchanged = status(&server, &admin).await?;
    assert_eq!(unchanged, defaults, "refused changes change nothing");
    assert_eq!(
        server
            .audit_total(&auth, "action=audit_syslog_updated")
            .await,
        0
    );

    // A name is judged by the address it resolves to, when connecting.
    let (code, body) = put(
        &server,
        &auth,
        json!({"host": "localhost", "port": 6514, "protocol": "tcp"}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, tried) = server.call(Method::POST, TEST, &auth, None).await;
    assert_eq!(code, StatusCode::OK, "{tried}");
    assert_eq!(tried["data"]["sent"], false, "{tried}");
    let error = tried["data"]["error"].as_str().ok_or("error")?;
    assert!(
        error.contains("loopback") && error.contains("allow_private_targets"),
        "{error}"
    );
    assert_eq!(
        server
            .audit_total(&auth, "action=audit_syslog_updated")
            .await,
        1,
        "the change is audited"
    );
    Ok(())
}

#[tokio::test]
async fn only_system_administrators_see_or_change_syslog_forwarding() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "otto", "operator").await;
    let operator = server.login("otto", ADMIN_PASSWORD).await;
    let (_, reader_key) = server.api_key(&admin, &["read:audit"]).await;
    for auth in [Auth::Session(&operator), Auth::Bearer(&reader_key)] {
        for (method, path, body) in [
            (Method::GET, SETTINGS, None),
            (
                Method::PUT,
                SETTINGS,
                Some(json!({"host": "logs.example.net"})),
            ),
            (Method::POST, TEST, None),
        ] {
            let (code, answer) = server.call(method.clone(), path, &auth, body).await;
            assert_eq!(code, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        }
    }
    let unchanged = status(&server, &admin).await?;
    assert_eq!(unchanged["host"], "", "{unchanged}");
    Ok(())
}

/// A TLS server key and certificate issued by certmint's default CA for `localhost`, and the
/// root CA certificate, PEM.
async fn issued_for_localhost(
    server: &TestServer,
    admin: &Session,
) -> TestResult<(tokio_rustls::TlsAcceptor, String)> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let auth = Auth::Session(admin);
    let (code, issued) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &auth,
            Some(json!({"common_name": "localhost", "san": ["dns:localhost"]})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{issued}");
    let id = issued["data"]["id"].as_i64().ok_or("certificate id")?;
    let auth = &auth;
    let export = |query: &str| {
        let path = format!("/api/v2/certificates/{id}/export?{query}");
        async move {
            let response = server.request(Method::GET, &path, auth, None).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            response.bytes().await
        }
    };
    let with_key = authority::pki::pem::find_blocks(&export("format=pem&include_key=true").await?)?;
    let chain = authority::pki::pem::find_blocks(&export("format=chain").await?)?;
    let key = with_key
        .iter()
        .find(|b| b.label == "PRIVATE KEY")
        .ok_or("no key")?;
    let root = chain.last().ok_or("no root")?;
    let presented: Vec<CertificateDer<'static>> = chain
        .iter()
        .take(chain.len() - 1)
        .map(|b| CertificateDer::from(b.der.clone()))
        .collect();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(
        presented,
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.der.clone())),
    )?;
    Ok((
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        authority::pki::pem::encode("CERTIFICATE", &root.der),
    ))
}

#[tokio::test]
async fn audit_records_reach_syslog_over_tls_verified_against_the_configured_ca() -> TestResult {
    let server = TestServer::start_with(|s| s.syslog.allow_private_targets = true).await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (acceptor, root_pem) = issued_for_localhost(&server, &admin).await?;
    let collector = Collector::start(Some(acceptor)).await?;

    // Without the CA, the system's roots do not vouch for the collector.
    let (code, body) = put(
        &server,
        &auth,
        json!({"host": "localhost", "port": collector.port, "protocol": "tls"}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, tried) = server.call(Method::POST, TEST, &auth, None).await;
    assert_eq!(code, StatusCode::OK, "{tried}");
    assert_eq!(tried["data"]["sent"], false, "{tried}");
    let error = tried["data"]["error"].as_str().ok_or("error")?;
    assert!(error.contains("TLS handshake"), "{error}");
    assert!(collector.messages().is_empty());

    let (code, body) = put(
        &server,
        &auth,
        json!({"enabled": true, "ca_pem": root_pem, "facility": "local3"}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["ca_pem"], root_pem.as_str(), "{body}");
    let start = body["data"]["status"]["last_forwarded_id"]
        .as_i64()
        .ok_or("cursor")?;
    let (code, tried) = server.call(Method::POST, TEST, &auth, None).await;
    assert_eq!(tried["data"]["sent"], true, "{code} {tried}");
    let tested = collected(&collector, 1).await?;
    assert_eq!(parse(&tested[0])?.msgid, "syslog_test");

    audited_change(&server, &admin, 400).await;
    let ran = run_job(&server, &admin, "syslog_forward").await?;
    assert_eq!(ran["last_run"]["outcome"], "succeeded", "{ran}");
    // The change that turned it on, the retention change and the run asked for.
    let all = collected(&collector, 4).await?;
    check_in_order(&server, &admin, &all[1..], start + 1).await?;
    assert_eq!(all.len(), 4, "{all:?}");
    Ok(())
}

/// Debian's rsyslogd as an unprivileged receiver on a port of 127.0.0.1, writing each message
/// it parsed as `facility|severity|timestamp|host|app|procid|msgid|structured-data|msg`.
struct Rsyslog {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<tokio::process::Child>,
}

impl Rsyslog {
    async fn start() -> TestResult<Self> {
        // A free port, given back for rsyslogd to take.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut rsyslog = Self {
            dir: tempfile::tempdir()?,
            port,
            child: None,
        };
        rsyslog.run().await?;
        Ok(rsyslog)
    }

    async fn run(&mut self) -> TestResult {
        let binary =
            std::env::var("CERTMINT_TEST_RSYSLOGD").unwrap_or_else(|_| "/usr/sbin/rsyslogd".into());
        let dir = self.dir.path().display().to_string();
        let config = format!(
            "global(workDirectory=\"{dir}\")\n\
             module(load=\"imtcp\")\n\
             template(name=\"fields\" type=\"string\" string=\"%syslogfacility%|%syslogseverity%|\
             %timereported:::date-rfc3339%|%hostname%|%app-name%|%procid%|%msgid%|\
             %structured-data%|%msg%\\n\")\n\
             ruleset(name=\"out\") {{ action(type=\"omfile\" file=\"{dir}/out.log\" template=\"fields\") }}\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{}\" ruleset=\"out\")\n",
            self.port
        );
        let conf = self.dir.path().join("rsyslog.conf");
        std::fs::write(&conf, config)?;
        let child = tokio::process::Command::new(&binary)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(self.dir.path().join("rsyslogd.pid"))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!("cannot run {binary} (Debian rsyslog; set CERTMINT_TEST_RSYSLOGD): {e}")
            })?;
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("rsyslogd did not listen within 5 seconds".into())
    }

    async fn stop(&mut self) -> TestResult {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// The messages it wrote, once there are at least `count`; the empty ones (a probe's
    /// connection) left out.
    async fn lines(&self, count: usize) -> TestResult<Vec<Vec<String>>> {
        let path = self.dir.path().join("out.log");
        let mut lines = Vec::new();
        for _ in 0..100 {
            lines = std::fs::read_to_string(&path)
                .unwrap_or_default()
                .lines()
                .map(|l| l.splitn(9, '|').map(str::to_owned).collect::<Vec<_>>())
                .filter(|fields| fields.get(6).is_some_and(|m| m != "-"))
                .collect();
            if lines.len() >= count {
                return Ok(lines);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "rsyslogd wrote {} messages, not {count}: {lines:?}",
            lines.len()
        )
        .into())
    }
}

#[tokio::test]
async fn rsyslog_parses_the_messages_and_gets_every_record_across_its_restart() -> TestResult {
    let server = TestServer::start_with(|s| s.syslog.allow_private_targets = true).await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let mut rsyslog = Rsyslog::start().await?;
    let (code, body) = put(
        &server,
        &auth,
        json!({"enabled": true, "host": "127.0.0.1", "port": rsyslog.port,
               "protocol": "tcp", "facility": "local3"}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let start = body["data"]["status"]["last_forwarded_id"]
        .as_i64()
        .ok_or("cursor")?;
    let response = server
        .client
        .post(server.url("/api/v2/auth/login/password"))
        .json(&json!({"username": "admin\"]\\", "password": "wrong"}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    audited_change(&server, &admin, 400).await;
    let ran = run_job(&server, &admin, "syslog_forward").await?;
    assert_eq!(ran["last_run"]["outcome"], "succeeded", "{ran}");
    let before = rsyslog.lines(4).await?;

    rsyslog.stop().await?;
    audited_change(&server, &admin, 401).await;
    let ran = run_job(&server, &admin, "syslog_forward").await?;
    assert_eq!(ran["last_run"]["outcome"], "failed", "{ran}");
    rsyslog.run().await?;
    server.clock.advance(time::Duration::seconds(6));
    let ran = run_job(&server, &admin, "syslog_forward").await?;
    assert_eq!(ran["last_run"]["outcome"], "succeeded", "{ran}");
    // Before the outage: the change, the failed login, the retention change and the run
    // asked for; after it the next change and the two runs asked for.
    let lines = rsyslog.lines(7).await?;
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert_eq!(
        lines[..4],
        before[..],
        "rsyslogd's file kept across its restart"
    );
    for (offset, fields) in lines.iter().enumerate() {
        let [
            facility,
            severity,
            timestamp,
            _host,
            app,
            procid,
            msgid,
            sd,
            msg,
        ] = &fields[..]
        else {
            return Err(format!("fields {fields:?}").into());
        };
        let id = start + 1 + i64::try_from(offset)?;
        let body: Value = serde_json::from_str(msg.trim_start_matches('\u{feff}'))?;
        assert_eq!(body["id"], id, "{fields:?}");
        assert_eq!(&body["action"], msgid.as_str(), "{fields:?}");
        assert_eq!(facility, "19", "local3: {fields:?}");
        let success = body["success"].as_bool().ok_or("success")?;
        assert_eq!(severity, if success { "5" } else { "4" }, "{fields:?}");
        assert_eq!(app, "certmint");
        assert_eq!(procid, "-");
        assert!(
            timestamp.ends_with('Z') || timestamp.ends_with("+00:00"),
            "{timestamp}"
        );
        assert!(
            sd.starts_with(&format!("[certmint@32473 id=\"{id}\" ")),
            "{sd}"
        );
        if msgid == "login_failed" {
            // rsyslog keeps the escapes of a PARAM-VALUE as they were sent.
            assert!(sd.contains(r#"actor="admin\"\]\\""#), "{sd}");
            assert_eq!(body["username"], "admin\"]\\", "{msg}");
        }
    }
    assert_eq!(lines[1][6], "login_failed");
    rsyslog.stop().await?;
    Ok(())
}
