//! User administration and roles.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};

async fn count(server: &TestServer, admin: &Session) -> i64 {
    let (_, body) = server
        .call(Method::GET, "/api/v2/users", &Auth::Session(admin), None)
        .await;
    body["meta"]["total"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn create_read_update_toggle_reset_delete() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/users",
            &Auth::Session(&admin),
            Some(json!({"username": "gen", "role": "operator", "email": "gen@example.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let generated = body["data"]["generated_password"]
        .as_str()
        .ok_or("generated password")?
        .to_owned();
    assert!(
        !body.to_string().contains("argon2"),
        "no hash in any response"
    );
    let gen_session = server.login("gen", &generated).await;
    let id = body["data"]["id"].as_i64().ok_or("id")?;

    for (query, total) in [
        ("role=operator", 1),
        ("active=true", 2),
        ("search=EXAMPLE", 1),
        ("per_page=1&page=2", 2),
    ] {
        let (status, body) = server
            .call(
                Method::GET,
                &format!("/api/v2/users?{query}"),
                &Auth::Session(&admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["meta"]["total"], total, "{query}");
    }
    let (_, page2) = server
        .call(
            Method::GET,
            "/api/v2/users?per_page=1&page=2",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(page2["meta"], json!({"page": 2, "per_page": 1, "total": 2}));
    assert_eq!(page2["data"][0]["username"], "gen");

    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/api/v2/users/{id}"),
            &Auth::Session(&admin),
            Some(json!({"role": "auditor", "full_name": "Gen Eric"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["role"], "auditor");
    assert_eq!(body["data"]["full_name"], "Gen Eric");

    let (status, body) = server
        .call(
            Method::PATCH,
            &format!("/api/v2/users/{id}/toggle"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["active"], false);
    let (status, body) = server
        .call(
            Method::PATCH,
            &format!("/api/v2/users/{id}/toggle"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["active"], true);

    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/v2/users/{id}/reset-password"),
            &Auth::Session(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let reset = body["data"]["generated_password"]
        .as_str()
        .ok_or("generated")?
        .to_owned();
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Session(&gen_session),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a reset ends the user's sessions"
    );
    let gen_session = server.login("gen", &reset).await;
    let (status, _) = server
        .call(
            Method::POST,
            &format!("/api/v2/users/{id}/reset-password"),
            &Auth::Session(&admin),
            Some(json!({"new_password": "short"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/users/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/v2/users/{id}"),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/auth/verify",
            &Auth::Session(&gen_session),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn import_is_all_or_nothing() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/users/import",
            &Auth::Session(&admin),
            Some(json!({"users": [
                {"username": "u1", "email": "u1@example.test", "role": "viewer"},
                {"username": "u2", "role": "root"}
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("users[1] (u2)")),
        "{body}"
    );
    assert_eq!(count(&server, &admin).await, 1);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/users/import",
            &Auth::Session(&admin),
            Some(json!({"users": [
                {"username": "u1", "role": "viewer"}, {"username": "admin", "role": "viewer"}
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(count(&server, &admin).await, 1);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/users/import",
            &Auth::Session(&admin),
            Some(json!({"users": [
            {"username": "u1", "role": "viewer"}, {"username": "u2", "role": "auditor"}
        ], "send_invites": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2));
    let password = body["data"][1]["generated_password"]
        .as_str()
        .ok_or("password")?;
    server.login("u2", password).await;
    assert_eq!(count(&server, &admin).await, 3);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn nobody_removes_themselves_or_the_last_admin() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, _) = server
        .call(
            Method::DELETE,
            "/api/v2/users/1",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = server
        .call(
            Method::PATCH,
            "/api/v2/users/1/toggle",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = server
        .call(
            Method::PUT,
            "/api/v2/users/1",
            &Auth::Session(&admin),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("last enabled admin"))
    );
    let second = server.user(&admin, "second", "admin").await;
    let other = server.login("second", ADMIN_PASSWORD).await;
    let (status, _) = server
        .call(
            Method::PUT,
            "/api/v2/users/1",
            &Auth::Session(&other),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/users/{second}"),
            &Auth::Session(&other),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "cannot delete oneself");
    for (body, expected) in [
        (
            json!({"username": "second", "password": ADMIN_PASSWORD, "role": "viewer"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"username": "weak", "password": "short", "role": "viewer"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "bad", "password": ADMIN_PASSWORD, "role": "root"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, _) = server
            .call(
                Method::POST,
                "/api/v2/users",
                &Auth::Session(&other),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, expected, "{body}");
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn roles_and_what_they_allow() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, roles) = server
        .call(
            Method::GET,
            "/api/v2/rbac/roles",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        roles["data"]["roles"],
        json!(["admin", "operator", "auditor", "viewer"])
    );
    assert_eq!(roles["data"]["role_permissions"]["admin"], json!(["*"]));
    let (status, viewer) = server
        .call(
            Method::GET,
            "/api/v2/rbac/roles/viewer",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        viewer["data"]["permissions"]
            .as_array()
            .is_some_and(|p| p.contains(&json!("read:certificates")))
    );
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/rbac/roles/nosuch",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, permissions) = server
        .call(
            Method::GET,
            "/api/v2/rbac/permissions",
            &Auth::Session(&admin),
            None,
        )
        .await;
    let names: Vec<&str> = permissions["data"]
        .as_array()
        .ok_or("list")?
        .iter()
        .filter_map(|p| p["permission"].as_str())
        .collect();
    for p in [
        "*",
        "read:*",
        "read:certificates",
        "write:users",
        "read:audit",
        "delete:audit",
        "admin:system",
    ] {
        assert!(names.contains(&p), "{p}");
    }

    for (name, role) in [
        ("vera", "viewer"),
        ("audrey", "auditor"),
        ("otto", "operator"),
    ] {
        server.user(&admin, name, role).await;
    }
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let audrey = server.login("audrey", ADMIN_PASSWORD).await;
    let otto = server.login("otto", ADMIN_PASSWORD).await;
    let new_user = Some(json!({"username": "n", "password": ADMIN_PASSWORD, "role": "viewer"}));
    let cases = [
        (&vera, Method::GET, "/api/v2/users", StatusCode::FORBIDDEN),
        (
            &vera,
            Method::GET,
            "/api/v2/audit/logs",
            StatusCode::FORBIDDEN,
        ),
        (&audrey, Method::GET, "/api/v2/audit/logs", StatusCode::OK),
        (&audrey, Method::GET, "/api/v2/users", StatusCode::OK),
        (
            &audrey,
            Method::POST,
            "/api/v2/users",
            StatusCode::FORBIDDEN,
        ),
        (&otto, Method::GET, "/api/v2/users", StatusCode::OK),
        (&otto, Method::POST, "/api/v2/users", StatusCode::FORBIDDEN),
    ];
    for (session, method, path, expected) in cases {
        let body = (method == Method::POST).then(|| new_user.clone()).flatten();
        let (status, _) = server
            .call(method.clone(), path, &Auth::Session(session), body)
            .await;
        assert_eq!(status, expected, "{method} {path}");
    }
    server.stop().await;
    Ok(())
}
