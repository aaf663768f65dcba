//! The console's single sign-on pages: an OIDC and an LDAP provider added, changed (an empty
//! secret keeps the stored one), switched, tested and deleted from their forms and seen so
//! through the REST API; the redirect URI to register; the secret never on a page; the live
//! SSO sessions; refusals that change nothing; and what readers without `admin:system` get.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};
use crate::console::{browser, location, page, post_form, rest};

const SECRET: &str = "an OIDC client secret for the console";

/// Provider `id` through the REST API.
async fn provider(server: &TestServer, admin: &Session, id: i64) -> Value {
    rest(server, admin, &format!("/api/v2/sso/providers/{id}")).await
}

/// The OIDC form's fields for an issuer.
fn oidc_fields<'a>(csrf: &'a str, issuer: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf_token", csrf),
        ("provider_type", "oidc"),
        ("name", "corp"),
        ("display_name", "Corporate sign-in"),
        ("default_role", "viewer"),
        ("auto_create_users", "1"),
        ("role_mappings", "PKI-Admins = operator\nauditors = auditor"),
        ("settings.issuer_url", issuer),
        ("settings.client_id", "certmint-console"),
        ("settings.scopes", "openid email groups"),
        ("settings.username_claim", "preferred_username"),
        ("settings.groups_claim", "groups"),
    ]
}

#[tokio::test]
async fn an_admin_manages_providers_from_the_console() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let (status, html) = page(&server, &client, &admin, "/sso").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"<a href="/sso" aria-current="page">Single sign-on</a>"#),
        "{html}"
    );
    assert!(html.contains("No providers yet"), "{html}");
    assert!(
        html.contains("No one is signed in through single sign-on"),
        "{html}"
    );
    assert!(
        html.contains(r#"href="/sso/new?provider_type=ldap""#),
        "{html}"
    );

    // Each type's form shows that type's settings.
    let (status, html) = page(&server, &client, &admin, "/sso/new?provider_type=oidc").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"name="settings.issuer_url""#), "{html}");
    assert!(!html.contains(r#"name="settings.bind_dn""#), "{html}");
    assert!(html.contains("Client secret"), "{html}");
    let (status, html) = page(&server, &client, &admin, "/sso/new?provider_type=ldap").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"name="settings.bind_dn""#), "{html}");
    assert!(
        html.contains(r#"name="settings.port" value="636""#),
        "the type's defaults: {html}"
    );
    assert!(
        html.contains(r#"id="setting-use_tls" name="settings.use_tls" value="1" checked"#),
        "{html}"
    );
    assert!(html.contains("Bind password"), "{html}");
    let (status, _) = page(&server, &client, &admin, "/sso/new?provider_type=saml").await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Refused: enabled without a secret, an http:// issuer, a mapping line without a role;
    // nothing is made and the form keeps what was typed.
    for (extra, why) in [
        (vec![("enabled", "1")], "needs its client_secret"),
        (vec![("secret", SECRET)], "https://"),
        (
            vec![("role_mappings", "PKI-Admins")],
            "is not a line of the form",
        ),
    ] {
        let issuer = if why == "https://" {
            "http://idp.example.com"
        } else {
            "https://idp.example.com"
        };
        let mut fields = oidc_fields(csrf, issuer);
        fields.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        fields.extend(extra);
        let response = post_form(&client, server.url("/sso/new"), cookie, &fields).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        let html = response.text().await?;
        assert!(
            html.contains(r#"id="sso-error""#) && html.contains(why),
            "{why}: {html}"
        );
        assert!(
            html.contains("certmint-console"),
            "the form keeps the client id: {html}"
        );
        assert!(
            !html.contains(SECRET),
            "the secret is not sent back: {html}"
        );
    }
    assert_eq!(
        rest(&server, &admin, "/api/v2/sso/providers").await,
        json!([])
    );

    // Added, enabled with its secret, on a loopback issuer the server may not reach.
    let mut fields = oidc_fields(csrf, "https://127.0.0.1:9/");
    fields.extend([("secret", SECRET), ("enabled", "1")]);
    let response = post_form(&client, server.url("/sso/new"), cookie, &fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let list = rest(&server, &admin, "/api/v2/sso/providers").await;
    let id = list[0]["id"].as_i64().ok_or("id")?;
    assert_eq!(location(&response), format!("/sso/{id}"));
    let made = provider(&server, &admin, id).await;
    assert_eq!(made["name"], "corp");
    assert_eq!(made["display_name"], "Corporate sign-in");
    assert_eq!(made["enabled"], true);
    assert_eq!(made["has_secret"], true);
    assert_eq!(made["issuer_url"], "https://127.0.0.1:9/");
    assert_eq!(made["scopes"], json!(["openid", "email", "groups"]));
    assert_eq!(
        made["role_mappings"],
        json!([{"group": "PKI-Admins", "role": "operator"},
               {"group": "auditors", "role": "auditor"}])
    );
    assert_eq!(made["auto_create_users"], true);
    assert_eq!(made["auto_update_users"], false);
    let redirect_uri = made["redirect_uri"].as_str().ok_or("redirect_uri")?;
    assert!(redirect_uri.ends_with(&format!("/api/v2/sso/callback/{id}")));
    for path in ["/sso".to_owned(), format!("/sso/{id}")] {
        let (status, html) = page(&server, &client, &admin, &path).await?;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!html.contains(SECRET), "{path} shows the secret: {html}");
        assert!(html.contains("corp"), "{path}: {html}");
    }
    let (_, html) = page(&server, &client, &admin, &format!("/sso/{id}")).await?;
    assert!(
        html.contains(&format!(
            r#"<span class="mono" id="redirect-uri">{redirect_uri}</span>"#
        )),
        "the redirect URI to register: {html}"
    );
    assert!(
        html.contains("PKI-Admins = operator\nauditors = auditor"),
        "the mappings as lines: {html}"
    );
    assert!(
        html.contains("one is stored: left empty, it is kept"),
        "{html}"
    );

    // The test refuses loopback: the server does not allow private SSO targets.
    let response = post_form(
        &client,
        server.url(&format!("/sso/{id}/test")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    assert!(
        html.contains(r#"id="test-result""#)
            && html.contains("Failed: ")
            && html.contains("loopback"),
        "{html}"
    );

    // Changed with the secret left empty: it is kept; the unticked box turns users'
    // creation off and the mappings are what the text area holds.
    let mut fields = oidc_fields(csrf, "https://idp.example.com");
    fields.retain(|(k, _)| *k != "auto_create_users" && *k != "role_mappings");
    fields.extend([
        ("enabled", "1"),
        ("auto_update_users", "1"),
        (
            "role_mappings",
            "cn=pki,ou=groups,dc=example,dc=com = admin",
        ),
        ("display_name", "Corp SSO"),
        ("secret", ""),
    ]);
    let response = post_form(
        &client,
        server.url(&format!("/sso/{id}/edit")),
        cookie,
        &fields,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/sso/{id}"));
    let changed = provider(&server, &admin, id).await;
    assert_eq!(changed["display_name"], "Corp SSO");
    assert_eq!(changed["issuer_url"], "https://idp.example.com");
    assert_eq!(changed["auto_create_users"], false);
    assert_eq!(changed["auto_update_users"], true);
    assert_eq!(
        changed["role_mappings"],
        json!([{"group": "cn=pki,ou=groups,dc=example,dc=com", "role": "admin"}])
    );
    assert_eq!(changed["has_secret"], true, "an empty secret keeps it");
    let (status, secret) = server
        .call(
            Method::GET,
            &format!("/api/v2/sso/providers/{id}?include_secrets=true"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(secret["data"]["client_secret"], SECRET);

    // A refused change changes nothing and keeps what was typed.
    let mut fields = oidc_fields(csrf, "https://idp.example.com");
    fields.push(("default_role", "root"));
    fields.retain(|(k, v)| *k != "default_role" || *v == "root");
    let response = post_form(
        &client,
        server.url(&format!("/sso/{id}/edit")),
        cookie,
        &fields,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(
        html.contains(r#"id="sso-error""#) && html.contains("unknown role &#39;root&#39;"),
        "{html}"
    );
    assert_eq!(provider(&server, &admin, id).await, changed);

    // Switched off and on again.
    for enabled in [false, true] {
        let response = post_form(
            &client,
            server.url(&format!("/sso/{id}/toggle")),
            cookie,
            &[("csrf_token", csrf)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(provider(&server, &admin, id).await["enabled"], enabled);
    }

    // An LDAP provider without its bind password can be added disabled, not switched on.
    let response = post_form(
        &client,
        server.url("/sso/new"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("provider_type", "ldap"),
            ("name", "directory"),
            ("default_role", "auditor"),
            ("settings.server", "ldap.example.com"),
            ("settings.port", "389"),
            ("settings.use_tls", "1"),
            ("settings.starttls", "1"),
            ("settings.base_dn", "dc=example,dc=com"),
            ("settings.bind_dn", "cn=certmint,dc=example,dc=com"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let ldap = location(&response)
        .rsplit('/')
        .next()
        .and_then(|i| i.parse::<i64>().ok())
        .ok_or("LDAP provider id")?;
    let made = provider(&server, &admin, ldap).await;
    assert_eq!(made["provider_type"], "ldap");
    assert_eq!(made["port"], 389);
    assert_eq!(made["starttls"], true);
    assert_eq!(made["allow_plain"], false);
    assert_eq!(made["has_secret"], false);
    assert!(made.get("redirect_uri").is_none(), "{made}");
    let (_, html) = page(&server, &client, &admin, &format!("/sso/{ldap}")).await?;
    assert!(!html.contains("redirect-uri"), "{html}");
    let response = post_form(
        &client,
        server.url(&format!("/sso/{ldap}/toggle")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await?.contains("has no secret"));
    assert_eq!(provider(&server, &admin, ldap).await["enabled"], false);

    // A live session opened through single sign-on is listed. The OIDC login itself is
    // driven against a real provider in `sso.rs`; here a password session stands in for one.
    server.user(&admin, "olga", "viewer").await;
    let olga = server.login("olga", ADMIN_PASSWORD).await;
    server
        .raw_store()
        .await
        .execute_raw(
            "UPDATE sessions SET auth_method = 'sso' WHERE user_id = \
             (SELECT id FROM users WHERE username = 'olga')",
        )
        .await?;
    let (_, html) = page(&server, &client, &admin, "/sso").await?;
    assert!(
        html.contains(">olga</a>") && !html.contains("No one is signed in"),
        "{html}"
    );
    drop(olga);

    // Deleting needs the box ticked; a forged form changes nothing.
    let response = post_form(
        &client,
        server.url(&format!("/sso/{id}/delete")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await?.contains("tick the box"));
    let response = post_form(
        &client,
        server.url(&format!("/sso/{id}/delete")),
        cookie,
        &[("csrf_token", "forged"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(provider(&server, &admin, id).await["name"], "corp");
    let response = post_form(
        &client,
        server.url(&format!("/sso/{id}/delete")),
        cookie,
        &[("csrf_token", csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/sso");
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/v2/sso/providers/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = page(&server, &client, &admin, &format!("/sso/{id}")).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let auth = Auth::Session(&admin);
    for action in [
        "sso_provider_created",
        "sso_provider_updated",
        "sso_provider_toggled",
        "sso_provider_tested",
        "sso_provider_deleted",
    ] {
        assert!(
            server.audit_total(&auth, &format!("action={action}")).await >= 1,
            "{action} audited"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_test_button_shows_an_unreachable_issuer() -> TestResult {
    let server = TestServer::start_with(|s| s.sso.allow_private_targets = true).await;
    let admin = server.admin().await;
    let client = browser(&server);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let issuer = format!("https://127.0.0.1:{closed}/");
    let mut fields = oidc_fields(&admin.csrf, &issuer);
    fields.push(("secret", SECRET));
    let response = post_form(
        &client,
        server.url("/sso/new"),
        Some(admin.cookie.as_str()),
        &fields,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let path = location(&response);
    let response = post_form(
        &client,
        server.url(&format!("{path}/test")),
        Some(admin.cookie.as_str()),
        &[("csrf_token", admin.csrf.as_str())],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    let result = html
        .split(r#"id="test-result""#)
        .nth(1)
        .and_then(|r| r.split("</div>").next())
        .ok_or(format!("no test result: {html}"))?;
    assert!(
        result.contains(r#"<p class="error">Failed: "#) && !result.contains("loopback"),
        "private targets are allowed: the failure is the connection's: {result}"
    );
    Ok(())
}

#[tokio::test]
async fn readers_without_admin_system_see_providers_and_change_nothing() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let mut fields = oidc_fields(&admin.csrf, "https://idp.example.com");
    fields.push(("secret", SECRET));
    let response = post_form(
        &client,
        server.url("/sso/new"),
        Some(admin.cookie.as_str()),
        &fields,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let path = location(&response);
    let before = rest(
        &server,
        &admin,
        &format!("/api/v2{}", path.replace("/sso/", "/sso/providers/")),
    )
    .await;

    // An operator reads users (read:*) but does not hold admin:system.
    server.user(&admin, "oskar", "operator").await;
    let oskar = server.login("oskar", ADMIN_PASSWORD).await;
    for p in ["/sso", path.as_str()] {
        let (status, html) = page(&server, &client, &oskar, p).await?;
        assert_eq!(status, StatusCode::OK, "{p}");
        assert!(html.contains("corp"), "{p}: {html}");
        assert!(
            !html.contains("<form method=\"post\" action=\"/sso"),
            "{p} offers no form: {html}"
        );
        assert!(!html.contains("/sso/new"), "{p}: {html}");
    }
    let refused = [
        ("/sso/new".to_owned(), fields.clone()),
        (format!("{path}/edit"), fields.clone()),
        (format!("{path}/toggle"), vec![]),
        (format!("{path}/test"), vec![]),
        (format!("{path}/delete"), vec![("confirm", "yes")]),
    ];
    for (action, fields) in &refused {
        let mut fields: Vec<(&str, &str)> = fields
            .iter()
            .filter(|(k, _)| *k != "csrf_token")
            .copied()
            .collect();
        fields.push(("csrf_token", oskar.csrf.as_str()));
        let response = post_form(
            &client,
            server.url(action),
            Some(oskar.cookie.as_str()),
            &fields,
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{action}");
        let html = response.text().await?;
        assert!(html.contains("admin:system"), "{action}: {html}");
    }
    let (status, _) = page(&server, &client, &oskar, "/sso/new").await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        rest(
            &server,
            &admin,
            &format!("/api/v2{}", path.replace("/sso/", "/sso/providers/"))
        )
        .await,
        before
    );

    // A viewer does not read users: no page, no link.
    server.user(&admin, "vera", "viewer").await;
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let (status, html) = page(&server, &client, &vera, "/sso").await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!html.contains(r#"href="/sso""#), "{html}");
    Ok(())
}
