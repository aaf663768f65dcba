//! What operators record about certificates over REST: owner, team, tags and description
//! (`PATCH /certificates/{id}`, `POST /certificates/bulk/assign`), the list filtered by them,
//! and where each certificate is deployed (`/certificates/{id}/locations`).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Auth, TestResult, TestServer};

/// The ids of a list's page.
fn ids(body: &Value) -> Vec<i64> {
    body["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["id"].as_i64()).collect())
        .unwrap_or_default()
}

/// Issues a certificate for each of `names`; their ids.
async fn issue(server: &TestServer, auth: &Auth<'_>, names: &[&str]) -> TestResult<Vec<i64>> {
    let mut ids = Vec::new();
    for name in names {
        let (status, body) = server
            .call(
                Method::POST,
                "/api/v2/certificates",
                auth,
                Some(json!({"common_name": name, "validity_days": 30})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["data"]["id"].as_i64().ok_or("certificate id")?);
    }
    Ok(ids)
}

#[tokio::test]
async fn owners_teams_and_tags_are_set_filtered_and_audited() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let certs = issue(
        &server,
        &auth,
        &["a.records.test", "b.records.test", "c.records.test"],
    )
    .await?;
    let (a, b, c) = (certs[0], certs[1], certs[2]);
    let (status, me) = server
        .call(Method::GET, "/api/v2/account/profile", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let admin_id = me["data"]["id"].as_i64().ok_or("admin id")?;
    let ops = server.user(&admin, "ops-owner", "operator").await;
    let (status, team) = server
        .call(
            Method::POST,
            "/api/v2/groups",
            &auth,
            Some(json!({"name": "web-team"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let team = team["data"]["id"].as_i64().ok_or("group id")?;

    // Issued: owned by the requester, no team, no tags.
    let (_, shown) = server
        .call(
            Method::GET,
            &format!("/api/v2/certificates/{a}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(shown["data"]["owner_id"], admin_id, "{shown}");
    assert_eq!(shown["data"]["team_id"], Value::Null, "{shown}");
    assert_eq!(shown["data"]["tags"], json!([]), "{shown}");

    // One change sets owner, team, tags (kept in lower case, sorted, each once) and a
    // description; the certificate itself stays as it was.
    let patch = |id: i64, body: Value| {
        let (server, auth) = (&server, &auth);
        async move {
            server
                .call(
                    Method::PATCH,
                    &format!("/api/v2/certificates/{id}"),
                    auth,
                    Some(body),
                )
                .await
        }
    };
    let (status, changed) = patch(
        a,
        json!({"owner_id": ops, "team_id": team, "tags": ["Prod", "web", "prod"],
               "description": "front door"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["data"]["owner_id"], ops);
    assert_eq!(changed["data"]["team_id"], team);
    assert_eq!(changed["data"]["tags"], json!(["prod", "web"]));
    assert_eq!(changed["data"]["description"], "front door");
    assert_eq!(
        changed["data"]["serial_number"], shown["data"]["serial_number"],
        "the certificate is the same"
    );
    // Left out: kept. Null: cleared. Added and taken away one by one.
    let (status, changed) = patch(
        a,
        json!({"team_id": null, "add_tags": ["pci"], "remove_tags": ["web"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["data"]["owner_id"], ops);
    assert_eq!(changed["data"]["team_id"], Value::Null);
    assert_eq!(changed["data"]["tags"], json!(["pci", "prod"]));
    assert_eq!(changed["data"]["description"], "front door");

    // Several at once: each on its own, one missing fails alone.
    let (status, result) = server
        .call(
            Method::POST,
            "/api/v2/certificates/bulk/assign",
            &auth,
            Some(json!({"ids": [b, c, 999_999], "team_id": team, "add_tags": ["prod"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["data"]["success"], json!([b, c]), "{result}");
    assert_eq!(result["data"]["failed"], json!([999_999]), "{result}");

    // The list filters by each, alone and together, and says who and what in every row.
    let list = |query: String| {
        let (server, auth) = (&server, &auth);
        async move {
            let (status, body) = server
                .call(
                    Method::GET,
                    &format!("/api/v2/certificates?search=records.test&{query}"),
                    auth,
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body
        }
    };
    assert_eq!(ids(&list("tag=prod".into()).await), [c, b, a]);
    assert_eq!(ids(&list("tag=PCI".into()).await), [a], "any case");
    assert_eq!(ids(&list("tag=none-such".into()).await), Vec::<i64>::new());
    assert_eq!(ids(&list(format!("team_id={team}")).await), [c, b]);
    assert_eq!(ids(&list(format!("owner_id={ops}")).await), [a]);
    assert_eq!(
        ids(&list(format!("owner_id={admin_id}&tag=prod&team_id={team}")).await),
        [c, b]
    );
    let row = list("tag=pci".into()).await;
    assert_eq!(row["data"][0]["tags"], json!(["pci", "prod"]), "{row}");

    // Refused, each with a reason, and nothing changed.
    for (body, status, says) in [
        (
            json!({"tags": ["two words"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "tag",
        ),
        (
            json!({"add_tags": ["x".repeat(65)]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "tag",
        ),
        (
            json!({"owner_id": 999_999}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "user 999999",
        ),
        (
            json!({"team_id": 999_999}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "group 999999",
        ),
        (
            json!({"add_tags": ["a"], "remove_tags": ["A"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "both",
        ),
        (
            json!({"tags": (0..33).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at most 32",
        ),
        (
            json!({"description": "x".repeat(1001)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "description",
        ),
        (
            json!({"serial": "00"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "serial",
        ),
    ] {
        let (got, answer) = patch(b, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{body}: {answer}"
        );
    }
    let (_, unchanged) = server
        .call(
            Method::GET,
            &format!("/api/v2/certificates/{b}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(unchanged["data"]["tags"], json!(["prod"]), "{unchanged}");
    assert_eq!(unchanged["data"]["owner_id"], admin_id, "{unchanged}");
    let (status, _) = patch(999_999, json!({"tags": []})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server
        .call(
            Method::GET,
            "/api/v2/certificates?tag=two%20words",
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A key that may read certificates may not change what is recorded of them.
    let (_, reader) = server.api_key(&admin, &["read:certificates"]).await;
    let (status, body) = server
        .call(
            Method::PATCH,
            &format!("/api/v2/certificates/{b}"),
            &Auth::Bearer(&reader),
            Some(json!({"tags": ["mine"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/certificates/bulk/assign",
            &Auth::Bearer(&reader),
            Some(json!({"ids": [b], "owner_id": null})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Each change is in the audit log with what it set.
    let (_, audit) = server
        .call(
            Method::GET,
            "/api/v2/audit/logs?action=certificate_updated&per_page=50",
            &auth,
            None,
        )
        .await;
    let details: Vec<&str> = audit["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["details"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(details.len(), 4, "{audit}");
    assert!(
        details
            .iter()
            .any(|d| d.contains(&format!("owner {ops}")) && d.contains("tags [prod web]")),
        "{details:?}"
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn locations_record_where_a_certificate_is_deployed() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let certs = issue(
        &server,
        &auth,
        &["web.locations.test", "other.locations.test"],
    )
    .await?;
    let (web, other) = (certs[0], certs[1]);
    let at = |id: i64| format!("/api/v2/certificates/{id}/locations");

    let (status, first) = server
        .call(
            Method::POST,
            &at(web),
            &auth,
            Some(json!({"host": " web1.example.test ", "port": 443,
                        "path": "/etc/ssl/web.pem", "note": "behind the balancer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["data"]["host"], "web1.example.test", "trimmed");
    let first = first["data"]["id"].as_i64().ok_or("location id")?;
    let (status, second) = server
        .call(
            Method::POST,
            &at(web),
            &auth,
            Some(json!({"host": "10.0.0.8"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second = second["data"]["id"].as_i64().ok_or("location id")?;

    let (status, all) = server.call(Method::GET, &at(web), &auth, None).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(ids(&all), [first, second]);
    assert_eq!(all["data"][0]["port"], 443);
    assert_eq!(all["data"][1]["port"], Value::Null);
    let (_, none) = server.call(Method::GET, &at(other), &auth, None).await;
    assert_eq!(none["data"], json!([]), "{none}");

    // Replaced whole; another certificate's path does not reach it.
    let (status, moved) = server
        .call(
            Method::PUT,
            &format!("{}/{first}", at(web)),
            &auth,
            Some(json!({"host": "web2.example.test", "port": 8443})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["data"]["host"], "web2.example.test");
    assert_eq!(moved["data"]["path"], Value::Null, "replaced, not merged");
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = server
            .call(
                method.clone(),
                &format!("{}/{first}", at(other)),
                &auth,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {body}");
    }
    let (status, one) = server
        .call(Method::GET, &format!("{}/{first}", at(web)), &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["data"]["port"], 8443);

    // Bad places are refused with a reason.
    for (body, says) in [
        (json!({"host": ""}), "host"),
        (json!({"host": "two hosts"}), "host"),
        (json!({"host": "web", "port": 0}), "port"),
        (json!({"host": "web", "path": "x".repeat(1025)}), "path"),
        (json!({"host": "web", "note": "bell\u{7}"}), "note"),
    ] {
        let (status, answer) = server
            .call(Method::POST, &at(web), &auth, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{body}: {answer}"
        );
    }
    let (status, answer) = server
        .call(
            Method::POST,
            &at(web),
            &auth,
            Some(json!({"host": "web", "port": 70000})),
        )
        .await;
    assert!(status.is_client_error(), "{status} {answer}");
    let (status, _) = server.call(Method::GET, &at(999_999), &auth, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A hundred places at most, so that a write credential cannot grow one certificate's
    // records without bound.
    for n in 1..100 {
        let (status, body) = server
            .call(
                Method::POST,
                &at(other),
                &auth,
                Some(json!({"host": format!("host{n}.example.test")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{n}: {body}");
    }
    for n in [100, 101] {
        let (status, body) = server
            .call(
                Method::POST,
                &at(other),
                &auth,
                Some(json!({"host": format!("host{n}.example.test")})),
            )
            .await;
        let expected = if n == 100 {
            StatusCode::CREATED
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!(status, expected, "{n}: {body}");
    }

    // Reading needs read:certificates; recording needs write:certificates.
    let (_, reader) = server.api_key(&admin, &["read:certificates"]).await;
    let (status, _) = server
        .call(Method::GET, &at(web), &Auth::Bearer(&reader), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(
            Method::POST,
            &at(web),
            &Auth::Bearer(&reader),
            Some(json!({"host": "sneaky"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("{}/{second}", at(web)),
            &Auth::Bearer(&reader),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("{}/{second}", at(web)),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, left) = server.call(Method::GET, &at(web), &auth, None).await;
    assert_eq!(ids(&left), [first]);
    assert!(
        server
            .audit_total(&auth, "action=certificate_location_added")
            .await
            >= 101
    );
    assert_eq!(
        server
            .audit_total(&auth, "action=certificate_location_deleted")
            .await,
        1
    );
    server.stop().await;
    Ok(())
}

async fn save_view(server: &TestServer, auth: &Auth<'_>, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::POST, "/api/v2/certificates/views", auth, Some(body))
        .await
}

#[tokio::test]
async fn saved_views_keep_each_users_filters() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let views = "/api/v2/certificates/views";

    // Saved as the list reads it: a page, a cursor and what the list does not take are left
    // out, the filters kept.
    let (status, saved) = save_view(
        &server,
        &auth,
        json!({"name": "Expiring prod", "query": "?status=expiring&days=14&tag=prod&page=3&cursor=9&colour=red"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    assert_eq!(saved["data"]["name"], "Expiring prod");
    assert_eq!(saved["data"]["query"], "status=expiring&days=14&tag=prod");
    let first = saved["data"]["id"].as_i64().ok_or("view id")?;
    let (status, _) = save_view(&server, &auth, json!({"name": "Everything", "query": ""})).await;
    assert_eq!(status, StatusCode::CREATED);

    // Refused: a query the list refuses, a name taken, a blank or long name.
    for (body, status, says) in [
        (
            json!({"name": "bad", "query": "status=sleeping"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "status",
        ),
        (
            json!({"name": "bad", "query": "tag=two%20words"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "tag",
        ),
        (
            json!({"name": "bad", "query": "days=many"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot be read",
        ),
        (
            json!({"name": "Expiring prod", "query": "status=revoked"}),
            StatusCode::CONFLICT,
            "already",
        ),
        (
            json!({"name": " ", "query": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            json!({"name": "x".repeat(101), "query": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            json!({"name": "long", "query": format!("search={}", "x".repeat(2001))}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "2000",
        ),
    ] {
        let (got, answer) = save_view(&server, &auth, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{body}: {answer}"
        );
    }
    let (_, listed) = server.call(Method::GET, views, &auth, None).await;
    let names: Vec<&str> = listed["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["Everything", "Expiring prod"], "{listed}");
    // The saved query is one the list takes as it is.
    let query = listed["data"][1]["query"].as_str().unwrap_or_default();
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/v2/certificates?{query}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Each user sees and deletes only their own, a read key included (its user's views).
    server.user(&admin, "viewer-views", "viewer").await;
    let viewer = server
        .login("viewer-views", crate::common::ADMIN_PASSWORD)
        .await;
    let theirs = Auth::Session(&viewer);
    let (_, none) = server.call(Method::GET, views, &theirs, None).await;
    assert_eq!(none["data"], json!([]), "{none}");
    let (status, _) = server
        .call(Method::DELETE, &format!("{views}/{first}"), &theirs, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = save_view(
        &server,
        &theirs,
        json!({"name": "Expiring prod", "query": "tag=prod"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "another user's name is free: {body}"
    );
    let (_, key) = server.api_key(&admin, &["read:certificates"]).await;
    let (_, by_key) = server
        .call(Method::GET, views, &Auth::Bearer(&key), None)
        .await;
    assert_eq!(by_key["data"].as_array().map(Vec::len), Some(2), "{by_key}");
    let (_, narrow) = server.api_key(&admin, &["read:audit"]).await;
    let (status, _) = server
        .call(Method::GET, views, &Auth::Bearer(&narrow), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Fifty views at most.
    for n in 2..50 {
        let (status, body) = save_view(
            &server,
            &auth,
            json!({"name": format!("view {n}"), "query": ""}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{n}: {body}");
    }
    let (status, body) =
        save_view(&server, &auth, json!({"name": "one too many", "query": ""})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (status, _) = server
        .call(Method::DELETE, &format!("{views}/{first}"), &auth, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = save_view(
        &server,
        &auth,
        json!({"name": "now there is room", "query": ""}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    server.stop().await;
    Ok(())
}
