//! The console's user pages: the list and its filters, creation with refusals beside their
//! field (and a generated password shown once), editing, activation, a new password and
//! deletion, the authority's rules about oneself and the last admin, and what a role that only
//! reads users, a role that cannot, and a forged form get.

use reqwest::{Method, StatusCode};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form};

/// How many users there are.
async fn user_count(server: &TestServer, admin: &Session) -> i64 {
    let (status, body) = server
        .call(Method::GET, "/api/v2/users", &Auth::Session(admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["meta"]["total"].as_i64().unwrap_or(-1)
}

/// The id in a `/users/{id}` redirect.
fn user_id(response: &reqwest::Response) -> i64 {
    let to = location(response);
    to.strip_prefix("/users/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a user page: {to}"))
}

/// The password a page shows once.
fn shown_secret(html: &str) -> String {
    html.split(r#"<p class="mono" id="secret">"#)
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("no secret shown: {html}"))
        .to_owned()
}

/// Whether `username` can log in with `password`.
async fn logs_in(server: &TestServer, username: &str, password: &str) -> bool {
    let response = server
        .request(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            Some(serde_json::json!({"username": username, "password": password})),
        )
        .await;
    response.status() == StatusCode::OK
}

#[tokio::test]
async fn an_admin_creates_edits_deactivates_and_deletes_a_user() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let response = get(&client, server.url("/users"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    for shown in [
        r#"<a href="/users" aria-current="page">Users</a>"#,
        r#"<a class="button" href="/users/new">Create a user</a>"#,
        ">admin</a>",
        r#"<th scope="col">Role</th>"#,
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }
    let response = get(&client, server.url("/users/new"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    for field in ["username", "full_name", "email", "role", "password"] {
        assert!(
            html.contains(&format!(r#"<label for="{field}">"#)),
            "{field}: {html}"
        );
    }

    // Refusals come back beside their field, the values kept (never the password), nothing
    // created.
    let before = user_count(&server, &admin).await;
    for (fields, status, field) in [
        (
            vec![("username", "bad name!"), ("password", ADMIN_PASSWORD)],
            StatusCode::UNPROCESSABLE_ENTITY,
            "username",
        ),
        (
            vec![("username", "admin"), ("password", ADMIN_PASSWORD)],
            StatusCode::CONFLICT,
            "username",
        ),
        (
            vec![("username", "cora"), ("password", "short")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "password",
        ),
        (
            vec![
                ("username", "cora"),
                ("email", "not-an-address"),
                ("password", ADMIN_PASSWORD),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
    ] {
        let mut form = vec![
            ("csrf_token", csrf),
            ("role", "viewer"),
            ("full_name", "Cora Kept"),
        ];
        form.extend(fields);
        let response = post_form(&client, server.url("/users/new"), cookie, &form).await;
        assert_eq!(response.status(), status, "{field}");
        let html = response.text().await?;
        assert!(
            html.contains(&format!(r#"id="{field}-error" role="alert""#)),
            "{field}: {html}"
        );
        assert!(
            html.contains(&format!(r#"aria-describedby="{field}-error""#)),
            "{field}: {html}"
        );
        assert!(html.contains(r#"value="Cora Kept""#), "{html}");
        assert!(
            !html.contains(ADMIN_PASSWORD),
            "the password is not sent back"
        );
    }
    assert_eq!(user_count(&server, &admin).await, before);

    // A forged or absent token creates nothing.
    for token in [Some("forged"), None] {
        let mut form = vec![
            ("username", "mallory"),
            ("role", "admin"),
            ("password", ADMIN_PASSWORD),
        ];
        form.extend(token.map(|t| ("csrf_token", t)));
        let response = post_form(&client, server.url("/users/new"), cookie, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{token:?}");
    }
    assert_eq!(user_count(&server, &admin).await, before);

    let response = post_form(
        &client,
        server.url("/users/new"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("username", "cora"),
            ("full_name", "Cora C"),
            ("email", "cora@example.com"),
            ("role", "viewer"),
            ("password", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cora = user_id(&response);
    let page = format!("/users/{cora}");
    let html = get(&client, server.url(&page), cookie).await.text().await?;
    for shown in [
        "<h1>cora</h1>",
        r#"<dd id="role-shown">viewer</dd>"#,
        "cora@example.com",
        r#"<span class="badge active">active</span>"#,
        &format!(r#"action="/users/{cora}/toggle""#),
        &format!(r#"action="/users/{cora}/delete""#),
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }
    assert!(!html.contains(r#"id="secret""#), "{html}");
    assert!(logs_in(&server, "cora", ADMIN_PASSWORD).await);

    // Without a password, one is generated and shown on the answer only.
    let response = post_form(
        &client,
        server.url("/users/new"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("username", "gene"),
            ("role", "auditor"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let html = response.text().await?;
    let generated = shown_secret(&html);
    assert!(generated.len() >= 20, "{generated}");
    assert!(logs_in(&server, "gene", &generated).await);
    let list = get(&client, server.url("/users"), cookie)
        .await
        .text()
        .await?;
    assert!(!list.contains(&generated));

    // The list's filters.
    for (query, listed) in [
        ("search=cora", true),
        ("role=viewer", true),
        ("role=auditor", false),
        ("active=true", true),
        ("active=false", false),
    ] {
        let html = get(&client, server.url(&format!("/users?{query}")), cookie)
            .await
            .text()
            .await?;
        assert_eq!(
            html.contains(&format!(r#"href="{page}""#)),
            listed,
            "{query}: {html}"
        );
    }
    let response = get(&client, server.url("/users?role=root"), cookie).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Editing: a refusal beside its field with the values sent, then the change.
    let edit = format!("{page}/edit");
    let response = post_form(
        &client,
        server.url(&edit),
        cookie,
        &[
            ("csrf_token", csrf),
            ("email", "nope"),
            ("full_name", "Cora Two"),
            ("role", "auditor"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains(r#"id="email-error""#), "{html}");
    assert!(html.contains(r#"value="Cora Two""#), "{html}");
    assert!(
        html.contains(r#"<dd id="role-shown">viewer</dd>"#),
        "{html}"
    );
    let response = post_form(
        &client,
        server.url(&edit),
        cookie,
        &[
            ("csrf_token", csrf),
            ("email", ""),
            ("full_name", "Cora Two"),
            ("role", "auditor"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), page);
    let (_, body) = server
        .call(
            Method::GET,
            &format!("/api/v2/users/{cora}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(body["data"]["role"], "auditor");
    assert_eq!(body["data"]["full_name"], "Cora Two");
    assert_eq!(body["data"]["email"], serde_json::Value::Null);

    // Deactivation and activation.
    let toggle = format!("{page}/toggle");
    let response = post_form(
        &client,
        server.url(&toggle),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let html = get(&client, server.url(&page), cookie).await.text().await?;
    assert!(
        html.contains(r#"<span class="badge inactive">inactive</span>"#),
        "{html}"
    );
    assert!(!logs_in(&server, "cora", ADMIN_PASSWORD).await);
    let html = get(&client, server.url("/users?active=false"), cookie)
        .await
        .text()
        .await?;
    assert!(html.contains(&format!(r#"href="{page}""#)), "{html}");
    let response = post_form(
        &client,
        server.url(&toggle),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(logs_in(&server, "cora", ADMIN_PASSWORD).await);

    // A new password: refused beside its form when too short, generated when empty.
    let password = format!("{page}/password");
    let response = post_form(
        &client,
        server.url(&password),
        cookie,
        &[("csrf_token", csrf), ("new_password", "short")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response
            .text()
            .await?
            .contains(r#"id="new_password-error""#)
    );
    let response = post_form(
        &client,
        server.url(&password),
        cookie,
        &[("csrf_token", csrf), ("new_password", "")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let generated = shown_secret(&response.text().await?);
    assert!(!logs_in(&server, "cora", ADMIN_PASSWORD).await);
    assert!(logs_in(&server, "cora", &generated).await);

    // The authority's rules hold: one's own account, and the last admin.
    let me = {
        let (_, body) = server
            .call(
                Method::GET,
                "/api/v2/account/profile",
                &Auth::Session(&admin),
                None,
            )
            .await;
        body["data"]["id"].as_i64().ok_or("id")?
    };
    let html = get(&client, server.url(&format!("/users/{me}")), cookie)
        .await
        .text()
        .await?;
    assert!(!html.contains("/toggle"), "{html}");
    assert!(!html.contains("/delete"), "{html}");
    let response = post_form(
        &client,
        server.url(&format!("/users/{me}/delete")),
        cookie,
        &[("csrf_token", csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await?;
    assert!(
        html.contains("you cannot delete your own account"),
        "{html}"
    );
    let response = post_form(
        &client,
        server.url(&format!("/users/{me}/edit")),
        cookie,
        &[("csrf_token", csrf), ("role", "viewer")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await?;
    assert!(html.contains(r#"id="role-error""#), "{html}");
    assert!(html.contains("last enabled admin"), "{html}");

    // Deletion needs its box ticked.
    let delete = format!("{page}/delete");
    let response = post_form(
        &client,
        server.url(&delete),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await?.contains("tick the box"));
    let response = post_form(
        &client,
        server.url(&delete),
        cookie,
        &[("csrf_token", csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/users");
    let response = get(&client, server.url(&page), cookie).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Each change is in the log, by the console's admin.
    let auth = Auth::Session(&admin);
    for (action, count) in [
        ("user_created", 2),
        ("user_updated", 1),
        ("user_disabled", 1),
        ("user_enabled", 1),
        ("password_reset", 1),
        ("user_deleted", 1),
    ] {
        assert_eq!(
            server
                .audit_total(&auth, &format!("action={action}&username=admin"))
                .await,
            count,
            "{action}"
        );
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_reader_sees_no_user_actions_and_the_server_refuses_them() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let vera = server.user(&admin, "vera", "viewer").await;
    server.user(&admin, "aude", "auditor").await;
    let client = browser(&server);
    let before = user_count(&server, &admin).await;

    // An auditor reads users but changes nothing.
    let aude = server.login("aude", ADMIN_PASSWORD).await;
    let cookie = Some(aude.cookie.as_str());
    let html = get(&client, server.url("/users"), cookie)
        .await
        .text()
        .await?;
    assert!(html.contains(&format!(r#"href="/users/{vera}""#)), "{html}");
    assert!(!html.contains("Create a user"), "{html}");
    let page = format!("/users/{vera}");
    let response = get(&client, server.url(&page), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    assert!(html.contains("<h1>vera</h1>"), "{html}");
    for hidden in ["/edit", "/toggle", "/password", "/delete", r#"name="role""#] {
        assert!(!html.contains(hidden), "an auditor sees {hidden}: {html}");
    }
    let response = get(&client, server.url("/users/new"), cookie).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    for (path, fields, permission) in [
        (
            "/users/new".to_owned(),
            vec![("username", "eve"), ("role", "admin")],
            "write:users",
        ),
        (
            format!("{page}/edit"),
            vec![("role", "admin")],
            "write:users",
        ),
        (format!("{page}/toggle"), vec![], "write:users"),
        (
            format!("{page}/password"),
            vec![("new_password", "")],
            "write:users",
        ),
        (
            format!("{page}/delete"),
            vec![("confirm", "yes")],
            "delete:users",
        ),
    ] {
        let mut form = vec![("csrf_token", aude.csrf.as_str())];
        form.extend(fields);
        let response = post_form(&client, server.url(&path), cookie, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(response.text().await?.contains(permission), "{path}");
    }
    assert_eq!(user_count(&server, &admin).await, before);
    let (_, body) = server
        .call(
            Method::GET,
            &format!("/api/v2/users/{vera}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(body["data"]["role"], "viewer");
    assert_eq!(body["data"]["active"], true);
    assert!(logs_in(&server, "vera", ADMIN_PASSWORD).await);

    // A viewer does not even read them.
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let html = get(&client, server.url("/"), Some(&vera.cookie))
        .await
        .text()
        .await?;
    assert!(!html.contains(r#"href="/users""#), "{html}");
    let response = get(&client, server.url("/users"), Some(&vera.cookie)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await?.contains("read:users"));
    server.stop().await;
    Ok(())
}
