//! The audit trail: every change recorded with it, filters and exports, and a hash chain that
//! names exactly where it was tampered with.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};

async fn logs(server: &TestServer, admin: &Session, query: &str) -> Value {
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/v2/audit/logs?{query}"),
            &Auth::Session(admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn verify(server: &TestServer, admin: &Session, query: &str) -> Value {
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/v2/audit/verify?{query}"),
            &Auth::Session(admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

/// Makes some history: logins, a user created, updated and deactivated, a key created.
async fn history(server: &TestServer, admin: &Session) -> i64 {
    let id = server.user(admin, "hank", "viewer").await;
    let (status, _) = server
        .call(
            Method::PUT,
            &format!("/api/v2/users/{id}"),
            &Auth::Session(admin),
            Some(json!({"full_name": "Hank"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(
            Method::PATCH,
            &format!("/api/v2/users/{id}/toggle"),
            &Auth::Session(admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    server.api_key(admin, &["read:audit"]).await;
    id
}

#[tokio::test]
async fn changes_and_login_attempts_are_recorded_with_the_change() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let id = history(&server, &admin).await;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            Some(json!({"username": "admin", "password": "not the password"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for (action, resource) in [
        ("user_created", id.to_string()),
        ("user_updated", id.to_string()),
        ("user_disabled", id.to_string()),
    ] {
        let body = logs(&server, &admin, &format!("action={action}&username=admin")).await;
        assert_eq!(body["meta"]["total"], 1, "{action}: {body}");
        let record = &body["data"][0];
        assert_eq!(record["username"], "admin");
        assert_eq!(record["resource_id"], resource.as_str());
        assert_eq!(record["success"], true);
        assert_eq!(record["ip_address"], "127.0.0.1");
    }
    let ok = logs(&server, &admin, "action=login_success").await;
    assert!(ok["meta"]["total"].as_i64() >= Some(1));
    let failed = logs(&server, &admin, "action=login_failed&success=false").await;
    assert_eq!(failed["meta"]["total"], 1);
    assert_eq!(failed["data"][0]["details"], "wrong password");
    assert_eq!(
        logs(&server, &admin, "action=api_key_created").await["meta"]["total"],
        1
    );

    // A refused change writes no record.
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/users",
            &Auth::Session(&admin),
            Some(json!({"username": "hank", "password": ADMIN_PASSWORD, "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        logs(&server, &admin, "action=user_created&username=admin").await["meta"]["total"],
        1
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn filters_stats_actions_and_exports() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    history(&server, &admin).await;
    let all = logs(&server, &admin, "per_page=2").await;
    let total = all["meta"]["total"].as_i64().ok_or("total")?;
    assert!(total >= 5);
    assert_eq!(all["data"].as_array().map(Vec::len), Some(2));
    assert!(
        all["data"][0]["id"].as_i64() > all["data"][1]["id"].as_i64(),
        "newest first"
    );
    assert_eq!(
        logs(&server, &admin, "username=nobody").await["meta"]["total"],
        0
    );
    let hank = logs(&server, &admin, "search=HANK").await;
    assert_eq!(
        hank["meta"]["total"], 3,
        "created, updated and disabled: {hank}"
    );
    assert_eq!(hank["data"][0]["action"], "user_disabled");
    assert_eq!(
        logs(&server, &admin, "date_to=2000-01-01").await["meta"]["total"],
        0
    );
    assert_eq!(
        logs(&server, &admin, "date_from=2000-01-01").await["meta"]["total"],
        total
    );
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/audit/logs?date_from=yesterday",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let first = all["data"][0]["id"].as_i64().ok_or("id")?;
    let (status, one) = server
        .call(
            Method::GET,
            &format!("/api/v2/audit/logs/{first}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["data"]["id"], first);
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/audit/logs/999999",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, stats) = server
        .call(
            Method::GET,
            "/api/v2/audit/stats?days=30",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["data"]["total_logs"], total);
    assert_eq!(stats["data"]["top_users"][0]["username"], "admin");
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/audit/stats?days=0",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, actions) = server
        .call(
            Method::GET,
            "/api/v2/audit/actions",
            &Auth::Session(&admin),
            None,
        )
        .await;
    let actions: Vec<&str> = actions["data"]
        .as_array()
        .ok_or("actions")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        actions.contains(&"user_created") && actions.contains(&"login_success"),
        "{actions:?}"
    );

    let response = server
        .request(
            Method::GET,
            "/api/v2/audit/export?format=json",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-disposition"]
            .to_str()?
            .contains("attachment")
    );
    let exported: Vec<Value> = response.json().await?;
    assert_eq!(exported.len() as i64, total);
    assert_eq!(exported[0]["id"], 1);
    let response = server
        .request(
            Method::GET,
            "/api/v2/audit/export?format=csv",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/csv");
    let csv = response.text().await?;
    assert!(csv.starts_with("id,timestamp,username,action,"));
    assert_eq!(
        csv.lines().count() as i64,
        1 + total + 1,
        "header, the records, and the JSON export's own record"
    );
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/audit/export?format=xml",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        logs(&server, &admin, "action=audit_exported").await["meta"]["total"],
        2
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn verify_names_the_altered_record() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    history(&server, &admin).await;
    let intact = verify(&server, &admin, "").await;
    assert_eq!(intact["valid"], true, "{intact}");
    assert_eq!(intact["errors"], json!([]));
    let last = intact["end_id"].as_i64().ok_or("end_id")?;
    assert_eq!(intact["checked"], last);
    assert_eq!(
        verify(&server, &admin, "start_id=2&end_id=4").await["checked"],
        3
    );

    let target = last / 2;
    let raw = server.raw_store().await;
    raw.execute_raw(&format!(
        "UPDATE audit_log SET details = 'forged' WHERE id = {target}"
    ))
    .await?;
    let report = verify(&server, &admin, "").await;
    assert_eq!(report["valid"], false);
    assert_eq!(
        report["errors"],
        json!([{"id": target, "kind": "altered", "message": format!("record {target} was altered: its content no longer matches its hash")}])
    );
    // Ranges that do not include the record do not see it.
    assert_eq!(
        verify(&server, &admin, &format!("start_id={}", target + 1)).await["valid"],
        true
    );

    // Re-hashing the forged record moves the break to the link from the next record.
    raw.execute_raw(&format!(
        "UPDATE audit_log SET hash = '{}' WHERE id = {target}",
        "ab".repeat(32)
    ))
    .await?;
    let report = verify(&server, &admin, "").await;
    let errors = report["errors"].as_array().ok_or("errors")?;
    assert!(
        errors
            .iter()
            .any(|e| e["id"] == target && e["kind"] == "altered"),
        "{report}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e["id"] == target + 1 && e["kind"] == "broken_link"),
        "{report}"
    );
    raw.close().await;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn verify_names_removed_records() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    history(&server, &admin).await;
    let last = verify(&server, &admin, "").await["end_id"]
        .as_i64()
        .ok_or("end_id")?;
    let target = last / 2;
    let raw = server.raw_store().await;
    raw.execute_raw(&format!("DELETE FROM audit_log WHERE id = {target}"))
        .await?;
    let report = verify(&server, &admin, "").await;
    assert_eq!(report["valid"], false);
    assert_eq!(
        report["errors"],
        json!([{"id": target, "kind": "missing", "message": format!("record {target} is missing")}])
    );

    // Removing the newest record is noticed too: the chain head still names it.
    let tip = verify(&server, &admin, "").await["end_id"]
        .as_i64()
        .ok_or("end_id")?;
    raw.execute_raw(&format!("DELETE FROM audit_log WHERE id = {tip}"))
        .await?;
    let report = verify(&server, &admin, "").await;
    let errors = report["errors"].as_array().ok_or("errors")?;
    assert!(
        errors
            .iter()
            .any(|e| e["id"] == tip && e["kind"] == "missing"),
        "{report}"
    );
    raw.close().await;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn cleanup_keeps_the_remaining_chain_verifiable() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    history(&server, &admin).await;
    let before = logs(&server, &admin, "").await["meta"]["total"]
        .as_i64()
        .ok_or("total")?;
    server.clock.advance(time::Duration::days(40));
    let admin = server.admin().await;
    server.user(&admin, "recent", "viewer").await;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/audit/cleanup",
            &Auth::Session(&admin),
            Some(json!({"retention_days": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    server.user(&admin, "auditor1", "auditor").await;
    let auditor = server.login("auditor1", ADMIN_PASSWORD).await;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/audit/cleanup",
            &Auth::Session(&auditor),
            Some(json!({"retention_days": 30})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/audit/cleanup",
            &Auth::Session(&admin),
            Some(json!({"retention_days": 30})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["deleted"], before);
    let remaining = logs(&server, &admin, "").await;
    assert_eq!(remaining["data"][0]["action"], "audit_cleanup");
    let report = verify(&server, &admin, "").await;
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["start_id"], before + 1);
    server.stop().await;
    Ok(())
}
