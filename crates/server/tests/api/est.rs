//! EST (RFC 7030), driven by the real `curl` and `openssl` (there is no EST client package):
//! the CA certificates, enrollment with HTTP Basic and with a TLS client certificate (and the
//! certificates refused: another CA's, revoked, expired), re-enrollment, server-side key
//! generation, labels with their own CA and credentials, bad input of every kind (a 4xx, never
//! a certificate), and the admin settings and statistics. A reqwest client does the same
//! enrollment and re-enrollment from Rust.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use certmint_server::Settings;

use crate::common::{Auth, Session, TestResult, TestServer, openssl};

const DEVICE_USER: &str = "device";
const DEVICE_PASSWORD: &str = "device enrollment secret";
const LAB_USER: &str = "lab";
const LAB_PASSWORD: &str = "lab enrollment secret";
const CHALLENGE: &str = "Basic realm=\"certmint EST\"";

/// What curl got back.
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// The response headers, lower-cased.
    pub(crate) headers: String,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A server for EST clients, with a directory for curl and openssl. [`Est::start`] turns EST
/// on: the default endpoint (the default CA, device credentials) and the label `lab` (the
/// root CA, the TLS Client template, its own credentials).
pub(crate) struct Est {
    pub(crate) server: TestServer,
    pub(crate) admin: Session,
    dir: tempfile::TempDir,
    pub(crate) default_ca: i64,
    pub(crate) root_ca: i64,
    /// The TLS Client template.
    pub(crate) tls_client: i64,
}

impl Est {
    async fn start() -> TestResult<Self> {
        Self::start_with(|_| {}).await
    }

    async fn start_with(configure: impl FnOnce(&mut Settings)) -> TestResult<Self> {
        let est = Self::around(TestServer::start_with(configure).await).await?;
        let (status, body) = est
            .patch_config(json!({
                "enabled": true,
                "username": DEVICE_USER,
                "password": DEVICE_PASSWORD,
                "labels": [{
                    "label": "lab",
                    "ca_id": est.root_ca,
                    "template_id": est.tls_client,
                    "username": LAB_USER,
                    "password": LAB_PASSWORD,
                }],
            }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Ok(est)
    }

    /// `server` with EST as it starts (off, no credentials, no labels).
    pub(crate) async fn around(server: TestServer) -> TestResult<Self> {
        let admin = server.admin().await;
        let dir = tempfile::tempdir()?;
        std::fs::copy(
            server._data_dir.path().join("tls/server.crt"),
            dir.path().join("server.crt"),
        )?;
        let (_, cas) = server
            .call(Method::GET, "/api/v2/cas", &Auth::Session(&admin), None)
            .await;
        let cas = cas["data"].as_array().ok_or("CA list")?.clone();
        let ca = |wanted: &dyn Fn(&Value) -> bool| {
            cas.iter()
                .find(|c| wanted(c))
                .and_then(|c| c["id"].as_i64())
                .ok_or("no such CA")
        };
        let default_ca = ca(&|c| c["is_default"] == true)?;
        let root_ca = ca(&|c| c["name"] == "certmint Root CA")?;
        assert_ne!(default_ca, root_ca, "the default CA is the issuing CA");
        let (_, templates) = server
            .call(
                Method::GET,
                "/api/v2/templates",
                &Auth::Session(&admin),
                None,
            )
            .await;
        let tls_client = templates["data"]
            .as_array()
            .and_then(|all| all.iter().find(|t| t["name"] == "TLS Client"))
            .and_then(|t| t["id"].as_i64())
            .ok_or("TLS Client template")?;
        Ok(Self {
            server,
            admin,
            dir,
            default_ca,
            root_ca,
            tls_client,
        })
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn patch_config(&self, body: Value) -> (StatusCode, Value) {
        self.server
            .call(
                Method::PATCH,
                "/api/v2/est/config",
                &Auth::Session(&self.admin),
                Some(body),
            )
            .await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.server
            .call(Method::GET, path, &Auth::Session(&self.admin), None)
            .await
    }

    /// Runs curl against `url` with `args` (the server's certificate trusted).
    pub(crate) fn curl_url(&self, url: &str, args: &[&str]) -> TestResult<Answer> {
        // The server answers on this runtime's other worker while curl runs.
        let out = tokio::task::block_in_place(|| {
            Command::new("curl")
                .args(["-sS", "--max-time", "30", "--cacert", "server.crt"])
                .args([
                    "-o",
                    "answer.bin",
                    "-D",
                    "headers.txt",
                    "-w",
                    "%{http_code}",
                ])
                .args(args)
                .arg(url)
                .current_dir(self.dir.path())
                .output()
        })
        .map_err(|e| format!("the curl command is required for this test: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let status = stdout.trim().parse().map_err(|_| {
            format!(
                "curl {args:?} {url}: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        Ok(Answer {
            status,
            headers: std::fs::read_to_string(self.path("headers.txt"))?.to_lowercase(),
            body: std::fs::read(self.path("answer.bin")).unwrap_or_default(),
        })
    }

    /// Runs curl against the EST path `path` over HTTPS.
    fn curl(&self, path: &str, args: &[&str]) -> TestResult<Answer> {
        self.curl_url(&self.server.url(&format!("/.well-known/est/{path}")), args)
    }

    /// POSTs the base64 CSR in file `csr` to the EST path `path`, with `args`.
    pub(crate) fn post(&self, path: &str, csr: &str, args: &[&str]) -> TestResult<Answer> {
        let data = format!("@{csr}");
        let mut all = vec![
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            data.as_str(),
        ];
        all.extend_from_slice(args);
        self.curl(path, &all)
    }

    pub(crate) fn openssl(&self, args: &[&str]) -> TestResult<String> {
        Ok(openssl(self.dir.path(), args)?)
    }

    /// Makes `{name}.key` (EC P-256) and `{name}.csr.b64` (base64 DER, as EST sends it) for
    /// `cn` with `dns` names.
    pub(crate) fn csr(&self, name: &str, cn: &str, dns: &[&str]) -> TestResult<String> {
        let key = format!("{name}.key");
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key,
        ])?;
        self.csr_for_key(name, &key, cn, dns)
    }

    /// Makes `{name}.csr.b64` for the existing key `key`.
    fn csr_for_key(&self, name: &str, key: &str, cn: &str, dns: &[&str]) -> TestResult<String> {
        let der = format!("{name}.csr.der");
        let b64 = format!("{name}.csr.b64");
        let subject = format!("/CN={cn}");
        let mut args = vec![
            "req", "-new", "-key", key, "-subj", &subject, "-outform", "DER", "-out", &der,
        ];
        let sans = dns
            .iter()
            .map(|d| format!("DNS:{d}"))
            .collect::<Vec<_>>()
            .join(",");
        let ext = format!("subjectAltName={sans}");
        if !dns.is_empty() {
            args.extend(["-addext", &ext]);
        }
        self.openssl(&args)?;
        self.openssl(&["base64", "-in", &der, "-out", &b64])?;
        Ok(b64)
    }

    /// Decodes a certs-only PKCS#7 answer (base64) into `{name}.crt`, PEM, and returns it.
    fn certificates(&self, answer: &Answer, name: &str) -> TestResult<String> {
        let b64 = format!("{name}.p7.b64");
        let der = format!("{name}.p7");
        let pem = format!("{name}.crt");
        std::fs::write(self.path(&b64), &answer.body)?;
        self.openssl(&["base64", "-d", "-in", &b64, "-out", &der])?;
        self.openssl(&[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            &der,
            "-print_certs",
            "-out",
            &pem,
        ])?;
        Ok(std::fs::read_to_string(self.path(&pem))?)
    }

    /// Enrolls `cn` at `path` with `args`; the answer must be 200. Leaves `{name}.key` and
    /// `{name}.crt`.
    pub(crate) fn enroll(&self, path: &str, name: &str, cn: &str, args: &[&str]) -> TestResult<()> {
        let csr = self.csr(name, cn, &[cn])?;
        let answer = self.post(path, &csr, args)?;
        assert_eq!(answer.status, 200, "{path} for {cn}: {}", answer.text());
        assert!(
            answer
                .headers
                .contains("content-type: application/pkcs7-mime; smime-type=certs-only"),
            "{}",
            answer.headers
        );
        self.certificates(&answer, name)?;
        Ok(())
    }

    /// Writes the chain of the endpoint at `prefix` (`""` or `lab/`) to `{name}.crt`.
    pub(crate) fn ca_file(&self, prefix: &str, name: &str) -> TestResult<()> {
        let answer = self.curl(&format!("{prefix}cacerts"), &[])?;
        assert_eq!(answer.status, 200, "{}", answer.text());
        self.certificates(&answer, name)?;
        Ok(())
    }

    /// The inventory's row for the certificate with common name `cn`.
    pub(crate) async fn stored(&self, cn: &str) -> TestResult<Value> {
        let (status, body) = self.get(&format!("/api/v2/certificates?search={cn}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let rows = body["data"].as_array().ok_or("certificate list")?;
        let mut matching = rows.iter().filter(|r| r["common_name"] == cn);
        let row = matching
            .next()
            .ok_or(format!("no certificate for {cn}"))?
            .clone();
        Ok(row)
    }

    async fn inventory_total(&self) -> TestResult<i64> {
        let (_, body) = self.get("/api/v2/certificates?per_page=1").await;
        Ok(body["meta"]["total"].as_i64().ok_or("total")?)
    }
}

fn basic(user: &str, password: &str) -> String {
    format!("{user}:{password}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_fetches_the_ca_certificates_and_enrolls_with_a_password() -> TestResult {
    let t = Est::start().await?;
    // cacerts: base64 certs-only PKCS#7 of the default CA's chain, no credentials needed.
    let answer = t.curl("cacerts", &[])?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        answer
            .headers
            .contains("content-type: application/pkcs7-mime")
    );
    let chain = t.certificates(&answer, "ca")?;
    assert_eq!(
        chain.matches("BEGIN CERTIFICATE").count(),
        2,
        "issuing CA and root: {chain}"
    );
    assert!(chain.contains("certmint Root CA"), "{chain}");
    // The same through a pipe, as the README shows it.
    let piped = Command::new("sh")
        .arg("-c")
        .arg("openssl base64 -d -in ca.p7.b64 | openssl pkcs7 -inform DER -print_certs")
        .current_dir(t.dir.path())
        .output()?;
    assert!(piped.status.success());
    assert_eq!(String::from_utf8_lossy(&piped.stdout), chain);

    // simpleenroll with HTTP Basic; the certificate verifies against the CA chain.
    let user = basic(DEVICE_USER, DEVICE_PASSWORD);
    t.enroll(
        "simpleenroll",
        "dev1",
        "dev1.example.test",
        &["--user", &user],
    )?;
    let verified = t.openssl(&["verify", "-CAfile", "ca.crt", "dev1.crt"])?;
    assert!(verified.contains("dev1.crt: OK"), "{verified}");
    let subject = t.openssl(&[
        "x509",
        "-in",
        "dev1.crt",
        "-noout",
        "-subject",
        "-ext",
        "subjectAltName",
    ])?;
    assert!(subject.contains("dev1.example.test"), "{subject}");
    // The key is the CSR's.
    let from_cert = t.openssl(&["x509", "-in", "dev1.crt", "-noout", "-pubkey"])?;
    let from_key = t.openssl(&["pkey", "-in", "dev1.key", "-pubout"])?;
    assert_eq!(from_cert, from_key);

    let row = t.stored("dev1.example.test").await?;
    assert_eq!(row["source"], "est", "{row}");
    assert_eq!(row["ca_id"], t.default_ca, "{row}");
    let id = row["id"].as_i64().ok_or("id")?;
    let (status, one) = t.get(&format!("/api/v2/certificates/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["data"]["source"], "est", "{one}");
    assert!(
        one["data"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("simpleenroll") && d.contains(DEVICE_USER)),
        "{one}"
    );
    // Audited under the endpoint.
    let auth = Auth::Session(&t.admin);
    assert_eq!(
        t.server
            .audit_total(&auth, "action=certificate_issued&username=est:default")
            .await,
        1
    );

    // csrattrs: the default endpoint has no template, so nothing is asked; a label whose
    // template allows P-384 keys only and requires a SAN asks for both, in DER openssl reads.
    assert_eq!(t.curl("csrattrs", &[])?.status, 204);
    let (status, template) = t
        .server
        .call(
            Method::POST,
            "/api/v2/templates",
            &Auth::Session(&t.admin),
            Some(
                json!({"name": "P-384 services", "key_algorithm": "EC", "curve": "P-384",
                        "allowed_key_types": ["EC P-384"], "require_san": true}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{template}");
    let labels = json!({"labels": [
        {"label": "lab", "ca_id": t.root_ca, "username": LAB_USER},
        {"label": "p384", "template_id": template["data"]["id"]},
    ]});
    let (status, body) = t.patch_config(labels).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let attrs = t.curl("p384/csrattrs", &[])?;
    assert_eq!(attrs.status, 200, "{}", attrs.text());
    assert!(attrs.headers.contains("content-type: application/csrattrs"));
    std::fs::write(t.path("attrs.b64"), &attrs.body)?;
    t.openssl(&["base64", "-d", "-in", "attrs.b64", "-out", "attrs.der"])?;
    let parsed = t.openssl(&["asn1parse", "-inform", "DER", "-in", "attrs.der"])?;
    for needle in [
        "id-ecPublicKey",
        "secp384r1",
        "X509v3 Subject Alternative Name",
    ] {
        assert!(parsed.contains(needle), "{needle}: {parsed}");
    }
    t.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_from_the_endpoints_ca_enroll_and_others_are_refused() -> TestResult {
    let t = Est::start().await?;
    let user = basic(DEVICE_USER, DEVICE_PASSWORD);
    let lab_user = basic(LAB_USER, LAB_PASSWORD);
    t.enroll(
        "simpleenroll",
        "client",
        "client.example.test",
        &["--user", &user],
    )?;
    t.enroll(
        "lab/simpleenroll",
        "other",
        "other.example.test",
        &["--user", &lab_user],
    )?;
    t.enroll(
        "simpleenroll",
        "doomed",
        "doomed.example.test",
        &["--user", &user],
    )?;
    let before = t.inventory_total().await?;

    // A certificate of the default CA enrolls at the default endpoint, without a password.
    let csr = t.csr("next", "next.example.test", &["next.example.test"])?;
    let answer = t.post(
        "simpleenroll",
        &csr,
        &["--cert", "client.crt", "--key", "client.key"],
    )?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let row = t.stored("next.example.test").await?;
    assert!(
        row["description"]
            .as_str()
            .is_some_and(|d| d.contains("client.example.test")),
        "the client certificate is named: {row}"
    );

    // One from another CA (the label's), a revoked one, and (below) an expired one are not.
    let refused = |answer: &Answer, what: &str| {
        assert_eq!(answer.status, 403, "{what}: {}", answer.text());
        assert!(!answer.text().contains("BEGIN"), "{what}");
    };
    let csr = t.csr("x", "x.example.test", &["x.example.test"])?;
    let answer = t.post(
        "simpleenroll",
        &csr,
        &["--cert", "other.crt", "--key", "other.key"],
    )?;
    refused(&answer, "another CA's certificate");
    assert!(
        answer.text().contains("not issued by CA"),
        "{}",
        answer.text()
    );
    let doomed = t.stored("doomed.example.test").await?["id"]
        .as_i64()
        .ok_or("id")?;
    let (status, body) = t
        .server
        .call(
            Method::POST,
            &format!("/api/v2/certificates/{doomed}/revoke"),
            &Auth::Session(&t.admin),
            Some(json!({"reason": "keyCompromise"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = t.post(
        "simpleenroll",
        &csr,
        &["--cert", "doomed.crt", "--key", "doomed.key"],
    )?;
    refused(&answer, "a revoked certificate");
    assert!(answer.text().contains("revoked"), "{}", answer.text());
    // A refused certificate with a good password still enrolls: the password authenticates.
    let answer = t.post(
        "simpleenroll",
        &csr,
        &[
            "--cert",
            "doomed.crt",
            "--key",
            "doomed.key",
            "--user",
            &user,
        ],
    )?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(t.inventory_total().await?, before + 2);

    // Past the client certificate's validity (the server's clock; curl still trusts the
    // listener's certificate), it is refused.
    t.server.clock.advance(time::Duration::days(400));
    let answer = t.post(
        "simpleenroll",
        &csr,
        &["--cert", "client.crt", "--key", "client.key"],
    )?;
    refused(&answer, "an expired certificate");
    assert!(answer.text().contains("expired"), "{}", answer.text());
    // The admin's session ended with the jump too.
    let admin = t.server.admin().await;
    let (_, list) = t
        .server
        .call(
            Method::GET,
            "/api/v2/certificates?per_page=1",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(list["meta"]["total"], before + 2, "{list}");
    t.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reenrollment_keeps_the_subject_and_names_and_records_what_it_renewed() -> TestResult {
    let t = Est::start().await?;
    let user = basic(DEVICE_USER, DEVICE_PASSWORD);
    t.enroll(
        "simpleenroll",
        "old",
        "renew.example.test",
        &["--user", &user],
    )?;
    let old = t.stored("renew.example.test").await?["id"]
        .as_i64()
        .ok_or("id")?;
    let before = t.inventory_total().await?;
    let cert = ["--cert", "old.crt", "--key", "old.key"];

    // A CSR with another subject, or other SANs, is refused.
    let csr = t.csr("moved", "elsewhere.example.test", &["renew.example.test"])?;
    let answer = t.post("simplereenroll", &csr, &cert)?;
    assert_eq!(answer.status, 422, "{}", answer.text());
    assert!(answer.text().contains("subject"), "{}", answer.text());
    let csr = t.csr(
        "wider",
        "renew.example.test",
        &["renew.example.test", "extra.example.test"],
    )?;
    let answer = t.post("simplereenroll", &csr, &cert)?;
    assert_eq!(answer.status, 422, "{}", answer.text());
    assert!(
        answer.text().contains("subject alternative names"),
        "{}",
        answer.text()
    );
    // Without a client certificate, a password is not enough.
    let csr = t.csr("new", "renew.example.test", &["renew.example.test"])?;
    let answer = t.post("simplereenroll", &csr, &["--user", &user])?;
    assert_eq!(answer.status, 403, "{}", answer.text());
    assert_eq!(t.inventory_total().await?, before);

    // The same subject and SANs, a new key: renewed.
    let answer = t.post("simplereenroll", &csr, &cert)?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    t.certificates(&answer, "new")?;
    t.ca_file("", "ca")?;
    let verified = t.openssl(&["verify", "-CAfile", "ca.crt", "new.crt"])?;
    assert!(verified.contains("OK"), "{verified}");
    let (_, list) = t
        .get("/api/v2/certificates?search=renew.example.test")
        .await;
    let rows = list["data"].as_array().ok_or("list")?;
    assert_eq!(rows.len(), 2, "{list}");
    let renewal = rows.iter().find(|r| r["id"] != old).ok_or("the renewal")?;
    assert_eq!(renewal["renewed_from"], old, "{renewal}");
    assert_eq!(renewal["source"], "est", "{renewal}");
    let auth = Auth::Session(&t.admin);
    assert_eq!(
        t.server
            .audit_total(&auth, "action=certificate_renewed&username=est:default")
            .await,
        1
    );
    t.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serverkeygen_hands_over_a_key_that_matches_its_certificate() -> TestResult {
    let t = Est::start().await?;
    let user = basic(DEVICE_USER, DEVICE_PASSWORD);
    let csr = t.csr("kg", "keygen.example.test", &["keygen.example.test"])?;
    let answer = t.post("serverkeygen", &csr, &["--user", &user])?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        answer.headers.contains("cache-control: no-store"),
        "{}",
        answer.headers
    );
    let boundary = answer
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("content-type: multipart/mixed; boundary="))
        .ok_or("a multipart/mixed answer")?
        .trim()
        .to_owned();
    let text = answer.text();
    let mut parts = Vec::new();
    for part in text.split(&format!("--{boundary}")).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let (head, body) = part.split_once("\r\n\r\n").ok_or("a part with headers")?;
        let content_type = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Type: "))
            .ok_or("a part's type")?
            .to_owned();
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        parts.push((content_type, STANDARD.decode(compact)?));
    }
    assert_eq!(parts.len(), 2, "{text}");
    assert_eq!(parts[0].0, "application/pkcs8");
    assert_eq!(parts[1].0, "application/pkcs7-mime; smime-type=certs-only");
    std::fs::write(t.path("kg.key.der"), &parts[0].1)?;
    std::fs::write(t.path("kg.p7"), &parts[1].1)?;
    t.openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        "kg.p7",
        "-print_certs",
        "-out",
        "kg.crt",
    ])?;
    let from_key = t.openssl(&["pkey", "-inform", "DER", "-in", "kg.key.der", "-pubout"])?;
    let from_cert = t.openssl(&["x509", "-in", "kg.crt", "-noout", "-pubkey"])?;
    assert_eq!(from_key, from_cert);
    let from_csr_key = t.openssl(&["pkey", "-in", "kg.key", "-pubout"])?;
    assert_ne!(
        from_key, from_csr_key,
        "certmint made the key, not the client"
    );
    let row = t.stored("keygen.example.test").await?;
    assert_eq!(row["source"], "est");
    t.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_issues_from_its_own_ca_with_its_own_credentials() -> TestResult {
    let t = Est::start().await?;
    let user = basic(DEVICE_USER, DEVICE_PASSWORD);
    let lab_user = basic(LAB_USER, LAB_PASSWORD);
    t.enroll(
        "lab/simpleenroll",
        "lab1",
        "lab1.example.test",
        &["--user", &lab_user],
    )?;
    t.ca_file("lab/", "labca")?;
    let chain = std::fs::read_to_string(t.path("labca.crt"))?;
    assert_eq!(
        chain.matches("BEGIN CERTIFICATE").count(),
        1,
        "the root alone"
    );
    let verified = t.openssl(&["verify", "-CAfile", "labca.crt", "lab1.crt"])?;
    assert!(verified.contains("OK"), "{verified}");
    let row = t.stored("lab1.example.test").await?;
    assert_eq!(row["ca_id"], t.root_ca, "{row}");
    let eku = t.openssl(&[
        "x509",
        "-in",
        "lab1.crt",
        "-noout",
        "-ext",
        "extendedKeyUsage",
    ])?;
    assert!(
        eku.contains("Client Authentication"),
        "the TLS Client template: {eku}"
    );

    // One endpoint's credentials do not open the other.
    let before = t.inventory_total().await?;
    let csr = t.csr("cross", "cross.example.test", &["cross.example.test"])?;
    for (path, credentials) in [("lab/simpleenroll", &user), ("simpleenroll", &lab_user)] {
        let answer = t.post(path, &csr, &["--user", credentials])?;
        assert_eq!(answer.status, 401, "{path}: {}", answer.text());
        assert!(
            answer
                .headers
                .contains(&format!("www-authenticate: {}", CHALLENGE.to_lowercase()))
        );
    }
    // An unknown label is a 404.
    assert_eq!(t.curl("nowhere/cacerts", &[])?.status, 404);
    assert_eq!(
        t.post("nowhere/simpleenroll", &csr, &["--user", &user])?
            .status,
        404
    );
    assert_eq!(t.inventory_total().await?, before);
    t.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_and_never_a_certificate() -> TestResult {
    let t = Est::start().await?;
    let user = basic(DEVICE_USER, DEVICE_PASSWORD);
    let csr = t.csr("good", "good.example.test", &["good.example.test"])?;
    let before = t.inventory_total().await?;
    let mut cases: Vec<(&str, Answer, u16)> = Vec::new();

    std::fs::write(t.path("bad.b64"), "this is not base64 !!!\n")?;
    cases.push((
        "bad base64",
        t.post("simpleenroll", "bad.b64", &["--user", &user])?,
        400,
    ));
    std::fs::write(
        t.path("garbage.b64"),
        STANDARD.encode(b"\x30\x03garbage DER"),
    )?;
    cases.push((
        "garbage DER",
        t.post("simpleenroll", "garbage.b64", &["--user", &user])?,
        422,
    ));
    let mut der = std::fs::read(t.path("good.csr.der"))?;
    let last = der.len() - 1;
    der[last] ^= 0x55;
    std::fs::write(t.path("forged.b64"), STANDARD.encode(&der))?;
    cases.push((
        "a bad signature",
        t.post("simpleenroll", "forged.b64", &["--user", &user])?,
        422,
    ));
    let wrong = basic(DEVICE_USER, "not the password at all");
    cases.push((
        "a wrong password",
        t.post("simpleenroll", &csr, &["--user", &wrong])?,
        401,
    ));
    let stranger = basic("stranger", DEVICE_PASSWORD);
    cases.push((
        "a wrong user",
        t.post("simpleenroll", &csr, &["--user", &stranger])?,
        401,
    ));
    cases.push(("no credentials", t.post("simpleenroll", &csr, &[])?, 401));
    cases.push((
        "another media type",
        t.curl(
            "simpleenroll",
            &[
                "--user",
                &user,
                "-H",
                "Content-Type: text/plain",
                "--data-binary",
                &format!("@{csr}"),
            ],
        )?,
        415,
    ));
    let plain = t.server.http.clone();
    cases.push((
        "plain HTTP",
        t.curl_url(
            &format!("{plain}/.well-known/est/simpleenroll"),
            &[
                "--user",
                &user,
                "-H",
                "Content-Type: application/pkcs10",
                "--data-binary",
                &format!("@{csr}"),
            ],
        )?,
        403,
    ));
    cases.push((
        "plain HTTP cacerts",
        t.curl_url(&format!("{plain}/.well-known/est/cacerts"), &[])?,
        403,
    ));
    for (what, answer, status) in &cases {
        assert_eq!(answer.status, *status, "{what}: {}", answer.text());
        assert!(!answer.text().contains("BEGIN"), "{what}");
        if *status == 401 {
            assert!(
                answer
                    .headers
                    .contains(&format!("www-authenticate: {}", CHALLENGE.to_lowercase())),
                "{what}: {}",
                answer.headers
            );
        }
    }
    // A wrong password and a bad CSR are audited as refusals.
    let auth = Auth::Session(&t.admin);
    assert_eq!(
        t.server
            .audit_total(&auth, "action=est_enrollment_refused&username=est:default")
            .await,
        4,
        "bad base64 is refused before EST knows the caller; garbage DER, a bad signature \
         and two wrong credentials are audited"
    );

    // EST switched off: nothing is served.
    let (status, body) = t.patch_config(json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(t.curl("cacerts", &[])?.status, 404);
    assert_eq!(
        t.post("simpleenroll", &csr, &["--user", &user])?.status,
        404
    );
    assert_eq!(t.inventory_total().await?, before);
    let (status, _) = t.patch_config(json!({"enabled": true})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        t.post("simpleenroll", &csr, &["--user", &user])?.status,
        200
    );
    assert_eq!(t.inventory_total().await?, before + 1);
    t.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_settings_hide_passwords_check_their_values_and_count_enrollments() -> TestResult {
    let t = Est::start().await?;
    let (status, body) = t.get("/api/v2/est/config").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let config = &body["data"];
    assert_eq!(config["enabled"], true, "{config}");
    assert_eq!(config["username"], DEVICE_USER);
    assert_eq!(config["password_set"], true);
    assert_eq!(config["ca_id"], Value::Null, "the default CA");
    assert_eq!(config["url"], "/.well-known/est/");
    assert_eq!(config["labels"][0]["label"], "lab");
    assert_eq!(config["labels"][0]["ca_id"], t.root_ca);
    assert_eq!(config["labels"][0]["password_set"], true);
    assert_eq!(config["labels"][0]["url"], "/.well-known/est/lab/");
    let text = body.to_string();
    assert!(!text.contains("\"password\""), "{text}");
    assert!(
        !text.contains("argon2") && !text.contains(DEVICE_PASSWORD),
        "{text}"
    );

    // Values are checked; nothing changes on a refusal.
    for (patch, needle) in [
        (json!({"ca_id": 999_999}), "999999"),
        (json!({"template_id": 999_999}), "999999"),
        (json!({"password": "short"}), "password"),
        (json!({"username": "a:b"}), "':'"),
        (json!({"labels": [{"label": "default"}]}), "default"),
        (json!({"labels": [{"label": "a/b"}]}), "a/b"),
        (json!({"labels": [{"label": "x"}, {"label": "x"}]}), "twice"),
        (
            json!({"labels": [{"label": "x", "ca_id": 999_999}]}),
            "999999",
        ),
        (
            json!({"labels": [{"label": "x", "password": "a long enough password"}]}),
            "user name",
        ),
    ] {
        let (status, body) = t.patch_config(patch.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{patch}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(needle)),
            "{patch}: {body}"
        );
    }
    let (_, again) = t.get("/api/v2/est/config").await;
    assert_eq!(again["data"], body["data"], "unchanged");
    let (status, _) = t.patch_config(json!({"unknown": 1})).await;
    assert!(status.is_client_error());

    // A label listed without its password keeps it.
    let user = basic(DEVICE_USER, DEVICE_PASSWORD);
    let lab_user = basic(LAB_USER, LAB_PASSWORD);
    let labels = json!({"labels": [{"label": "lab", "ca_id": t.root_ca, "username": LAB_USER}]});
    let (status, body) = t.patch_config(labels).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["labels"][0]["password_set"], true, "{body}");
    let removed = json!({"labels": [{"label": "lab", "ca_id": t.root_ca, "username": LAB_USER,
                                     "password": null}]});
    let (status, body) = t.patch_config(removed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["labels"][0]["password_set"], false, "{body}");
    let restored = json!({"labels": [{"label": "lab", "ca_id": t.root_ca, "username": LAB_USER,
                                      "password": LAB_PASSWORD}]});
    let (status, body) = t.patch_config(restored).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Enrollments and refusals move the statistics.
    t.enroll("simpleenroll", "s1", "s1.example.test", &["--user", &user])?;
    t.enroll("simpleenroll", "s2", "s2.example.test", &["--user", &user])?;
    t.enroll(
        "lab/simpleenroll",
        "s3",
        "s3.example.test",
        &["--user", &lab_user],
    )?;
    let csr = t.csr("s4", "s4.example.test", &["s4.example.test"])?;
    let wrong = basic(LAB_USER, "certainly not it");
    assert_eq!(
        t.post("lab/simpleenroll", &csr, &["--user", &wrong])?
            .status,
        401
    );
    let (status, stats) = t.get("/api/v2/est/stats").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let s = &stats["data"];
    assert_eq!(s["enabled"], true);
    assert_eq!(s["issued"], 3, "{s}");
    assert_eq!(s["issued_last_24h"], 3, "{s}");
    assert_eq!(s["labels"][0]["label"], "default", "{s}");
    assert_eq!(s["labels"][0]["issued"], 2, "{s}");
    assert_eq!(s["labels"][0]["failures"], 0, "{s}");
    assert_eq!(s["labels"][1]["label"], "lab", "{s}");
    assert_eq!(s["labels"][1]["issued_last_24h"], 1, "{s}");
    assert_eq!(s["labels"][1]["failures_last_24h"], 1, "{s}");

    // A new password takes over at once; the old one is refused.
    let (status, body) = t
        .patch_config(json!({"password": "a brand new enrollment secret"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let csr = t.csr("s5", "s5.example.test", &["s5.example.test"])?;
    assert_eq!(
        t.post("simpleenroll", &csr, &["--user", &user])?.status,
        401
    );
    let fresh = basic(DEVICE_USER, "a brand new enrollment secret");
    assert_eq!(
        t.post("simpleenroll", &csr, &["--user", &fresh])?.status,
        200
    );
    let auth = Auth::Session(&t.admin);
    assert!(
        t.server
            .audit_total(&auth, "action=est_settings_updated")
            .await
            >= 3
    );

    // Viewers read, and cannot change; a key without read:est cannot even read.
    t.server.user(&t.admin, "vera", "viewer").await;
    let viewer = t.server.login("vera", crate::common::ADMIN_PASSWORD).await;
    let (status, _) = t
        .server
        .call(
            Method::GET,
            "/api/v2/est/config",
            &Auth::Session(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = t
        .server
        .call(
            Method::PATCH,
            "/api/v2/est/config",
            &Auth::Session(&viewer),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, key) = t.server.api_key(&t.admin, &["read:certificates"]).await;
    for method in [Method::GET, Method::PATCH] {
        let (status, _) = t
            .server
            .call(
                method,
                "/api/v2/est/config",
                &Auth::Bearer(&key),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    t.server.stop().await;
    Ok(())
}

/// The server's TLS certificate and a reqwest client trusting it, presenting `identity`.
fn client(dir: &Path, identity: Option<reqwest::Identity>) -> TestResult<reqwest::Client> {
    let ca = std::fs::read(dir.join("server.crt"))?;
    let mut builder =
        reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_pem(&ca)?]);
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    Ok(builder.build()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_client_enrolls_and_reenrolls() -> TestResult {
    use authority::pki::{DistinguishedName, KeyType, NameAttribute, PrivateKey, SubjectAltName};

    let t = Est::start().await?;
    let csr = |key: &PrivateKey| -> TestResult<String> {
        let mut subject = DistinguishedName::new();
        subject.set(NameAttribute::CommonName, "rust.example.test")?;
        let sans = [SubjectAltName::parse("dns:rust.example.test")?];
        let csr = authority::pki::csr::make(key, &subject, &sans)?;
        Ok(STANDARD.encode(csr.der))
    };
    let decode = |body: &str| -> TestResult<Vec<u8>> {
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let p7 = STANDARD.decode(compact)?;
        let bundle = authority::pki::bundle::read(&p7, None)?;
        Ok(bundle.certificates.first().ok_or("a certificate")?.clone())
    };

    let key = PrivateKey::generate(KeyType::EcP256)?;
    let plain = client(t.dir.path(), None)?;
    let answer = plain
        .post(t.server.url("/.well-known/est/simpleenroll"))
        .basic_auth(DEVICE_USER, Some(DEVICE_PASSWORD))
        .header("content-type", "application/pkcs10")
        .body(csr(&key)?)
        .send()
        .await?;
    assert_eq!(answer.status(), StatusCode::OK);
    let cert = decode(&answer.text().await?)?;

    let identity = format!(
        "{}{}",
        authority::pki::pem::encode("CERTIFICATE", &cert),
        key.to_pkcs8_pem().as_str()
    );
    let mtls = client(
        t.dir.path(),
        Some(reqwest::Identity::from_pem(identity.as_bytes())?),
    )?;
    let next = PrivateKey::generate(KeyType::EcP256)?;
    let answer = mtls
        .post(t.server.url("/.well-known/est/simplereenroll"))
        .header("content-type", "application/pkcs10")
        .body(csr(&next)?)
        .send()
        .await?;
    assert_eq!(answer.status(), StatusCode::OK);
    let renewed = decode(&answer.text().await?)?;
    assert_ne!(renewed, cert);
    let (_, list) = t.get("/api/v2/certificates?search=rust.example.test").await;
    let rows = list["data"].as_array().ok_or("list")?;
    assert_eq!(rows.len(), 2, "{list}");
    assert!(rows.iter().any(|r| !r["renewed_from"].is_null()), "{list}");
    // The same client without its certificate cannot re-enroll.
    let answer = plain
        .post(t.server.url("/.well-known/est/simplereenroll"))
        .basic_auth(DEVICE_USER, Some(DEVICE_PASSWORD))
        .header("content-type", "application/pkcs10")
        .body(csr(&next)?)
        .send()
        .await?;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    t.server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_est_only_node_serves_est_and_health_alone() -> TestResult {
    let server = TestServer::start_with(|s| s.serve_only = vec!["est".into()]).await;
    // No API to turn EST on with here: the settings are the database's, shared by every node.
    server
        .raw_store()
        .await
        .execute_raw("UPDATE est_config SET enabled = 1")
        .await?;
    let answer = server
        .client
        .get(server.url("/.well-known/est/cacerts"))
        .send()
        .await?;
    assert_eq!(answer.status(), StatusCode::OK, "{:?}", answer.headers());
    assert_eq!(
        answer.headers()["content-type"],
        "application/pkcs7-mime",
        "{:?}",
        answer.headers()
    );
    let health = server.client.get(server.url("/health")).send().await?;
    assert_eq!(health.status(), StatusCode::OK);
    for path in ["/api/v2/est/config", "/acme/directory", "/api/v2/cas"] {
        let answer = server.client.get(server.url(path)).send().await?;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            answer
                .headers()
                .get(certmint_server::UNROUTED_HEADER)
                .map(|v| v.as_bytes()),
            Some(&b"1"[..]),
            "{path}"
        );
    }
    server.stop().await;

    // And a node that does not serve EST has no such routes.
    let api_only = TestServer::start_with(|s| s.serve_only = vec!["api".into()]).await;
    let answer = api_only
        .client
        .get(api_only.url("/.well-known/est/cacerts"))
        .send()
        .await?;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert!(
        answer
            .headers()
            .contains_key(certmint_server::UNROUTED_HEADER)
    );
    api_only.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_limited_per_address() -> TestResult {
    let t = Est::start_with(|s| s.auth_rate_limit_per_minute = 3).await?;
    let user = basic(DEVICE_USER, DEVICE_PASSWORD);
    let csr = t.csr("rl", "rl.example.test", &["rl.example.test"])?;
    // Good passwords do not count: more enrollments than the limit go through.
    t.enroll("simpleenroll", "c1", "c1.example.test", &["--user", &user])?;
    for _ in 0..3 {
        assert_eq!(
            t.post("simpleenroll", &csr, &["--user", &user])?.status,
            200
        );
    }
    let wrong = basic(DEVICE_USER, "a guess that is wrong");
    for _ in 0..3 {
        assert_eq!(
            t.post("simpleenroll", &csr, &["--user", &wrong])?.status,
            401
        );
    }
    let before = t.inventory_total().await?;
    // Past the limit, the address is refused before any password is checked, the right one
    // included, until the window ends.
    for credentials in [&wrong, &user] {
        let answer = t.post("simpleenroll", &csr, &["--user", credentials])?;
        assert_eq!(answer.status, 429, "{}", answer.text());
        assert!(
            answer.headers.contains("retry-after:"),
            "{}",
            answer.headers
        );
    }
    assert_eq!(t.inventory_total().await?, before);
    // A client certificate is no password: it still enrolls.
    let answer = t.post(
        "simpleenroll",
        &csr,
        &["--cert", "c1.crt", "--key", "c1.key"],
    )?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let auth = Auth::Session(&t.admin);
    assert_eq!(
        t.server
            .audit_total(&auth, "action=est_enrollment_refused")
            .await,
        3,
        "only the checked guesses are audited"
    );
    t.server.stop().await;
    Ok(())
}
