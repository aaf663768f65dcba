//! The console's trust store pages: adding a CA certificate by pasting it (refusals beside
//! their field), its decoded page, removing it, and what a viewer and a forged form get.

use reqwest::{Method, StatusCode};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer, fetch};
use crate::console::{assert_strict_page, browser, get, location, post_form};

/// A self-signed CA certificate named `cn`, PEM.
pub fn rcgen_root(cn: &str) -> TestResult<String> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    Ok(params.self_signed(&key)?.pem())
}

/// A certificate issued by certmint (an end entity, not self-signed), PEM.
pub async fn issued_pem(server: &TestServer, admin: &Session, cn: &str) -> TestResult<String> {
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &Auth::Session(admin),
            Some(serde_json::json!({ "common_name": cn, "san": [format!("dns:{cn}")] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_i64().ok_or("no id")?;
    let pem = fetch(
        server,
        admin,
        &format!("/api/v2/certificates/{id}/export?format=pem"),
    )
    .await?;
    Ok(String::from_utf8(pem)?)
}

async fn total(server: &TestServer, admin: &Session) -> i64 {
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/truststore",
            &Auth::Session(admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["meta"]["total"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn an_operator_adds_and_an_admin_removes_a_trusted_ca() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "otto", "operator").await;
    let otto = server.login("otto", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(otto.cookie.as_str());
    let csrf = otto.csrf.as_str();
    let root = rcgen_root("Partner Root CA")?;
    let leaf = issued_pem(&server, &admin, "leaf.console.test").await?;

    let response = get(&client, server.url("/truststore"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains(r#"href="/truststore/new""#), "{html}");
    let response = get(&client, server.url("/truststore/new"), cookie).await;
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains(r#"<label for="certificate">"#), "{html}");

    // Refusals beside their field, the values kept, nothing trusted.
    for (certificate, purpose, error) in [
        ("no certificate here", "", "certificate-error"),
        (leaf.as_str(), "", "certificate-error"),
        (root.as_str(), "Not A Purpose!", "purpose-error"),
    ] {
        let response = post_form(
            &client,
            server.url("/truststore/new"),
            cookie,
            &[
                ("csrf_token", csrf),
                ("certificate", certificate),
                ("name", "Partner"),
                ("purpose", purpose),
            ],
        )
        .await;
        assert!(response.status().is_client_error(), "{error}");
        let html = response.text().await?;
        assert!(
            html.contains(&format!(r#"id="{error}""#)),
            "{error}: {html}"
        );
        assert!(html.contains(r#"value="Partner""#), "{html}");
    }
    assert_eq!(total(&server, &admin).await, 0);

    let response = post_form(
        &client,
        server.url("/truststore/new"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("certificate", &root),
            ("name", "Partner"),
            ("purpose", "partner_mtls"),
            ("notes", "Added for the partner's clients"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = location(&response);
    let html = get(&client, server.url(&page), cookie).await.text().await?;
    for shown in [
        "<h1>Partner</h1>",
        "root CA",
        "CN=Partner Root CA",
        "partner_mtls",
        "Added for the partner&#39;s clients",
        "-----BEGIN CERTIFICATE-----",
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }
    // An operator may not remove it.
    assert!(!html.contains("/delete"), "{html}");
    let html = get(&client, server.url("/truststore"), cookie)
        .await
        .text()
        .await?;
    assert!(html.contains(&format!(r#"href="{page}""#)), "{html}");
    // Trusted already: refused beside the certificate.
    let response = post_form(
        &client,
        server.url("/truststore/new"),
        cookie,
        &[("csrf_token", csrf), ("certificate", &root)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.text().await?.contains(r#"id="certificate-error""#));
    assert_eq!(total(&server, &admin).await, 1);

    let response = post_form(
        &client,
        server.url(&format!("{page}/delete")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let html = get(&client, server.url(&page), Some(&admin.cookie))
        .await
        .text()
        .await?;
    assert!(html.contains("Stop trusting it"), "{html}");
    let response = post_form(
        &client,
        server.url(&format!("{page}/delete")),
        Some(&admin.cookie),
        &[("csrf_token", &admin.csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/truststore");
    assert_eq!(
        get(&client, server.url(&page), cookie).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(total(&server, &admin).await, 0);
    for action in ["trusted_certificate_added", "trusted_certificate_removed"] {
        assert_eq!(
            server
                .audit_total(&Auth::Session(&admin), &format!("action={action}"))
                .await,
            1,
            "{action}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_viewer_sees_no_trust_store_actions_and_the_server_refuses_them() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "vera", "viewer").await;
    let root = rcgen_root("Kept Root CA")?;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/truststore",
            &Auth::Session(&admin),
            Some(serde_json::json!({ "certificate": root })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_i64().unwrap_or_default();
    let page = format!("/truststore/{id}");
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(vera.cookie.as_str());

    let html = get(&client, server.url("/truststore"), cookie)
        .await
        .text()
        .await?;
    assert!(html.contains("Kept Root CA"), "{html}");
    assert!(!html.contains("/truststore/new"), "{html}");
    let response = get(&client, server.url(&page), cookie).await;
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains("CN=Kept Root CA"), "{html}");
    assert!(!html.contains("/delete"), "{html}");
    for (path, permission) in [
        (format!("{page}/delete"), "delete:truststore"),
        ("/truststore/new".to_owned(), "write:truststore"),
    ] {
        let response = post_form(
            &client,
            server.url(&path),
            cookie,
            &[("csrf_token", &vera.csrf), ("certificate", &root)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(response.text().await?.contains(permission), "{path}");
    }
    for fields in [vec![("csrf_token", "forged")], vec![]] {
        let response = post_form(
            &client,
            server.url(&format!("{page}/delete")),
            Some(&admin.cookie),
            &fields,
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(total(&server, &admin).await, 1);
    Ok(())
}
