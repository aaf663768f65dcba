//! Faults lose nothing: with the data directory's disk full, every certificate answered 201 is
//! in the database after a restart, the rest get a clear 503, readiness says why, and service
//! resumes by itself once space is back.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::testing::SmallDisk;

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};

/// A server on SQLite (whatever the test pass) with its data in `dir`.
async fn serve_from(dir: &Path) -> TestServer {
    let dir = dir.to_path_buf();
    TestServer::start_with(move |s| {
        s.data_dir = dir;
        s.database_url = String::new();
    })
    .await
}

async fn issue(server: &TestServer, admin: &Session, n: usize) -> (StatusCode, Value) {
    server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &Auth::Session(admin),
            Some(json!({"common_name": format!("full-{n}.example.test"), "validity_days": 30})),
        )
        .await
}

#[tokio::test]
async fn a_full_disk_loses_no_acknowledged_certificate_and_service_resumes() -> TestResult {
    let disk = SmallDisk::mount("48m")?;
    let server = serve_from(disk.path()).await;
    let admin = server.admin().await;
    let mut acknowledged = Vec::new();
    for n in 0..3 {
        let (status, body) = issue(&server, &admin, n).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        acknowledged.push(body["data"]["id"].as_i64().ok_or("id")?);
    }
    let filler = disk.fill()?;

    let mut refused = 0;
    for n in 3..60 {
        let (status, body) = issue(&server, &admin, n).await;
        match status {
            StatusCode::CREATED => acknowledged.push(body["data"]["id"].as_i64().ok_or("id")?),
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert!(
                    body["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("disk is full")),
                    "{body}"
                );
            }
            other => panic!("issuance on a full disk answered {other}: {body}"),
        }
    }
    assert!(refused > 0, "the disk never filled");
    // Revocation is refused the same way, never with a 500.
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/v2/certificates/{}/revoke", acknowledged[0]),
            &Auth::Session(&admin),
            Some(json!({"reason": "keyCompromise"})),
        )
        .await;
    assert!(
        status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::OK,
        "revocation on a full disk: {status} {body}"
    );
    let revoked = status == StatusCode::OK;
    let (status, ready) = server
        .call(Method::GET, "/api/v2/health/ready", &Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["checks"]["disk"]["status"], "error", "{ready}");

    // Space comes back: the same process serves again, without a restart.
    std::fs::remove_file(&filler)?;
    let mut resumed = false;
    for n in 60..100 {
        let (status, body) = issue(&server, &admin, n).await;
        if status == StatusCode::CREATED {
            acknowledged.push(body["data"]["id"].as_i64().ok_or("id")?);
            resumed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(resumed, "issuance did not resume once space was back");
    let (status, ready) = server
        .call(Method::GET, "/api/v2/health/ready", &Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    let metrics = server
        .request(Method::GET, "/metrics", &Auth::Session(&admin), None)
        .await
        .text()
        .await?;
    assert!(
        metrics.contains("certmint_data_dir_free_bytes"),
        "{metrics}"
    );
    server.stop().await;

    // After a restart every acknowledged certificate is there.
    let server = serve_from(disk.path()).await;
    let admin = server.login("admin", ADMIN_PASSWORD).await;
    for id in &acknowledged {
        let (status, body) = server
            .call(
                Method::GET,
                &format!("/api/v2/certificates/{id}"),
                &Auth::Session(&admin),
                None,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "acknowledged certificate {id}: {body}"
        );
    }
    if revoked {
        let (_, body) = server
            .call(
                Method::GET,
                &format!("/api/v2/certificates/{}", acknowledged[0]),
                &Auth::Session(&admin),
                None,
            )
            .await;
        assert_eq!(
            body["data"]["status"], "revoked",
            "an acknowledged revocation: {body}"
        );
    }
    server.stop().await;
    Ok(())
}
