//! Templates over REST: the built-in ones issue certificates `openssl verify` accepts with the
//! extensions they promise, requests are held to a template's rules, and templates are created,
//! changed, deleted, exported and imported.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Auth, Session, TestResult, TestServer, fetch, openssl};

async fn template_ids(server: &TestServer, admin: &Session) -> Vec<(String, i64, bool)> {
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/templates",
            &Auth::Session(admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|t| {
                    (
                        t["name"].as_str().unwrap_or_default().to_owned(),
                        t["id"].as_i64().unwrap_or_default(),
                        t["builtin"].as_bool().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn id_of(templates: &[(String, i64, bool)], name: &str) -> i64 {
    templates
        .iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, id, _)| *id)
        .unwrap_or_else(|| panic!("no template named {name}"))
}

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

#[tokio::test]
async fn every_builtin_template_issues_what_openssl_verifies() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let templates = template_ids(&server, &admin).await;
    let builtin: Vec<&str> = templates
        .iter()
        .filter(|(_, _, b)| *b)
        .map(|(n, _, _)| n.as_str())
        .collect();
    assert_eq!(
        builtin,
        [
            "TLS Server",
            "TLS Client",
            "TLS Server and Client",
            "Code Signing",
            "S/MIME Email",
            "OCSP Signing",
            "Subordinate CA"
        ]
    );
    let (_, cas) = server
        .call(Method::GET, "/api/v2/cas", &Auth::Session(&admin), None)
        .await;
    let root_id = cas["data"][0]["id"].as_i64().ok_or("root id")?;
    let root_refid = cas["data"][0]["refid"].as_str().ok_or("root refid")?;
    let dir = tempfile::tempdir()?;
    let root = reqwest::get(format!("{}/ca/{root_refid}.pem", server.http))
        .await?
        .bytes()
        .await?;
    std::fs::write(dir.path().join("root.pem"), root)?;

    // Each template once, the key types taking turns so that each is used.
    let cases: [(&str, Value, &str, &[&str]); 7] = [
        (
            "TLS Server",
            json!({"common_name": "tls.example.test", "san": ["dns:tls.example.test"],
                   "key_algorithm": "RSA", "key_size": 2048}),
            "sslserver",
            &["TLS Web Server Authentication", "DNS:tls.example.test"],
        ),
        (
            "TLS Client",
            json!({"common_name": "client-7", "key_algorithm": "EC", "curve": "P-384"}),
            "sslclient",
            &["TLS Web Client Authentication", "Digital Signature"],
        ),
        (
            "TLS Server and Client",
            json!({"common_name": "peer.example.test", "san": ["dns:peer.example.test"],
                   "key_algorithm": "Ed25519"}),
            "any",
            &["TLS Web Server Authentication, TLS Web Client Authentication"],
        ),
        (
            "Code Signing",
            json!({"common_name": "Build Signer", "key_algorithm": "RSA", "key_size": 3072}),
            "any",
            &["Code Signing"],
        ),
        (
            "S/MIME Email",
            json!({"common_name": "Alice", "san": ["email:alice@example.test"],
                   "key_algorithm": "RSA", "key_size": 4096}),
            "smimesign",
            &[
                "E-mail Protection",
                "email:alice@example.test",
                "Key Encipherment",
            ],
        ),
        (
            "OCSP Signing",
            json!({"common_name": "OCSP Responder"}),
            "ocsphelper",
            &["OCSP Signing", "OCSP No Check"],
        ),
        (
            "Subordinate CA",
            json!({"common_name": "Team CA", "ca_id": root_id, "key_algorithm": "EC",
                   "curve": "P-384"}),
            "any",
            &["CA:TRUE, pathlen:0", "Certificate Sign, CRL Sign"],
        ),
    ];
    let mut key_types = Vec::new();
    for (name, mut request, purpose, expected) in cases {
        request["template_id"] = json!(id_of(&templates, name));
        let (status, body) = issue(&server, &admin, request).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        key_types.push(
            body["data"]["key_type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        let id = body["data"]["id"].as_i64().ok_or("id")?;
        let pem = fetch(
            &server,
            &admin,
            &format!("/api/v2/certificates/{id}/export"),
        )
        .await?;
        let chain = fetch(
            &server,
            &admin,
            &format!("/api/v2/certificates/{id}/export?format=chain"),
        )
        .await?;
        std::fs::write(dir.path().join("leaf.pem"), pem)?;
        std::fs::write(dir.path().join("chain.pem"), chain)?;
        openssl(
            dir.path(),
            &[
                "verify",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "chain.pem",
                "-purpose",
                purpose,
                "leaf.pem",
            ],
        )
        .map_err(|e| format!("{name}: {e}"))?;
        let text = openssl(dir.path(), &["x509", "-in", "leaf.pem", "-noout", "-text"])?;
        for needle in expected {
            assert!(text.contains(needle), "{name}: no '{needle}' in\n{text}");
        }
        if name == "TLS Client" || name == "OCSP Signing" {
            assert!(
                !text.contains("Key Encipherment"),
                "{name} must not allow key encipherment:\n{text}"
            );
        }
    }
    key_types.sort();
    key_types.dedup();
    assert_eq!(
        key_types,
        [
            "EC P-256", "EC P-384", "Ed25519", "RSA 2048", "RSA 3072", "RSA 4096"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn requests_are_held_to_their_template() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let templates = template_ids(&server, &admin).await;
    let tls = id_of(&templates, "TLS Server");
    let smime = id_of(&templates, "S/MIME Email");
    let before = server
        .call(
            Method::GET,
            "/api/v2/certificates/stats",
            &Auth::Session(&admin),
            None,
        )
        .await
        .1["data"]["total"]
        .clone();

    for (request, complaint) in [
        (
            json!({"template_id": tls, "common_name": "a.example.test", "san": ["dns:a.example.test"], "validity_days": 398}),
            "validity_days must be between 1 and 397",
        ),
        (
            json!({"template_id": tls, "common_name": "no-san.example.test"}),
            "needs at least one subject alternative name",
        ),
        (
            json!({"template_id": tls, "common_name": "a.example.test", "san": ["email:a@example.test"]}),
            "does not allow email names",
        ),
        (
            json!({"template_id": tls, "common_name": "a.example.test", "san": ["dns:a.example.test"],
                   "extended_key_usage": ["codeSigning"]}),
            "does not allow extended key usage codeSigning",
        ),
        (
            json!({"template_id": smime, "common_name": "Bob", "san": ["email:bob@example.test"],
                   "key_usage": ["keyCertSign"]}),
            "does not allow key usage keyCertSign",
        ),
        (
            json!({"template_id": 999_999, "common_name": "a.example.test"}),
            "template 999999 does not exist",
        ),
    ] {
        let (status, body) = issue(&server, &admin, request.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{request}: {body}"
        );
        let error = body["message"].as_str().unwrap_or_default();
        assert!(error.contains(complaint), "{request}: {error}");
    }

    // A template of our own: a default key, allowed key types and domains.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/templates",
            &Auth::Session(&admin),
            Some(json!({
                "name": "Internal services",
                "description": "Short-lived, P-384 only",
                "validity_days": 30,
                "max_validity_days": 60,
                "key_algorithm": "EC", "curve": "P-384",
                "allowed_key_types": ["EC P-384"],
                "key_usage": ["digitalSignature"],
                "extended_key_usage": ["serverAuth", "clientAuth"],
                "san_types": ["dns"],
                "require_san": true,
                "allowed_domains": ["svc.example.test"]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let own = body["data"]["id"].as_i64().ok_or("id")?;
    assert_eq!(body["data"]["builtin"], false);
    assert_eq!(body["data"]["allowed_key_types"], json!(["EC P-384"]));

    let (status, body) = issue(
        &server,
        &admin,
        json!({"template_id": own, "common_name": "db.svc.example.test",
               "san": ["dns:db.svc.example.test", "dns:*.db.svc.example.test"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["key_type"], "EC P-384");
    assert_eq!(body["data"]["days_remaining"], 29, "{body}");

    for (request, complaint) in [
        (
            json!({"template_id": own, "common_name": "x", "san": ["dns:evil.example.test"]}),
            "does not allow the DNS name 'evil.example.test'",
        ),
        (
            json!({"template_id": own, "common_name": "x", "san": ["dns:notsvc.example.test"]}),
            "allowed domains: svc.example.test",
        ),
        (
            json!({"template_id": own, "common_name": "x", "san": ["dns:a.svc.example.test"],
                   "key_algorithm": "RSA", "key_size": 2048}),
            "does not allow RSA 2048 keys; allowed: EC P-384",
        ),
    ] {
        let (status, body) = issue(&server, &admin, request.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{request}: {body}"
        );
        let error = body["message"].as_str().unwrap_or_default();
        assert!(error.contains(complaint), "{request}: {error}");
    }

    // Only the one good request was stored.
    let (_, stats) = server
        .call(
            Method::GET,
            "/api/v2/certificates/stats",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(
        stats["data"]["total"].as_i64(),
        before.as_i64().map(|n| n + 1)
    );
    Ok(())
}

#[tokio::test]
async fn templates_are_changed_deleted_exported_and_imported() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let templates = template_ids(&server, &admin).await;
    let builtin = id_of(&templates, "TLS Client");

    // Broken rules are refused with the reason, and nothing is stored.
    for (body, complaint) in [
        (
            json!({"name": "x", "validity_days": 0}),
            "between 1 and 3650",
        ),
        (
            json!({"name": "x", "validity_days": 90, "max_validity_days": 30}),
            "max_validity_days is below validity_days",
        ),
        (
            json!({"name": "x", "key_usage": ["signEverything"]}),
            "unknown key usage",
        ),
        (
            json!({"name": "x", "allowed_key_types": ["DSA 1024"]}),
            "key type 'DSA 1024'",
        ),
        (
            json!({"name": "x", "san_types": ["x400"]}),
            "unknown SAN type",
        ),
        (
            json!({"name": "x", "key_usage": ["keyCertSign"]}),
            "keyCertSign is for CA templates only",
        ),
        (
            json!({"name": "x", "validity_dayz": 3}),
            "unknown field `validity_dayz`",
        ),
        (json!({"name": " "}), "1 to 100 characters"),
        (
            json!({"name": "x", "key_size": 2048, "curve": "P-256"}),
            "key_size and curve together need key_algorithm",
        ),
        (json!({"name": "x", "key_size": 1024}), "RSA key size 1024"),
    ] {
        let (status, reply) = server
            .call(Method::POST, "/api/v2/templates", &auth, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {reply}");
        let error = reply["message"].as_str().unwrap_or_default();
        assert!(error.contains(complaint), "{body}: {error}");
    }
    assert_eq!(template_ids(&server, &admin).await.len(), 7);

    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/templates",
            &auth,
            Some(
                json!({"name": "Web", "validity_days": 90, "extended_key_usage": ["serverAuth"],
                        "key_usage": ["digitalSignature"]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let web = body["data"]["id"].as_i64().ok_or("id")?;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/templates",
            &auth,
            Some(json!({"name": "Web"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // PUT changes the fields it names and keeps the rest.
    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/api/v2/templates/{web}"),
            &auth,
            Some(json!({"name": "Web servers", "validity_days": 60})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "Web servers");
    assert_eq!(body["data"]["validity_days"], 60);
    assert_eq!(body["data"]["extended_key_usage"], json!(["serverAuth"]));
    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/api/v2/templates/{web}"),
            &auth,
            Some(json!({"validity_days": "long"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Built-in templates are read-only.
    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/api/v2/templates/{builtin}"),
            &auth,
            Some(json!({"validity_days": 3000})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/templates/{builtin}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Export one, import it back under another name from a multipart upload.
    let exported = fetch(&server, &admin, &format!("/api/v2/templates/{web}/export")).await?;
    let mut doc: Value = serde_json::from_slice(&exported)?;
    assert_eq!(doc["name"], "Web servers");
    assert!(doc.get("id").is_none(), "{doc}");
    doc["name"] = json!("Web servers (copy)");
    let (status, body) = server
        .upload(
            "/api/v2/templates/import",
            &auth,
            serde_json::to_vec(&doc)?,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!({"imported": 1, "updated": 0, "skipped": 0})
    );

    // Export all and import them again as JSON: everything exists, so everything is skipped;
    // with update_existing the editable ones are replaced and the built-in ones still skipped.
    let all = fetch(&server, &admin, "/api/v2/templates/export").await?;
    let all_text = String::from_utf8(all)?;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/templates/import",
            &auth,
            Some(json!({"json_content": all_text})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!({"imported": 0, "updated": 0, "skipped": 9})
    );
    let (status, body) = server
        .upload(
            "/api/v2/templates/import",
            &auth,
            all_text.clone().into_bytes(),
            &[("update_existing", "true")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!({"imported": 0, "updated": 2, "skipped": 7})
    );

    // One bad template in a file: nothing of the file is imported.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/templates/import",
            &auth,
            Some(json!({"json_content": "[{\"name\": \"Fine\"}, {\"name\": \"Bad\", \"validity_days\": -1}]"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("template 2 of the file"),
        "{body}"
    );
    let (status, body) = server
        .upload("/api/v2/templates/import", &auth, b"not json".to_vec(), &[])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(template_ids(&server, &admin).await.len(), 9);

    // A certificate issued from a template keeps its data when the template goes.
    let (status, body) = issue(
        &server,
        &admin,
        json!({"template_id": web, "common_name": "keep.example.test", "san": ["dns:keep.example.test"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cert = body["data"]["id"].as_i64().ok_or("id")?;
    let copy = id_of(&template_ids(&server, &admin).await, "Web servers (copy)");
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/templates/bulk/delete",
            &auth,
            Some(json!({"ids": [web, builtin, copy]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["success"], json!([web, copy]));
    assert_eq!(body["data"]["failed"], json!([builtin]));
    assert!(
        body["data"]["errors"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("built-in"),
        "{body}"
    );
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/v2/certificates/{cert}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server.audit_total(&auth, "action=template_deleted").await,
        2
    );
    Ok(())
}

/// A key size alone names an RSA key, as the reference document's example has it.
#[tokio::test]
async fn a_key_size_alone_names_an_rsa_key() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/templates",
            &Auth::Session(&admin),
            Some(json!({"name": "RSA by size", "key_size": 3072})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let template = body["data"]["id"].as_i64().ok_or("id")?;
    let (status, body) = issue(
        &server,
        &admin,
        json!({"common_name": "sized.example.test", "template_id": template}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["key_type"], "RSA 3072", "{body}");
    server.stop().await;
    Ok(())
}
