//! `/tools`: decoding what people paste, made by the real `openssl`.

use std::time::Duration;

use certmint_server::Settings;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Auth, TestResult, TestServer, openssl};

#[tokio::test]
async fn certificates_and_csrs_made_by_openssl_are_decoded() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let dir = tempfile::tempdir()?;
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-nodes",
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
            "-days",
            "30",
            "-subj",
            "/O=Tools/CN=tools.example.test",
            "-addext",
            "subjectAltName=DNS:tools.example.test,IP:192.0.2.1",
        ],
    )?;
    openssl(
        dir.path(),
        &["x509", "-in", "c.pem", "-text", "-out", "c.txt"],
    )?;
    let text = std::fs::read_to_string(dir.path().join("c.txt"))?;
    assert!(text.contains("Certificate:"), "text around the block");
    let (status, cert) = server
        .call(
            Method::POST,
            "/api/v2/tools/decode-cert",
            &auth,
            Some(json!({"pem": text})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cert}");
    let d = &cert["data"];
    assert_eq!(d["subject"], "CN=tools.example.test,O=Tools");
    assert_eq!(d["self_signed"], true);
    assert_eq!(d["key_type"], "EC P-384");
    assert_eq!(d["san"], json!(["dns:tools.example.test", "ip:192.0.2.1"]));
    assert_eq!(d["fingerprint_sha256"].as_str().map(str::len), Some(64));

    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "r.key",
            "-out",
            "r.csr",
            "-subj",
            "/CN=csr.example.test",
            "-addext",
            "subjectAltName=DNS:csr.example.test",
            "-addext",
            "extendedKeyUsage=clientAuth",
        ],
    )?;
    let pem = std::fs::read_to_string(dir.path().join("r.csr"))?;
    let (status, csr) = server
        .call(
            Method::POST,
            "/api/v2/tools/decode-csr",
            &auth,
            Some(json!({"pem": pem})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{csr}");
    assert_eq!(csr["data"]["subject"], "CN=csr.example.test");
    assert_eq!(csr["data"]["key_type"], "RSA 2048");
    assert_eq!(csr["data"]["san"], json!(["dns:csr.example.test"]));
    assert_eq!(csr["data"]["extended_key_usage"], json!(["clientAuth"]));
    assert_eq!(
        csr["data"]["signature_algorithm"],
        "sha256WithRSAEncryption"
    );

    for (path, pem, needle) in [
        (
            "/api/v2/tools/decode-cert",
            "hello".to_owned(),
            "no CERTIFICATE",
        ),
        ("/api/v2/tools/decode-cert", pem.clone(), "no CERTIFICATE"),
        (
            "/api/v2/tools/decode-csr",
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                .to_owned(),
            "not a valid PKCS#10",
        ),
        (
            "/api/v2/tools/decode-csr",
            text.clone(),
            "no CERTIFICATE REQUEST",
        ),
    ] {
        let (status, body) = server
            .call(Method::POST, path, &auth, Some(json!({"pem": pem})))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .contains(needle),
            "{path}: {body}"
        );
    }
    Ok(())
}

/// Makes, in `dir`, an EC key k1.pem with a self-signed certificate c1.pem and a CSR r1.csr, an
/// RSA key k2.pem with its own certificate c2.pem, and k1 encrypted as k1-enc.pem.
fn keys_and_certificates(dir: &std::path::Path) -> Result<(), String> {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "k1.pem",
        ],
    )?;
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "k2.pem",
        ],
    )?;
    for (key, cert, cn) in [
        ("k1.pem", "c1.pem", "/CN=one.tools.test"),
        ("k2.pem", "c2.pem", "/CN=two.tools.test"),
    ] {
        openssl(
            dir,
            &[
                "req", "-x509", "-key", key, "-out", cert, "-days", "30", "-subj", cn,
            ],
        )?;
    }
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "k1.pem",
            "-out",
            "r1.csr",
            "-subj",
            "/CN=one.tools.test",
        ],
    )?;
    openssl(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "k1.pem",
            "-out",
            "k1-enc.pem",
            "-passout",
            "pass:key secret",
        ],
    )?;
    Ok(())
}

fn read(dir: &std::path::Path, name: &str) -> std::io::Result<String> {
    std::fs::read_to_string(dir.join(name))
}

#[tokio::test]
async fn match_keys_tells_pairs_that_belong_together() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let dir = tempfile::tempdir()?;
    keys_and_certificates(dir.path())?;
    let (c1, k1, r1, c2, k2, k1_enc) = (
        read(dir.path(), "c1.pem")?,
        read(dir.path(), "k1.pem")?,
        read(dir.path(), "r1.csr")?,
        read(dir.path(), "c2.pem")?,
        read(dir.path(), "k2.pem")?,
        read(dir.path(), "k1-enc.pem")?,
    );
    let compare = |body: serde_json::Value| {
        let server = &server;
        let auth = &auth;
        async move {
            server
                .call(Method::POST, "/api/v2/tools/match-keys", auth, Some(body))
                .await
        }
    };

    let (status, body) = compare(json!({"certificate": c1, "private_key": k1})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!({"matches": true, "certificate_matches_key": true,
               "certificate_matches_csr": null, "key_matches_csr": null})
    );
    let (_, body) = compare(json!({"certificate": c1, "private_key": k2})).await;
    assert_eq!(body["data"]["matches"], false, "{body}");
    assert_eq!(body["data"]["certificate_matches_key"], false);
    let (_, body) = compare(json!({"certificate": c2, "private_key": k2, "csr": ""})).await;
    assert_eq!(
        body["data"]["matches"], true,
        "RSA, and a blank field is absent: {body}"
    );
    let (_, body) = compare(json!({"certificate": c1, "private_key": k1, "csr": r1})).await;
    assert_eq!(
        body["data"],
        json!({"matches": true, "certificate_matches_key": true,
               "certificate_matches_csr": true, "key_matches_csr": true})
    );
    let (_, body) = compare(json!({"certificate": c2, "csr": r1})).await;
    assert_eq!(body["data"]["certificate_matches_csr"], false, "{body}");
    let (status, body) =
        compare(json!({"certificate": c1, "private_key": k1_enc, "password": "key secret"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["matches"], true);

    for (request, needle) in [
        (json!({"certificate": c1}), "at least two"),
        (json!({"certificate": c1, "csr": "  "}), "at least two"),
        (
            json!({"certificate": c1, "private_key": k1_enc}),
            "private_key: the private key is encrypted",
        ),
        (
            json!({"certificate": c1, "private_key": k1_enc, "password": "wrong"}),
            "private_key: cannot decrypt",
        ),
        (
            json!({"certificate": "garbage", "private_key": k1}),
            "no CERTIFICATE PEM block",
        ),
        (
            json!({"certificate": c1, "csr": c2}),
            "csr: no CERTIFICATE REQUEST",
        ),
    ] {
        let (status, body) = compare(request.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{request}: {body}"
        );
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(needle)),
            "{needle}: {body}"
        );
    }
    let (status, _) = compare(json!({"certificate": c1, "key": k1})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "unknown field");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn convert_between_pem_der_pkcs7_and_pkcs12_as_openssl_reads_them() -> TestResult {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as BASE64;

    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let dir = tempfile::tempdir()?;
    let path = dir.path();
    keys_and_certificates(path)?;
    let (c1, k1, c2) = (
        read(path, "c1.pem")?,
        read(path, "k1.pem")?,
        read(path, "c2.pem")?,
    );
    let convert = |query: &'static str, body: serde_json::Value| {
        let server = &server;
        let auth = &auth;
        async move {
            server
                .request(
                    Method::POST,
                    &format!("/api/v2/tools/convert{query}"),
                    auth,
                    Some(body),
                )
                .await
        }
    };
    let json_of = |response: reqwest::Response| async move {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        (status, body)
    };

    // PEM → DER → PEM.
    let (status, der) =
        json_of(convert("", json!({"pem": c1, "output_format": "der"})).await).await;
    assert_eq!(status, StatusCode::OK, "{der}");
    assert_eq!(der["data"]["encoding"], "base64");
    let der_bytes = BASE64.decode(der["data"]["data"].as_str().ok_or("data")?)?;
    openssl(
        path,
        &["x509", "-in", "c1.pem", "-outform", "DER", "-out", "c1.der"],
    )?;
    assert_eq!(der_bytes, std::fs::read(path.join("c1.der"))?);
    let (status, pem) = json_of(
        convert(
            "",
            json!({"pem": der["data"]["data"], "input_type": "der", "output_format": "pem"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pem}");
    assert_eq!(pem["data"]["encoding"], "text");
    assert_eq!(pem["data"]["data"], c1.as_str());

    // PEM certificate and key → PKCS#12, opened by openssl.
    let response = convert(
        "?download=true",
        json!({"pem": c1, "private_key": k1, "chain": c2, "output_format": "pkcs12",
               "password": "p12 secret"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok()),
        Some("attachment; filename=\"converted.p12\"")
    );
    std::fs::write(path.join("out.p12"), response.bytes().await?)?;
    let info = openssl(
        path,
        &[
            "pkcs12",
            "-info",
            "-in",
            "out.p12",
            "-passin",
            "pass:p12 secret",
            "-nodes",
        ],
    )?;
    assert!(info.contains("BEGIN PRIVATE KEY"), "{info}");
    assert!(info.contains("friendlyName: one.tools.test"), "{info}");
    assert_eq!(info.matches("BEGIN CERTIFICATE").count(), 2, "{info}");
    assert!(info.contains("two.tools.test"), "the chain: {info}");

    // PKCS#12 made by openssl → PEM holds its certificate and key.
    openssl(
        path,
        &[
            "pkcs12",
            "-export",
            "-in",
            "c1.pem",
            "-inkey",
            "k1.pem",
            "-out",
            "in.p12",
            "-passout",
            "pass:export pw",
        ],
    )?;
    let p12 = BASE64.encode(std::fs::read(path.join("in.p12"))?);
    let (status, pem) = json_of(
        convert(
            "",
            json!({"pem": p12, "input_type": "pkcs12", "pkcs12_password": "export pw",
                   "output_format": "pem"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pem}");
    let text = pem["data"]["data"].as_str().ok_or("PEM")?;
    assert!(text.starts_with(&c1), "{text}");
    let key = &text[c1.len()..];
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{text}");
    let (_, matched) = server
        .call(
            Method::POST,
            "/api/v2/tools/match-keys",
            &auth,
            Some(json!({"certificate": c1, "private_key": key})),
        )
        .await;
    assert_eq!(matched["data"]["matches"], true, "{matched}");

    // A PEM chain → PKCS#7, read by openssl; the key it cannot hold is left out, and said so.
    let response = convert(
        "?download=true",
        json!({"pem": format!("{c1}{c2}"), "output_format": "p7b"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    std::fs::write(path.join("out.p7b"), response.bytes().await?)?;
    let printed = openssl(
        path,
        &["pkcs7", "-inform", "DER", "-in", "out.p7b", "-print_certs"],
    )?;
    assert_eq!(printed.matches("BEGIN CERTIFICATE").count(), 2, "{printed}");
    for name in ["one.tools.test", "two.tools.test"] {
        assert!(printed.contains(name), "{printed}");
    }
    let (status, p7) = json_of(
        convert(
            "",
            json!({"pem": format!("{c1}{k1}"), "output_format": "pkcs7"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{p7}");
    assert_eq!(
        p7["message"],
        "left out 1 private key: pkcs7 does not hold them"
    );

    let p12_body = |password: Option<&str>| {
        let mut body = json!({"pem": p12, "output_format": "pem"});
        if let Some(p) = password {
            body["pkcs12_password"] = json!(p);
        }
        body
    };
    for (body, needle) in [
        (p12_body(Some("not it")), "wrong PKCS#12 password"),
        (p12_body(None), "needs a password"),
        (
            json!({"pem": c1, "output_format": "jks"}),
            "unknown output_format 'jks'",
        ),
        (
            json!({"pem": c1, "input_type": "xml", "output_format": "der"}),
            "unknown input_type 'xml'",
        ),
        (json!({"pem": c1}), "missing field `output_format`"),
        (
            json!({"pem": "hello!", "output_format": "pem"}),
            "pem: not valid base64",
        ),
        (
            json!({"pem": "aGVsbG8gd29ybGQ=", "output_format": "pem"}),
            "pem: not a certificate, PKCS#7, PKCS#12 or CSR",
        ),
        (
            json!({"pem": c1, "input_type": "der", "output_format": "pem"}),
            "pem: not valid base64",
        ),
        (
            json!({"pem": c1, "private_key": k1, "output_format": "pkcs12"}),
            "pkcs12 needs a password",
        ),
        (
            json!({"pem": c2, "private_key": k1, "output_format": "pkcs12", "password": "pw"}),
            "belongs to none of the certificates",
        ),
        (
            json!({"pem": format!("{c1}{c2}"), "output_format": "der"}),
            "der holds one certificate or one CSR, and the input has 2 certificates",
        ),
        (
            json!({"pem": c1, "chain": "not PEM", "output_format": "pem"}),
            "chain:",
        ),
    ] {
        let (status, answer) = json_of(convert("", body.clone()).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle)),
            "{needle}: {answer}"
        );
    }
    server.stop().await;
    Ok(())
}

/// A test server on a runtime of its own with two workers, as on the two-core machines certmint
/// runs on. Work that blocks those workers cannot stop the test's own runtime and clock, so a
/// test fails rather than hangs; the runtime is dropped without waiting for what blocks it.
struct Isolated {
    server: Option<TestServer>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Isolated {
    async fn start(configure: impl FnOnce(&mut Settings) + Send + 'static) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("server runtime");
        let server = runtime
            .spawn(TestServer::start_with(configure))
            .await
            .expect("server start");
        Self {
            server: Some(server),
            runtime: Some(runtime),
        }
    }

    fn server(&self) -> &TestServer {
        self.server.as_ref().expect("server")
    }

    /// Stops the server as SIGTERM does, on its own runtime.
    async fn stop(mut self) {
        let (Some(server), Some(runtime)) = (self.server.take(), self.runtime.as_ref()) else {
            return;
        };
        runtime.spawn(server.stop()).await.expect("stop");
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Checks `/api/v2/health` every 100 ms until `done` is set, each answer within a second.
async fn health_answers_until(server: &TestServer, done: &std::sync::atomic::AtomicBool) {
    let mut probes = 0;
    while probes < 3 || !done.load(std::sync::atomic::Ordering::SeqCst) {
        let probe = server.request(Method::GET, "/api/v2/health", &Auth::None, None);
        let response = tokio::time::timeout(Duration::from_secs(1), probe)
            .await
            .expect("health answers within a second while key work runs");
        assert_eq!(response.status(), StatusCode::OK);
        probes += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `work` beside health probes, which go on until it is done.
async fn with_health_probes<T>(server: &TestServer, work: impl Future<Output = T>) -> T {
    let done = std::sync::atomic::AtomicBool::new(false);
    let work = async {
        let out = tokio::time::timeout(Duration::from_secs(120), work)
            .await
            .expect("the requests are answered within two minutes");
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        out
    };
    let (out, ()) = tokio::join!(work, health_answers_until(server, &done));
    out
}

/// An encrypted PKCS#8 key asking for 4,294,967,295 PBKDF2-HMAC-SHA256 iterations, its
/// ciphertext random: the limit must refuse it before any derivation.
fn key_asking_for_billions_of_iterations() -> String {
    use pkcs8::der::EncodePem;
    use pkcs8::pkcs5::pbes2;
    let kdf = pbes2::Pbkdf2Params {
        salt: &[1; 16],
        iteration_count: u32::MAX,
        key_length: None,
        prf: pbes2::Pbkdf2Prf::HmacWithSha256,
    };
    let params = pbes2::Parameters {
        kdf: kdf.into(),
        encryption: pbes2::EncryptionScheme::Aes256Cbc { iv: &[2; 16] },
    };
    pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: params.into(),
        encrypted_data: &[0x5a; 64],
    }
    .to_pem(pkcs8::LineEnding::LF)
    .expect("PEM")
}

#[tokio::test]
async fn a_key_asking_for_billions_of_iterations_is_refused_while_health_answers() -> TestResult {
    let isolated = Isolated::start(|_| {}).await;
    let server = isolated.server();
    let admin = server.admin().await;
    let (_, api_key) = server.api_key(&admin, &["read:certificates"]).await;
    let certificate = rcgen::generate_simple_self_signed(vec!["tools.example.test".into()])?;
    let body = json!({
        "certificate": certificate.cert.pem(),
        "private_key": key_asking_for_billions_of_iterations(),
        "password": "correct horse",
    });
    let auth = Auth::Bearer(&api_key);
    let post = || {
        server.call(
            Method::POST,
            "/api/v2/tools/match-keys",
            &auth,
            Some(body.clone()),
        )
    };
    let answers = with_health_probes(server, async {
        tokio::join!(post(), post(), post(), post())
    })
    .await;
    for (status, body) in [answers.0, answers.1, answers.2, answers.3] {
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            body["message"],
            "private_key: encrypted private key: iteration count 4294967295 is over the limit \
             of 10000000"
        );
    }
    isolated.stop().await;
    Ok(())
}

#[tokio::test]
async fn slow_key_work_beyond_the_pool_is_refused_and_health_keeps_answering() -> TestResult {
    let isolated = Isolated::start(|s| {
        s.cpu_workers = 1;
        s.cpu_queue = 1;
    })
    .await;
    let server = isolated.server();
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let rsa_4096 = |n: usize| {
        server.call(
            Method::POST,
            "/api/v2/csrs",
            &auth,
            Some(json!({"common_name": format!("slow{n}.example.test"),
                        "key_algorithm": "RSA", "key_size": 4096})),
        )
    };
    let answers = with_health_probes(server, async {
        tokio::join!(
            rsa_4096(1),
            rsa_4096(2),
            rsa_4096(3),
            rsa_4096(4),
            rsa_4096(5),
            rsa_4096(6)
        )
    })
    .await;
    let answers = [
        answers.0, answers.1, answers.2, answers.3, answers.4, answers.5,
    ];
    let made = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    let busy: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    // One worker and one place in the queue: at least one key is made, and what finds the pool
    // full is told to come back rather than made to wait.
    assert!(made >= 1, "{answers:?}");
    assert!(busy.len() >= 2, "{answers:?}");
    assert_eq!(made + busy.len(), answers.len(), "{answers:?}");
    for (_, body) in busy {
        assert_eq!(
            body["message"],
            "the server is busy with other key work; retry after 2 seconds"
        );
    }
    isolated.stop().await;
    Ok(())
}

/// A TLS server on an ephemeral port of 127.0.0.1 presenting a chain of two certificates
/// (`ssl-check.test` and `127.0.0.1`, issued by a test root); it completes handshakes and
/// closes. Returns its port and the root's subject.
async fn tls_server() -> TestResult<(u16, tokio::task::JoinHandle<()>)> {
    use std::sync::Arc;

    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let mut root = CertificateParams::new(Vec::<String>::new())?;
    root.distinguished_name
        .push(DnType::CommonName, "SSL Check Test Root");
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root = CertifiedIssuer::self_signed(root, KeyPair::generate()?)?;
    let mut leaf =
        CertificateParams::new(vec!["ssl-check.test".to_owned(), "127.0.0.1".to_owned()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "ssl-check.test");
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf.signed_by(&leaf_key, &root)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone(), root.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    )?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let serving = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
            });
        }
    });
    Ok((port, serving))
}

#[tokio::test]
async fn check_ssl_refuses_internal_addresses_by_default() -> TestResult {
    let (port, serving) = tls_server().await?;
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    for hostname in [
        "127.0.0.1",
        "localhost",
        "10.1.2.3",
        "169.254.169.254",
        "::1",
    ] {
        let (status, body) = server
            .call(
                Method::POST,
                "/api/v2/tools/check-ssl",
                &auth,
                Some(json!({"hostname": hostname, "port": port})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{hostname}: {body}"
        );
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("does not connect to"),
            "{hostname}: {message}"
        );
        assert!(
            !message.contains("127.0.0.1:") || hostname == "127.0.0.1",
            "{message}"
        );
    }
    for (input, status) in [
        (
            json!({"hostname": "", "port": 443}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"hostname": "a.test", "port": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"hostname": "a.test", "port": 70000}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"host": "a.test"}), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (got, body) = server
            .call(
                Method::POST,
                "/api/v2/tools/check-ssl",
                &auth,
                Some(input.clone()),
            )
            .await;
        assert!(
            got == status || got == StatusCode::BAD_REQUEST,
            "{input}: {got} {body}"
        );
    }
    serving.abort();
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn check_ssl_reports_the_chain_a_server_presents() -> TestResult {
    let (port, serving) = tls_server().await?;
    let server =
        TestServer::start_with(|s: &mut Settings| s.tools.allow_private_addresses = true).await;
    let admin = server.admin().await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/tools/check-ssl",
            &Auth::Session(&admin),
            Some(json!({"hostname": "127.0.0.1", "port": port})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["hostname"], "127.0.0.1");
    assert_eq!(data["port"], port);
    assert_eq!(data["subject"], "CN=ssl-check.test");
    assert_eq!(data["issuer"], "CN=SSL Check Test Root");
    assert_eq!(data["common_name"], "ssl-check.test");
    assert_eq!(data["san"], json!(["dns:ssl-check.test", "ip:127.0.0.1"]));
    assert_eq!(data["hostname_matches"], true);
    assert_eq!(data["chain_valid"], true);
    assert_eq!(data["expired"], false);
    assert!(
        data["days_remaining"].as_i64().is_some_and(|d| d > 300),
        "{data}"
    );
    assert!(data["valid_until"].is_string());
    assert_eq!(data["protocol"], "TLSv1.3");
    assert!(
        data["cipher_suite"]
            .as_str()
            .is_some_and(|s| s.starts_with("TLS13_")),
        "{data}"
    );
    let chain = data["chain"].as_array().ok_or("chain")?;
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1]["subject"], "CN=SSL Check Test Root");
    assert_eq!(chain[1]["is_ca"], true);

    // Past the certificates' end (by the server's clock), the same chain is reported expired
    // and no longer valid.
    server.clock.advance(time::Duration::days(2200 * 365));
    let admin = server.admin().await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/tools/check-ssl",
            &Auth::Session(&admin),
            Some(json!({"hostname": "127.0.0.1", "port": port})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["expired"], true, "{body}");
    assert_eq!(body["data"]["chain_valid"], false, "{body}");
    assert!(
        body["data"]["days_remaining"]
            .as_i64()
            .is_some_and(|d| d < 0),
        "{body}"
    );

    // A port where nothing listens is a clear refusal, not a server error.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let closed_port = closed.local_addr()?.port();
    drop(closed);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/tools/check-ssl",
            &Auth::Session(&admin),
            Some(json!({"hostname": "127.0.0.1", "port": closed_port})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    serving.abort();
    server.stop().await;
    Ok(())
}
