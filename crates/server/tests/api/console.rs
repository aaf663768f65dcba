//! The web console over real HTTPS: signing in and out with the API's session, the pages'
//! headers (CSP, no-store), the files it serves, and its refusals.

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, SET_COOKIE};
use sha2::{Digest, Sha256};

use crate::common::{ADMIN_PASSWORD, Session, TestResult, TestServer};

/// A browser-like client that does not follow redirects, so each one can be checked.
pub fn browser(server: &TestServer) -> reqwest::Client {
    let cert =
        std::fs::read(server._data_dir.path().join("tls/server.crt")).expect("TLS certificate");
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&cert).expect("PEM")])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).expect("form")
}

pub async fn post_form(
    client: &reqwest::Client,
    url: String,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client
        .post(url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(fields));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.expect("request")
}

/// `path` as `session` sees it: its status and HTML, checked for the strict CSP.
pub async fn page(
    server: &TestServer,
    client: &reqwest::Client,
    session: &Session,
    path: &str,
) -> TestResult<(StatusCode, String)> {
    let response = get(client, server.url(path), Some(session.cookie.as_str())).await;
    let status = response.status();
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    Ok((status, html))
}

pub async fn get(client: &reqwest::Client, url: String, cookie: Option<&str>) -> reqwest::Response {
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.expect("request")
}

/// The `data` of a REST GET of `path` as `session`, which must answer 200.
pub async fn rest(
    server: &TestServer,
    session: &crate::common::Session,
    path: &str,
) -> serde_json::Value {
    let (status, body) = server
        .call(
            reqwest::Method::GET,
            path,
            &crate::common::Auth::Session(session),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body["data"].clone()
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers()[LOCATION]
        .to_str()
        .unwrap_or_default()
        .to_owned()
}

/// Every page carries a CSP that allows no inline script or style, and no page has any.
pub fn assert_strict_page(response_headers: &reqwest::header::HeaderMap, html: &str) {
    let csp = response_headers[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap_or_default();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(response_headers[CACHE_CONTROL], "no-store");
    assert!(
        html.match_indices("<script").all(|(i, _)| html[i..]
            .split('>')
            .next()
            .unwrap_or("")
            .contains(" src=")),
        "an inline script"
    );
    assert!(!html.contains(" style="), "an inline style");
    assert!(!html.contains("<style"), "an inline style sheet");
}

/// The `href`/`src` of the page's style sheet and script.
pub fn asset_urls(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|part| part.starts_with("/assets/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_console_signs_in_with_the_api_session_and_signs_out() -> TestResult {
    let server = TestServer::start().await;
    let client = browser(&server);

    // Signed out, the dashboard sends to the login page, which will come back.
    let response = get(&client, server.url("/"), None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2F");
    let response = post_form(&client, server.url("/logout"), None, &[("csrf_token", "x")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");

    let response = get(
        &client,
        server.url("/login?next=%2Fcertificates%3Fstatus%3Dexpiring"),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(
        html.contains(r#"name="next" value="/certificates?status=expiring""#),
        "{html}"
    );
    assert!(html.contains(r#"<label for="password">"#), "{html}");

    // The files the page names are served, cacheable, with their types; htmx is the vendored
    // file, byte for byte.
    let urls = asset_urls(&html);
    assert_eq!(urls.len(), 2, "{urls:?}");
    for url in &urls {
        let response = get(&client, server.url(url), None).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(
            response.headers()[CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        let kind = response.headers()[CONTENT_TYPE].to_str()?.to_owned();
        let bytes = response.bytes().await?;
        if url.contains("htmx") {
            assert!(kind.starts_with("text/javascript"), "{kind}");
            let vendored = std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/assets/htmx-2.0.11.min.js"
            ))?;
            assert_eq!(Sha256::digest(&bytes), Sha256::digest(&vendored));
            let digest = hex::encode(&Sha256::digest(&vendored)[..6]);
            assert!(
                url.contains(&digest),
                "the name changes with the content: {url}"
            );
        } else {
            assert!(kind.starts_with("text/css"), "{kind}");
        }
    }
    let missing = get(&client, server.url("/assets/nothing.js"), None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Never over plain HTTP: a password or a session cookie would cross in clear.
    let plain = get(&client, format!("{}/login", server.http), None).await;
    assert_eq!(plain.status(), StatusCode::FORBIDDEN);

    // A wrong password: the form again, with the reason, and no cookie.
    let response = post_form(
        &client,
        server.url("/login"),
        None,
        &[("username", "admin"), ("password", "wrong"), ("next", "/")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get(SET_COOKIE).is_none());
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains(r#"role="alert""#), "{html}");
    assert!(
        html.contains(r#"value="admin""#),
        "the username is kept: {html}"
    );

    // The right one: the session cookie, and back to the page asked for (only on this site).
    let response = post_form(
        &client,
        server.url("/login"),
        None,
        &[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", "https://evil.example/"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    let set_cookie = response.headers()[SET_COOKIE].to_str()?.to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} missing from {set_cookie}"
        );
    }
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();

    let response = get(&client, server.url("/"), Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains("<h1>Dashboard</h1>"), "{html}");
    assert!(html.contains("<dt>Certificates</dt>"), "{html}");
    assert!(
        html.contains("<dt>Users</dt>"),
        "an admin sees the user count: {html}"
    );
    // The expiry panel counts what the certificate list's `expiring` filter would show.
    for days in [7, 30, 90] {
        assert!(
            html.contains(&format!("<dt>Within {days} days</dt>")),
            "{html}"
        );
    }
    assert!(html.contains("admin"), "{html}");
    let csrf = html
        .split(r#"name="csrf_token" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();
    assert!(
        csrf.len() >= 40,
        "the sign-out form carries the CSRF token: {html}"
    );

    // One login for console and API.
    let response = get(&client, server.url("/api/v2/auth/verify"), Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);

    // Signing out needs the form's token; without it the session stays.
    let response = post_form(
        &client,
        server.url("/logout"),
        Some(&cookie),
        &[("csrf_token", "forged")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = get(&client, server.url("/"), Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);

    let response = post_form(
        &client,
        server.url("/logout"),
        Some(&cookie),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");
    assert!(
        response.headers()[SET_COOKIE]
            .to_str()?
            .contains("Max-Age=0")
    );

    // The session is over for both.
    let response = get(&client, server.url("/"), Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = get(&client, server.url("/api/v2/auth/verify"), Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test]
async fn the_login_page_says_when_an_account_is_locked_or_an_address_is_limited() -> TestResult {
    let server = TestServer::start_with(|s| {
        s.lockout_threshold = 2;
        s.lockout_minutes = 15;
    })
    .await;
    let client = browser(&server);
    let wrong = [("username", "admin"), ("password", "wrong")];
    let mut last = String::new();
    for _ in 0..3 {
        let response = post_form(&client, server.url("/login"), None, &wrong).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        last = response.text().await?;
    }
    assert!(
        last.contains("account is locked after 2 failed logins"),
        "{last}"
    );

    let server = TestServer::start_with(|s| s.auth_rate_limit_per_minute = 2).await;
    let client = browser(&server);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = post_form(&client, server.url("/login"), None, &wrong).await;
        statuses.push(response.status());
        last = response.text().await?;
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(last.contains("too many requests"), "{last}");
    Ok(())
}

#[tokio::test]
async fn a_viewer_sees_only_what_the_role_may_and_an_expired_session_signs_in_again() -> TestResult
{
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "vera", "viewer").await;
    let client = browser(&server);
    let response = post_form(
        &client,
        server.url("/login"),
        None,
        &[
            ("username", "vera"),
            ("password", ADMIN_PASSWORD),
            ("next", "/"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()[SET_COOKIE]
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let html = get(&client, server.url("/"), Some(&cookie))
        .await
        .text()
        .await?;
    assert!(html.contains("<dt>Certificates</dt>"), "{html}");
    assert!(
        !html.contains("<dt>Users</dt>"),
        "a viewer does not see the user count: {html}"
    );
    assert!(
        !html.contains("Recent activity"),
        "nor the audit log's activity: {html}"
    );
    assert!(html.contains("CA health"), "{html}");
    assert!(
        html.contains(r#"<span class="role">viewer</span>"#),
        "{html}"
    );

    // Past the session's lifetime the page asks for a login again, and comes back.
    server.clock.advance(time::Duration::days(2));
    let response = get(&client, server.url("/?from=bookmark"), Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2F%3Ffrom%3Dbookmark");
    Ok(())
}

/// The dashboard's expiry panel counts active certificates ending within 7, 30 and 90 days.
#[tokio::test]
async fn the_dashboard_counts_certificates_ending_soon() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let within = |html: &str, days: u32| -> i64 {
        html.split(&format!("<dt>Within {days} days</dt><dd>"))
            .nth(1)
            .and_then(|rest| rest.split("</a>").next())
            .and_then(|link| link.rsplit('>').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(-1)
    };
    let before = get(&client, server.url("/"), Some(&admin.cookie))
        .await
        .text()
        .await?;
    for (name, days) in [("five.console.test", 5), ("twenty.console.test", 20)] {
        let (status, body) = server
            .call(
                reqwest::Method::POST,
                "/api/v2/certificates",
                &crate::common::Auth::Session(&admin),
                Some(serde_json::json!({"common_name": name, "validity_days": days})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let after = get(&client, server.url("/"), Some(&admin.cookie))
        .await
        .text()
        .await?;
    // Each count links to the list it counts.
    assert!(
        after.contains(r#"<a href="/certificates?status=expiring&amp;days=7">"#),
        "{after}"
    );
    // The trend counts today's two, the CAs' health lists each CA with its CRL, and the
    // activity feed shows the issuance.
    let today = authority::Clock::now(server.clock.as_ref())
        .date()
        .to_string();
    assert!(after.contains("<svg viewBox="), "{after}");
    let issued_today = |html: &str| -> i64 {
        html.split(&format!("<title>{today}: "))
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(-1)
    };
    assert!(issued_today(&before) >= 0, "{before}");
    assert_eq!(issued_today(&after) - issued_today(&before), 2, "{after}");
    assert!(
        after.contains(r#"<h2 id="health">CA health</h2>"#),
        "{after}"
    );
    assert!(after.contains(">certmint Issuing CA</a>"), "{after}");
    assert!(
        after.contains(r#"<h2 id="activity">Recent activity</h2>"#),
        "{after}"
    );
    assert!(after.contains("twenty.console.test"), "{after}");
    for (days, added) in [(7, 1), (30, 2), (90, 2)] {
        assert!(within(&before, days) >= 0, "{before}");
        assert_eq!(
            within(&after, days) - within(&before, days),
            added,
            "{days}: {after}"
        );
    }
    Ok(())
}
