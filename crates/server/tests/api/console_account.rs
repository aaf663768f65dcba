//! The console's account page, for any signed-in user: the profile, the password (the REST
//! rules, lockout counting and rate limit), API keys with their secret shown once and only
//! within what the user holds, and sessions with the current one marked.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form, rest};

/// The account page for `session`, with its status.
async fn account(
    client: &reqwest::Client,
    server: &TestServer,
    session: &Session,
) -> (StatusCode, String) {
    let response = get(client, server.url("/account"), Some(&session.cookie)).await;
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_user_edits_the_profile_and_changes_the_password() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "vera", "viewer").await;
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let other = server.login("vera", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(vera.cookie.as_str());

    let response = get(&client, server.url("/account"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    for shown in [
        "<h1>Account</h1>",
        r#"<a href="/account" aria-current="page">Account</a>"#,
        r#"<label for="full_name">"#,
        r#"<label for="email">"#,
        r#"<label for="current_password">"#,
        r#"<label for="new_password">"#,
        r#"<label for="key_name">"#,
        r#"<label for="expires_days">"#,
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }
    // Account is the navigation's last entry, for every role.
    let (_, html) = account(&client, &server, &admin).await;
    let nav = html.split("</nav>").next().unwrap_or_default();
    let at = |path: &str| nav.find(&format!(r#"href="{path}""#));
    assert!(at("/").is_some() && at("/account").is_some(), "{nav}");
    assert!(
        at("/audit") < at("/users") && at("/users") < at("/account"),
        "{nav}"
    );
    let last = nav.rsplit("<li>").next().unwrap_or_default();
    assert!(last.contains(r#"href="/account""#), "{nav}");

    // The profile: a refusal beside its field with the value sent, then the change.
    let response = post_form(
        &client,
        server.url("/account/profile"),
        cookie,
        &[
            ("csrf_token", &vera.csrf),
            ("full_name", "Vera V"),
            ("email", "nope"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains(r#"id="email-error" role="alert""#), "{html}");
    assert!(html.contains(r#"aria-describedby="email-error""#), "{html}");
    assert!(html.contains(r#"value="nope""#), "{html}");
    assert_eq!(
        rest(&server, &vera, "/api/v2/account/profile").await["email"],
        Value::Null
    );
    for token in [Some("forged"), None] {
        let mut form = vec![("full_name", "Forged")];
        form.extend(token.map(|t| ("csrf_token", t)));
        let response = post_form(&client, server.url("/account/profile"), cookie, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{token:?}");
    }
    let response = post_form(
        &client,
        server.url("/account/profile"),
        cookie,
        &[
            ("csrf_token", &vera.csrf),
            ("full_name", "Vera V"),
            ("email", "vera@example.com"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");
    let profile = rest(&server, &vera, "/api/v2/account/profile").await;
    assert_eq!(profile["full_name"], "Vera V");
    assert_eq!(profile["email"], "vera@example.com");
    let (_, html) = account(&client, &server, &vera).await;
    assert!(html.contains(r#"value="vera@example.com""#), "{html}");

    // The password: the REST rules, each refusal beside its field.
    let new_password = "a brand new passphrase";
    for (current, new, status, field) in [
        (
            "not the password",
            new_password,
            StatusCode::FORBIDDEN,
            "current_password",
        ),
        (
            ADMIN_PASSWORD,
            "short",
            StatusCode::UNPROCESSABLE_ENTITY,
            "new_password",
        ),
        (
            ADMIN_PASSWORD,
            ADMIN_PASSWORD,
            StatusCode::UNPROCESSABLE_ENTITY,
            "new_password",
        ),
    ] {
        let response = post_form(
            &client,
            server.url("/account/password"),
            cookie,
            &[
                ("csrf_token", &vera.csrf),
                ("current_password", current),
                ("new_password", new),
            ],
        )
        .await;
        assert_eq!(response.status(), status, "{field}");
        let html = response.text().await?;
        assert!(
            html.contains(&format!(r#"id="{field}-error" role="alert""#)),
            "{field}: {html}"
        );
        assert!(
            !html.contains(ADMIN_PASSWORD),
            "passwords are not sent back"
        );
    }
    assert_eq!(
        server
            .audit_total(
                &Auth::Session(&admin),
                "action=password_change_failed&username=vera"
            )
            .await,
        1
    );
    let response = post_form(
        &client,
        server.url("/account/password"),
        cookie,
        &[
            ("csrf_token", &vera.csrf),
            ("current_password", ADMIN_PASSWORD),
            ("new_password", new_password),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    assert!(
        html.contains("Password changed; 1 other sessions ended; 0 API keys still work"),
        "{html}"
    );
    // This session goes on; the other one ended; the new password logs in.
    let (status, _) = account(&client, &server, &vera).await;
    assert_eq!(status, StatusCode::OK);
    let response = get(&client, server.url("/account"), Some(&other.cookie)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Faccount");
    server.login("vera", new_password).await;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_password_form_is_rate_limited_like_the_login() -> TestResult {
    let server = TestServer::start_with(|s| s.auth_rate_limit_per_minute = 3).await;
    let admin = server.admin().await;
    let client = browser(&server);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = post_form(
            &client,
            server.url("/account/password"),
            Some(&admin.cookie),
            &[
                ("csrf_token", &admin.csrf),
                ("current_password", "wrong"),
                ("new_password", "a brand new passphrase"),
            ],
        )
        .await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let html = response.text().await?;
            assert!(html.contains("too many requests"), "{html}");
            assert!(html.contains(r#"<p class="error" role="alert">"#), "{html}");
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(statuses.contains(&StatusCode::FORBIDDEN), "{statuses:?}");
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn api_keys_show_their_secret_once_and_hold_no_more_than_their_owner() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "vera", "viewer").await;
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(vera.cookie.as_str());

    // Only what a viewer holds is offered.
    let (_, html) = account(&client, &server, &vera).await;
    assert!(html.contains("No API keys."), "{html}");
    assert!(html.contains(r#"value="read:certificates""#), "{html}");
    assert!(!html.contains(r#"value="write:users""#), "{html}");
    assert!(!html.contains(r#"value="read:audit""#), "{html}");

    // Refusals beside their field, the form kept, nothing created.
    for (fields, status, field) in [
        (
            vec![("name", "deploy")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "permissions",
        ),
        (
            vec![("name", "deploy"), ("permissions", "write:users")],
            StatusCode::FORBIDDEN,
            "permissions",
        ),
        (
            vec![
                ("name", "deploy"),
                ("permissions", "read:certificates"),
                ("expires_days", "0"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "expires_days",
        ),
        (
            vec![("name", ""), ("permissions", "read:certificates")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
    ] {
        let mut form = vec![("csrf_token", vera.csrf.as_str())];
        form.extend(fields);
        let response = post_form(&client, server.url("/account/keys"), cookie, &form).await;
        assert_eq!(response.status(), status, "{field}");
        let html = response.text().await?;
        assert!(
            html.contains(&format!(r#"id="{field}-error""#)),
            "{field}: {html}"
        );
        assert!(!html.contains(r#"id="secret""#), "{html}");
    }
    assert_eq!(
        rest(&server, &vera, "/api/v2/account/apikeys").await,
        serde_json::json!([])
    );

    let response = post_form(
        &client,
        server.url("/account/keys"),
        cookie,
        &[
            ("csrf_token", &vera.csrf),
            ("name", "deploy"),
            ("permissions", "read:certificates"),
            ("permissions", "read:cas"),
            ("expires_days", "30"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let html = response.text().await?;
    let secret = html
        .split(r#"<p class="mono" id="secret">"#)
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .ok_or("no secret shown")?
        .to_owned();
    assert!(secret.starts_with("cm_"), "{secret}");
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/certificates",
            &Auth::Bearer(&secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/templates",
            &Auth::Bearer(&secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only the permissions ticked");

    // Listed without its secret, ever again.
    let (_, html) = account(&client, &server, &vera).await;
    assert!(!html.contains(&secret), "{html}");
    assert!(html.contains("read:certificates, read:cas"), "{html}");
    assert!(html.contains(&format!("{}…", &secret[..10])), "{html}");
    let keys = rest(&server, &vera, "/api/v2/account/apikeys").await;
    let id = keys[0]["id"].as_i64().ok_or("key id")?;

    // Someone else's key is not one's own to delete; one's own is.
    let (other, _) = server.api_key(&admin, &["read:audit"]).await;
    let response = post_form(
        &client,
        server.url(&format!("/account/keys/{other}/delete")),
        cookie,
        &[("csrf_token", &vera.csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        rest(&server, &admin, "/api/v2/account/apikeys")
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let response = post_form(
        &client,
        server.url(&format!("/account/keys/{id}/delete")),
        Some(&vera.cookie),
        &[("csrf_token", "forged")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = post_form(
        &client,
        server.url(&format!("/account/keys/{id}/delete")),
        cookie,
        &[("csrf_token", &vera.csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/certificates",
            &Auth::Bearer(&secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let auth = Auth::Session(&admin);
    for action in ["api_key_created", "api_key_deleted"] {
        assert_eq!(
            server
                .audit_total(&auth, &format!("action={action}&username=vera"))
                .await,
            1,
            "{action}"
        );
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn sessions_are_listed_with_the_current_one_marked_and_revoked() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "vera", "viewer").await;
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let second = server.login("vera", ADMIN_PASSWORD).await;
    let third = server.login("vera", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(vera.cookie.as_str());

    let (_, html) = account(&client, &server, &vera).await;
    assert_eq!(html.matches("this session</span>").count(), 1, "{html}");
    assert_eq!(
        html.matches(r#"<tr aria-current="true">"#).count(),
        1,
        "{html}"
    );
    assert_eq!(html.matches("/revoke\">").count(), 3, "{html}");
    assert!(html.contains("Sign out all other sessions"), "{html}");
    let sessions = rest(&server, &vera, "/api/v2/account/sessions").await;
    let sessions = sessions.as_array().ok_or("sessions")?;
    let current = sessions
        .iter()
        .find(|s| s["current"] == true)
        .and_then(|s| s["id"].as_i64())
        .ok_or("current")?;
    let others: Vec<i64> = sessions
        .iter()
        .filter(|s| s["current"] == false)
        .filter_map(|s| s["id"].as_i64())
        .collect();
    assert_eq!(others.len(), 2);
    let current_row = html
        .split(r#"<tr aria-current="true">"#)
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_default();
    assert!(
        current_row.contains(&format!("/account/sessions/{current}/revoke")),
        "{current_row}"
    );

    // One session ended by id: exactly one of the others stops working.
    let response = post_form(
        &client,
        server.url(&format!("/account/sessions/{}/revoke", others[0])),
        cookie,
        &[("csrf_token", &vera.csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");
    let mut alive = Vec::new();
    for s in [&second, &third] {
        let response = get(&client, server.url("/account"), Some(&s.cookie)).await;
        alive.push(response.status() == StatusCode::OK);
    }
    assert_eq!(alive.iter().filter(|a| **a).count(), 1, "{alive:?}");

    // Someone else's session is not one's own to end.
    let admin_session = rest(&server, &admin, "/api/v2/account/sessions").await[0]["id"]
        .as_i64()
        .ok_or("admin session")?;
    let response = post_form(
        &client,
        server.url(&format!("/account/sessions/{admin_session}/revoke")),
        cookie,
        &[("csrf_token", &vera.csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await?.contains("no active session"));
    let (status, _) = account(&client, &server, &admin).await;
    assert_eq!(status, StatusCode::OK);

    // All the others at once; this one stays.
    let response = post_form(
        &client,
        server.url("/account/sessions/revoke-others"),
        cookie,
        &[("csrf_token", &vera.csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    for s in [&second, &third] {
        let response = get(&client, server.url("/account"), Some(&s.cookie)).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    let (status, html) = account(&client, &server, &vera).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("Sign out all other sessions"), "{html}");
    assert_eq!(
        server
            .audit_total(
                &Auth::Session(&admin),
                "action=sessions_revoked&username=vera"
            )
            .await,
        1
    );

    // Ending the current session signs the visitor out.
    let response = post_form(
        &client,
        server.url(&format!("/account/sessions/{current}/revoke")),
        cookie,
        &[("csrf_token", &vera.csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = get(&client, server.url("/account"), cookie).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Faccount");
    server.stop().await;
    Ok(())
}
