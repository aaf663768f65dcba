//! Logging in and out: cookies, CSRF, lockout, rate limits and session timeouts.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{ADMIN_PASSWORD, Auth, TestResult, TestServer};

fn login_body(username: &str, password: &str) -> Option<serde_json::Value> {
    Some(json!({"username": username, "password": password}))
}

#[tokio::test]
async fn login_sets_a_hardened_cookie_and_returns_the_csrf_token() -> TestResult {
    let server = TestServer::start().await;
    let response = server
        .request(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            login_body("admin", ADMIN_PASSWORD),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"].to_str()?.to_owned();
    for part in [
        "certmint_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/",
    ] {
        assert!(cookie.contains(part), "{part} missing from {cookie}");
    }
    let body: serde_json::Value = response.json().await?;
    assert_eq!(body["message"], "Login successful");
    assert_eq!(body["data"]["user"]["username"], "admin");
    assert_eq!(body["data"]["role"], "admin");
    assert_eq!(body["data"]["permissions"], json!(["*"]));
    assert!(
        body["data"]["csrf_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 40)
    );
    assert!(body["data"]["user"].get("password_hash").is_none());

    // Over plain HTTP the cookie cannot be Secure.
    let plain = reqwest::Client::new()
        .post(format!("{}/api/v2/auth/login/password", server.http))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await?;
    assert_eq!(plain.status(), StatusCode::OK);
    let cookie = plain.headers()["set-cookie"].to_str()?;
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && !cookie.contains("Secure"),
        "{cookie}"
    );

    // Wrong password and unknown user look the same.
    let (status, wrong) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            login_body("admin", "not the password"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, unknown) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            login_body("nobody", "not the password"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong, unknown);
    assert_eq!(
        wrong,
        json!({"error": true, "code": 401, "message": "invalid username or password"})
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn cookie_requests_that_change_state_need_the_csrf_token() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/users",
            &Auth::CookieOnly(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let change = Some(json!({"full_name": "Root"}));
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/account/profile",
            &Auth::CookieOnly(&admin),
            change.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("X-CSRF-Token"))
    );
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/account/profile",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"]["full_name"], "Administrator",
        "the refused change wrote nothing"
    );
    let (status, _) = server
        .call(
            Method::PATCH,
            "/api/v2/account/profile",
            &Auth::Session(&admin),
            change.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // API keys carry no ambient authority and need no CSRF token.
    let (_, key) = server.api_key(&admin, &["read:users"]).await;
    let (status, _) = server
        .call(
            Method::PATCH,
            "/api/v2/account/profile",
            &Auth::ApiKeyHeader(&key),
            change,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn verify_logout_and_methods() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["auth_method"], "password");
    let (_, key) = server.api_key(&admin, &["read:users", "read:audit"]).await;
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Bearer(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["auth_method"], "api_key");
    assert_eq!(
        body["data"]["permissions"],
        json!(["read:users", "read:audit"])
    );

    let response = server
        .request(
            Method::POST,
            "/api/v2/auth/logout",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["set-cookie"]
            .to_str()?
            .contains("Max-Age=0")
    );
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, known) = server
        .call(
            Method::POST,
            "/api/v2/auth/methods",
            &Auth::None,
            Some(json!({"username": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(known["data"]["password"], true);
    let (_, unknown) = server
        .call(
            Method::POST,
            "/api/v2/auth/methods",
            &Auth::None,
            Some(json!({"username": "ghost"})),
        )
        .await;
    assert_eq!(
        known, unknown,
        "the answer must not reveal which accounts exist"
    );
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/auth/methods",
            &Auth::None,
            Some(json!({"username": " "})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn failed_logins_lock_the_account_for_a_while() -> TestResult {
    let server = TestServer::start_with(|s| {
        s.lockout_threshold = 3;
        s.lockout_minutes = 15;
    })
    .await;
    let admin = server.admin().await;
    server.user(&admin, "lena", "viewer").await;
    for attempt in 1..=3 {
        let (status, body) = server
            .call(
                Method::POST,
                "/api/v2/auth/login/password",
                &Auth::None,
                login_body("lena", "wrong password!"),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let message = body["message"].as_str().unwrap_or_default();
        if attempt < 3 {
            assert_eq!(message, "invalid username or password");
        } else {
            assert!(
                message.starts_with("account is locked after 3 failed logins; try again after "),
                "{message}"
            );
        }
    }
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            login_body("lena", ADMIN_PASSWORD),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("locked")),
        "{body}"
    );
    let (_, users) = server
        .call(
            Method::GET,
            "/api/v2/users?search=lena",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(users["data"][0]["locked"], true);
    let (_, locked) = server
        .call(
            Method::GET,
            "/api/v2/audit/logs?action=account_locked",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(locked["meta"]["total"], 1);

    server.clock.advance(time::Duration::minutes(16));
    server.login("lena", ADMIN_PASSWORD).await;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn login_endpoints_are_rate_limited_per_address() -> TestResult {
    let server = TestServer::start_with(|s| s.auth_rate_limit_per_minute = 3).await;
    for _ in 0..3 {
        let (status, _) = server
            .call(
                Method::POST,
                "/api/v2/auth/login/password",
                &Auth::None,
                login_body("admin", "nope nope nope"),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let response = server
        .request(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            login_body("admin", ADMIN_PASSWORD),
        )
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: serde_json::Value = response.json().await?;
    assert_eq!(body["code"], 429);
    for _ in 0..5 {
        let (status, _) = server
            .call(Method::GET, "/api/v2/health", &Auth::None, None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn sessions_end_after_inactivity_and_at_their_absolute_limit() -> TestResult {
    let server = TestServer::start_with(|s| {
        s.session_idle_minutes = 5;
        s.session_absolute_minutes = 60;
    })
    .await;
    let idle = server.admin().await;
    server.clock.advance(time::Duration::minutes(6));
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Session(&idle),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["message"],
        "session expired after inactivity; log in again"
    );

    let active = server.admin().await;
    for _ in 0..14 {
        server.clock.advance(time::Duration::minutes(4));
        let (status, _) = server
            .call(
                Method::GET,
                "/api/v2/auth/verify",
                &Auth::Session(&active),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "activity keeps the session alive");
    }
    server.clock.advance(time::Duration::minutes(4));
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Session(&active),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "session expired; log in again");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_deactivated_account_cannot_log_in() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let id = server.user(&admin, "dan", "viewer").await;
    server
        .call(
            Method::PATCH,
            &format!("/api/v2/users/{id}/toggle"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            login_body("dan", ADMIN_PASSWORD),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "account is disabled");
    server.stop().await;
    Ok(())
}
