//! SCEP (RFC 8894) with real clients: micromdm's scepclient (Debian `scep`) enrolling with
//! one-time and static challenges and waiting for an approval; certmonger's scep-submit; and
//! an in-repo client for what neither exercises (RenewalReq, GetCert, GetCRL, AES-256,
//! SHA-512), plus hostile and damaged messages. Every certificate is checked with openssl.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use authority::pki;
use authority::pki::scep::client as scep_client;
use authority::pki::scep::{ContentCipher, Digest, FailInfo, MessageType, RequestContent};
use authority::pki::{KeyType, PrivateKey};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::acme_peers::tool;
use crate::common::{Auth, Session, TestResult, TestServer, fetch, openssl};

/// How long one run of a SCEP client may take (scepclient sleeps 30 s after PENDING).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

fn scepclient() -> PathBuf {
    tool("scepclient", "CERTMINT_TEST_SCEPCLIENT")
}

/// The default CA's id.
pub(crate) async fn default_ca(server: &TestServer, admin: &Session) -> i64 {
    let (status, body) = server
        .call(Method::GET, "/api/v2/cas", &Auth::Session(admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .and_then(|cas| cas.iter().find(|c| c["is_default"] == json!(true)))
        .and_then(|c| c["id"].as_i64())
        .expect("a default CA")
}

async fn rest(
    server: &TestServer,
    admin: &Session,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    server.call(method, path, &Auth::Session(admin), body).await
}

async fn challenge(server: &TestServer, admin: &Session, ca_id: i64) -> String {
    let (status, body) = rest(
        server,
        admin,
        Method::GET,
        &format!("/api/v2/scep/challenge/{ca_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["challenge"]
        .as_str()
        .expect("challenge")
        .to_owned()
}

/// GetCACert over plain HTTP: the CA certificate and the RA certificate, DER (the CAs above the
/// CA follow them, up to its root).
pub(crate) async fn ca_and_ra(server: &TestServer, path: &str) -> TestResult<(Vec<u8>, Vec<u8>)> {
    let response = server
        .client
        .get(format!("{}{path}?operation=GetCACert", server.http))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-x509-ca-ra-cert"
    );
    let certificates = pki::bundle::read(&response.bytes().await?, None)?.certificates;
    let parsed = certificates
        .iter()
        .map(|der| pki::inspect::Certificate::parse(der))
        .collect::<Result<Vec<_>, _>>()?;
    let ra_at = parsed
        .iter()
        .position(|c| c.subject.contains("SCEP RA") && !c.is_ca)
        .ok_or("GetCACert gave no RA certificate")?;
    let issuer_of = |c: &pki::inspect::Certificate| {
        parsed
            .iter()
            .position(|above| above.is_ca && above.subject_raw == c.issuer_raw)
    };
    let ca_at = issuer_of(&parsed[ra_at]).ok_or("GetCACert gave no CA for the RA")?;
    // The CA's issuers follow, up to its root: clients verify the RA up to a trust anchor.
    let mut at = ca_at;
    let mut steps = 0;
    while !parsed[at].self_signed {
        at = issuer_of(&parsed[at]).ok_or("GetCACert's chain stops short of a root")?;
        steps += 1;
        assert!(steps < parsed.len(), "the chain loops");
    }
    assert_eq!(
        steps + 2,
        parsed.len(),
        "the CA, the RA and the CA's chain, nothing else"
    );
    Ok((certificates[ca_at].clone(), certificates[ra_at].clone()))
}

fn sha256_hex(der: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    hex::encode(Sha256::digest(der))
}

/// One scepclient run in `dir`: a new RSA key, a CSR for `cn` with `challenge`, sent to `url`
/// encrypted to the RA only.
fn scepclient_command(
    dir: &Path,
    url: &str,
    cn: &str,
    challenge: &str,
    ra: &[u8],
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(scepclient());
    command
        .current_dir(dir)
        .args(["-server-url", url, "-cn", cn, "-challenge", challenge])
        .args(["-private-key", "key.pem", "-certificate", "cert.pem"])
        .args(["-ca-fingerprint", &sha256_hex(ra)])
        .kill_on_drop(true);
    command
}

async fn finish(command: &mut tokio::process::Command) -> Output {
    tokio::time::timeout(CLIENT_TIMEOUT, command.output())
        .await
        .expect("scepclient finished in time")
        .expect("scepclient runs")
}

fn say(output: &Output) -> String {
    format!(
        "status {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Writes the default CA's chain (it and its root) for openssl.
async fn write_chain(server: &TestServer, admin: &Session, dir: &Path) -> TestResult {
    let ca_id = default_ca(server, admin).await;
    let chain = fetch(
        server,
        admin,
        &format!("/api/v2/cas/{ca_id}/export?format=chain"),
    )
    .await?;
    std::fs::write(dir.join("chain.pem"), chain)?;
    Ok(())
}

/// The certificate scepclient saved verifies with openssl up to the root, and the inventory
/// holds it as a SCEP certificate for `cn`. Returns its id.
async fn check_enrolled(
    server: &TestServer,
    admin: &Session,
    dir: &Path,
    cn: &str,
) -> TestResult<i64> {
    write_chain(server, admin, dir).await?;
    let verified = openssl(
        dir,
        &[
            "verify",
            "-CAfile",
            "chain.pem",
            "-purpose",
            "sslclient",
            "cert.pem",
        ],
    )?;
    assert!(verified.contains("cert.pem: OK"), "{verified}");
    let serial = openssl(dir, &["x509", "-in", "cert.pem", "-noout", "-serial"])?;
    let serial = serial.trim().trim_start_matches("serial=");
    let found = stored(server, admin, cn, serial).await;
    assert_eq!(found["source"], "scep", "{found}");
    Ok(found["id"].as_i64().expect("id"))
}

/// The inventory's record of the certificate for `cn` with serial `serial` (hex).
async fn stored(server: &TestServer, admin: &Session, cn: &str, serial: &str) -> Value {
    let (status, body) = rest(
        server,
        admin,
        Method::GET,
        &format!("/api/v2/certificates?search={cn}&per_page=100"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let wanted = serial.to_lowercase().trim_start_matches('0').to_owned();
    body["data"]
        .as_array()
        .and_then(|all| {
            all.iter().find(|c| {
                c["serial_number"]
                    .as_str()
                    .map(|s| s.replace(':', "").to_lowercase())
                    .is_some_and(|s| s.trim_start_matches('0') == wanted)
            })
        })
        .cloned()
        .unwrap_or_else(|| panic!("certificate {serial} for {cn} in the inventory: {body}"))
}

#[tokio::test]
async fn scepclient_enrolls_with_one_time_and_static_challenges() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let ca_id = default_ca(&server, &admin).await;
    let url = format!("{}/scep", server.http);

    let caps = server
        .client
        .get(format!("{url}?operation=GetCACaps"))
        .send()
        .await?
        .text()
        .await?;
    for cap in [
        "POSTPKIOperation",
        "SHA-256",
        "SHA-512",
        "AES",
        "SCEPStandard",
        "Renewal",
    ] {
        assert!(
            caps.lines().any(|l| l == cap),
            "GetCACaps lacks {cap}: {caps}"
        );
    }
    let (_, ra) = ca_and_ra(&server, "/scep").await?;

    // A one-time challenge enrolls once.
    let once = challenge(&server, &admin, ca_id).await;
    let first = tempfile::tempdir()?;
    let output = finish(&mut scepclient_command(
        first.path(),
        &url,
        "device-1",
        &once,
        &ra,
    ))
    .await;
    assert!(output.status.success(), "{}", say(&output));
    check_enrolled(&server, &admin, first.path(), "device-1").await?;

    // Used up: the same challenge with another key is refused, and audited.
    let again = tempfile::tempdir()?;
    let output = finish(&mut scepclient_command(
        again.path(),
        &url,
        "device-2",
        &once,
        &ra,
    ))
    .await;
    assert!(!output.status.success(), "{}", say(&output));
    assert!(say(&output).contains("failInfo"), "{}", say(&output));
    assert!(!again.path().join("cert.pem").exists());
    let refused = server
        .audit_total(&Auth::Session(&admin), "action=scep_challenge_refused")
        .await;
    assert_eq!(refused, 1);

    // A static challenge, set write-only, enrolls every client that knows it.
    let (status, body) = rest(
        &server,
        &admin,
        Method::PATCH,
        "/api/v2/scep/config",
        Some(json!({"challenge_password": "fleet-Challenge-2026"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["challenge_password_set"], true);
    assert!(!body.to_string().contains("fleet-Challenge"));
    for cn in ["device-3", "device-4"] {
        let dir = tempfile::tempdir()?;
        let output = finish(&mut scepclient_command(
            dir.path(),
            &format!("{url}/pkiclient.exe"),
            cn,
            "fleet-Challenge-2026",
            &ra,
        ))
        .await;
        assert!(output.status.success(), "{}", say(&output));
        check_enrolled(&server, &admin, dir.path(), cn).await?;
    }
    let wrong = tempfile::tempdir()?;
    let output = finish(&mut scepclient_command(
        wrong.path(),
        &url,
        "device-5",
        "fleet-Challenge-2025",
        &ra,
    ))
    .await;
    assert!(!output.status.success(), "{}", say(&output));

    let (status, body) = rest(&server, &admin, Method::GET, "/api/v2/scep/stats", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["issued"], 3, "{body}");
    assert_eq!(body["data"]["failed"], 2, "{body}");
    let (_, body) = rest(
        &server,
        &admin,
        Method::GET,
        "/api/v2/scep/requests?status=failed",
        None,
    )
    .await;
    assert_eq!(body["meta"]["total"], 2, "{body}");
    assert!(
        body["data"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("challenge")),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn scepclient_waits_for_an_approval_then_receives_its_certificate() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, body) = rest(
        &server,
        &admin,
        Method::PATCH,
        "/api/v2/scep/config",
        Some(json!({"auto_approve": false, "challenge_password": "approve-Me-please"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = format!("{}/scep", server.http);
    let (_, ra) = ca_and_ra(&server, "/scep").await?;
    let dir = tempfile::tempdir()?;
    let client = scepclient_command(dir.path(), &url, "held-device", "approve-Me-please", &ra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;

    let mut pending = Value::Null;
    for _ in 0..300 {
        let (_, body) = rest(
            &server,
            &admin,
            Method::GET,
            "/api/v2/scep/requests?status=pending",
            None,
        )
        .await;
        if body["meta"]["total"] == 1 {
            pending = body["data"][0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        pending["subject"]
            .as_str()
            .map(|s| s.contains("held-device")),
        Some(true),
        "{pending}"
    );
    assert!(
        !dir.path().join("cert.pem").exists(),
        "nothing is issued before the approval"
    );
    let id = pending["id"].as_i64().expect("request id");
    let (status, body) = rest(
        &server,
        &admin,
        Method::POST,
        &format!("/api/v2/scep/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "issued");
    assert_eq!(body["data"]["decided_by"], "admin");
    let certificate_id = body["data"]["certificate_id"]
        .as_i64()
        .expect("certificate");
    let (status, _) = rest(
        &server,
        &admin,
        Method::POST,
        &format!("/api/v2/scep/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "approved once only");

    // scepclient sends its request again after 30 seconds and now receives the certificate.
    let output = tokio::time::timeout(CLIENT_TIMEOUT, client.wait_with_output()).await??;
    assert!(output.status.success(), "{}", say(&output));
    let enrolled = check_enrolled(&server, &admin, dir.path(), "held-device").await?;
    assert_eq!(enrolled, certificate_id);
    Ok(())
}

/// The in-repo SCEP client: one RSA key and the certificate that signs its requests.
pub(crate) struct Device {
    key: PrivateKey,
    requester: scep_client::Requester,
    subject: pki::DistinguishedName,
}

impl Device {
    pub(crate) fn new(cn: &str) -> TestResult<Self> {
        let key = PrivateKey::generate(KeyType::Rsa { bits: 2048 })?;
        let mut subject = pki::DistinguishedName::new();
        subject.set(pki::NameAttribute::CommonName, cn)?;
        let transient =
            scep_client::transient_certificate(&key, &subject, time::OffsetDateTime::now_utc())?;
        let requester = scep_client::Requester::new(&transient, &key)?;
        Ok(Self {
            key,
            requester,
            subject,
        })
    }

    /// The same device signing with `certificate` (for a RenewalReq).
    fn holding(&self, certificate: &[u8]) -> TestResult<scep_client::Requester> {
        Ok(scep_client::Requester::new(certificate, &self.key)?)
    }

    fn transaction_id(&self) -> String {
        sha256_hex(&self.key.public_key_der())
    }
}

/// Sends one message to `path` over plain HTTP and reads the CertRep.
#[allow(clippy::too_many_arguments)]
async fn exchange(
    server: &TestServer,
    path: &str,
    requester: &scep_client::Requester,
    ra: &scep_client::RaCertificate,
    message_type: MessageType,
    transaction_id: &str,
    content: &RequestContent,
    (digest, cipher): (Digest, ContentCipher),
) -> TestResult<scep_client::Outcome> {
    let sent = scep_client::request(
        requester,
        ra,
        &scep_client::Message {
            message_type,
            transaction_id,
            content,
            digest,
            cipher,
        },
    )?;
    let response = server
        .client
        .post(format!("{}{path}?operation=PKIOperation", server.http))
        .header("content-type", "application/x-pki-message")
        .body(sent.der.clone())
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-pki-message"
    );
    let reply = scep_client::read_cert_rep(&response.bytes().await?, requester, ra, &sent)?;
    Ok(reply.outcome)
}

const STRONG: (Digest, ContentCipher) = (Digest::Sha512, ContentCipher::Aes256Cbc);

pub(crate) fn issued(outcome: scep_client::Outcome) -> Vec<u8> {
    match outcome {
        scep_client::Outcome::Success {
            mut certificates, ..
        } if !certificates.is_empty() => certificates.remove(0),
        other => panic!("expected SUCCESS with a certificate, got {other:?}"),
    }
}

pub(crate) async fn enroll(
    server: &TestServer,
    ra: &scep_client::RaCertificate,
    device: &Device,
    challenge: Option<&str>,
) -> TestResult<scep_client::Outcome> {
    let csr = scep_client::csr(&device.key, &device.subject, challenge)?;
    exchange(
        server,
        "/scep",
        &device.requester,
        ra,
        MessageType::PkcsReq,
        &device.transaction_id(),
        &RequestContent::Csr(csr),
        STRONG,
    )
    .await
}

async fn poll(
    server: &TestServer,
    ra: &scep_client::RaCertificate,
    ca: &[u8],
    device: &Device,
) -> TestResult<scep_client::Outcome> {
    let content = RequestContent::IssuerAndSubject {
        issuer: pki::inspect::Certificate::parse(ca)?.subject_raw,
        subject: pki::inspect::Certificate::parse(device.requester.certificate())?.subject_raw,
    };
    exchange(
        server,
        "/scep",
        &device.requester,
        ra,
        MessageType::CertPoll,
        &device.transaction_id(),
        &content,
        STRONG,
    )
    .await
}

pub(crate) async fn set_config(server: &TestServer, admin: &Session, body: Value) {
    let (status, body) = rest(
        server,
        admin,
        Method::PATCH,
        "/api/v2/scep/config",
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_rust_client_renews_gets_certificates_and_crls_and_polls() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let ca_id = default_ca(&server, &admin).await;
    set_config(
        &server,
        &admin,
        json!({"challenge_password": "rust-Client-secret"}),
    )
    .await;
    let (ca, ra) = ca_and_ra(&server, "/scep").await?;
    let ra = scep_client::RaCertificate::new(&ra)?;

    // PKCSReq with AES-256 and SHA-512.
    let device = Device::new("rust-device")?;
    let first = issued(enroll(&server, &ra, &device, Some("rust-Client-secret")).await?);
    let first_info = pki::inspect::Certificate::parse(&first)?;
    assert_eq!(first_info.public_key_der, device.key.public_key_der());

    // RenewalReq, signed with the certificate being renewed, for a new key; no challenge.
    let renewed_key = Device::new("rust-device")?;
    let csr = scep_client::csr(&renewed_key.key, &device.subject, None)?;
    let second = issued(
        exchange(
            &server,
            "/scep",
            &device.holding(&first)?,
            &ra,
            MessageType::RenewalReq,
            &renewed_key.transaction_id(),
            &RequestContent::Csr(csr),
            STRONG,
        )
        .await?,
    );
    let second_info = pki::inspect::Certificate::parse(&second)?;
    assert_eq!(second_info.public_key_der, renewed_key.key.public_key_der());
    assert_eq!(second_info.subject, first_info.subject);
    let renewal = stored(&server, &admin, "rust-device", &second_info.serial).await;
    let original = stored(&server, &admin, "rust-device", &first_info.serial).await;
    assert_eq!(renewal["renewed_from"], original["id"], "{renewal}");
    assert_eq!(renewal["source"], "scep");

    // GetCert: the first certificate, by issuer and serial.
    let ca_info = pki::inspect::Certificate::parse(&ca)?;
    let serial = hex::decode(&first_info.serial)?;
    let got = issued(
        exchange(
            &server,
            "/scep",
            &device.requester,
            &ra,
            MessageType::GetCert,
            "get-cert-1",
            &RequestContent::IssuerAndSerial {
                issuer: ca_info.subject_raw.clone(),
                serial: serial.clone(),
            },
            (Digest::Sha256, ContentCipher::Aes128Cbc),
        )
        .await?,
    );
    assert_eq!(got, first);

    // GetCRL: the CA's latest CRL, which openssl reads.
    let (status, body) = rest(
        &server,
        &admin,
        Method::POST,
        &format!("/api/v2/crl/{ca_id}/regenerate"),
        None,
    )
    .await;
    assert!(status.is_success(), "{body}");
    let outcome = exchange(
        &server,
        "/scep",
        &device.requester,
        &ra,
        MessageType::GetCrl,
        "get-crl-1",
        &RequestContent::IssuerAndSerial {
            issuer: ca_info.subject_raw.clone(),
            serial,
        },
        STRONG,
    )
    .await?;
    let scep_client::Outcome::Success { crls, .. } = outcome else {
        panic!("GetCRL: {outcome:?}");
    };
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("crl.der"), &crls[0])?;
    let issuer = openssl(
        dir.path(),
        &[
            "crl", "-inform", "DER", "-in", "crl.der", "-noout", "-issuer",
        ],
    )?;
    assert!(
        issuer.contains(&ca_info.common_name.clone().unwrap_or_default()),
        "{issuer}"
    );

    // Manual approval: PENDING, then CertPoll until approved, or FAILURE once rejected.
    set_config(&server, &admin, json!({"auto_approve": false})).await;
    let waiting = Device::new("waits-for-approval")?;
    let refused = Device::new("will-be-rejected")?;
    for device in [&waiting, &refused] {
        let outcome = enroll(&server, &ra, device, Some("rust-Client-secret")).await?;
        assert_eq!(outcome, scep_client::Outcome::Pending);
        assert_eq!(
            poll(&server, &ra, &ca, device).await?,
            scep_client::Outcome::Pending
        );
    }
    let (_, pending) = rest(
        &server,
        &admin,
        Method::GET,
        "/api/v2/scep/requests?status=pending",
        None,
    )
    .await;
    let id_of = |cn: &str| {
        pending["data"]
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|r| r["subject"].as_str().is_some_and(|s| s.contains(cn)))
            })
            .and_then(|r| r["id"].as_i64())
            .expect("pending request")
    };
    let (status, body) = rest(
        &server,
        &admin,
        Method::POST,
        &format!("/api/v2/scep/{}/reject", id_of("will-be-rejected")),
        Some(json!({"reason": "unknown device"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        poll(&server, &ra, &ca, &refused).await?,
        scep_client::Outcome::Failure(FailInfo::BadRequest)
    );
    let (status, body) = rest(
        &server,
        &admin,
        Method::POST,
        &format!("/api/v2/scep/{}/approve", id_of("waits-for-approval")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let approved = issued(poll(&server, &ra, &ca, &waiting).await?);
    assert_eq!(
        pki::inspect::Certificate::parse(&approved)?.public_key_der,
        waiting.key.public_key_der()
    );
    // A poll with another key for the same transaction learns nothing.
    let stranger = Device::new("waits-for-approval")?;
    let content = RequestContent::IssuerAndSubject {
        issuer: ca_info.subject_raw,
        subject: pki::inspect::Certificate::parse(stranger.requester.certificate())?.subject_raw,
    };
    let outcome = exchange(
        &server,
        "/scep",
        &stranger.requester,
        &ra,
        MessageType::CertPoll,
        &waiting.transaction_id(),
        &content,
        STRONG,
    )
    .await?;
    assert_eq!(outcome, scep_client::Outcome::Failure(FailInfo::BadCertId));
    Ok(())
}

async fn certificate_total(server: &TestServer, admin: &Session) -> i64 {
    let (_, body) = rest(server, admin, Method::GET, "/api/v2/certificates", None).await;
    body["meta"]["total"].as_i64().expect("total")
}

#[tokio::test]
async fn hostile_and_damaged_scep_messages_get_failures_or_4xx_and_no_certificate() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    set_config(
        &server,
        &admin,
        json!({"challenge_password": "hostile-Test-secret", "profiles": [{"name": "other"}]}),
    )
    .await;
    let (_, ra) = ca_and_ra(&server, "/scep").await?;
    let (_, other_ra) = ca_and_ra(&server, "/scep/other").await?;
    let ra = scep_client::RaCertificate::new(&ra)?;
    let before = certificate_total(&server, &admin).await;

    let post = |body: Vec<u8>| {
        server
            .client
            .post(format!("{}/scep?operation=PKIOperation", server.http))
            .body(body)
            .send()
    };
    for garbage in [
        Vec::new(),
        b"not a pkiMessage".to_vec(),
        vec![0x30, 0x82, 0xff, 0xff],
    ] {
        let response = post(garbage).await?;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    for query in [
        "operation=PKIOperation&message=%%%not-base64",
        "operation=PKIOperation",
        "operation=GetNextCACert",
        "operation=Nonsense",
        "",
    ] {
        let response = server
            .client
            .get(format!("{}/scep?{query}", server.http))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }
    let response = server
        .client
        .post(format!("{}/scep?operation=PKIOperation", server.http))
        .body(vec![0u8; 65 * 1024])
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Encrypted to another profile's RA: this RA cannot open it.
    let device = Device::new("misdirected")?;
    let csr = scep_client::csr(&device.key, &device.subject, Some("hostile-Test-secret"))?;
    let wrong_ra = scep_client::RaCertificate::new(&other_ra)?;
    let sent = scep_client::request(
        &device.requester,
        &wrong_ra,
        &scep_client::Message {
            message_type: MessageType::PkcsReq,
            transaction_id: &device.transaction_id(),
            content: &RequestContent::Csr(csr.clone()),
            digest: Digest::Sha256,
            cipher: ContentCipher::DesCbc,
        },
    )?;
    let response = post(sent.der.clone()).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let reply =
        scep_client::read_cert_rep(&response.bytes().await?, &device.requester, &ra, &sent)?;
    assert_eq!(
        reply.outcome,
        scep_client::Outcome::Failure(FailInfo::BadMessageCheck)
    );

    // A signature that does not verify: the last octet of the signature changed.
    let sent = scep_client::request(
        &device.requester,
        &ra,
        &scep_client::Message {
            message_type: MessageType::PkcsReq,
            transaction_id: &device.transaction_id(),
            content: &RequestContent::Csr(csr),
            digest: Digest::Sha256,
            cipher: ContentCipher::DesEde3Cbc,
        },
    )?;
    let mut tampered = sent.der.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 0x01;
    }
    let response = post(tampered).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let reply =
        scep_client::read_cert_rep(&response.bytes().await?, &device.requester, &ra, &sent)?;
    assert_eq!(
        reply.outcome,
        scep_client::Outcome::Failure(FailInfo::BadMessageCheck)
    );

    // A wrong challenge, and no challenge.
    for challenge in [Some("hostile-Test-wrong"), None] {
        let outcome = enroll(&server, &ra, &Device::new("no-entry")?, challenge).await?;
        assert_eq!(outcome, scep_client::Outcome::Failure(FailInfo::BadRequest));
    }
    // Signed by one key for a CSR of another.
    let signer = Device::new("signer")?;
    let other_key = Device::new("other-key")?;
    let csr = scep_client::csr(
        &other_key.key,
        &other_key.subject,
        Some("hostile-Test-secret"),
    )?;
    let outcome = exchange(
        &server,
        "/scep",
        &signer.requester,
        &ra,
        MessageType::PkcsReq,
        &signer.transaction_id(),
        &RequestContent::Csr(csr),
        STRONG,
    )
    .await?;
    assert_eq!(
        outcome,
        scep_client::Outcome::Failure(FailInfo::BadMessageCheck)
    );
    // A renewal signed with a certificate certmint never issued.
    let stranger = Device::new("stranger")?;
    let csr = scep_client::csr(&stranger.key, &stranger.subject, None)?;
    let outcome = exchange(
        &server,
        "/scep",
        &stranger.requester,
        &ra,
        MessageType::RenewalReq,
        &stranger.transaction_id(),
        &RequestContent::Csr(csr),
        STRONG,
    )
    .await?;
    assert_eq!(outcome, scep_client::Outcome::Failure(FailInfo::BadCertId));
    // GetCert for a serial nobody was given.
    let outcome = exchange(
        &server,
        "/scep",
        &stranger.requester,
        &ra,
        MessageType::GetCert,
        "nothing-here",
        &RequestContent::IssuerAndSerial {
            issuer: pki::inspect::Certificate::parse(ra.der())?.issuer_raw,
            serial: vec![0x01, 0x02],
        },
        STRONG,
    )
    .await?;
    assert_eq!(outcome, scep_client::Outcome::Failure(FailInfo::BadCertId));

    assert_eq!(
        certificate_total(&server, &admin).await,
        before,
        "nothing was issued"
    );

    // Unknown or disabled profiles and a disabled server are not there.
    let status = |path: &str| {
        let url = format!("{}{path}?operation=GetCACaps", server.http);
        let client = server.client.clone();
        async move { client.get(url).send().await.map(|r| r.status()) }
    };
    assert_eq!(status("/scep/nobody").await?, StatusCode::NOT_FOUND);
    set_config(
        &server,
        &admin,
        json!({"profiles": [{"name": "other", "enabled": false}]}),
    )
    .await;
    assert_eq!(status("/scep/other").await?, StatusCode::NOT_FOUND);
    set_config(&server, &admin, json!({"enabled": false})).await;
    assert_eq!(status("/scep").await?, StatusCode::NOT_FOUND);
    assert_eq!(status("/scep/pkiclient.exe").await?, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn scep_settings_challenges_and_requests_are_validated_and_guarded() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let ca_id = default_ca(&server, &admin).await;
    for (body, why) in [
        (
            json!({"challenge_password": "short"}),
            "a short static challenge",
        ),
        (json!({"ca_id": 999_999}), "an unknown CA"),
        (json!({"challenge_validity": 0}), "a validity of 0 hours"),
        (
            json!({"remove_profiles": ["default"]}),
            "removing the default profile",
        ),
        (
            json!({"profiles": [{"name": "Bad Name"}]}),
            "a bad profile name",
        ),
        (
            json!({"profiles": [{"name": "cgi-bin"}]}),
            "a reserved profile name",
        ),
    ] {
        let (status, answer) = rest(
            &server,
            &admin,
            Method::PATCH,
            "/api/v2/scep/config",
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {answer}");
    }
    let (status, _) = rest(
        &server,
        &admin,
        Method::PATCH,
        "/api/v2/scep/config",
        Some(json!({"unknown_field": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A profile of its own CA serves that CA's certificate.
    let (_, cas) = rest(&server, &admin, Method::GET, "/api/v2/cas", None).await;
    let root = cas["data"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["is_default"] != json!(true)))
        .and_then(|c| c["id"].as_i64())
        .expect("the root CA");
    set_config(
        &server,
        &admin,
        json!({"profiles": [{"name": "branch", "ca_id": root, "challenge_validity": 2}]}),
    )
    .await;
    let (branch_ca, _) = ca_and_ra(&server, "/scep/branch/pkiclient.exe").await?;
    let (_, root_pem) = rest(
        &server,
        &admin,
        Method::GET,
        &format!("/api/v2/cas/{root}"),
        None,
    )
    .await;
    assert!(
        pki::inspect::Certificate::parse(&branch_ca)?
            .subject
            .contains(root_pem["data"]["common_name"].as_str().unwrap_or("?")),
        "{root_pem}"
    );

    // One-time challenges: regenerating ends the open ones.
    let (_, ra) = ca_and_ra(&server, "/scep").await?;
    let ra = scep_client::RaCertificate::new(&ra)?;
    let old = challenge(&server, &admin, ca_id).await;
    let (status, body) = rest(
        &server,
        &admin,
        Method::POST,
        &format!("/api/v2/scep/challenge/{ca_id}/regenerate"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["revoked"], 1);
    assert_eq!(body["data"]["challenge_validity"], 24);
    let new = body["data"]["challenge"]
        .as_str()
        .expect("challenge")
        .to_owned();
    assert_eq!(
        enroll(&server, &ra, &Device::new("late")?, Some(&old)).await?,
        scep_client::Outcome::Failure(FailInfo::BadRequest)
    );
    issued(enroll(&server, &ra, &Device::new("on-time")?, Some(&new)).await?);
    let (status, body) = rest(
        &server,
        &admin,
        Method::GET,
        "/api/v2/scep/challenge/999999",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Roles: a viewer reads, an operator manages; neither sees a challenge's secret in audit.
    server.user(&admin, "vera", "viewer").await;
    let viewer = server.login("vera", crate::common::ADMIN_PASSWORD).await;
    let (status, _) = rest(&server, &viewer, Method::GET, "/api/v2/scep/config", None).await;
    assert_eq!(status, StatusCode::OK);
    for (method, path) in [
        (Method::PATCH, "/api/v2/scep/config".to_owned()),
        (Method::GET, format!("/api/v2/scep/challenge/{ca_id}")),
        (Method::POST, "/api/v2/scep/1/approve".to_owned()),
    ] {
        let (status, _) = rest(&server, &viewer, method, &path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (_, audit) = rest(
        &server,
        &admin,
        Method::GET,
        "/api/v2/audit/logs?per_page=100",
        None,
    )
    .await;
    assert!(
        !audit.to_string().contains(&new),
        "a challenge never reaches the audit log"
    );
    // write:scep alone changes the default profile (without reading the settings) and approves:
    // the certificate is issued as the profile's client, the approver recorded.
    let (_, key) = server.api_key(&admin, &["write:scep"]).await;
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/scep/config",
            &Auth::Bearer(&key),
            Some(json!({"auto_approve": false, "challenge_password": "only-write-scep"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        enroll(
            &server,
            &ra,
            &Device::new("held-device")?,
            Some("only-write-scep")
        )
        .await?,
        scep_client::Outcome::Pending
    );
    let (_, pending) = rest(
        &server,
        &admin,
        Method::GET,
        "/api/v2/scep/requests?status=pending",
        None,
    )
    .await;
    let id = pending["data"][0]["id"]
        .as_i64()
        .expect("a pending request");
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/v2/scep/{id}/approve"),
            &Auth::Bearer(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "issued", "{body}");
    assert_eq!(
        body["data"]["decided_by"], "admin",
        "the key's owner: {body}"
    );
    let issued_as = server
        .audit_total(
            &Auth::Session(&admin),
            "action=certificate_issued&username=scep:default",
        )
        .await;
    assert!(issued_as >= 1, "issued as the profile's client");

    set_config(&server, &admin, json!({"remove_profiles": ["branch"]})).await;
    let response = server
        .client
        .get(format!("{}/scep/branch?operation=GetCACaps", server.http))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn a_node_told_to_serve_only_scep_serves_scep_and_not_the_api() -> TestResult {
    let server = TestServer::start_with(|s| s.serve_only = vec!["scep".into()]).await;
    let response = server
        .client
        .get(format!("{}/scep?operation=GetCACaps", server.http))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await?.contains("POSTPKIOperation"));
    let response = server
        .client
        .get(server.url("/api/v2/scep/config"))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response
            .headers()
            .contains_key(certmint_server::UNROUTED_HEADER)
    );
    Ok(())
}

/// A session bus's configuration with no service directories.
const SESSION_BUS_WITHOUT_ACTIVATION: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

/// certmonger's SCEP helper asked directly (GetCACaps, GetCACert), then the certmonger daemon
/// (on a session bus of its own, its state in a temporary directory) enrolling through it with
/// the profile's static challenge.
#[tokio::test]
async fn certmonger_reads_the_capabilities_and_enrolls_through_scep_submit() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    set_config(
        &server,
        &admin,
        json!({"challenge_password": "certmonger-Secret-1"}),
    )
    .await;
    let url = format!("{}/scep", server.http);
    let submit = tool("scep-submit", "CERTMINT_TEST_SCEP_SUBMIT");
    let run = |args: Vec<String>| {
        let submit = submit.clone();
        async move {
            tokio::time::timeout(
                CLIENT_TIMEOUT,
                tokio::process::Command::new(submit).args(args).output(),
            )
            .await
        }
    };
    let caps = run(vec!["-u".into(), url.clone(), "-c".into()]).await??;
    assert!(caps.status.success(), "{}", say(&caps));
    let caps = String::from_utf8_lossy(&caps.stdout).into_owned();
    for cap in ["AES", "POSTPKIOperation", "SHA-256", "SCEPStandard"] {
        assert!(caps.lines().any(|l| l == cap), "{caps}");
    }
    let certs = run(vec!["-u".into(), url.clone(), "-C".into()]).await??;
    assert!(certs.status.success(), "{}", say(&certs));
    let (ca, ra) = ca_and_ra(&server, "/scep").await?;
    let printed = pki::bundle::read(&certs.stdout, None)?.certificates;
    assert_eq!(
        printed.first(),
        Some(&ra),
        "scep-submit finds the RA certificate"
    );
    assert!(printed.contains(&ca), "and the CA certificate");

    let dir = tempfile::tempdir()?;
    let state = dir.path().display().to_string();
    let script = format!(
        "set -e\n\
         for d in config requests cas local tmp; do mkdir -p {state}/$d; done\n\
         export CERTMONGER_CONFIG_DIR={state}/config CERTMONGER_REQUESTS_DIR={state}/requests \
         CERTMONGER_CAS_DIR={state}/cas CERTMONGER_LOCAL_CA_DIR={state}/local \
         CERTMONGER_TMPDIR={state}/tmp CERTMONGER_SYSTEM_LOCK_FILE={state}/lock\n\
         {certmonger} -s -n > {state}/daemon.log 2>&1 &\n\
         daemon=$!\n\
         trap 'kill $daemon 2>/dev/null || true' EXIT\n\
         for i in $(seq 100); do {getcert} list-cas -s >/dev/null 2>&1 && break; \
         kill -0 $daemon || {{ cat {state}/daemon.log; exit 1; }}; sleep 0.1; done\n\
         {getcert} add-scep-ca -s -c certmint -u {url}\n\
         {getcert} request -s -c certmint -f {state}/cert.pem -k {state}/key.pem \
         -L certmonger-Secret-1 -N CN=monger-device -w -v\n\
         {getcert} list -s\n",
        certmonger = tool("certmonger", "CERTMINT_TEST_CERTMONGER").display(),
        getcert = tool("getcert", "CERTMINT_TEST_GETCERT").display(),
    );
    std::fs::write(dir.path().join("run.sh"), script)?;
    // A bus that starts no services: were certmonger activated on demand, it would race the
    // daemon started above for the bus name and keep its state in the user's home.
    let bus = dir.path().join("bus.conf");
    std::fs::write(&bus, SESSION_BUS_WITHOUT_ACTIVATION)?;
    let output = tokio::time::timeout(
        CLIENT_TIMEOUT,
        tokio::process::Command::new(tool("dbus-run-session", "CERTMINT_TEST_DBUS_RUN_SESSION"))
            .arg(format!("--config-file={}", bus.display()))
            .args(["--", "bash"])
            .arg(dir.path().join("run.sh"))
            .kill_on_drop(true)
            .output(),
    )
    .await??;
    let said = say(&output);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("status: MONITORING"), "{said}");
    check_enrolled(&server, &admin, dir.path(), "monger-device").await?;
    Ok(())
}
