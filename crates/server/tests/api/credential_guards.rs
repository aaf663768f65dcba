//! A narrow credential cannot reach a broader one: API keys manage only keys no broader than
//! themselves, the password and the sessions need a login session, and wrong passwords count
//! towards the lockout wherever they are checked, however fast they arrive.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};

const KEYS: &str = "/api/v2/account/apikeys";
const PASSWORD: &str = "/api/v2/account/password";
const VERIFY: &str = "/api/v2/auth/verify";

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

async fn key_works(server: &TestServer, key: &str) -> bool {
    server
        .call(Method::GET, VERIFY, &Auth::Bearer(key), None)
        .await
        .0
        == StatusCode::OK
}

async fn session_works(server: &TestServer, session: &Session) -> bool {
    server
        .call(Method::GET, VERIFY, &Auth::Session(session), None)
        .await
        .0
        == StatusCode::OK
}

fn password_change(current: &str, new: &str) -> Option<Value> {
    Some(json!({"current_password": current, "new_password": new}))
}

#[tokio::test]
async fn a_narrow_key_cannot_take_over_a_broad_one() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (full_id, full) = server.api_key(&admin, &["*"]).await;
    let (_, narrow) = server.api_key(&admin, &["read:metrics"]).await;
    let (peer_id, peer) = server.api_key(&admin, &["read:metrics"]).await;
    let as_narrow = Auth::Bearer(&narrow);

    // The reproduction: regenerate answered 200 with the new secret of the full key.
    let full_path = format!("{KEYS}/{full_id}");
    for (method, path, body) in [
        (Method::POST, format!("{full_path}/regenerate"), None),
        (
            Method::PATCH,
            full_path.clone(),
            Some(json!({"enabled": false})),
        ),
        (
            Method::PATCH,
            full_path.clone(),
            Some(json!({"name": "mine"})),
        ),
        (Method::DELETE, full_path.clone(), None),
    ] {
        let (status, answer) = server.call(method.clone(), &path, &as_narrow, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert!(answer["data"]["key"].is_null(), "no secret: {answer}");
        assert!(message(&answer).contains("'*'"), "{answer}");
    }
    assert!(key_works(&server, &full).await, "the full key is untouched");
    let (_, one) = server
        .call(Method::GET, &full_path, &Auth::Session(&admin), None)
        .await;
    assert_eq!(one["data"]["name"], "test");
    assert_eq!(one["data"]["enabled"], true);

    // A key no broader than the caller's own is the caller's to manage.
    let (status, answer) = server
        .call(
            Method::POST,
            &format!("{KEYS}/{peer_id}/regenerate"),
            &as_narrow,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(!key_works(&server, &peer).await, "the old secret is gone");
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("{KEYS}/{peer_id}"),
            &as_narrow,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A login session still manages every key of its user.
    let (status, answer) = server
        .call(
            Method::PATCH,
            &full_path,
            &Auth::Session(&admin),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(!key_works(&server, &full).await);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_password_and_the_sessions_need_a_login_session() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let other = server.admin().await;
    // Even a key holding everything: a password makes keys, so it stands above them all.
    let (_, full) = server.api_key(&admin, &["*"]).await;
    let (_, narrow) = server.api_key(&admin, &["read:metrics"]).await;
    let (_, sessions) = server
        .call(
            Method::GET,
            "/api/v2/account/sessions",
            &Auth::Session(&admin),
            None,
        )
        .await;
    let other_id = sessions["data"]
        .as_array()
        .and_then(|list| list.iter().find(|s| s["current"] == false))
        .and_then(|s| s["id"].as_i64())
        .ok_or("the other session")?;
    for key in [&full, &narrow] {
        let as_key = Auth::Bearer(key);
        let (status, body) = server
            .call(
                Method::POST,
                PASSWORD,
                &as_key,
                password_change(ADMIN_PASSWORD, "a brand new password"),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(message(&body).contains("login session"), "{body}");
        let (status, body) = server
            .call(
                Method::DELETE,
                &format!("/api/v2/account/sessions/{other_id}"),
                &as_key,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = server
            .call(
                Method::POST,
                "/api/v2/account/sessions/revoke-all",
                &as_key,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    assert!(session_works(&server, &other).await);
    server.login("admin", ADMIN_PASSWORD).await;

    // From a session, the change goes through and says what became of the other credentials.
    let (status, body) = server
        .call(
            Method::POST,
            PASSWORD,
            &Auth::Session(&admin),
            password_change(ADMIN_PASSWORD, "a brand new password"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["sessions_ended"], 2, "{body}");
    assert_eq!(body["data"]["api_keys_kept"], 2, "{body}");
    assert!(message(&body).contains("2 API keys still work"), "{body}");
    assert!(!session_works(&server, &other).await);
    assert!(key_works(&server, &full).await);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn wrong_current_passwords_count_towards_the_lockout() -> TestResult {
    let server = TestServer::start_with(|s| {
        s.lockout_threshold = 3;
        s.lockout_minutes = 15;
    })
    .await;
    let admin = server.admin().await;
    server.user(&admin, "pat", "viewer").await;
    let pat = server.login("pat", ADMIN_PASSWORD).await;
    let as_pat = Auth::Session(&pat);
    let change = |current: &'static str| {
        server.call(
            Method::POST,
            PASSWORD,
            &as_pat,
            password_change(current, "a brand new password"),
        )
    };
    for _ in 0..2 {
        let (status, body) = change("wrong wrong wrong").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, body) = change("wrong wrong wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(message(&body).contains("locked"), "{body}");
    // Locked like any locked account: the session stops working, and so does the password.
    assert!(!session_works(&server, &pat).await);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            Some(json!({"username": "pat", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(message(&body).contains("locked"), "{body}");
    assert_eq!(
        server
            .audit_total(
                &Auth::Session(&admin),
                "action=password_change_failed&username=pat"
            )
            .await,
        2
    );
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=account_locked&username=pat")
            .await,
        1
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn password_changes_are_rate_limited_like_logins() -> TestResult {
    let server = TestServer::start_with(|s| s.auth_rate_limit_per_minute = 3).await;
    let admin = server.admin().await;
    for _ in 0..2 {
        let (status, _) = server
            .call(
                Method::POST,
                PASSWORD,
                &Auth::Session(&admin),
                password_change("wrong wrong wrong", "a brand new password"),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, body) = server
        .call(
            Method::POST,
            PASSWORD,
            &Auth::Session(&admin),
            password_change(ADMIN_PASSWORD, "a brand new password"),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    server.stop().await;
    Ok(())
}

/// Parallel guesses are counted before they are checked: a burst gets no more checks than the
/// threshold, and locks the account.
#[tokio::test]
async fn a_parallel_burst_gets_no_more_guesses_than_the_threshold() -> TestResult {
    const THRESHOLD: usize = 3;
    let server = TestServer::start_with(|s| {
        s.lockout_threshold = 3;
        s.lockout_minutes = 15;
    })
    .await;
    let admin = server.admin().await;
    server.user(&admin, "lena", "viewer").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let client = server.client.clone();
        let url = server.url("/api/v2/auth/login/password");
        tasks.spawn(async move {
            let response = client
                .post(&url)
                .json(&json!({"username": "lena", "password": format!("guess number {i}")}))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body: Value = response.json().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((status, body))
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer??);
    }
    let checked = answers
        .iter()
        .filter(|(_, body)| message(body) == "invalid username or password")
        .count();
    let locked = answers
        .iter()
        .filter(|(status, body)| {
            *status == StatusCode::UNAUTHORIZED && message(body).contains("locked")
        })
        .count();
    assert!(
        checked < THRESHOLD,
        "{checked} guesses were answered as plain wrong passwords"
    );
    assert_eq!(checked + locked, answers.len(), "{answers:?}");
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            Some(json!({"username": "lena", "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(message(&body).contains("locked"), "{body}");
    server.stop().await;
    Ok(())
}
