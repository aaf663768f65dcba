//! The console's template pages: the list, a built-in template read-only (and the authority's
//! refusal of a forged change), creating a template that the issuance form then offers,
//! changing and deleting it, refusals beside their field, and what a viewer and a forged form
//! get.

use reqwest::{Method, StatusCode};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form};

/// The id of template `name`, through the REST API.
async fn template_id(server: &TestServer, admin: &Session, name: &str) -> Option<i64> {
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/templates",
            &Auth::Session(admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == name)
        .and_then(|t| t["id"].as_i64())
}

async fn count(server: &TestServer, admin: &Session) -> usize {
    let (_, body) = server
        .call(
            Method::GET,
            "/api/v2/templates",
            &Auth::Session(admin),
            None,
        )
        .await;
    body["data"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn built_in_templates_are_read_only_even_to_a_forged_form() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let response = get(&client, server.url("/templates"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    let id = template_id(&server, &admin, "TLS Server")
        .await
        .ok_or("no TLS Server")?;
    for shown in [
        r#"<a href="/templates" aria-current="page">Templates</a>"#,
        &format!(r#"<a href="/templates/{id}">TLS Server</a>"#),
        "built-in",
        "397",
        "New template",
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }

    let page = format!("/templates/{id}");
    let response = get(&client, server.url(&page), cookie).await;
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains("built-in, read-only"), "{html}");
    assert!(html.contains("serverAuth"), "{html}");
    for hidden in ["/edit", "/delete"] {
        assert!(!html.contains(hidden), "a built-in shows {hidden}: {html}");
    }
    // The form is not offered.
    let response = get(&client, server.url(&format!("{page}/edit")), cookie).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), page);

    // A forged change or deletion is refused by the authority, with its message.
    let response = post_form(
        &client,
        server.url(&format!("{page}/edit")),
        cookie,
        &[
            ("csrf_token", csrf),
            ("name", "TLS Server"),
            ("validity_days", "3000"),
            ("max_validity_days", "3650"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await?;
    assert!(
        html.contains("is a built-in template and cannot be changed or deleted"),
        "{html}"
    );
    assert!(html.contains(r#"role="alert""#), "{html}");
    let response = post_form(
        &client,
        server.url(&format!("{page}/delete")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(
        response
            .text()
            .await?
            .contains("is a built-in template and cannot be changed or deleted")
    );
    let (_, body) = server
        .call(
            Method::GET,
            &format!("/api/v2/templates/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(body["data"]["validity_days"], 365, "{body}");
    Ok(())
}

#[tokio::test]
async fn an_admin_creates_changes_and_deletes_a_template() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let response = get(&client, server.url("/templates/new"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    for shown in [
        r#"<label for="name">"#,
        r#"value="365""#,
        r#"name="key_usage" value="keyCertSign""#,
        r#"name="extended_key_usage" value="OCSPSigning""#,
        r#"<label for="other_extended_key_usage">"#,
        r#"name="san_types" value="email""#,
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }

    // Refusals come back beside their field, the values kept, nothing created.
    let before = count(&server, &admin).await;
    for (field, value, error) in [
        ("max_validity_days", "5", "max_validity_days-error"),
        (
            "other_extended_key_usage",
            "not-an-oid",
            "extended_key_usage-error",
        ),
        ("path_length", "1", "path_length-error"),
    ] {
        let response = post_form(
            &client,
            server.url("/templates/new"),
            cookie,
            &[
                ("csrf_token", csrf),
                ("name", "Internal web"),
                ("validity_days", "10"),
                ("key_usage", "digitalSignature"),
                (field, value),
            ],
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}"
        );
        let html = response.text().await?;
        assert!(
            html.contains(&format!(r#"id="{error}""#)),
            "{field}: {html}"
        );
        assert!(html.contains(r#"aria-invalid="true""#), "{html}");
        assert!(html.contains(r#"value="Internal web""#), "{html}");
    }
    assert_eq!(count(&server, &admin).await, before);

    let response = post_form(
        &client,
        server.url("/templates/new"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("name", "Internal web"),
            ("description", "Services on the internal network"),
            ("validity_days", "30"),
            ("max_validity_days", "90"),
            ("default_key", "EC P-384"),
            ("allowed_key_types", "EC P-384"),
            ("allowed_key_types", "RSA 3072"),
            ("key_usage", "digitalSignature"),
            ("extended_key_usage", "serverAuth"),
            ("extended_key_usage", "clientAuth"),
            ("other_extended_key_usage", "1.3.6.1.4.1.99999.7"),
            ("san_types", "dns"),
            ("require_san", "1"),
            ("allowed_domains", "internal.test"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = location(&response);
    let id = template_id(&server, &admin, "Internal web")
        .await
        .ok_or("not created")?;
    assert_eq!(page, format!("/templates/{id}"));
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=template_created")
            .await,
        1
    );
    let html = get(&client, server.url(&page), cookie).await.text().await?;
    for shown in [
        "<h1>Internal web</h1>",
        "30 days (up to 90)",
        "EC P-384, RSA 3072",
        "serverAuth, clientAuth, 1.3.6.1.4.1.99999.7",
        "internal.test",
        "at least one required",
        &format!(r#"href="/templates/{id}/edit""#),
        "Delete the template",
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }

    // The issuance form offers it.
    let html = get(&client, server.url("/certificates/new"), cookie)
        .await
        .text()
        .await?;
    assert!(
        html.contains(&format!(r#"<option value="{id}">Internal web</option>"#)),
        "{html}"
    );

    // The edit form holds its rules; a change replaces them.
    let edit = format!("/templates/{id}/edit");
    let response = get(&client, server.url(&edit), cookie).await;
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    for shown in [
        r#"value="90""#,
        "<option selected>EC P-384</option>",
        r#"value="clientAuth" checked"#,
        r#"value="RSA 3072" checked"#,
        ">1.3.6.1.4.1.99999.7</textarea>",
        r#"id="require_san" name="require_san" value="1" checked"#,
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }
    let response = post_form(
        &client,
        server.url(&edit),
        cookie,
        &[
            ("csrf_token", csrf),
            ("name", "Internal web"),
            ("validity_days", "60"),
            ("key_usage", "digitalSignature"),
            ("extended_key_usage", "serverAuth"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), page);
    let html = get(&client, server.url(&page), cookie).await.text().await?;
    assert!(html.contains("60 days"), "{html}");
    assert!(!html.contains("clientAuth"), "{html}");
    // A refused change keeps the template as it was.
    let response = post_form(
        &client,
        server.url(&edit),
        cookie,
        &[
            ("csrf_token", csrf),
            ("name", "TLS Server"),
            ("validity_days", "60"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.text().await?.contains(r#"id="name-error""#));

    let response = post_form(
        &client,
        server.url(&format!("/templates/{id}/delete")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/templates");
    assert_eq!(get(&client, server.url(&page), cookie).await.status(), 404);
    assert_eq!(
        server
            .audit_total(&Auth::Session(&admin), "action=template_deleted")
            .await,
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_viewer_sees_no_template_actions_and_the_server_refuses_them() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "vera", "viewer").await;
    server.user(&admin, "otto", "operator").await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/templates",
            &Auth::Session(&admin),
            Some(serde_json::json!({"name": "Kept", "key_usage": ["digitalSignature"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_i64().unwrap_or_default();
    let page = format!("/templates/{id}");
    let client = browser(&server);

    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let cookie = Some(vera.cookie.as_str());
    let html = get(&client, server.url("/templates"), cookie)
        .await
        .text()
        .await?;
    assert!(html.contains("Kept"), "{html}");
    assert!(!html.contains("New template"), "{html}");
    let html = get(&client, server.url(&page), cookie).await.text().await?;
    for hidden in ["/edit", "/delete"] {
        assert!(!html.contains(hidden), "a viewer sees {hidden}: {html}");
    }
    // The viewer's own valid token does not stand in for the permission.
    for (path, permission) in [
        ("/templates/new".to_owned(), "write:templates"),
        (format!("{page}/edit"), "write:templates"),
        (format!("{page}/delete"), "delete:templates"),
    ] {
        let response = post_form(
            &client,
            server.url(&path),
            cookie,
            &[("csrf_token", &vera.csrf), ("name", "Forged")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(response.text().await?.contains(permission), "{path}");
    }
    assert_eq!(
        get(&client, server.url("/templates/new"), cookie)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // An operator may change templates but not delete them.
    let otto = server.login("otto", ADMIN_PASSWORD).await;
    let html = get(&client, server.url(&page), Some(&otto.cookie))
        .await
        .text()
        .await?;
    assert!(html.contains(&format!("{page}/edit")), "{html}");
    assert!(!html.contains("/delete"), "{html}");
    let response = post_form(
        &client,
        server.url(&format!("{page}/delete")),
        Some(&otto.cookie),
        &[("csrf_token", &otto.csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // A forged or absent token changes nothing, even for an admin.
    for fields in [
        vec![("csrf_token", "forged"), ("name", "Forged")],
        vec![("name", "Forged")],
    ] {
        let response = post_form(
            &client,
            server.url("/templates/new"),
            Some(&admin.cookie),
            &fields,
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let response = post_form(
            &client,
            server.url(&format!("{page}/delete")),
            Some(&admin.cookie),
            &fields,
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert!(template_id(&server, &admin, "Forged").await.is_none());
    assert!(template_id(&server, &admin, "Kept").await.is_some());

    // Without a session, to the login page and back.
    let response = get(&client, server.url(&page), None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        format!("/login?next=%2Ftemplates%2F{id}")
    );
    Ok(())
}
