//! The console's webhook pages: an endpoint registered, changed, switched, tested, given a
//! new secret and deleted from their forms and seen so through the REST API, the secret
//! shown only on the page that made it (and verified by the receiver), a delivery log with
//! a dead delivery requeued, refusals that change nothing, a forged form, and what a user
//! without `admin:system` gets.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form, rest};
use crate::jobs::run_job;
use crate::webhooks::{Receiver, lab, verified};

/// The secret a page shows, if any.
fn shown_secret(html: &str) -> Option<String> {
    let start =
        html.find(r#"<p class="mono" id="secret">"#)? + r#"<p class="mono" id="secret">"#.len();
    let end = html[start..].find("</p>")?;
    Some(html[start..start + end].to_owned())
}

/// The webhook with id `id` through the REST API.
async fn hook(server: &TestServer, admin: &Session, id: i64) -> Value {
    rest(server, admin, &format!("/api/v2/webhooks/{id}")).await
}

#[tokio::test]
async fn an_admin_manages_a_webhook_from_the_console() -> TestResult {
    let server = lab().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();
    let receiver = Receiver::start().await;

    let response = get(&client, server.url("/system/webhooks"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(
        html.contains(r#"<a href="/system/webhooks" aria-current="page">Webhooks</a>"#),
        "{html}"
    );
    assert!(html.contains("No webhooks yet"), "{html}");
    for event in ["certificate_issued", "user_login_failed_lockout"] {
        assert!(
            html.contains(&format!(r#"name="events" value="{event}""#)),
            "{event}: {html}"
        );
    }

    // Refused: a private target is fine here, but a bad header line is not; nothing is made
    // and the form keeps what was typed.
    let response = post_form(
        &client,
        server.url("/system/webhooks"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("name", "ops"),
            ("url", &receiver.url),
            ("headers", "no colon on this line"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(
        html.contains(r#"id="webhooks-error""#) && html.contains("no colon on this line"),
        "{html}"
    );
    assert!(
        html.contains(&receiver.url),
        "the form keeps the URL: {html}"
    );
    assert_eq!(rest(&server, &admin, "/api/v2/webhooks").await, json!([]));

    // Made: the secret is on the answer, and nowhere else.
    let response = post_form(
        &client,
        server.url("/system/webhooks"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("name", "ops"),
            ("url", &receiver.url),
            ("events", "certificate_issued"),
            ("events", "ca_created"),
            ("headers", "X-Team: pki\nX-Env: lab"),
            ("enabled", "1"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let html = response.text().await?;
    let secret = shown_secret(&html).ok_or(format!("no secret shown: {html}"))?;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let list = rest(&server, &admin, "/api/v2/webhooks").await;
    let id = list[0]["id"].as_i64().ok_or("id")?;
    assert_eq!(list[0]["name"], "ops");
    assert_eq!(list[0]["url"], receiver.url.as_str());
    assert_eq!(
        list[0]["events"],
        json!(["certificate_issued", "ca_created"])
    );
    assert_eq!(list[0]["ca_filter"], json!([]));
    assert_eq!(
        list[0]["custom_headers"],
        json!({"X-Env": "lab", "X-Team": "pki"})
    );
    assert_eq!(list[0]["enabled"], true);
    for path in [
        "/system/webhooks".to_owned(),
        format!("/system/webhooks/{id}"),
    ] {
        let response = get(&client, server.url(&path), cookie).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        let html = response.text().await?;
        assert_strict_page(&headers, &html);
        assert!(!html.contains(&secret), "{path} shows the secret: {html}");
        assert!(html.contains(&receiver.url), "{path}: {html}");
    }

    // A test event now, signed with the secret shown.
    let response = post_form(
        &client,
        server.url(&format!("/system/webhooks/{id}/test")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    assert!(
        html.contains(r#"id="test-result""#)
            && html.contains("Delivered: the receiver answered HTTP 200"),
        "{html}"
    );
    assert!(html.contains("receiver says hello"), "the excerpt: {html}");
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let payload = verified(&received[0].0, &received[0].1, &secret)?;
    assert_eq!(payload["type"], "test", "{payload}");
    assert_eq!(received[0].0["x-team"], "pki");

    // Changed: the box unticked turns it off; what the form holds is what it becomes.
    let response = post_form(
        &client,
        server.url(&format!("/system/webhooks/{id}")),
        cookie,
        &[
            ("csrf_token", csrf),
            ("name", "ops renamed"),
            ("url", &receiver.url),
            ("events", "crl_published"),
            ("headers", "X-Team: pki"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/system/webhooks/{id}"));
    let changed = hook(&server, &admin, id).await;
    assert_eq!(changed["name"], "ops renamed");
    assert_eq!(changed["events"], json!(["crl_published"]));
    assert_eq!(changed["custom_headers"], json!({"X-Team": "pki"}));
    assert_eq!(changed["enabled"], false);
    let html = get(
        &client,
        server.url(&format!("/system/webhooks/{id}")),
        cookie,
    )
    .await
    .text()
    .await?;
    assert!(
        html.contains(r#"id="event-crl_published" name="events" value="crl_published" checked"#)
            && !html.contains(r#"value="certificate_issued" checked"#),
        "the form shows the endpoint as it is: {html}"
    );

    // Refused changes change nothing.
    for (fields, why) in [
        (
            vec![("name", ""), ("url", receiver.url.as_str())],
            "1 to 100 characters",
        ),
        (
            vec![("name", "x"), ("url", "ftp://example.com/")],
            "not ftp",
        ),
        (
            vec![
                ("name", "x"),
                ("url", receiver.url.as_str()),
                ("headers", "Idempotency-Key: mine"),
            ],
            "the header Idempotency-Key is certmint",
        ),
    ] {
        let mut fields = fields;
        fields.push(("csrf_token", csrf));
        let response = post_form(
            &client,
            server.url(&format!("/system/webhooks/{id}")),
            cookie,
            &fields,
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        let html = response.text().await?;
        assert!(
            html.contains(r#"id="webhook-error""#) && html.contains(why),
            "{why}: {html}"
        );
    }
    assert_eq!(hook(&server, &admin, id).await, changed);

    // Switched back on.
    let response = post_form(
        &client,
        server.url(&format!("/system/webhooks/{id}/toggle")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(hook(&server, &admin, id).await["enabled"], true);

    // A new secret: shown once, the old one no longer signs.
    let response = post_form(
        &client,
        server.url(&format!("/system/webhooks/{id}/secret")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    let renewed = shown_secret(&html).ok_or(format!("no new secret shown: {html}"))?;
    assert_ne!(renewed, secret);
    let html = get(
        &client,
        server.url(&format!("/system/webhooks/{id}")),
        cookie,
    )
    .await
    .text()
    .await?;
    assert!(
        !html.contains(&renewed) && shown_secret(&html).is_none(),
        "{html}"
    );
    post_form(
        &client,
        server.url(&format!("/system/webhooks/{id}/test")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    verified(&received[1].0, &received[1].1, &renewed)?;
    assert!(verified(&received[1].0, &received[1].1, &secret).is_err());

    // No token, no change.
    let response = post_form(
        &client,
        server.url(&format!("/system/webhooks/{id}/toggle")),
        cookie,
        &[("csrf_token", "forged")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = post_form(
        &client,
        server.url(&format!("/system/webhooks/{id}/delete")),
        cookie,
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(hook(&server, &admin, id).await["enabled"], true);

    // Deleted.
    let response = post_form(
        &client,
        server.url(&format!("/system/webhooks/{id}/delete")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/system/webhooks");
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/v2/webhooks/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let response = get(
        &client,
        server.url(&format!("/system/webhooks/{id}")),
        cookie,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let auth = Auth::Session(&admin);
    for action in [
        "webhook_created",
        "webhook_updated",
        "webhook_secret_regenerated",
        "webhook_deleted",
    ] {
        assert!(
            server.audit_total(&auth, &format!("action={action}")).await >= 1,
            "{action} audited"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_delivery_log_shows_a_dead_delivery_and_requeues_it() -> TestResult {
    let server = lab().await;
    let admin = server.admin().await;
    let client = browser(&server);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = format!("http://127.0.0.1:{closed}/hook");
    let response = post_form(
        &client,
        server.url("/system/webhooks"),
        Some(admin.cookie.as_str()),
        &[
            ("csrf_token", admin.csrf.as_str()),
            ("name", "down"),
            ("url", &url),
            ("events", "certificate_issued"),
            ("enabled", "1"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let list = rest(&server, &admin, "/api/v2/webhooks").await;
    let id = list[0]["id"].as_i64().ok_or("id")?;
    let response = get(
        &client,
        server.url(&format!("/system/webhooks/{id}")),
        Some(admin.cookie.as_str()),
    )
    .await;
    assert!(response.text().await?.contains("No deliveries yet"));

    let (status, issued) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &Auth::Session(&admin),
            Some(json!({"common_name": "log.example.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    run_job(&server, &admin, "webhook_delivery").await?;
    let log = rest(
        &server,
        &admin,
        &format!("/api/v2/webhooks/{id}/deliveries"),
    )
    .await;
    assert_eq!(log[0]["status"], "failed", "{log}");
    let delivery = log[0]["id"].as_i64().ok_or("delivery id")?;
    let html = get(
        &client,
        server.url(&format!("/system/webhooks/{id}")),
        Some(admin.cookie.as_str()),
    )
    .await
    .text()
    .await?;
    let row = html
        .split(&format!(r#"<tr id="delivery-{delivery}">"#))
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .ok_or(format!("no row for delivery {delivery}: {html}"))?
        .to_owned();
    assert!(row.contains("certificate_issued"), "{row}");
    assert!(
        row.contains(r#"<span class="badge failed">failed</span>"#),
        "{row}"
    );
    assert!(row.contains("<td>1</td>"), "one attempt: {row}");
    assert!(row.contains(" ms"), "the latency: {row}");
    assert!(
        row.contains(r#"<span class="error">"#),
        "why it failed: {row}"
    );
    assert!(
        !row.contains("/requeue"),
        "only a dead delivery is requeued: {row}"
    );

    // Four more failures, past each backoff: dead.
    for _ in 0..4 {
        server.clock.advance(time::Duration::minutes(6));
        run_job(&server, &admin, "webhook_delivery").await?;
    }
    let admin = server.admin().await;
    let cookie = Some(admin.cookie.as_str());
    let log = rest(
        &server,
        &admin,
        &format!("/api/v2/webhooks/{id}/deliveries"),
    )
    .await;
    assert_eq!(
        (log[0]["status"].as_str(), log[0]["attempts"].as_i64()),
        (Some("dead"), Some(5)),
        "{log}"
    );
    let html = get(&client, server.url("/system/webhooks"), cookie)
        .await
        .text()
        .await?;
    assert!(
        html.contains(
            r#"<span class="badge dead">dead</span> <span class="mono">certificate_issued</span>"#
        ),
        "the list shows the latest delivery: {html}"
    );
    let html = get(
        &client,
        server.url(&format!("/system/webhooks/{id}")),
        cookie,
    )
    .await
    .text()
    .await?;
    let requeue = format!("/system/webhooks/{id}/deliveries/{delivery}/requeue");
    assert!(html.contains(&format!(r#"action="{requeue}""#)), "{html}");
    assert!(html.contains("<td>5</td>"), "{html}");

    // Requeued, and sent to a receiver that is up now.
    let receiver = Receiver::start().await;
    let response = post_form(
        &client,
        server.url(&format!("/system/webhooks/{id}")),
        cookie,
        &[
            ("csrf_token", admin.csrf.as_str()),
            ("name", "down no more"),
            ("url", &receiver.url),
            ("events", "certificate_issued"),
            ("enabled", "1"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = post_form(
        &client,
        server.url(&requeue),
        cookie,
        &[("csrf_token", admin.csrf.as_str())],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        format!("/system/webhooks/{id}#delivery-{delivery}")
    );
    let log = rest(
        &server,
        &admin,
        &format!("/api/v2/webhooks/{id}/deliveries"),
    )
    .await;
    assert_eq!(log[0]["status"], "pending", "{log}");
    run_job(&server, &admin, "webhook_delivery").await?;
    assert_eq!(receiver.received().len(), 1);
    let html = get(
        &client,
        server.url(&format!("/system/webhooks/{id}")),
        cookie,
    )
    .await
    .text()
    .await?;
    assert!(
        html.contains(r#"<span class="badge delivered">delivered</span>"#)
            && html.contains("HTTP 200")
            && html.contains("receiver says hello"),
        "{html}"
    );

    // A delivery that is not dead is not requeued.
    let response = post_form(
        &client,
        server.url(&requeue),
        cookie,
        &[("csrf_token", admin.csrf.as_str())],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.text().await?.contains("only dead deliveries"));
    Ok(())
}

#[tokio::test]
async fn without_admin_system_there_are_no_webhook_pages_or_forms() -> TestResult {
    let server = lab().await;
    let admin = server.admin().await;
    let (status, made) = server
        .call(
            Method::POST,
            "/api/v2/webhooks",
            &Auth::Session(&admin),
            Some(json!({"name": "ops", "url": "https://hooks.example.com/x"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["data"]["id"].as_i64().ok_or("id")?;
    let before = hook(&server, &admin, id).await;
    server.user(&admin, "otto", "operator").await;
    let operator = server.login("otto", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(operator.cookie.as_str());
    for path in [
        "/system/webhooks".to_owned(),
        format!("/system/webhooks/{id}"),
    ] {
        let response = get(&client, server.url(&path), cookie).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let html = response.text().await?;
        assert!(
            !html.contains("/system/webhooks"),
            "no form, no link: {html}"
        );
        assert!(!html.contains("hooks.example.com"), "{html}");
    }
    let dashboard = get(&client, server.url("/"), cookie).await.text().await?;
    assert!(!dashboard.contains(r#"href="/system/webhooks""#));
    for path in [
        "/system/webhooks".to_owned(),
        format!("/system/webhooks/{id}"),
        format!("/system/webhooks/{id}/toggle"),
        format!("/system/webhooks/{id}/delete"),
        format!("/system/webhooks/{id}/test"),
        format!("/system/webhooks/{id}/secret"),
        format!("/system/webhooks/{id}/deliveries/1/requeue"),
    ] {
        let response = post_form(
            &client,
            server.url(&path),
            cookie,
            &[
                ("csrf_token", operator.csrf.as_str()),
                ("name", "taken over"),
                ("url", "https://evil.example.com/"),
            ],
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let html = response.text().await?;
        assert!(!html.contains("whsec_"), "{path}: {html}");
    }
    assert_eq!(hook(&server, &admin, id).await, before);
    assert_eq!(
        rest(&server, &admin, "/api/v2/webhooks")
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_webhook_is_not_found() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let response = get(
        &client,
        server.url("/system/webhooks/4242"),
        Some(admin.cookie.as_str()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = post_form(
        &client,
        server.url("/system/webhooks/4242/toggle"),
        Some(admin.cookie.as_str()),
        &[("csrf_token", admin.csrf.as_str())],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    Ok(())
}
