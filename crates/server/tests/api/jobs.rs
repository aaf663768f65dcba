//! The scheduler through `/api/v2/system/jobs`: every job listed with its schedule and runs,
//! runs asked for and recorded, schedules changed and checked, who may do it, and the audit
//! retention the `audit_retention` job applies.

use std::time::Duration;

use authority::Clock;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Auth, Session, TestResult, TestServer};

/// The jobs every node runs.
const JOBS: [&str; 10] = [
    "audit_retention",
    "auto_renewal",
    "backup",
    "crl_refresh",
    "expiry_scan",
    "ocsp_refresh",
    "recovery",
    "report_delivery",
    "syslog_forward",
    "webhook_delivery",
];

/// Asks for a run of job `name` and waits (10 s at most) for it to end; returns the job as it
/// then stands.
pub async fn run_job(server: &TestServer, session: &Session, name: &str) -> TestResult<Value> {
    run_job_within(server, session, name, 10).await
}

/// [`run_job`], waiting up to `seconds` (a backup derives its key for seconds in a debug
/// build).
pub async fn run_job_within(
    server: &TestServer,
    session: &Session,
    name: &str,
    seconds: u64,
) -> TestResult<Value> {
    let path = format!("/api/v2/system/jobs/{name}");
    let (status, before) = server
        .call(Method::GET, &path, &Auth::Session(session), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{before}");
    let runs = before["data"]["runs"].as_i64().ok_or("runs")?;
    let (status, asked) = server
        .call(
            Method::POST,
            &format!("{path}/run"),
            &Auth::Session(session),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{asked}");
    assert!(asked["data"]["run_requested_at"].is_string(), "{asked}");
    for _ in 0..seconds * 10 {
        let (_, job) = server
            .call(Method::GET, &path, &Auth::Session(session), None)
            .await;
        let job = job["data"].clone();
        if job["runs"].as_i64() > Some(runs) && job["run_requested_at"].is_null() {
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("job {name} did not run within {seconds} seconds").into())
}

#[tokio::test]
async fn jobs_are_listed_run_when_asked_and_rescheduled() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (status, body) = server
        .call(Method::GET, "/api/v2/system/jobs", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body["data"]
        .as_array()
        .ok_or("a list")?
        .iter()
        .filter_map(|j| j["name"].as_str())
        .collect();
    assert_eq!(names, JOBS);
    let recovery = body["data"]
        .as_array()
        .ok_or("a list")?
        .iter()
        .find(|j| j["name"] == "recovery")
        .ok_or("the recovery job")?;
    assert_eq!(recovery["schedule"], "every 10s", "{recovery}");
    assert_eq!(recovery["enabled"], true);
    assert!(
        recovery["description"]
            .as_str()
            .is_some_and(|d| d.contains("ACME"))
    );

    // Every job is due at start: the scheduler runs each once on its own.
    let on_at_start: Vec<&str> = JOBS.into_iter().filter(|j| *j != "backup").collect();
    let mut started = Vec::new();
    for _ in 0..100 {
        let (_, body) = server
            .call(Method::GET, "/api/v2/system/jobs", &auth, None)
            .await;
        started = body["data"]
            .as_array()
            .ok_or("a list")?
            .iter()
            .filter(|j| j["last_run"]["outcome"] == "succeeded")
            .filter_map(|j| j["name"].as_str().map(str::to_owned))
            .collect();
        if started.len() == on_at_start.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        started, on_at_start,
        "each job ran once at start, but backups, which need a passphrase first"
    );

    let job = run_job(&server, &admin, "recovery").await?;
    let run = &job["last_run"];
    assert_eq!(run["outcome"], "succeeded", "{job}");
    assert!(
        run["finished_at"].is_string() && run["node"].is_string(),
        "{job}"
    );
    assert!(run["duration_ms"].as_i64().is_some_and(|d| d >= 0), "{job}");
    assert_eq!(
        run["summary"],
        "0 stalled ACME orders finished with their certificate, 0 made ready again"
    );
    assert_eq!(job["failures"], 0);
    // The next run follows the schedule from the end of this one (the test clock stands).
    let now = server.clock.now();
    let next = time::OffsetDateTime::parse(
        job["next_run_at"].as_str().ok_or("next_run_at")?,
        &time::format_description::well_known::Rfc3339,
    )?;
    // (Times are kept to the microsecond.)
    assert!(
        (next - now - time::Duration::seconds(10)).abs() < time::Duration::milliseconds(1),
        "{job}"
    );

    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/system/jobs/crl_refresh",
            &auth,
            Some(json!({"schedule": "daily 04:30", "enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["schedule"], "daily 04:30");
    assert_eq!(body["data"]["enabled"], false);
    assert!(
        body["data"]["next_run_at"]
            .as_str()
            .is_some_and(|t| t.contains("T04:30:00")),
        "{body}"
    );
    // A job switched off still runs when asked.
    let job = run_job(&server, &admin, "crl_refresh").await?;
    assert_eq!(job["last_run"]["outcome"], "succeeded", "{job}");
    assert!(
        job["last_run"]["summary"]
            .as_str()
            .is_some_and(|s| s.ends_with("CRLs published")),
        "{job}"
    );

    for (body, what) in [
        (json!({"schedule": "every 0s"}), "zero interval"),
        (json!({"schedule": "hourly"}), "no such form"),
        (json!({"schedule": "weekly funday 01:00"}), "no such day"),
        (json!({"schedule": "every 32d"}), "no such unit"),
    ] {
        let (status, answer) = server
            .call(
                Method::PATCH,
                "/api/v2/system/jobs/recovery",
                &auth,
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains("schedule")),
            "{answer}"
        );
    }
    let (status, _) = server
        .call(
            Method::PATCH,
            "/api/v2/system/jobs/recovery",
            &auth,
            Some(json!({"interval": 5})),
        )
        .await;
    assert!(status.is_client_error(), "an unknown field: {status}");
    for path in [
        "/api/v2/system/jobs/nightly",
        "/api/v2/system/jobs/nightly/run",
    ] {
        let method = if path.ends_with("/run") {
            Method::POST
        } else {
            Method::GET
        };
        let (status, answer) = server.call(method, path, &auth, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
    }
    let (_, unchanged) = server
        .call(Method::GET, "/api/v2/system/jobs/recovery", &auth, None)
        .await;
    assert_eq!(
        unchanged["data"]["schedule"], "every 10s",
        "refused changes left it"
    );

    assert_eq!(
        server
            .audit_total(&auth, "action=job_run_requested&search=recovery")
            .await,
        1
    );
    assert_eq!(
        server
            .audit_total(&auth, "action=job_updated&search=crl_refresh")
            .await,
        1
    );
    Ok(())
}

#[tokio::test]
async fn only_system_administrators_see_and_run_jobs() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "olga", "operator").await;
    let operator = server.login("olga", crate::common::ADMIN_PASSWORD).await;
    // A key of the admin's limited to reading: it holds less than its owner.
    let (_, reader_key) = server.api_key(&admin, &["read:audit"]).await;
    for auth in [Auth::Session(&operator), Auth::Bearer(&reader_key)] {
        for (method, path, body) in [
            (Method::GET, "/api/v2/system/jobs", None),
            (Method::GET, "/api/v2/system/jobs/recovery", None),
            (Method::POST, "/api/v2/system/jobs/recovery/run", None),
            (
                Method::PATCH,
                "/api/v2/system/jobs/recovery",
                Some(json!({"enabled": false})),
            ),
            (Method::GET, "/api/v2/system/audit/retention", None),
            (
                Method::PUT,
                "/api/v2/system/audit/retention",
                Some(json!({"enabled": true})),
            ),
        ] {
            let (status, answer) = server.call(method.clone(), path, &auth, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        }
    }
    let (_, job) = server
        .call(
            Method::GET,
            "/api/v2/system/jobs/recovery",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(job["data"]["enabled"], true, "nothing changed");
    assert!(
        job["data"]["run_requested_at"].is_null(),
        "nothing asked for"
    );
    Ok(())
}

#[tokio::test]
async fn audit_retention_is_off_until_set_and_the_job_applies_it() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (status, body) = server
        .call(Method::GET, "/api/v2/system/audit/retention", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        json!({"enabled": false, "retention_days": 365})
    );
    let job = run_job(&server, &admin, "audit_retention").await?;
    assert_eq!(
        job["last_run"]["summary"],
        "retention is off: nothing removed"
    );

    for bad in [
        json!({"retention_days": 89}),
        json!({"retention_days": 36_501}),
    ] {
        let (status, answer) = server
            .call(
                Method::PUT,
                "/api/v2/system/audit/retention",
                &auth,
                Some(bad),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    }
    let (status, body) = server
        .call(
            Method::PUT,
            "/api/v2/system/audit/retention",
            &auth,
            Some(json!({"enabled": true, "retention_days": 90})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!({"enabled": true, "retention_days": 90}));
    let before = server.audit_total(&auth, "").await;
    assert!(before > 2, "records to age: {before}");

    // Only the run asked for below, so that its summary counts what it removed.
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/system/jobs/audit_retention",
            &auth,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A hundred days on, everything written so far is past the retention period.
    server.clock.advance(time::Duration::days(100));
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let job = run_job(&server, &admin, "audit_retention").await?;
    let summary = job["last_run"]["summary"]
        .as_str()
        .ok_or("summary")?
        .to_owned();
    let removed: i64 = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no count in {summary:?}"))?;
    assert!(removed >= before, "{summary} (there were {before})");
    assert!(
        summary.ends_with("records older than 90 days removed"),
        "{summary}"
    );
    // What is left still verifies, and says who removed the rest.
    let (status, verify) = server
        .call(Method::GET, "/api/v2/audit/verify", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{verify}");
    assert_eq!(verify["data"]["valid"], true, "{verify}");
    assert_eq!(
        server
            .audit_total(&auth, "action=audit_cleanup&username=scheduler")
            .await,
        1
    );
    Ok(())
}
