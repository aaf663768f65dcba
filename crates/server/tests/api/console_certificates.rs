//! The console's certificate pages: the list and its filters, issuance from the form (with
//! the refusal beside its field), export, renewal and revocation, and what a viewer, a forged
//! form and a visitor without a session get.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

use crate::common::{ADMIN_PASSWORD, Auth, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form};

/// The id in a `/certificates/{id}` redirect.
fn issued_id(response: &reqwest::Response) -> i64 {
    let to = location(response);
    to.strip_prefix("/certificates/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a certificate page: {to}"))
}

async fn count(server: &TestServer, session: &crate::common::Session) -> i64 {
    let (status, body) = server
        .call(
            reqwest::Method::GET,
            "/api/v2/certificates/stats",
            &Auth::Session(session),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["total"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn an_operator_issues_exports_renews_and_revokes_from_the_console() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let response = get(&client, server.url("/certificates/new"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains(r#"<label for="common_name">"#), "{html}");

    // A refusal comes back beside the field it names, the values kept, nothing issued.
    let before = count(&server, &admin).await;
    let response = post_form(
        &client,
        server.url("/certificates/new"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("common_name", "web.console.test"),
            ("san", "dns:"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains(r#"id="san-error""#), "{html}");
    assert!(html.contains(r#"value="web.console.test""#), "{html}");
    assert_eq!(count(&server, &admin).await, before);

    let response = post_form(
        &client,
        server.url("/certificates/new"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("common_name", "web.console.test"),
            ("san", "web.console.test\n10.1.2.3"),
            ("key_algorithm", "EC P-384"),
            ("validity_days", "5"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let id = issued_id(&response);
    let page = format!("/certificates/{id}");
    let html = get(&client, server.url(&page), cookie).await.text().await?;
    for shown in [
        "<h1>web.console.test</h1>",
        "dns:web.console.test",
        "ip:10.1.2.3",
        "EC P-384",
        r#"<span class="badge active" id="status">active</span>"#,
        r#"action="/certificates/"#,
        "Revoke",
        r#"<option value="pkcs12">"#,
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }
    // The chain, from the issuing CA up to the root.
    let chain = html
        .split(r#"<ol class="chain">"#)
        .nth(1)
        .and_then(|rest| rest.split("</ol>").next())
        .unwrap_or_default();
    let issuing = chain.find("certmint Issuing CA");
    let root = chain.find("certmint Root CA");
    assert!(issuing.is_some() && issuing < root, "{chain}");

    // The list finds it by name, and by its expiry window.
    for (query, listed) in [
        ("search=web.console", true),
        ("status=expiring&days=7", true),
        ("status=expiring&days=3", false),
        ("status=revoked", false),
        (
            "key_type=EC+P-384&san_type=ip&source=api&has_key=true",
            true,
        ),
        ("key_type=EC+P-256", false),
        ("san_type=email", false),
        ("renewed=true", false),
        ("source=acme", false),
        ("sort=valid_until&order=asc&renewed=false", true),
    ] {
        let html = get(
            &client,
            server.url(&format!("/certificates?{query}")),
            cookie,
        )
        .await
        .text()
        .await?;
        assert_eq!(
            html.contains(&format!(r#"href="{page}""#)),
            listed,
            "{query}: {html}"
        );
    }
    let response = get(&client, server.url("/certificates?status=bogus"), cookie).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await?.contains("unknown status"));
    // The filters chosen stay chosen, and a value the form does not offer is refused.
    let html = get(
        &client,
        server.url("/certificates?key_type=EC+P-384&san_type=ip&sort=valid_until"),
        cookie,
    )
    .await
    .text()
    .await?;
    for chosen in [
        r#"<option value="EC P-384" selected>"#,
        r#"<option value="ip" selected>"#,
        r#"<option value="valid_until" selected>"#,
    ] {
        assert!(html.contains(chosen), "{chosen} missing: {html}");
    }
    let response = get(&client, server.url("/certificates?has_key=maybe"), cookie).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await?.contains("has_key must be"));

    // PKCS#12 needs a password of 8 characters; the refusal is beside the export form.
    let export = format!("/certificates/{id}/export");
    let response = post_form(
        &client,
        server.url(&export),
        cookie,
        &[
            ("csrf_token", csrf),
            ("format", "pkcs12"),
            ("password", "short"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await?.contains(r#"id="export-error""#));
    let response = post_form(
        &client,
        server.url(&export),
        cookie,
        &[
            ("csrf_token", csrf),
            ("format", "pkcs12"),
            ("password", "long enough"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/x-pkcs12");
    assert!(response.bytes().await?.len() > 500);

    // Renewal makes a new certificate that names the old one.
    let response = post_form(
        &client,
        server.url(&format!("/certificates/{id}/renew")),
        cookie,
        &[("csrf_token", csrf), ("new_key", "1")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let renewed = issued_id(&response);
    assert_ne!(renewed, id);
    let html = get(
        &client,
        server.url(&format!("/certificates/{renewed}")),
        cookie,
    )
    .await
    .text()
    .await?;
    assert!(html.contains(&format!(r#"<a href="{page}">"#)), "{html}");
    let html = get(&client, server.url(&page), cookie).await.text().await?;
    assert!(
        html.contains(&format!(
            r#"<dt>Renewed by</dt><dd><ul class="plain"><li><a href="/certificates/{renewed}">"#
        )),
        "the original names its renewal: {html}"
    );

    // A forged form changes nothing.
    let revoke = format!("/certificates/{id}/revoke");
    let response = post_form(
        &client,
        server.url(&revoke),
        cookie,
        &[("csrf_token", "forged"), ("reason", "keyCompromise")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = post_form(
        &client,
        server.url(&revoke),
        cookie,
        &[("reason", "keyCompromise")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // A hold, its release, then revocation for good.
    for (reason, badge) in [
        ("certificateHold", "revoked"),
        ("removeFromCRL", "active"),
        ("keyCompromise", "revoked"),
    ] {
        let response = post_form(
            &client,
            server.url(&revoke),
            cookie,
            &[("csrf_token", csrf), ("reason", reason)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{reason}");
        assert_eq!(location(&response), page);
        let html = get(&client, server.url(&page), cookie).await.text().await?;
        assert!(
            html.contains(&format!(r#"<span class="badge {badge}" id="status">"#)),
            "{reason}: {html}"
        );
    }
    let html = get(&client, server.url(&page), cookie).await.text().await?;
    assert!(html.contains("keyCompromise"), "{html}");
    assert!(
        !html.contains(">Revoke</button>"),
        "revoked for good: {html}"
    );
    // Revoking again is refused with the reason, beside the revocation form.
    let response = post_form(
        &client,
        server.url(&revoke),
        cookie,
        &[("csrf_token", csrf), ("reason", "superseded")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = get(&client, server.url("/certificates?status=revoked"), cookie)
        .await
        .text()
        .await?;
    assert!(html.contains(&format!(r#"href="{page}""#)), "{html}");
    Ok(())
}

#[tokio::test]
async fn a_viewer_sees_no_actions_and_the_server_refuses_them() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "vera", "viewer").await;
    let (status, body) = server
        .call(
            reqwest::Method::POST,
            "/api/v2/certificates",
            &Auth::Session(&admin),
            Some(serde_json::json!({"common_name": "kept.console.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_i64().unwrap_or_default();
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(vera.cookie.as_str());

    let html = get(&client, server.url("/certificates"), cookie)
        .await
        .text()
        .await?;
    assert!(html.contains("kept.console.test"), "{html}");
    assert!(!html.contains("Issue a certificate"), "{html}");
    let page = format!("/certificates/{id}");
    let html = get(&client, server.url(&page), cookie).await.text().await?;
    assert!(html.contains("kept.console.test"), "{html}");
    for hidden in ["/revoke", "/renew", r#"value="pkcs12""#] {
        assert!(!html.contains(hidden), "a viewer sees {hidden}: {html}");
    }

    // The viewer's own valid token does not stand in for the permission.
    let response = post_form(
        &client,
        server.url(&format!("{page}/revoke")),
        cookie,
        &[("csrf_token", &vera.csrf), ("reason", "keyCompromise")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await?.contains("delete:certificates"));
    let response = get(&client, server.url("/certificates/new"), cookie).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = post_form(
        &client,
        server.url(&format!("{page}/export")),
        cookie,
        &[
            ("csrf_token", &vera.csrf),
            ("format", "pkcs12"),
            ("password", "long enough"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let html = get(&client, server.url(&page), cookie).await.text().await?;
    assert!(
        html.contains(r#"<span class="badge active" id="status">"#),
        "{html}"
    );

    // Without a session, to the login page and back.
    let response = get(&client, server.url(&page), None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        format!("/login?next=%2Fcertificates%2F{id}")
    );
    // An API key, however broad, opens no console page: the console is for sessions.
    let (_, key) = server.api_key(&admin, &["read:certificates"]).await;
    let response = client
        .get(server.url(&page))
        .bearer_auth(&key)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = get(
        &client,
        server.url("/certificates/999999"),
        Some(&admin.cookie),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    Ok(())
}

/// The work page of a bulk action, once it says it has finished (within ten seconds).
async fn finished_work(
    client: &reqwest::Client,
    server: &TestServer,
    cookie: &str,
    page: &str,
) -> String {
    for _ in 0..100 {
        let html = get(client, server.url(page), Some(cookie))
            .await
            .text()
            .await
            .unwrap_or_default();
        if html.contains("Finished:") {
            return html;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{page} did not finish");
}

#[tokio::test]
async fn bulk_actions_run_after_the_answer_and_end_with_a_summary() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = admin.cookie.as_str();
    let mut ids = Vec::new();
    for name in ["one", "two", "three", "four"] {
        let (status, body) = server
            .call(
                reqwest::Method::POST,
                "/api/v2/certificates",
                &Auth::Session(&admin),
                Some(serde_json::json!({"common_name": format!("{name}.bulk.test")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["data"]["id"].as_i64().unwrap_or_default().to_string());
    }
    // The third is revoked already: the bulk revocation reports it and goes on.
    let (status, _) = server
        .call(
            reqwest::Method::POST,
            &format!("/api/v2/certificates/{}/revoke", ids[2]),
            &Auth::Session(&admin),
            Some(serde_json::json!({"reason": "keyCompromise"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let html = get(&client, server.url("/certificates"), Some(cookie))
        .await
        .text()
        .await?;
    assert!(
        html.contains(&format!(r#"name="id" value="{}""#, ids[0])),
        "{html}"
    );
    assert!(html.contains(r#"<option value="revoke">"#), "{html}");

    let mut fields = vec![("csrf_token", admin.csrf.as_str())];
    fields.extend(ids[..3].iter().map(|id| ("id", id.as_str())));
    fields.extend([("action", "revoke"), ("reason", "superseded")]);
    let response = post_form(
        &client,
        server.url("/certificates/bulk"),
        Some(cookie),
        &fields,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let work = location(&response);
    assert!(work.starts_with("/work/"), "{work}");
    let html = finished_work(&client, &server, cookie, &work).await;
    assert!(html.contains("Finished: 2 of 3 done, 1 refused."), "{html}");
    assert!(
        html.contains(&format!(
            r#"<a href="/certificates/{}">certificate {}</a>: "#,
            ids[2], ids[2]
        )),
        "{html}"
    );
    for id in &ids[..2] {
        let (_, body) = server
            .call(
                reqwest::Method::GET,
                &format!("/api/v2/certificates/{id}"),
                &Auth::Session(&admin),
                None,
            )
            .await;
        assert_eq!(body["data"]["revocation_reason"], "superseded", "{body}");
    }

    // Renewal of the fourth, and a ZIP of two.
    let renew = [
        ("csrf_token", admin.csrf.as_str()),
        ("id", ids[3].as_str()),
        ("action", "renew"),
    ];
    let response = post_form(
        &client,
        server.url("/certificates/bulk"),
        Some(cookie),
        &renew,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let html = finished_work(&client, &server, cookie, &location(&response)).await;
    assert!(html.contains("Finished: 1 of 1 done."), "{html}");
    let export = [
        ("csrf_token", admin.csrf.as_str()),
        ("id", ids[0].as_str()),
        ("id", ids[1].as_str()),
        ("action", "export"),
    ];
    let response = post_form(
        &client,
        server.url("/certificates/bulk"),
        Some(cookie),
        &export,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/zip");

    // Nothing ticked, or an id twice: refused with the reason.
    let response = post_form(
        &client,
        server.url("/certificates/bulk"),
        Some(cookie),
        &[("csrf_token", admin.csrf.as_str()), ("action", "renew")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response
            .text()
            .await?
            .contains("tick 1 to 1000 certificates")
    );

    // A viewer may download but not revoke, and cannot watch another's work.
    server.user(&admin, "vera", "viewer").await;
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let html = get(&client, server.url("/certificates"), Some(&vera.cookie))
        .await
        .text()
        .await?;
    assert!(!html.contains(r#"<option value="revoke">"#), "{html}");
    let mut forged = vec![("csrf_token", vera.csrf.as_str())];
    forged.extend([("id", ids[3].as_str()), ("action", "revoke")]);
    let response = post_form(
        &client,
        server.url("/certificates/bulk"),
        Some(&vera.cookie),
        &forged,
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = get(&client, server.url(&work), Some(&vera.cookie)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = get(&client, server.url(&work), None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    Ok(())
}

#[tokio::test]
async fn certificates_made_elsewhere_are_imported_with_a_summary() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let key = rcgen::KeyPair::generate()?;
    let pem = rcgen::CertificateParams::new(vec!["elsewhere.import.test".to_owned()])?
        .self_signed(&key)?
        .pem();
    let response = get(&client, server.url("/certificates/import"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_strict_page(&headers, &response.text().await?);
    let fields = [
        ("csrf_token", admin.csrf.as_str()),
        ("certificate", pem.as_str()),
        ("private_key", &key.serialize_pem()),
        ("name", "from the old CA"),
    ];
    let response = post_form(&client, server.url("/certificates/import"), cookie, &fields).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let html = response.text().await?;
    assert!(html.contains("Imported 0 CAs and 1 certificate"), "{html}");
    assert!(html.contains("(with its key)"), "{html}");
    assert!(
        !html.contains("PRIVATE KEY"),
        "the pasted key is not shown again: {html}"
    );
    let listed = get(
        &client,
        server.url("/certificates?search=elsewhere"),
        cookie,
    )
    .await
    .text()
    .await?;
    assert!(
        listed.contains(">1 certificate</p>"),
        "found by its SAN: {listed}"
    );
    // The same again is known already; a viewer may not import.
    let response = post_form(&client, server.url("/certificates/import"), cookie, &fields).await;
    assert!(response.status().is_client_error(), "{}", response.status());
    server.user(&admin, "vera", "viewer").await;
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let response = post_form(
        &client,
        server.url("/certificates/import"),
        Some(&vera.cookie),
        &[("csrf_token", &vera.csrf), ("certificate", &pem)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    Ok(())
}

#[tokio::test]
async fn owners_tags_and_locations_are_kept_from_the_certificate_page() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = admin.cookie.as_str();
    let csrf = admin.csrf.as_str();
    let mut ids = Vec::new();
    for name in ["one.records.test", "two.records.test"] {
        let (status, body) = server
            .call(
                reqwest::Method::POST,
                "/api/v2/certificates",
                &Auth::Session(&admin),
                Some(serde_json::json!({"common_name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["data"]["id"].as_i64().unwrap_or_default());
    }
    let ops = server.user(&admin, "ops-console", "operator").await;
    let (status, team) = server
        .call(
            reqwest::Method::POST,
            "/api/v2/groups",
            &Auth::Session(&admin),
            Some(serde_json::json!({"name": "platform"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let team = team["data"]["id"].as_i64().unwrap_or_default().to_string();
    let page = format!("/certificates/{}", ids[0]);

    // The page offers the owner and the team by name, and the forms.
    let response = get(&client, server.url(&page), Some(cookie)).await;
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    for shown in [
        r#"<option value="">None</option>"#,
        &format!(r#"<option value="{ops}">ops-console</option>"#),
        &format!(r#"<option value="{team}">platform</option>"#),
        "No locations recorded.",
        &format!(r#"action="{page}/records""#),
        &format!(r#"action="{page}/locations""#),
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }

    // Saved: owner, team, tags typed with commas and spaces, a description.
    let ops_id = ops.to_string();
    let response = post_form(
        &client,
        server.url(&format!("{page}/records")),
        Some(cookie),
        &[
            ("csrf_token", csrf),
            ("owner_id", &ops_id),
            ("team_id", &team),
            ("tags", "Prod, web  edge"),
            ("description", "the front door"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), page);
    let html = get(&client, server.url(&page), Some(cookie))
        .await
        .text()
        .await?;
    for shown in [
        r#"<dd id="owner">ops-console</dd>"#,
        r#"<dd id="team">platform</dd>"#,
        r#"<a class="tag" href="/certificates?tag=edge">edge</a>"#,
        r#"value="edge prod web""#,
        "the front door",
        &format!(r#"<option value="{ops}" selected>ops-console</option>"#),
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }
    // A bad tag comes back beside the form, nothing changed.
    let response = post_form(
        &client,
        server.url(&format!("{page}/records")),
        Some(cookie),
        &[("csrf_token", csrf), ("tags", "ok b@d!")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains(r#"id="records-error""#), "{html}");
    assert!(html.contains(r#"value="edge prod web""#), "{html}");

    // A location recorded, shown, and forgotten; a bad one refused beside its form.
    let response = post_form(
        &client,
        server.url(&format!("{page}/locations")),
        Some(cookie),
        &[
            ("csrf_token", csrf),
            ("host", "web1.records.test"),
            ("port", "443"),
            ("path", "/etc/ssl/web.pem"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = post_form(
        &client,
        server.url(&format!("{page}/locations")),
        Some(cookie),
        &[("csrf_token", csrf), ("host", "web2"), ("port", "99999")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains(r#"id="locations-error""#), "{html}");
    assert!(html.contains("web1.records.test"), "{html}");
    let (_, listed) = server
        .call(
            reqwest::Method::GET,
            &format!("/api/v2{page}/locations"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    let location_id = listed["data"][0]["id"].as_i64().unwrap_or_default();
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
    let response = post_form(
        &client,
        server.url(&format!("{page}/locations/{location_id}/delete")),
        Some(cookie),
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let html = get(&client, server.url(&page), Some(cookie))
        .await
        .text()
        .await?;
    assert!(html.contains("No locations recorded."), "{html}");

    // Tagged in bulk from the list, then found by the tag and the team filters.
    let second = ids[1].to_string();
    let first = ids[0].to_string();
    let response = post_form(
        &client,
        server.url("/certificates/bulk"),
        Some(cookie),
        &[
            ("csrf_token", csrf),
            ("id", &first),
            ("id", &second),
            ("action", "tag"),
            ("tag", "audit-2027"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let work = location(&response);
    let html = finished_work(&client, &server, cookie, &work).await;
    assert!(html.contains("Finished: 2 of 2 done"), "{html}");
    let listed = |query: String| {
        let (client, server) = (&client, &server);
        async move {
            get(
                client,
                server.url(&format!("/certificates?search=records.test&{query}")),
                Some(cookie),
            )
            .await
            .text()
            .await
            .unwrap_or_default()
        }
    };
    let html = listed("tag=AUDIT-2027".into()).await;
    assert!(html.contains("2 certificates"), "{html}");
    assert!(
        html.contains(r#"<span class="tag">audit-2027</span>"#),
        "{html}"
    );
    let html = listed(format!("team_id={team}")).await;
    assert!(html.contains("1 certificate</p>"), "{html}");
    assert!(
        html.contains(&format!(
            r#"<option value="{team}" selected>platform</option>"#
        )),
        "{html}"
    );
    let html = listed("tag=web".into()).await;
    assert!(
        html.contains(&format!(r#"href="/certificates/{first}""#)),
        "{html}"
    );
    assert!(
        !html.contains(&format!(r#"href="/certificates/{second}""#)),
        "{html}"
    );

    // A viewer sees the records but no form to change them, and the server refuses the post.
    server.user(&admin, "viewer-records", "viewer").await;
    let viewer = server.login("viewer-records", ADMIN_PASSWORD).await;
    let html = get(&client, server.url(&page), Some(viewer.cookie.as_str()))
        .await
        .text()
        .await?;
    // Without read:users, the team shows by id.
    assert!(
        html.contains(&format!(r#"<dd id="team">group {team}</dd>"#)),
        "{html}"
    );
    assert!(
        !html.contains(&format!(r#"action="{page}/records""#)),
        "{html}"
    );
    let response = post_form(
        &client,
        server.url(&format!("{page}/records")),
        Some(viewer.cookie.as_str()),
        &[("csrf_token", viewer.csrf.as_str()), ("tags", "mine")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    Ok(())
}

#[tokio::test]
async fn the_filters_shown_are_saved_as_a_view_and_opened_again() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = admin.cookie.as_str();
    let html = get(
        &client,
        server.url("/certificates?tag=prod&status=active&page=2"),
        Some(cookie),
    )
    .await
    .text()
    .await?;
    // The form saves the filters shown, not the page.
    assert!(
        html.contains(r#"<input type="hidden" name="query" value="status=active&#38;tag=prod">"#),
        "{html}"
    );
    assert!(!html.contains(r#"id="views""#), "no views yet: {html}");
    let response = post_form(
        &client,
        server.url("/certificates/views"),
        Some(cookie),
        &[
            ("csrf_token", admin.csrf.as_str()),
            ("name", "Live prod"),
            ("query", "status=active&tag=prod"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/certificates?status=active&tag=prod");
    let html = get(&client, server.url("/certificates"), Some(cookie))
        .await
        .text()
        .await?;
    assert!(
        html.contains(r#"<a href="/certificates?status=active&#38;tag=prod">Live prod</a>"#),
        "{html}"
    );
    // A query the list refuses is not saved.
    let response = post_form(
        &client,
        server.url("/certificates/views"),
        Some(cookie),
        &[
            ("csrf_token", admin.csrf.as_str()),
            ("name", "Broken"),
            ("query", "status=sleeping"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, views) = server
        .call(
            reqwest::Method::GET,
            "/api/v2/certificates/views",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(views["data"].as_array().map(Vec::len), Some(1), "{views}");
    let id = views["data"][0]["id"].as_i64().unwrap_or_default();
    let response = post_form(
        &client,
        server.url(&format!("/certificates/views/{id}/delete")),
        Some(cookie),
        &[("csrf_token", admin.csrf.as_str())],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let html = get(&client, server.url("/certificates"), Some(cookie))
        .await
        .text()
        .await?;
    assert!(!html.contains("Live prod"), "{html}");
    Ok(())
}
