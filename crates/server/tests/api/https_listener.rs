//! The HTTPS listener's certificate through `/system/https`: what it reports is what openssl
//! sees; a regenerated or applied certificate is served from the next handshake on without a
//! request failing or an open connection dropping, persists across a restart and reaches
//! every node; a bad certificate or key is refused and the old one stays. Also the service
//! status and version under `/system`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use reqwest::{Method, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Auth, Session, TestResult, TestServer, openssl};

const CERT_INFO: &str = "/api/v2/system/https/cert-info";
const REGENERATE: &str = "/api/v2/system/https/regenerate";
const APPLY: &str = "/api/v2/system/https/apply";

/// The certificate a fresh openssl s_client handshake with `server` is shown, PEM.
async fn presented(server: &TestServer) -> TestResult<String> {
    let addr = server.https.trim_start_matches("https://").to_owned();
    let out = tokio::process::Command::new("openssl")
        .args(["s_client", "-connect", &addr, "-servername", "localhost"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("the openssl command is required for this test: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .ok_or(format!("s_client shows no certificate: {text}"))?;
    let end = text[begin..]
        .find("-----END CERTIFICATE-----")
        .ok_or("an unterminated certificate")?;
    Ok(text[begin..begin + end + "-----END CERTIFICATE-----".len()].to_owned() + "\n")
}

/// `openssl x509` over `pem`: (serial, SHA-256 fingerprint, subject), lower-case hex without
/// colons or leading zeros, as the API shows them.
fn openssl_reads(dir: &Path, pem: &str) -> TestResult<(String, String, String)> {
    std::fs::write(dir.join("seen.pem"), pem)?;
    let out = openssl(
        dir,
        &[
            "x509",
            "-in",
            "seen.pem",
            "-noout",
            "-serial",
            "-fingerprint",
            "-sha256",
            "-subject",
        ],
    )?;
    let field = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_owned)
            .ok_or(format!("no {prefix} in {out}"))
    };
    Ok((
        hex_number(&field("serial=")?),
        field("sha256 Fingerprint=")
            .or_else(|_| field("SHA256 Fingerprint="))?
            .replace(':', "")
            .to_lowercase(),
        field("subject=")?,
    ))
}

fn hex_number(hex: &str) -> String {
    hex.trim().trim_start_matches('0').to_lowercase()
}

/// The certificate the API says the listener serves.
async fn cert_info(server: &TestServer, admin: &Session) -> TestResult<Value> {
    let (status, body) = server
        .call(Method::GET, CERT_INFO, &Auth::Session(admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(body["data"].clone())
}

/// The fingerprint of the certificate a fresh handshake is shown.
async fn presented_fingerprint(server: &TestServer, dir: &Path) -> TestResult<String> {
    Ok(openssl_reads(dir, &presented(server).await?)?.1)
}

/// A TLS client trusting only `roots` (PEM), speaking HTTP/1.1 without ALPN.
fn tls_connector(roots: &str) -> TestResult<tokio_rustls::TlsConnector> {
    let mut store = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(roots.as_bytes()) {
        store.add(der?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(store)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Sends `GET /api/v2/health` on a kept-alive connection and reads the status of the answer.
async fn health_on(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> TestResult<u16> {
    stream
        .write_all(b"GET /api/v2/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err("the connection closed".into());
        }
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>())
                })
                .ok_or("no content-length")??;
            if answer.len() >= head_end + 4 + length {
                let status = text.split_whitespace().nth(1).ok_or("no status")?.parse()?;
                return Ok(status);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_info_is_what_openssl_sees() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let dir = tempfile::tempdir()?;
    let info = cert_info(&server, &admin).await?;
    let (serial, fingerprint, subject) = openssl_reads(dir.path(), &presented(&server).await?)?;
    assert_eq!(info["fingerprint_sha256"], fingerprint.as_str(), "{info}");
    assert_eq!(
        hex_number(info["serial_number"].as_str().ok_or("serial")?),
        serial
    );
    assert!(subject.contains("localhost"), "{subject}");
    assert_eq!(info["common_name"], "localhost");
    assert_eq!(
        info["san"],
        json!(["dns:localhost", "ip:127.0.0.1", "ip:::1"])
    );
    assert_eq!(info["source"], "file");
    assert_eq!(info["issued_by_certmint"], true);
    assert_eq!(info["ca_name"], "certmint Issuing CA");
    assert_eq!(info["chain_length"], 2);
    assert!(info["days_remaining"].as_i64().ok_or("days")? > 300);
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regenerate_swaps_the_certificate_without_failing_a_request() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let dir = tempfile::tempdir()?;
    let before = cert_info(&server, &admin).await?;
    // Trusting the issuing CA, as the harness's client does: the new certificate has the same.
    let roots = std::fs::read_to_string(server._data_dir.path().join("tls/server.crt"))?;
    let connector = tls_connector(&roots)?;

    // A connection opened before the swap, kept alive through it.
    let tcp = tokio::net::TcpStream::connect(server.https.trim_start_matches("https://")).await?;
    let mut early = connector
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    assert_eq!(health_on(&mut early).await?, 200);

    // Requests on new connections (a fresh handshake each) and on a kept-alive client, while
    // the certificate changes under them.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut loops = Vec::new();
    for fresh in [true, true, false] {
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        let kept = server.client.clone();
        let roots = roots.clone();
        let url = server.url("/api/v2/health");
        loops.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let client = if fresh {
                    reqwest::Client::builder()
                        .tls_certs_only([
                            reqwest::Certificate::from_pem(roots.as_bytes()).expect("PEM")
                        ])
                        .pool_max_idle_per_host(0)
                        .build()
                        .expect("client")
                } else {
                    kept.clone()
                };
                match client.get(&url).send().await {
                    Ok(r) if r.status() == StatusCode::OK => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failed.lock().unwrap().push(r.status().to_string()),
                    Err(e) => failed.lock().unwrap().push(format!("{e:?}")),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = server
        .call(
            Method::POST,
            REGENERATE,
            &Auth::Session(&admin),
            Some(json!({"sans": ["localhost", "127.0.0.1"], "validity_days": 30})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = &body["data"];
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for handle in loops {
        handle.await?;
    }
    let failures = failed.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "requests failed during the swap: {failures:?}"
    );
    assert!(done.load(Ordering::Relaxed) > 10, "too few requests ran");

    // A new handshake sees the new certificate, issued by the default CA.
    assert_ne!(after["serial_number"], before["serial_number"]);
    assert_eq!(after["source"], "generated");
    assert_eq!(after["issued_by_certmint"], true);
    assert_eq!(after["san"], json!(["dns:localhost", "ip:127.0.0.1"]));
    assert!(
        after["days_remaining"].as_i64().ok_or("days")? <= 30,
        "{after}"
    );
    let (serial, fingerprint, _) = openssl_reads(dir.path(), &presented(&server).await?)?;
    assert_eq!(
        serial,
        hex_number(after["serial_number"].as_str().ok_or("serial")?)
    );
    assert_eq!(after["fingerprint_sha256"], fingerprint.as_str());
    assert_eq!(cert_info(&server, &admin).await?, after.clone());

    // The connection opened before keeps working, on the certificate it was given.
    assert_eq!(health_on(&mut early).await?, 200);
    let shown = early
        .get_ref()
        .1
        .peer_certificates()
        .ok_or("no peer chain")?[0]
        .clone();
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(shown.as_ref())),
        before["fingerprint_sha256"].as_str().ok_or("fingerprint")?
    );
    drop(early);

    // Issued through the pipeline: in the inventory and audited, as is the swap.
    let auth = Auth::Session(&admin);
    assert_eq!(
        server
            .audit_total(&auth, "action=https_certificate_regenerated")
            .await,
        1
    );
    let (_, found) = server
        .call(
            Method::GET,
            "/api/v2/certificates?search=localhost",
            &auth,
            None,
        )
        .await;
    assert!(
        found["data"]
            .as_array()
            .ok_or("certificates")?
            .iter()
            .any(|c| c["serial_number"] == after["serial_number"] && c["source"] == "system"),
        "{found}"
    );

    // Without names, the current ones are kept; bad values are refused.
    let (status, body) = server
        .call(Method::POST, REGENERATE, &auth, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["san"],
        json!(["dns:localhost", "ip:127.0.0.1"])
    );
    assert_eq!(body["data"]["common_name"], "localhost");
    for bad in [
        json!({"validity_days": 0}),
        json!({"validity_days": 398}),
        json!({"sans": ["not a name!"]}),
        json!({"sans": []}),
        json!({"common_name": 5}),
        json!({"unknown": true}),
    ] {
        let (status, body) = server
            .call(Method::POST, REGENERATE, &auth, Some(bad.clone()))
            .await;
        assert!(status.is_client_error(), "{bad}: {status} {body}");
    }
    server.stop().await;
    Ok(())
}

/// A test CA and a server certificate it issued for localhost, with the certificate's key.
struct Uploaded {
    ca_pem: String,
    leaf_pem: String,
    key_pem: String,
}

fn uploaded(
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
) -> TestResult<Uploaded> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "Upload Test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "uploaded.localhost");
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let key = KeyPair::generate()?;
    let leaf = leaf.signed_by(&key, &ca)?;
    Ok(Uploaded {
        ca_pem: ca.pem(),
        leaf_pem: leaf.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A client trusting certmint's issuing CA and the upload test CA, so it works before and
/// after the swap.
fn trusting(data_dir: &Path, upload: &Uploaded) -> TestResult<reqwest::Client> {
    let mut roots: Vec<reqwest::Certificate> =
        reqwest::Certificate::from_pem_bundle(&std::fs::read(data_dir.join("tls/server.crt"))?)?;
    roots.push(reqwest::Certificate::from_pem(upload.ca_pem.as_bytes())?);
    Ok(reqwest::Client::builder().tls_certs_only(roots).build()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_checks_the_pair_and_the_certificate_survives_a_restart() -> TestResult {
    let data = tempfile::tempdir()?;
    let data_dir = data.path().to_path_buf();
    let dir = tempfile::tempdir()?;
    let now = time::OffsetDateTime::now_utc();
    let good = uploaded(
        now - time::Duration::days(1),
        now + time::Duration::days(90),
    )?;
    let other = uploaded(
        now - time::Duration::days(1),
        now + time::Duration::days(90),
    )?;
    let expired = uploaded(
        now - time::Duration::days(60),
        now - time::Duration::days(1),
    )?;

    let first_dir = data_dir.clone();
    let mut server = TestServer::start_with(move |s| s.data_dir = first_dir).await;
    server.client = trusting(&data_dir, &good)?;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let original = cert_info(&server, &admin).await?;

    let chain = format!("{}{}", good.leaf_pem, good.ca_pem);
    for (name, certificate, key, says) in [
        (
            "a key of another certificate",
            chain.as_str(),
            other.key_pem.as_str(),
            "does not belong",
        ),
        (
            "an expired certificate",
            &expired.leaf_pem,
            &expired.key_pem,
            "expired",
        ),
        ("garbage", "hello", "world", "certificate"),
        (
            "a garbage key",
            &good.leaf_pem,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "private_key",
        ),
        (
            "a key as the certificate",
            &good.key_pem,
            &good.key_pem,
            "certificate",
        ),
        (
            "a chain with a stranger",
            &format!("{}{}", good.leaf_pem, other.ca_pem),
            &good.key_pem,
            "did not sign",
        ),
    ] {
        let (status, body) = server
            .call(
                Method::POST,
                APPLY,
                &auth,
                Some(json!({"certificate": certificate, "private_key": key})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(says)),
            "{name}: {body}"
        );
        assert_eq!(
            presented_fingerprint(&server, dir.path()).await?,
            original["fingerprint_sha256"]
                .as_str()
                .ok_or("fingerprint")?,
            "{name}: the old certificate is still served"
        );
    }
    for bad in [json!({}), json!({"certificate": chain}), json!("pem")] {
        let (status, body) = server
            .call(Method::POST, APPLY, &auth, Some(bad.clone()))
            .await;
        assert!(status.is_client_error(), "{bad}: {status} {body}");
    }
    assert_eq!(
        server
            .audit_total(&auth, "action=https_certificate_applied")
            .await,
        0
    );

    let (status, body) = server
        .call(
            Method::POST,
            APPLY,
            &auth,
            Some(json!({"certificate": chain, "private_key": good.key_pem})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let applied = body["data"].clone();
    assert_eq!(applied["source"], "uploaded");
    assert_eq!(applied["issued_by_certmint"], false);
    assert_eq!(applied["common_name"], "uploaded.localhost");
    assert_eq!(applied["chain_length"], 2);
    let (_, fingerprint, subject) = openssl_reads(dir.path(), &presented(&server).await?)?;
    assert_eq!(applied["fingerprint_sha256"], fingerprint.as_str());
    assert!(subject.contains("uploaded.localhost"), "{subject}");
    assert_eq!(
        server
            .audit_total(&auth, "action=https_certificate_applied")
            .await,
        1
    );
    // Requests over the new certificate work, with a client that trusts only its CA.
    let only_upload = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(good.ca_pem.as_bytes())?])
        .build()?;
    let health = only_upload.get(server.url("/api/v2/health")).send().await?;
    assert_eq!(health.status(), StatusCode::OK);

    // After a restart on the same data directory and database, it is still the one served.
    let database_url = server.database_url.clone();
    server.stop().await;
    let again_dir = data_dir.clone();
    let mut server = TestServer::start_with(move |s| {
        s.data_dir = again_dir;
        s.database_url = database_url;
    })
    .await;
    server.client = trusting(&data_dir, &good)?;
    assert_eq!(
        presented_fingerprint(&server, dir.path()).await?,
        applied["fingerprint_sha256"]
            .as_str()
            .ok_or("fingerprint")?
    );
    let admin = server.admin().await;
    let info = cert_info(&server, &admin).await?;
    assert_eq!(info["source"], "uploaded");
    assert_eq!(info["fingerprint_sha256"], applied["fingerprint_sha256"]);
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_takes_up_a_new_certificate() -> TestResult {
    let data = tempfile::tempdir()?;
    let dir = tempfile::tempdir()?;
    // Two nodes on one database with one master key (the same data directory holds it).
    let first_dir = data.path().to_path_buf();
    let one = TestServer::start_with(move |s| s.data_dir = first_dir).await;
    let database_url = one.database_url.clone();
    let second_dir = data.path().to_path_buf();
    let two = TestServer::start_with(move |s| {
        s.data_dir = second_dir;
        s.database_url = database_url;
    })
    .await;
    let admin = one.admin().await;
    let (status, body) = one
        .call(
            Method::POST,
            REGENERATE,
            &Auth::Session(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let wanted = body["data"]["fingerprint_sha256"]
        .as_str()
        .ok_or("fingerprint")?
        .to_owned();
    assert_eq!(presented_fingerprint(&one, dir.path()).await?, wanted);
    let mut seen = String::new();
    for _ in 0..50 {
        seen = presented_fingerprint(&two, dir.path()).await?;
        if seen == wanted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen, wanted, "the other node serves the new certificate");
    let admin_two = two.admin().await;
    assert_eq!(cert_info(&two, &admin_two).await?["source"], "generated");
    two.stop().await;
    one.stop().await;
    Ok(())
}

#[tokio::test]
async fn service_status_and_version() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (status, body) = server
        .call(Method::GET, "/api/v2/system/service/status", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["status"], "running");
    assert_eq!(data["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(data["database"], "connected");
    let backend = if server.database_url.starts_with("postgres") {
        "postgresql"
    } else {
        "sqlite"
    };
    assert_eq!(data["database_backend"], backend);
    assert!(data["uptime_seconds"].as_i64().is_some(), "{data}");
    // The node named here is the one the jobs name when they run on it.
    let node = data["node"].as_str().ok_or("node")?;
    assert!(!node.is_empty());
    let (_, jobs) = server
        .call(Method::GET, "/api/v2/system/jobs", &auth, None)
        .await;
    let total = jobs["data"].as_array().ok_or("jobs")?.len();
    assert_eq!(data["jobs"]["total"], total, "{data}");
    assert!(data["jobs"]["next_run_at"].is_string(), "{data}");
    for ran in jobs["data"].as_array().ok_or("jobs")? {
        if let Some(ran_on) = ran["last_run"]["node"].as_str() {
            assert_eq!(ran_on, node, "{ran}");
        }
    }

    let (status, body) = server
        .call(Method::GET, "/api/v2/system/updates/version", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["data"]["update_check"], "disabled");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn only_admin_system_reaches_these_routes() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "olga", "operator").await;
    let operator = server.login("olga", crate::common::ADMIN_PASSWORD).await;
    let (_, narrow) = server
        .api_key(&admin, &["read:*", "write:certificates"])
        .await;
    let (_, system) = server.api_key(&admin, &["admin:system"]).await;
    let routes = [
        (Method::GET, CERT_INFO, None),
        (Method::POST, REGENERATE, Some(json!({}))),
        (
            Method::POST,
            APPLY,
            Some(json!({"certificate": "x", "private_key": "y"})),
        ),
        (Method::GET, "/api/v2/system/service/status", None),
        (Method::GET, "/api/v2/system/updates/version", None),
    ];
    for (method, path, body) in &routes {
        for auth in [Auth::Session(&operator), Auth::Bearer(&narrow)] {
            let (status, answer) = server.call(method.clone(), path, &auth, body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        }
    }
    // A key holding admin:system alone is enough; the apply's bad input is its own 422.
    let (status, body) = server
        .call(Method::GET, CERT_INFO, &Auth::Bearer(&system), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .call(
            Method::POST,
            REGENERATE,
            &Auth::Bearer(&system),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .call(
            Method::POST,
            APPLY,
            &Auth::Bearer(&system),
            routes[2].2.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    server.stop().await;
    Ok(())
}
