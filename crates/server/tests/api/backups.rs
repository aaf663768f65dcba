//! Scheduled backups through `/api/v2/settings/backup/schedule`: refused without a passphrase
//! or with bad values, the passphrase sealed (never shown, counted by the encryption status
//! and sealed again by a master-key rotation), the retention keeping the newest scheduled
//! backups and every manual one, and a backup deleted; who may do it.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Auth, TestResult, TestServer};
use crate::jobs::run_job_within;
use crate::master_key::{finished, versions_by_kind};

const PASSPHRASE: &str = "the scheduled backups' passphrase";

#[tokio::test]
async fn scheduled_backups_keep_the_newest_and_every_manual_one() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (_, narrow) = server.api_key(&admin, &["read:certificates"]).await;
    let path = "/api/v2/settings/backup/schedule";

    let (status, schedule) = server.call(Method::GET, path, &auth, None).await;
    assert_eq!(status, StatusCode::OK, "{schedule}");
    assert_eq!(schedule["data"]["enabled"], false, "off until asked for");
    assert_eq!(schedule["data"]["passphrase_set"], false);
    for (body, why) in [
        (json!({"enabled": true}), "no passphrase"),
        (json!({"passphrase": "too short"}), "short passphrase"),
        (json!({"keep": 0}), "keep 0"),
        (json!({"retention_days": 0}), "retention 0"),
        (json!({"frequency": "daily", "time": "25:00"}), "bad time"),
        (json!({"frequency": "weekly", "day": "someday"}), "bad day"),
        (json!({"frequency": "monthly"}), "unknown frequency"),
        (json!({"keep": 2, "surprise": true}), "unknown field"),
    ] {
        let (status, answer) = server.call(Method::PATCH, path, &auth, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {answer}");
    }
    let (status, answer) = server
        .call(
            Method::PATCH,
            path,
            &Auth::Bearer(&narrow),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");

    let (status, schedule) = server
        .call(
            Method::PATCH,
            path,
            &auth,
            Some(
                json!({"enabled": true, "frequency": "weekly", "day": "tue", "time": "03:30",
                        "keep": 2, "passphrase": PASSPHRASE}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{schedule}");
    let data = &schedule["data"];
    assert_eq!(data["enabled"], true);
    assert_eq!(data["schedule"], "weekly tue 03:30");
    assert_eq!(
        (data["frequency"].as_str(), data["day"].as_str()),
        (Some("weekly"), Some("tue"))
    );
    assert_eq!(data["passphrase_set"], true);
    assert!(!schedule.to_string().contains(PASSPHRASE), "{schedule}");
    let (status, encryption) = server
        .call(
            Method::GET,
            "/api/v2/system/security/encryption-status",
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{encryption}");
    assert!(
        encryption.to_string().contains("backup_passphrase"),
        "the sealed passphrase is counted: {encryption}"
    );

    let (status, manual) = server
        .call(
            Method::POST,
            "/api/v2/settings/backup/create",
            &auth,
            Some(json!({"passphrase": "a manual backup's own passphrase"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{manual}");
    let manual_id = manual["data"]["id"].as_str().ok_or("id")?.to_owned();
    server.clock.advance(time::Duration::minutes(10));
    let mut scheduled = Vec::new();
    for _ in 0..3 {
        let job = run_job_within(&server, &admin, "backup", 60).await?;
        assert_eq!(job["last_run"]["outcome"], "succeeded", "{job}");
        // Time passes between runs (less than a session's idle limit).
        server.clock.advance(time::Duration::minutes(10));
        let (_, listed) = server
            .call(Method::GET, "/api/v2/system/backup/list", &auth, None)
            .await;
        scheduled.push(listed["data"][0]["id"].as_str().ok_or("id")?.to_owned());
    }
    let (status, listed) = server
        .call(Method::GET, "/api/v2/system/backup/list", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .ok_or("list")?
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        vec![
            scheduled[2].as_str(),
            scheduled[1].as_str(),
            manual_id.as_str()
        ],
        "the two newest scheduled backups and the manual one"
    );
    assert!(
        listed["data"][0]["kind"] == "scheduled" && listed["data"][2]["kind"] == "manual",
        "{listed}"
    );
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/settings/backup/{}", scheduled[2]),
            &Auth::Bearer(&narrow),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/settings/backup/{}", scheduled[2]),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/settings/backup/{}", scheduled[2]),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, config) = server
        .call(Method::GET, "/api/v2/settings/backup", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{config}");
    assert_eq!(config["data"]["count"], 2, "{config}");
    assert_eq!(config["data"]["schedule"]["keep"], 2);
    for action in [
        "backup_schedule_updated",
        "backup_created",
        "backup_pruned",
        "backup_deleted",
    ] {
        assert!(
            server.audit_total(&auth, &format!("action={action}")).await > 0,
            "{action} audited"
        );
    }

    // The master-key rotation seals the passphrase again, and backups keep running after it.
    let (status, rotation) = server
        .call(
            Method::POST,
            "/api/v2/system/security/rotate-secrets",
            &auth,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{rotation}");
    finished(&server, &auth).await?;
    let (_, after) = server
        .call(
            Method::GET,
            "/api/v2/system/security/encryption-status",
            &auth,
            None,
        )
        .await;
    assert_eq!(
        versions_by_kind(&after["data"])?.get("backup_passphrase"),
        Some(&vec![2]),
        "{after}"
    );
    let job = run_job_within(&server, &admin, "backup", 60).await?;
    assert_eq!(job["last_run"]["outcome"], "succeeded", "{job}");
    server.stop().await;
    Ok(())
}
