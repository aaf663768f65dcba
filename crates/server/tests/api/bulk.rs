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

/// A certificate row written straight into the database: the export reads rows, not DER.
fn row(i: usize, at: time::OffsetDateTime) -> store::NewCertificate {
    store::NewCertificate {
        refid: format!("export-{i}"),
        ca_id: None,
        key_id: None,
        template_id: None,
        owner_id: None,
        renewed_from: None,
        description: None,
        sans: vec![format!("dns:export{i}.example.test")],
        is_ca: false,
        source: store::CertificateSource::Imported,
        cert: store::CertFields {
            subject: format!("CN=export{i}.example.test"),
            // A name a spreadsheet would run as a formula, for one row.
            common_name: Some(if i == 7 {
                "=HYPERLINK(\"x\")".into()
            } else {
                format!("export{i}.example.test")
            }),
            issuer: "CN=Elsewhere".into(),
            serial: format!("{i:032x}"),
            not_before: at,
            not_after: at + time::Duration::days(90),
            key_type: "EC P-256".into(),
            signature_algorithm: "ecdsa-with-SHA256".into(),
            subject_key_id: None,
            authority_key_id: None,
            fingerprint_sha256: format!("{i:064x}"),
            der: vec![0x30, 0x03, 0x02, 0x01, 0x01],
        },
    }
}

/// The export of a filter streams page after page: every match once, in CSV (formulas
/// defused) and as one JSON array, whatever the number of pages.
#[tokio::test]
async fn an_export_of_many_pages_holds_every_match_once_in_each_format() -> TestResult {
    const ROWS: usize = 1_234;
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let raw = server.raw_store().await;
    let at = time::OffsetDateTime::now_utc();
    let rows: Vec<_> = (0..ROWS).map(|i| row(i, at)).collect();
    let mut tx = raw.begin_write().await?;
    tx.insert_certificates(&rows.iter().map(|r| (r, at)).collect::<Vec<_>>())
        .await?;
    tx.commit().await?;
    raw.close().await;

    let get = |format: &'static str| {
        let server = &server;
        let auth = &auth;
        async move {
            let response = server
                .request(
                    Method::GET,
                    &format!("/api/v2/certificates/export?search=example.test&format={format}"),
                    auth,
                    None,
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK, "{format}");
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            (content_type, response.text().await.unwrap_or_default())
        }
    };

    let (content_type, json) = get("json").await;
    assert_eq!(content_type, "application/json");
    let items: Vec<serde_json::Value> = serde_json::from_str(&json)?;
    let mut refids: Vec<&str> = items.iter().filter_map(|c| c["refid"].as_str()).collect();
    assert_eq!(refids.len(), ROWS);
    refids.sort_unstable();
    refids.dedup();
    assert_eq!(refids.len(), ROWS, "each once");

    let (content_type, csv) = get("csv").await;
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    assert_eq!(header[..3], ["id", "refid", "common_name"]);
    let records = reader.records().collect::<Result<Vec<_>, _>>()?;
    assert_eq!(records.len(), ROWS);
    let formula = records
        .iter()
        .find(|r| r.get(1) == Some("export-7"))
        .ok_or("export-7")?;
    assert_eq!(formula.get(2), Some("'=HYPERLINK(\"x\")"));

    let (content_type, pem) = get("pem").await;
    assert_eq!(content_type, "application/x-pem-file");
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), ROWS);

    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/certificates/export?format=xml",
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    server.stop().await;
    Ok(())
}

/// Past 20,000 matches the list estimates its total instead of counting every match, and
/// says so in `meta` and in a header; fewer are counted exactly.
#[tokio::test]
async fn a_list_of_many_thousands_estimates_its_total_and_says_so() -> TestResult {
    const ROWS: usize = 24_000;
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let raw = server.raw_store().await;
    let at = time::OffsetDateTime::now_utc();
    let rows: Vec<_> = (0..ROWS).map(|i| row(i, at)).collect();
    let mut tx = raw.begin_write().await?;
    tx.insert_certificates(&rows.iter().map(|r| (r, at)).collect::<Vec<_>>())
        .await?;
    tx.commit().await?;
    raw.close().await;

    let (status, many) = server
        .call(
            Method::GET,
            "/api/v2/certificates?source=imported&per_page=10",
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{many}");
    assert_eq!(many["meta"]["total_estimated"], true, "{}", many["meta"]);
    let total = many["meta"]["total"].as_i64().unwrap_or_default();
    let rows = i64::try_from(ROWS)?;
    assert!((total - rows).abs() * 20 <= rows, "{total} for {ROWS}");
    assert_eq!(many["data"].as_array().map(Vec::len), Some(10));
    let head = server
        .request(
            Method::HEAD,
            "/api/v2/certificates?source=imported",
            &auth,
            None,
        )
        .await;
    let header = |name: &str| {
        head.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("x-total-count"), Some(total.to_string()));
    assert_eq!(header("x-total-count-estimated").as_deref(), Some("true"));

    // Fewer matches are counted: no mark.
    let (_, few) = server
        .call(
            Method::GET,
            "/api/v2/certificates?source=imported&search=export2345.",
            &auth,
            None,
        )
        .await;
    assert_eq!(few["meta"]["total"], 1, "{few}");
    assert!(few["meta"].get("total_estimated").is_none(), "{few}");

    // The console says "About" before an estimate, and only then.
    let client = crate::console::browser(&server);
    let cookie = Some(admin.cookie.as_str());
    for (query, about) in [("source=imported", true), ("search=export2345.", false)] {
        let html = crate::console::get(
            &client,
            server.url(&format!("/certificates?{query}")),
            cookie,
        )
        .await
        .text()
        .await?;
        assert_eq!(html.contains(">About "), about, "{query}: {html}");
    }
    Ok(())
}
