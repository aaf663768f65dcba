//! The OCSP responder (RFC 6960, RFC 5019), asked by the real `openssl ocsp` and over raw
//! HTTP: good, revoked and unknown answers that verify against the CA chain, revocations seen
//! at once, the delegated responder certificate and its rollover, the CA signing itself,
//! several CertIDs in one request, the GET form with HTTP caching, error statuses for bad
//! input, the admin status and counters, and a node that serves only the responder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use authority::Clock;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use authority::pki::ocsp::{CertId, HashAlgorithm, IssuerKeyHashes};
use certmint_server::Settings;

use crate::common::{Auth, Session, TestResult, TestServer, fetch, post};

/// The OCSPResponse for `malformedRequest` (RFC 6960 §4.2.1): SEQUENCE { ENUMERATED 1 }.
const MALFORMED: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x01];
/// The OCSPResponse for `unauthorized`: SEQUENCE { ENUMERATED 6 }.
const UNAUTHORIZED: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x06];
/// The OCSPResponse for `tryLater`: SEQUENCE { ENUMERATED 3 }.
pub(crate) const TRY_LATER: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x03];
pub(crate) const REQUEST_TYPE: &str = "application/ocsp-request";
const RESPONSE_TYPE: &str = "application/ocsp-response";
/// How long the responder may take to notice a changed CA setting (it reloads its CAs at most
/// once a second).
const RELOAD: Duration = Duration::from_millis(1200);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Runs openssl in `dir` and returns whether it succeeded and everything it printed, stdout
/// then stderr (`openssl ocsp` reports verification on stderr). A missing openssl fails the
/// test; it never skips.
pub(crate) async fn run(dir: &Path, args: &[&str]) -> TestResult<(bool, String)> {
    // Async: the server runs on this test's runtime and must answer while openssl waits.
    let out = tokio::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .output()
        .await
        .map_err(|e| format!("the openssl command is required for this test: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// Runs openssl in `dir`, which must succeed; everything it printed.
async fn ssl(dir: &Path, args: &[&str]) -> TestResult<String> {
    let (ok, out) = run(dir, args).await?;
    if !ok {
        return Err(format!("openssl {args:?} failed:\n{out}").into());
    }
    Ok(out)
}

/// DER certificate as PEM.
fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Standard base64, URL-encoded as RFC 6960 Appendix A.1 asks.
fn url_encoded_base64(der: &[u8]) -> String {
    STANDARD
        .encode(der)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// A time as `openssl ocsp` prints it, e.g. `Jan  2 03:04:05 2025 GMT`, after `label`.
fn printed_time(out: &str, label: &str) -> TestResult<OffsetDateTime> {
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .ok_or_else(|| format!("no '{label}' in:\n{out}"))?;
    let text = line.trim().strip_suffix(" GMT").ok_or("no GMT")?;
    // Fractional seconds, if any, follow the seconds.
    let text = match text.split_once('.') {
        Some((head, tail)) => format!("{head}{}", &tail[tail.find(' ').unwrap_or(0)..]),
        None => text.to_owned(),
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let parsed = time::PrimitiveDateTime::parse(
        &text,
        format_description!(
            "[month repr:short] [day padding:none] [hour]:[minute]:[second] [year]"
        ),
    )
    .map_err(|e| format!("'{text}': {e}"))?;
    Ok(parsed.assume_utc())
}

/// The serial (lower-case hex) of the first certificate printed in `-resp_text` output: the
/// responder certificate a response carries.
async fn included_cert_serial(dir: &Path, resp_text: &str) -> TestResult<String> {
    let begin = resp_text
        .find("-----BEGIN CERTIFICATE-----")
        .ok_or_else(|| format!("the response carries no certificate:\n{resp_text}"))?;
    let end = resp_text[begin..]
        .find("-----END CERTIFICATE-----")
        .ok_or("unterminated PEM")?
        + begin
        + "-----END CERTIFICATE-----".len();
    std::fs::write(dir.join("included.pem"), &resp_text[begin..end])?;
    let out = ssl(dir, &["x509", "-in", "included.pem", "-noout", "-serial"]).await?;
    Ok(out
        .trim()
        .strip_prefix("serial=")
        .ok_or_else(|| format!("serial: {out}"))?
        .to_ascii_lowercase())
}

/// A plain HTTP client that ignores any proxy settings.
pub(crate) fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client")
}

/// POSTs `body` to `url` with `content_type`: the status, headers and body.
async fn post_raw(
    client: &reqwest::Client,
    url: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> TestResult<(StatusCode, reqwest::header::HeaderMap, Vec<u8>)> {
    let mut request = client.post(url).body(body);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    Ok((status, headers, response.bytes().await?.to_vec()))
}

/// GETs `url`, optionally with `If-None-Match`: the status, headers and body.
async fn get_raw(
    url: &str,
    if_none_match: Option<&str>,
) -> TestResult<(StatusCode, reqwest::header::HeaderMap, Vec<u8>)> {
    let mut request = plain().get(url);
    if let Some(tag) = if_none_match {
        request = request.header(IF_NONE_MATCH, tag);
    }
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    Ok((status, headers, response.bytes().await?.to_vec()))
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A started server with an admin session and a directory holding `root.pem`, `issuing.pem`
/// and `chain.pem` (the issuing CA, then the root).
pub(crate) struct Pki {
    pub(crate) server: TestServer,
    pub(crate) admin: Session,
    issuing_id: i64,
    root_id: i64,
    dir: tempfile::TempDir,
}

impl Pki {
    async fn start() -> TestResult<Self> {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(configure: impl FnOnce(&mut Settings)) -> TestResult<Self> {
        let server = TestServer::start_with(configure).await;
        let admin = server.admin().await;
        let (status, cas) = server
            .call(Method::GET, "/api/v2/cas", &Auth::Session(&admin), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{cas}");
        let cas = cas["data"].as_array().ok_or("CA list")?.clone();
        let find = |name: &str| {
            cas.iter()
                .find(|c| c["name"] == name)
                .cloned()
                .ok_or_else(|| format!("no CA '{name}' in {cas:?}"))
        };
        let root = find("certmint Root CA")?;
        let issuing = find("certmint Issuing CA")?;
        assert_eq!(issuing["is_default"], true, "{issuing}");
        let dir = tempfile::tempdir()?;
        let mut chain = String::new();
        for (ca, file) in [(&issuing, "issuing.pem"), (&root, "root.pem")] {
            let refid = ca["refid"].as_str().ok_or("refid")?;
            let response = plain()
                .get(format!("{}/ca/{refid}.pem", server.http))
                .send()
                .await?;
            assert_eq!(response.status(), StatusCode::OK, "{file}");
            let text = response.text().await?;
            assert!(text.contains("BEGIN CERTIFICATE"), "{text}");
            std::fs::write(dir.path().join(file), &text)?;
            chain.push_str(&text);
        }
        std::fs::write(dir.path().join("chain.pem"), chain)?;
        Ok(Self {
            issuing_id: issuing["id"].as_i64().ok_or("issuing id")?,
            root_id: root["id"].as_i64().ok_or("root id")?,
            server,
            admin,
            dir,
        })
    }

    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// The responder URL, as certificates carry it.
    pub(crate) fn url(&self) -> String {
        format!("{}/ocsp", self.server.http)
    }

    /// Issues `{name}.example.test` from the default (issuing) CA and saves it as `{name}.pem`.
    pub(crate) async fn issue(&self, name: &str) -> TestResult<i64> {
        let cn = format!("{name}.example.test");
        let (status, body) = post(
            &self.server,
            &self.admin,
            "/api/v2/certificates",
            json!({"common_name": cn, "san": [format!("dns:{cn}")], "validity_days": 90}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["data"]["id"].as_i64().ok_or("certificate id")?;
        let pem = fetch(
            &self.server,
            &self.admin,
            &format!("/api/v2/certificates/{id}/export?format=pem"),
        )
        .await?;
        std::fs::write(self.path(&format!("{name}.pem")), pem)?;
        Ok(id)
    }

    pub(crate) async fn revoke(&self, id: i64, reason: &str) -> TestResult<Value> {
        let (status, body) = post(
            &self.server,
            &self.admin,
            &format!("/api/v2/certificates/{id}/revoke"),
            json!({"reason": reason}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "revoke {id} ({reason}): {body}");
        Ok(body["data"].clone())
    }

    /// `openssl ocsp` against the responder URL, trusting `chain.pem`: everything it printed.
    pub(crate) async fn ocsp(&self, args: &[&str]) -> TestResult<String> {
        let url = self.url();
        let mut all = vec![
            "ocsp",
            "-url",
            &url,
            "-CAfile",
            "chain.pem",
            "-timeout",
            "20",
        ];
        all.extend_from_slice(args);
        Ok(run(self.dir.path(), &all).await?.1)
    }

    /// `{name}.pem` asked of the issuing CA without a nonce (the shareable, cached form).
    async fn ask(&self, name: &str) -> TestResult<String> {
        let cert = format!("{name}.pem");
        self.ocsp(&["-issuer", "issuing.pem", "-cert", &cert, "-no_nonce"])
            .await
    }

    /// Writes the DER request `openssl ocsp` makes from `args` to `file` and returns it.
    pub(crate) async fn request(&self, file: &str, args: &[&str]) -> TestResult<Vec<u8>> {
        let mut all = vec!["ocsp", "-reqout", file];
        all.extend_from_slice(args);
        ssl(self.dir.path(), &all).await?;
        Ok(std::fs::read(self.path(file))?)
    }

    /// Makes an unrelated self-signed CA as `other.pem`.
    async fn unrelated_ca(&self) -> TestResult {
        ssl(
            self.dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "other.key",
                "-out",
                "other.pem",
                "-subj",
                "/CN=Unrelated Test CA",
                "-days",
                "2",
            ],
        )
        .await?;
        Ok(())
    }

    async fn patch_ca(&self, ca_id: i64, body: Value) -> TestResult {
        let (status, answer) = self
            .server
            .call(
                Method::PATCH,
                &format!("/api/v2/cas/{ca_id}"),
                &Auth::Session(&self.admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "PATCH CA {ca_id} {body}: {answer}");
        Ok(())
    }

    async fn get_api(&self, path: &str, auth: &Auth<'_>) -> (StatusCode, Value) {
        self.server.call(Method::GET, path, auth, None).await
    }

    /// The responder status of CA `ca_id`.
    async fn ca_status(&self, ca_id: i64) -> TestResult<Value> {
        let (status, body) = self
            .get_api("/api/v2/ocsp/status", &Auth::Session(&self.admin))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Ok(body["data"]["cas"]
            .as_array()
            .ok_or("cas")?
            .iter()
            .find(|c| c["ca_id"] == ca_id)
            .cloned()
            .ok_or_else(|| format!("CA {ca_id} missing from {body}"))?)
    }

    fn authority(&self) -> TestResult<&authority::Authority> {
        Ok(&self
            .server
            .running
            .as_ref()
            .ok_or("not running")?
            .app
            .authority)
    }

    /// A request without a nonce for `serial` of the issuing CA, as RFC 5019 clients send it.
    pub(crate) fn request_for_serial(&self, serial: &[u8]) -> TestResult<Vec<u8>> {
        let pem = std::fs::read_to_string(self.path("issuing.pem"))?;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let issuing = authority::pki::inspect::Certificate::parse(&STANDARD.decode(body)?)?;
        let id = CertId::for_certificate(
            &IssuerKeyHashes::new(&issuing)?,
            serial,
            HashAlgorithm::Sha1,
        )?;
        Ok(authority::pki::ocsp::request(&[id], None)?)
    }

    async fn stats(&self) -> TestResult<Value> {
        let (status, body) = self
            .get_api("/api/v2/ocsp/stats", &Auth::Session(&self.admin))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Ok(body["data"].clone())
    }
}

pub(crate) fn assert_verified(out: &str) {
    assert!(out.contains("Response verify OK"), "not verified:\n{out}");
    assert!(!out.contains("Verify Failure"), "{out}");
    assert!(!out.contains("WARNING"), "{out}");
}

fn stat(v: &Value, name: &str) -> u64 {
    v[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {v}"))
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// `openssl ocsp` with the URL the certificate itself names: good, verified against the chain,
/// with and without a nonce, with SHA-1 and SHA-256 CertIDs, valid for 24 hours.
#[tokio::test]
async fn openssl_gets_a_verified_good_answer_at_the_url_the_certificate_names() -> TestResult {
    let pki = Pki::start().await?;
    pki.issue("leaf").await?;
    let dir = pki.dir.path();

    let aia = ssl(dir, &["x509", "-in", "leaf.pem", "-noout", "-ocsp_uri"]).await?;
    assert_eq!(aia.trim(), pki.url(), "the certificate's AIA OCSP URL");

    let leaf = ["-issuer", "issuing.pem", "-cert", "leaf.pem"];
    let out = pki.ocsp(&[&leaf[..], &["-no_nonce"]].concat()).await?;
    assert_verified(&out);
    assert!(out.contains("leaf.pem: good"), "{out}");
    let this_update = printed_time(&out, "This Update:")?;
    let next_update = printed_time(&out, "Next Update:")?;
    assert_eq!(
        next_update - this_update,
        time::Duration::hours(24),
        "{out}"
    );
    let now = pki.server.clock.now();
    assert!(
        (this_update - now).abs() < time::Duration::minutes(2),
        "thisUpdate {this_update} is not now ({now})"
    );

    // With a nonce (openssl's default): echoed, so openssl's nonce check passes silently.
    let out = pki.ocsp(&[&leaf[..], &["-resp_text"]].concat()).await?;
    assert_verified(&out);
    assert!(out.contains("leaf.pem: good"), "{out}");
    assert!(
        out.contains("OCSP Nonce"),
        "no nonce in the response:\n{out}"
    );
    assert_eq!(
        printed_time(&out, "Next Update:")? - printed_time(&out, "This Update:")?,
        time::Duration::hours(24)
    );

    // SHA-256 CertIDs, with and without a nonce.
    for extra in [&["-sha256", "-no_nonce"][..], &["-sha256"][..]] {
        // The digest goes before the certificates.
        let out = pki
            .ocsp(&[extra, &leaf[..], &["-resp_text"]].concat())
            .await?;
        assert_verified(&out);
        assert!(out.contains("leaf.pem: good"), "{extra:?}: {out}");
        assert!(out.contains("Hash Algorithm: sha256"), "{extra:?}: {out}");
    }
    pki.server.stop().await;
    Ok(())
}

/// A revocation shows at the very next query, within a second of the API call returning,
/// also for a certificate whose good answer was cached; a hold and its release too; the
/// reason is left out for `unspecified`.
#[tokio::test]
async fn a_revocation_is_answered_at_the_next_query() -> TestResult {
    let pki = Pki::start().await?;
    let a = pki.issue("a").await?;
    let b = pki.issue("b").await?;
    let c = pki.issue("c").await?;
    let d = pki.issue("d").await?;

    let out = pki.ask("a").await?;
    assert_verified(&out);
    assert!(out.contains("a.pem: good"), "{out}");

    let revoked = pki.revoke(a, "keyCompromise").await?;
    let returned = Instant::now();
    let out = pki.ask("a").await?;
    let elapsed = returned.elapsed();
    assert!(
        elapsed < Duration::from_secs(1),
        "the first query after the revocation took {elapsed:?}"
    );
    assert_verified(&out);
    assert!(out.contains("a.pem: revoked"), "{out}");
    assert!(out.contains("Reason: keyCompromise"), "{out}");
    let revocation_time = printed_time(&out, "Revocation Time:")?;
    let revoked_at = OffsetDateTime::parse(
        revoked["revoked_at"].as_str().ok_or("revoked_at")?,
        &time::format_description::well_known::Rfc3339,
    )?;
    assert!(
        (revocation_time - revoked_at).abs() < time::Duration::seconds(1),
        "revocation time {revocation_time} vs revoked_at {revoked_at}"
    );

    // b's good answer is cached (asked twice: the second is a cache hit) and then replaced.
    for _ in 0..2 {
        let out = pki.ask("b").await?;
        assert!(out.contains("b.pem: good"), "{out}");
    }
    let hits = stat(&pki.stats().await?, "cache_hits");
    assert_eq!(hits, 1, "b's second answer came from the cache");
    pki.revoke(b, "superseded").await?;
    let out = pki.ask("b").await?;
    assert_verified(&out);
    assert!(out.contains("b.pem: revoked"), "{out}");
    assert!(out.contains("Reason: superseded"), "{out}");

    // A hold, then its release.
    assert!(pki.ask("c").await?.contains("c.pem: good"));
    pki.revoke(c, "certificateHold").await?;
    let out = pki.ask("c").await?;
    assert!(out.contains("c.pem: revoked"), "{out}");
    assert!(out.contains("Reason: certificateHold"), "{out}");
    pki.revoke(c, "removeFromCRL").await?;
    let out = pki.ask("c").await?;
    assert_verified(&out);
    assert!(out.contains("c.pem: good"), "released from hold:\n{out}");

    // unspecified: revoked, and no reason given.
    pki.revoke(d, "unspecified").await?;
    let out = pki.ask("d").await?;
    assert_verified(&out);
    assert!(out.contains("d.pem: revoked"), "{out}");
    assert!(out.contains("Revocation Time:"), "{out}");
    assert!(!out.contains("Reason:"), "unspecified is left out:\n{out}");
    pki.server.stop().await;
    Ok(())
}

/// A serial the CA never issued is unknown; the intermediate CA's own certificate, asked of
/// the root, is good.
#[tokio::test]
async fn unknown_serials_and_the_intermediate_itself() -> TestResult {
    let pki = Pki::start().await?;
    for extra in [&["-no_nonce"][..], &[][..]] {
        let out = pki
            .ocsp(&[&["-issuer", "issuing.pem", "-serial", "0x1234"][..], extra].concat())
            .await?;
        assert_verified(&out);
        assert!(out.contains("0x1234: unknown"), "{extra:?}: {out}");
    }
    let out = pki
        .ocsp(&["-issuer", "root.pem", "-cert", "issuing.pem", "-resp_text"])
        .await?;
    assert_verified(&out);
    assert!(out.contains("issuing.pem: good"), "{out}");
    // Answered by the root's own responder.
    assert!(
        out.contains("certmint Root CA OCSP Responder"),
        "signed by the root's responder:\n{out}"
    );
    pki.server.stop().await;
    Ok(())
}

/// The delegated responder certificate travels with the response, is for OCSP signing with
/// no-check, and chains to the CA: an unrelated trust anchor does not verify it. Switched to
/// the CA's own key, responses carry no certificate and still verify.
#[tokio::test]
async fn responses_are_signed_by_the_delegated_responder_or_the_ca() -> TestResult {
    let pki = Pki::start().await?;
    pki.issue("leaf").await?;
    pki.issue("late").await?;
    let leaf = ["-issuer", "issuing.pem", "-cert", "leaf.pem"];

    let out = pki
        .ocsp(&[&leaf[..], &["-no_nonce", "-resp_text"]].concat())
        .await?;
    assert_verified(&out);
    assert!(out.contains("leaf.pem: good"), "{out}");
    for expected in [
        "Subject: CN=certmint Issuing CA OCSP Responder",
        "OCSP Signing",
        "OCSP No Check",
    ] {
        assert!(out.contains(expected), "{expected} missing:\n{out}");
    }
    let serial = included_cert_serial(pki.dir.path(), &out).await?;
    let status = pki.ca_status(pki.issuing_id).await?;
    assert_eq!(status["responder_serial"], serial.as_str(), "{status}");

    // Trusting an unrelated CA instead, the responder's chain does not verify.
    pki.unrelated_ca().await?;
    let url = pki.url();
    let (_, out) = run(
        pki.dir.path(),
        &[
            &["ocsp", "-url", &url, "-CAfile", "other.pem", "-no_nonce"],
            &leaf[..],
        ]
        .concat(),
    )
    .await?;
    assert!(out.contains("Response Verify Failure"), "{out}");
    assert!(!out.contains("Response verify OK"), "{out}");

    // Signed by the CA itself: a response signed now (with a nonce, or for a certificate not
    // asked before) carries no certificate and verifies with the CA as the signer.
    pki.patch_ca(pki.issuing_id, json!({"ocsp_signer": "ca"}))
        .await?;
    tokio::time::sleep(RELOAD).await;
    for (file, extra) in [("leaf.pem", &[][..]), ("late.pem", &["-no_nonce"][..])] {
        let args = [
            &["-issuer", "issuing.pem", "-cert", file, "-resp_text"][..],
            extra,
        ]
        .concat();
        let out = pki.ocsp(&args).await?;
        assert_verified(&out);
        assert!(out.contains(&format!("{file}: good")), "{out}");
        assert!(
            !out.contains("BEGIN CERTIFICATE"),
            "{file} {extra:?}: a CA-signed response carries no certificate:\n{out}"
        );
        assert!(
            !out.contains("OCSP Responder"),
            "{file} {extra:?}: still answered by the delegated responder:\n{out}"
        );
    }
    let status = pki.ca_status(pki.issuing_id).await?;
    assert_eq!(status["signer"], "ca", "{status}");
    assert_eq!(status["responder_certificate_id"], Value::Null, "{status}");

    // The validity setting sets nextUpdate - thisUpdate.
    pki.patch_ca(pki.issuing_id, json!({"ocsp_validity_hours": 48}))
        .await?;
    tokio::time::sleep(RELOAD).await;
    let out = pki
        .ocsp(&["-issuer", "issuing.pem", "-cert", "late.pem"])
        .await?;
    assert_verified(&out);
    assert_eq!(
        printed_time(&out, "Next Update:")? - printed_time(&out, "This Update:")?,
        time::Duration::hours(48),
        "{out}"
    );

    // Disabled, the responder does not answer for the CA, cached responses or not.
    pki.patch_ca(pki.issuing_id, json!({"ocsp_enabled": false}))
        .await?;
    tokio::time::sleep(RELOAD).await;
    for extra in [&[][..], &["-no_nonce"][..]] {
        let args = [&["-issuer", "issuing.pem", "-cert", "late.pem"][..], extra].concat();
        let out = pki.ocsp(&args).await?;
        assert!(
            out.contains("Responder Error: unauthorized"),
            "{extra:?}: {out}"
        );
    }
    // The root still answers.
    let out = pki
        .ocsp(&["-issuer", "root.pem", "-cert", "issuing.pem"])
        .await?;
    assert_verified(&out);
    assert!(out.contains("issuing.pem: good"), "{out}");
    pki.server.stop().await;
    Ok(())
}

/// A response cached before the CA's signer changed is not served after the change: once the
/// responder has reloaded, every answer is signed the new way.
#[tokio::test]
async fn a_signer_change_replaces_cached_responses() -> TestResult {
    let pki = Pki::start().await?;
    pki.issue("leaf").await?;
    let out = pki.ask("leaf").await?;
    assert_verified(&out);
    assert!(out.contains("leaf.pem: good"), "{out}");

    pki.patch_ca(pki.issuing_id, json!({"ocsp_signer": "ca"}))
        .await?;
    tokio::time::sleep(RELOAD).await;
    let out = pki
        .ocsp(&[
            "-issuer",
            "issuing.pem",
            "-cert",
            "leaf.pem",
            "-no_nonce",
            "-resp_text",
        ])
        .await?;
    assert_verified(&out);
    assert!(out.contains("leaf.pem: good"), "{out}");
    assert!(
        !out.contains("OCSP Responder") && !out.contains("BEGIN CERTIFICATE"),
        "the response cached before the switch to ocsp_signer \"ca\" is still served, signed \
         by the delegated responder:\n{out}"
    );
    pki.server.stop().await;
    Ok(())
}

/// Several CertIDs of one CA are answered in one response; CertIDs of two CAs are not.
#[tokio::test]
async fn several_certificates_in_one_request() -> TestResult {
    let pki = Pki::start().await?;
    pki.issue("a").await?;
    let b = pki.issue("b").await?;
    pki.revoke(b, "keyCompromise").await?;
    let both = ["-issuer", "issuing.pem", "-cert", "a.pem", "-cert", "b.pem"];
    for extra in [&["-no_nonce"][..], &[][..]] {
        let out = pki
            .ocsp(&[&both[..], extra, &["-resp_text"]].concat())
            .await?;
        assert_verified(&out);
        assert!(out.contains("a.pem: good"), "{extra:?}: {out}");
        assert!(out.contains("b.pem: revoked"), "{extra:?}: {out}");
        assert!(out.contains("Reason: keyCompromise"), "{out}");
        assert_eq!(out.matches("Certificate ID:").count(), 2, "{out}");
    }

    let out = pki
        .ocsp(&[
            "-issuer",
            "issuing.pem",
            "-cert",
            "a.pem",
            "-issuer",
            "root.pem",
            "-cert",
            "issuing.pem",
        ])
        .await?;
    assert!(out.contains("Responder Error: unauthorized"), "{out}");
    pki.server.stop().await;
    Ok(())
}

/// The GET form: base64 in the path (URL-encoded, base64url and unpadded too, also under
/// `.well-known`), shareable answers with Cache-Control, ETag and Last-Modified and 304s;
/// answers for one asker are not marked cacheable. POST works on both listeners.
#[tokio::test]
async fn the_get_form_is_cacheable() -> TestResult {
    let pki = Pki::start().await?;
    pki.issue("leaf").await?;
    pki.issue("other").await?;
    let dir = pki.dir.path();
    let leaf = ["-issuer", "issuing.pem", "-cert", "leaf.pem"];
    let der = pki
        .request("req.der", &[&leaf[..], &["-no_nonce"]].concat())
        .await?;
    let http = &pki.server.http;

    let url = format!("{http}/ocsp/{}", url_encoded_base64(&der));
    let (status, headers, body) = get_raw(&url, None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), Some(RESPONSE_TYPE));
    let cache_control = header(&headers, CACHE_CONTROL.as_str()).ok_or("no Cache-Control")?;
    let max_age: u64 = cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .ok_or_else(|| format!("no max-age in '{cache_control}'"))?
        .parse()?;
    assert!(
        (86_400 - 120..=86_400).contains(&max_age),
        "max-age {max_age} for a fresh 24 h response"
    );
    assert!(cache_control.contains("public"), "{cache_control}");
    assert!(cache_control.contains("no-transform"), "{cache_control}");
    let etag = header(&headers, ETAG.as_str()).ok_or("no ETag")?.to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "{etag}"
    );
    let last_modified = header(&headers, LAST_MODIFIED.as_str()).ok_or("no Last-Modified")?;

    std::fs::write(pki.path("resp.der"), &body)?;
    let out = ssl(
        dir,
        &[
            &[
                "ocsp",
                "-respin",
                "resp.der",
                "-CAfile",
                "chain.pem",
                "-no_nonce",
            ],
            &leaf[..],
        ]
        .concat(),
    )
    .await?;
    assert_verified(&out);
    assert!(out.contains("leaf.pem: good"), "{out}");
    let this_update = printed_time(&out, "This Update:")?;
    assert_eq!(
        last_modified,
        this_update.format(format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))?,
        "Last-Modified is the response's thisUpdate"
    );

    // Conditional GET.
    let (status, headers, empty) = get_raw(&url, Some(&etag)).await?;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(empty.is_empty(), "304 has no body");
    assert_eq!(header(&headers, ETAG.as_str()), Some(etag.as_str()));
    let (status, _, again) = get_raw(&url, Some("\"something-else\"")).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, body, "the pre-signed response is served again");

    // base64url without padding, and the well-known aliases.
    for url in [
        format!("{http}/ocsp/{}", URL_SAFE_NO_PAD.encode(&der)),
        format!(
            "{http}/ocsp/{}",
            url_encoded_base64(&der).trim_end_matches("%3D")
        ),
        format!("{http}/.well-known/pki/ocsp/{}", url_encoded_base64(&der)),
        format!("{}/ocsp/{}", pki.server.https, url_encoded_base64(&der)),
    ] {
        let client = if url.starts_with("https") {
            pki.server.client.clone()
        } else {
            plain()
        };
        let response = client.get(&url).send().await?;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(response.bytes().await?.to_vec(), body, "{url}");
    }
    // A client that leaves base64's `/` unencoded: a nonce of 0xff octets puts `///` in it.
    let cert_id = authority::pki::ocsp::Request::parse(&der)?.cert_ids()[0].clone();
    let nonce = [0xff_u8; 16];
    let slashed = authority::pki::ocsp::request(&[cert_id], Some(&nonce))?;
    let raw = STANDARD
        .encode(&slashed)
        .replace('+', "%2B")
        .replace('=', "%3D");
    assert!(raw.contains('/'), "{raw}");
    for prefix in ["/ocsp/", "/.well-known/pki/ocsp/"] {
        let response = plain().get(format!("{http}{prefix}{raw}")).send().await?;
        assert_eq!(response.status(), StatusCode::OK, "{prefix}{raw}");
        let answer = response.bytes().await?;
        assert!(
            answer.windows(nonce.len()).any(|w| w == nonce),
            "the nonce comes back, so the split request was read whole"
        );
    }
    for (client, url) in [
        (plain(), format!("{http}/.well-known/pki/ocsp")),
        (plain(), format!("{http}/ocsp")),
        (
            pki.server.client.clone(),
            format!("{}/ocsp", pki.server.https),
        ),
        (
            pki.server.client.clone(),
            format!("{}/.well-known/pki/ocsp", pki.server.https),
        ),
    ] {
        let (status, headers, answer) =
            post_raw(&client, &url, Some(REQUEST_TYPE), der.clone()).await?;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert_eq!(
            header(&headers, "content-type"),
            Some(RESPONSE_TYPE),
            "{url}"
        );
        assert!(
            header(&headers, CACHE_CONTROL.as_str()).is_none(),
            "{url}: POST answers are not for shared caches"
        );
        std::fs::write(pki.path("post.der"), &answer)?;
        let out = ssl(
            dir,
            &[
                &[
                    "ocsp",
                    "-respin",
                    "post.der",
                    "-CAfile",
                    "chain.pem",
                    "-no_nonce",
                ],
                &leaf[..],
            ]
            .concat(),
        )
        .await?;
        assert_verified(&out);
        assert!(out.contains("leaf.pem: good"), "{url}: {out}");
    }

    // Answers for one asker (a nonce, several certificates) carry no caching headers.
    let with_nonce = pki.request("nonce.der", &leaf).await?;
    let two = pki
        .request(
            "two.der",
            &[&leaf[..], &["-cert", "other.pem", "-no_nonce"]].concat(),
        )
        .await?;
    for (name, request) in [("nonce", with_nonce), ("two CertIDs", two)] {
        let (status, headers, answer) = get_raw(
            &format!("{http}/ocsp/{}", url_encoded_base64(&request)),
            None,
        )
        .await?;
        assert_eq!(status, StatusCode::OK, "{name}");
        for h in [CACHE_CONTROL, ETAG, LAST_MODIFIED] {
            assert!(headers.get(&h).is_none(), "{name}: {h} on a private answer");
        }
        std::fs::write(pki.path("private.der"), &answer)?;
        let out = ssl(
            dir,
            &[
                "ocsp",
                "-respin",
                "private.der",
                "-CAfile",
                "chain.pem",
                "-resp_text",
                "-no_nonce",
                "-issuer",
                "issuing.pem",
                "-cert",
                "leaf.pem",
            ],
        )
        .await?;
        assert!(out.contains("Response verify OK"), "{name}: {out}");
        assert!(out.contains("leaf.pem: good"), "{name}: {out}");
    }
    pki.server.stop().await;
    Ok(())
}

/// What is not a readable OCSP request gets `malformedRequest` (never a 500), what names an
/// issuer we do not serve gets `unauthorized`; a wrong media type 415, an oversize body 413.
#[tokio::test]
async fn bad_requests_get_ocsp_error_statuses() -> TestResult {
    let pki = Pki::start().await?;
    pki.issue("leaf").await?;
    let url = pki.url();
    let client = plain();
    let real = pki
        .request("req.der", &["-issuer", "issuing.pem", "-cert", "leaf.pem"])
        .await?;
    assert!(
        real.len() > 60,
        "a request with a nonce: {} bytes",
        real.len()
    );

    let mut bodies: Vec<(String, Vec<u8>)> = vec![
        ("garbage".into(), b"this is not DER at all".to_vec()),
        ("empty".into(), Vec::new()),
        ("a bare SEQUENCE".into(), vec![0x30, 0x00]),
        ("trailing bytes".into(), [&real[..], &[0x00][..]].concat()),
        (
            "a second request appended".into(),
            [&real[..], &real[..]].concat(),
        ),
    ];
    for len in (0..real.len()).step_by(7).chain([real.len() - 1]) {
        bodies.push((format!("truncated to {len}"), real[..len].to_vec()));
    }
    for (name, body) in &bodies {
        let (status, headers, answer) =
            post_raw(&client, &url, Some(REQUEST_TYPE), body.clone()).await?;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(
            header(&headers, "content-type"),
            Some(RESPONSE_TYPE),
            "{name}"
        );
        assert_eq!(answer, MALFORMED, "{name}");
    }
    std::fs::write(pki.path("malformed.der"), MALFORMED)?;
    let (_, out) = run(
        pki.dir.path(),
        &["ocsp", "-respin", "malformed.der", "-resp_text"],
    )
    .await?;
    assert!(out.contains("malformedrequest"), "{out}");

    // The GET form: base64 that does not decode, and base64 of garbage.
    for encoded in ["!!!", "%21%21%21", "bm90IGFuIE9DU1AgcmVxdWVzdA%3D%3D"] {
        let (status, headers, answer) = get_raw(&format!("{url}/{encoded}"), None).await?;
        assert_eq!(status, StatusCode::OK, "{encoded}");
        assert_eq!(answer, MALFORMED, "{encoded}");
        assert!(headers.get(CACHE_CONTROL).is_none(), "{encoded}");
    }

    // Not an OCSP request at all.
    for content_type in [Some("application/json"), Some("text/plain"), None] {
        let (status, _, _) = post_raw(&client, &url, content_type, real.clone()).await?;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type {content_type:?}"
        );
    }
    let (status, _, _) = post_raw(&client, &url, Some(REQUEST_TYPE), vec![0x30; 20 * 1024]).await?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Media type parameters and case are tolerated.
    let (status, _, answer) = post_raw(
        &client,
        &url,
        Some("Application/OCSP-Request; charset=binary"),
        real.clone(),
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(answer, MALFORMED);

    // An issuer this responder does not serve.
    pki.unrelated_ca().await?;
    let foreign = pki
        .request(
            "foreign.der",
            &["-issuer", "other.pem", "-serial", "0x01", "-no_nonce"],
        )
        .await?;
    let (status, _, answer) = post_raw(&client, &url, Some(REQUEST_TYPE), foreign.clone()).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, UNAUTHORIZED);
    let (status, headers, answer) =
        get_raw(&format!("{url}/{}", url_encoded_base64(&foreign)), None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, UNAUTHORIZED);
    assert!(headers.get(CACHE_CONTROL).is_none());
    let out = pki
        .ocsp(&["-issuer", "other.pem", "-serial", "0x01"])
        .await?;
    assert!(out.contains("Responder Error: unauthorized"), "{out}");

    // None of it broke anything.
    let stats = pki.stats().await?;
    assert_eq!(stat(&stats, "internal_error"), 0, "{stats}");
    let out = pki
        .ocsp(&["-issuer", "issuing.pem", "-cert", "leaf.pem"])
        .await?;
    assert_verified(&out);
    assert!(out.contains("leaf.pem: good"), "{out}");
    pki.server.stop().await;
    Ok(())
}

/// The admin view: counters that follow what was asked, each CA's responder, readable with
/// read:cas (a viewer), not without credentials.
#[tokio::test]
async fn admins_see_the_responder_status_and_counters() -> TestResult {
    let pki = Pki::start().await?;
    pki.issue("leaf").await?;
    pki.unrelated_ca().await?;
    let url = pki.url();
    let client = plain();
    let good = pki
        .request(
            "good.der",
            &["-issuer", "issuing.pem", "-cert", "leaf.pem", "-no_nonce"],
        )
        .await?;
    let foreign = pki
        .request(
            "foreign.der",
            &["-issuer", "other.pem", "-serial", "0x01", "-no_nonce"],
        )
        .await?;

    let before = pki.stats().await?;
    for _ in 0..2 {
        let (status, _, answer) = post_raw(&client, &url, Some(REQUEST_TYPE), good.clone()).await?;
        assert_eq!(status, StatusCode::OK);
        assert!(answer.len() > 100, "a signed response");
    }
    let (_, _, answer) = post_raw(&client, &url, Some(REQUEST_TYPE), b"junk".to_vec()).await?;
    assert_eq!(answer, MALFORMED);
    let (_, _, answer) = post_raw(&client, &url, Some(REQUEST_TYPE), foreign).await?;
    assert_eq!(answer, UNAUTHORIZED);
    let after = pki.stats().await?;
    let delta = |name: &str| stat(&after, name) - stat(&before, name);
    assert_eq!(delta("requests"), 4, "{before} -> {after}");
    assert_eq!(delta("good"), 2, "{before} -> {after}");
    assert_eq!(delta("revoked"), 0);
    assert_eq!(delta("unknown"), 0);
    assert_eq!(delta("malformed_request"), 1, "{before} -> {after}");
    assert_eq!(delta("unauthorized"), 1, "{before} -> {after}");
    assert_eq!(stat(&after, "internal_error"), 0);
    assert_eq!(
        delta("cache_misses"),
        1,
        "the first asking: {before} -> {after}"
    );
    assert_eq!(delta("cache_hits"), 1, "the second: {before} -> {after}");
    assert!(stat(&after, "signed") >= 1, "{after}");
    let hits = stat(&after, "cache_hits") as f64;
    let rate = hits / (hits + stat(&after, "cache_misses") as f64);
    let reported = after["cache_hit_rate"].as_f64().ok_or("cache_hit_rate")?;
    assert!((reported - rate).abs() < 1e-9, "{reported} vs {rate}");

    // A revoked and an unknown answer count too.
    let b = pki.issue("b").await?;
    pki.revoke(b, "keyCompromise").await?;
    let out = pki
        .ocsp(&[
            "-issuer",
            "issuing.pem",
            "-cert",
            "b.pem",
            "-serial",
            "0x99",
        ])
        .await?;
    assert!(
        out.contains("b.pem: revoked") && out.contains("0x99: unknown"),
        "{out}"
    );
    let last = pki.stats().await?;
    assert_eq!(
        stat(&last, "revoked") - stat(&after, "revoked"),
        1,
        "{last}"
    );
    assert_eq!(
        stat(&last, "unknown") - stat(&after, "unknown"),
        1,
        "{last}"
    );
    assert_eq!(
        stat(&last, "requests") - stat(&after, "requests"),
        1,
        "{last}"
    );

    let (status, body) = pki
        .get_api("/api/v2/ocsp/status", &Auth::Session(&pki.admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["url"], url.as_str(), "{data}");
    assert!(
        data["cached_responses"].as_u64().ok_or("cached")? >= 1,
        "{data}"
    );
    let cas = data["cas"].as_array().ok_or("cas")?;
    assert_eq!(cas.len(), 2, "{data}");
    let now = pki.server.clock.now();
    for (ca_id, name) in [
        (pki.root_id, "certmint Root CA"),
        (pki.issuing_id, "certmint Issuing CA"),
    ] {
        let ca = cas
            .iter()
            .find(|c| c["ca_id"] == ca_id)
            .ok_or_else(|| format!("CA {ca_id} missing: {data}"))?;
        assert_eq!(ca["ca_name"], name, "{ca}");
        assert_eq!(ca["ocsp_enabled"], true, "{ca}");
        assert_eq!(ca["signer"], "delegated", "{ca}");
        assert_eq!(ca["validity_hours"], 24, "{ca}");
        let serial = ca["responder_serial"]
            .as_str()
            .ok_or_else(|| format!("{ca}"))?;
        assert!(
            serial.len() >= 16 && serial.chars().all(|c| c.is_ascii_hexdigit()),
            "{ca}"
        );
        let until = OffsetDateTime::parse(
            ca["responder_valid_until"].as_str().ok_or("valid until")?,
            &time::format_description::well_known::Rfc3339,
        )?;
        assert!(
            (until - (now + time::Duration::days(30))).abs() < time::Duration::hours(1),
            "a 30-day responder certificate: {ca}"
        );
        let id = ca["responder_certificate_id"]
            .as_i64()
            .ok_or_else(|| format!("no responder certificate: {ca}"))?;
        let (status, cert) = pki
            .get_api(
                &format!("/api/v2/certificates/{id}"),
                &Auth::Session(&pki.admin),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{cert}");
        assert_eq!(
            cert["data"]["common_name"],
            format!("{name} OCSP Responder"),
            "{cert}"
        );
        assert_eq!(cert["data"]["serial_number"], serial, "{cert}");
    }
    let issuing = cas
        .iter()
        .find(|c| c["ca_id"] == pki.issuing_id)
        .ok_or("issuing")?;
    assert!(
        issuing["stored_responses"].as_i64().ok_or("stored")? >= 1,
        "the leaf's pre-signed response is stored: {issuing}"
    );

    // read:cas suffices; no credentials do not.
    pki.server.user(&pki.admin, "vera", "viewer").await;
    let viewer = pki
        .server
        .login("vera", crate::common::ADMIN_PASSWORD)
        .await;
    for path in ["/api/v2/ocsp/status", "/api/v2/ocsp/stats"] {
        let (status, body) = pki.get_api(path, &Auth::Session(&viewer)).await;
        assert_eq!(status, StatusCode::OK, "viewer {path}: {body}");
        assert!(body["data"].is_object(), "{body}");
        let (status, _) = pki.get_api(path, &Auth::None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    pki.server.stop().await;
    Ok(())
}

/// A responder certificate with less than ten days left is replaced by a new one at the next
/// request; responses are then signed by it and still verify.
#[tokio::test]
async fn the_responder_certificate_rolls_over() -> TestResult {
    let mut pki = Pki::start().await?;
    pki.issue("leaf").await?;
    let dir = pki.dir.path();
    let leaf = ["-issuer", "issuing.pem", "-cert", "leaf.pem", "-resp_text"];

    let out = pki.ocsp(&leaf).await?;
    assert_verified(&out);
    assert!(out.contains("leaf.pem: good"), "{out}");
    let first = included_cert_serial(dir, &out).await?;
    let status = pki.ca_status(pki.issuing_id).await?;
    assert_eq!(status["responder_serial"], first.as_str(), "{status}");
    let first_id = status["responder_certificate_id"].clone();

    pki.server.clock.advance(time::Duration::days(21));
    // The admin session has expired by the clock: log in again.
    pki.admin = pki.server.admin().await;
    tokio::time::sleep(RELOAD).await;
    // openssl checks the responder certificate against the real time, and the new one starts
    // 21 days from now: verify at the server's (manual) time instead. The response's times
    // are 21 days ahead too: a validity period (leeway) of 22 days lets openssl take them.
    let at = pki.server.clock.now().unix_timestamp().to_string();
    let leeway = (22 * 86_400).to_string();
    for extra in [&[][..], &["-no_nonce"][..]] {
        let args = [
            &leaf[..],
            extra,
            &["-attime", &at, "-validity_period", &leeway],
        ]
        .concat();
        let out = pki.ocsp(&args).await?;
        assert_verified(&out);
        assert!(out.contains("leaf.pem: good"), "{extra:?}: {out}");
        let second = included_cert_serial(dir, &out).await?;
        assert_ne!(
            second, first,
            "{extra:?}: still signed by the old responder"
        );
        let status = pki.ca_status(pki.issuing_id).await?;
        assert_eq!(status["responder_serial"], second.as_str(), "{status}");
        assert_ne!(status["responder_certificate_id"], first_id, "{status}");
        let until = OffsetDateTime::parse(
            status["responder_valid_until"]
                .as_str()
                .ok_or("valid until")?,
            &time::format_description::well_known::Rfc3339,
        )?;
        let expected = pki.server.clock.now() + time::Duration::days(30);
        assert!(
            (until - expected).abs() < time::Duration::hours(1),
            "the new responder certificate runs 30 days from the clock: {status}"
        );
    }
    pki.server.stop().await;
    Ok(())
}

/// A node that serves only the responder: OCSP answers, the API is not there.
#[tokio::test]
async fn an_ocsp_only_node_answers_ocsp_and_nothing_else() -> TestResult {
    let server = TestServer::start_with(|s| s.serve_only = vec!["ocsp".into()]).await;
    let dir = tempfile::tempdir()?;
    let cas = server.raw_store().await.cas().await?;
    let mut chain = String::new();
    let mut refid = String::new();
    for name in ["certmint Issuing CA", "certmint Root CA"] {
        let ca = cas
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| format!("no CA '{name}'"))?;
        chain.push_str(&pem(&ca.cert.der));
        if name == "certmint Issuing CA" {
            std::fs::write(dir.path().join("issuing.pem"), pem(&ca.cert.der))?;
            refid.clone_from(&ca.refid);
        }
    }
    std::fs::write(dir.path().join("chain.pem"), chain)?;

    for path in [
        "/api/v2/cas",
        "/api/v2/ocsp/status",
        &format!("/ca/{refid}.pem"),
    ] {
        let response = plain().get(format!("{}{path}", server.http)).send().await?;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            header(response.headers(), certmint_server::UNROUTED_HEADER),
            Some("1"),
            "{path}"
        );
    }
    let response = server.client.get(server.url("/api/v2/cas")).send().await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = plain()
        .get(format!("{}/health", server.http))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);

    let url = format!("{}/ocsp", server.http);
    let out = run(
        dir.path(),
        &[
            "ocsp",
            "-url",
            &url,
            "-CAfile",
            "chain.pem",
            "-issuer",
            "issuing.pem",
            "-serial",
            "0x1234",
            "-timeout",
            "20",
        ],
    )
    .await?
    .1;
    assert_verified(&out);
    assert!(out.contains("0x1234: unknown"), "{out}");
    server.stop().await;
    Ok(())
}

/// `-serial` arguments for `count` serials, 0x1001 on.
fn serials(count: usize) -> Vec<String> {
    (0..count)
        .flat_map(|i| ["-serial".to_owned(), format!("0x{:x}", 0x1001 + i)])
        .collect()
}

/// More CertIDs than a request may name are `malformedRequest`, found while parsing: no
/// certificate is looked up or answered. As many as allowed are answered; a GET URL longer
/// than any OCSP request is refused with 414 before it is decoded.
#[tokio::test]
async fn more_certificates_than_allowed_are_malformed_before_any_lookup() -> TestResult {
    let pki = Pki::start().await?;
    let url = pki.url();
    let client = plain();
    let max = authority::pki::ocsp::MAX_CERT_IDS;
    let ask = |file: &'static str, count: usize| {
        let args: Vec<String> = ["-issuer", "issuing.pem", "-no_nonce"]
            .iter()
            .map(|a| (*a).to_owned())
            .chain(serials(count))
            .collect();
        let pki = &pki;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            pki.request(file, &args).await
        }
    };
    let too_many = ask("too_many.der", max + 1).await?;
    let before = pki.stats().await?;
    let (status, _, answer) = post_raw(&client, &url, Some(REQUEST_TYPE), too_many.clone()).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, MALFORMED, "{} CertIDs were answered", max + 1);
    let (_, _, answer) = get_raw(&format!("{url}/{}", url_encoded_base64(&too_many)), None).await?;
    assert_eq!(answer, MALFORMED);
    let after = pki.stats().await?;
    let delta = |name: &str| stat(&after, name) - stat(&before, name);
    assert_eq!(delta("malformed_request"), 2, "{before} -> {after}");
    for untouched in ["unknown", "good", "cache_misses", "signed"] {
        assert_eq!(delta(untouched), 0, "{untouched}: {before} -> {after}");
    }

    let most = ask("most.der", max).await?;
    let (_, _, answer) = post_raw(&client, &url, Some(REQUEST_TYPE), most).await?;
    assert!(answer.len() > 100, "{max} CertIDs are answered: {answer:?}");
    let last = pki.stats().await?;
    assert_eq!(
        stat(&last, "unknown") - stat(&after, "unknown"),
        max as u64,
        "{last}"
    );

    let (status, _, _) = get_raw(&format!("{url}/{}", "A".repeat(30_000)), None).await?;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    pki.server.stop().await;
    Ok(())
}

/// Asking about many serials never issued keeps at most `ocsp_cached_unknown` of their
/// answers in memory, and pushes out none of the answers for issued certificates.
#[tokio::test]
async fn the_unknown_serial_cache_stays_at_its_cap() -> TestResult {
    let pki = Pki::start_with(|s| s.ocsp_cached_unknown = 8).await?;
    pki.issue("leaf").await?;
    let url = pki.url();
    let client = plain();
    let leaf = pki
        .request(
            "leaf.der",
            &["-issuer", "issuing.pem", "-cert", "leaf.pem", "-no_nonce"],
        )
        .await?;
    let (_, _, first) = post_raw(&client, &url, Some(REQUEST_TYPE), leaf.clone()).await?;
    assert!(first.len() > 100, "{first:?}");

    let before = pki.stats().await?;
    for i in 0..40u32 {
        let serial = [&[0x42][..], &i.to_be_bytes()].concat();
        let request = pki.request_for_serial(&serial)?;
        let (status, _, answer) = post_raw(&client, &url, Some(REQUEST_TYPE), request).await?;
        assert_eq!(status, StatusCode::OK);
        assert!(answer.len() > 100, "serial {i}: {answer:?}");
        let kept = pki.authority()?.ocsp_cached_unknown();
        assert!(
            kept <= 8,
            "{kept} unknown answers kept after {} serials",
            i + 1
        );
    }
    let after = pki.stats().await?;
    assert_eq!(stat(&after, "unknown") - stat(&before, "unknown"), 40);
    assert!(pki.authority()?.ocsp_cached_unknown() >= 4);
    let (status, body) = pki
        .get_api("/api/v2/ocsp/status", &Auth::Session(&pki.admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cached = body["data"]["cached_responses"].as_u64().ok_or("cached")?;
    assert!(cached <= 9, "{cached} responses in memory");

    // The issued certificate's answer is still served from memory.
    let (_, _, again) = post_raw(&client, &url, Some(REQUEST_TYPE), leaf).await?;
    assert_eq!(again, first);
    let last = pki.stats().await?;
    assert_eq!(
        stat(&last, "cache_hits") - stat(&after, "cache_hits"),
        1,
        "{after} -> {last}"
    );
    pki.server.stop().await;
    Ok(())
}

/// With every signing thread busy and the signing queue full, pre-signed answers are served
/// at once, while requests that need a signature (a nonce, a serial never issued) get
/// `tryLater` at once; once the pool frees up they are signed again.
#[tokio::test]
async fn a_saturated_signing_pool_still_serves_presigned_answers() -> TestResult {
    let pki = Pki::start_with(|s| {
        s.ocsp_signing_threads = 1;
        s.ocsp_signing_queue = 1;
    })
    .await?;
    pki.issue("leaf").await?;
    let url = pki.url();
    let client = plain();
    let presigned = pki
        .request(
            "leaf.der",
            &["-issuer", "issuing.pem", "-cert", "leaf.pem", "-no_nonce"],
        )
        .await?;
    let with_nonce = pki
        .request(
            "nonce.der",
            &["-issuer", "issuing.pem", "-cert", "leaf.pem"],
        )
        .await?;
    let unknown = pki.request_for_serial(&[0x42; 16])?;
    let (_, _, first) = post_raw(&client, &url, Some(REQUEST_TYPE), presigned.clone()).await?;
    assert!(first.len() > 100, "{first:?}");

    // Fill the one signing thread and the one place in the queue with jobs that wait.
    let pool = pki.authority()?.ocsp_signing();
    let mut release = Vec::new();
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let admission = pool.admit()?;
        jobs.push(tokio::spawn(admission.run(move || {
            let _ = rx.recv();
        })));
        release.push(tx);
    }
    assert_eq!(pool.free_places(), 0);

    let started = Instant::now();
    let (_, _, answer) = post_raw(&client, &url, Some(REQUEST_TYPE), presigned.clone()).await?;
    assert_eq!(answer, first, "the pre-signed answer");
    let (status, _, answer) =
        get_raw(&format!("{url}/{}", url_encoded_base64(&presigned)), None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, first);
    for (name, request) in [("nonce", &with_nonce), ("unknown serial", &unknown)] {
        let (status, _, answer) =
            post_raw(&client, &url, Some(REQUEST_TYPE), request.clone()).await?;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(answer, TRY_LATER, "{name}");
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    let out = pki
        .ocsp(&["-issuer", "issuing.pem", "-cert", "leaf.pem"])
        .await?;
    assert!(out.contains("Responder Error: trylater"), "{out}");
    let stats = pki.stats().await?;
    assert!(stat(&stats, "try_later") >= 3, "{stats}");

    drop(release);
    for job in jobs {
        job.await??;
    }
    let out = pki
        .ocsp(&["-issuer", "issuing.pem", "-cert", "leaf.pem"])
        .await?;
    assert_verified(&out);
    assert!(out.contains("leaf.pem: good"), "{out}");
    pki.server.stop().await;
    Ok(())
}
