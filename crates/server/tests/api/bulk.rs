//! Several at a time: bulk revoke, renew, delete and export of certificates and CAs, and the
//! whole-inventory exports, read back with the zip reader and openssl.

use std::io::Read;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Auth, Session, TestResult, TestServer, openssl, post};

async fn issue(
    server: &TestServer,
    admin: &Session,
    cn: &str,
    ca_id: Option<i64>,
) -> TestResult<i64> {
    let (status, body) = post(
        server,
        admin,
        "/api/v2/certificates",
        json!({"common_name": cn, "san": [format!("dns:{cn}")], "ca_id": ca_id, "validity_days": 60}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Ok(body["data"]["id"].as_i64().ok_or("id")?)
}

/// The files of a ZIP answer, by name.
async fn unzip(response: reqwest::Response) -> TestResult<Vec<(String, String)>> {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec()))?;
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i)?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        files.push((file.name().to_owned(), text));
    }
    Ok(files)
}

#[tokio::test]
async fn certificates_in_bulk() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let a = issue(&server, &admin, "a.example.test", None).await?;
    let b = issue(&server, &admin, "b.example.test", None).await?;
    let c = issue(&server, &admin, "c.example.test", None).await?;

    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/certificates/bulk/revoke",
        json!({"ids": [a, b], "reason": "noSuchReason"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/certificates/bulk/revoke",
        json!({"ids": [a, b, 424_242], "reason": "keyCompromise", "comments": "laptop stolen"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["success"], json!([a, b]));
    assert_eq!(body["data"]["failed"], json!([424_242]));
    let (_, cert) = server
        .call(
            Method::GET,
            &format!("/api/v2/certificates/{a}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(cert["data"]["status"], "revoked");
    assert_eq!(cert["data"]["revocation_reason"], "keyCompromise");

    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/certificates/bulk/renew",
        json!({"ids": [c], "validity_days": 20}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["success"], json!([c]));
    let (_, list) = server
        .call(
            Method::GET,
            "/api/v2/certificates?search=c.example.test",
            &auth,
            None,
        )
        .await;
    assert_eq!(list["meta"]["total"], 2);
    assert_eq!(list["data"][0]["renewed_from"], c);
    assert_eq!(list["data"][0]["days_remaining"], 19);

    // A ZIP of PEM files, one per id, each a certificate openssl reads.
    let response = server
        .request(
            Method::POST,
            "/api/v2/certificates/bulk/export",
            &auth,
            Some(json!({"ids": [a, c]})),
        )
        .await;
    let files = unzip(response).await?;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{a}-a.example.test.pem"),
            format!("{c}-c.example.test.pem")
        ]
    );
    let dir = tempfile::tempdir()?;
    for (name, pem) in &files {
        std::fs::write(dir.path().join(name), pem)?;
        let subject = openssl(dir.path(), &["x509", "-in", name, "-noout", "-subject"])?;
        assert!(subject.contains(".example.test"), "{subject}");
    }
    let (status, _) = post(
        &server,
        &admin,
        "/api/v2/certificates/bulk/export",
        json!({"ids": [a, 424_242]}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The whole-inventory export takes the list's filters.
    let response = server
        .request(
            Method::GET,
            "/api/v2/certificates/export?status=revoked",
            &auth,
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let pem = response.text().await?;
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2, "{pem}");
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/certificates/export?status=sleepy",
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/certificates/bulk/delete",
        json!({"ids": [a, a]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/certificates/bulk/delete",
        json!({"ids": [a, b]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["success"], json!([a, b]));
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/v2/certificates/{a}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn cas_in_bulk() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (_, cas) = server.call(Method::GET, "/api/v2/cas", &auth, None).await;
    let root = cas["data"][0]["id"].as_i64().ok_or("root")?;
    let mut subs = Vec::new();
    for name in ["Team A", "Team B"] {
        let (status, body) = post(
            &server,
            &admin,
            "/api/v2/cas",
            json!({"common_name": name, "ca_type": "intermediate", "parent_id": root,
                   "validity_days": 365, "require_template": false}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        subs.push(body["data"]["id"].as_i64().ok_or("id")?);
    }
    issue(&server, &admin, "team-a.example.test", Some(subs[0])).await?;

    let response = server
        .request(
            Method::POST,
            "/api/v2/cas/bulk/export",
            &auth,
            Some(json!({"ids": [root, subs[0]]})),
        )
        .await;
    let files = unzip(response).await?;
    assert_eq!(files.len(), 2);
    assert_eq!(files[1].0, format!("{}-Team_A.pem", subs[0]));
    assert!(files[1].1.starts_with("-----BEGIN CERTIFICATE-----"));

    let response = server
        .request(Method::GET, "/api/v2/cas/export", &auth, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await?.matches("BEGIN CERTIFICATE").count(),
        4
    );

    // Team A has a valid certificate: without force it stays, Team B goes.
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/cas/bulk/delete",
        json!({"ids": subs}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["success"], json!([subs[1]]));
    assert_eq!(body["data"]["failed"], json!([subs[0]]));
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/cas/bulk/delete",
        json!({"ids": [subs[0]], "force": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["success"], json!([subs[0]]));
    let (_, cas) = server.call(Method::GET, "/api/v2/cas", &auth, None).await;
    assert_eq!(cas["data"].as_array().map(Vec::len), Some(2));
    Ok(())
}
