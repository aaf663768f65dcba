//! One's own account: profile, password, API keys, sessions and activity.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, TestResult, TestServer};

#[tokio::test]
async fn profile_and_password() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let other = server.admin().await;
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/account/profile",
            &Auth::Session(&admin),
            Some(json!({"email": "root@example.test", "full_name": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["email"], "root@example.test");
    assert_eq!(body["data"]["full_name"], Value::Null);
    let (status, _) = server
        .call(
            Method::PATCH,
            "/api/v2/account/profile",
            &Auth::Session(&admin),
            Some(json!({"email": "not-an-address"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, body) = server
        .call(
            Method::GET,
            "/api/v2/account/profile",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(body["data"]["email"], "root@example.test");

    let change =
        |current: &str, new: &str| Some(json!({"current_password": current, "new_password": new}));
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/account/password",
            &Auth::Session(&admin),
            change("wrong wrong wrong", "a brand new password"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/account/password",
            &Auth::Session(&admin),
            change(ADMIN_PASSWORD, "short"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["message"],
        "password must be at least 12 characters long"
    );
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/account/password",
            &Auth::Session(&admin),
            change(ADMIN_PASSWORD, "a brand new password"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the session that changed the password goes on"
    );
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Session(&other),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "other sessions end");
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.login("admin", "a brand new password").await;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn api_keys_lifecycle() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, created) = server
        .call(
            Method::POST,
            "/api/v2/account/apikeys",
            &Auth::Session(&admin),
            Some(json!({"name": "ci", "expires_days": 30, "permissions": ["read:users"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["data"]["id"].as_i64().ok_or("id")?;
    let secret = created["data"]["key"].as_str().ok_or("key")?.to_owned();
    assert!(secret.starts_with("cm_"));
    assert!(secret.starts_with(created["data"]["key_prefix"].as_str().ok_or("prefix")?));

    let (_, list) = server
        .call(
            Method::GET,
            "/api/v2/account/apikeys",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(list["data"][0]["name"], "ci");
    assert!(
        list["data"][0].get("key").is_none(),
        "the secret is shown once only"
    );
    let (_, one) = server
        .call(
            Method::GET,
            &format!("/api/v2/account/apikeys/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert!(one["data"].get("key").is_none());
    assert!(one["data"]["expires_at"].is_string());

    for auth in [Auth::Bearer(&secret), Auth::ApiKeyHeader(&secret)] {
        let (status, _) = server.call(Method::GET, "/api/v2/users", &auth, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = server
        .call(
            Method::PATCH,
            &format!("/api/v2/account/apikeys/{id}"),
            &Auth::Session(&admin),
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["name"], "renamed");

    let (status, regenerated) = server
        .call(
            Method::POST,
            &format!("/api/v2/account/apikeys/{id}/regenerate"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let fresh = regenerated["data"]["key"].as_str().ok_or("key")?.to_owned();
    assert_ne!(fresh, secret);
    let (status, _) = server
        .call(Method::GET, "/api/v2/users", &Auth::Bearer(&secret), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .call(Method::GET, "/api/v2/users", &Auth::Bearer(&fresh), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    for bad in [
        json!({"name": "x", "expires_days": 0, "permissions": ["read:users"]}),
        json!({"name": "x", "expires_days": 5000, "permissions": ["read:users"]}),
        json!({"name": "x", "permissions": []}),
        json!({"name": "", "permissions": ["read:users"]}),
    ] {
        let (status, _) = server
            .call(
                Method::POST,
                "/api/v2/account/apikeys",
                &Auth::Session(&admin),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    // Nobody reaches another user's keys.
    server.user(&admin, "vic", "viewer").await;
    let vic = server.login("vic", ADMIN_PASSWORD).await;
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/v2/account/apikeys/{id}"),
            &Auth::Session(&vic),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/account/apikeys/{id}"),
            &Auth::Session(&vic),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/account/apikeys",
            &Auth::Session(&vic),
            Some(json!({"name": "x", "permissions": ["read:audit"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/account/apikeys/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(Method::GET, "/api/v2/users", &Auth::Bearer(&fresh), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/v2/account/apikeys/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn sessions_can_be_listed_and_revoked() -> TestResult {
    let server = TestServer::start().await;
    let first = server.admin().await;
    let second = server.admin().await;
    let third = server.admin().await;
    let (status, list) = server
        .call(
            Method::GET,
            "/api/v2/account/sessions",
            &Auth::Session(&first),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let sessions = list["data"].as_array().ok_or("sessions")?;
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let newest = sessions[0]["id"].as_i64().ok_or("id")?;
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/account/sessions/{newest}"),
            &Auth::Session(&first),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Session(&third),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .call(
            Method::DELETE,
            "/api/v2/account/sessions/999999",
            &Auth::Session(&first),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/account/sessions/revoke-all",
            &Auth::Session(&first),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["revoked"], 1);
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Session(&second),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Session(&first),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn activity_shows_ones_own_records() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "amy", "viewer").await;
    let amy = server.login("amy", ADMIN_PASSWORD).await;
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/account/activity?limit=5",
            &Auth::Session(&amy),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let records = body["data"].as_array().ok_or("records")?;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["action"], "login_success");
    assert_eq!(records[0]["username"], "amy");
    let (_, body) = server
        .call(
            Method::GET,
            "/api/v2/account/activity?limit=2",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["data"][0]["action"], "user_created", "newest first");
    for limit in [0, 101] {
        let (status, _) = server
            .call(
                Method::GET,
                &format!("/api/v2/account/activity?limit={limit}"),
                &Auth::Session(&amy),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    server.stop().await;
    Ok(())
}
