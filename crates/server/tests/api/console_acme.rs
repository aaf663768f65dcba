//! The console's ACME pages: settings, a profile made and changed from its form, an external
//! account binding key shown once and revoked, the account and order lists, deleting a
//! profile, and what a viewer and a forged form get.

use reqwest::StatusCode;

use crate::common::{ADMIN_PASSWORD, Auth, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form, rest};

#[tokio::test]
async fn an_admin_runs_acme_from_the_console() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let response = get(&client, server.url("/acme"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains("/acme/directory"), "{html}");

    // Settings: a bad value is refused with the reason and changes nothing.
    let settings = [
        ("csrf_token", csrf),
        ("enabled", "1"),
        ("orders_per_account_hour", "7"),
        ("accounts_per_address_hour", "3"),
    ];
    let response = post_form(&client, server.url("/acme/settings"), cookie, &settings).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let s = rest(&server, &admin, "/api/v2/acme/settings").await;
    assert_eq!(
        (
            s["orders_per_account_hour"].as_i64(),
            s["enabled"].as_bool()
        ),
        (Some(7), Some(true))
    );
    let response = post_form(
        &client,
        server.url("/acme/settings"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("enabled", "1"),
            ("orders_per_account_hour", "-5"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await?.contains(r#"role="alert""#));
    let s = rest(&server, &admin, "/api/v2/acme/settings").await;
    assert_eq!(s["orders_per_account_hour"].as_i64(), Some(7));

    // A profile: a bad name is refused, a good one serves its directory at once.
    let profile = |name: &'static str| {
        vec![
            ("csrf_token", csrf),
            ("name", name),
            ("enabled", "1"),
            ("validity_days", "30"),
            ("require_eab", "1"),
            ("http_01", "1"),
            ("allowed_identifiers", "lab.example"),
        ]
    };
    let response = post_form(
        &client,
        server.url("/acme/profiles/new"),
        cookie,
        &profile("Bad Name"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains(r#"id="profile-error""#), "{html}");
    assert!(html.contains(r#"value="Bad Name""#), "{html}");
    let response = post_form(
        &client,
        server.url("/acme/profiles/new"),
        cookie,
        &profile("lab"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = location(&response);
    let id = page.trim_start_matches("/acme/profiles/").to_owned();
    let p = rest(&server, &admin, &format!("/api/v2/acme/profiles/{id}")).await;
    assert_eq!(p["validity_days"], 30, "{p}");
    assert_eq!(p["require_eab"], true, "{p}");
    assert_eq!(p["challenge_types"], serde_json::json!(["http-01"]), "{p}");
    assert_eq!(
        p["allowed_identifiers"],
        serde_json::json!(["lab.example"]),
        "{p}"
    );
    let directory = get(&client, server.url("/acme/lab/directory"), None).await;
    assert_eq!(directory.status(), StatusCode::OK);

    // Changing it keeps its name.
    let mut change = profile("ignored");
    change.retain(|(k, _)| *k != "name");
    change.push(("validity_days", "45"));
    change.retain(|(k, v)| !(*k == "validity_days" && *v == "30"));
    let response = post_form(&client, server.url(&page), cookie, &change).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let p = rest(&server, &admin, &format!("/api/v2/acme/profiles/{id}")).await;
    assert_eq!(
        (p["validity_days"].as_i64(), p["name"].as_str()),
        (Some(45), Some("lab"))
    );

    // An EAB key: its HMAC key is on the answer, and never again.
    let response = post_form(
        &client,
        server.url(&format!("{page}/eab-keys")),
        cookie,
        &[("csrf_token", csrf), ("description", "router 7")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let html = response.text().await?;
    let hmac = html
        .split(r#"id="eab-hmac">"#)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_default()
        .to_owned();
    let kid = html
        .split(r#"id="eab-kid">"#)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_default()
        .to_owned();
    assert!(hmac.len() >= 40, "{html}");
    let again = get(&client, server.url(&page), cookie).await.text().await?;
    assert!(again.contains(&kid), "{again}");
    assert!(
        !again.contains(&hmac),
        "the HMAC key is shown once: {again}"
    );
    let response = post_form(
        &client,
        server.url(&format!("{page}/eab-keys/{kid}/revoke")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let keys = rest(
        &server,
        &admin,
        &format!("/api/v2/acme/profiles/{id}/eab-keys"),
    )
    .await;
    assert_eq!(keys[0]["status"], "revoked", "{keys}");

    // The lists, and a filter that is not a number.
    for path in [
        "/acme/accounts",
        "/acme/orders",
        "/acme/orders?status=valid",
    ] {
        let response = get(&client, server.url(path), cookie).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let response = get(&client, server.url("/acme/accounts?profile_id=x"), cookie).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let response = post_form(
        &client,
        server.url(&format!("{page}/delete")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, _) = server
        .call(
            reqwest::Method::GET,
            &format!("/api/v2/acme/profiles/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn a_viewer_reads_acme_but_changes_nothing() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "vera", "viewer").await;
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(vera.cookie.as_str());

    let html = get(&client, server.url("/acme"), cookie)
        .await
        .text()
        .await?;
    assert!(html.contains("<h2 id=\"profiles\">Profiles</h2>"), "{html}");
    for hidden in ["/acme/settings", "/acme/profiles/new"] {
        assert!(!html.contains(hidden), "a viewer sees {hidden}: {html}");
    }
    let response = post_form(
        &client,
        server.url("/acme/settings"),
        cookie,
        &[("csrf_token", &vera.csrf), ("orders_per_account_hour", "1")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await?.contains("write:acme"));
    let response = get(&client, server.url("/acme/profiles/new"), cookie).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // An admin's form without its token changes nothing either.
    let response = post_form(
        &client,
        server.url("/acme/settings"),
        Some(&admin.cookie),
        &[("orders_per_account_hour", "1")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let s = rest(&server, &admin, "/api/v2/acme/settings").await;
    assert_ne!(s["orders_per_account_hour"].as_i64(), Some(1));
    Ok(())
}
