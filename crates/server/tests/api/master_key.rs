//! The master key over REST: what is sealed under which version, rotating it while serving,
//! and everything sealed before still working afterwards (issuing from the CA, exporting a
//! key); who may ask, and bad requests.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Auth, Session, TestResult, TestServer};

const ENCRYPTION: &str = "/api/v2/system/security/encryption-status";
const ROTATE: &str = "/api/v2/system/security/rotate-secrets";
const SECRETS: &str = "/api/v2/system/security/secrets-status";

async fn get(server: &TestServer, auth: &Auth<'_>, path: &str) -> TestResult<Value> {
    let (status, body) = server.call(Method::GET, path, auth, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    Ok(body["data"].clone())
}

/// Issues a certificate whose key the server makes and keeps; returns its id.
async fn issue(server: &TestServer, admin: &Session, name: &str) -> TestResult<i64> {
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &Auth::Session(admin),
            Some(json!({"common_name": name, "san": [format!("dns:{name}")]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["private_key_available"], true, "{body}");
    Ok(body["data"]["id"].as_i64().ok_or("id")?)
}

/// The kinds of sealed secrets and the versions each is under: `{"ca_key": [1], …}`.
pub(crate) fn versions_by_kind(
    status: &Value,
) -> TestResult<std::collections::BTreeMap<String, Vec<u64>>> {
    let mut kinds = std::collections::BTreeMap::new();
    for kind in status["sealed"].as_array().ok_or("sealed")? {
        let versions = kind["versions"]
            .as_array()
            .ok_or("versions")?
            .iter()
            .map(|v| v["version"].as_u64().ok_or("version"))
            .collect::<Result<Vec<_>, _>>()?;
        kinds.insert(kind["kind"].as_str().ok_or("kind")?.to_owned(), versions);
    }
    Ok(kinds)
}

/// Waits for the rotation under way to finish; returns the final state.
pub(crate) async fn finished(server: &TestServer, auth: &Auth<'_>) -> TestResult<Value> {
    for _ in 0..300 {
        let state = get(server, auth, SECRETS).await?;
        if state["state"] == "idle" && state["last_error"].is_null() {
            return Ok(state);
        }
        assert!(state["last_error"].is_null(), "{state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the rotation did not finish in 30 s".into())
}

async fn export_key(server: &TestServer, auth: &Auth<'_>, id: i64) -> TestResult<String> {
    let response = server
        .request(
            Method::GET,
            &format!("/api/v2/certificates/{id}/export?format=pem&include_key=true"),
            auth,
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    Ok(response.text().await?)
}

#[tokio::test]
async fn rotation_reseals_every_secret_and_everything_still_works() -> TestResult {
    let server = TestServer::start_with(|s| s.webhooks.allow_private_targets = true).await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);

    // Secrets of every kind, sealed under the first key.
    let mut certificates = Vec::new();
    for n in 0..3 {
        certificates.push(issue(&server, &admin, &format!("host{n}.example.test")).await?);
    }
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/webhooks",
            &auth,
            Some(json!({"name": "ops", "url": "http://127.0.0.1:9/hook",
                        "events": ["certificate_issued"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/settings/email",
            &auth,
            Some(json!({"host": "smtp.example.test", "username": "certmint",
                        "password": "mail password", "from_address": "ca@example.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let profiles = get(&server, &auth, "/api/v2/acme/profiles").await?;
    let profile = profiles[0]["id"].as_i64().ok_or("profile id")?;
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/v2/acme/profiles/{profile}/eab-keys"),
            &auth,
            Some(json!({"description": "farm"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let directory: Value = server
        .client
        .get(server.url("/acme/directory"))
        .send()
        .await?
        .json()
        .await?;
    let nonce = server
        .client
        .head(directory["newNonce"].as_str().ok_or("newNonce")?)
        .send()
        .await?;
    assert!(nonce.headers().contains_key("replay-nonce"));
    // A user's authenticator secret is sealed too.
    server.user(&admin, "tina", "viewer").await;
    let tina = server.login("tina", crate::common::ADMIN_PASSWORD).await;
    let totp_secret = crate::two_factor::enable_totp(&server, &tina).await?;
    let key_before = export_key(&server, &auth, certificates[0]).await?;
    let second_before = export_key(&server, &auth, certificates[1]).await?;

    let before = get(&server, &auth, ENCRYPTION).await?;
    assert_eq!(before["enabled"], true);
    assert_eq!(before["version"], 1);
    assert_eq!(before["key_source"], "file");
    let kinds = versions_by_kind(&before)?;
    for kind in [
        "ca_key",
        "certificate_key",
        "webhook_secret",
        "smtp_password",
        "acme_eab_key",
        "acme_nonce_key",
        "totp_secret",
        "https_listener_key",
    ] {
        assert_eq!(kinds.get(kind), Some(&vec![1]), "{kind}: {before}");
    }
    let total = before["total"].as_i64().ok_or("total")?;
    assert!(total >= 10, "{before}");
    let idle = get(&server, &auth, SECRETS).await?;
    assert_eq!(idle["state"], "idle");
    assert!(idle["rotated_at"].is_null(), "{idle}");
    assert_eq!(idle["remaining"], 0);

    // Rotate; the server keeps serving while the secrets are sealed again.
    let (status, body) = server
        .call(Method::POST, ROTATE, &auth, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["data"]["to_version"], 2, "{body}");
    // Under way (it lets in-flight writes settle for seconds before retiring the old key):
    // both keys are held, and a second rotation is refused.
    let running = get(&server, &auth, SECRETS).await?;
    assert_eq!(running["state"], "in_progress", "{running}");
    assert_eq!(running["key_versions"], json!([1, 2]), "{running}");
    let (status, body) = server
        .call(Method::POST, ROTATE, &auth, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("already running"),
        "{body}"
    );
    let state = finished(&server, &auth).await?;
    assert_eq!(state["current_version"], 2, "{state}");
    assert_eq!(state["key_versions"], json!([2]), "{state}");
    assert_eq!(state["sealed_total"], total, "{state}");
    assert_eq!(state["remaining"], 0, "{state}");
    assert!(state["rotated_at"].is_string(), "{state}");
    assert!(state["next_rotation"].is_null(), "{state}");

    let after = get(&server, &auth, ENCRYPTION).await?;
    assert_eq!(after["version"], 2);
    assert_eq!(after["under_older_keys"], 0, "{after}");
    assert_eq!(after["total"], total, "no secret lost or added: {after}");
    for (kind, versions) in versions_by_kind(&after)? {
        assert_eq!(versions, [2], "{kind}: {after}");
    }
    let key_file = std::fs::read_to_string(server._data_dir.path().join("master.key"))?;
    assert!(
        key_file.contains("key 2 ") && !key_file.contains("key 1 "),
        "old key retired"
    );

    // What was sealed under the first key still opens: the same key comes out, and the CA
    // still issues.
    assert_eq!(
        export_key(&server, &auth, certificates[0]).await?,
        key_before
    );
    issue(&server, &admin, "after.example.test").await?;
    crate::two_factor::login_with_code(&server, "tina", &totp_secret).await?;
    for action in [
        "master_key_rotation_started",
        "master_key_retired",
        "master_key_rotation_finished",
    ] {
        assert_eq!(
            server.audit_total(&auth, &format!("action={action}")).await,
            1,
            "{action}"
        );
    }

    // A key the operator gives is the one written.
    let given = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=";
    let (status, body) = server
        .call(Method::POST, ROTATE, &auth, Some(json!({"new_key": given})))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let state = finished(&server, &auth).await?;
    assert_eq!(state["key_versions"], json!([3]), "{state}");
    let key_file = std::fs::read_to_string(server._data_dir.path().join("master.key"))?;
    assert!(key_file.contains(&format!("key 3 {given}")), "{state}");
    assert_eq!(
        export_key(&server, &auth, certificates[1]).await?,
        second_before,
        "the same key and certificate export after a second rotation"
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn only_admin_system_sees_or_rotates_and_bad_requests_change_nothing() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    server.user(&admin, "olga", "operator").await;
    let operator = server.login("olga", crate::common::ADMIN_PASSWORD).await;
    let (_, narrow) = server.api_key(&admin, &["read:certificates"]).await;
    let (_, wide) = server.api_key(&admin, &["admin:system"]).await;
    for who in [Auth::Session(&operator), Auth::Bearer(&narrow)] {
        for (method, path, body) in [
            (Method::GET, ENCRYPTION, None),
            (Method::GET, SECRETS, None),
            (Method::POST, ROTATE, Some(json!({}))),
        ] {
            let (status, body) = server.call(method, path, &who, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        }
    }
    let (status, _) = server
        .call(Method::GET, ENCRYPTION, &Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    for (body, expect) in [
        (
            json!({"new_key": "c2hvcnQ="}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"new_key": "not a key at all"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"new_key": 42}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"key": "x"}), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (status, answer) = server
            .call(
                Method::POST,
                ROTATE,
                &Auth::Bearer(&wide),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, expect, "{body}: {answer}");
        assert_eq!(answer["error"], true, "{answer}");
        assert!(
            !answer["message"]
                .as_str()
                .unwrap_or("")
                .contains("not a key at all"),
            "the key is never echoed: {answer}"
        );
    }
    let response = server
        .request(Method::POST, ROTATE, &Auth::Bearer(&wide), None)
        .await;
    assert!(response.status().is_client_error(), "{}", response.status());
    let state = get(&server, &auth, SECRETS).await?;
    assert_eq!(state["state"], "idle", "{state}");
    assert_eq!(
        state["key_versions"],
        json!([1]),
        "nothing rotated: {state}"
    );
    assert_eq!(
        server
            .audit_total(&auth, "action=master_key_rotation_started")
            .await,
        0
    );

    // A key with admin:system may.
    let (status, body) = server
        .call(Method::POST, ROTATE, &Auth::Bearer(&wide), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let state = finished(&server, &auth).await?;
    assert_eq!(state["key_versions"], json!([2]), "{state}");
    server.stop().await;
    Ok(())
}
