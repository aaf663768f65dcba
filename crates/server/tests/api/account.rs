//! One's own account: profile, password, API keys, sessions and activity.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};

const PROFILE: &str = "/api/v2/account/profile";
const KEYS: &str = "/api/v2/account/apikeys";
const SESSIONS: &str = "/api/v2/account/sessions";
const VERIFY: &str = "/api/v2/auth/verify";

/// The status of `GET /api/v2/auth/verify` with a session.
async fn session_status(server: &TestServer, session: &Session) -> StatusCode {
    server
        .call(Method::GET, VERIFY, &Auth::Session(session), None)
        .await
        .0
}

/// The status of `GET /api/v2/auth/verify` with an API key.
async fn key_status(server: &TestServer, key: &str) -> StatusCode {
    server
        .call(Method::GET, VERIFY, &Auth::Bearer(key), None)
        .await
        .0
}

async fn profile(server: &TestServer, session: &Session) -> Value {
    let (status, body) = server
        .call(Method::GET, PROFILE, &Auth::Session(session), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

#[tokio::test]
async fn profile_can_be_read_and_changed() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let me = profile(&server, &admin).await;
    assert_eq!(me["username"], "admin");
    assert_eq!(me["role"], "admin");
    assert_eq!(me["active"], true);
    assert!(me.get("password_hash").is_none());

    let as_admin = Auth::Session(&admin);
    let patch = |body: Value| server.call(Method::PATCH, PROFILE, &as_admin, Some(body));
    let (status, body) =
        patch(json!({"full_name": "Ada Root", "email": "root@example.test"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["full_name"], "Ada Root");
    assert_eq!(body["data"]["email"], "root@example.test");
    let me = profile(&server, &admin).await;
    assert_eq!(me["full_name"], "Ada Root");
    assert_eq!(me["email"], "root@example.test");

    // null clears a field; an absent field is left alone.
    let (status, body) = patch(json!({"full_name": null})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let me = profile(&server, &admin).await;
    assert_eq!(me["full_name"], Value::Null);
    assert_eq!(me["email"], "root@example.test");

    // A bad address is refused and nothing in the request is written.
    let (status, body) = patch(json!({"email": "not-an-address", "full_name": "Eve"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], true);
    assert_eq!(body["code"], 422);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("e-mail")),
        "{body}"
    );
    let me = profile(&server, &admin).await;
    assert_eq!(me["email"], "root@example.test");
    assert_eq!(me["full_name"], Value::Null);

    let (status, body) = patch(json!({"email": null})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(profile(&server, &admin).await["email"], Value::Null);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions() -> TestResult {
    const NEW: &str = "a brand new password";
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "pat", "viewer").await;
    let pat = server.login("pat", ADMIN_PASSWORD).await;
    let pat_elsewhere = server.login("pat", ADMIN_PASSWORD).await;
    let as_pat = Auth::Session(&pat);
    let change = |current: &str, new: &str| {
        server.call(
            Method::POST,
            "/api/v2/account/password",
            &as_pat,
            Some(json!({"current_password": current, "new_password": new})),
        )
    };

    let (status, body) = change("wrong wrong wrong", NEW).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], 403);
    let (status, body) = change(ADMIN_PASSWORD, "short").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["message"],
        "password must be at least 12 characters long"
    );
    let (status, _) = change(ADMIN_PASSWORD, "eleven char").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "11 characters");
    let (status, _) = change(ADMIN_PASSWORD, ADMIN_PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the same password"
    );
    // None of the refused changes touched anything.
    assert_eq!(
        session_status(&server, &pat_elsewhere).await,
        StatusCode::OK
    );
    server.login("pat", ADMIN_PASSWORD).await;

    let (status, body) = change(ADMIN_PASSWORD, NEW).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        session_status(&server, &pat).await,
        StatusCode::OK,
        "the session that changed the password goes on"
    );
    assert_eq!(
        session_status(&server, &pat_elsewhere).await,
        StatusCode::UNAUTHORIZED,
        "other sessions end"
    );
    assert_eq!(
        session_status(&server, &admin).await,
        StatusCode::OK,
        "other users' sessions are untouched"
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            Some(json!({"username": "pat", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password: {body}");
    server.login("pat", NEW).await;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_api_key_secret_is_shown_once_and_authenticates() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, created) = server
        .call(
            Method::POST,
            KEYS,
            &Auth::Session(&admin),
            Some(json!({"name": "ci", "expires_days": 30, "permissions": ["read:users"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["data"]["id"].as_i64().ok_or("id")?;
    let secret = created["data"]["key"].as_str().ok_or("key")?.to_owned();
    let prefix = created["data"]["key_prefix"].as_str().ok_or("prefix")?;
    assert!(secret.starts_with("cm_"), "{secret}");
    assert!(secret.len() > 40, "{secret}");
    assert!(secret.starts_with(prefix) && prefix.len() < secret.len());
    assert_eq!(created["data"]["name"], "ci");
    assert_eq!(created["data"]["permissions"], json!(["read:users"]));
    assert_eq!(created["data"]["enabled"], true);
    assert_eq!(created["data"]["expired"], false);
    assert!(created["data"]["expires_at"].is_string());

    // Listed and fetched without the secret, but with a prefix of it.
    let (status, list) = server
        .call(Method::GET, KEYS, &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let keys = list["data"].as_array().ok_or("keys")?;
    assert_eq!(keys.len(), 1);
    let (status, one) = server
        .call(
            Method::GET,
            &format!("{KEYS}/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for shown in [&keys[0], &one["data"]] {
        assert_eq!(shown["id"], id);
        assert!(shown.get("key").is_none(), "the secret is shown once only");
        let p = shown["key_prefix"].as_str().ok_or("prefix")?;
        assert!(!p.is_empty() && secret.starts_with(p), "{shown}");
        assert!(!shown.to_string().contains(&secret), "{shown}");
    }

    // It authenticates both ways, with its own permissions only.
    for auth in [Auth::Bearer(&secret), Auth::ApiKeyHeader(&secret)] {
        let (status, body) = server.call(Method::GET, "/api/v2/users", &auth, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = server
            .call(Method::GET, "/api/v2/audit/logs", &auth, None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "the key lacks read:audit");
    }
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/users",
            &Auth::Bearer(&format!("{secret}x")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn api_keys_can_be_renamed_disabled_regenerated_and_deleted() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (id, secret) = server.api_key(&admin, &["read:users"]).await;
    let path = format!("{KEYS}/{id}");
    let as_admin = Auth::Session(&admin);
    let patch = |body: Value| server.call(Method::PATCH, &path, &as_admin, Some(body));

    let (status, body) = patch(json!({"name": "renamed"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "renamed");
    assert_eq!(body["data"]["enabled"], true);
    let (status, _) = patch(json!({"name": ""})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, body) = patch(json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["enabled"], false);
    assert_eq!(body["data"]["name"], "renamed", "the name is left alone");
    let (status, body) = server
        .call(Method::GET, VERIFY, &Auth::Bearer(&secret), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("disabled")),
        "{body}"
    );
    let (status, _) = patch(json!({"enabled": true})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(key_status(&server, &secret).await, StatusCode::OK);

    // Regenerating replaces the secret: the old one stops working at once.
    let (status, regenerated) = server
        .call(
            Method::POST,
            &format!("{path}/regenerate"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{regenerated}");
    assert_eq!(regenerated["data"]["id"], id);
    assert_eq!(regenerated["data"]["name"], "renamed");
    let fresh = regenerated["data"]["key"].as_str().ok_or("key")?.to_owned();
    assert!(fresh.starts_with("cm_"));
    assert_ne!(fresh, secret);
    assert!(fresh.starts_with(regenerated["data"]["key_prefix"].as_str().ok_or("prefix")?));
    assert_eq!(key_status(&server, &secret).await, StatusCode::UNAUTHORIZED);
    assert_eq!(key_status(&server, &fresh).await, StatusCode::OK);
    let (_, one) = server
        .call(Method::GET, &path, &Auth::Session(&admin), None)
        .await;
    assert!(fresh.starts_with(one["data"]["key_prefix"].as_str().ok_or("prefix")?));

    let (status, _) = server
        .call(Method::DELETE, &path, &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(key_status(&server, &fresh).await, StatusCode::UNAUTHORIZED);
    let (status, body) = server
        .call(Method::GET, &path, &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 404);
    let (status, _) = server
        .call(Method::DELETE, &path, &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "deleted once only");
    let (_, list) = server
        .call(Method::GET, KEYS, &Auth::Session(&admin), None)
        .await;
    assert_eq!(list["data"], json!([]));

    let (_, audit) = server
        .call(
            Method::GET,
            "/api/v2/audit/logs?search=api_key",
            &Auth::Session(&admin),
            None,
        )
        .await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .ok_or("records")?
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for action in [
        "api_key_created",
        "api_key_updated",
        "api_key_regenerated",
        "api_key_deleted",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn api_key_requests_are_validated() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    for bad in [
        json!({"name": "x", "expires_days": 0, "permissions": ["read:users"]}),
        json!({"name": "x", "expires_days": -1, "permissions": ["read:users"]}),
        json!({"name": "x", "expires_days": 5000, "permissions": ["read:users"]}),
        json!({"name": "x", "permissions": []}),
        json!({"name": "x", "permissions": ["fly:kites"]}),
        json!({"name": "", "permissions": ["read:users"]}),
    ] {
        let (status, body) = server
            .call(
                Method::POST,
                KEYS,
                &Auth::Session(&admin),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"], true);
    }
    let (_, list) = server
        .call(Method::GET, KEYS, &Auth::Session(&admin), None)
        .await;
    assert_eq!(list["data"], json!([]), "no refused key was stored");
    for good in [1, 3650] {
        let (status, body) = server
            .call(
                Method::POST,
                KEYS,
                &Auth::Session(&admin),
                Some(json!({"name": "edge", "expires_days": good, "permissions": ["read:users"]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{good}: {body}");
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_api_key_stops_working_when_it_expires() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, created) = server
        .call(
            Method::POST,
            KEYS,
            &Auth::Session(&admin),
            Some(json!({"name": "short", "expires_days": 1, "permissions": ["read:users"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["data"]["id"].as_i64().ok_or("id")?;
    let secret = created["data"]["key"].as_str().ok_or("key")?.to_owned();
    server.clock.advance(time::Duration::hours(23));
    assert_eq!(key_status(&server, &secret).await, StatusCode::OK);
    server.clock.advance(time::Duration::hours(2));
    let (status, body) = server
        .call(Method::GET, VERIFY, &Auth::Bearer(&secret), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired")),
        "{body}"
    );
    let admin = server.admin().await;
    let (_, one) = server
        .call(
            Method::GET,
            &format!("{KEYS}/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(one["data"]["expired"], true);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn api_keys_belong_to_their_owner_and_never_exceed_them() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (id, secret) = server.api_key(&admin, &["read:users"]).await;
    server.user(&admin, "vic", "viewer").await;
    let vic = server.login("vic", ADMIN_PASSWORD).await;

    // Nobody reaches another user's key, whatever the verb.
    let path = format!("{KEYS}/{id}");
    for (method, path, body) in [
        (Method::GET, path.clone(), None),
        (Method::PATCH, path.clone(), Some(json!({"enabled": false}))),
        (Method::POST, format!("{path}/regenerate"), None),
        (Method::DELETE, path.clone(), None),
    ] {
        let (status, answer) = server
            .call(method.clone(), &path, &Auth::Session(&vic), body)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
    }
    let (_, list) = server
        .call(Method::GET, KEYS, &Auth::Session(&vic), None)
        .await;
    assert_eq!(list["data"], json!([]), "vic sees only vic's keys");
    assert_eq!(
        key_status(&server, &secret).await,
        StatusCode::OK,
        "the owner's key is untouched"
    );
    let (_, one) = server
        .call(Method::GET, &path, &Auth::Session(&admin), None)
        .await;
    assert_eq!(one["data"]["enabled"], true);

    // A key holds no more than its creator: a viewer cannot grant read:audit...
    let (status, body) = server
        .call(
            Method::POST,
            KEYS,
            &Auth::Session(&vic),
            Some(json!({"name": "x", "permissions": ["read:audit"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], 403);
    // ...but can grant what it holds.
    let (vic_key_id, vic_key) = server.api_key(&vic, &["read:certificates"]).await;
    // A key cannot mint a key wider than itself.
    let (status, _) = server
        .call(
            Method::POST,
            KEYS,
            &Auth::Bearer(&vic_key),
            Some(json!({"name": "wider", "permissions": ["read:cas"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // And the admin cannot reach vic's key either.
    let (status, _) = server
        .call(
            Method::GET,
            &format!("{KEYS}/{vic_key_id}"),
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
    let (status, list) = server
        .call(Method::GET, SESSIONS, &Auth::Session(&first), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let sessions = list["data"].as_array().ok_or("sessions")?;
    assert_eq!(sessions.len(), 2, "{list}");
    assert_eq!(
        sessions.iter().filter(|s| s["current"] == true).count(),
        1,
        "{list}"
    );
    assert!(sessions.iter().all(|s| s["auth_method"] == "password"));
    let other = sessions
        .iter()
        .find(|s| s["current"] == false)
        .and_then(|s| s["id"].as_i64())
        .ok_or("the other session")?;
    let mine = sessions
        .iter()
        .find(|s| s["current"] == true)
        .and_then(|s| s["id"].as_i64())
        .ok_or("the current session")?;
    // The other one sees itself as current.
    let (_, seen) = server
        .call(Method::GET, SESSIONS, &Auth::Session(&second), None)
        .await;
    let current: Vec<i64> = seen["data"]
        .as_array()
        .ok_or("sessions")?
        .iter()
        .filter(|s| s["current"] == true)
        .filter_map(|s| s["id"].as_i64())
        .collect();
    assert_eq!(current, vec![other]);

    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("{SESSIONS}/{other}"),
            &Auth::Session(&first),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        session_status(&server, &second).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(session_status(&server, &first).await, StatusCode::OK);
    let (status, body) = server
        .call(
            Method::DELETE,
            &format!("{SESSIONS}/{other}"),
            &Auth::Session(&first),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already ended: {body}");
    let (status, body) = server
        .call(
            Method::DELETE,
            &format!("{SESSIONS}/999999"),
            &Auth::Session(&first),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 404);

    // Another user's session cannot be ended.
    server.user(&first, "ora", "viewer").await;
    let ora = server.login("ora", ADMIN_PASSWORD).await;
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("{SESSIONS}/{mine}"),
            &Auth::Session(&ora),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(session_status(&server, &first).await, StatusCode::OK);

    // Revoke-all keeps the current session and ends the rest, and only one's own.
    let third = server.admin().await;
    let fourth = server.admin().await;
    let (status, body) = server
        .call(
            Method::POST,
            &format!("{SESSIONS}/revoke-all"),
            &Auth::Session(&first),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["revoked"], 2);
    assert_eq!(
        session_status(&server, &third).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        session_status(&server, &fourth).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(session_status(&server, &first).await, StatusCode::OK);
    assert_eq!(session_status(&server, &ora).await, StatusCode::OK);
    let (_, list) = server
        .call(Method::GET, SESSIONS, &Auth::Session(&first), None)
        .await;
    let ids: Vec<i64> = list["data"]
        .as_array()
        .ok_or("sessions")?
        .iter()
        .filter_map(|s| s["id"].as_i64())
        .collect();
    assert_eq!(ids, vec![mine]);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn activity_shows_ones_own_records_newest_first() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "amy", "viewer").await;
    // Someone else's records, before and after amy's, must not show up in hers.
    server.user(&admin, "amy2", "viewer").await;
    let amy = server.login("amy", ADMIN_PASSWORD).await;
    server.login("amy2", ADMIN_PASSWORD).await;
    server.api_key(&amy, &["read:certificates"]).await;
    server.api_key(&admin, &["read:users"]).await;

    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/account/activity?limit=5",
            &Auth::Session(&amy),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let records = body["data"].as_array().ok_or("records")?;
    let actions: Vec<&str> = records
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(actions, ["api_key_created", "login_success"], "{body}");
    assert!(records.iter().all(|r| r["username"] == "amy"), "{body}");

    // More than the limit: at most `limit` records, newest first.
    for _ in 0..5 {
        server.login("amy", ADMIN_PASSWORD).await;
    }
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
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r["username"] == "amy"), "{body}");
    assert!(records.iter().all(|r| r["action"] == "login_success"));
    let ids: Vec<i64> = records.iter().filter_map(|r| r["id"].as_i64()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let (_, all) = server
        .call(
            Method::GET,
            "/api/v2/account/activity",
            &Auth::Session(&amy),
            None,
        )
        .await;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(7));

    let (_, body) = server
        .call(
            Method::GET,
            "/api/v2/account/activity?limit=2",
            &Auth::Session(&admin),
            None,
        )
        .await;
    let actions: Vec<&str> = body["data"]
        .as_array()
        .ok_or("records")?
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(actions, ["api_key_created", "user_created"], "{body}");

    for limit in [0, 101] {
        let (status, body) = server
            .call(
                Method::GET,
                &format!("/api/v2/account/activity?limit={limit}"),
                &Auth::Session(&amy),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{limit}: {body}");
        assert_eq!(body["code"], 422);
    }
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/account/activity?limit=100",
            &Auth::Session(&amy),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
    Ok(())
}
