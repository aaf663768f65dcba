//! Importing what openssl made: CA certificates become CAs (and issue, when their key comes
//! along), certificates link to their issuer, PKCS#12 files open with their password, and bad
//! files are refused with nothing written.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Auth, Session, TestResult, TestServer, openssl, post};

/// A root CA (`{name}-ca.pem`/`.key`) and a server certificate it issued
/// (`{name}-leaf.pem`/`.key`), made by openssl in `dir`.
fn openssl_hierarchy(dir: &Path, name: &str) -> TestResult {
    let (ca, ca_key) = (format!("{name}-ca.pem"), format!("{name}-ca.key"));
    let (leaf, leaf_key) = (format!("{name}-leaf.pem"), format!("{name}-leaf.key"));
    let csr = format!("{name}-leaf.csr");
    let ext = format!("{name}-leaf.ext");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-days",
            "365",
            "-subj",
            &format!("/CN={name} Root/O=Partner"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )?;
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &leaf_key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN=www.{name}.test"),
        ],
    )?;
    std::fs::write(
        dir.join(&ext),
        format!("subjectAltName=DNS:www.{name}.test\nextendedKeyUsage=serverAuth\n"),
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "90",
            "-extfile",
            &ext,
            "-out",
            &leaf,
        ],
    )?;
    Ok(())
}

fn read(dir: &Path, file: &str) -> TestResult<String> {
    Ok(std::fs::read_to_string(dir.join(file))?)
}

async fn counts(server: &TestServer, admin: &Session) -> (usize, i64) {
    let auth = Auth::Session(admin);
    let (_, cas) = server.call(Method::GET, "/api/v2/cas", &auth, None).await;
    let (_, certs) = server
        .call(Method::GET, "/api/v2/certificates/stats", &auth, None)
        .await;
    (
        cas["data"].as_array().map_or(0, Vec::len),
        certs["data"]["total"].as_i64().unwrap_or(-1),
    )
}

#[tokio::test]
async fn cas_and_certificates_made_by_openssl_import_and_link() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    openssl_hierarchy(d, "partner")?;
    openssl_hierarchy(d, "other")?;

    // A CA with its key, as JSON: it becomes a CA that can issue.
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/cas/import",
        json!({"certificate": read(d, "partner-ca.pem")?, "private_key": read(d, "partner-ca.key")?,
               "name": "Partner Root"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // One certificate in the file: the answer is the CA itself.
    let ca = &body["data"];
    assert_eq!(ca["name"], "Partner Root");
    assert_eq!(ca["ca_type"], "root");
    assert_eq!(ca["source"], "imported");
    assert_eq!(ca["has_private_key"], true);
    let partner = ca["id"].as_i64().ok_or("id")?;

    // A PKCS#12 with the server certificate, its key and the CA: the CA is known already,
    // the certificate links to it and keeps its key.
    openssl(
        d,
        &[
            "pkcs12",
            "-export",
            "-in",
            "partner-leaf.pem",
            "-inkey",
            "partner-leaf.key",
            "-certfile",
            "partner-ca.pem",
            "-passout",
            "pass:p12-secret",
            "-out",
            "partner.p12",
        ],
    )?;
    let p12 = std::fs::read(d.join("partner.p12"))?;
    let before = counts(&server, &admin).await;
    let (status, body) = server
        .upload(
            "/api/v2/certificates/import",
            &auth,
            p12.clone(),
            &[("password", "wrong-secret")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("wrong PKCS#12 password"),
        "{body}"
    );
    let (status, body) = server
        .upload("/api/v2/certificates/import", &auth, p12.clone(), &[])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(counts(&server, &admin).await, before);

    let (status, body) = server
        .upload(
            "/api/v2/certificates/import",
            &auth,
            p12,
            &[
                ("password", "p12-secret"),
                ("description", "from the partner"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cert = &body["data"]["certificates"][0];
    assert_eq!(cert["common_name"], "www.partner.test");
    assert_eq!(cert["ca_id"], partner);
    assert_eq!(cert["private_key_available"], true);
    assert_eq!(cert["source"], "imported");
    assert_eq!(cert["description"], "from the partner");
    assert_eq!(
        body["data"]["skipped"],
        json!(["O=Partner,CN=partner Root"])
    );
    assert_eq!(body["data"]["cas"], json!([]));
    let cert_id = cert["id"].as_i64().ok_or("id")?;
    let (status, _) = post(
        &server,
        &admin,
        &format!("/api/v2/certificates/{cert_id}/key"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // A PEM chain with an unknown CA, through /certificates/import: the CA is detected and
    // stored as a CA (without a key), and the certificate links to it.
    let chain = format!(
        "leaf:\n{}\nca:\n{}",
        read(d, "other-leaf.pem")?,
        read(d, "other-ca.pem")?
    );
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/certificates/import",
        json!({"certificate": chain}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let other_ca = &body["data"]["cas"][0];
    assert_eq!(other_ca["name"], "other Root");
    assert_eq!(other_ca["has_private_key"], false);
    assert_eq!(body["data"]["certificates"][0]["ca_id"], other_ca["id"]);

    // The imported CA with its key issues, and openssl verifies what it issued (once the
    // test clock, which stood still while openssl made the CA, has passed its notBefore).
    server.clock.advance(time::Duration::minutes(1));
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/certificates",
        json!({"common_name": "api.partner.test", "san": ["dns:api.partner.test"], "ca_id": partner, "validity_days": 30}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let issued = body["data"]["id"].as_i64().ok_or("id")?;
    let pem = server
        .request(
            Method::GET,
            &format!("/api/v2/certificates/{issued}/export"),
            &auth,
            None,
        )
        .await
        .bytes()
        .await?;
    std::fs::write(d.join("issued.pem"), pem)?;
    openssl(d, &["verify", "-CAfile", "partner-ca.pem", "issued.pem"])?;
    Ok(())
}

#[tokio::test]
async fn bad_imports_are_refused_and_write_nothing() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    openssl_hierarchy(d, "bad")?;
    openssl(
        d,
        &["genpkey", "-algorithm", "ed25519", "-out", "stray.key"],
    )?;
    let leaf = read(d, "bad-leaf.pem")?;
    let before = counts(&server, &admin).await;

    for (path, body, complaint) in [
        (
            "/api/v2/cas/import",
            json!({"certificate": leaf}),
            "not a CA certificate",
        ),
        (
            "/api/v2/certificates/import",
            json!({"certificate": leaf, "private_key": read(d, "stray.key")?}),
            "belong to none of its certificates",
        ),
        (
            "/api/v2/certificates/import",
            json!({"certificate": leaf.replace("-----END CERTIFICATE-----", "")}),
            "",
        ),
        (
            "/api/v2/certificates/import",
            json!({"certificate": "garbage"}),
            "",
        ),
        ("/api/v2/certificates/import", json!({}), "certificate"),
        (
            "/api/v2/certificates/import",
            json!({"certificate": read(d, "bad-leaf.csr")?}),
            "/csrs/import",
        ),
    ] {
        let (status, reply) = post(&server, &admin, path, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {reply}");
        let message = reply["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty() && message.contains(complaint),
            "{body}: {message}"
        );
    }
    let truncated = std::fs::read(d.join("bad-leaf.pem"))?;
    let (status, reply) = server
        .upload(
            "/api/v2/certificates/import",
            &auth,
            truncated[..truncated.len() / 2].to_vec(),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(counts(&server, &admin).await, before);

    // A certificates-only PKCS#12 (as openssl -nokeys writes it) imports every certificate.
    openssl(
        d,
        &[
            "pkcs12",
            "-export",
            "-nokeys",
            "-in",
            "bad-leaf.pem",
            "-certfile",
            "bad-ca.pem",
            "-passout",
            "pass:secret12",
            "-out",
            "certs.p12",
        ],
    )?;
    let (status, reply) = server
        .upload(
            "/api/v2/certificates/import",
            &auth,
            std::fs::read(d.join("certs.p12"))?,
            &[("password", "secret12")],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["data"]["cas"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        reply["data"]["certificates"].as_array().map(Vec::len),
        Some(1)
    );
    // Importing it again adds nothing.
    let (status, reply) = server
        .upload(
            "/api/v2/certificates/import",
            &auth,
            std::fs::read(d.join("certs.p12"))?,
            &[("password", "secret12")],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["data"]["skipped"].as_array().map(Vec::len), Some(2));
    assert_eq!(counts(&server, &admin).await, (before.0 + 1, before.1 + 1));
    Ok(())
}

/// A file of one certificate answers with that certificate or CA, as the reference shows it;
/// `name`, `ca_id` and `import_key` do what the reference says; a certificate not issued by the
/// named CA, or stored already, is refused with nothing written.
#[tokio::test]
async fn one_certificate_answers_as_the_reference_shows_it() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    openssl_hierarchy(d, "solo")?;
    openssl_hierarchy(d, "stranger")?;

    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/cas/import",
        json!({"certificate": read(d, "solo-ca.pem")?, "private_key": read(d, "solo-ca.key")?,
               "name": "My Root CA", "import_key": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["message"], "CA \"My Root CA\" imported successfully");
    let ca = &body["data"];
    assert_eq!(ca["descr"], "My Root CA");
    assert_eq!(ca["is_root"], true);
    assert_eq!(ca["subject"], "O=Partner,CN=solo Root");
    assert_eq!(ca["has_private_key"], true);
    assert_eq!(ca["certificates_count"], 0);
    assert!(ca["refid"].is_string() && ca["cas"].is_null(), "{body}");
    let solo = ca["id"].as_i64().ok_or("id")?;

    // A CA certificate sent to /certificates/import is detected as one.
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/certificates/import",
        json!({"certificate": read(d, "stranger-ca.pem")?}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["message"],
        "CA certificate \"stranger Root\" imported successfully (detected as CA)"
    );
    assert_eq!(body["data"]["is_root"], true);
    let stranger = body["data"]["id"].as_i64().ok_or("id")?;

    // Named as the issuer of a certificate it did not sign, a CA is refused; so is one that
    // does not exist, and a key sent apart that is not to be kept.
    let before = counts(&server, &admin).await;
    let leaf = read(d, "solo-leaf.pem")?;
    for (body, complaint) in [
        (
            json!({"certificate": leaf, "ca_id": stranger}),
            "was not issued by CA",
        ),
        (json!({"certificate": leaf, "ca_id": 424242}), "names no CA"),
        (
            json!({"certificate": leaf, "private_key": read(d, "solo-leaf.key")?,
                   "import_key": false}),
            "import_key",
        ),
    ] {
        let (status, reply) =
            post(&server, &admin, "/api/v2/certificates/import", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {reply}");
        assert!(
            reply["message"]
                .as_str()
                .unwrap_or_default()
                .contains(complaint),
            "{body}: {reply}"
        );
    }
    assert_eq!(counts(&server, &admin).await, before);

    // A PKCS#12 of the certificate and its key, as the reference's multipart form sends it:
    // linked to the CA named, the key dropped, the name kept as its description.
    openssl(
        d,
        &[
            "pkcs12",
            "-export",
            "-in",
            "solo-leaf.pem",
            "-inkey",
            "solo-leaf.key",
            "-passout",
            "pass:p12-secret",
            "-out",
            "solo.p12",
        ],
    )?;
    let p12 = std::fs::read(d.join("solo.p12"))?;
    let solo_id = solo.to_string();
    let fields = [
        ("password", "p12-secret"),
        ("name", "My Certificate"),
        ("ca_id", solo_id.as_str()),
        ("import_key", "false"),
    ];
    let (status, body) = server
        .upload("/api/v2/certificates/import", &auth, p12.clone(), &fields)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["message"],
        "Certificate \"My Certificate\" imported successfully"
    );
    let cert = &body["data"];
    assert_eq!(cert["common_name"], "www.solo.test");
    assert_eq!(cert["issuer"], "O=Partner,CN=solo Root");
    assert_eq!(cert["ca_id"], solo);
    assert_eq!(cert["description"], "My Certificate");
    assert_eq!(cert["private_key_available"], false);
    assert!(cert["certificates"].is_null(), "{body}");

    // The same file again adds nothing: 409.
    let (status, body) = server
        .upload("/api/v2/certificates/import", &auth, p12, &fields)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (_, body) = server
        .call(Method::GET, &format!("/api/v2/cas/{solo}"), &auth, None)
        .await;
    assert_eq!(body["data"]["certificates_count"], 1, "{body}");
    Ok(())
}
