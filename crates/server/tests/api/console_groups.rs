//! The console's group pages: a group made, found, changed and deleted from their forms and
//! seen so through the REST API; members added by username (as member or owner) and removed;
//! grants beyond the visitor's refused; and what readers without `write:users` get.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};
use crate::console::{browser, location, page, post_form, rest};

/// Group `id` through the REST API.
async fn group(server: &TestServer, admin: &Session, id: i64) -> Value {
    rest(server, admin, &format!("/api/v2/groups/{id}")).await
}

/// The id at the end of a redirect to a group's page.
fn id_of(response: &reqwest::Response) -> TestResult<i64> {
    Ok(location(response)
        .rsplit('/')
        .next()
        .and_then(|i| i.parse().ok())
        .ok_or("no group id")?)
}

#[tokio::test]
async fn an_admin_manages_groups_and_members_from_the_console() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();
    let vera = server.user(&admin, "vera", "viewer").await;
    let otto = server.user(&admin, "otto", "viewer").await;

    let (status, html) = page(&server, &client, &admin, "/groups").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"<a href="/groups" aria-current="page">Groups</a>"#),
        "{html}"
    );
    assert!(html.contains("0 groups"), "{html}");
    assert!(
        html.contains(r#"name="permissions" type="checkbox" value="write:certificates""#),
        "{html}"
    );

    // Made, with a role and permissions.
    let response = post_form(
        &client,
        server.url("/groups"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("name", "pki-team"),
            ("description", "Runs the PKI"),
            ("role", "auditor"),
            ("permissions", "write:certificates"),
            ("permissions", "delete:certificates"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let id = id_of(&response)?;
    assert_eq!(location(&response), format!("/groups/{id}"));
    let made = group(&server, &admin, id).await;
    assert_eq!(made["name"], "pki-team");
    assert_eq!(made["description"], "Runs the PKI");
    assert_eq!(made["role"], "auditor");
    assert_eq!(
        made["permissions"],
        json!(["delete:certificates", "write:certificates"])
    );

    // A taken name is refused on the list, the form keeping what was typed.
    let response = post_form(
        &client,
        server.url("/groups"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("name", "pki-team"),
            ("description", "a twin"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await?;
    assert!(
        html.contains(r#"id="groups-error""#) && html.contains("a twin"),
        "{html}"
    );

    // Found by the search, and not by another.
    server
        .call(
            Method::POST,
            "/api/v2/groups",
            &Auth::Session(&admin),
            Some(json!({"name": "auditors", "permissions": ["read:*"]})),
        )
        .await;
    let (_, html) = page(&server, &client, &admin, "/groups?search=pki").await?;
    assert!(
        html.contains(">pki-team</a>") && !html.contains(">auditors</a>"),
        "{html}"
    );
    let (_, html) = page(&server, &client, &admin, "/groups").await?;
    assert!(html.contains("2 groups"), "{html}");

    // Members added by username, one as owner; an unknown name and a bad place are refused.
    for (username, role) in [("vera", "member"), ("otto", "owner")] {
        let response = post_form(
            &client,
            server.url(&format!("/groups/{id}/members")),
            cookie,
            &[("csrf_token", csrf), ("username", username), ("role", role)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{username}");
        assert_eq!(location(&response), format!("/groups/{id}#members"));
    }
    for (username, role, why) in [
        ("nobody", "member", "there is no user &#39;nobody&#39;"),
        ("vera", "boss", "role must be member or owner"),
    ] {
        let response = post_form(
            &client,
            server.url(&format!("/groups/{id}/members")),
            cookie,
            &[("csrf_token", csrf), ("username", username), ("role", role)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        let html = response.text().await?;
        assert!(
            html.contains(r#"id="group-error""#) && html.contains(why),
            "{why}: {html}"
        );
        assert!(
            html.contains(&format!(
                r#"id="member-username" name="username" value="{username}""#
            )),
            "the form keeps the name: {html}"
        );
    }
    let members = rest(&server, &admin, &format!("/api/v2/groups/{id}/members")).await;
    let places: Vec<(&str, &str)> = members
        .as_array()
        .ok_or("members")?
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap_or_default(),
                m["role"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(places, [("otto", "owner"), ("vera", "member")]);
    let (_, html) = page(&server, &client, &admin, &format!("/groups/{id}")).await?;
    let row = html
        .split(&format!(r#"<tr id="member-{otto}">"#))
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .ok_or(format!("no row for otto: {html}"))?;
    assert!(row.contains("<td>owner</td>"), "{row}");

    // The group's grants reach its members.
    let vera_session = server.login("vera", ADMIN_PASSWORD).await;
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/users",
            &Auth::Session(&vera_session),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the auditor role through the group");

    // Changed: what the form holds is what it becomes.
    let response = post_form(
        &client,
        server.url(&format!("/groups/{id}/edit")),
        cookie,
        &[
            ("csrf_token", csrf),
            ("name", "pki-operators"),
            ("description", ""),
            ("role", ""),
            ("permissions", "read:audit"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let changed = group(&server, &admin, id).await;
    assert_eq!(changed["name"], "pki-operators");
    assert_eq!(changed["description"], Value::Null);
    assert_eq!(changed["role"], Value::Null);
    assert_eq!(changed["permissions"], json!(["read:audit"]));
    let (_, html) = page(&server, &client, &admin, &format!("/groups/{id}")).await?;
    assert!(
        html.contains(
            r#"id="perm-read:audit" name="permissions" type="checkbox" value="read:audit" checked"#
        ) && !html.contains(r#"value="write:certificates" checked"#),
        "the form shows the group as it is: {html}"
    );

    // A wildcard given through the API is offered, ticked, so that a change keeps it.
    let auditors = rest(&server, &admin, "/api/v2/groups?search=auditors").await[0]["id"]
        .as_i64()
        .ok_or("auditors id")?;
    let (_, html) = page(&server, &client, &admin, &format!("/groups/{auditors}")).await?;
    assert!(
        html.contains(r#"value="read:*" checked"#),
        "the wildcard: {html}"
    );

    // A refused change changes nothing.
    let response = post_form(
        &client,
        server.url(&format!("/groups/{id}/edit")),
        cookie,
        &[("csrf_token", csrf), ("name", ""), ("role", "root")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await?.contains(r#"id="group-error""#));
    assert_eq!(group(&server, &admin, id).await, changed);

    // A member removed.
    let response = post_form(
        &client,
        server.url(&format!("/groups/{id}/members/{vera}/remove")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let members = rest(&server, &admin, &format!("/api/v2/groups/{id}/members")).await;
    assert_eq!(members.as_array().map(Vec::len), Some(1));
    assert_eq!(members[0]["username"], "otto");
    let response = post_form(
        &client,
        server.url(&format!("/groups/{id}/members/{vera}/remove")),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "not a member now");

    // Deleting needs the box ticked and the session's token.
    for (fields, status) in [
        (vec![("csrf_token", csrf)], StatusCode::UNPROCESSABLE_ENTITY),
        (
            vec![("csrf_token", "forged"), ("confirm", "yes")],
            StatusCode::FORBIDDEN,
        ),
    ] {
        let response = post_form(
            &client,
            server.url(&format!("/groups/{id}/delete")),
            cookie,
            &fields,
        )
        .await;
        assert_eq!(response.status(), status);
    }
    assert_eq!(group(&server, &admin, id).await["name"], "pki-operators");
    let response = post_form(
        &client,
        server.url(&format!("/groups/{id}/delete")),
        cookie,
        &[("csrf_token", csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/groups");
    let (status, _) = page(&server, &client, &admin, &format!("/groups/{id}")).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let auth = Auth::Session(&admin);
    for action in [
        "group_created",
        "group_updated",
        "group_member_added",
        "group_member_removed",
        "group_deleted",
    ] {
        assert!(
            server.audit_total(&auth, &format!("action={action}")).await >= 1,
            "{action} audited"
        );
    }
    Ok(())
}

#[tokio::test]
async fn readers_and_narrow_writers_are_refused_changes() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/groups",
            &Auth::Session(&admin),
            Some(json!({"name": "admins", "role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["data"]["id"].as_i64().ok_or("id")?;
    let vera = server.user(&admin, "vera", "viewer").await;
    let before = group(&server, &admin, id).await;

    // An operator reads users and groups but writes neither: no forms, and each is refused.
    server.user(&admin, "oskar", "operator").await;
    let oskar = server.login("oskar", ADMIN_PASSWORD).await;
    for path in ["/groups".to_owned(), format!("/groups/{id}")] {
        let (status, html) = page(&server, &client, &oskar, &path).await?;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(html.contains("admins"), "{path}: {html}");
        assert!(
            !html.contains(r#"<form method="post" action="/groups"#),
            "{path} offers no form: {html}"
        );
    }
    for (action, fields, needs) in [
        ("/groups".to_owned(), vec![("name", "mine")], "write:users"),
        (
            format!("/groups/{id}/edit"),
            vec![("name", "mine")],
            "write:users",
        ),
        (
            format!("/groups/{id}/members"),
            vec![("username", "oskar")],
            "write:users",
        ),
        (
            format!("/groups/{id}/members/{vera}/remove"),
            vec![],
            "write:users",
        ),
        (
            format!("/groups/{id}/delete"),
            vec![("confirm", "yes")],
            "delete:users",
        ),
    ] {
        let mut fields = fields;
        fields.push(("csrf_token", oskar.csrf.as_str()));
        let response = post_form(
            &client,
            server.url(&action),
            Some(oskar.cookie.as_str()),
            &fields,
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{action}");
        assert!(response.text().await?.contains(needs), "{action}");
    }
    assert_eq!(group(&server, &admin, id).await, before);

    // A user administrator without admin rights cannot hand out the admin group's grants,
    // nor make a group that grants more than they hold.
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/groups",
            &Auth::Session(&admin),
            Some(json!({"name": "user-admins", "permissions": ["read:users", "write:users"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let user_admins = body["data"]["id"].as_i64().ok_or("id")?;
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/v2/groups/{user_admins}/members"),
            &Auth::Session(&admin),
            Some(json!({"user_id": vera})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let vera_session = server.login("vera", ADMIN_PASSWORD).await;
    let response = post_form(
        &client,
        server.url(&format!("/groups/{id}/members")),
        Some(vera_session.cookie.as_str()),
        &[
            ("csrf_token", vera_session.csrf.as_str()),
            ("username", "vera"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await?.contains(r#"id="group-error""#));
    let response = post_form(
        &client,
        server.url("/groups"),
        Some(vera_session.cookie.as_str()),
        &[
            ("csrf_token", vera_session.csrf.as_str()),
            ("name", "escalation"),
            ("role", "admin"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await?.contains(r#"id="groups-error""#));
    let members = rest(&server, &admin, &format!("/api/v2/groups/{id}/members")).await;
    assert_eq!(members, json!([]));
    let (_, html) = page(&server, &client, &vera_session, "/groups").await?;
    assert!(!html.contains("escalation"), "{html}");

    // A plain viewer does not read users: no page.
    server.user(&admin, "vic", "viewer").await;
    let vic = server.login("vic", ADMIN_PASSWORD).await;
    let (status, html) = page(&server, &client, &vic, "/groups").await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!html.contains(r#"href="/groups""#), "{html}");
    Ok(())
}
