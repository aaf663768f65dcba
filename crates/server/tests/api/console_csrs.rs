//! The console's CSR pages: submitting a CSR made by rcgen, its decoded page, signing it with
//! a CA, a template and a validity (the refusal beside its field, then the certificate),
//! deleting one, and what a viewer and a forged form get.

use reqwest::{Method, StatusCode};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form};

/// A CSR (PEM) for `cn`, with `cn` as its DNS name, and its key (PEM).
pub fn rcgen_csr(cn: &str) -> TestResult<(String, String)> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec![cn.to_owned()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let csr = params.serialize_request(&key)?;
    Ok((csr.pem()?, key.serialize_pem()))
}

async fn total(server: &TestServer, admin: &Session) -> i64 {
    let (status, body) = server
        .call(Method::GET, "/api/v2/csrs", &Auth::Session(admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["meta"]["total"].as_i64().unwrap_or(-1)
}

/// The id at the end of a redirect to `prefix{id}`.
fn id_in(response: &reqwest::Response, prefix: &str) -> i64 {
    let to = location(response);
    to.strip_prefix(prefix)
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not under {prefix}: {to}"))
}

async fn template_id(server: &TestServer, admin: &Session, name: &str) -> i64 {
    let (_, body) = server
        .call(
            Method::GET,
            "/api/v2/templates",
            &Auth::Session(admin),
            None,
        )
        .await;
    body["data"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["name"] == name))
        .and_then(|t| t["id"].as_i64())
        .unwrap_or_else(|| panic!("no template {name}"))
}

#[tokio::test]
async fn an_operator_submits_signs_and_deletes_csrs_from_the_console() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "otto", "operator").await;
    let otto = server.login("otto", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(otto.cookie.as_str());
    let csrf = otto.csrf.as_str();

    let response = get(&client, server.url("/csrs/new"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains(r#"<label for="pem">"#), "{html}");

    // Not a CSR: refused beside the field, kept, nothing stored.
    let response = post_form(
        &client,
        server.url("/csrs/new"),
        cookie,
        &[("csrf_token", csrf), ("pem", "not a request")],
    )
    .await;
    assert!(response.status().is_client_error(), "{}", response.status());
    let html = response.text().await?;
    assert!(html.contains(r#"id="pem-error""#), "{html}");
    assert!(html.contains(">not a request</textarea>"), "{html}");
    assert_eq!(total(&server, &admin).await, 0);

    let (pem, _) = rcgen_csr("signed.console.test")?;
    let response = post_form(
        &client,
        server.url("/csrs/new"),
        cookie,
        &[("csrf_token", csrf), ("pem", &pem)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let id = id_in(&response, "/csrs/");
    let page = format!("/csrs/{id}");
    let response = get(&client, server.url(&page), cookie).await;
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    for shown in [
        "<h1>signed.console.test</h1>",
        "CN=signed.console.test",
        "dns:signed.console.test",
        "EC P-256",
        r#"<span class="badge pending" id="status">pending</span>"#,
        &format!(r#"action="/csrs/{id}/sign""#),
        r#"<label for="template_id">"#,
        r#"<label for="ca_id">"#,
        "Delete the CSR",
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }
    let html = get(&client, server.url("/csrs?status=pending"), cookie)
        .await
        .text()
        .await?;
    assert!(html.contains(&format!(r#"href="{page}""#)), "{html}");

    // The template caps the validity: refused beside the field, the CSR still pending.
    let tls = template_id(&server, &admin, "TLS Server").await.to_string();
    let response = post_form(
        &client,
        server.url(&format!("{page}/sign")),
        cookie,
        &[
            ("csrf_token", csrf),
            ("template_id", &tls),
            ("validity_days", "500"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains(r#"id="validity_days-error""#), "{html}");
    assert!(html.contains(r#"value="500""#), "{html}");
    assert!(
        html.contains(&format!(r#"<option value="{tls}" selected>"#)),
        "{html}"
    );
    assert!(html.contains(r#"id="status">pending<"#), "{html}");

    let (_, cas) = server
        .call(Method::GET, "/api/v2/cas", &Auth::Session(&admin), None)
        .await;
    let ca = cas["data"][0]["id"].as_i64().ok_or("no CA")?.to_string();
    let response = post_form(
        &client,
        server.url(&format!("{page}/sign")),
        cookie,
        &[
            ("csrf_token", csrf),
            ("ca_id", &ca),
            ("template_id", &tls),
            ("validity_days", "30"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let certificate = id_in(&response, "/certificates/");
    let html = get(
        &client,
        server.url(&format!("/certificates/{certificate}")),
        cookie,
    )
    .await
    .text()
    .await?;
    assert!(html.contains("<h1>signed.console.test</h1>"), "{html}");
    assert!(html.contains("serverAuth"), "{html}");
    let html = get(&client, server.url(&page), cookie).await.text().await?;
    assert!(html.contains(r#"id="status">signed<"#), "{html}");
    assert!(
        html.contains(&format!(r#"href="/certificates/{certificate}""#)),
        "{html}"
    );
    assert!(!html.contains("/sign\""), "signed already: {html}");
    // Signing again is refused: it is signed already.
    let response = post_form(
        &client,
        server.url(&format!("{page}/sign")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);

    // Rejecting one deletes it, audited.
    let (other, _) = rcgen_csr("rejected.console.test")?;
    let response = post_form(
        &client,
        server.url("/csrs/new"),
        cookie,
        &[("csrf_token", csrf), ("pem", &other), ("name", "To reject")],
    )
    .await;
    let rejected = id_in(&response, "/csrs/");
    let response = post_form(
        &client,
        server.url(&format!("/csrs/{rejected}/delete")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/csrs");
    assert_eq!(
        get(&client, server.url(&format!("/csrs/{rejected}")), cookie)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=csr_deleted")
            .await,
        1
    );
    assert_eq!(total(&server, &admin).await, 1);
    Ok(())
}

#[tokio::test]
async fn a_viewer_sees_no_csr_actions_and_the_server_refuses_them() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "vera", "viewer").await;
    let (pem, _) = rcgen_csr("kept.console.test")?;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/csrs/upload",
            &Auth::Session(&admin),
            Some(serde_json::json!({ "pem": pem })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_i64().unwrap_or_default();
    let page = format!("/csrs/{id}");
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(vera.cookie.as_str());

    let response = get(&client, server.url("/csrs"), cookie).await;
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains("kept.console.test"), "{html}");
    assert!(!html.contains("Submit a CSR"), "{html}");
    let html = get(&client, server.url(&page), cookie).await.text().await?;
    assert!(html.contains("CN=kept.console.test"), "{html}");
    for hidden in ["/sign", "/delete"] {
        assert!(!html.contains(hidden), "a viewer sees {hidden}: {html}");
    }
    for (path, permission) in [
        (format!("{page}/sign"), "write:certificates"),
        (format!("{page}/delete"), "delete:csrs"),
        ("/csrs/new".to_owned(), "write:csrs"),
    ] {
        let response = post_form(
            &client,
            server.url(&path),
            cookie,
            &[("csrf_token", &vera.csrf), ("pem", &pem)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(response.text().await?.contains(permission), "{path}");
    }

    // A forged or absent token signs nothing, even for an admin.
    for fields in [vec![("csrf_token", "forged")], vec![]] {
        for action in ["sign", "delete"] {
            let response = post_form(
                &client,
                server.url(&format!("{page}/{action}")),
                Some(&admin.cookie),
                &fields,
            )
            .await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{action}");
        }
    }
    let html = get(&client, server.url(&page), Some(&admin.cookie))
        .await
        .text()
        .await?;
    assert!(html.contains(r#"id="status">pending<"#), "{html}");
    assert_eq!(total(&server, &admin).await, 1);
    let response = get(&client, server.url("/csrs?status=bogus"), cookie).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    Ok(())
}
