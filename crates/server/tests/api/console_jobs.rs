//! The console's jobs page: every job with its latest run, a schedule changed and a run asked
//! for from their forms, the audit retention set, refusals that change nothing, and what a
//! user without `admin:system` and a forged form get.

use reqwest::StatusCode;

use crate::common::{ADMIN_PASSWORD, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form, rest};

#[tokio::test]
async fn an_admin_changes_and_runs_jobs_from_the_console() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let response = get(&client, server.url("/system/jobs"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    for job in ["audit_retention", "crl_refresh", "ocsp_refresh", "recovery"] {
        assert!(
            html.contains(&format!(r#"id="job-{job}""#)),
            "{job}: {html}"
        );
    }
    assert!(
        html.contains(r#"<a href="/system/jobs" aria-current="page">Jobs</a>"#),
        "{html}"
    );

    let response = post_form(
        &client,
        server.url("/system/jobs/ocsp_refresh"),
        cookie,
        &[("csrf_token", csrf), ("schedule", "every 2h")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/system/jobs#job-ocsp_refresh");
    let job = rest(&server, &admin, "/api/v2/system/jobs/ocsp_refresh").await;
    assert_eq!(job["schedule"], "every 2h");
    assert_eq!(job["enabled"], false, "the box was not ticked");

    let response = post_form(
        &client,
        server.url("/system/jobs/ocsp_refresh"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("schedule", "every fortnight"),
            ("enabled", "1"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(
        html.contains(r#"id="jobs-error""#) && html.contains("every fortnight"),
        "{html}"
    );
    let job = rest(&server, &admin, "/api/v2/system/jobs/ocsp_refresh").await;
    assert_eq!(
        (job["schedule"].as_str(), job["enabled"].as_bool()),
        (Some("every 2h"), Some(false))
    );

    let runs = job["runs"].as_i64().ok_or("runs")?;
    let response = post_form(
        &client,
        server.url("/system/jobs/ocsp_refresh/run"),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let mut ran = false;
    for _ in 0..100 {
        let job = rest(&server, &admin, "/api/v2/system/jobs/ocsp_refresh").await;
        if job["runs"].as_i64() > Some(runs) && job["run_requested_at"].is_null() {
            assert_eq!(job["last_run"]["outcome"], "succeeded", "{job}");
            ran = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ran, "the run asked for from the console did not happen");
    let html = get(&client, server.url("/system/jobs"), cookie)
        .await
        .text()
        .await?;
    assert!(
        html.contains("OCSP responses due for refresh signed again"),
        "{html}"
    );

    let response = post_form(
        &client,
        server.url("/system/jobs/audit-retention"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("enabled", "1"),
            ("retention_days", "30"),
        ],
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "under the policy's 90 days"
    );
    let response = post_form(
        &client,
        server.url("/system/jobs/audit-retention"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("enabled", "1"),
            ("retention_days", "400"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let retention = rest(&server, &admin, "/api/v2/system/audit/retention").await;
    assert_eq!(
        retention,
        serde_json::json!({"enabled": true, "retention_days": 400})
    );

    // No token, no change.
    let response = post_form(
        &client,
        server.url("/system/jobs/recovery"),
        cookie,
        &[("schedule", "every 1h")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        rest(&server, &admin, "/api/v2/system/jobs/recovery").await["schedule"],
        "every 10s"
    );
    Ok(())
}

#[tokio::test]
async fn without_admin_system_there_is_no_jobs_page() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "otto", "operator").await;
    let operator = server.login("otto", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(operator.cookie.as_str());
    let response = get(&client, server.url("/system/jobs"), cookie).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let dashboard = get(&client, server.url("/"), cookie).await.text().await?;
    assert!(
        !dashboard.contains(r#"href="/system/jobs""#),
        "no link to it"
    );
    for (path, fields) in [
        ("/system/jobs/recovery", vec![("schedule", "every 1h")]),
        ("/system/jobs/recovery/run", vec![]),
        (
            "/system/jobs/audit-retention",
            vec![("enabled", "1"), ("retention_days", "90")],
        ),
    ] {
        let mut fields = fields;
        fields.push(("csrf_token", operator.csrf.as_str()));
        let response = post_form(&client, server.url(path), cookie, &fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let job = rest(&server, &admin, "/api/v2/system/jobs/recovery").await;
    assert_eq!(job["schedule"], "every 10s");
    assert!(job["run_requested_at"].is_null());
    assert_eq!(
        rest(&server, &admin, "/api/v2/system/audit/retention").await["enabled"],
        false
    );
    Ok(())
}
