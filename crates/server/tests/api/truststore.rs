//! The trust store: CA certificates made by openssl are added one by one, imported as a
//! bundle, synced from the system bundle, counted, and removed; end-entity certificates are
//! refused.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Auth, TestResult, TestServer, openssl};

/// `{name}.pem`: a self-signed CA; with `issuer`, a CA issued by `{issuer}.pem`. Also a
/// server certificate `{name}-leaf.pem` issued by it.
fn openssl_ca(dir: &Path, name: &str, issuer: Option<&str>) -> TestResult {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    let subject = format!("/CN={name}");
    let ca_ext = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";
    match issuer {
        None => openssl(
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
                &key,
                "-out",
                &pem,
                "-days",
                "365",
                "-subj",
                &subject,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )?,
        Some(issuer) => {
            std::fs::write(dir.join("ca.ext"), ca_ext)?;
            openssl(
                dir,
                &[
                    "req",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    &key,
                    "-out",
                    "ca.csr",
                    "-subj",
                    &subject,
                ],
            )?;
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    "ca.csr",
                    "-CA",
                    &format!("{issuer}.pem"),
                    "-CAkey",
                    &format!("{issuer}.key"),
                    "-CAcreateserial",
                    "-days",
                    "200",
                    "-extfile",
                    "ca.ext",
                    "-out",
                    &pem,
                ],
            )?
        }
    };
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=leaf.example.test",
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            &pem,
            "-CAkey",
            &key,
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            &format!("{name}-leaf.pem"),
        ],
    )?;
    Ok(())
}

#[tokio::test]
async fn ca_certificates_are_trusted_imported_synced_counted_and_removed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    openssl_ca(d, "Partner Root", None)?;
    openssl_ca(d, "Partner Issuing", Some("Partner Root"))?;
    openssl_ca(d, "Vendor Root", None)?;
    openssl_ca(d, "OS Root A", None)?;
    openssl_ca(d, "OS Root B", None)?;
    let bundle = d.join("os-bundle.pem");
    std::fs::write(
        &bundle,
        format!(
            "{}{}",
            std::fs::read_to_string(d.join("OS Root A.pem"))?,
            std::fs::read_to_string(d.join("OS Root B.pem"))?
        ),
    )?;
    let server = TestServer::start_with(|s| s.system_trust_bundle = bundle.clone()).await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let read = |name: &str| std::fs::read_to_string(d.join(name));

    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/truststore",
            &auth,
            Some(
                json!({"certificate": read("Partner Root.pem")?, "name": "Partner",
                        "description": "mTLS partner"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["name"], "Partner");
    assert_eq!(body["data"]["cert_type"], "root_ca");
    assert_eq!(body["data"]["source"], "manual");
    assert!(
        body["data"]["pem"]
            .as_str()
            .unwrap_or_default()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let partner = body["data"]["id"].as_i64().ok_or("id")?;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/truststore",
            &auth,
            Some(json!({"certificate": read("Partner Root.pem")?})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // End-entity certificates are refused, alone or inside a bundle, and nothing is added.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/truststore",
            &auth,
            Some(json!({"certificate": read("Vendor Root-leaf.pem")?})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not a CA certificate"),
        "{body}"
    );
    let mixed = format!(
        "{}{}",
        read("Vendor Root.pem")?,
        read("Vendor Root-leaf.pem")?
    );
    let (status, _) = server
        .upload("/api/v2/truststore/import", &auth, mixed.into_bytes(), &[])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/truststore/import",
            &auth,
            Some(json!({"pem_content": "not a certificate"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A bundle: the intermediate and the vendor root are added, the partner root skipped.
    let chain = format!(
        "{}{}{}",
        read("Partner Issuing.pem")?,
        read("Vendor Root.pem")?,
        read("Partner Root.pem")?
    );
    let (status, body) = server
        .upload("/api/v2/truststore/import", &auth, chain.into_bytes(), &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["added"], 2);
    assert_eq!(body["data"]["skipped"], 1);

    let (status, body) = server
        .call(Method::POST, "/api/v2/truststore/sync", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["added"], 2);
    let (_, body) = server
        .call(Method::POST, "/api/v2/truststore/sync", &auth, None)
        .await;
    assert_eq!(body["data"], json!({"added": 0, "skipped": 2, "ids": []}));

    let (status, body) = server
        .call(Method::GET, "/api/v2/truststore/stats", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!({"total": 5, "root_ca": 4, "intermediate_ca": 1, "expired": 0, "valid": 5})
    );
    let (_, list) = server
        .call(Method::GET, "/api/v2/truststore?per_page=2", &auth, None)
        .await;
    assert_eq!(list["meta"]["total"], 5, "{list}");
    assert_eq!(list["data"][0]["name"], "OS Root A");

    // A year on, the intermediate (200 days) and the roots (365 days) have all expired.
    // (The session has ended by then: log in again.)
    server.clock.advance(time::Duration::days(366));
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (_, body) = server
        .call(Method::GET, "/api/v2/truststore/stats", &auth, None)
        .await;
    assert_eq!(body["data"]["expired"], 5);
    assert_eq!(body["data"]["valid"], 0);

    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/truststore/{partner}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/v2/truststore/{partner}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        server
            .audit_total(&auth, "action=trusted_certificate_added")
            .await,
        5
    );
    Ok(())
}

#[tokio::test]
async fn sync_says_when_the_system_bundle_is_missing() -> TestResult {
    let server =
        TestServer::start_with(|s| s.system_trust_bundle = "/nonexistent/bundle.pem".into()).await;
    let admin = server.admin().await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/truststore/sync",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("/nonexistent/bundle.pem"),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn an_imported_file_of_one_certificate_takes_the_labels_given() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (_, cas) = server.call(Method::GET, "/api/v2/cas", &auth, None).await;
    let refid = cas["data"][0]["refid"].as_str().ok_or("root refid")?;
    let root = reqwest::get(format!("{}/ca/{refid}.pem", server.http))
        .await?
        .bytes()
        .await?
        .to_vec();
    let (status, body) = server
        .upload(
            "/api/v2/truststore/import",
            &auth,
            root.clone(),
            &[("name", "External Root CA"), ("purpose", "Trust Anchor!")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = server
        .upload(
            "/api/v2/truststore/import",
            &auth,
            root,
            &[
                ("name", "External Root CA"),
                ("purpose", "trust_anchor"),
                ("description", "Third-party CA"),
                ("notes", "Optional notes"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["data"]["ids"][0].as_i64().ok_or("id")?;
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/v2/truststore/{id}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "External Root CA", "{body}");
    assert_eq!(body["data"]["description"], "Third-party CA", "{body}");
    assert_eq!(body["data"]["purpose"], "trust_anchor", "{body}");
    assert_eq!(body["data"]["notes"], "Optional notes", "{body}");
    Ok(())
}
