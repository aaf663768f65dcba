//! Settings changed without a restart: `/settings/general` and
//! `/system/security/rate-limit`, on one node and on a second node sharing the database.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};

const GENERAL: &str = "/api/v2/settings/general";
const RATE_LIMIT: &str = "/api/v2/system/security/rate-limit";
const STATS: &str = "/api/v2/system/security/rate-limit/stats";
const RESET: &str = "/api/v2/system/security/rate-limit/reset";
const LOGIN: &str = "/api/v2/auth/login/password";

async fn try_login(server: &TestServer, username: &str, password: &str) -> (StatusCode, Value) {
    server
        .call(
            Method::POST,
            LOGIN,
            &Auth::None,
            Some(json!({"username": username, "password": password})),
        )
        .await
}

async fn patch(server: &TestServer, admin: &Session, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::PATCH, GENERAL, &Auth::Session(admin), Some(body))
        .await
}

/// Creates a user, returning the status and body.
async fn new_user(
    server: &TestServer,
    admin: &Session,
    username: &str,
    password: &str,
) -> (StatusCode, Value) {
    server
        .call(
            Method::POST,
            "/api/v2/users",
            &Auth::Session(admin),
            Some(json!({"username": username, "password": password, "role": "viewer"})),
        )
        .await
}

/// Resets the rate-limit counts as `body` says, returning the answer.
async fn reset(server: &TestServer, admin: &Session, body: Value) -> Value {
    let (status, answer) = server
        .call(Method::POST, RESET, &Auth::Session(admin), Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// Asserts that `tries` wrong passwords lock `username` and not one fewer.
async fn locks_after(server: &TestServer, username: &str, tries: usize) {
    for attempt in 1..=tries {
        let (status, body) = try_login(server, username, "wrong password!").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        let locked = body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("locked");
        assert_eq!(locked, attempt == tries, "attempt {attempt}: {body}");
    }
}

#[tokio::test]
async fn patched_settings_hold_at_once_and_are_audited() -> TestResult {
    let server = TestServer::start_with(|s| s.lockout_minutes = 20).await;
    let admin = server.admin().await;
    let (status, body) = server
        .call(Method::GET, GENERAL, &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["lockout_threshold"]["value"], 10);
    assert_eq!(data["lockout_threshold"]["source"], "default");
    assert_eq!(data["lockout_threshold"]["applies"], "live");
    assert_eq!(data["lockout_minutes"]["source"], "file");
    assert_eq!(data["lockout_minutes"]["value"], 20);
    assert_eq!(data["public_url"]["applies"], "restart");
    assert_eq!(data["audit_min_retention_days"]["applies"], "restart");
    assert_eq!(data["database_url"]["applies"], "restart");

    let (status, body) = patch(
        &server,
        &admin,
        json!({"lockout_threshold": 2, "password_min_length": 30, "session_idle_minutes": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["lockout_threshold"]["value"], 2);
    assert_eq!(body["data"]["lockout_threshold"]["source"], "database");
    assert_eq!(body["data"]["lockout_threshold"]["configured"], 10);
    assert_eq!(body["data"]["lockout_minutes"]["source"], "file");

    // The new minimum: the 28-character password is now too short.
    let (status, body) = new_user(&server, &admin, "lena", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("at least 30 characters"),
        "{body}"
    );
    let long = "correct horse battery staple, longer";
    let (status, body) = new_user(&server, &admin, "lena", long).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The new threshold: two wrong passwords lock.
    locks_after(&server, "lena", 2).await;
    let (status, body) = try_login(&server, "lena", long).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("after 2 failed"),
        "{body}"
    );

    // The new idle time: six minutes without a request end a session.
    server.clock.advance(time::Duration::minutes(6));
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("inactivity"),
        "{body}"
    );

    let admin = server.admin().await;
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/audit/logs?action=settings_updated",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta"]["total"], 1, "{body}");
    let details = body["data"][0]["details"].as_str().unwrap_or_default();
    for change in [
        "lockout_threshold 10 → 2",
        "password_min_length 12 → 30",
        "session_idle_minutes 30 → 5",
    ] {
        assert!(details.contains(change), "{change} in {details}");
    }
    assert_eq!(body["data"][0]["username"], "admin");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn bad_values_restart_only_and_unknown_names_are_refused() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    for (body, status, says) in [
        (
            json!({"password_min_length": 7}),
            422,
            "password_min_length must be 8 to 128",
        ),
        (
            json!({"password_min_length": 129}),
            422,
            "password_min_length",
        ),
        (json!({"lockout_threshold": 0}), 422, "lockout_threshold"),
        (json!({"lockout_minutes": -5}), 422, "bad setting value"),
        (
            json!({"lockout_threshold": "three"}),
            422,
            "bad setting value",
        ),
        (
            json!({"session_idle_minutes": 0}),
            422,
            "session_idle_minutes",
        ),
        (
            json!({"session_idle_minutes": 120, "session_absolute_minutes": 60}),
            422,
            "at least session_idle_minutes",
        ),
        (json!({"lockout_threshold": null}), 422, "cannot be null"),
        (json!({"public_url": "http://ca.example"}), 422, "restart"),
        (json!({"database_url": "postgres://x"}), 422, "restart"),
        (json!({"site_name": "My PKI"}), 400, "not a setting"),
        (json!({}), 400, "at least one setting"),
    ] {
        let (got, answer) = patch(&server, &admin, body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body} → {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body} → {message}");
    }
    // A refused change changes nothing, not even the settings it names that were fine.
    let (status, body) = patch(
        &server,
        &admin,
        json!({"lockout_threshold": 3, "public_url": "http://ca.example"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, body) = server
        .call(Method::GET, GENERAL, &Auth::Session(&admin), None)
        .await;
    assert_eq!(body["data"]["lockout_threshold"]["value"], 10);
    assert_eq!(body["data"]["lockout_threshold"]["source"], "default");
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=settings_updated")
            .await,
        0
    );
    let (status, body) = server
        .call(
            Method::PUT,
            RATE_LIMIT,
            &Auth::Session(&admin),
            Some(json!({"requests_per_minute": 100_001})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = server
        .call(
            Method::POST,
            RESET,
            &Auth::Session(&admin),
            Some(json!({"client": "not an address"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_narrow_credential_can_neither_read_nor_change_settings() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (_, key) = server
        .api_key(&admin, &["read:certificates", "read:audit", "write:cas"])
        .await;
    let narrow = Auth::Bearer(&key);
    for (method, path, body) in [
        (Method::GET, GENERAL, None),
        (
            Method::PATCH,
            GENERAL,
            Some(json!({"lockout_threshold": 1})),
        ),
        (Method::GET, RATE_LIMIT, None),
        (
            Method::PUT,
            RATE_LIMIT,
            Some(json!({"requests_per_minute": 1})),
        ),
        (Method::GET, STATS, None),
        (Method::POST, RESET, Some(json!({}))),
    ] {
        let (status, answer) = server.call(method.clone(), path, &narrow, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
    }
    let (_, body) = server
        .call(Method::GET, GENERAL, &Auth::Session(&admin), None)
        .await;
    assert_eq!(body["data"]["lockout_threshold"]["value"], 10);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_rate_limit_changes_live_and_resets_clear_the_counts() -> TestResult {
    // The harness turns the limit off; the API turns it on.
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, body) = server
        .call(Method::GET, RATE_LIMIT, &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["requests_per_minute"], 0);
    assert_eq!(body["data"]["source"], "file");
    let (status, body) = server
        .call(
            Method::PUT,
            RATE_LIMIT,
            &Auth::Session(&admin),
            Some(json!({"requests_per_minute": 2, "enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["requests_per_minute"], 2);
    assert_eq!(body["data"]["source"], "database");

    for _ in 0..2 {
        let (status, body) = try_login(&server, "admin", "wrong password!").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let (status, body) = try_login(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let (status, body) = server
        .call(Method::GET, STATS, &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let login = &body["data"]["limiters"][0];
    assert_eq!(login["name"], "login");
    assert_eq!(login["requests_per_minute"], 2);
    assert_eq!(login["rejected"], 1);
    assert_eq!(login["limited_clients"], json!(["127.0.0.1"]));

    // Another client's reset leaves this one limited; its own lets it through.
    reset(&server, &admin, json!({"client": "192.0.2.7"})).await;
    let (status, _) = try_login(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let answer = reset(&server, &admin, json!({"client": "127.0.0.1"})).await;
    assert_eq!(answer["data"]["generation"], 2);
    let (status, body) = try_login(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A reset without a body clears everyone.
    let (status, _) = try_login(&server, "admin", "wrong password!").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = try_login(&server, "admin", "wrong password!").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let response = server
        .request(Method::POST, RESET, &Auth::Session(&admin), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = try_login(&server, "admin", "wrong password!").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=rate_limit_reset")
            .await,
        3
    );

    // Turned off, the limit no longer applies.
    let (status, body) = server
        .call(
            Method::PUT,
            RATE_LIMIT,
            &Auth::Session(&admin),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["enabled"], false);
    for _ in 0..4 {
        let (status, _) = try_login(&server, "admin", "wrong password!").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (_, body) = server
        .call(Method::GET, GENERAL, &Auth::Session(&admin), None)
        .await;
    assert_eq!(body["data"]["auth_rate_limit_enabled"]["value"], false);
    assert_eq!(body["data"]["auth_rate_limit_per_minute"]["value"], 2);
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=settings_updated")
            .await,
        2
    );
    server.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_takes_up_a_change_within_a_second() -> TestResult {
    let data = tempfile::tempdir()?;
    // Two nodes on one database with one master key (the same data directory holds it).
    let first_dir = data.path().to_path_buf();
    let one = TestServer::start_with(move |s| s.data_dir = first_dir).await;
    let database_url = one.database_url.clone();
    let second_dir = data.path().to_path_buf();
    let two = TestServer::start_with(move |s| {
        s.data_dir = second_dir;
        s.database_url = database_url;
    })
    .await;
    let admin = one.admin().await;
    let lena_password = "correct horse battery staple, longer";
    let (status, body) = new_user(&one, &admin, "lena", lena_password).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Node two has read the rules in force before the change.
    let admin_two = two.admin().await;

    let (status, body) = patch(
        &one,
        &admin,
        json!({"lockout_threshold": 2, "password_min_length": 30}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = one
        .call(
            Method::PUT,
            RATE_LIMIT,
            &Auth::Session(&admin),
            Some(json!({"requests_per_minute": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    let (status, body) = new_user(&two, &admin_two, "mia", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    locks_after(&two, "lena", 2).await;
    let (status, body) = try_login(&two, "lena", lena_password).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Three login requests were made to node two since the change: the fourth is refused.
    let (status, body) = try_login(&two, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let (_, body) = two
        .call(Method::GET, GENERAL, &Auth::Session(&admin_two), None)
        .await;
    assert_eq!(body["data"]["lockout_threshold"]["source"], "database");
    two.stop().await;
    one.stop().await;
    Ok(())
}
