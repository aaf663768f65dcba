//! The console's reports page: every type with its downloads, the files themselves, the
//! executive PDF, a schedule saved and refused from its form, and what a viewer (no
//! `admin:system`, no `read:audit`) and a forged form get.

use reqwest::StatusCode;

use crate::common::{ADMIN_PASSWORD, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form, rest};

#[tokio::test]
async fn an_admin_downloads_and_schedules_reports_from_the_console() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let response = get(&client, server.url("/reports"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(
        html.contains(r#"<a href="/reports" aria-current="page">Reports</a>"#),
        "{html}"
    );
    assert!(html.contains(r#"href="/reports/executive-pdf""#), "{html}");
    for t in [
        "expiring_certificates",
        "revoked_certificates",
        "ca_hierarchy",
        "audit_summary",
        "compliance_status",
        "certificate_inventory",
    ] {
        for format in ["json", "csv", "pdf"] {
            assert!(
                html.contains(&format!(r#"href="/reports/{t}/{format}""#)),
                "{t} {format}"
            );
        }
        assert!(html.contains(&format!(r#"id="schedule-{t}""#)), "{t}");
    }

    // The downloads.
    let response = get(&client, server.url("/reports/ca_hierarchy/csv"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|d| d.contains("ca_hierarchy") && d.contains(".csv")),
    );
    let csv = response.text().await?;
    assert!(csv.starts_with("id,name,type,parent,depth"), "{csv}");
    let cas = rest(&server, &admin, "/api/v2/cas").await;
    assert!(
        csv.contains(cas[0]["name"].as_str().ok_or("name")?),
        "{csv}"
    );
    let response = get(
        &client,
        server.url("/reports/compliance_status/pdf"),
        cookie,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await?.starts_with(b"%PDF-"));
    let response = get(&client, server.url("/reports/executive-pdf"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await?.starts_with(b"%PDF-"));
    let response = get(&client, server.url("/reports/nonsense/csv"), cookie).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await?.contains(r#"id="reports-error""#));

    // A schedule saved from its form.
    let response = post_form(
        &client,
        server.url("/reports/revoked_certificates/schedule"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("enabled", "1"),
            ("frequency", "monthly"),
            ("time", "07:30"),
            ("day_of_week", "0"),
            ("day_of_month", "15"),
            ("recipients", "pki@example.test, sec@example.test"),
            ("format", "pdf"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        "/reports#schedule-revoked_certificates"
    );
    let schedules = rest(&server, &admin, "/api/v2/reports/schedule").await;
    assert_eq!(
        schedules["revoked_certificates"],
        serde_json::json!({"enabled": true, "frequency": "monthly", "time": "07:30",
                           "day_of_week": 0, "day_of_month": 15,
                           "recipients": ["pki@example.test", "sec@example.test"], "format": "pdf"})
    );

    // Refused: the page says why and nothing changes.
    let response = post_form(
        &client,
        server.url("/reports/revoked_certificates/schedule"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("enabled", "1"),
            ("frequency", "monthly"),
            ("time", "31:00"),
            ("recipients", "pki@example.test"),
            ("format", "pdf"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(
        html.contains(r#"id="reports-error""#) && html.contains("config.time"),
        "{html}"
    );
    let again = rest(&server, &admin, "/api/v2/reports/schedule").await;
    assert_eq!(again["revoked_certificates"]["time"], "07:30");

    // No token, no change.
    let response = post_form(
        &client,
        server.url("/reports/revoked_certificates/schedule"),
        cookie,
        &[("frequency", "daily"), ("time", "01:00"), ("format", "csv")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    Ok(())
}

#[tokio::test]
async fn a_viewer_downloads_what_it_may_and_schedules_nothing() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "vic", "viewer").await;
    let viewer = server.login("vic", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(viewer.cookie.as_str());

    let response = get(&client, server.url("/reports"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    assert!(
        html.contains(r#"href="/reports/ca_hierarchy/csv""#),
        "{html}"
    );
    assert!(
        !html.contains("id=\"schedule-"),
        "no schedules without admin:system"
    );

    let response = get(
        &client,
        server.url("/reports/certificate_inventory/json"),
        cookie,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = get(&client, server.url("/reports/audit_summary/csv"), cookie).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "no read:audit");

    let response = post_form(
        &client,
        server.url("/reports/ca_hierarchy/schedule"),
        cookie,
        &[
            ("csrf_token", viewer.csrf.as_str()),
            ("frequency", "daily"),
            ("time", "01:00"),
            ("format", "csv"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let schedules = rest(&server, &admin, "/api/v2/reports/schedule").await;
    assert_eq!(schedules["ca_hierarchy"]["enabled"], false);
    assert_eq!(schedules["ca_hierarchy"]["time"], "08:00");
    Ok(())
}
