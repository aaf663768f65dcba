//! The console's audit pages: what the console does shows up in the log with the REST list's
//! filters and pages, the chain's verification names the record a test tampered with, the
//! CSV download is the REST export's, and those without `read:audit` get none of it.

use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form};

/// The page at `path` for `cookie`, with its status.
async fn page(
    client: &reqwest::Client,
    server: &TestServer,
    path: &str,
    cookie: &str,
) -> (StatusCode, String) {
    let response = get(client, server.url(path), Some(cookie)).await;
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn what_the_console_does_is_listed_filtered_paged_and_exported() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = admin.cookie.as_str();

    // A user created from the console is in the log, by the console's admin.
    let response = post_form(
        &client,
        server.url("/users/new"),
        Some(cookie),
        &[
            ("csrf_token", &admin.csrf),
            ("username", "cora"),
            ("role", "auditor"),
            ("password", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let response = get(&client, server.url("/audit"), Some(cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    for shown in [
        "<h1>Audit log</h1>",
        r#"<a href="/audit" aria-current="page">Audit</a>"#,
        "Verify the chain",
        "Download as CSV",
        r#"<th scope="col">Action</th>"#,
        "user_created",
        "user &#39;cora&#39; created with role auditor",
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }

    // The REST list's filters.
    for (query, listed) in [
        ("action=user_created", true),
        ("action=user_created&username=admin", true),
        ("action=user_created&username=cora", false),
        ("action=user_created&success=false", false),
        ("search=cora", true),
        ("search=nobody-by-that-name", false),
        ("date_from=2000-01-01&date_to=2000-01-02", false),
        ("action=login_success", false),
    ] {
        let (status, html) = page(&client, &server, &format!("/audit?{query}"), cookie).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(
            html.contains("user &#39;cora&#39; created"),
            listed,
            "{query}: {html}"
        );
    }
    let (_, html) = page(&client, &server, "/audit?action=user_created", cookie).await;
    assert!(
        html.contains(r#"<option value="user_created" selected>"#),
        "{html}"
    );
    let rows = html.matches("<tr>").count() - 1;
    assert!(rows >= 1, "{html}");
    assert_eq!(
        html.matches(r#"<td class="mono">user_created</td>"#)
            .count(),
        rows,
        "only that action: {html}"
    );
    let (status, html) = page(&client, &server, "/audit?date_from=yesterday", cookie).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains(r#"<p class="error" role="alert">"#), "{html}");
    assert!(html.contains("date_from"), "{html}");

    // Pages of 50 keep their filters in their links.
    for _ in 0..51 {
        let (status, body) = server
            .call(
                Method::PATCH,
                "/api/v2/account/profile",
                &Auth::Session(&admin),
                Some(json!({"full_name": "Ada"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, html) = page(&client, &server, "/audit?action=profile_updated", cookie).await;
    assert!(html.contains("51 records, page 1 of 2"), "{html}");
    assert!(
        html.contains(r#"href="/audit?action=profile_updated&#38;page=2" rel="next""#),
        "{html}"
    );
    let (_, html) = page(
        &client,
        &server,
        "/audit?action=profile_updated&page=2",
        cookie,
    )
    .await;
    assert!(html.contains("page 2 of 2"), "{html}");
    assert!(
        html.contains(r#"href="/audit?action=profile_updated" rel="prev""#),
        "{html}"
    );
    assert_eq!(
        html.matches("<td class=\"mono\">profile_updated</td>")
            .count(),
        1
    );

    // The CSV is the REST export's: its header row and the record, the filters kept.
    assert!(html.contains(r#"<input type="hidden" name="action" value="profile_updated">"#));
    let response = post_form(
        &client,
        server.url("/audit/export"),
        Some(cookie),
        &[
            ("csrf_token", &admin.csrf),
            ("action", "user_created"),
            ("username", "admin"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "text/csv");
    assert_eq!(
        response.headers()[CONTENT_DISPOSITION],
        r#"attachment; filename="certmint-audit.csv""#
    );
    let csv = response.text().await?;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "id,timestamp,username,action,resource_type,resource_id,details,ip_address,\
             user_agent,success,prev_hash,hash"
        )
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert!(
        rows[0].contains(",admin,user_created,user,") && rows[0].contains("user 'cora' created"),
        "{csv}"
    );
    let rest = server
        .request(
            Method::GET,
            "/api/v2/audit/export?format=csv&action=user_created&username=admin",
            &Auth::Session(&admin),
            None,
        )
        .await
        .text()
        .await?;
    assert_eq!(rest, csv, "the REST export gives the same file");
    // Exporting is itself audited, as through the API.
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=audit_exported")
            .await,
        2
    );

    // A bad filter comes back on the page; a forged or absent token exports nothing.
    let response = post_form(
        &client,
        server.url("/audit/export"),
        Some(cookie),
        &[("csrf_token", &admin.csrf), ("date_to", "soon")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await?.contains("date_to"));
    for token in [Some("forged"), None] {
        let mut fields = vec![("action", "user_created")];
        fields.extend(token.map(|t| ("csrf_token", t)));
        let response = post_form(&client, server.url("/audit/export"), Some(cookie), &fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{token:?}");
    }
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=audit_exported")
            .await,
        2
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn verification_passes_an_intact_chain_and_names_a_tampered_record() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = admin.cookie.as_str();
    server.user(&admin, "hank", "viewer").await;
    server.user(&admin, "iris", "viewer").await;

    let response = get(&client, server.url("/audit/verify"), Some(cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(
        html.contains(r#"<span class="badge success">intact</span>"#),
        "{html}"
    );
    assert!(html.contains("The chain holds"), "{html}");
    assert!(!html.contains("The chain is broken"), "{html}");
    let (_, html) = page(
        &client,
        &server,
        "/audit/verify?start_id=2&end_id=3",
        cookie,
    )
    .await;
    assert!(html.contains("2 records checked, 2 to 3"), "{html}");
    assert!(html.contains(r#"value="2""#), "the range is kept: {html}");
    // "Every record" is offered, and kept when ticked; no checkpoint yet to start from.
    assert!(html.contains(r#"name="full" value="1">"#), "{html}");
    let (status, html) = page(&client, &server, "/audit/verify?full=1", cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"name="full" value="1" checked>"#), "{html}");
    assert!(html.contains("The chain holds"), "{html}");
    assert!(!html.contains(r#"id="from-checkpoint""#), "{html}");
    let (status, html) = page(&client, &server, "/audit/verify?start_id=two", cookie).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains(r#"id="range-error""#), "{html}");
    assert!(html.contains(r#"aria-invalid="true""#), "{html}");
    let (status, _) = page(
        &client,
        &server,
        "/audit/verify?start_id=5&end_id=2",
        cookie,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Someone with the database rewrites a record: the page names it, as the REST report does.
    let target = 3;
    let raw = server.raw_store().await;
    raw.execute_raw(&format!(
        "UPDATE audit_log SET details = 'forged' WHERE id = {target}"
    ))
    .await?;
    let (status, html) = page(&client, &server, "/audit/verify", cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("The chain is broken: 1 fault"), "{html}");
    assert!(
        html.contains(&format!(
            "<tr class=\"fault\"><td class=\"mono\">{target}</td><td>altered</td><td>record \
             {target} was altered: its content no longer matches its hash</td></tr>"
        )),
        "{html}"
    );
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/audit/verify",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let errors = body["data"]["errors"].as_array().ok_or("errors")?;
    assert!(!errors.is_empty());
    for fault in errors {
        let message = fault["message"].as_str().unwrap_or_default();
        assert!(html.contains(message), "{message} missing: {html}");
    }
    // A range after the record does not see it.
    let (_, html) = page(
        &client,
        &server,
        &format!("/audit/verify?start_id={}", target + 1),
        cookie,
    )
    .await;
    assert!(html.contains("The chain holds"), "{html}");

    // Re-hashing it moves the break to the next record's link; both are named.
    raw.execute_raw(&format!(
        "UPDATE audit_log SET hash = '{}' WHERE id = {target}",
        "ab".repeat(32)
    ))
    .await?;
    let (_, html) = page(&client, &server, "/audit/verify", cookie).await;
    assert!(
        html.contains(&format!(
            "<td class=\"mono\">{}</td><td>broken_link</td>",
            target + 1
        )),
        "{html}"
    );
    raw.close().await;
    server.stop().await;
    Ok(())
}

/// How many exports the log holds.
async fn exports(server: &TestServer, admin: &Session) -> i64 {
    server
        .audit_total(&Auth::Session(admin), "action=audit_exported")
        .await
}

#[tokio::test]
async fn only_those_who_read_the_audit_log_see_it() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "vera", "viewer").await;
    server.user(&admin, "aude", "auditor").await;
    let client = browser(&server);

    // A viewer has no link to it, and the pages and the export refuse the viewer's own token.
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let (_, html) = page(&client, &server, "/", &vera.cookie).await;
    assert!(!html.contains(r#"href="/audit""#), "{html}");
    for path in ["/audit", "/audit/verify"] {
        let (status, html) = page(&client, &server, path, &vera.cookie).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(html.contains("read:audit"), "{html}");
    }
    let response = post_form(
        &client,
        server.url("/audit/export"),
        Some(&vera.cookie),
        &[("csrf_token", &vera.csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(exports(&server, &admin).await, 0);

    // An auditor reads, verifies and exports it.
    let aude = server.login("aude", ADMIN_PASSWORD).await;
    let (status, html) = page(&client, &server, "/audit", &aude.cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"href="/audit""#), "{html}");
    let (status, _) = page(&client, &server, "/audit/verify", &aude.cookie).await;
    assert_eq!(status, StatusCode::OK);
    let response = post_form(
        &client,
        server.url("/audit/export"),
        Some(&aude.cookie),
        &[("csrf_token", &aude.csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(exports(&server, &admin).await, 1);
    let records: Value = server
        .call(
            Method::GET,
            "/api/v2/audit/logs?action=audit_exported",
            &Auth::Session(&admin),
            None,
        )
        .await
        .1;
    assert_eq!(records["data"][0]["username"], "aude");

    // Without a session, to the login page and back.
    let response = get(&client, server.url("/audit?action=x"), None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Faudit%3Faction%3Dx");
    server.stop().await;
    Ok(())
}
