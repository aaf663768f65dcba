//! `/tools`: decoding what people paste, made by the real `openssl`.

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
