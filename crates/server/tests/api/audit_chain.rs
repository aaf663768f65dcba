//! The audit trail: every change recorded with it, filters and exports, and a keyed hash chain
//! that names exactly where it was tampered with, even by someone who can write the database.

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
    // Far fewer records than a checkpoint needs: the walk starts from the chain's start, with
    // or without `full`.
    assert_eq!(intact["from_checkpoint"], Value::Null, "{intact}");
    let full = verify(&server, &admin, "full=true").await;
    assert_eq!(
        (&full["valid"], &full["checked"], &full["from_checkpoint"]),
        (&json!(true), &json!(last), &Value::Null)
    );
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/audit/verify?full=maybe",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
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
    server.clock.advance(time::Duration::days(100));
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
    // Records younger than audit_min_retention_days (90 by default) are never removed.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/audit/cleanup",
            &Auth::Session(&admin),
            Some(json!({"retention_days": 89})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().is_some_and(
            |m| m.contains("between 90 and 36500") && m.contains("audit_min_retention_days")
        ),
        "{body}"
    );
    server.user(&admin, "auditor1", "auditor").await;
    let auditor = server.login("auditor1", ADMIN_PASSWORD).await;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/audit/cleanup",
            &Auth::Session(&auditor),
            Some(json!({"retention_days": 90})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/audit/cleanup",
            &Auth::Session(&admin),
            Some(json!({"retention_days": 90})),
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

/// Rewrites record `id`'s details to `details`, gives it the plain SHA-256 chain hash the
/// chain used before it was keyed, and makes the head agree: all anyone who can write the
/// database can do without the key.
async fn rewrite_with_plain_hash(raw: &store::Store, id: i64, details: &str) -> TestResult {
    let mut record = raw.audit_get(id).await?.ok_or("no such record")?;
    record.entry.details = Some(details.into());
    let hash = store::plain_chain_hash(id, &record.entry, &record.prev_hash);
    raw.execute_raw(&format!(
        "UPDATE audit_log SET details = '{details}', hash = '{hash}' WHERE id = {id}"
    ))
    .await?;
    raw.execute_raw(&format!(
        "UPDATE audit_head SET last_hash = '{hash}' WHERE id = 1 AND last_id = {id}"
    ))
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_tail_rewritten_with_recomputed_hashes_fails_verification() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    history(&server, &admin).await;
    let report = verify(&server, &admin, "").await;
    assert_eq!(report["valid"], true, "{report}");
    let last = report["end_id"].as_i64().ok_or("end_id")?;
    let raw = server.raw_store().await;
    rewrite_with_plain_hash(&raw, last, "nothing happened").await?;
    assert_eq!(
        raw.audit_anchor().await?.last_hash,
        raw.audit_get(last).await?.ok_or("record")?.hash,
        "the head agrees with the rewritten record, as it did after the attack on a plain chain"
    );
    let report = verify(&server, &admin, "").await;
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(
        report["errors"],
        json!([{"id": last, "kind": "altered", "message": format!("record {last} was altered: its content no longer matches its hash")}])
    );
    raw.close().await;
    server.stop().await;
    Ok(())
}

async fn checkpoint(server: &TestServer, admin: &Session) -> Value {
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/audit/checkpoint",
            &Auth::Session(admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

async fn verify_against(server: &TestServer, admin: &Session, checkpoint: &Value) -> Value {
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/audit/verify",
            &Auth::Session(admin),
            Some(checkpoint.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

fn has_fault(report: &Value, id: i64, kind: &str) -> bool {
    report["errors"]
        .as_array()
        .is_some_and(|errors| errors.iter().any(|e| e["id"] == id && e["kind"] == kind))
}

#[tokio::test]
async fn a_signed_checkpoint_catches_truncation_and_rewrites_behind_it() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    history(&server, &admin).await;
    let taken = checkpoint(&server, &admin).await;
    let at = taken["last_id"].as_i64().ok_or("last_id")?;
    assert!(at > 2, "{taken}");
    assert_eq!(taken["keyed_from"], 1);
    assert!(taken["at"].is_string() && taken["signature"].is_string());
    server.user(&admin, "later", "viewer").await;

    // A clean chain that grew since passes.
    let report = verify_against(&server, &admin, &taken).await;
    assert_eq!(report["valid"], true, "{report}");

    // Any field changed, or another signature: the checkpoint proves nothing.
    for (field, value) in [
        ("last_id", json!(at - 1)),
        ("head_hash", json!("ab".repeat(32))),
        ("keyed_from", json!(at + 1)),
        ("at", json!("2020-01-01T00:00:00Z")),
        ("signature", json!("00".repeat(32))),
    ] {
        let mut forged = taken.clone();
        forged[field] = value;
        let report = verify_against(&server, &admin, &forged).await;
        assert_eq!(report["valid"], false, "{field}: {report}");
        assert_eq!(report["errors"][0]["kind"], "forged_checkpoint", "{field}");
    }

    // Cutting the chain back to before the checkpoint, head included, passes a plain
    // verification but not one against the checkpoint.
    let raw = server.raw_store().await;
    let kept = raw.audit_get(at - 1).await?.ok_or("record")?;
    raw.execute_raw(&format!("DELETE FROM audit_log WHERE id >= {at}"))
        .await?;
    raw.execute_raw(&format!(
        "UPDATE audit_head SET last_id = {}, last_hash = '{}' WHERE id = 1",
        kept.id, kept.hash
    ))
    .await?;
    assert_eq!(verify(&server, &admin, "").await["valid"], true);
    let report = verify_against(&server, &admin, &taken).await;
    assert_eq!(report["valid"], false, "{report}");
    assert!(has_fault(&report, at, "missing"), "{report}");

    // Declaring the whole chain unkeyed and rewriting it with plain hashes: the checkpoint
    // still knows where the keyed part began.
    raw.execute_raw(&format!(
        "UPDATE audit_head SET keyed_from = {} WHERE id = 1",
        kept.id + 1
    ))
    .await?;
    rewrite_with_plain_hash(&raw, kept.id, "nothing happened").await?;
    let report = verify_against(&server, &admin, &taken).await;
    assert_eq!(report["valid"], false, "{report}");
    assert!(has_fault(&report, at, "altered"), "{report}");
    raw.close().await;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_rewritten_record_before_the_checkpoint_fails_against_it() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    history(&server, &admin).await;
    let taken = checkpoint(&server, &admin).await;
    let at = taken["last_id"].as_i64().ok_or("last_id")?;
    let raw = server.raw_store().await;
    raw.execute_raw(&format!(
        "UPDATE audit_log SET details = 'forged' WHERE id = {}",
        at - 1
    ))
    .await?;
    let report = verify_against(&server, &admin, &taken).await;
    assert_eq!(report["valid"], false, "{report}");
    assert!(has_fault(&report, at - 1, "altered"), "{report}");
    raw.close().await;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn logged_user_text_cannot_forge_lines_or_reorder_text() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let attempted = "eve\n2026-01-01 admin login_success\u{202e}\u{2066}\r\u{85}";
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            Some(json!({"username": attempted, "password": "not the password"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let failed = logs(&server, &admin, "action=login_failed").await;
    assert_eq!(failed["meta"]["total"], 1, "{failed}");
    let record = &failed["data"][0];
    for field in ["username", "resource_id"] {
        assert_eq!(
            record[field], "eve\\u{a}2026-01-01 admin login_success\\u{202e}\\u{2066}\\u{d}\\u{85}",
            "{field}: {record}"
        );
    }
    assert_eq!(verify(&server, &admin, "").await["valid"], true);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn csv_export_cells_never_start_a_formula() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    for attempted in [
        "=HYPERLINK(\"http://x.test\")",
        "+1",
        "-1",
        "@SUM(A1)",
        "\tx",
    ] {
        let (status, _) = server
            .call(
                Method::POST,
                "/api/v2/auth/login/password",
                &Auth::None,
                Some(json!({"username": attempted, "password": "not the password"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{attempted}");
    }
    let response = server
        .request(
            Method::GET,
            "/api/v2/audit/export?format=csv&action=login_failed",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let csv = response.text().await?;
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let usernames: Vec<String> = reader
        .records()
        .map(|r| r.map(|r| r[2].to_owned()))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        usernames,
        [
            "'=HYPERLINK(\"http://x.test\")",
            "'+1",
            "'-1",
            "'@SUM(A1)",
            "\\u{9}x"
        ],
        "{csv}"
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn moving_the_start_of_the_keyed_part_cannot_unkey_a_rewritten_tail() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    history(&server, &admin).await;
    let raw = server.raw_store().await;
    let last = raw.audit_anchor().await?.last_id;
    raw.execute_raw(&format!(
        "UPDATE audit_head SET keyed_from = {} WHERE id = 1",
        last + 1
    ))
    .await?;
    rewrite_with_plain_hash(&raw, last, "nothing happened").await?;
    for seal in ["keyed_seal", "NULL"] {
        raw.execute_raw(&format!(
            "UPDATE audit_head SET keyed_seal = {seal} WHERE id = 1"
        ))
        .await?;
        let report = verify(&server, &admin, "").await;
        assert_eq!(report["valid"], false, "{report}");
        assert!(has_fault(&report, last + 1, "altered"), "{report}");
        assert!(has_fault(&report, last, "altered"), "{report}");
    }
    raw.close().await;
    server.stop().await;
    Ok(())
}
