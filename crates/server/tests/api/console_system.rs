//! The console's system pages: backups made, listed, downloaded, refused and restored (the
//! node starting again over the restored rows), the encryption status and a master-key
//! rotation, the general settings, the database's figures and operations, the HTTPS
//! certificate regenerated and a mismatched upload refused, and the syslog server; what a
//! user without `admin:system` and a forged form get.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{ADMIN_PASSWORD, Auth, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form, rest};
use crate::master_key::finished;

const PASSPHRASE: &str = "the console's backup passphrase";

/// The system pages and their navigation labels.
const PAGES: [(&str, &str); 6] = [
    ("/system/settings", "Settings"),
    ("/system/backup", "Backups"),
    ("/system/security", "Encryption"),
    ("/system/database", "Database"),
    ("/system/https", "HTTPS"),
    ("/system/syslog", "Syslog"),
];

/// A browser-like client (no redirects followed) trusting the server on `data_dir`.
fn browser_on(data_dir: &std::path::Path) -> TestResult<reqwest::Client> {
    let cert = std::fs::read(data_dir.join("tls/server.crt"))?;
    Ok(reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&cert)?])
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// The text between `start` and the next `<` in `html`.
fn text_after<'a>(html: &'a str, start: &str) -> Option<&'a str> {
    let from = html.find(start)? + start.len();
    html[from..].split('<').next()
}

#[tokio::test]
async fn backups_are_made_listed_and_restored_from_the_console() -> TestResult {
    let data = tempfile::tempdir()?;
    let data_dir = data.path().to_path_buf();
    let first_dir = data_dir.clone();
    let server = TestServer::start_with(move |s| s.data_dir = first_dir).await;
    let admin = server.admin().await;
    let client = browser_on(&data_dir)?;
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let response = get(&client, server.url("/system/backup"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains("No backups yet."), "{html}");
    assert!(!html.contains("http-equiv=\"refresh\""), "nothing runs");

    let response = post_form(
        &client,
        server.url("/system/backup/create"),
        cookie,
        &[("csrf_token", csrf), ("passphrase", "too short")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains(r#"id="backup-error""#), "{html}");

    let response = post_form(
        &client,
        server.url("/system/backup/create"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("passphrase", PASSPHRASE),
            ("include_master_key", "1"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let html = response.text().await?;
    let listed = rest(&server, &admin, "/api/v2/system/backup/list").await;
    let backup = listed
        .as_array()
        .and_then(|all| all.first())
        .ok_or("the console's backup is not listed")?
        .clone();
    let id = backup["id"].as_str().ok_or("id")?;
    assert!(html.contains(r#"id="backup-created""#), "{html}");
    assert!(
        html.contains(&format!(
            r#"<span class="mono">{id}</span>: {} bytes, {} rows"#,
            backup["size"], backup["rows"]
        )),
        "{html}"
    );
    assert!(
        html.contains(r#"<th scope="row" class="mono">cas</th>"#),
        "rows per table: {html}"
    );
    let html = get(&client, server.url("/system/backup"), cookie)
        .await
        .text()
        .await?;
    assert!(html.contains(&format!(r#"id="backup-{id}""#)), "{html}");
    let file = get(
        &client,
        server.url(&format!("/system/backup/{id}/download")),
        cookie,
    )
    .await;
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(
        Some(file.bytes().await?.len() as u64),
        backup["size"].as_u64()
    );

    // The schedule: switched on with a passphrase, as the REST API then shows it.
    let response = post_form(
        &client,
        server.url("/system/backup/schedule"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("enabled", "1"),
            ("frequency", "weekly"),
            ("time", "03:30"),
            ("day", "sun"),
            ("keep", "4"),
            ("retention_days", ""),
            ("passphrase", PASSPHRASE),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/system/backup#schedule");
    let schedule = rest(&server, &admin, "/api/v2/settings/backup/schedule").await;
    assert_eq!(schedule["schedule"], "weekly sun 03:30", "{schedule}");
    assert_eq!(
        (
            &schedule["enabled"],
            &schedule["keep"],
            &schedule["passphrase_set"]
        ),
        (&Value::Bool(true), &Value::from(4), &Value::Bool(true))
    );

    // An upload carries its token in the query string; without it, or with the wrong
    // passphrase, nothing is restored.
    let upload = |token: Option<&str>, passphrase: &str, bytes: Vec<u8>| {
        let form = reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name("backup.cmbackup"),
            )
            .text("passphrase", passphrase.to_owned());
        let url = match token {
            Some(t) => server.url(&format!("/system/backup/upload?csrf_token={t}")),
            None => server.url("/system/backup/upload"),
        };
        client
            .post(url)
            .header("cookie", &admin.cookie)
            .multipart(form)
            .send()
    };
    let bytes = get(
        &client,
        server.url(&format!("/system/backup/{id}/download")),
        cookie,
    )
    .await
    .bytes()
    .await?
    .to_vec();
    let response = upload(None, PASSPHRASE, bytes.clone()).await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = upload(Some(csrf), "not the passphrase at all", bytes).await?;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(html.contains(r#"id="backup-error""#), "{html}");

    // Made after the backup: the restore takes it away.
    server.user(&admin, "later", "viewer").await;
    let response = post_form(
        &client,
        server.url("/system/backup/restore"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("backup_id", id),
            ("passphrase", PASSPHRASE),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    assert!(
        html.contains("This node is starting again now") && html.contains(r#"href="/login""#),
        "{html}"
    );
    assert!(
        html.contains(r#"<meta http-equiv="refresh" content="10; url=/login">"#),
        "{html}"
    );
    let running = server.running.as_ref().ok_or("running")?;
    tokio::time::timeout(Duration::from_secs(10), running.app.restart_requested()).await?;

    // The node comes back over the restored rows, as `certmint serve` starts it again.
    let database_url = server.database_url.clone();
    server.stop().await;
    let again_dir = data_dir.clone();
    let server = TestServer::start_with(move |s| {
        s.data_dir = again_dir;
        s.database_url = database_url;
    })
    .await;
    let admin = server.admin().await;
    let users = rest(&server, &admin, "/api/v2/users").await;
    assert!(
        users
            .as_array()
            .is_some_and(|all| all.iter().all(|u| u["username"] != "later")),
        "{users}"
    );
    let client = browser_on(&data_dir)?;
    let cookie = Some(admin.cookie.as_str());
    let html = get(&client, server.url("/system/backup"), cookie)
        .await
        .text()
        .await?;
    assert!(html.contains(&format!(r#"id="backup-{id}""#)), "{html}");
    let response = post_form(
        &client,
        server.url(&format!("/system/backup/{id}/delete")),
        cookie,
        &[("csrf_token", admin.csrf.as_str())],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let listed = rest(&server, &admin, "/api/v2/system/backup/list").await;
    assert_eq!(listed, Value::Array(Vec::new()));
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_master_key_is_rotated_from_the_console() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());

    let response = get(&client, server.url("/system/security"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    let status = rest(&server, &admin, "/api/v2/system/security/encryption-status").await;
    assert_eq!(status["version"], 1);
    assert_eq!(text_after(&html, r#"id="key-version">"#), Some("1"));
    assert!(
        html.contains(r#"<th scope="row" class="mono">ca_key</th>"#),
        "{html}"
    );

    let response = post_form(
        &client,
        server.url("/system/security/rotate"),
        cookie,
        &[("csrf_token", admin.csrf.as_str())],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/system/security#rotation");
    finished(&server, &Auth::Session(&admin)).await?;
    let html = get(&client, server.url("/system/security"), cookie)
        .await
        .text()
        .await?;
    assert_eq!(
        text_after(&html, r#"id="key-version">"#),
        Some("2"),
        "{html}"
    );
    assert!(html.contains("to version 2."), "{html}");
    let status = rest(&server, &admin, "/api/v2/system/security/encryption-status").await;
    assert_eq!(
        (&status["version"], &status["under_older_keys"]),
        (&Value::from(2), &Value::from(0))
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn live_settings_change_from_the_console() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let response = get(&client, server.url("/system/settings"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(html.contains(r#"id="setting-lockout_threshold""#), "{html}");
    assert!(
        !html.contains(r#"id="setting-public_url""#),
        "a restart setting has no field"
    );
    assert!(html.contains(r#"id="row-public_url""#), "but is shown");

    let response = post_form(
        &client,
        server.url("/system/settings"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("lockout_threshold", "7"),
            ("session_idle_minutes", ""),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let general = rest(&server, &admin, "/api/v2/settings/general").await;
    assert_eq!(general["lockout_threshold"]["value"], 7, "{general}");
    assert_eq!(general["lockout_threshold"]["source"], "database");
    assert_eq!(
        general["auth_rate_limit_enabled"]["value"], false,
        "an unticked box"
    );
    let html = get(&client, server.url("/system/settings"), cookie)
        .await
        .text()
        .await?;
    assert!(
        html.contains(r#"name="lockout_threshold" inputmode="numeric" value="7""#),
        "{html}"
    );

    for value in ["0", "many"] {
        let response = post_form(
            &client,
            server.url("/system/settings"),
            cookie,
            &[("csrf_token", csrf), ("lockout_threshold", value)],
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{value}"
        );
        let html = response.text().await?;
        assert!(
            html.contains(r#"id="settings-error""#) && html.contains("lockout_threshold"),
            "{html}"
        );
    }
    let general = rest(&server, &admin, "/api/v2/settings/general").await;
    assert_eq!(general["lockout_threshold"]["value"], 7);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn database_operations_run_from_the_console() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let response = get(&client, server.url("/system/database"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    let stats = rest(&server, &admin, "/api/v2/system/db/stats").await;
    let cas = stats["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "cas"))
        .ok_or("cas")?;
    assert!(
        html.contains(&format!(
            r#"<tr id="table-cas"><th scope="row" class="mono">cas</th><td>{}</td>"#,
            cas["rows"]
        )),
        "{html}"
    );
    let engine = if stats["backend"] == "sqlite" {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    assert_eq!(text_after(&html, r#"id="db-backend">"#), Some(engine));

    for (path, shows) in [
        (
            "/system/database/integrity-check",
            "Integrity check: no problems found",
        ),
        ("/system/database/optimize", "Database optimized"),
        (
            "/system/database/chain-repair",
            "Repair run: 0 CAs and 0 certificates linked again",
        ),
    ] {
        let response = post_form(&client, server.url(path), cookie, &[("csrf_token", csrf)]).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let html = response.text().await?;
        assert!(html.contains(shows), "{path}: {html}");
    }
    let auth = Auth::Session(&admin);
    for action in ["database_integrity_checked", "database_optimized"] {
        assert!(
            server.audit_total(&auth, &format!("action={action}")).await > 0,
            "{action} audited"
        );
    }

    let response = get(&client, server.url("/system/database/export"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let zip = response.bytes().await?;
    assert!(zip.starts_with(b"PK"), "a ZIP archive");
    server.stop().await;
    Ok(())
}

/// A self-signed certificate for localhost, and its key.
fn self_signed() -> TestResult<(String, String)> {
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

#[tokio::test]
async fn the_https_certificate_is_regenerated_from_the_console() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();
    let serial = |html: &str| text_after(html, r#"id="https-serial">"#).map(str::to_owned);

    let response = get(&client, server.url("/system/https"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    let before = rest(&server, &admin, "/api/v2/system/https/cert-info").await;
    assert_eq!(serial(&html).as_deref(), before["serial_number"].as_str());

    let response = post_form(
        &client,
        server.url("/system/https/regenerate"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("common_name", "console.localhost"),
            ("sans", "console.localhost\nlocalhost\n127.0.0.1"),
            ("validity_days", "30"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    assert!(html.contains(r#"id="https-done""#), "{html}");
    let after = rest(&server, &admin, "/api/v2/system/https/cert-info").await;
    assert_ne!(after["serial_number"], before["serial_number"]);
    assert_eq!(serial(&html).as_deref(), after["serial_number"].as_str());
    assert_eq!(after["common_name"], "console.localhost");
    assert!(
        server
            .audit_total(
                &Auth::Session(&admin),
                "action=https_certificate_regenerated"
            )
            .await
            > 0
    );

    // A key of another certificate: refused, saying so, and nothing changes.
    let (certificate, _) = self_signed()?;
    let (_, other_key) = self_signed()?;
    let response = post_form(
        &client,
        server.url("/system/https/apply"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("certificate", &certificate),
            ("private_key", &other_key),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await?;
    assert!(
        html.contains(r#"id="https-error""#) && html.contains("does not belong"),
        "{html}"
    );
    assert!(
        !html.contains("BEGIN PRIVATE KEY"),
        "a pasted key is not shown again"
    );
    let now = rest(&server, &admin, "/api/v2/system/https/cert-info").await;
    assert_eq!(now["serial_number"], after["serial_number"]);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_syslog_server_is_set_and_tried_from_the_console() -> TestResult {
    let server = TestServer::start_with(|s| s.syslog.allow_private_targets = true).await;
    let admin = server.admin().await;
    let client = browser(&server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();

    let response = get(&client, server.url("/system/syslog"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert_eq!(text_after(&html, r#"id="syslog-state">"#), Some("off"));

    // A syslog server that takes the connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port().to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut sink = tokio::io::sink();
                let _ = tokio::io::copy(&mut socket, &mut sink).await;
            });
        }
    });
    let settings = |port: &str| {
        vec![
            ("csrf_token", csrf.to_owned()),
            ("host", "127.0.0.1".to_owned()),
            ("port", port.to_owned()),
            ("protocol", "tcp".to_owned()),
            ("facility", "local3".to_owned()),
            ("ca_pem", String::new()),
        ]
    };
    let send = |fields: Vec<(&'static str, String)>| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = crate::console::form(&fields);
        client
            .post(server.url("/system/syslog"))
            .header("cookie", &admin.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let response = send(settings("70000")).await?;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await?.contains(r#"id="syslog-error""#));

    let response = send(settings(&port)).await?;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{}",
        response.text().await?
    );
    let syslog = rest(&server, &admin, "/api/v2/system/audit/syslog").await;
    assert_eq!(
        (
            &syslog["host"],
            &syslog["protocol"],
            &syslog["facility"],
            &syslog["enabled"]
        ),
        (
            &Value::from("127.0.0.1"),
            &Value::from("tcp"),
            &Value::from("local3"),
            &Value::Bool(false)
        ),
        "{syslog}"
    );
    assert_eq!(syslog["port"].to_string(), port);

    let response = post_form(
        &client,
        server.url("/system/syslog/test"),
        cookie,
        &[("csrf_token", csrf)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await?;
    assert!(
        html.contains(&format!("The test message went to 127.0.0.1:{port}")),
        "{html}"
    );
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn without_admin_system_there_are_no_system_pages() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    server.user(&admin, "otto", "operator").await;
    let operator = server.login("otto", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(operator.cookie.as_str());
    let dashboard = get(&client, server.url("/"), cookie).await.text().await?;
    for (path, _) in PAGES {
        let response = get(&client, server.url(path), cookie).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(
            !dashboard.contains(&format!(r#"href="{path}""#)),
            "no link to {path}"
        );
    }
    let admin_page = get(&client, server.url("/"), Some(admin.cookie.as_str()))
        .await
        .text()
        .await?;
    for (path, label) in PAGES {
        assert!(
            admin_page.contains(&format!(r#"<a href="{path}">{label}</a>"#)),
            "{path}: {admin_page}"
        );
    }

    let posts: [(&str, Vec<(&str, &str)>); 7] = [
        ("/system/backup/create", vec![("passphrase", PASSPHRASE)]),
        ("/system/security/rotate", vec![]),
        ("/system/settings", vec![("lockout_threshold", "9")]),
        ("/system/database/optimize", vec![]),
        ("/system/https/regenerate", vec![]),
        (
            "/system/syslog",
            vec![("host", "logs.example"), ("port", "601")],
        ),
        ("/system/syslog/test", vec![]),
    ];
    // Neither an operator with a token nor the admin without one changes anything.
    for (path, fields) in &posts {
        let mut with_token = fields.clone();
        with_token.push(("csrf_token", operator.csrf.as_str()));
        let response = post_form(&client, server.url(path), cookie, &with_token).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let response = post_form(
            &client,
            server.url(path),
            Some(admin.cookie.as_str()),
            fields,
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}, no token");
    }
    assert_eq!(
        rest(&server, &admin, "/api/v2/system/backup/list").await,
        Value::Array(Vec::new())
    );
    assert_eq!(
        rest(&server, &admin, "/api/v2/system/security/encryption-status").await["version"],
        1
    );
    assert_ne!(
        rest(&server, &admin, "/api/v2/settings/general").await["lockout_threshold"]["value"],
        9
    );
    assert_eq!(
        rest(&server, &admin, "/api/v2/system/audit/syslog").await["host"],
        ""
    );
    let (status, _) = server
        .call(
            Method::GET,
            "/api/v2/system/https/cert-info",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
    Ok(())
}
