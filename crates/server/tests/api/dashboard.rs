//! The console's home page and search box: `/dashboard/*`, `/stats/overview` and `/search`,
//! checked against certificates issued and revoked through the API.

use authority::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Auth, Session, TestResult, TestServer};

/// Issues a certificate and returns it as the API shows it.
async fn issue(server: &TestServer, admin: &Session, body: Value) -> TestResult<Value> {
    let (status, answer) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &Auth::Session(admin),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    Ok(answer["data"].clone())
}

async fn get(server: &TestServer, auth: &Auth<'_>, path: &str) -> Value {
    let (status, body) = server.call(Method::GET, path, auth, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body["data"].clone()
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["common_name"].as_str())
        .collect()
}

/// `after[key] - before[key]`.
fn delta(after: &Value, before: &Value, key: &str) -> Option<i64> {
    Some(after[key].as_i64()? - before[key].as_i64()?)
}

#[tokio::test]
async fn dashboard_stats_trend_and_lists_count_exactly() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let before = get(&server, &auth, "/api/v2/dashboard/stats").await;
    let trend_before = get(&server, &auth, "/api/v2/dashboard/certificate-trend?days=7").await;

    for (name, days) in [
        ("soon.dash.test", 10),
        ("later.dash.test", 20),
        ("far.dash.test", 365),
    ] {
        issue(
            &server,
            &admin,
            json!({"common_name": name, "validity_days": days}),
        )
        .await?;
    }
    let doomed = issue(
        &server,
        &admin,
        json!({"common_name": "revoked.dash.test", "validity_days": 5}),
    )
    .await?;
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/v2/certificates/{}/revoke", doomed["id"]),
            &auth,
            Some(json!({"reason": "keyCompromise"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let stats = get(&server, &auth, "/api/v2/dashboard/stats").await;
    for (key, added) in [
        ("total_certificates", 4),
        ("active_certificates", 3),
        ("expired_certificates", 0),
        ("revoked_certificates", 1),
        ("expiring_soon", 2),
        ("total_cas", 0),
        ("total_csrs", 0),
        ("pending_csrs", 0),
        ("total_templates", 0),
        ("total_users", 0),
        ("active_users", 0),
    ] {
        assert_eq!(delta(&stats, &before, key), Some(added), "{key}: {stats}");
    }
    // The same figures as the certificate list's own counts.
    let inventory = get(&server, &auth, "/api/v2/certificates/stats").await;
    for (mine, theirs) in [
        ("total_certificates", "total"),
        ("active_certificates", "active"),
        ("revoked_certificates", "revoked"),
        ("expiring_soon", "expiring"),
    ] {
        assert_eq!(stats[mine], inventory[theirs], "{mine}");
    }

    let trend = get(&server, &auth, "/api/v2/dashboard/certificate-trend?days=7").await;
    let days = trend["trend"].as_array().ok_or("trend")?;
    assert_eq!(days.len(), 7);
    let today = server.clock.now().date().to_string();
    assert_eq!(days[6]["date"], today.as_str());
    assert_eq!(
        days[0]["date"],
        (server.clock.now().date() - time::Duration::days(6))
            .to_string()
            .as_str()
    );
    assert_eq!(
        delta(&days[6], &trend_before["trend"][6], "issued"),
        Some(4)
    );
    assert_eq!(
        delta(&days[6], &trend_before["trend"][6], "revoked"),
        Some(1)
    );
    assert!(
        days[..6]
            .iter()
            .all(|d| d["issued"] == 0 && d["revoked"] == 0),
        "{trend}"
    );
    let month = get(&server, &auth, "/api/v2/dashboard/certificate-trend").await;
    assert_eq!(month["trend"].as_array().map(Vec::len), Some(30));

    let expiring = get(&server, &auth, "/api/v2/dashboard/expiring-certs").await;
    assert_eq!(names(&expiring), ["soon.dash.test", "later.dash.test"]);
    // notAfter holds whole seconds, so a 10-day certificate has 9 full days left.
    assert_eq!(expiring[0]["days_remaining"], 9);
    assert_eq!(expiring[0]["status"], "active");
    let first = get(&server, &auth, "/api/v2/dashboard/expiring-certs?limit=1").await;
    assert_eq!(names(&first), ["soon.dash.test"]);
    let week = get(&server, &auth, "/api/v2/dashboard/expiring-certs?days=15").await;
    assert_eq!(names(&week), ["soon.dash.test"]);

    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/cas",
            &auth,
            Some(json!({"common_name": "Dash Root", "ca_type": "root", "validity_days": 3650})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let recent = get(&server, &auth, "/api/v2/dashboard/recent-cas?limit=1").await;
    assert_eq!(recent.as_array().map(Vec::len), Some(1));
    assert_eq!(recent[0]["id"], body["data"]["id"]);
    assert_eq!(recent[0]["ca_type"], "root");
    let all = get(&server, &auth, "/api/v2/dashboard/recent-cas").await;
    assert_eq!(
        all.as_array().map(Vec::len),
        before["total_cas"]
            .as_i64()
            .map(|n| (n + 1).min(5) as usize)
    );

    let overview = get(&server, &auth, "/api/v2/stats/overview").await;
    assert_eq!(
        overview["total_cas"],
        before["total_cas"].as_i64().ok_or("cas")? + 1
    );
    assert_eq!(overview["total_certs"], stats["total_certificates"]);
    assert_eq!(overview["active_users"], 1);

    // Fifteen days on, the first has expired and the second is the only one expiring.
    server.clock.advance(time::Duration::days(15));
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let later = get(&server, &auth, "/api/v2/dashboard/stats").await;
    assert_eq!(delta(&later, &before, "expired_certificates"), Some(1));
    assert_eq!(delta(&later, &before, "active_certificates"), Some(2));
    assert_eq!(delta(&later, &before, "revoked_certificates"), Some(1));
    let expiring = get(&server, &auth, "/api/v2/dashboard/expiring-certs").await;
    assert_eq!(names(&expiring), ["later.dash.test"]);
    assert_eq!(expiring[0]["days_remaining"], 4);

    // Without read:users, user figures are withheld rather than refused.
    let (_, key) = server.api_key(&admin, &["read:certificates"]).await;
    let limited = get(&server, &Auth::Bearer(&key), "/api/v2/dashboard/stats").await;
    assert_eq!(limited["total_users"], Value::Null);
    assert_eq!(limited["total_certificates"], later["total_certificates"]);
    let limited = get(&server, &Auth::Bearer(&key), "/api/v2/stats/overview").await;
    assert_eq!(limited["active_users"], Value::Null);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn search_finds_certificates_by_name_san_and_serial() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let needle = issue(
        &server,
        &admin,
        json!({"common_name": "needle.search.test",
               "san": ["dns:needle.search.test", "dns:alias-haystack.example"]}),
    )
    .await?;
    issue(&server, &admin, json!({"common_name": "other.search.test"})).await?;

    let found = get(&server, &auth, "/api/v2/search?q=NEEDLE.search").await;
    assert_eq!(names(&found["certificates"]), ["needle.search.test"]);
    let found = get(&server, &auth, "/api/v2/search?q=alias-haystack").await;
    assert_eq!(names(&found["certificates"]), ["needle.search.test"]);
    assert_eq!(found["cas"], json!([]));

    let serial = needle["serial_number"].as_str().ok_or("serial")?;
    let with_colons = serial
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    for q in [with_colons.as_str(), serial, &serial[4..20]] {
        let found = get(&server, &auth, &format!("/api/v2/search?q={q}")).await;
        assert_eq!(
            names(&found["certificates"]),
            ["needle.search.test"],
            "{q}: {found}"
        );
    }

    let both = get(&server, &auth, "/api/v2/search?q=.search.test").await;
    assert_eq!(
        names(&both["certificates"]),
        ["other.search.test", "needle.search.test"],
        "newest first"
    );
    let one = get(&server, &auth, "/api/v2/search?q=.search.test&limit=1").await;
    assert_eq!(names(&one["certificates"]), ["other.search.test"]);

    let cas = get(&server, &auth, "/api/v2/cas").await;
    let ca_name = cas[0]["name"].as_str().ok_or("CA name")?;
    let found = get(
        &server,
        &auth,
        &format!("/api/v2/search?q={}", ca_name.to_lowercase()),
    )
    .await;
    assert_eq!(found["cas"][0]["name"], ca_name, "{found}");
    let templates = get(&server, &auth, "/api/v2/templates").await;
    let template = templates[0]["name"].as_str().ok_or("template name")?;
    let found = get(&server, &auth, &format!("/api/v2/search?q={template}")).await;
    assert_eq!(found["templates"][0]["name"], template, "{found}");

    // A caller that may read only certificates sees no CAs or templates.
    let (_, key) = server.api_key(&admin, &["read:certificates"]).await;
    let limited = get(&server, &Auth::Bearer(&key), "/api/v2/search?q=needle").await;
    assert_eq!(names(&limited["certificates"]), ["needle.search.test"]);
    assert_eq!(limited["cas"], Value::Null);
    assert_eq!(limited["templates"], Value::Null);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn dashboard_stats_and_search_refuse_bad_parameters() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    for (path, needle) in [
        ("/api/v2/search", "missing field `q`"),
        ("/api/v2/search?q=%20%20", "q must hold"),
        (
            "/api/v2/search?q=x&limit=0",
            "limit must be between 1 and 100",
        ),
        ("/api/v2/search?q=x&limit=many", "invalid query string"),
        (
            "/api/v2/dashboard/expiring-certs?days=0",
            "days must be between 1 and 366",
        ),
        (
            "/api/v2/dashboard/expiring-certs?limit=101",
            "limit must be between",
        ),
        (
            "/api/v2/dashboard/expiring-certs?days=-3",
            "invalid query string",
        ),
        (
            "/api/v2/dashboard/certificate-trend?days=9999",
            "days must be between",
        ),
        (
            "/api/v2/dashboard/certificate-trend?days=x",
            "invalid query string",
        ),
        (
            "/api/v2/dashboard/recent-cas?limit=0",
            "limit must be between",
        ),
    ] {
        let (status, body) = server
            .call(Method::GET, path, &Auth::Session(&admin), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(needle)),
            "{path}: {body}"
        );
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn overview_counts_acme_accounts_for_those_who_may_read_them() -> TestResult {
    let acme = crate::acme::AcmeServer::start(80, 443, None, &[]).await;
    let server = &acme.server;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    assert_eq!(
        get(server, &auth, "/api/v2/stats/overview").await["acme_accounts"],
        0
    );
    acme.account().await;
    acme.account().await;
    let overview = get(server, &auth, "/api/v2/stats/overview").await;
    assert_eq!(overview["acme_accounts"], 2, "{overview}");
    let (_, key) = server.api_key(&admin, &["read:certificates"]).await;
    let limited = get(server, &Auth::Bearer(&key), "/api/v2/stats/overview").await;
    assert_eq!(limited["acme_accounts"], Value::Null);
    assert_eq!(limited["total_certs"], overview["total_certs"]);
    Ok(())
}

#[tokio::test]
async fn search_finds_csrs_and_users_for_those_who_may_read_them() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/csrs",
            &auth,
            Some(json!({"common_name": "needle-csr.search.test",
                        "san": ["dns:needle-csr.search.test"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.user(&admin, "needle-user", "viewer").await;

    let found = get(&server, &auth, "/api/v2/search?q=NEEDLE").await;
    assert_eq!(
        found["csrs"][0]["common_name"], "needle-csr.search.test",
        "{found}"
    );
    assert_eq!(found["csrs"][0]["status"], "pending", "{found}");
    assert_eq!(found["csrs"].as_array().map(Vec::len), Some(1));
    assert_eq!(found["users"][0]["username"], "needle-user", "{found}");
    assert_eq!(found["users"][0]["role"], "viewer");
    assert_eq!(found["users"].as_array().map(Vec::len), Some(1));
    assert!(found["users"][0]["password_hash"].is_null(), "{found}");

    // A viewer reads CSRs but not users; a key for certificates alone, neither.
    let viewer = server
        .login("needle-user", crate::common::ADMIN_PASSWORD)
        .await;
    let found = get(&server, &Auth::Session(&viewer), "/api/v2/search?q=needle").await;
    assert_eq!(found["csrs"][0]["common_name"], "needle-csr.search.test");
    assert_eq!(found["users"], Value::Null, "{found}");
    let (_, key) = server.api_key(&admin, &["read:certificates"]).await;
    let found = get(&server, &Auth::Bearer(&key), "/api/v2/search?q=needle").await;
    assert_eq!(found["csrs"], Value::Null);
    assert_eq!(found["users"], Value::Null);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn activity_is_the_newest_audit_records() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    issue(
        &server,
        &admin,
        json!({"common_name": "activity.dash.test"}),
    )
    .await?;
    let (_, logs) = server
        .call(Method::GET, "/api/v2/audit/logs?per_page=3", &auth, None)
        .await;
    let ids = |list: &Value| -> Vec<i64> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_i64())
            .collect()
    };
    let newest = ids(&logs["data"]);
    assert_eq!(newest.len(), 3, "{logs}");
    let activity = get(&server, &auth, "/api/v2/dashboard/activity?limit=2").await;
    assert_eq!(ids(&activity), newest[..2]);
    assert_eq!(activity[0]["action"], logs["data"][0]["action"]);
    assert_eq!(activity[0]["username"], "admin");
    let skipped = get(
        &server,
        &auth,
        "/api/v2/dashboard/activity?limit=2&offset=1",
    )
    .await;
    assert_eq!(ids(&skipped), newest[1..3]);
    let default = get(&server, &auth, "/api/v2/dashboard/activity").await;
    assert!(
        default
            .as_array()
            .is_some_and(|a| a.len() >= 3 && a.len() <= 20)
    );

    for (query, needle) in [
        ("limit=0", "limit must be"),
        ("offset=10001", "offset must be"),
    ] {
        let (status, body) = server
            .call(
                Method::GET,
                &format!("/api/v2/dashboard/activity?{query}"),
                &auth,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(needle)),
            "{body}"
        );
    }
    let (_, key) = server.api_key(&admin, &["read:certificates"]).await;
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/dashboard/activity",
            &Auth::Bearer(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn system_status_reports_what_the_node_measures() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let status = get(&server, &auth, "/api/v2/dashboard/system-status").await;
    assert_eq!(status["database"], "connected", "{status}");
    let backend = if server.database_url.starts_with("postgres") {
        "postgresql"
    } else {
        "sqlite"
    };
    assert_eq!(status["database_backend"], backend);
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    let disk = &status["disk_usage"];
    let (used, total) = (
        disk["used_bytes"].as_u64().ok_or("used")?,
        disk["total_bytes"].as_u64().ok_or("total")?,
    );
    assert!(total > 0 && used <= total, "{disk}");
    assert!(
        disk["used"].as_str().is_some_and(|s| s.ends_with('B')),
        "{disk}"
    );
    assert!(status["uptime_seconds"].as_i64().is_some_and(|s| s >= 0));
    assert!(status["uptime"].as_str().is_some_and(|s| s.contains(':')));

    // CRL and OCSP figures agree with what /crl and /ocsp/status list.
    let crls = get(&server, &auth, "/api/v2/crl").await;
    let crls = crls.as_array().ok_or("crl list")?;
    let publishing = crls.iter().filter(|c| c["cdp_enabled"] == true).count();
    let crl = &status["crl"];
    assert_eq!(crl["publishing_cas"], publishing, "{status}");
    assert_eq!(
        crl["current"]
            .as_u64()
            .zip(crl["overdue"].as_u64())
            .map(|(a, b)| a + b),
        Some(publishing as u64)
    );
    let healthy = if crl["overdue"] == 0 {
        "healthy"
    } else {
        "degraded"
    };
    assert_eq!(status["status"], healthy, "{status}");
    let ocsp = get(&server, &auth, "/api/v2/ocsp/status").await;
    let enabled = ocsp["cas"]
        .as_array()
        .ok_or("ocsp cas")?
        .iter()
        .filter(|c| c["ocsp_enabled"] == true)
        .count();
    assert_eq!(status["ocsp"]["enabled_cas"], enabled);
    assert_eq!(status["ocsp"]["url"], ocsp["url"]);

    server.stop().await;
    Ok(())
}
