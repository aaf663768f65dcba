//! Certificates over REST: issuance with a server-side key, the inventory, and every export
//! format, opened by the real `openssl`.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer, openssl};

async fn issue(server: &TestServer, admin: &Session, body: Value) -> (StatusCode, Value) {
    server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &Auth::Session(admin),
            Some(body),
        )
        .await
}

async fn download(server: &TestServer, auth: &Auth<'_>, path: &str) -> (StatusCode, Vec<u8>) {
    let response = server.request(Method::GET, path, auth, None).await;
    let status = response.status();
    (
        status,
        response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default(),
    )
}

/// Writes the root CA's PEM into `dir` as root.pem.
async fn save_root(server: &TestServer, admin: &Session, dir: &Path) -> TestResult {
    let (_, cas) = server
        .call(Method::GET, "/api/v2/cas", &Auth::Session(admin), None)
        .await;
    let refid = cas["data"][0]["refid"].as_str().ok_or("root refid")?;
    let pem = reqwest::get(format!("{}/ca/{refid}.pem", server.http))
        .await?
        .text()
        .await?;
    std::fs::write(dir.join("root.pem"), pem)?;
    Ok(())
}

#[tokio::test]
async fn issue_list_and_export_in_every_format() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let dir = tempfile::tempdir()?;
    save_root(&server, &admin, dir.path()).await?;

    let (status, body) = issue(
        &server,
        &admin,
        json!({
            "common_name": "web.example.test",
            "organization": "Example",
            "country": "DE",
            "validity_days": 90,
            "san": ["dns:web.example.test", "dns:www.example.test", "ip:192.0.2.10"],
            "key_usage": ["digitalSignature"],
            "extended_key_usage": ["serverAuth", "clientAuth"]
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["message"], "Certificate issued successfully");
    let cert = &body["data"];
    assert_eq!(cert["common_name"], "web.example.test");
    assert_eq!(cert["status"], "active");
    assert_eq!(cert["key_type"], "EC P-256");
    assert_eq!(cert["private_key_available"], true);
    assert_eq!(cert["days_remaining"], 89);
    assert_eq!(
        cert["san"],
        json!([
            "dns:web.example.test",
            "dns:www.example.test",
            "ip:192.0.2.10"
        ])
    );
    assert_eq!(cert["serial_number"].as_str().map(str::len), Some(32));
    let id = cert["id"].as_i64().ok_or("id")?;

    let (status, body) = issue(
        &server,
        &admin,
        json!({"common_name": "rsa.example.test", "key_algorithm": "RSA", "key_size": 3072,
               "san": ["dns:rsa.example.test"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["key_type"], "RSA 3072");

    // The inventory: search, status and CA filters (the listener's own certificate is in it).
    let (_, all) = server
        .call(
            Method::GET,
            "/api/v2/certificates",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(all["meta"]["total"], 3, "{all}");
    assert_eq!(
        all["data"][0]["common_name"], "rsa.example.test",
        "newest first"
    );
    let (_, found) = server
        .call(
            Method::GET,
            "/api/v2/certificates?search=WWW.example&status=active&per_page=10",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(found["meta"]["total"], 1, "{found}");
    assert_eq!(found["data"][0]["id"], id);
    // Its serial as openssl prints it (upper case, colons), and its fingerprint as this API
    // shows it, whole and its first digits.
    let serial = found["data"][0]["serial_number"]
        .as_str()
        .unwrap_or_default()
        .replace(':', "");
    assert!(serial.len() >= 16, "{found}");
    let colons: Vec<String> = serial.as_bytes()[2..14]
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).to_uppercase())
        .collect();
    let fingerprint = found["data"][0]["fingerprint_sha256"]
        .as_str()
        .unwrap_or_default()
        .replace(':', "");
    assert_eq!(fingerprint.len(), 64, "{found}");
    let fingerprint_colons: Vec<String> = fingerprint
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).to_uppercase())
        .collect();
    for text in [
        colons.join(":"),
        fingerprint_colons.join(":"),
        fingerprint[..12].to_owned(),
    ] {
        let (_, by) = server
            .call(
                Method::GET,
                &format!("/api/v2/certificates?search={text}"),
                &Auth::Session(&admin),
                None,
            )
            .await;
        assert_eq!(by["meta"]["total"], 1, "{text}: {by}");
        assert_eq!(by["data"][0]["id"], id, "{text}");
    }
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/v2/certificates?search={}", "x".repeat(201)),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    for (query, total) in [
        ("status=revoked", 0),
        ("status=expired", 0),
        ("status=expiring", 0),
    ] {
        let (_, body) = server
            .call(
                Method::GET,
                &format!("/api/v2/certificates?{query}"),
                &Auth::Session(&admin),
                None,
            )
            .await;
        assert_eq!(body["meta"]["total"], total, "{query}: {body}");
    }
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/certificates?status=bogus",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, one) = server
        .call(
            Method::GET,
            &format!("/api/v2/certificates/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["data"]["subject"], "CN=web.example.test,O=Example,C=DE");

    let export = |format: &str| format!("/api/v2/certificates/{id}/export?{format}");
    let auth = Auth::Session(&admin);

    let (status, chain) = download(&server, &auth, &export("format=chain")).await;
    assert_eq!(status, StatusCode::OK);
    std::fs::write(dir.path().join("chain.pem"), &chain)?;
    let (_, leaf) = download(&server, &auth, &export("format=pem")).await;
    std::fs::write(dir.path().join("leaf.pem"), &leaf)?;
    let out = openssl(
        dir.path(),
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "chain.pem",
            "-purpose",
            "sslserver",
            "leaf.pem",
        ],
    )?;
    assert!(out.contains("leaf.pem: OK"), "{out}");
    let text = openssl(dir.path(), &["x509", "-in", "leaf.pem", "-noout", "-text"])?;
    for expected in [
        "DNS:web.example.test",
        "IP Address:192.0.2.10",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "Digital Signature",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }

    let (status, der) = download(&server, &auth, &export("format=der")).await;
    assert_eq!(status, StatusCode::OK);
    std::fs::write(dir.path().join("leaf.der"), &der)?;
    openssl(
        dir.path(),
        &["x509", "-inform", "DER", "-in", "leaf.der", "-noout"],
    )?;

    let (status, p7b) = download(&server, &auth, &export("format=pkcs7")).await;
    assert_eq!(status, StatusCode::OK);
    std::fs::write(dir.path().join("leaf.p7b"), &p7b)?;
    let printed = openssl(
        dir.path(),
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            "leaf.p7b",
            "-print_certs",
            "-noout",
        ],
    )?;
    for subject in [
        "web.example.test",
        "certmint Issuing CA",
        "certmint Root CA",
    ] {
        assert!(printed.contains(subject), "{subject} missing:\n{printed}");
    }

    let (status, with_key) = download(&server, &auth, &export("format=pem&include_key=true")).await;
    assert_eq!(status, StatusCode::OK);
    std::fs::write(dir.path().join("both.pem"), &with_key)?;
    let cert_key = openssl(
        dir.path(),
        &["x509", "-in", "both.pem", "-noout", "-pubkey"],
    )?;
    let own_key = openssl(dir.path(), &["pkey", "-in", "both.pem", "-pubout"])?;
    assert_eq!(cert_key, own_key);

    for (encryption, mac) in [("", "sha256"), ("&encryption=legacy", "sha1")] {
        let (status, p12) = download(
            &server,
            &auth,
            &export(&format!("format=pkcs12&password=correct-horse{encryption}")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{encryption}");
        std::fs::write(dir.path().join("leaf.p12"), &p12)?;
        let info = openssl(
            dir.path(),
            &[
                "pkcs12",
                "-in",
                "leaf.p12",
                "-info",
                "-nodes",
                "-passin",
                "pass:correct-horse",
            ],
        )
        .or_else(|_| {
            openssl(
                dir.path(),
                &[
                    "pkcs12",
                    "-legacy",
                    "-in",
                    "leaf.p12",
                    "-info",
                    "-nodes",
                    "-passin",
                    "pass:correct-horse",
                ],
            )
        })?;
        assert!(info.contains("BEGIN PRIVATE KEY"), "{info}");
        assert!(info.contains("web.example.test"), "{info}");
        // openssl reports the MAC algorithm on stderr.
        let mac_report = std::process::Command::new("openssl")
            .args([
                "pkcs12",
                "-in",
                "leaf.p12",
                "-info",
                "-noout",
                "-passin",
                "pass:correct-horse",
            ])
            .current_dir(dir.path())
            .output()?;
        let report = String::from_utf8_lossy(&mac_report.stderr).into_owned()
            + &String::from_utf8_lossy(&mac_report.stdout);
        assert!(
            report.contains(&format!("MAC: {mac}")),
            "{encryption}: {report}"
        );
    }
    // The password can travel in a JSON body instead of the URL.
    let response = server
        .request(
            Method::POST,
            &format!("/api/v2/certificates/{id}/export"),
            &auth,
            Some(json!({"format": "pkcs12", "password": "correct-horse"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    std::fs::write(dir.path().join("posted.p12"), response.bytes().await?)?;
    let info = openssl(
        dir.path(),
        &[
            "pkcs12",
            "-in",
            "posted.p12",
            "-info",
            "-nodes",
            "-passin",
            "pass:correct-horse",
        ],
    )?;
    assert!(info.contains("BEGIN PRIVATE KEY"), "{info}");
    // Every key export was audited.
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=private_key_exported")
            .await,
        4
    );
    Ok(())
}

#[tokio::test]
async fn keys_leave_only_with_export_keys_and_bad_requests_write_nothing() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, body) = issue(&server, &admin, json!({"common_name": "k.example.test"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_i64().ok_or("id")?;

    server.user(&admin, "vera", "viewer").await;
    let viewer = server.login("vera", ADMIN_PASSWORD).await;
    let auth = Auth::Session(&viewer);
    let (status, _) = download(
        &server,
        &auth,
        &format!("/api/v2/certificates/{id}/export?format=pem"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a viewer may download the certificate"
    );
    for query in [
        "format=pem&include_key=true",
        "format=pkcs12&password=long-enough",
    ] {
        let (status, body) = download(
            &server,
            &auth,
            &format!("/api/v2/certificates/{id}/export?{query}"),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{query}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let (status, _) = issue(&server, &viewer, json!({"common_name": "v.example.test"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (_, before) = server
        .call(
            Method::GET,
            "/api/v2/certificates",
            &Auth::Session(&admin),
            None,
        )
        .await;
    for (body, needle) in [
        (
            json!({"common_name": "x.test", "validity_days": 5000}),
            "validity_days",
        ),
        (
            json!({"common_name": "x.test", "validity_days": 3000}),
            "would end after CA",
        ),
        (
            json!({"common_name": "x.test", "template_id": 77}),
            "template 77 does not exist",
        ),
        (
            json!({"common_name": "x.test", "san": ["dns:bad_name.test"]}),
            "bad_name.test",
        ),
        (
            json!({"common_name": "x.test", "san": ["dns:a.*.test"]}),
            "wildcard",
        ),
        (
            json!({"common_name": "x.test", "key_algorithm": "RSA", "key_size": 1024}),
            "1024",
        ),
        (
            json!({"common_name": "x.test", "key_usage": ["signEverything"]}),
            "signEverything",
        ),
        (json!({"common_name": "x.test", "ca_id": 999}), "999"),
        (
            json!({"common_name": "x.test", "country": "Germany"}),
            "two-letter",
        ),
        (json!({}), "subject name or at least one SAN"),
    ] {
        let (status, answer) = issue(&server, &admin, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{body}: {message}");
    }
    let (status, _) = issue(
        &server,
        &admin,
        json!({"common_name": "x.test", "colour": "red"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused"
    );
    let (_, after) = server
        .call(
            Method::GET,
            "/api/v2/certificates",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(
        after["meta"]["total"], before["meta"]["total"],
        "nothing was written"
    );

    let auth = Auth::Session(&admin);
    for (query, needle) in [
        ("format=zip", "unknown format"),
        ("format=pkcs12", "password"),
        ("format=pkcs12&password=short", "password"),
        (
            "format=pkcs12&password=long-enough&encryption=rot13",
            "rot13",
        ),
    ] {
        let (status, body) = download(
            &server,
            &auth,
            &format!("/api/v2/certificates/{id}/export?{query}"),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(String::from_utf8_lossy(&body).contains(needle), "{query}");
    }
    let (status, _) = download(&server, &auth, "/api/v2/certificates/424242/export").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn revocation_with_reasons_holds_and_releases() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let mut ids = Vec::new();
    for cn in ["a.example.test", "b.example.test"] {
        let (status, body) = issue(&server, &admin, json!({"common_name": cn})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["data"]["id"].as_i64().ok_or("id")?);
    }
    let revoke = |id: i64, body: Value| {
        let path = format!("/api/v2/certificates/{id}/revoke");
        let (server, auth) = (&server, &auth);
        async move { server.call(Method::POST, &path, auth, Some(body)).await }
    };

    let (status, body) = revoke(
        ids[0],
        json!({"reason": "keyCompromise", "comments": "key left on a laptop"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Certificate revoked successfully");
    assert_eq!(body["data"]["status"], "revoked");
    assert_eq!(body["data"]["revocation_reason"], "keyCompromise");
    assert!(body["data"]["revoked_at"].is_string());
    let (status, body) = revoke(ids[0], json!({"reason": "superseded"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // A hold is released with removeFromCRL, and can be made permanent.
    let (status, body) = revoke(ids[1], json!({"reason": "certificate_hold"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["revocation_reason"], "certificateHold");
    let (status, body) = revoke(ids[1], json!({"reason": "removeFromCRL"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Certificate released from hold");
    assert_eq!(body["data"]["status"], "active");
    assert_eq!(body["data"]["revocation_reason"], Value::Null);
    let (status, _) = revoke(ids[1], json!({"reason": "removeFromCRL"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "nothing to release");
    revoke(ids[1], json!({"reason": "certificateHold"})).await;
    let (status, body) = revoke(ids[1], json!({"reason": "cessationOfOperation"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["revocation_reason"], "cessationOfOperation");

    let (_, revoked) = server
        .call(
            Method::GET,
            "/api/v2/certificates?status=revoked",
            &auth,
            None,
        )
        .await;
    assert_eq!(revoked["meta"]["total"], 2, "{revoked}");

    let (status, body) = revoke(ids[0], json!({"reason": "forgotten"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("keyCompromise")
    );
    let (status, _) = revoke(424242, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    server.user(&admin, "vic", "viewer").await;
    let viewer = server.login("vic", ADMIN_PASSWORD).await;
    let (status, _) = server
        .call(
            Method::POST,
            &format!("/api/v2/certificates/{}/revoke", ids[0]),
            &Auth::Session(&viewer),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    assert_eq!(
        server
            .audit_total(&auth, "action=certificate_revoked")
            .await,
        4
    );
    assert_eq!(
        server
            .audit_total(&auth, "action=certificate_released")
            .await,
        1
    );
    Ok(())
}

/// The reason is answered in the reference's camelCase whichever spelling the client sent,
/// in the revoke answer and in the certificate view, rows stored in RFC 5280's ASN.1 spelling
/// (`cACompromise`) included.
#[tokio::test]
async fn revocation_reasons_are_answered_as_the_reference_spells_them() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    for (sent, shown) in [
        ("caCompromise", "caCompromise"),
        ("cACompromise", "caCompromise"),
        ("key_compromise", "keyCompromise"),
        ("AFFILIATION_CHANGED", "affiliationChanged"),
        ("aa_compromise", "aaCompromise"),
    ] {
        let (status, body) = issue(&server, &admin, json!({"common_name": "r.example.test"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["data"]["id"].as_i64().ok_or("id")?;
        let (status, body) = server
            .call(
                Method::POST,
                &format!("/api/v2/certificates/{id}/revoke"),
                &auth,
                Some(json!({"reason": sent})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{sent}: {body}");
        assert_eq!(body["data"]["revocation_reason"], shown, "{sent}");
        let (_, body) = server
            .call(
                Method::GET,
                &format!("/api/v2/certificates/{id}"),
                &auth,
                None,
            )
            .await;
        assert_eq!(body["data"]["revocation_reason"], shown, "{sent}");
    }
    let raw = server.raw_store().await;
    raw.execute_raw(
        "UPDATE certificates SET revocation_reason = 'cACompromise' \
         WHERE revocation_reason = 'caCompromise'",
    )
    .await?;
    let (_, body) = server
        .call(
            Method::GET,
            "/api/v2/certificates?status=revoked",
            &auth,
            None,
        )
        .await;
    let reasons: Vec<&Value> = body["data"]
        .as_array()
        .ok_or("list")?
        .iter()
        .map(|c| &c["revocation_reason"])
        .collect();
    assert!(
        reasons.iter().filter(|r| **r == "caCompromise").count() == 2,
        "{body}"
    );
    assert!(!reasons.iter().any(|r| *r == "cACompromise"), "{body}");
    Ok(())
}

#[tokio::test]
async fn renewal_keeps_the_names_and_rekey_changes_the_key() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let dir = tempfile::tempdir()?;
    save_root(&server, &admin, dir.path()).await?;
    let (status, body) = issue(
        &server,
        &admin,
        json!({"common_name": "renew.example.test", "organization": "Example",
               "san": ["dns:renew.example.test", "ip:10.9.8.7"], "validity_days": 30,
               "extended_key_usage": ["clientAuth"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_i64().ok_or("id")?;
    let pubkey = |id: i64, file: &'static str| {
        let (server, auth, dir) = (&server, &auth, dir.path().to_owned());
        async move {
            let (_, pem) =
                download(server, auth, &format!("/api/v2/certificates/{id}/export")).await;
            std::fs::write(dir.join(file), &pem).map_err(|e| e.to_string())?;
            openssl(&dir, &["x509", "-in", file, "-noout", "-pubkey"])
        }
    };
    let original_key = pubkey(id, "old.pem").await?;

    let path = format!("/api/v2/certificates/{id}/renew");
    let (status, renewed) = server
        .call(
            Method::POST,
            &path,
            &auth,
            Some(json!({"validity_days": 60})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{renewed}");
    let new = &renewed["data"];
    assert_eq!(new["renewed_from"], id);
    assert_eq!(new["subject"], "CN=renew.example.test,O=Example");
    assert_eq!(new["san"], json!(["dns:renew.example.test", "ip:10.9.8.7"]));
    assert_eq!(new["days_remaining"], 59);
    assert_eq!(
        new["private_key_available"], true,
        "the stored key carries over"
    );
    assert_ne!(new["serial_number"], body["data"]["serial_number"]);
    let new_id = new["id"].as_i64().ok_or("id")?;
    assert_eq!(pubkey(new_id, "new.pem").await?, original_key, "same key");
    let text = openssl(dir.path(), &["x509", "-in", "new.pem", "-noout", "-text"])?;
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    let (_, chain) = download(
        &server,
        &auth,
        &format!("/api/v2/certificates/{new_id}/export?format=chain"),
    )
    .await;
    std::fs::write(dir.path().join("chain.pem"), &chain)?;
    let out = openssl(
        dir.path(),
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "chain.pem",
            "new.pem",
        ],
    )?;
    assert!(out.contains("OK"), "{out}");
    // The original stays valid.
    let (_, old) = server
        .call(
            Method::GET,
            &format!("/api/v2/certificates/{id}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(old["data"]["status"], "active");

    let (status, rekeyed) = server
        .call(
            Method::POST,
            &path,
            &auth,
            Some(json!({"new_key": true, "key_algorithm": "RSA", "key_size": 2048})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rekeyed}");
    assert_eq!(rekeyed["data"]["key_type"], "RSA 2048");
    assert_eq!(
        rekeyed["data"]["days_remaining"], 29,
        "the original's validity"
    );
    let rekeyed_id = rekeyed["data"]["id"].as_i64().ok_or("id")?;
    assert_ne!(
        pubkey(rekeyed_id, "rekeyed.pem").await?,
        original_key,
        "a new key"
    );

    // A rekey to the key of a CSR made by openssl: the names stay the original's.
    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-nodes",
            "-keyout",
            "rekey.key",
            "-out",
            "rekey.csr",
            "-subj",
            "/CN=ignored.example.test",
        ],
    )?;
    let csr = std::fs::read_to_string(dir.path().join("rekey.csr"))?;
    let (status, from_csr) = server
        .call(Method::POST, &path, &auth, Some(json!({"csr": csr})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{from_csr}");
    assert_eq!(from_csr["data"]["key_type"], "EC P-384");
    assert_eq!(
        from_csr["data"]["common_name"],
        rekeyed["data"]["common_name"]
    );
    assert_eq!(from_csr["data"]["private_key_available"], false);
    let csr_key = openssl(dir.path(), &["pkey", "-in", "rekey.key", "-pubout"])?;
    let from_csr_id = from_csr["data"]["id"].as_i64().ok_or("id")?;
    assert_eq!(pubkey(from_csr_id, "from-csr.pem").await?, csr_key);

    for (body, status) in [
        (
            json!({"validity_days": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"ca_id": 999}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"key_size": 1024}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"reason": "x"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"csr": "not a CSR"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"csr": csr, "new_key": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (got, answer) = server
            .call(Method::POST, &path, &auth, Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body}: {answer}");
    }
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/certificates/424242/renew",
            &auth,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        server
            .audit_total(&auth, "action=certificate_renewed")
            .await,
        3
    );
    Ok(())
}

#[tokio::test]
async fn stats_and_a_cas_own_certificates() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (_, cas) = server.call(Method::GET, "/api/v2/cas", &auth, None).await;
    let root_id = cas["data"][0]["id"].as_i64().ok_or("root id")?;
    let sub_id = cas["data"][1]["id"].as_i64().ok_or("sub id")?;
    let mut ids = Vec::new();
    for (cn, days) in [
        ("s1.example.test", 10),
        ("s2.example.test", 200),
        ("s3.example.test", 300),
    ] {
        let (status, body) = issue(
            &server,
            &admin,
            json!({"common_name": cn, "validity_days": days}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["data"]["id"].as_i64().ok_or("id")?);
    }
    server
        .call(
            Method::POST,
            &format!("/api/v2/certificates/{}/revoke", ids[2]),
            &auth,
            Some(json!({"reason": "superseded"})),
        )
        .await;
    let (status, stats) = server
        .call(Method::GET, "/api/v2/certificates/stats", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    // Three issued here plus the HTTPS listener's own certificate.
    assert_eq!(
        stats["data"],
        json!({"total": 4, "active": 3, "expired": 0, "revoked": 1, "expiring": 1})
    );
    // Time passes: the 10-day certificate expires.
    server.clock.advance(time::Duration::days(11));
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (_, stats) = server
        .call(Method::GET, "/api/v2/certificates/stats", &auth, None)
        .await;
    assert_eq!(stats["data"]["expired"], 1, "{stats}");
    assert_eq!(stats["data"]["active"], 2, "{stats}");

    let (status, issued) = server
        .call(
            Method::GET,
            &format!("/api/v2/cas/{sub_id}/certificates?status=active"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    assert_eq!(issued["meta"]["total"], 2, "{issued}");
    let (_, none) = server
        .call(
            Method::GET,
            &format!("/api/v2/cas/{root_id}/certificates"),
            &auth,
            None,
        )
        .await;
    assert_eq!(none["meta"]["total"], 0, "{none}");
    let (status, _) = server
        .call(Method::GET, "/api/v2/cas/424242/certificates", &auth, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn the_private_key_comes_out_only_with_export_keys_optionally_encrypted() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let dir = tempfile::tempdir()?;
    let (_, body) = issue(&server, &admin, json!({"common_name": "key.example.test"})).await;
    let id = body["data"]["id"].as_i64().ok_or("id")?;
    let path = format!("/api/v2/certificates/{id}/key");
    let (_, pem) = download(&server, &auth, &format!("/api/v2/certificates/{id}/export")).await;
    std::fs::write(dir.path().join("cert.pem"), &pem)?;
    let cert_key = openssl(
        dir.path(),
        &["x509", "-in", "cert.pem", "-noout", "-pubkey"],
    )?;

    let (status, plain) = server
        .call(Method::POST, &path, &auth, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    assert_eq!(plain["data"]["encrypted"], false);
    assert_eq!(plain["data"]["key_type"], "EC P-256");
    std::fs::write(
        dir.path().join("plain.pem"),
        plain["data"]["private_key"].as_str().ok_or("pem")?,
    )?;
    assert_eq!(
        openssl(dir.path(), &["pkey", "-in", "plain.pem", "-pubout"])?,
        cert_key
    );

    let (status, sealed) = server
        .call(
            Method::POST,
            &path,
            &auth,
            Some(json!({"passphrase": "open sesame"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sealed}");
    let text = sealed["data"]["private_key"].as_str().ok_or("pem")?;
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{text}"
    );
    std::fs::write(dir.path().join("sealed.pem"), text)?;
    let opened = openssl(
        dir.path(),
        &[
            "pkey",
            "-in",
            "sealed.pem",
            "-passin",
            "pass:open sesame",
            "-pubout",
        ],
    )?;
    assert_eq!(opened, cert_key);
    assert!(
        openssl(
            dir.path(),
            &[
                "pkey",
                "-in",
                "sealed.pem",
                "-passin",
                "pass:wrong",
                "-pubout"
            ]
        )
        .is_err()
    );

    let (status, _) = server
        .call(
            Method::POST,
            &path,
            &auth,
            Some(json!({"passphrase": "short"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    server.user(&admin, "ana", "auditor").await;
    let auditor = server.login("ana", ADMIN_PASSWORD).await;
    let (status, _) = server
        .call(
            Method::POST,
            &path,
            &Auth::Session(&auditor),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        server
            .audit_total(&auth, "action=private_key_exported")
            .await,
        2
    );
    Ok(())
}

/// A cursor walks the inventory as page numbers do, each page starting where the last ended;
/// a cursor this server did not give, or one with a page number, is refused, and so is a
/// cursor on a list that is not in id order (groups, by name).
#[tokio::test]
async fn a_cursor_walks_the_inventory_as_page_numbers_do() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    for i in 0..5 {
        let (status, body) = issue(
            &server,
            &admin,
            json!({"common_name": format!("walk{i}.example.test"), "validity_days": 30}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let get = |path: String| {
        let server = &server;
        let admin = &admin;
        async move {
            server
                .call(Method::GET, &path, &Auth::Session(admin), None)
                .await
        }
    };
    let ids = |body: &Value| -> Vec<i64> {
        body["data"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["id"].as_i64()).collect())
            .unwrap_or_default()
    };
    let query = "/api/v2/certificates?search=walk&per_page=2";
    let mut numbered = Vec::new();
    for page in 1..=3 {
        let (status, body) = get(format!("{query}&page={page}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        numbered.extend(ids(&body));
    }
    assert_eq!(numbered.len(), 5);

    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            None => query.to_owned(),
            Some(c) => format!("{query}&cursor={c}"),
        };
        let (status, body) = get(path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["meta"]["total"], 5, "{body}");
        walked.extend(ids(&body));
        match body["meta"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, numbered);
    // A numbered page names the next while items follow it, and the last does not.
    let (_, second) = get(format!("{query}&page=2")).await;
    assert_eq!(
        second["meta"]["next_cursor"],
        json!(numbered[3].to_string()),
        "{second}"
    );
    let (_, last) = get(format!("{query}&page=3")).await;
    assert_eq!(last["meta"]["next_cursor"], Value::Null, "{last}");
    let (_, after_second) = get(format!("{query}&cursor={}", numbered[3])).await;
    assert_eq!(ids(&after_second), numbered[4..]);

    // HEAD answers the count alone.
    let head = server
        .request(Method::HEAD, query, &Auth::Session(&admin), None)
        .await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()
            .get("x-total-count")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    assert!(head.bytes().await?.is_empty());

    for (path, status) in [
        (format!("{query}&cursor=abc"), StatusCode::BAD_REQUEST),
        (format!("{query}&cursor=-4"), StatusCode::BAD_REQUEST),
        (format!("{query}&cursor=4&page=2"), StatusCode::BAD_REQUEST),
        (
            "/api/v2/groups?cursor=4".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (got, body) = get(path.clone()).await;
        assert_eq!(got, status, "{path}: {body}");
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_list_filters_and_sorts_as_asked() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let issued = [
        json!({"common_name": "ec.filter.test", "validity_days": 30,
               "san": ["dns:ec.filter.test", "ip:192.0.2.7"]}),
        json!({"common_name": "rsa.filter.test", "validity_days": 90, "key_algorithm": "RSA",
               "key_size": 2048, "san": ["dns:rsa.filter.test"]}),
        json!({"common_name": "ed.filter.test", "validity_days": 60, "key_algorithm": "Ed25519",
               "san": ["dns:ed.filter.test", "email:ops@filter.test"]}),
    ];
    let mut ids = Vec::new();
    for body in issued {
        let (status, body) = issue(&server, &admin, body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["data"]["id"].as_i64().unwrap_or_default());
    }
    let (ec, rsa, ed) = (ids[0], ids[1], ids[2]);
    // The RSA one renews itself, so that one is renewed and one is a renewal.
    let (status, renewal) = server
        .call(
            Method::POST,
            &format!("/api/v2/certificates/{rsa}/renew"),
            &Auth::Session(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{renewal}");
    let renewal = renewal["data"]["id"].as_i64().unwrap_or_default();
    assert!(renewal > ed, "{renewal}");

    let get = |path: String| {
        let server = &server;
        let admin = &admin;
        async move {
            server
                .call(Method::GET, &path, &Auth::Session(admin), None)
                .await
        }
    };
    let found = |query: &'static str| {
        let get = &get;
        async move {
            let (status, body) =
                get(format!("/api/v2/certificates?search=filter.test&{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            let ids: Vec<i64> = body["data"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c["id"].as_i64()).collect())
                .unwrap_or_default();
            assert_eq!(body["meta"]["total"], json!(ids.len()), "{query}: {body}");
            ids
        }
    };
    assert_eq!(found("").await, [renewal, ed, rsa, ec]);
    assert_eq!(found("key_type=Ed25519").await, [ed]);
    assert_eq!(found("key_type=EC%20P-256").await, [ec]);
    assert_eq!(
        found("key_algorithm=rsa&key_size=2048").await,
        [renewal, rsa]
    );
    assert_eq!(found("key_algorithm=Ed25519").await, [ed]);
    assert_eq!(
        found("signature_algorithm=ecdsa-with-SHA256").await.len(),
        4,
        "the default CA signs with ECDSA"
    );
    assert_eq!(found("san_type=ip").await, [ec]);
    assert_eq!(found("san_type=email").await, [ed]);
    assert_eq!(found("san_type=uri").await, Vec::<i64>::new());
    assert_eq!(found("source=api").await.len(), 4);
    assert_eq!(found("source=acme").await, Vec::<i64>::new());
    assert_eq!(found("has_key=true").await.len(), 4);
    assert_eq!(found("has_key=false").await, Vec::<i64>::new());
    assert_eq!(found("renewed=true").await, [rsa]);
    assert_eq!(found("renewed=false").await, [renewal, ed, ec]);
    let (_, me) = get("/api/v2/account/profile".into()).await;
    let owner = me["data"]["id"].as_i64().unwrap_or_default();
    let (status, mine) = get(format!(
        "/api/v2/certificates?search=filter.test&owner_id={owner}"
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["meta"]["total"], 4, "{mine}");
    assert_eq!(found("owner_id=999999").await, Vec::<i64>::new());
    // Windows: expiring within 45 days, and valid from tomorrow on.
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(45))
        .format(&time::format_description::well_known::Rfc3339)?;
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)?;
    let (_, within) = get(format!(
        "/api/v2/certificates?search=filter.test&expires_before={soon}"
    ))
    .await;
    assert_eq!(within["meta"]["total"], 1, "{within}");
    assert_eq!(within["data"][0]["id"], ec, "{within}");
    let (_, later) = get(format!(
        "/api/v2/certificates?search=filter.test&valid_from_after={tomorrow}"
    ))
    .await;
    assert_eq!(later["meta"]["total"], 0, "{later}");
    // Orders: by expiry either way, oldest first.
    assert_eq!(
        found("sort=valid_until&order=asc").await,
        [ec, ed, rsa, renewal]
    );
    assert_eq!(found("sort=valid_until").await, [renewal, rsa, ed, ec]);
    assert_eq!(found("order=asc").await, [ec, rsa, ed, renewal]);

    // What the list cannot do is a 400 that says why.
    for (query, says) in [
        ("source=carrier-pigeon", "unknown source"),
        ("san_type=x400", "unknown san_type"),
        ("sort=serial", "unknown sort"),
        ("order=sideways", "unknown order"),
        ("key_algorithm=RSA", "needs key_size"),
        ("key_size=2048", "needs key_algorithm"),
        ("key_type=Ed25519&key_algorithm=Ed25519", "not both"),
        ("key_algorithm=DSA&key_size=1024", "not supported"),
        ("has_key=maybe", "has_key"),
        ("expires_before=next-week", "expires_before"),
        ("sort=valid_until&cursor=5", "no cursor"),
    ] {
        let (status, body) = get(format!("/api/v2/certificates?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(says)),
            "{query}: {body}"
        );
    }
    // A sorted list is paged by number, and names no cursor.
    let (_, sorted) =
        get("/api/v2/certificates?search=filter.test&sort=valid_from&per_page=2".into()).await;
    assert_eq!(sorted["meta"]["total"], 4, "{sorted}");
    assert!(sorted["meta"]["next_cursor"].is_null(), "{sorted}");
    Ok(())
}
