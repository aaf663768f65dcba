//! Reports through `/api/v2/reports`: every type in every format over real certificates (the
//! CSV read back with the csv crate, the PDF with lopdf), the executive PDF, schedules and
//! their checks, the `report_delivery` job mailing a due report once per occurrence with the
//! file attached, a test delivery, and who may do what.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer, post};
use crate::email_alerts::SmtpServer;

const TYPES: [&str; 6] = [
    "expiring_certificates",
    "revoked_certificates",
    "ca_hierarchy",
    "audit_summary",
    "compliance_status",
    "certificate_inventory",
];

async fn issue(server: &TestServer, admin: &Session, cn: &str, days: i64) -> TestResult<i64> {
    let (status, body) = post(
        server,
        admin,
        "/api/v2/certificates",
        json!({"common_name": cn, "san": [format!("dns:{cn}")], "validity_days": days}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Ok(body["data"]["id"].as_i64().ok_or("id")?)
}

/// Three certificates — one ending in 10 days, one in 200, one revoked — and their refids.
async fn inventory(server: &TestServer, admin: &Session) -> TestResult<()> {
    issue(server, admin, "soon.reports.test", 10).await?;
    issue(server, admin, "far.reports.test", 200).await?;
    let gone = issue(server, admin, "gone.reports.test", 100).await?;
    let (status, body) = post(
        server,
        admin,
        &format!("/api/v2/certificates/{gone}/revoke"),
        json!({"reason": "superseded"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(())
}

/// A report as a file: its bytes, after checking its type and that it is an attachment.
async fn file(
    server: &TestServer,
    admin: &Session,
    report_type: &str,
    format: &str,
    days: i64,
) -> TestResult<Vec<u8>> {
    let response = server
        .request(
            Method::POST,
            "/api/v2/reports/generate",
            &Auth::Session(admin),
            Some(json!({"report_type": report_type, "params": {"days": days}, "format": format})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{report_type} {format}");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let expected = if format == "csv" {
        "text/csv"
    } else {
        "application/pdf"
    };
    assert!(
        header("content-type").starts_with(expected),
        "{report_type} {format}"
    );
    let disposition = header("content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"")
            && disposition.contains(report_type)
            && disposition.ends_with(&format!(".{format}\"")),
        "{disposition}"
    );
    Ok(response.bytes().await?.to_vec())
}

/// The text of every page of a PDF.
fn pdf_text(bytes: &[u8]) -> TestResult<String> {
    let doc = lopdf::Document::load_mem(bytes)?;
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    assert!(!pages.is_empty(), "a PDF with pages");
    Ok(doc.extract_text(&pages)?)
}

/// Rows of a CSV, with its header.
fn csv_rows(bytes: &[u8]) -> TestResult<(Vec<String>, Vec<Vec<String>>)> {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader.headers()?.iter().map(str::to_owned).collect();
    let rows = reader
        .records()
        .map(|r| r.map(|r| r.iter().map(str::to_owned).collect()))
        .collect::<Result<_, _>>()?;
    Ok((header, rows))
}

/// What a report's records say, as `field` of each.
fn field<'a>(records: &'a [Value], name: &str) -> Vec<&'a str> {
    records.iter().filter_map(|r| r[name].as_str()).collect()
}

#[tokio::test]
async fn every_report_in_every_format_shows_the_inventory() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    inventory(&server, &admin).await?;

    // The types, as the reference lists them.
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/reports/types",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = field(body["data"].as_array().ok_or("list")?, "id");
    assert_eq!(ids, TYPES);
    assert_eq!(body["data"][0]["params"], json!(["days"]));

    let (_, list) = server
        .call(
            Method::GET,
            "/api/v2/certificates?per_page=1",
            &Auth::Session(&admin),
            None,
        )
        .await;
    let inventory_total = list["meta"]["total"].as_i64().ok_or("total")?;
    let (_, cas) = server
        .call(Method::GET, "/api/v2/cas", &Auth::Session(&admin), None)
        .await;
    let ca_names: Vec<&str> = field(cas["data"].as_array().ok_or("cas")?, "name");

    for report_type in TYPES {
        let (status, body) = post(
            &server,
            &admin,
            "/api/v2/reports/generate",
            json!({"report_type": report_type, "params": {"days": 30}}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{report_type}: {body}");
        let data = &body["data"];
        assert_eq!(data["report_type"], report_type);
        assert!(
            data["generated_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{data}"
        );
        let records = data["records"].as_array().ok_or("records")?;
        let total = data["total"].as_i64().ok_or("total")?;
        assert_eq!(data["truncated"], false);

        // What each must hold, and a value its PDF must show.
        let shown: String = match report_type {
            "expiring_certificates" => {
                let names = field(records, "common_name");
                assert!(names.contains(&"soon.reports.test"), "{names:?}");
                assert!(!names.contains(&"far.reports.test"), "{names:?}");
                assert!(!names.contains(&"gone.reports.test"), "{names:?}");
                let soon = records
                    .iter()
                    .find(|r| r["common_name"] == "soon.reports.test")
                    .ok_or("soon")?;
                assert!(matches!(soon["days_left"].as_i64(), Some(9 | 10)), "{soon}");
                assert_eq!(total, records.len() as i64);
                "soon.reports.test".into()
            }
            "revoked_certificates" => {
                assert_eq!(field(records, "common_name"), ["gone.reports.test"]);
                assert_eq!(records[0]["reason"], "superseded");
                assert_eq!(total, 1);
                "superseded".into()
            }
            "ca_hierarchy" => {
                assert_eq!(total, ca_names.len() as i64);
                let mut names = field(records, "name");
                names.sort_unstable();
                let mut expected = ca_names.clone();
                expected.sort_unstable();
                assert_eq!(names, expected);
                // The issuing CA counts the three certificates issued here.
                assert!(
                    records
                        .iter()
                        .any(|r| r["certificates"].as_i64() >= Some(3)),
                    "{records:?}"
                );
                assert!(
                    records
                        .iter()
                        .any(|r| r["depth"] == 1 && r["parent"].is_string())
                );
                ca_names[0].to_owned()
            }
            "audit_summary" => {
                let issued = records
                    .iter()
                    .find(|r| r["action"] == "certificate_issued")
                    .ok_or("certificate_issued counted")?;
                assert!(issued["total"].as_i64() >= Some(3), "{issued}");
                assert_eq!(total, records.len() as i64);
                "certificate_issued".into()
            }
            "compliance_status" => {
                assert_eq!(
                    field(records, "check"),
                    [
                        "key_strength",
                        "signature_algorithm",
                        "tls_validity",
                        "expired_not_revoked"
                    ]
                );
                let tls = &records[2];
                assert_eq!(tls["status"], "pass", "{tls}");
                assert!(tls["applicable"].as_i64() >= Some(2), "{tls}");
                assert_eq!(total, 4);
                "key_strength".into()
            }
            "certificate_inventory" => {
                assert_eq!(total, inventory_total);
                assert_eq!(records.len() as i64, inventory_total);
                let gone = records
                    .iter()
                    .find(|r| r["common_name"] == "gone.reports.test")
                    .ok_or("gone")?;
                assert_eq!(gone["status"], "revoked");
                "far.reports.test".into()
            }
            _ => unreachable!(),
        };

        // CSV: the same records, every column.
        let bytes = file(&server, &admin, report_type, "csv", 30).await?;
        let (header, rows) = csv_rows(&bytes)?;
        let first = records.first().ok_or("a record")?;
        assert_eq!(
            header.len(),
            first.as_object().ok_or("object")?.len(),
            "{header:?}"
        );
        assert_eq!(rows.len(), records.len(), "{report_type}");
        for (row, record) in rows.iter().zip(records) {
            for (name, cell) in header.iter().zip(row) {
                let expected = match &record[name] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                assert_eq!(cell, &expected, "{report_type} {name}");
            }
        }

        // PDF: a document whose text shows the report.
        let bytes = file(&server, &admin, report_type, "pdf", 30).await?;
        assert!(bytes.starts_with(b"%PDF-"));
        let text = pdf_text(&bytes)?;
        assert!(
            text.contains(&shown),
            "{report_type} PDF lacks {shown}: {text}"
        );
    }

    // The executive report.
    let response = server
        .request(
            Method::GET,
            "/api/v2/reports/executive-pdf",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/pdf")
    );
    assert!(
        response
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|d| d.starts_with("attachment")),
    );
    let bytes = response.bytes().await?;
    let doc = lopdf::Document::load_mem(&bytes)?;
    assert!(doc.get_pages().len() >= 3, "cover and sections");
    let text = pdf_text(&bytes)?;
    for expected in [
        "Executive Report",
        "Executive summary",
        "Risk assessment",
        "Certificate inventory breakdown",
        "Compliance status",
        "Lifecycle analysis",
        "CA infrastructure overview",
        "Recommendations",
        "Plan the renewal of the",
        ca_names[0],
        "key_strength",
    ] {
        assert!(
            text.contains(expected),
            "executive PDF lacks {expected}: {text}"
        );
    }

    // Bad input.
    for bad in [
        json!({"report_type": "everything"}),
        json!({"report_type": "expiring_certificates", "format": "xml"}),
        json!({"report_type": "expiring_certificates", "params": {"days": 0}}),
        json!({"report_type": "expiring_certificates", "params": {"days": 100_000}}),
    ] {
        let (status, body) = post(&server, &admin, "/api/v2/reports/generate", bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    Ok(())
}

#[tokio::test]
async fn schedules_round_trip_and_refuse_bad_input() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (status, body) = server
        .call(Method::GET, "/api/v2/reports/schedule", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for t in TYPES {
        assert_eq!(body["data"][t]["enabled"], false, "{body}");
    }
    let config = json!({"enabled": true, "frequency": "weekly", "time": "08:00", "day_of_week": 1,
                        "day_of_month": 1, "recipients": ["pki@example.test", "sec@example.test"],
                        "format": "csv"});
    let (status, body) = server
        .call(
            Method::PUT,
            "/api/v2/reports/schedule",
            &auth,
            Some(json!({"report_type": "expiring_certificates", "config": config})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = server
        .call(Method::GET, "/api/v2/reports/schedule", &auth, None)
        .await;
    assert_eq!(body["data"]["expiring_certificates"], config, "{body}");
    assert_eq!(body["data"]["revoked_certificates"]["enabled"], false);
    assert_eq!(
        server
            .audit_total(&auth, "action=report_schedule_updated")
            .await,
        1
    );

    let with = |change: Value| {
        let mut c = config.clone();
        for (k, v) in change.as_object().into_iter().flatten() {
            c[k] = v.clone();
        }
        json!({"report_type": "expiring_certificates", "config": c})
    };
    let too_many: Vec<String> = (0..51).map(|i| format!("u{i}@example.test")).collect();
    for (bad, says) in [
        (with(json!({"time": "25:00"})), "config.time"),
        (with(json!({"time": "8am"})), "config.time"),
        (with(json!({"frequency": "hourly"})), "config.frequency"),
        (with(json!({"recipients": too_many})), "at most 50"),
        (
            with(json!({"recipients": ["not an address"]})),
            "not an email address",
        ),
        (with(json!({"day_of_week": 7})), "config.day_of_week"),
        (with(json!({"day_of_month": 31})), "config.day_of_month"),
        (with(json!({"format": "xml"})), "config.format"),
        (
            json!({"report_type": "nope", "config": config}),
            "report_type",
        ),
    ] {
        let (status, body) = server
            .call(
                Method::PUT,
                "/api/v2/reports/schedule",
                &auth,
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(body.to_string().contains(says), "{says}: {body}");
    }
    let (_, body) = server
        .call(Method::GET, "/api/v2/reports/schedule", &auth, None)
        .await;
    assert_eq!(
        body["data"]["expiring_certificates"], config,
        "unchanged: {body}"
    );
    Ok(())
}

/// Files attached to a mail: name and content.
type Files = Vec<(String, Vec<u8>)>;

/// The recipient and the attachments of a raw mail.
fn attachments(raw: &[u8]) -> TestResult<(String, Files)> {
    use mailparse::MailHeaderMap;
    let mail = mailparse::parse_mail(raw)?;
    assert_eq!(mail.ctype.mimetype, "multipart/mixed");
    let to = mail.headers.get_first_value("To").ok_or("To")?;
    let mut files = Vec::new();
    for part in &mail.subparts {
        let disposition = part.get_content_disposition();
        if let Some(name) = disposition.params.get("filename") {
            files.push((name.clone(), part.get_body_raw()?));
        }
    }
    Ok((to, files))
}

#[tokio::test]
async fn scheduled_reports_are_mailed_once_per_occurrence() -> TestResult {
    let smtp = SmtpServer::start().await?;
    let server = TestServer::start_with(|s| s.email.allow_private_targets = true).await;
    let admin = server.admin().await;
    inventory(&server, &admin).await?;
    let auth = Auth::Session(&admin);
    // Only requested runs: the clock jumps below would make it due anyway, racing them.
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/system/jobs/report_delivery",
            &auth,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/settings/email",
            &auth,
            Some(
                json!({"enabled": true, "host": "127.0.0.1", "port": smtp.port, "security": "none",
                        "from_address": "certmint@example.test"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A test delivery, in the schedule's format (csv by default).
    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/reports/send-test",
        json!({"report_type": "revoked_certificates", "recipient": "test@example.test"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = smtp.take_raw()?;
    assert_eq!(got.len(), 1);
    let (to, files) = attachments(&got[0])?;
    assert_eq!(to, "test@example.test");
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].0.ends_with(".csv"), "{}", files[0].0);
    let (_, rows) = csv_rows(&files[0].1)?;
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].contains(&"gone.reports.test".to_owned()),
        "{rows:?}"
    );
    for bad in [
        json!({"report_type": "revoked_certificates", "recipient": "nope"}),
        json!({"report_type": "nope", "recipient": "a@example.test"}),
    ] {
        let (status, body) = post(&server, &admin, "/api/v2/reports/send-test", bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }

    // Daily at the next whole hour, as PDF to two people.
    let now = authority::Clock::now(&*server.clock);
    let at = now.time().hour().wrapping_add(1) % 24;
    let (status, body) = server
        .call(
            Method::PUT,
            "/api/v2/reports/schedule",
            &auth,
            Some(json!({"report_type": "expiring_certificates", "config": {
                "enabled": true, "frequency": "daily", "time": format!("{at:02}:00"),
                "recipients": ["pki@example.test", "sec@example.test"], "format": "pdf"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Not yet due: nothing goes out.
    crate::jobs::run_job(&server, &admin, "report_delivery").await?;
    assert!(smtp.take_raw()?.is_empty());

    // Past the time: one mail per recipient, the PDF attached.
    server.clock.advance(time::Duration::hours(1));
    let admin = server.admin().await;
    let job = crate::jobs::run_job(&server, &admin, "report_delivery").await?;
    assert_eq!(job["last_run"]["outcome"], "succeeded", "{job}");
    let got = smtp.take_raw()?;
    assert_eq!(got.len(), 2, "one per recipient");
    let mut recipients = Vec::new();
    for raw in &got {
        let (to, files) = attachments(raw)?;
        recipients.push(to);
        assert_eq!(files.len(), 1);
        assert!(
            files[0].0.starts_with("expiring_certificates-"),
            "{}",
            files[0].0
        );
        assert!(files[0].0.ends_with(".pdf"), "{}", files[0].0);
        let text = pdf_text(&files[0].1)?;
        assert!(text.contains("soon.reports.test"), "{text}");
    }
    recipients.sort();
    assert_eq!(recipients, ["pki@example.test", "sec@example.test"]);

    // Again within the same day, or after a restart of the job: not twice.
    crate::jobs::run_job(&server, &admin, "report_delivery").await?;
    server.clock.advance(time::Duration::hours(2));
    let admin = server.admin().await;
    crate::jobs::run_job(&server, &admin, "report_delivery").await?;
    assert!(smtp.take_raw()?.is_empty(), "sent once per occurrence");

    // The next day's occurrence goes out.
    server.clock.advance(time::Duration::days(1));
    let admin = server.admin().await;
    crate::jobs::run_job(&server, &admin, "report_delivery").await?;
    assert_eq!(smtp.take_raw()?.len(), 2, "the next day's");
    Ok(())
}

#[tokio::test]
async fn reports_need_their_permissions() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    // A viewer reads certificates and CAs, not the audit log nor the schedules.
    server.user(&admin, "vera", "viewer").await;
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let generate = |t: &str| json!({"report_type": t});
    let (status, body) = post(
        &server,
        &vera,
        "/api/v2/reports/generate",
        generate("ca_hierarchy"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = post(
        &server,
        &vera,
        "/api/v2/reports/generate",
        generate("audit_summary"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    for (m, path, body) in [
        (Method::GET, "/api/v2/reports/schedule", None),
        (
            Method::PUT,
            "/api/v2/reports/schedule",
            Some(
                json!({"report_type": "ca_hierarchy", "config": {"enabled": false, "frequency": "daily",
                        "time": "08:00", "recipients": [], "format": "csv"}}),
            ),
        ),
        (
            Method::POST,
            "/api/v2/reports/send-test",
            Some(json!({"report_type": "ca_hierarchy", "recipient": "a@example.test"})),
        ),
    ] {
        let (status, answer) = server.call(m, path, &Auth::Session(&vera), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
    }

    // A key holding only read:audit gets the audit summary and nothing about certificates.
    let (_, key) = server.api_key(&admin, &["read:audit"]).await;
    let auth = Auth::Bearer(&key);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/reports/generate",
            &auth,
            Some(generate("audit_summary")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for t in [
        "certificate_inventory",
        "expiring_certificates",
        "ca_hierarchy",
        "compliance_status",
    ] {
        let (status, body) = server
            .call(
                Method::POST,
                "/api/v2/reports/generate",
                &auth,
                Some(generate(t)),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{t}: {body}");
    }
    let (status, _) = server
        .call(Method::GET, "/api/v2/reports/executive-pdf", &auth, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .call(Method::GET, "/api/v2/reports/types", &Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    Ok(())
}
