//! The console's email page against a real SMTP server (aiosmtpd): the mail server set from
//! its form with a write-only password (kept when blank, removed by its box, never shown), a
//! test message received, the expiry alerts set and a check now that mails what it found,
//! refusals that change nothing, a forged form, and what a user without `admin:system` gets.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Session, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form, rest};
use crate::email_alerts::SmtpServer;

const SMTP_PASSWORD: &str = "typed in the console for the mail server";

async fn email(server: &TestServer, admin: &Session) -> Value {
    rest(server, admin, "/api/v2/settings/email").await
}

async fn alerts(server: &TestServer, admin: &Session) -> Value {
    rest(server, admin, "/api/v2/system/alerts/expiry").await
}

/// The page as `cookie` sees it: strict, and never with the SMTP password.
async fn page(client: &reqwest::Client, server: &TestServer, cookie: Option<&str>) -> String {
    let response = get(client, server.url("/system/email"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await.unwrap_or_default();
    assert_strict_page(&headers, &html);
    assert!(!html.contains(SMTP_PASSWORD), "the password shown: {html}");
    html
}

/// The mail server's form, sent.
async fn send(
    client: &reqwest::Client,
    server: &TestServer,
    cookie: Option<&str>,
    fields: Vec<(&str, String)>,
) -> reqwest::Response {
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    post_form(client, server.url("/system/email/smtp"), cookie, &pairs).await
}

#[tokio::test]
async fn an_admin_sets_up_mail_and_expiry_alerts_from_the_console() -> TestResult {
    let smtp = SmtpServer::start().await?;
    let server = TestServer::start_with(|s| s.email.allow_private_targets = true).await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();
    let port = smtp.port.to_string();
    let html = page(&client, &server, cookie).await;
    assert!(
        html.contains(r#"<a href="/system/email" aria-current="page">Email</a>"#),
        "{html}"
    );
    assert!(html.contains("none is set"), "{html}");
    assert!(
        !html.contains(r#"name="remove_password""#),
        "nothing to remove"
    );

    // The mail server, with a password.
    let smtp_form = |security: &'static str, password: &'static str, remove: bool| {
        let mut fields = vec![
            ("csrf_token", csrf.to_owned()),
            ("enabled", "1".to_owned()),
            ("host", "127.0.0.1".to_owned()),
            ("port", port.clone()),
            ("security", security.to_owned()),
            ("username", "mailer".to_owned()),
            ("password", password.to_owned()),
            ("from_address", "certmint@example.test".to_owned()),
        ];
        if remove {
            fields.push(("remove_password", "1".to_owned()));
        }
        fields
    };
    let response = send(
        &client,
        &server,
        cookie,
        smtp_form("starttls", SMTP_PASSWORD, false),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/system/email#smtp");
    let set = email(&server, &admin).await;
    assert_eq!(
        set,
        json!({"enabled": true, "host": "127.0.0.1", "port": smtp.port, "security": "starttls",
               "username": "mailer", "password_set": true, "from_address": "certmint@example.test"})
    );
    let html = page(&client, &server, cookie).await;
    assert!(html.contains("one is set; blank keeps it"), "{html}");
    assert!(html.contains(r#"name="remove_password""#), "{html}");
    assert!(
        html.contains(r#"<option value="starttls" selected>"#),
        "{html}"
    );

    // Blank keeps it.
    let response = send(&client, &server, cookie, smtp_form("starttls", "", false)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(email(&server, &admin).await["password_set"], true);

    // Refused: typed and removed at once, a bad security, no password over a plain
    // connection; nothing changes.
    for (fields, why) in [
        (smtp_form("starttls", "another one", true), "not both"),
        (smtp_form("ssl", "", false), "is none of starttls"),
        (smtp_form("none", "", false), "encrypted connection"),
    ] {
        let response = send(&client, &server, cookie, fields).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        let html = response.text().await?;
        assert!(
            html.contains(r#"id="email-error""#) && html.contains(why),
            "{why}: {html}"
        );
        assert!(!html.contains(SMTP_PASSWORD) && !html.contains("another one"));
    }
    assert_eq!(email(&server, &admin).await, set);

    // aiosmtpd offers no STARTTLS and takes mail unauthenticated: the password removed, plain.
    let mut plain = smtp_form("none", "", true);
    plain.retain(|(k, _)| *k != "username");
    plain.push(("username", String::new()));
    let response = send(&client, &server, cookie, plain).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set = email(&server, &admin).await;
    assert_eq!(
        (&set["password_set"], &set["security"], &set["username"]),
        (&json!(false), &json!("none"), &Value::Null),
        "{set}"
    );

    // A test message arrives.
    let response = post_form(
        &client,
        server.url("/system/email/test"),
        cookie,
        &[("csrf_token", csrf), ("to", "ops@example.test")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    assert!(
        html.contains(r#"id="test-sent""#) && html.contains("ops@example.test"),
        "{html}"
    );
    let got = smtp.take()?;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].to, "ops@example.test");
    let response = post_form(
        &client,
        server.url("/system/email/test"),
        cookie,
        &[("csrf_token", csrf), ("to", "nobody")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await?.contains(r#"id="email-error""#));
    assert!(smtp.take()?.is_empty());

    // Expiry alerts.
    let html = page(&client, &server, cookie).await;
    assert!(
        html.contains(r#"name="thresholds" value="30, 14, 7, 1""#),
        "the defaults: {html}"
    );
    let response = post_form(
        &client,
        server.url("/system/email/expiry-alerts"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("enabled", "1"),
            ("thresholds", "10, 60"),
            ("recipients", "pki@example.test\r\n\r\nsec@example.test"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/system/email#alerts");
    let set = alerts(&server, &admin).await;
    assert_eq!(
        set,
        json!({"enabled": true, "thresholds": [60, 10],
               "recipients": ["pki@example.test", "sec@example.test"]})
    );
    for (thresholds, recipients, why) in [
        ("0", "pki@example.test", "thresholds: give 1 to 10"),
        (
            "a week",
            "pki@example.test",
            "thresholds must be a whole number",
        ),
        ("30", "not an address", "is not an email address"),
    ] {
        let response = post_form(
            &client,
            server.url("/system/email/expiry-alerts"),
            cookie,
            &[
                ("csrf_token", csrf),
                ("enabled", "1"),
                ("thresholds", thresholds),
                ("recipients", recipients),
            ],
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{thresholds} {recipients}"
        );
        assert!(response.text().await?.contains(why), "{why}");
    }
    assert_eq!(alerts(&server, &admin).await, set);

    // A check now: what it found is on the page and in the mail.
    let (status, body) = crate::common::post(
        &server,
        &admin,
        "/api/v2/certificates",
        json!({"common_name": "soon.example.test", "validity_days": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let response = post_form(
        &client,
        server.url("/system/email/expiry-alerts/check"),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    assert!(
        html.contains(r#"id="check-result""#)
            && html.contains("1 new notice,")
            && html.contains("Certificate soon.example.test: within 10 days"),
        "{html}"
    );
    let got = smtp.take()?;
    let pki = got
        .iter()
        .find(|m| m.to == "pki@example.test")
        .ok_or(format!("no mail to pki: {got:?}"))?;
    assert!(pki.text.contains("soon.example.test"), "{pki:?}");
    let response = post_form(
        &client,
        server.url("/system/email/expiry-alerts/check"),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert!(
        response
            .text()
            .await?
            .contains("0 new notices, 0 messages sent"),
        "announced once"
    );

    // No token, no change.
    let response = post_form(
        &client,
        server.url("/system/email/expiry-alerts"),
        cookie,
        &[("enabled", "1"), ("thresholds", "5")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = post_form(
        &client,
        server.url("/system/email/smtp"),
        cookie,
        &[("csrf_token", "forged"), ("host", "mail.evil.example")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(alerts(&server, &admin).await, set);
    assert_eq!(email(&server, &admin).await["host"], "127.0.0.1");
    Ok(())
}

#[tokio::test]
async fn without_admin_system_there_is_no_email_page() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let before = (email(&server, &admin).await, alerts(&server, &admin).await);
    server.user(&admin, "aude", "auditor").await;
    let auditor = server.login("aude", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(auditor.cookie.as_str());
    let response = get(&client, server.url("/system/email"), cookie).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let html = response.text().await?;
    assert!(!html.contains("/system/email"), "no form, no link: {html}");
    let dashboard = get(&client, server.url("/"), cookie).await.text().await?;
    assert!(!dashboard.contains(r#"href="/system/email""#));
    for (path, fields) in [
        (
            "/system/email/smtp",
            vec![
                ("host", "mail.evil.example"),
                ("port", "25"),
                ("enabled", "1"),
            ],
        ),
        ("/system/email/test", vec![("to", "ops@example.test")]),
        (
            "/system/email/expiry-alerts",
            vec![("thresholds", "5"), ("recipients", "aude@example.test")],
        ),
        ("/system/email/expiry-alerts/check", vec![]),
    ] {
        let mut fields = fields;
        fields.push(("csrf_token", auditor.csrf.as_str()));
        let response = post_form(&client, server.url(path), cookie, &fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        (email(&server, &admin).await, alerts(&server, &admin).await),
        before
    );
    Ok(())
}
