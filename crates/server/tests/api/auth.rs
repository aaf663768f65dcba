//! Logging in and out: cookies, CSRF, verification, login methods, lockout, rate limits,
//! session timeouts and disabled accounts.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};

const LOGIN: &str = "/api/v2/auth/login/password";
const VERIFY: &str = "/api/v2/auth/verify";

fn login_body(username: &str, password: &str) -> Option<Value> {
    Some(json!({"username": username, "password": password}))
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

/// The status and body of a password login.
async fn try_login(server: &TestServer, username: &str, password: &str) -> (StatusCode, Value) {
    server
        .call(
            Method::POST,
            LOGIN,
            &Auth::None,
            login_body(username, password),
        )
        .await
}

/// The status and body of `GET /api/v2/auth/verify` with a session.
async fn verify(server: &TestServer, session: &Session) -> (StatusCode, Value) {
    server
        .call(Method::GET, VERIFY, &Auth::Session(session), None)
        .await
}

#[tokio::test]
async fn login_sets_a_hardened_cookie_and_returns_the_csrf_token() -> TestResult {
    let server = TestServer::start_with(|s| s.api_https_only = false).await;
    let response = server
        .request(
            Method::POST,
            LOGIN,
            &Auth::None,
            login_body("admin", ADMIN_PASSWORD),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"].to_str()?.to_owned();
    assert!(cookie.starts_with("certmint_session="), "{cookie}");
    let token = cookie
        .split(';')
        .next()
        .and_then(|c| c.strip_prefix("certmint_session="))
        .unwrap_or_default();
    assert!(token.len() >= 40, "a long random session token: {cookie}");
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(
            attributes.contains(&attribute),
            "{attribute} missing from {cookie}"
        );
    }
    let body: Value = response.json().await?;
    assert_eq!(body["message"], "Login successful");
    assert_eq!(body["data"]["user"]["username"], "admin");
    assert_eq!(body["data"]["user"]["role"], "admin");
    assert_eq!(body["data"]["role"], "admin");
    assert_eq!(body["data"]["permissions"], json!(["*"]));
    assert_eq!(body["data"]["auth_method"], "password");
    let csrf = body["data"]["csrf_token"].as_str().unwrap_or_default();
    assert!(csrf.len() >= 40, "{body}");
    assert_ne!(csrf, token, "the CSRF token is not the session token");
    assert!(body["data"]["expires_at"].is_string());
    assert!(body["data"]["user"].get("password_hash").is_none());

    // The cookie just set is a working session.
    let (status, me) = server
        .call(
            Method::GET,
            VERIFY,
            &Auth::CookieOnly(&Session {
                cookie: format!("certmint_session={token}"),
                csrf: String::new(),
            }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["data"]["user"]["username"], "admin");

    // Over plain HTTP the cookie cannot be Secure.
    let plain = reqwest::Client::new()
        .post(format!("{}{LOGIN}", server.http))
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

    // A wrong password and an unknown user get the same answer.
    let (status, wrong) = try_login(&server, "admin", "not the password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong,
        json!({"error": true, "code": 401, "message": "invalid username or password"})
    );
    let response = server
        .request(
            Method::POST,
            LOGIN,
            &Auth::None,
            login_body("nobody", "not the password"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "no cookie for a failed login"
    );
    let unknown: Value = response.json().await?;
    assert_eq!(wrong, unknown);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn cookie_requests_that_change_state_need_the_csrf_token() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let other = server.admin().await;

    // Reading needs only the cookie.
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/users",
            &Auth::CookieOnly(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Creating a user with the cookie alone, or with another session's token, is refused
    // and creates nothing.
    let new_user =
        |name: &str| Some(json!({"username": name, "password": ADMIN_PASSWORD, "role": "viewer"}));
    let forged = Session {
        cookie: admin.cookie.clone(),
        csrf: other.csrf.clone(),
    };
    for auth in [Auth::CookieOnly(&admin), Auth::Session(&forged)] {
        let (status, body) = server
            .call(Method::POST, "/api/v2/users", &auth, new_user("mallory"))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"], true);
        assert_eq!(body["code"], 403);
        assert!(message(&body).contains("X-CSRF-Token"), "{body}");
    }
    let (_, users) = server
        .call(
            Method::GET,
            "/api/v2/users?search=mallory",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(
        users["meta"]["total"], 0,
        "the refused request wrote nothing"
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/users",
            &Auth::Session(&admin),
            new_user("mallory"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The same for a change to one's own profile.
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
    assert!(message(&body).contains("X-CSRF-Token"), "{body}");
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/account/profile",
            &Auth::CookieOnly(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"]["full_name"], "Administrator",
        "the refused change wrote nothing"
    );
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/account/profile",
            &Auth::Session(&admin),
            change,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["full_name"], "Root");

    // Logging out is a change too.
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/auth/logout",
            &Auth::CookieOnly(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = verify(&server, &admin).await;
    assert_eq!(status, StatusCode::OK, "the refused logout ended nothing");

    // API keys carry no ambient authority and need no CSRF token.
    let (_, key) = server.api_key(&admin, &["write:users"]).await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/users",
            &Auth::Bearer(&key),
            new_user("trent"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/account/profile",
            &Auth::ApiKeyHeader(&key),
            Some(json!({"full_name": "Key holder"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["full_name"], "Key holder");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn verify_tells_who_is_calling_and_logout_ends_the_session() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let other = server.admin().await;
    let (status, body) = verify(&server, &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["user"]["username"], "admin");
    assert_eq!(body["data"]["role"], "admin");
    assert_eq!(body["data"]["permissions"], json!(["*"]));
    assert_eq!(body["data"]["auth_method"], "password");
    assert_eq!(body["data"]["csrf_token"], admin.csrf.as_str());

    // With an API key: the key's permissions, not the role's.
    let (_, key) = server.api_key(&admin, &["read:users", "read:audit"]).await;
    for auth in [Auth::Bearer(&key), Auth::ApiKeyHeader(&key)] {
        let (status, body) = server.call(Method::GET, VERIFY, &auth, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"]["user"]["username"], "admin");
        assert_eq!(body["data"]["auth_method"], "api_key");
        assert_eq!(
            body["data"]["permissions"],
            json!(["read:users", "read:audit"])
        );
        assert_eq!(body["data"]["csrf_token"], Value::Null);
    }
    let (status, _) = server
        .call(Method::GET, VERIFY, &Auth::Bearer("cm_not-a-key"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = server.call(Method::GET, VERIFY, &Auth::None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], 401);

    let response = server
        .request(
            Method::POST,
            "/api/v2/auth/logout",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cleared = response.headers()["set-cookie"].to_str()?;
    assert!(
        cleared.starts_with("certmint_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (status, body) = verify(&server, &admin).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], true);
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/users",
            &Auth::CookieOnly(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = verify(&server, &other).await;
    assert_eq!(status, StatusCode::OK, "logout ends only its own session");
    let (status, _) = server
        .call(Method::GET, VERIFY, &Auth::Bearer(&key), None)
        .await;
    assert_eq!(status, StatusCode::OK, "logout leaves API keys alone");
    let (_, logouts) = server
        .call(
            Method::GET,
            "/api/v2/audit/logs?action=logout",
            &Auth::Session(&other),
            None,
        )
        .await;
    assert_eq!(logouts["meta"]["total"], 1);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn login_methods_do_not_reveal_which_accounts_exist() -> TestResult {
    let server = TestServer::start().await;
    let methods = |username: &str| {
        server.call(
            Method::POST,
            "/api/v2/auth/methods",
            &Auth::None,
            Some(json!({"username": username})),
        )
    };
    let (status, known) = methods("admin").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(known["data"]["password"], true);
    let (status, unknown) = methods("ghost").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        known, unknown,
        "the answer must not reveal which accounts exist"
    );
    for empty in ["", " "] {
        let (status, body) = methods(empty).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{empty:?}");
        assert_eq!(body["error"], true);
        assert_eq!(body["code"], 422);
    }
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
        let (status, body) = try_login(&server, "lena", "wrong password!").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], 401);
        if attempt < 3 {
            assert_eq!(message(&body), "invalid username or password");
        } else {
            assert!(
                message(&body)
                    .starts_with("account is locked after 3 failed logins; try again after "),
                "{body}"
            );
        }
    }
    // Now even the right password is refused.
    let (status, body) = try_login(&server, "lena", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message(&body).contains("locked"), "{body}");
    let (_, users) = server
        .call(
            Method::GET,
            "/api/v2/users?search=lena",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(users["data"][0]["locked"], true);
    assert!(users["data"][0]["locked_until"].is_string());

    // Every attempt is in the audit log: two wrong passwords, the lock, the refused login.
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=login_failed&username=lena")
            .await,
        3
    );
    assert_eq!(
        server
            .audit_total(
                &Auth::Session(&admin),
                "action=account_locked&username=lena"
            )
            .await,
        1
    );
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=login_success&username=lena")
            .await,
        0
    );
    // Locking lena locks nobody else.
    server.admin().await;

    // Still locked just before the end...
    server.clock.advance(time::Duration::minutes(14));
    let (status, body) = try_login(&server, "lena", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message(&body).contains("locked"), "{body}");
    // ...and open again after it.
    server.clock.advance(time::Duration::minutes(2));
    let lena = server.login("lena", ADMIN_PASSWORD).await;
    let (status, _) = verify(&server, &lena).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=login_success&username=lena")
            .await,
        1
    );
    // The count starts again from zero: the next wrong password does not re-lock.
    let (_, body) = try_login(&server, "lena", "wrong password!").await;
    assert_eq!(message(&body), "invalid username or password");
    server.login("lena", ADMIN_PASSWORD).await;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn login_endpoints_are_rate_limited_per_address() -> TestResult {
    let server = TestServer::start_with(|s| s.auth_rate_limit_per_minute = 3).await;
    // Three attempts pass through, whatever their outcome.
    let admin = server.admin().await;
    for _ in 0..2 {
        let (status, _) = try_login(&server, "admin", "nope nope nope").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // The fourth is refused before the password is even looked at.
    let response = server
        .request(
            Method::POST,
            LOGIN,
            &Auth::None,
            login_body("admin", ADMIN_PASSWORD),
        )
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("set-cookie").is_none());
    let retry: u64 = response.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: Value = response.json().await?;
    assert_eq!(body["error"], true);
    assert_eq!(body["code"], 429);
    assert!(message(&body).contains("too many requests"), "{body}");
    // The other login endpoint shares the limit.
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v2/auth/methods",
            &Auth::None,
            Some(json!({"username": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Other endpoints are not limited.
    for _ in 0..5 {
        let (status, _) = server
            .call(Method::GET, "/api/v2/health", &Auth::None, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = verify(&server, &admin).await;
        assert_eq!(status, StatusCode::OK);
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn sessions_end_after_inactivity() -> TestResult {
    let server = TestServer::start_with(|s| s.session_idle_minutes = 5).await;
    let idle = server.admin().await;
    let active = server.admin().await;
    // Activity within the window keeps a session alive well past the idle limit.
    for _ in 0..3 {
        server.clock.advance(time::Duration::minutes(4));
        let (status, body) = verify(&server, &active).await;
        assert_eq!(status, StatusCode::OK, "activity keeps it alive: {body}");
    }
    // Twelve minutes without a request: the idle session is gone.
    let (status, body) = verify(&server, &idle).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        message(&body),
        "session expired after inactivity; log in again"
    );
    // It is not listed among the live sessions either.
    let (_, sessions) = server
        .call(
            Method::GET,
            "/api/v2/account/sessions",
            &Auth::Session(&active),
            None,
        )
        .await;
    assert_eq!(sessions["data"].as_array().map(Vec::len), Some(1));
    // And the active one ends too once left alone for six minutes.
    server.clock.advance(time::Duration::minutes(6));
    let (status, body) = verify(&server, &active).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message(&body).contains("inactivity"), "{body}");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn sessions_end_at_their_absolute_limit_however_active() -> TestResult {
    let server = TestServer::start_with(|s| {
        s.session_idle_minutes = 5;
        s.session_absolute_minutes = 60;
    })
    .await;
    let active = server.admin().await;
    for _ in 0..14 {
        server.clock.advance(time::Duration::minutes(4));
        let (status, _) = verify(&server, &active).await;
        assert_eq!(status, StatusCode::OK, "activity keeps the session alive");
    }
    // 56 minutes in; at 60 it ends however active it is.
    server.clock.advance(time::Duration::minutes(4));
    let (status, body) = verify(&server, &active).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(message(&body), "session expired; log in again");
    // A new login gives a new hour.
    let fresh = server.admin().await;
    let (status, _) = verify(&server, &fresh).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_deactivated_account_cannot_log_in() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let id = server.user(&admin, "dan", "viewer").await;
    let dan = server.login("dan", ADMIN_PASSWORD).await;
    let (_, key) = server.api_key(&dan, &["read:certificates"]).await;
    let toggle = format!("/api/v2/users/{id}/toggle");
    let (status, body) = server
        .call(Method::PATCH, &toggle, &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["active"], false);

    let (status, body) = try_login(&server, "dan", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"error": true, "code": 401, "message": "account is disabled"})
    );
    // Without the right password nothing is revealed about the account.
    let (status, body) = try_login(&server, "dan", "not the password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(message(&body), "invalid username or password");
    // What dan already held stops working too.
    let (status, body) = verify(&server, &dan).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message(&body).contains("disabled"), "{body}");
    let (status, _) = server
        .call(Method::GET, VERIFY, &Auth::Bearer(&key), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Enabled again, dan can log in.
    let (status, _) = server
        .call(Method::PATCH, &toggle, &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    server.login("dan", ADMIN_PASSWORD).await;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn credentials_changed_behind_this_node_stop_working_within_a_second() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (_, key) = server.api_key(&admin, &["read:users"]).await;
    // Both are now known to this node.
    let (status, _) = verify(&server, &admin).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(Method::GET, VERIFY, &Auth::Bearer(&key), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // Another node (or an operator in the database) ends the session and disables the key.
    let other_node = server.raw_store().await;
    other_node
        .execute_raw("UPDATE sessions SET revoked_at = 1")
        .await?;
    other_node
        .execute_raw("UPDATE api_keys SET enabled = 0")
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;

    let (status, body) = verify(&server, &admin).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(message(&body), "session was ended; log in again");
    let (status, body) = server
        .call(Method::GET, VERIFY, &Auth::Bearer(&key), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(message(&body), "API key is disabled");
    server.stop().await;
    Ok(())
}
