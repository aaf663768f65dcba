//! The console's HSM page: a provider added from its form and seen so through the REST API,
//! its PIN never shown again; refusals beside the form with what was typed kept (but not the
//! PIN); a test of a token that is not there answered with the reason; a provider deleted;
//! and what an operator without `admin:system` gets. Tokens themselves are exercised against
//! SoftHSM2 in `crates/cli/tests/hsm.rs`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{ADMIN_PASSWORD, Session, TestResult, TestServer};
use crate::console::{browser, location, page, post_form, rest};

const PIN: &str = "pin-20261207";

async fn providers(server: &TestServer, admin: &Session) -> Vec<Value> {
    rest(server, admin, "/api/v2/hsm/providers")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn an_admin_adds_tests_and_deletes_a_provider_from_the_console() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let (status, html) = page(&server, &client, &admin, "/hsm").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"<a href="/hsm" aria-current="page">HSM</a>"#),
        "{html}"
    );
    assert!(html.contains("No providers yet."), "{html}");
    assert!(
        html.contains(r#"<form method="post" action="/hsm""#),
        "{html}"
    );

    // A module outside the allowed paths is refused beside the form, the fields kept but
    // not the PIN.
    let response = post_form(
        &client,
        server.url("/hsm"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("name", "rogue"),
            ("provider_type", "pkcs11"),
            ("module_path", "/tmp/librogue.so"),
            ("token_label", "certmint"),
            ("pin", PIN),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(
        html.contains(r#"id="hsm-error""#) && html.contains("not one certmint may load"),
        "{html}"
    );
    assert!(
        html.contains("/tmp/librogue.so"),
        "the fields are kept: {html}"
    );
    assert!(!html.contains(PIN), "the PIN is not sent back: {html}");
    assert!(providers(&server, &admin).await.is_empty());

    // Added: listed with its PIN sealed, which no page or answer shows.
    let response = post_form(
        &client,
        server.url("/hsm"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("name", "soft"),
            ("provider_type", "softhsm2"),
            ("module_path", "/usr/lib/softhsm/libsofthsm2.so"),
            ("token_label", "no-such-token"),
            ("pin", PIN),
            ("max_sessions", "2"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/hsm#providers");
    let listed = providers(&server, &admin).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let id = listed[0]["id"].as_i64().ok_or("id")?;
    assert_eq!(listed[0]["pin_source"], "sealed");
    assert_eq!(listed[0]["max_sessions"], 2);
    assert!(!Value::Array(listed).to_string().contains(PIN));
    let (_, html) = page(&server, &client, &admin, "/hsm").await?;
    assert!(
        html.contains(&format!(r#"id="provider-{id}""#)) && html.contains("sealed"),
        "{html}"
    );
    assert!(!html.contains(PIN), "{html}");

    // Its token is not there: the test says why, with the status the API gives.
    let response = post_form(
        &client,
        server.url(&format!("/hsm/{id}/test")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = response.text().await?;
    assert!(
        html.contains(r#"id="hsm-error""#) && html.contains("soft"),
        "{html}"
    );

    // Deleted once the box is ticked.
    let response = post_form(
        &client,
        server.url(&format!("/hsm/{id}/delete")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(providers(&server, &admin).await.len(), 1);
    let response = post_form(
        &client,
        server.url(&format!("/hsm/{id}/delete")),
        cookie,
        &[("csrf_token", csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(providers(&server, &admin).await.is_empty());
    Ok(())
}

#[tokio::test]
async fn operators_see_providers_and_change_nothing() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let response = post_form(
        &client,
        server.url("/hsm"),
        Some(admin.cookie.as_str()),
        &[
            ("csrf_token", admin.csrf.as_str()),
            ("name", "soft"),
            ("provider_type", "softhsm2"),
            ("module_path", "/usr/lib/softhsm/libsofthsm2.so"),
            ("token_label", "certmint"),
            ("pin_env", "CERTMINT_HSM_PIN"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let id = providers(&server, &admin).await[0]["id"]
        .as_i64()
        .ok_or("id")?;

    server.user(&admin, "oskar", "operator").await;
    let oskar = server.login("oskar", ADMIN_PASSWORD).await;
    let (status, html) = page(&server, &client, &oskar, "/hsm").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("CERTMINT_HSM_PIN"), "{html}");
    assert!(
        !html.contains(r#"<form method="post""#),
        "no forms for an operator: {html}"
    );
    for (action, fields) in [
        (
            "/hsm".to_owned(),
            vec![("name", "mine"), ("provider_type", "softhsm2")],
        ),
        (format!("/hsm/{id}/test"), vec![]),
        (format!("/hsm/{id}/sync"), vec![]),
        (format!("/hsm/{id}/delete"), vec![("confirm", "yes")]),
        (
            "/hsm/keys".to_owned(),
            vec![
                ("provider_id", "1"),
                ("label", "k"),
                ("algorithm", "EC-P256"),
            ],
        ),
        ("/hsm/keys/1/delete".to_owned(), vec![("confirm", "yes")]),
    ] {
        let mut fields = fields;
        fields.push(("csrf_token", oskar.csrf.as_str()));
        let response = post_form(
            &client,
            server.url(&action),
            Some(oskar.cookie.as_str()),
            &fields,
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{action}");
        assert!(response.text().await?.contains("admin:system"), "{action}");
    }
    assert_eq!(providers(&server, &admin).await.len(), 1);
    Ok(())
}
