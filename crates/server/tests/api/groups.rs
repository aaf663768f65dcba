//! Groups: CRUD and members; members hold the group's grants from their next request, API keys
//! stay within their owner's grants, and no one makes a group, or joins one, that grants more
//! than they hold.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, TestResult, TestServer};

async fn call(
    server: &TestServer,
    auth: &Auth<'_>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    server.call(method, path, auth, body).await
}

#[tokio::test]
async fn members_hold_a_groups_grants_and_no_one_grants_beyond_their_own() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let a = Auth::Session(&admin);
    let vic = server.user(&admin, "vic", "viewer").await;
    let otto = server.user(&admin, "otto", "operator").await;
    let vic_session = server.login("vic", ADMIN_PASSWORD).await;
    let v = Auth::Session(&vic_session);
    let (status, _) = call(&server, &v, Method::GET, "/api/v2/users", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer reads no users");

    // Bad groups are refused.
    for (body, want) in [
        (
            json!({"name": "", "permissions": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "x", "role": "root"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "x", "permissions": ["read:everything"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "x", "permissions": [], "owner": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, answer) = call(
            &server,
            &a,
            Method::POST,
            "/api/v2/groups",
            Some(body.clone()),
        )
        .await;
        assert!(
            status == want || status == StatusCode::BAD_REQUEST,
            "{body}: {status} {answer}"
        );
    }
    let (status, body) = call(&server, &a, Method::POST, "/api/v2/groups",
        Some(json!({"name": "User readers", "description": "help desk", "permissions": ["read:users"]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let readers = body["data"]["id"].as_i64().expect("id");
    let (status, _) = call(
        &server,
        &a,
        Method::POST,
        "/api/v2/groups",
        Some(json!({"name": "User readers", "permissions": []})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Vic joins: her session holds read:users at once, and so can a key she makes.
    let (status, body) = call(
        &server,
        &a,
        Method::POST,
        &format!("/api/v2/groups/{readers}/members"),
        Some(json!({"user_id": vic})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = call(&server, &v, Method::GET, "/api/v2/users", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = call(&server, &v, Method::GET, "/api/v2/auth/verify", None).await;
    let permissions = body["data"]["permissions"].to_string();
    assert!(
        permissions.contains("read:users") && permissions.contains("read:certificates"),
        "{body}"
    );
    let (_, key) = server.api_key(&vic_session, &["read:users"]).await;
    let k = Auth::Bearer(&key);
    let (status, _) = call(&server, &k, Method::GET, "/api/v2/users", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        &server,
        &v,
        Method::POST,
        "/api/v2/account/apikeys",
        Some(json!({"name": "too broad", "permissions": ["write:users"]})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Her new login says so too.
    let response = server
        .request(
            Method::POST,
            "/api/v2/auth/login/password",
            &Auth::None,
            Some(json!({"username": "vic", "password": ADMIN_PASSWORD})),
        )
        .await;
    let body: Value = response.json().await?;
    assert!(
        body["data"]["permissions"]
            .to_string()
            .contains("read:users"),
        "{body}"
    );

    let (status, body) = call(
        &server,
        &a,
        Method::GET,
        &format!("/api/v2/groups/{readers}/members"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["username"], "vic");
    assert_eq!(body["data"][0]["role"], "member");
    let (_, body) = call(&server, &a, Method::GET, "/api/v2/groups?search=help", None).await;
    assert_eq!(body["meta"]["total"], 1, "{body}");
    assert_eq!(body["data"][0]["member_count"], 1, "{body}");

    // Otto, an operator, gets to manage users through a group; he still cannot hand out more
    // than he holds, nor join a group that would give him more.
    let (status, body) = call(
        &server,
        &a,
        Method::POST,
        "/api/v2/groups",
        Some(json!({"name": "User managers", "permissions": ["read:users", "write:users"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let managers = body["data"]["id"].as_i64().expect("id");
    call(
        &server,
        &a,
        Method::POST,
        &format!("/api/v2/groups/{managers}/members"),
        Some(json!({"user_id": otto})),
    )
    .await;
    let (status, body) = call(
        &server,
        &a,
        Method::POST,
        "/api/v2/groups",
        Some(json!({"name": "Admins", "role": "admin"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let admins = body["data"]["id"].as_i64().expect("id");
    let otto_session = server.login("otto", ADMIN_PASSWORD).await;
    let o = Auth::Session(&otto_session);
    for body in [
        json!({"name": "Mine", "role": "admin"}),
        json!({"name": "Mine", "permissions": ["*"]}),
        json!({"name": "Mine", "permissions": ["admin:system"]}),
    ] {
        let (status, answer) = call(
            &server,
            &o,
            Method::POST,
            "/api/v2/groups",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {answer}");
    }
    let (status, body) = call(
        &server,
        &o,
        Method::POST,
        &format!("/api/v2/groups/{admins}/members"),
        Some(json!({"user_id": otto})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = call(
        &server,
        &o,
        Method::PUT,
        &format!("/api/v2/groups/{managers}"),
        Some(json!({"name": "User managers", "permissions": ["*"]})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = call(
        &server,
        &o,
        Method::POST,
        "/api/v2/groups",
        Some(json!({"name": "Readers too", "permissions": ["read:users"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "within his grants: {body}");

    let (_, body) = call(&server, &a, Method::GET, "/api/v2/groups/stats", None).await;
    assert_eq!(
        body["data"],
        json!({"total_groups": 4, "total_memberships": 2, "users_in_groups": 2})
    );

    // Leaving takes the grants away: from the session and from the key.
    let (status, _) = call(
        &server,
        &a,
        Method::DELETE,
        &format!("/api/v2/groups/{readers}/members/{vic}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &server,
        &a,
        Method::DELETE,
        &format!("/api/v2/groups/{readers}/members/{vic}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&server, &v, Method::GET, "/api/v2/users", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&server, &k, Method::GET, "/api/v2/users", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Deleting the group does too.
    let (status, _) = call(
        &server,
        &a,
        Method::DELETE,
        &format!("/api/v2/groups/{managers}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&server, &o, Method::GET, "/api/v2/users", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an operator reads users through read:*"
    );
    let (status, _) = call(
        &server,
        &o,
        Method::POST,
        "/api/v2/groups",
        Some(json!({"name": "Again"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for path in [
        format!("/api/v2/groups/{managers}"),
        "/api/v2/groups/0".into(),
        "/api/v2/groups/abc".into(),
    ] {
        let (status, _) = call(&server, &a, Method::GET, &path, None).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
            "{path}"
        );
    }
    for action in [
        "group_created",
        "group_member_added",
        "group_member_removed",
        "group_deleted",
    ] {
        assert!(
            server.audit_total(&a, &format!("action={action}")).await >= 1,
            "{action}"
        );
    }
    Ok(())
}
