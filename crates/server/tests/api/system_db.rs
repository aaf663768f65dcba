//! `/system/db/*`: figures, the integrity check (a tampered DER and a wrong issuer link are
//! found), upkeep, and the export (opened, its PEMs verified by openssl against its CA PEMs).

use std::io::Read;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Auth, Session, TestResult, TestServer, openssl, post};

/// Issues a certificate for `cn` from the default CA; returns its id.
pub async fn issue(server: &TestServer, admin: &Session, cn: &str) -> TestResult<i64> {
    let (status, body) = post(
        server,
        admin,
        "/api/v2/certificates",
        json!({"common_name": cn, "san": [format!("dns:{cn}")], "validity_days": 30}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Ok(body["data"]["id"].as_i64().ok_or("id")?)
}

/// The ids of the root CA and the issuing CA made at first start.
pub async fn root_and_sub(server: &TestServer, admin: &Session) -> TestResult<(i64, i64)> {
    let (_, cas) = server
        .call(Method::GET, "/api/v2/cas", &Auth::Session(admin), None)
        .await;
    let id = |i: usize| cas["data"][i]["id"].as_i64().ok_or("CA id");
    Ok((id(0)?, id(1)?))
}

pub async fn call(
    server: &TestServer,
    admin: &Session,
    method: Method,
    path: &str,
) -> (StatusCode, Value) {
    server.call(method, path, &Auth::Session(admin), None).await
}

fn on_sqlite(server: &TestServer) -> bool {
    server.database_url.starts_with("sqlite:")
}

/// Runs `sql` on the test's database, spelling a blob as that database reads one.
async fn set_der(server: &TestServer, id: i64, der: &[u8]) -> TestResult {
    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
    let literal = if on_sqlite(server) {
        format!("X'{hex}'")
    } else {
        format!("decode('{hex}', 'hex')")
    };
    let raw = server.raw_store().await;
    raw.execute_raw(&format!(
        "UPDATE certificates SET der = {literal} WHERE id = {id}"
    ))
    .await?;
    raw.close().await;
    Ok(())
}

#[tokio::test]
async fn stats_count_each_table_and_say_how_big_it_is() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    for cn in ["a.stats.test", "b.stats.test"] {
        issue(&server, &admin, cn).await?;
    }
    let (status, body) = call(&server, &admin, Method::GET, "/api/v2/system/db/stats").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    let sqlite = on_sqlite(&server);
    assert_eq!(
        data["backend"],
        if sqlite { "sqlite" } else { "postgresql" }
    );
    assert!(data["database_bytes"].as_i64().ok_or("size")? > 0, "{data}");
    let tables = data["tables"].as_array().ok_or("tables")?;
    let table = |name: &str| tables.iter().find(|t| t["name"] == name).cloned();
    let certificates = table("certificates").ok_or("certificates table")?;
    // The two, and the HTTPS listener's certificate made at first start.
    assert_eq!(certificates["rows"], 3, "{certificates}");
    assert!(certificates["bytes"].as_i64().ok_or("bytes")? > 0);
    assert_eq!(table("cas").ok_or("cas")?["rows"], 2);
    if sqlite {
        assert!(data["wal_bytes"].is_u64(), "{data}");
        assert!(data["free_bytes"].is_i64(), "{data}");
    } else {
        assert!(data["wal_bytes"].is_null(), "{data}");
    }
    assert!(data["pool"]["max"].as_u64().ok_or("pool")? >= 1);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn integrity_check_finds_a_tampered_certificate_and_a_wrong_issuer_link() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (root, sub) = root_and_sub(&server, &admin).await?;
    let tampered = issue(&server, &admin, "tampered.integrity.test").await?;
    let mislinked = issue(&server, &admin, "mislinked.integrity.test").await?;
    let moved = issue(&server, &admin, "moved-key.integrity.test").await?;
    let check = "/api/v2/system/db/integrity-check";

    let (status, body) = call(&server, &admin, Method::POST, check).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["ok"], true, "{data}");
    // The three, and the HTTPS listener's certificate made at first start.
    assert_eq!(data["certificates_checked"], 4);
    assert_eq!(data["cas_checked"], 2);
    // The two CA keys and the four certificates' keys open with the vault.
    assert_eq!(data["keys_checked"], 6, "{data}");
    if on_sqlite(&server) {
        assert_eq!(
            data["engine"]["checks"],
            json!(["PRAGMA integrity_check", "PRAGMA foreign_key_check"])
        );
    } else {
        let skipped = data["engine"]["skipped"].as_str().ok_or("skipped")?;
        assert!(skipped.contains("amcheck"), "{skipped}");
    }

    // One certificate's signature is altered where it is stored; another is linked to the
    // root, which did not sign it; a third's sealed key is moved to another row's name (its
    // seal is bound to the name).
    let response = server
        .request(
            Method::GET,
            &format!("/api/v2/certificates/{tampered}/export?format=der"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    let mut der = response.bytes().await?.to_vec();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    set_der(&server, tampered, &der).await?;
    let raw = server.raw_store().await;
    raw.execute_raw(&format!(
        "UPDATE certificates SET ca_id = {root} WHERE id = {mislinked}"
    ))
    .await?;
    raw.execute_raw(&format!(
        "UPDATE keys SET refid = 'moved' WHERE id = (SELECT key_id FROM certificates WHERE id = {moved})"
    ))
    .await?;
    if !on_sqlite(&server) {
        // With amcheck installed, every index of certmint's is checked too.
        raw.execute_raw("CREATE EXTENSION IF NOT EXISTS amcheck")
            .await?;
    }
    raw.close().await;

    let (status, body) = call(&server, &admin, Method::POST, check).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["ok"], false, "{data}");
    assert_eq!(data["engine"]["problems"], json!([]), "{data}");
    if !on_sqlite(&server) {
        assert!(data["engine"]["skipped"].is_null(), "{data}");
        let ran = data["engine"]["checks"][0].as_str().ok_or("checks")?;
        assert!(ran.starts_with("bt_index_check on "), "{ran}");
    }
    let problems = data["problems"].as_array().ok_or("problems")?;
    let of = |id: i64| -> Vec<(String, String)> {
        problems
            .iter()
            .filter(|p| p["resource"] == "certificate" && p["id"] == id)
            .map(|p| {
                (
                    p["kind"].as_str().unwrap_or_default().to_owned(),
                    p["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let found = of(tampered);
    assert_eq!(found.len(), 2, "{data}");
    assert_eq!(found[0].0, "fingerprint_mismatch");
    assert_eq!(found[1].0, "issuer_link");
    assert!(
        found[1]
            .1
            .contains(&format!("does not verify under its issuer, CA {sub}")),
        "{found:?}"
    );
    let found = of(mislinked);
    assert_eq!(found.len(), 1, "{data}");
    assert_eq!(
        found[0].1,
        format!("its signature does not verify under its issuer, CA {root}; CA {sub} signed it")
    );
    let key = problems
        .iter()
        .find(|p| p["resource"] == "key")
        .ok_or("a key problem")?;
    assert_eq!(key["kind"], "sealed_key");
    assert!(
        key["message"].as_str().ok_or("message")?.ends_with(
            "does not open with the vault: it is damaged or was sealed under another master key"
        ),
        "{key}"
    );
    assert_eq!(data["problem_count"], 4);
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=database_integrity_checked")
            .await,
        2
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn optimize_reports_sizes_before_and_after_and_is_audited() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    issue(&server, &admin, "optimize.test").await?;
    let sqlite = on_sqlite(&server);

    let (status, body) = call(&server, &admin, Method::POST, "/api/v2/system/db/optimize").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert!(data["before"]["database_bytes"].as_i64().ok_or("before")? > 0);
    assert!(data["after"]["database_bytes"].as_i64().ok_or("after")? > 0);
    let actions = data["actions"].as_array().ok_or("actions")?;
    if sqlite {
        assert_eq!(actions[0], "PRAGMA optimize", "{data}");
        assert!(
            actions.iter().any(|a| a
                .as_str()
                .is_some_and(|a| a.starts_with("PRAGMA wal_checkpoint"))),
            "{data}"
        );
        assert!(!actions.contains(&json!("VACUUM")), "{data}");
    } else {
        let vacuumed = actions[0].as_str().ok_or("action")?;
        assert!(vacuumed.starts_with("VACUUM (ANALYZE) on "), "{vacuumed}");
    }

    let (status, body) = call(
        &server,
        &admin,
        Method::POST,
        "/api/v2/system/db/optimize?vacuum=true",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    if sqlite {
        assert!(
            body["data"]["actions"]
                .as_array()
                .ok_or("actions")?
                .contains(&json!("VACUUM")),
            "{body}"
        );
    }
    let (status, body) = call(
        &server,
        &admin,
        Method::POST,
        "/api/v2/system/db/optimize?vacuum=sometimes",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=database_optimized")
            .await,
        2
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_export_holds_every_certificate_and_ca_and_openssl_verifies_them() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    // The HTTPS listener's certificate, made at first start, is the first.
    let mut issued = vec![1];
    for cn in ["a.export.test", "b.export.test", "c.export.test"] {
        issued.push(issue(&server, &admin, cn).await?);
    }
    let response = server
        .request(
            Method::GET,
            "/api/v2/system/db/export",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec()))?;
    let mut read = |name: &str| -> TestResult<String> {
        let mut text = String::new();
        archive.by_name(name)?.read_to_string(&mut text)?;
        Ok(text)
    };
    let index: Value = serde_json::from_str(&read("index.json")?)?;
    assert_eq!(index["format"], "certmint-export");
    let cas = index["cas"].as_array().ok_or("cas")?;
    let certificates = index["certificates"].as_array().ok_or("certificates")?;
    assert_eq!(cas.len(), 2, "{index}");
    assert_eq!(
        certificates
            .iter()
            .map(|c| c["id"].as_i64().unwrap_or_default())
            .collect::<Vec<_>>(),
        issued
    );

    let dir = tempfile::tempdir()?;
    let mut chain = String::new();
    for ca in cas {
        let pem = read(ca["file"].as_str().ok_or("file")?)?;
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        chain.push_str(&pem);
    }
    std::fs::write(dir.path().join("cas.pem"), &chain)?;
    for certificate in certificates {
        let file = certificate["file"].as_str().ok_or("file")?;
        let pem = read(file)?;
        assert!(!pem.contains("PRIVATE KEY"));
        std::fs::write(dir.path().join(file), &pem)?;
        let verified = openssl(dir.path(), &["verify", "-CAfile", "cas.pem", file])?;
        assert!(verified.contains(": OK"), "{verified}");
        assert_eq!(certificate["status"], "valid");
        assert!(certificate["issuer_ca_id"].is_i64());
    }
    for i in 0..archive.len() {
        let mut text = String::new();
        archive.by_index(i)?.read_to_string(&mut text)?;
        assert!(!text.contains("PRIVATE KEY"), "no key is exported");
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn only_admin_system_reaches_database_operations() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (_, narrow) = server
        .api_key(
            &admin,
            &["read:certificates", "write:certificates", "read:cas"],
        )
        .await;
    let (_, system) = server.api_key(&admin, &["admin:system"]).await;
    let routes = [
        (Method::GET, "/api/v2/system/db/stats"),
        (Method::POST, "/api/v2/system/db/integrity-check"),
        (Method::POST, "/api/v2/system/db/optimize"),
        (Method::GET, "/api/v2/system/db/export"),
        (Method::GET, "/api/v2/system/chain-repair"),
        (Method::POST, "/api/v2/system/chain-repair/run"),
    ];
    for (method, path) in routes {
        let (status, body) = server
            .call(method.clone(), path, &Auth::Bearer(&narrow), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        let status = server
            .request(method, path, &Auth::Bearer(&system), None)
            .await
            .status();
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    server.stop().await;
    Ok(())
}
