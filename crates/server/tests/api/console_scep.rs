//! The console's SCEP pages: the switch and a profile changed from their forms, a profile made
//! and deleted, a one-time challenge shown once that a client then enrolls with, refusals that
//! change nothing, approving and rejecting from the queue, and what a viewer and a forged form
//! get.

use authority::pki::scep::client as scep_client;
use reqwest::StatusCode;
use reqwest::header::CACHE_CONTROL;
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Session, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form, rest};
use crate::scep::{Device, ca_and_ra, default_ca, enroll, issued, set_config};

/// The static challenge of the default profile while requests are held.
const HELD: &str = "held-for-a-person";

/// Holds a request from a new device for each of `cns` at the default profile (set to wait
/// for approval with a static challenge).
pub async fn hold(server: &TestServer, admin: &Session, cns: &[&str]) -> TestResult {
    set_config(
        server,
        admin,
        json!({"auto_approve": false, "challenge_password": HELD}),
    )
    .await;
    let (_, ra) = ca_and_ra(server, "/scep").await?;
    let ra = scep_client::RaCertificate::new(&ra)?;
    for cn in cns {
        let outcome = enroll(server, &ra, &Device::new(cn)?, Some(HELD)).await?;
        assert_eq!(outcome, scep_client::Outcome::Pending, "{cn}");
    }
    Ok(())
}

/// The profile named `name` in the REST settings.
fn profile<'a>(config: &'a Value, name: &str) -> Option<&'a Value> {
    config["profiles"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == name))
}

/// The text of the element with id `id` on `html`.
fn text_of(html: &str, id: &str) -> String {
    html.split(&format!(r#"id="{id}">"#))
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn an_admin_runs_scep_from_the_console() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let response = get(&client, server.url("/enroll/scep"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains("/scep/pkiclient.exe"), "{html}");
    assert!(
        html.contains(r#"<a href="/enroll/scep" aria-current="page">SCEP</a>"#),
        "{html}"
    );

    // The switch.
    for (fields, serving) in [
        (vec![("csrf_token", csrf)], false),
        (vec![("csrf_token", csrf), ("enabled", "1")], true),
    ] {
        let response = post_form(
            &client,
            server.url("/enroll/scep/settings"),
            cookie,
            &fields,
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/enroll/scep");
        let config = rest(&server, &admin, "/api/v2/scep/config").await;
        assert_eq!(config["enabled"], serving, "{config}");
    }

    // The default profile: manual approval, a static challenge, a longer validity.
    let config = rest(&server, &admin, "/api/v2/scep/config").await;
    let id = profile(&config, "default")
        .and_then(|p| p["id"].as_i64())
        .ok_or("default")?;
    let path = format!("/enroll/scep/profiles/{id}");
    let change = |password: &'static str, validity: &'static str| {
        vec![
            ("csrf_token", csrf),
            ("enabled", "1"),
            ("ca_id", ""),
            ("template_id", ""),
            ("challenge_password", password),
            ("challenge_validity", validity),
        ]
    };
    let response = post_form(
        &client,
        server.url(&path),
        cookie,
        &change("console-static-secret", "48"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/enroll/scep#profile-{id}"));
    let config = rest(&server, &admin, "/api/v2/scep/config").await;
    assert_eq!(
        (
            config["auto_approve"].as_bool(),
            config["challenge_password_set"].as_bool(),
            config["challenge_validity"].as_i64()
        ),
        (Some(false), Some(true), Some(48)),
        "{config}"
    );

    // A 5-character static challenge is refused with the reason, and changes nothing.
    let response = post_form(&client, server.url(&path), cookie, &change("short", "12")).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains(r#"role="alert""#), "{html}");
    assert!(html.contains("12 to 255 characters"), "{html}");
    let after = rest(&server, &admin, "/api/v2/scep/config").await;
    assert_eq!(after, config, "a refused form changes nothing");

    // A blank password keeps the one set; the box removes it.
    let mut again = change("", "24");
    again.push(("auto_approve", "1"));
    let response = post_form(&client, server.url(&path), cookie, &again).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let config = rest(&server, &admin, "/api/v2/scep/config").await;
    assert_eq!(
        (
            config["auto_approve"].as_bool(),
            config["challenge_password_set"].as_bool(),
            config["challenge_validity"].as_i64()
        ),
        (Some(true), Some(true), Some(24)),
        "{config}"
    );
    again.push(("remove_challenge", "1"));
    let response = post_form(&client, server.url(&path), cookie, &again).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let config = rest(&server, &admin, "/api/v2/scep/config").await;
    assert_eq!(config["challenge_password_set"], false, "{config}");

    // A new profile by name; the same name again, or a bad one, is refused.
    let create = |name: &'static str| vec![("csrf_token", csrf), ("name", name)];
    let response = post_form(
        &client,
        server.url("/enroll/scep/profiles"),
        cookie,
        &create("lab"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let config = rest(&server, &admin, "/api/v2/scep/config").await;
    let lab = profile(&config, "lab").ok_or("lab")?.clone();
    assert_eq!(lab["url"], "/scep/lab/pkiclient.exe", "{lab}");
    assert_eq!(
        location(&response),
        format!("/enroll/scep#profile-{}", lab["id"])
    );
    for (name, status) in [
        ("lab", StatusCode::CONFLICT),
        ("Bad Name", StatusCode::UNPROCESSABLE_ENTITY),
        ("cgi-bin", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let response = post_form(
            &client,
            server.url("/enroll/scep/profiles"),
            cookie,
            &create(name),
        )
        .await;
        assert_eq!(response.status(), status, "{name}");
        assert!(response.text().await?.contains(r#"id="scep-error""#));
    }
    let html = get(&client, server.url("/enroll/scep"), cookie)
        .await
        .text()
        .await?;
    assert!(html.contains("/scep/lab/pkiclient.exe"), "{html}");
    assert!(
        html.contains(&format!(r#"id="profile-{}""#, lab["id"])),
        "{html}"
    );

    // Its template, from the select.
    let templates = rest(&server, &admin, "/api/v2/templates").await;
    let client_template = templates
        .as_array()
        .and_then(|all| all.iter().find(|t| t["name"] == "TLS Client"))
        .and_then(|t| t["id"].as_i64())
        .ok_or("TLS Client template")?
        .to_string();
    let lab_path = format!("/enroll/scep/profiles/{}", lab["id"]);
    let response = post_form(
        &client,
        server.url(&lab_path),
        cookie,
        &[
            ("csrf_token", csrf),
            ("template_id", &client_template),
            ("challenge_validity", ""),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let config = rest(&server, &admin, "/api/v2/scep/config").await;
    let changed = profile(&config, "lab").ok_or("lab")?;
    assert_eq!(
        changed["template_id"].as_i64().map(|t| t.to_string()),
        Some(client_template),
        "{changed}"
    );
    assert_eq!(changed["enabled"], false, "an unticked box: {changed}");

    // Deleting it; the default profile cannot be.
    let response = post_form(
        &client,
        server.url(&format!("{lab_path}/delete")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let config = rest(&server, &admin, "/api/v2/scep/config").await;
    assert!(profile(&config, "lab").is_none(), "{config}");
    let response = post_form(
        &client,
        server.url(&format!("{path}/delete")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await?.contains("the default one"));
    let response = post_form(
        &client,
        server.url(&format!("{lab_path}/delete")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "gone already");

    // A one-time challenge: on the answer, never again, and good for one enrollment.
    let ca_id = default_ca(&server, &admin).await.to_string();
    let response = post_form(
        &client,
        server.url("/enroll/scep/challenge"),
        cookie,
        &[("csrf_token", csrf), ("ca_id", &ca_id)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let html = response.text().await?;
    let challenge = text_of(&html, "scep-challenge");
    assert!(challenge.len() >= 32, "{html}");
    let shown = get(&client, server.url("/enroll/scep"), cookie)
        .await
        .text()
        .await?;
    assert!(!shown.contains(&challenge), "shown once: {shown}");
    let (_, ra) = ca_and_ra(&server, "/scep").await?;
    let ra = scep_client::RaCertificate::new(&ra)?;
    let device = Device::new("console-device")?;
    issued(enroll(&server, &ra, &device, Some(&challenge)).await?);
    let second = enroll(
        &server,
        &ra,
        &Device::new("second-device")?,
        Some(&challenge),
    )
    .await?;
    assert!(
        matches!(second, scep_client::Outcome::Failure(_)),
        "used once: {second:?}"
    );
    let stats = rest(&server, &admin, "/api/v2/scep/stats").await;
    assert_eq!(
        (stats["issued"].as_i64(), stats["failed"].as_i64()),
        (Some(1), Some(1)),
        "{stats}"
    );
    let html = get(&client, server.url("/enroll/scep"), cookie)
        .await
        .text()
        .await?;
    assert!(
        html.contains(r#"<tr><th scope="row">default</th><td>1</td><td>0</td><td>0</td><td>1</td><td>2</td></tr>"#),
        "the statistics: {html}"
    );
    assert!(
        html.contains(r#"href="/certificates/"#),
        "the RA certificate: {html}"
    );

    // A CA that does not exist, or none at all.
    for ca in ["999999", ""] {
        let response = post_form(
            &client,
            server.url("/enroll/scep/challenge"),
            cookie,
            &[("csrf_token", csrf), ("ca_id", ca)],
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{ca:?}"
        );
        assert!(response.text().await?.contains(r#"id="scep-error""#));
    }
    Ok(())
}

#[tokio::test]
async fn an_admin_approves_and_rejects_from_the_queue() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();
    hold(&server, &admin, &["queue-approved", "queue-rejected"]).await?;

    let response = get(
        &client,
        server.url("/enroll/scep/requests?status=pending"),
        cookie,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains("2 requests"), "{html}");
    for cn in ["queue-approved", "queue-rejected"] {
        assert!(html.contains(cn), "{html}");
    }
    let overview = get(&client, server.url("/enroll/scep"), cookie)
        .await
        .text()
        .await?;
    assert!(overview.contains("Waiting for approval: 2"), "{overview}");

    let pending = rest(&server, &admin, "/api/v2/scep/requests?status=pending").await;
    let id_of = |cn: &str| {
        pending
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|r| r["subject"].as_str().is_some_and(|s| s.contains(cn)))
            })
            .and_then(|r| r["id"].as_i64())
            .ok_or(format!("no pending request for {cn}: {pending}"))
    };
    let (approved, rejected) = (id_of("queue-approved")?, id_of("queue-rejected")?);
    for id in [approved, rejected] {
        assert!(
            html.contains(&format!(r#"action="/enroll/scep/requests/{id}/approve""#)),
            "{html}"
        );
    }

    // Back to the list as it was filtered.
    let approve = format!("/enroll/scep/requests/{approved}/approve");
    let response = post_form(
        &client,
        server.url(&approve),
        cookie,
        &[("csrf_token", csrf), ("status", "pending")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/enroll/scep/requests?status=pending");
    let response = post_form(
        &client,
        server.url(&format!("/enroll/scep/requests/{rejected}/reject")),
        cookie,
        &[("csrf_token", csrf), ("reason", "unknown device")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/enroll/scep/requests");

    let row = rest(
        &server,
        &admin,
        &format!("/api/v2/scep/requests/{approved}"),
    )
    .await;
    assert_eq!(
        (row["status"].as_str(), row["decided_by"].as_str()),
        (Some("issued"), Some("admin")),
        "{row}"
    );
    let certificate = row["certificate_id"].as_i64().ok_or("certificate")?;
    let row = rest(
        &server,
        &admin,
        &format!("/api/v2/scep/requests/{rejected}"),
    )
    .await;
    assert_eq!(
        (row["status"].as_str(), row["reason"].as_str()),
        (Some("rejected"), Some("unknown device")),
        "{row}"
    );

    // Approving twice is a conflict, shown on the list.
    let response = post_form(
        &client,
        server.url(&approve),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await?;
    assert!(html.contains(r#"id="requests-error""#), "{html}");
    assert!(html.contains("not pending"), "{html}");

    let html = get(&client, server.url("/enroll/scep/requests"), cookie)
        .await
        .text()
        .await?;
    assert!(
        html.contains(&format!(r#"href="/certificates/{certificate}""#)),
        "{html}"
    );
    assert!(html.contains("unknown device"), "{html}");
    assert!(!html.contains("/approve\""), "nothing pending: {html}");
    let html = get(
        &client,
        server.url("/enroll/scep/requests?status=rejected"),
        cookie,
    )
    .await
    .text()
    .await?;
    assert!(html.contains("1 request<"), "{html}");
    assert!(html.contains("queue-rejected") && !html.contains("queue-approved"));
    let response = get(
        &client,
        server.url("/enroll/scep/requests?status=lost"),
        cookie,
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    Ok(())
}

#[tokio::test]
async fn a_viewer_reads_scep_but_changes_nothing() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    hold(&server, &admin, &["viewer-sees-this"]).await?;
    server.user(&admin, "vera", "viewer").await;
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(vera.cookie.as_str());

    let html = get(&client, server.url("/enroll/scep"), cookie)
        .await
        .text()
        .await?;
    assert!(
        html.contains(r#"<h2 id="profiles">Profiles</h2>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"href="/enroll/scep""#),
        "the navigation: {html}"
    );
    for hidden in [
        "/enroll/scep/settings",
        "/enroll/scep/profiles",
        "/enroll/scep/challenge",
        "password",
    ] {
        assert!(!html.contains(hidden), "a viewer sees {hidden}: {html}");
    }
    let html = get(&client, server.url("/enroll/scep/requests"), cookie)
        .await
        .text()
        .await?;
    assert!(html.contains("viewer-sees-this"), "{html}");
    for hidden in ["/approve", "/reject"] {
        assert!(!html.contains(hidden), "a viewer sees {hidden}: {html}");
    }

    let config = rest(&server, &admin, "/api/v2/scep/config").await;
    let id = profile(&config, "default")
        .and_then(|p| p["id"].as_i64())
        .ok_or("default")?;
    let pending = rest(&server, &admin, "/api/v2/scep/requests?status=pending").await;
    let request = pending[0]["id"].as_i64().ok_or("pending")?;
    let ca_id = default_ca(&server, &admin).await.to_string();
    for (path, fields) in [
        ("/enroll/scep/settings".to_owned(), vec![]),
        ("/enroll/scep/profiles".to_owned(), vec![("name", "mine")]),
        (
            format!("/enroll/scep/profiles/{id}"),
            vec![("auto_approve", "1")],
        ),
        (format!("/enroll/scep/profiles/{id}/delete"), vec![]),
        (
            "/enroll/scep/challenge".to_owned(),
            vec![("ca_id", ca_id.as_str())],
        ),
        (format!("/enroll/scep/requests/{request}/approve"), vec![]),
        (format!("/enroll/scep/requests/{request}/reject"), vec![]),
    ] {
        let mut form = vec![("csrf_token", vera.csrf.as_str())];
        form.extend(fields);
        let response = post_form(&client, server.url(&path), cookie, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(response.text().await?.contains("write:scep"), "{path}");
    }

    // An admin's form with a forged token changes nothing either.
    let response = post_form(
        &client,
        server.url("/enroll/scep/settings"),
        Some(&admin.cookie),
        &[("csrf_token", "forged"), ("enabled", "")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = post_form(
        &client,
        server.url(&format!("/enroll/scep/requests/{request}/approve")),
        Some(&admin.cookie),
        &[("csrf_token", vera.csrf.as_str())],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(rest(&server, &admin, "/api/v2/scep/config").await, config);
    let row = rest(&server, &admin, &format!("/api/v2/scep/requests/{request}")).await;
    assert_eq!(row["status"], "pending", "{row}");
    Ok(())
}
