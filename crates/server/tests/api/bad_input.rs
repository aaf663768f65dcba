//! Bad input gets a clear 4xx and writes nothing; never a 500.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};

async fn users(server: &TestServer, admin: &Session) -> i64 {
    let (_, body) = server
        .call(Method::GET, "/api/v2/users", &Auth::Session(admin), None)
        .await;
    body["meta"]["total"].as_i64().unwrap_or(-1)
}

async fn raw(
    server: &TestServer,
    admin: &Session,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = server
        .client
        .post(server.url(path))
        .header("cookie", &admin.cookie)
        .header("x-csrf-token", &admin.csrf)
        .body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_bodies_are_refused_with_what_was_wrong() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let json_ct = Some("application/json");
    let cases: Vec<(Option<&str>, Vec<u8>, StatusCode, &str)> = vec![
        (
            json_ct,
            b"{\"username\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            None,
            br#"{"username":"a","role":"viewer"}"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type: application/json",
        ),
        (
            json_ct,
            br#"{"username":"a","role":5}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            json_ct,
            br#"{"username":"a","role":"viewer","admin":true}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `admin`",
        ),
        (
            json_ct,
            br#"{"role":"viewer"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing field `username`",
        ),
        (
            json_ct,
            br#"{"username":"a","role":"root"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown role 'root'",
        ),
        (
            json_ct,
            json!({"username": "a".repeat(65), "role": "viewer"})
                .to_string()
                .into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "username must be 1 to 64",
        ),
        (
            json_ct,
            json!({"username": "a", "role": "viewer", "email": "x"})
                .to_string()
                .into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a valid e-mail",
        ),
        (
            json_ct,
            json!({"username": "a", "role": "viewer", "full_name": "f".repeat(1000)})
                .to_string()
                .into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "full_name must be",
        ),
        (
            json_ct,
            json!({"username": "a", "role": "viewer", "password": ADMIN_PASSWORD.repeat(100)})
                .to_string()
                .into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at most 1024",
        ),
    ];
    for (content_type, body, expected, says) in cases {
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(60)
            .collect::<String>();
        let (status, answer) = raw(&server, &admin, "/api/v2/users", content_type, body).await;
        assert_eq!(status, expected, "{shown}: {answer}");
        assert_eq!(answer["error"], true);
        assert_eq!(answer["code"], expected.as_u16());
        assert!(
            answer["message"].as_str().is_some_and(|m| m.contains(says)),
            "{shown}: {answer} should say {says}"
        );
    }
    assert_eq!(users(&server, &admin).await, 1, "nothing was written");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn garbage_never_gets_a_server_error() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let nested = "[".repeat(5000) + &"]".repeat(5000);
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"[]".to_vec(),
        b"null".to_vec(),
        nested.into_bytes(),
        vec![0xff, 0xfe, 0x7b, 0x00],
        b"{\"username\": \"\\ud800\"}".to_vec(),
    ];
    for path in [
        "/api/v2/users",
        "/api/v2/users/import",
        "/api/v2/account/apikeys",
        "/api/v2/auth/login/password",
        "/api/v2/audit/cleanup",
        "/api/v2/account/password",
    ] {
        for body in &bodies {
            let (status, answer) = raw(
                &server,
                &admin,
                path,
                Some("application/json"),
                body.clone(),
            )
            .await;
            assert!(
                status.is_client_error(),
                "{path} with {:?}: {status} {answer}",
                String::from_utf8_lossy(body)
            );
        }
    }
    assert_eq!(users(&server, &admin).await, 1);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn bad_query_strings_and_path_ids() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    // A page larger than the largest is the largest, and says so.
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/users?per_page=1000",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta"]["per_page"], 100, "{body}");
    for (path, expected) in [
        ("/api/v2/users?per_page=0", StatusCode::BAD_REQUEST),
        ("/api/v2/users?page=0", StatusCode::BAD_REQUEST),
        ("/api/v2/users?per_page=abc", StatusCode::BAD_REQUEST),
        ("/api/v2/users?role=root", StatusCode::UNPROCESSABLE_ENTITY),
        ("/api/v2/audit/logs?success=maybe", StatusCode::BAD_REQUEST),
        ("/api/v2/audit/verify?start_id=x", StatusCode::BAD_REQUEST),
        (
            "/api/v2/audit/verify?start_id=5&end_id=2",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/api/v2/users/abc", StatusCode::BAD_REQUEST),
        ("/api/v2/users/-1", StatusCode::BAD_REQUEST),
        (
            "/api/v2/users/99999999999999999999",
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v2/users/999999", StatusCode::NOT_FOUND),
    ] {
        let (status, body) = server
            .call(Method::GET, path, &Auth::Session(&admin), None)
            .await;
        assert_eq!(status, expected, "{path}: {body}");
        assert_eq!(body["error"], true, "{path}");
    }
    let (status, body) = server
        .call(
            Method::PUT,
            "/api/v2/auth/verify",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], 405);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() -> TestResult {
    let server = TestServer::start_with(|s| s.max_body_bytes = 1024).await;
    let admin = server.admin().await;
    let big = json!({"username": "big", "role": "viewer", "full_name": "x".repeat(2048)})
        .to_string()
        .into_bytes();
    let (status, body) = raw(
        &server,
        &admin,
        "/api/v2/users",
        Some("application/json"),
        big,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], 413);
    assert_eq!(users(&server, &admin).await, 1);
    server.stop().await;
    Ok(())
}
