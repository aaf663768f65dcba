//! The console's CA pages: the tree, creating an intermediate with name constraints and its
//! pointers chosen (checked with openssl), the refusal beside its field, publishing a CRL,
//! importing a CA, and what a viewer and a forged form get.

use reqwest::StatusCode;

use crate::common::{ADMIN_PASSWORD, Auth, TestResult, TestServer, openssl};
use crate::console::{assert_strict_page, browser, get, location, post_form};

async fn ca_count(server: &TestServer, session: &crate::common::Session) -> usize {
    let (status, body) = server
        .call(
            reqwest::Method::GET,
            "/api/v2/cas",
            &Auth::Session(session),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().map_or(0, Vec::len)
}

/// The id in a `/cas/{id}` redirect.
fn ca_id(response: &reqwest::Response) -> i64 {
    let to = location(response);
    to.strip_prefix("/cas/")
        .and_then(|rest| rest.split('?').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a CA page: {to}"))
}

#[tokio::test]
async fn an_admin_creates_an_intermediate_publishes_its_crl_and_imports_a_ca() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let response = get(&client, server.url("/cas"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains("certmint Root CA"), "{html}");
    assert!(
        html.contains(r#"<li class="depth-1">"#),
        "the issuing CA sits below the root: {html}"
    );
    let root = html
        .split(r#"<li class="depth-0">"#)
        .nth(1)
        .and_then(|li| li.split(r#"<a href="/cas/"#).nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();
    let response = get(&client, server.url("/cas/new"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_strict_page(&headers, &response.text().await?);

    // An intermediate without its parent: the refusal beside the field, nothing created.
    let before = ca_count(&server, &admin).await;
    let response = post_form(
        &client,
        server.url("/cas/new"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("ca_type", "intermediate"),
            ("common_name", "Lab Issuing"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains(r#"id="parent_id-error""#), "{html}");
    assert!(html.contains(r#"value="Lab Issuing""#), "{html}");
    assert_eq!(ca_count(&server, &admin).await, before);

    // With it: name constraints, and no caIssuers pointer (its box left unticked).
    let response = post_form(
        &client,
        server.url("/cas/new"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("ca_type", "intermediate"),
            ("parent_id", &root),
            ("common_name", "Lab Issuing"),
            ("key_type", "EC P-384"),
            ("path_length", "0"),
            ("permitted", "dns:lab.example\nip:10.0.0.0/8"),
            ("excluded", "dns:secret.lab.example"),
            ("cdp_enabled", "1"),
            ("ocsp_enabled", "1"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let id = ca_id(&response);
    let page = format!("/cas/{id}");
    let response = get(&client, server.url(&page), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    for shown in [
        "<h1>Lab Issuing</h1>",
        "EC P-384",
        "<dt>CA issuers (AIA)</dt><dd>off</dd>",
        "No CRL published yet.",
        "Publish a CRL now",
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }
    let (_, body) = server
        .call(
            reqwest::Method::GET,
            &format!("/api/v2/cas/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(body["data"]["aia_ca_issuers_enabled"], false, "{body}");
    assert_eq!(body["data"]["ocsp_enabled"], true, "{body}");

    // The download carries the constraints, as openssl reads them.
    let response = get(
        &client,
        server.url(&format!("{page}/export?format=pem")),
        cookie,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("ca.pem"), response.bytes().await?)?;
    let text = openssl(dir.path(), &["x509", "-in", "ca.pem", "-noout", "-text"])?;
    for part in [
        "X509v3 Name Constraints: critical",
        "DNS:lab.example",
        "IP:10.0.0.0/255.0.0.0",
        "DNS:secret.lab.example",
        "pathlen:0",
    ] {
        assert!(text.contains(part), "{part} missing: {text}");
    }

    // Publishing a CRL now: the page says so and lists it.
    let response = post_form(
        &client,
        server.url(&format!("{page}/crl")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to = location(&response);
    assert!(to.starts_with(&format!("{page}?published=")), "{to}");
    let html = get(&client, server.url(&to), cookie).await.text().await?;
    assert!(html.contains("published</p>"), "{html}");
    assert!(
        html.contains(r#"<span class="badge active">fresh</span>"#),
        "{html}"
    );
    assert!(html.contains(".crl\">DER</a>"), "{html}");

    // Importing a CA made elsewhere; the same again is refused with the reason.
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Elsewhere Root");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let pem = params.self_signed(&key)?.pem();
    let response = get(&client, server.url("/cas/import"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let fields = [
        ("csrf_token", csrf),
        ("certificate", pem.as_str()),
        ("name", "Elsewhere"),
    ];
    let response = post_form(&client, server.url("/cas/import"), cookie, &fields).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let html = response.text().await?;
    assert!(html.contains("Imported 1 CA"), "{html}");
    assert!(html.contains(">Elsewhere</a>"), "{html}");
    let response = post_form(&client, server.url("/cas/import"), cookie, &fields).await;
    assert!(response.status().is_client_error(), "{}", response.status());
    assert!(response.text().await?.contains(r#"id="import-error""#));
    let response = post_form(
        &client,
        server.url("/cas/import"),
        cookie,
        &[("csrf_token", csrf), ("certificate", "not a certificate")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    Ok(())
}

#[tokio::test]
async fn a_viewer_reads_cas_but_cannot_change_them() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "vera", "viewer").await;
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(vera.cookie.as_str());

    let html = get(&client, server.url("/cas"), cookie)
        .await
        .text()
        .await?;
    assert!(html.contains("certmint Issuing CA"), "{html}");
    assert!(!html.contains("/cas/new"), "{html}");
    let id = html
        .split(r#"<a href="/cas/"#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();
    let page = format!("/cas/{id}");
    let html = get(&client, server.url(&page), cookie).await.text().await?;
    assert!(html.contains("<h2 id=\"crls\">CRLs</h2>"), "{html}");
    assert!(!html.contains("Publish a CRL now"), "{html}");

    let response = post_form(
        &client,
        server.url(&format!("{page}/crl")),
        cookie,
        &[("csrf_token", &vera.csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await?.contains("write:cas"));
    for path in ["/cas/new", "/cas/import"] {
        let response = get(&client, server.url(path), cookie).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // An admin's form without its token changes nothing either.
    let response = post_form(
        &client,
        server.url(&format!("{page}/crl")),
        Some(&admin.cookie),
        &[("csrf_token", "forged")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    Ok(())
}
