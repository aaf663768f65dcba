//! Health, readiness, metrics, request ids and the HTTPS-only setting.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{ADMIN_PASSWORD, Auth, TestResult, TestServer};

#[tokio::test]
async fn health_on_both_listeners_and_readiness_follows_the_database() -> TestResult {
    let server = TestServer::start().await;
    let plain = reqwest::Client::new();
    for path in ["/api/v2/health", "/health", "/api/health"] {
        for base in [&server.https, &server.http] {
            let client = if base.starts_with("https") {
                &server.client
            } else {
                &plain
            };
            let response = client.get(format!("{base}{path}")).send().await?;
            assert_eq!(response.status(), StatusCode::OK, "{base}{path}");
            let body: Value = response.json().await?;
            assert_eq!(body["status"], "ok");
            assert_eq!(body["service"], "certmint");
        }
    }
    let (status, live) = server
        .call(Method::GET, "/api/v2/health/live", &Auth::None, None)
        .await;
    assert_eq!(
        (status, live["status"].as_str()),
        (StatusCode::OK, Some("alive"))
    );
    let (status, ready) = server
        .call(Method::GET, "/api/v2/health/ready", &Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["checks"]["database"]["status"], "ok");

    server
        .running
        .as_ref()
        .ok_or("not running")?
        .app
        .authority
        .close()
        .await;
    let (status, ready) = server
        .call(Method::GET, "/api/v2/health/ready", &Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready["checks"]["database"]["status"], "error");
    let (status, _) = server
        .call(Method::GET, "/api/v2/health/live", &Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // With the database gone, an authenticated request is a clear 503, not a 500.
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/users",
            &Auth::Bearer("cm_whatever"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn metrics_need_their_permission_and_label_routes_by_template() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (_, without) = server.api_key(&admin, &["read:users"]).await;
    let (_, with) = server.api_key(&admin, &["read:metrics"]).await;
    assert_eq!(
        server
            .request(Method::GET, "/metrics", &Auth::None, None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server
            .request(Method::GET, "/metrics", &Auth::Bearer(&without), None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    server
        .call(Method::GET, "/api/v2/users/1", &Auth::Session(&admin), None)
        .await;
    let response = server
        .request(Method::GET, "/metrics", &Auth::Bearer(&with), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()?
            .starts_with("text/plain")
    );
    let text = response.text().await?;
    for needle in [
        "certmint_http_requests_total",
        "certmint_http_request_duration_seconds_bucket",
        "certmint_db_pool_connections",
        "certmint_db_pool_max_connections",
        "certmint_build_info",
        "route=\"/api/v2/users/{user_id}\"",
    ] {
        assert!(text.contains(needle), "{needle} missing from metrics");
    }
    assert!(
        !text.contains("route=\"/api/v2/users/1\""),
        "raw paths must not become labels"
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn every_response_carries_a_request_id() -> TestResult {
    let server = TestServer::start().await;
    let response = server
        .request(Method::GET, "/api/v2/health", &Auth::None, None)
        .await;
    let id = response.headers()["x-request-id"].to_str()?;
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let echoed = server
        .client
        .get(server.url("/api/v2/nope"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await?;
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_api_is_served_over_https_only_unless_allowed() -> TestResult {
    let plain = reqwest::Client::new();
    let server = TestServer::start().await;
    for (method, path) in [
        (Method::GET, "/api/v2/users"),
        (Method::POST, "/api/v2/auth/login/password"),
    ] {
        let response = plain
            .request(method, format!("{}{path}", server.http))
            .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let body: Value = response.json().await?;
        assert_eq!(body["message"], "the REST API is served over HTTPS only");
    }
    // Relying parties are still served in plain HTTP.
    let response = plain.get(format!("{}/health", server.http)).send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    let admin = server.admin().await;
    let (status, _) = server
        .call(Method::GET, "/api/v2/users", &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;

    let open = TestServer::start_with(|s| s.api_https_only = false).await;
    let response = plain
        .get(format!("{}/api/v2/users", open.http))
        .send()
        .await?;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the API answers on plain HTTP when allowed"
    );
    open.stop().await;
    Ok(())
}

/// nosniff everywhere, HSTS on HTTPS only, and no cache may keep a REST answer: logins, API
/// keys and exported keys travel there.
#[tokio::test]
async fn answers_carry_the_security_headers() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let login = server
        .request(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            Some(serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD})),
        )
        .await;
    let key = server
        .request(
            Method::POST,
            "/api/v2/account/apikeys",
            &Auth::Session(&admin),
            Some(serde_json::json!({"name": "k", "permissions": ["read:users"]})),
        )
        .await;
    for response in [&login, &key] {
        let headers = response.headers();
        assert_eq!(headers["cache-control"], "no-store", "{}", response.url());
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["strict-transport-security"], "max-age=31536000");
    }
    let plain = reqwest::Client::new()
        .get(format!("{}/health", server.http))
        .send()
        .await?;
    assert_eq!(plain.headers()["x-content-type-options"], "nosniff");
    assert!(
        plain.headers().get("strict-transport-security").is_none(),
        "HSTS means nothing over plain HTTP"
    );
    let ocsp = reqwest::Client::new()
        .post(format!("{}/ocsp", server.http))
        .header("content-type", "application/ocsp-request")
        .body(vec![0x30, 0x00])
        .send()
        .await?;
    assert_eq!(ocsp.headers()["x-content-type-options"], "nosniff");
    server.stop().await;
    Ok(())
}

/// Opens a TCP connection to `base` (`http://host:port`) that sends half a request head.
async fn half_request(base: &str) -> std::io::Result<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut tcp = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await?;
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: slow\r\n")
        .await?;
    Ok(tcp)
}

/// Whether the server has closed `tcp` (end of stream or reset) within `wait`.
async fn closed_within(tcp: &mut tokio::net::TcpStream, wait: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(wait, tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

/// A thousand clients that never finish their request head hold nothing: health and OCSP
/// answer at once, and the slow connections are closed when their header time runs out.
#[tokio::test]
async fn slow_clients_are_cut_off_and_others_still_served() -> TestResult {
    use std::time::Duration;
    let server = TestServer::start_with(|s| s.header_read_timeout_seconds = 2).await;
    let mut slow = Vec::new();
    for _ in 0..1000 {
        slow.push(half_request(&server.http).await?);
    }
    let plain = reqwest::Client::new();
    for _ in 0..3 {
        let health = tokio::time::timeout(
            Duration::from_secs(1),
            plain.get(format!("{}/health", server.http)).send(),
        )
        .await??;
        assert_eq!(health.status(), StatusCode::OK);
        let ocsp = tokio::time::timeout(
            Duration::from_secs(1),
            plain
                .post(format!("{}/ocsp", server.http))
                .header("content-type", "application/ocsp-request")
                .body(vec![0x30, 0x00])
                .send(),
        )
        .await??;
        assert_eq!(
            ocsp.headers()["content-type"],
            "application/ocsp-response",
            "the responder answers"
        );
    }
    let mut still_open = 0;
    for tcp in &mut slow {
        if !closed_within(tcp, Duration::from_secs(4)).await {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "slow connections outlive their header time");
    server.stop().await;
    Ok(())
}

/// Past `max_connections`, a new connection is closed at once; a freed slot is used again.
#[tokio::test]
async fn connections_past_the_limit_are_closed() -> TestResult {
    use std::time::Duration;
    let server = TestServer::start_with(|s| s.max_connections = 20).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(half_request(&server.http).await?);
    }
    let mut extra = half_request(&server.http).await?;
    assert!(
        closed_within(&mut extra, Duration::from_secs(2)).await,
        "the 21st connection is closed"
    );
    drop(held);
    let mut answered = false;
    for _ in 0..20 {
        let response = reqwest::Client::new()
            .get(format!("{}/health", server.http))
            .send()
            .await;
        if response.is_ok_and(|r| r.status() == StatusCode::OK) {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered, "slots come back when connections close");
    server.stop().await;
    Ok(())
}
