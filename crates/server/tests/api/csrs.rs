//! CSRs over REST: requests made by openssl (RSA, EC, Ed25519) are kept, signed into
//! certificates openssl verifies, and signed only once; CSRs made here carry their key into the
//! certificate; bad CSRs are refused without a trace.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Auth, Session, TestResult, TestServer, fetch, openssl, post};

/// Makes `name.key` and `name.csr` (PEM) with openssl; returns the CSR text.
fn openssl_csr(dir: &Path, name: &str, key_args: &[&str], cn: &str) -> TestResult<String> {
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let mut args = vec!["req", "-new", "-nodes", "-keyout", &key, "-out", &csr];
    args.extend_from_slice(key_args);
    let subject = format!("/CN={cn}/O=Example");
    let san = format!("subjectAltName=DNS:{cn},IP:192.0.2.7");
    args.extend_from_slice(&["-subj", &subject, "-addext", &san]);
    openssl(dir, &args)?;
    Ok(std::fs::read_to_string(dir.join(csr))?)
}

async fn total(server: &TestServer, admin: &Session, query: &str) -> i64 {
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/v2/csrs{query}"),
            &Auth::Session(admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["meta"]["total"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn openssl_csrs_are_kept_signed_once_and_verify() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let dir = tempfile::tempdir()?;
    let (_, cas) = server.call(Method::GET, "/api/v2/cas", &auth, None).await;
    let refid = cas["data"][0]["refid"].as_str().ok_or("root refid")?;
    let root = reqwest::get(format!("{}/ca/{refid}.pem", server.http))
        .await?
        .bytes()
        .await?;
    std::fs::write(dir.path().join("root.pem"), root)?;

    let rsa = openssl_csr(
        dir.path(),
        "rsa",
        &["-newkey", "rsa:2048"],
        "rsa.example.test",
    )?;
    let ec = openssl_csr(
        dir.path(),
        "ec",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "ec.example.test",
    )?;
    openssl_csr(dir.path(), "ed", &["-newkey", "ed25519"], "ed.example.test")?;
    openssl(
        dir.path(),
        &["req", "-in", "ed.csr", "-outform", "DER", "-out", "ed.der"],
    )?;

    // Three ways in: POST /csrs, /csrs/upload, and a DER file through /csrs/import.
    let (status, body) = post(&server, &admin, "/api/v2/csrs", json!({"csr": rsa})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["name"], "rsa.example.test");
    assert_eq!(body["data"]["key_type"], "RSA 2048");
    assert_eq!(body["data"]["status"], "pending");
    assert_eq!(body["data"]["has_private_key"], false);
    assert_eq!(
        body["data"]["san"],
        json!(["dns:rsa.example.test", "ip:192.0.2.7"])
    );
    let rsa_id = body["data"]["id"].as_i64().ok_or("id")?;
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/csrs/upload",
        json!({"pem": ec, "name": "EC box"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["name"], "EC box");
    let ec_id = body["data"]["id"].as_i64().ok_or("id")?;
    let (status, body) = server
        .upload(
            "/api/v2/csrs/import",
            &auth,
            std::fs::read(dir.path().join("ed.der"))?,
            &[("name", "12345")],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["name"], "12345");
    assert_eq!(body["data"]["key_type"], "Ed25519");
    let ed_id = body["data"]["id"].as_i64().ok_or("id")?;
    assert_eq!(total(&server, &admin, "?status=pending").await, 3);

    // The exported CSR is the one openssl made, and openssl still verifies it.
    let exported = fetch(&server, &admin, &format!("/api/v2/csrs/{ec_id}/export")).await?;
    assert_eq!(String::from_utf8(exported.clone())?, ec);
    std::fs::write(dir.path().join("exported.csr"), exported)?;
    openssl(
        dir.path(),
        &["req", "-in", "exported.csr", "-verify", "-noout"],
    )?;

    // The EC CSR's key, handed over before signing, goes with the certificate.
    let (status, body) = post(
        &server,
        &admin,
        &format!("/api/v2/csrs/{ec_id}/key"),
        json!({"key": std::fs::read_to_string(dir.path().join("rsa.key"))?}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("does not belong"),
        "{body}"
    );
    let (status, body) = post(
        &server,
        &admin,
        &format!("/api/v2/csrs/{ec_id}/key"),
        json!({"key": std::fs::read_to_string(dir.path().join("ec.key"))?}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["has_private_key"], true);

    let templates = server
        .call(Method::GET, "/api/v2/templates", &auth, None)
        .await
        .1;
    let tls_server = templates["data"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "TLS Server"))
        .and_then(|t| t["id"].as_i64())
        .ok_or("TLS Server template")?;
    for (id, name, template) in [
        (rsa_id, "rsa", Some(tls_server)),
        (ec_id, "ec", None),
        (ed_id, "ed", None),
    ] {
        let (status, body) = post(
            &server,
            &admin,
            &format!("/api/v2/csrs/{id}/sign"),
            json!({"validity_days": 200, "template_id": template}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        let cert = &body["data"];
        assert_eq!(cert["common_name"], format!("{name}.example.test"));
        assert_eq!(
            cert["san"],
            json!([format!("dns:{name}.example.test"), "ip:192.0.2.7"])
        );
        assert_eq!(cert["source"], "csr");
        assert_eq!(cert["private_key_available"], name == "ec", "{name}");
        let cert_id = cert["id"].as_i64().ok_or("id")?;
        let leaf = fetch(
            &server,
            &admin,
            &format!("/api/v2/certificates/{cert_id}/export"),
        )
        .await?;
        let chain = fetch(
            &server,
            &admin,
            &format!("/api/v2/certificates/{cert_id}/export?format=chain"),
        )
        .await?;
        std::fs::write(dir.path().join("leaf.pem"), leaf)?;
        std::fs::write(dir.path().join("chain.pem"), chain)?;
        openssl(
            dir.path(),
            &[
                "verify",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "chain.pem",
                "leaf.pem",
            ],
        )
        .map_err(|e| format!("{name}: {e}"))?;
        // The certificate holds the CSR's public key.
        let cert_key = openssl(
            dir.path(),
            &["x509", "-in", "leaf.pem", "-noout", "-pubkey"],
        )?;
        let csr_key = openssl(
            dir.path(),
            &["req", "-in", &format!("{name}.csr"), "-noout", "-pubkey"],
        )?;
        assert_eq!(cert_key, csr_key, "{name}");

        let (_, csr) = server
            .call(Method::GET, &format!("/api/v2/csrs/{id}"), &auth, None)
            .await;
        assert_eq!(csr["data"]["status"], "signed");
        assert_eq!(csr["data"]["certificate_id"], cert_id);
    }
    assert_eq!(total(&server, &admin, "/history").await, 3);
    assert_eq!(total(&server, &admin, "?status=pending").await, 0);

    // Signed once only.
    let (status, body) = post(
        &server,
        &admin,
        &format!("/api/v2/csrs/{rsa_id}/sign"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    Ok(())
}

#[tokio::test]
async fn csrs_made_here_keep_their_key_and_bad_ones_leave_no_trace() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let dir = tempfile::tempdir()?;

    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/csrs",
        json!({"common_name": "made.example.test", "organization": "Example",
               "san": ["dns:made.example.test"], "key_algorithm": "RSA", "key_size": 3072}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["source"], "generated");
    assert_eq!(body["data"]["has_private_key"], true);
    assert_eq!(body["data"]["key_type"], "RSA 3072");
    assert_eq!(body["data"]["subject"], "CN=made.example.test,O=Example");
    let made = body["data"]["id"].as_i64().ok_or("id")?;
    let (status, body) = post(&server, &admin, "/api/v2/csrs", json!({"key_size": 256})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Refused, each with its reason, and nothing is stored.
    let good = openssl_csr(
        dir.path(),
        "good",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        "good.example.test",
    )?;
    let der = {
        let body: String = good.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut bytes = base64_decode(&body)?;
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        bytes
    };
    let (status, body) = server.upload("/api/v2/csrs/import", &auth, der, &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("signature"),
        "{body}"
    );
    for (path, request, complaint) in [
        (
            "/api/v2/csrs/upload",
            json!({"pem": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}),
            "",
        ),
        ("/api/v2/csrs/upload", json!({"pem": "hello"}), ""),
        (
            "/api/v2/csrs/upload",
            json!({"pem": good.replace("-----END CERTIFICATE REQUEST-----", "")}),
            "",
        ),
        ("/api/v2/csrs/import", json!({}), "pem_content"),
        (
            "/api/v2/csrs/upload",
            json!({"pem": good, "nme": "x"}),
            "unknown field",
        ),
    ] {
        let (status, body) = post(&server, &admin, path, request.clone()).await;
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
            "{request}: {status} {body}"
        );
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty() && message.contains(complaint),
            "{request}: {body}"
        );
    }
    assert_eq!(total(&server, &admin, "").await, 1);

    // A CSR can also be signed straight away, without being kept; its names are the CSR's.
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/certificates",
        json!({"csr": good, "validity_days": 7}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["common_name"], "good.example.test");
    assert_eq!(body["data"]["key_type"], "EC P-384");
    assert_eq!(body["data"]["private_key_available"], false);
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/certificates",
        json!({"csr": good, "san": ["dns:other.example.test"]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(total(&server, &admin, "").await, 1);

    // Signing carries the key over; deleting the CSR afterwards leaves the key with the
    // certificate.
    let (status, body) = post(
        &server,
        &admin,
        &format!("/api/v2/csrs/{made}/sign"),
        json!({"validity_days": 30}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["private_key_available"], true);
    assert_eq!(body["data"]["key_type"], "RSA 3072");
    let cert = body["data"]["id"].as_i64().ok_or("id")?;
    let (status, _) = server
        .call(Method::DELETE, &format!("/api/v2/csrs/{made}"), &auth, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = post(
        &server,
        &admin,
        &format!("/api/v2/certificates/{cert}/key"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Bulk: the good CSR and two more are signed; a missing id fails alone.
    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, body) = post(
            &server,
            &admin,
            "/api/v2/csrs",
            json!({"common_name": format!("bulk{n}.example.test"),
                   "san": [format!("dns:bulk{n}.example.test")]}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["data"]["id"].as_i64().ok_or("id")?);
    }
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/csrs/bulk/sign",
        json!({"ids": [ids[0], ids[1], 424_242], "validity_days": 10}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["success"], json!([ids[0], ids[1]]));
    assert_eq!(body["data"]["failed"], json!([424_242]));
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/csrs/bulk/delete",
        json!({"ids": [ids[1], ids[2]]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["success"], json!([ids[1], ids[2]]));
    let (status, _) = post(
        &server,
        &admin,
        "/api/v2/csrs/bulk/delete",
        json!({"ids": []}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(total(&server, &admin, "").await, 1);
    assert_eq!(server.audit_total(&auth, "action=csr_created").await, 4);
    Ok(())
}

fn base64_decode(text: &str) -> TestResult<Vec<u8>> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.decode(text)?)
}

#[tokio::test]
async fn the_csr_list_pages_and_filters_together() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    for i in 0..3 {
        let (status, body) = post(
            &server,
            &admin,
            "/api/v2/csrs",
            json!({"common_name": format!("page{i}.example.test"), "key_algorithm": "EC"}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let (status, body) = server
            .call(
                Method::GET,
                &format!("/api/v2/csrs?status=pending&page={page}&per_page=1"),
                &auth,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["meta"]["total"], 3, "{body}");
        assert_eq!(body["meta"]["page"], page, "{body}");
        let items = body["data"].as_array().ok_or("data")?;
        assert_eq!(items.len(), 1, "{body}");
        seen.push(items[0]["id"].as_i64().ok_or("id")?);
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 3, "each page holds another CSR");
    assert_eq!(total(&server, &admin, "?status=signed&per_page=5").await, 0);
    Ok(())
}
