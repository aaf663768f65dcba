//! Certificate authorities: the hierarchy made at first start, read through the API and
//! downloaded by anyone.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Auth, TestResult, TestServer, openssl};

#[tokio::test]
async fn first_start_hierarchy_is_listed_and_its_certificates_download_without_credentials()
-> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, body) = server
        .call(Method::GET, "/api/v2/cas", &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta"]["total"], 2);
    let cas = body["data"].as_array().ok_or("data")?;
    let (root, sub) = (&cas[0], &cas[1]);
    assert_eq!(root["name"], "certmint Root CA");
    assert_eq!(root["ca_type"], "root");
    assert_eq!(root["key_type"], "EC P-384");
    assert_eq!(root["key_size"], 384);
    assert_eq!(root["signature_algorithm"], "ecdsa-with-SHA384");
    assert_eq!(sub["name"], "certmint Issuing CA");
    assert_eq!(sub["ca_type"], "intermediate");
    assert_eq!(sub["key_type"], "EC P-256");
    assert_eq!(sub["key_size"], 256);
    assert_eq!(sub["parent_id"], root["id"]);
    assert_eq!(sub["is_default"], true);
    assert_eq!(sub["has_private_key"], true);
    assert_eq!(sub["path_length"], 0);

    let (status, tree) = server
        .call(
            Method::GET,
            "/api/v2/cas/tree",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tree}");
    assert_eq!(tree["data"][0]["name"], "certmint Root CA");
    assert_eq!(
        tree["data"][0]["children"][0]["name"],
        "certmint Issuing CA"
    );
    assert_eq!(tree["data"].as_array().map(Vec::len), Some(1));

    let id = sub["id"].as_i64().ok_or("id")?;
    let (status, one) = server
        .call(
            Method::GET,
            &format!("/api/v2/cas/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["data"]["refid"], sub["refid"]);
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/cas/424242",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Anyone may fetch CA certificates over plain HTTP: DER as .cer, PEM as .pem.
    let plain = reqwest::Client::new();
    let root_refid = root["refid"].as_str().ok_or("refid")?;
    let response = plain
        .get(format!("{}/ca/{root_refid}.cer", server.http))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pkix-cert");
    let der = response.bytes().await?;
    let sub_refid = sub["refid"].as_str().ok_or("refid")?;
    let sub_pem = plain
        .get(format!("{}/ca/{sub_refid}.pem", server.http))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        sub_pem.starts_with("-----BEGIN CERTIFICATE-----"),
        "{sub_pem}"
    );
    // The numeric id serves as well as the refid.
    let by_id = plain
        .get(format!("{}/ca/{}.pem", server.http, sub["id"]))
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(by_id, sub_pem);
    for missing in [
        "/ca/nosuch.cer",
        "/ca/424242.pem",
        &format!("/ca/{root_refid}.exe"),
        "/ca/plain",
    ] {
        let response = plain
            .get(format!("{}{missing}", server.http))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
    }

    // The HTTPS listener's certificate chains up to the downloaded root.
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("root.cer"), &der)?;
    std::fs::write(dir.path().join("sub.pem"), &sub_pem)?;
    std::fs::copy(
        server._data_dir.path().join("tls/server.crt"),
        dir.path().join("listener.pem"),
    )?;
    openssl(
        dir.path(),
        &[
            "x509", "-inform", "DER", "-in", "root.cer", "-out", "root.pem",
        ],
    )?;
    openssl(
        dir.path(),
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "sub.pem",
            "-purpose",
            "sslserver",
            "listener.pem",
        ],
    )?;
    Ok(())
}

#[tokio::test]
async fn roots_and_intermediates_are_created_exported_and_issue() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (status, root) = server
        .call(
            Method::POST,
            "/api/v2/cas",
            &auth,
            Some(serde_json::json!({
                "common_name": "Lab Root", "organization": "Lab", "country": "NL",
                "key_algorithm": "RSA", "key_size": 3072, "validity_days": 3650, "ca_type": "root"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{root}");
    assert_eq!(root["data"]["name"], "Lab Root");
    assert_eq!(root["data"]["key_type"], "RSA 3072");
    assert_eq!(root["data"]["key_size"], 3072);
    assert_eq!(root["data"]["subject"], "CN=Lab Root,O=Lab,C=NL");
    let root_id = root["data"]["id"].as_i64().ok_or("id")?;

    let (status, sub) = server
        .call(
            Method::POST,
            "/api/v2/cas",
            &auth,
            Some(serde_json::json!({
                "common_name": "Lab Issuing", "name": "lab-issuing", "ca_type": "intermediate",
                "parent_id": root_id, "key_algorithm": "Ed25519", "validity_days": 730,
                "path_length": 0, "require_template": false
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    assert_eq!(sub["data"]["parent_id"], root_id);
    assert_eq!(
        sub["data"]["signature_algorithm"],
        "sha256WithRSAEncryption"
    );
    let sub_id = sub["data"]["id"].as_i64().ok_or("id")?;

    let (status, leaf) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &auth,
            Some(
                serde_json::json!({"common_name": "lab.example.test", "ca_id": sub_id,
                                    "san": ["dns:lab.example.test"]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{leaf}");
    assert_eq!(leaf["data"]["signature_algorithm"], "ED25519");
    let leaf_id = leaf["data"]["id"].as_i64().ok_or("id")?;

    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("root.pem"),
        fetch(&server, &auth, format!("/api/v2/cas/{root_id}/export")).await?,
    )?;
    std::fs::write(
        dir.path().join("chain.pem"),
        fetch(
            &server,
            &auth,
            format!("/api/v2/cas/{sub_id}/export?format=chain"),
        )
        .await?,
    )?;
    std::fs::write(
        dir.path().join("leaf.pem"),
        fetch(
            &server,
            &auth,
            format!("/api/v2/certificates/{leaf_id}/export"),
        )
        .await?,
    )?;
    let der = fetch(
        &server,
        &auth,
        format!("/api/v2/cas/{root_id}/export?format=der"),
    )
    .await?;
    assert_eq!(der.first(), Some(&0x30), "DER starts with a SEQUENCE");
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
    )?;

    // Conflicts, rules and permissions.
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/cas",
            &auth,
            Some(serde_json::json!({"common_name": "Lab Root"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    for (body, needle) in [
        (
            serde_json::json!({"common_name": "X", "ca_type": "intermediate"}),
            "parent_id",
        ),
        (
            serde_json::json!({"common_name": "X", "key_size": 1024}),
            "1024",
        ),
        (
            serde_json::json!({"common_name": "X", "ca_type": "leaf"}),
            "leaf",
        ),
        (serde_json::json!({"organization": "no CN"}), "common_name"),
        (
            serde_json::json!({"common_name": "X", "validity_days": 0}),
            "validity_days",
        ),
        (
            serde_json::json!({"common_name": "X", "ca_type": "intermediate", "parent_id": sub_id}),
            "path length",
        ),
    ] {
        let (status, answer) = server
            .call(Method::POST, "/api/v2/cas", &auth, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or_default()
                .contains(needle),
            "{body}: {answer}"
        );
    }
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/v2/cas/{root_id}/export?format=p12"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(server.audit_total(&auth, "action=ca_created").await, 4);
    Ok(())
}

async fn fetch(server: &TestServer, auth: &Auth<'_>, path: String) -> reqwest::Result<Vec<u8>> {
    let response = server.request(Method::GET, &path, auth, None).await;
    response.bytes().await.map(|b| b.to_vec())
}

#[tokio::test]
async fn cas_are_renamed_deactivated_and_deleted_only_when_nothing_depends_on_them() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (_, cas) = server.call(Method::GET, "/api/v2/cas", &auth, None).await;
    let root_id = cas["data"][0]["id"].as_i64().ok_or("root id")?;
    let sub_id = cas["data"][1]["id"].as_i64().ok_or("sub id")?;
    let (status, leaf) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &auth,
            Some(serde_json::json!({"common_name": "dep.example.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{leaf}");
    let leaf_id = leaf["data"]["id"].as_i64().ok_or("id")?;

    let patch = |body: serde_json::Value| {
        let path = format!("/api/v2/cas/{sub_id}");
        let (server, auth) = (&server, &auth);
        async move { server.call(Method::PATCH, &path, auth, Some(body)).await }
    };
    let (status, body) = patch(
        serde_json::json!({"name": "Renamed Issuing", "description": "ops", "is_active": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "Renamed Issuing");
    assert_eq!(body["data"]["description"], "ops");
    assert_eq!(body["data"]["is_active"], false);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &auth,
            Some(serde_json::json!({"common_name": "off.example.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("inactive")
    );
    let (status, _) = patch(serde_json::json!({"is_active": true, "description": null})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = patch(serde_json::json!({"name": "certmint Root CA"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = patch(serde_json::json!({"name": "  "})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = patch(serde_json::json!({"colour": "red"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // The root made the default instead; the intermediate is no longer it.
    let (status, body) = server
        .call(
            Method::PATCH,
            &format!("/api/v2/cas/{root_id}"),
            &auth,
            Some(serde_json::json!({"is_default": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, sub) = server
        .call(Method::GET, &format!("/api/v2/cas/{sub_id}"), &auth, None)
        .await;
    assert_eq!(sub["data"]["is_default"], false);

    // An operator runs CAs but does not delete them.
    server.user(&admin, "olga", "operator").await;
    let operator = server.login("olga", crate::common::ADMIN_PASSWORD).await;
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/cas/{sub_id}"),
            &Auth::Session(&operator),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/cas/{sub_id}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("force=true")
    );
    let (status, body) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/cas/{sub_id}?force=true"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = server
        .call(Method::GET, &format!("/api/v2/cas/{sub_id}"), &auth, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, leaf) = server
        .call(
            Method::GET,
            &format!("/api/v2/certificates/{leaf_id}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(
        leaf["data"]["ca_id"],
        serde_json::Value::Null,
        "kept, unlinked"
    );

    // A certificate is deleted with its key.
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/certificates/{leaf_id}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/v2/certificates/{leaf_id}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/certificates/{leaf_id}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(server.audit_total(&auth, "action=ca_deleted").await, 1);
    assert_eq!(
        server
            .audit_total(&auth, "action=certificate_deleted")
            .await,
        1
    );
    Ok(())
}

#[tokio::test]
async fn lint_refusals_name_their_rules_and_a_ca_can_downgrade_one() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);

    let (status, rules) = server
        .call(Method::GET, "/api/v2/lint/rules", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    let names: Vec<&str> = rules["data"]
        .as_array()
        .ok_or("rules")?
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.contains(&"tls_server_san") && names.contains(&"crl_number"),
        "{rules}"
    );

    // A TLS server certificate for a common name that is no host name, and no SAN.
    let request = json!({"common_name": "Not A Host Name"});
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &auth,
            Some(request.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["lint"][0]["rule"], "tls_server_san", "{body}");
    assert_eq!(body["lint"][0]["severity"], "error", "{body}");
    assert!(
        body["lint"][0]["citation"]
            .as_str()
            .unwrap_or_default()
            .contains("CA/Browser Forum"),
        "{body}"
    );

    let (_, cas) = server.call(Method::GET, "/api/v2/cas", &auth, None).await;
    let issuing = cas["data"]
        .as_array()
        .ok_or("cas")?
        .iter()
        .find(|c| c["is_default"] == true)
        .ok_or("default CA")?;
    assert_eq!(issuing["lint_warn_only"], json!([]));
    let path = format!("/api/v2/cas/{}", issuing["id"]);
    let (status, body) = server
        .call(
            Method::PATCH,
            &path,
            &auth,
            Some(json!({"lint_warn_only": ["no_such_rule"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = server
        .call(
            Method::PATCH,
            &path,
            &auth,
            Some(json!({"lint_warn_only": ["tls_server_san"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["lint_warn_only"], json!(["tls_server_san"]));
    let (status, body) = server
        .call(Method::POST, "/api/v2/certificates", &auth, Some(request))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Ok(())
}

async fn ca_list(server: &TestServer, auth: &Auth<'_>) -> Vec<serde_json::Value> {
    let (status, body) = server.call(Method::GET, "/api/v2/cas", auth, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

/// Each CA in the list counts the certificates it issued, and says whether it is a root, as the
/// reference's CA object does; the single CA view counts the same.
#[tokio::test]
async fn the_ca_list_counts_the_certificates_each_ca_issued() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let before = ca_list(&server, &auth).await;
    let issuing = before
        .iter()
        .find(|c| c["is_default"] == true)
        .ok_or("default CA")?
        .clone();
    let root = before
        .iter()
        .find(|c| c["is_root"] == true)
        .ok_or("root")?
        .clone();
    assert_eq!(issuing["is_root"], false);
    assert_eq!(root["descr"], root["name"]);
    let count = |list: &[serde_json::Value], id: &serde_json::Value| {
        list.iter()
            .find(|c| c["id"] == *id)
            .and_then(|c| c["certificates_count"].as_i64())
    };
    let (issuing_before, root_before) = (
        count(&before, &issuing["id"]).ok_or("count")?,
        count(&before, &root["id"]).ok_or("count")?,
    );
    for cn in ["one.count.test", "two.count.test", "three.count.test"] {
        let (status, body) = server
            .call(
                Method::POST,
                "/api/v2/certificates",
                &auth,
                Some(json!({"common_name": cn})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let after = ca_list(&server, &auth).await;
    assert_eq!(count(&after, &issuing["id"]), Some(issuing_before + 3));
    assert_eq!(count(&after, &root["id"]), Some(root_before));
    let (_, listed) = server
        .call(
            Method::GET,
            &format!("/api/v2/cas/{}/certificates", issuing["id"]),
            &auth,
            None,
        )
        .await;
    assert_eq!(listed["meta"]["total"], issuing_before + 3);
    let (_, one) = server
        .call(
            Method::GET,
            &format!("/api/v2/cas/{}", issuing["id"]),
            &auth,
            None,
        )
        .await;
    assert_eq!(one["data"]["certificates_count"], issuing_before + 3);
    server.stop().await;
    Ok(())
}

/// A CA created with name constraints and without some pointers carries the constraints and
/// says what it points to; a constraint that names nothing is refused and nothing is created.
#[tokio::test]
async fn a_ca_is_created_with_name_constraints_and_its_pointers_chosen() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/cas",
            &auth,
            Some(json!({"common_name": "Bad Constraints", "permitted_subtrees": ["dns:"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, list) = server.call(Method::GET, "/api/v2/cas", &auth, None).await;
    assert!(!list.to_string().contains("Bad Constraints"), "{list}");
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/cas",
            &auth,
            Some(json!({
                "common_name": "Constrained Root",
                "permitted_subtrees": ["dns:corp.example", "email:corp.example"],
                "excluded_subtrees": ["ip:10.9.0.0/16"],
                "ocsp_enabled": false,
                "aia_ca_issuers_enabled": false,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ca = &body["data"];
    assert_eq!(
        (
            ca["cdp_enabled"].as_bool(),
            ca["ocsp_enabled"].as_bool(),
            ca["aia_ca_issuers_enabled"].as_bool()
        ),
        (Some(true), Some(false), Some(false)),
        "{ca}"
    );
    let id = ca["id"].as_i64().unwrap_or_default();
    let pem = fetch(
        &server,
        &auth,
        format!("/api/v2/cas/{id}/export?format=pem"),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("ca.pem"), pem)?;
    let text = openssl(dir.path(), &["x509", "-in", "ca.pem", "-noout", "-text"])?;
    for part in [
        "DNS:corp.example",
        "email:corp.example",
        "IP:10.9.0.0/255.255.0.0",
    ] {
        assert!(text.contains(part), "{part} missing: {text}");
    }
    Ok(())
}
