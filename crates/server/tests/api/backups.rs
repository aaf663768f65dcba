//! Scheduled backups through `/api/v2/settings/backup/schedule`: refused without a passphrase
//! or with bad values, the passphrase sealed (never shown, counted by the encryption status
//! and sealed again by a master-key rotation), the retention keeping the newest scheduled
//! backups and every manual one, and a backup deleted; who may do it.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::acme::AcmeServer;
use crate::acme_peers::{Certbot, free_port};
use crate::common::{Auth, TestResult, TestServer};
use crate::jobs::run_job_within;
use crate::master_key::{finished, versions_by_kind};

const PASSPHRASE: &str = "the scheduled backups' passphrase";

#[tokio::test]
async fn scheduled_backups_keep_the_newest_and_every_manual_one() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (_, narrow) = server.api_key(&admin, &["read:certificates"]).await;
    let path = "/api/v2/settings/backup/schedule";

    let (status, schedule) = server.call(Method::GET, path, &auth, None).await;
    assert_eq!(status, StatusCode::OK, "{schedule}");
    assert_eq!(schedule["data"]["enabled"], false, "off until asked for");
    assert_eq!(schedule["data"]["passphrase_set"], false);
    for (body, why) in [
        (json!({"enabled": true}), "no passphrase"),
        (json!({"passphrase": "too short"}), "short passphrase"),
        (json!({"keep": 0}), "keep 0"),
        (json!({"retention_days": 0}), "retention 0"),
        (json!({"frequency": "daily", "time": "25:00"}), "bad time"),
        (json!({"frequency": "weekly", "day": "someday"}), "bad day"),
        (json!({"frequency": "monthly"}), "unknown frequency"),
        (json!({"keep": 2, "surprise": true}), "unknown field"),
    ] {
        let (status, answer) = server.call(Method::PATCH, path, &auth, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {answer}");
    }
    let (status, answer) = server
        .call(
            Method::PATCH,
            path,
            &Auth::Bearer(&narrow),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");

    let (status, schedule) = server
        .call(
            Method::PATCH,
            path,
            &auth,
            Some(
                json!({"enabled": true, "frequency": "weekly", "day": "tue", "time": "03:30",
                        "keep": 2, "passphrase": PASSPHRASE}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{schedule}");
    let data = &schedule["data"];
    assert_eq!(data["enabled"], true);
    assert_eq!(data["schedule"], "weekly tue 03:30");
    assert_eq!(
        (data["frequency"].as_str(), data["day"].as_str()),
        (Some("weekly"), Some("tue"))
    );
    assert_eq!(data["passphrase_set"], true);
    assert!(!schedule.to_string().contains(PASSPHRASE), "{schedule}");
    let (status, encryption) = server
        .call(
            Method::GET,
            "/api/v2/system/security/encryption-status",
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{encryption}");
    assert!(
        encryption.to_string().contains("backup_passphrase"),
        "the sealed passphrase is counted: {encryption}"
    );

    let (status, manual) = server
        .call(
            Method::POST,
            "/api/v2/settings/backup/create",
            &auth,
            Some(json!({"passphrase": "a manual backup's own passphrase"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{manual}");
    let manual_id = manual["data"]["id"].as_str().ok_or("id")?.to_owned();
    server.clock.advance(time::Duration::minutes(10));
    let mut scheduled = Vec::new();
    for _ in 0..3 {
        let job = run_job_within(&server, &admin, "backup", 60).await?;
        assert_eq!(job["last_run"]["outcome"], "succeeded", "{job}");
        // Time passes between runs (less than a session's idle limit).
        server.clock.advance(time::Duration::minutes(10));
        let (_, listed) = server
            .call(Method::GET, "/api/v2/system/backup/list", &auth, None)
            .await;
        scheduled.push(listed["data"][0]["id"].as_str().ok_or("id")?.to_owned());
    }
    let (status, listed) = server
        .call(Method::GET, "/api/v2/system/backup/list", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .ok_or("list")?
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        vec![
            scheduled[2].as_str(),
            scheduled[1].as_str(),
            manual_id.as_str()
        ],
        "the two newest scheduled backups and the manual one"
    );
    assert!(
        listed["data"][0]["kind"] == "scheduled" && listed["data"][2]["kind"] == "manual",
        "{listed}"
    );
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/settings/backup/{}", scheduled[2]),
            &Auth::Bearer(&narrow),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/settings/backup/{}", scheduled[2]),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/settings/backup/{}", scheduled[2]),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, config) = server
        .call(Method::GET, "/api/v2/settings/backup", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{config}");
    assert_eq!(config["data"]["count"], 2, "{config}");
    assert_eq!(config["data"]["schedule"]["keep"], 2);
    for action in [
        "backup_schedule_updated",
        "backup_created",
        "backup_pruned",
        "backup_deleted",
    ] {
        assert!(
            server.audit_total(&auth, &format!("action={action}")).await > 0,
            "{action} audited"
        );
    }

    // The master-key rotation seals the passphrase again, and backups keep running after it.
    let (status, rotation) = server
        .call(
            Method::POST,
            "/api/v2/system/security/rotate-secrets",
            &auth,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{rotation}");
    finished(&server, &auth).await?;
    let (_, after) = server
        .call(
            Method::GET,
            "/api/v2/system/security/encryption-status",
            &auth,
            None,
        )
        .await;
    assert_eq!(
        versions_by_kind(&after["data"])?.get("backup_passphrase"),
        Some(&vec![2]),
        "{after}"
    );
    let job = run_job_within(&server, &admin, "backup", 60).await?;
    assert_eq!(job["last_run"]["outcome"], "succeeded", "{job}");
    server.stop().await;
    Ok(())
}

/// certbot's account on one instance keeps working on another restored from its backup,
/// serving at the same address: the account, its key binding and its orders came along.
#[tokio::test]
async fn certbot_keeps_its_account_on_an_instance_restored_from_a_backup() -> TestResult {
    let name = "kept.example.test";
    let http_port = free_port();
    let acme = AcmeServer::start(http_port, 1, None, &[name]).await;
    let certbot = Certbot::new(&acme.directory(), &acme.root);
    certbot
        .certonly_standalone(http_port, &[name])
        .await
        .assert_success("certbot certonly --standalone");
    let first = certbot.live(name);

    let admin = acme.server.admin().await;
    let (status, created) = acme
        .server
        .call(
            Method::POST,
            "/api/v2/system/backup/create",
            &Auth::Session(&admin),
            Some(json!({"passphrase": PASSPHRASE, "include_master_key": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let running = acme.server.running.as_ref().ok_or("running")?;
    let (https, http) = (running.https_addr, running.http_addr);
    let (_, path) = running
        .app
        .authority
        .backup_shelf()?
        .path(created["data"]["id"].as_str().ok_or("id")?)?;
    let kept = tempfile::tempdir()?;
    let file = kept.path().join("backup.cmbackup");
    std::fs::copy(&path, &file)?;
    let AcmeServer { server, dir, root } = acme;
    server.stop().await;

    // A new data directory and database, restored as `certmint backup restore` does.
    let data = kept.path().join("data");
    std::fs::create_dir_all(&data)?;
    let database_url = match crate::common::database_url().await {
        url if url.is_empty() => {
            format!("sqlite://{}?mode=rwc", data.join("certmint.db").display())
        }
        url => url,
    };
    let mut backup = authority::backup::open_backup(
        std::fs::File::open(&file)?,
        authority::backup::SecretString::from(PASSPHRASE.to_owned()),
    )
    .await?;
    let key = backup
        .file(authority::backup::MASTER_KEY_PART)?
        .ok_or("the master key inside")?;
    authority::vault::write_private(&data.join("master.key"), &key)?;
    let (vault, _) = authority::Vault::from_key_file(&data.join("master.key"))?;
    authority::backup::restore_into(&database_url, &vault, backup).await?;
    drop(vault);
    let restored = TestServer::start_with(|s| {
        s.data_dir = data.clone();
        s.database_url = database_url.clone();
        s.listen = https;
        s.http_listen = http.map(|a| a.to_string()).unwrap_or_default();
        s.acme.validation.allow_private_addresses = true;
        s.acme.validation.http_port = http_port;
        s.acme.validation.tls_port = 1;
        s.acme.validation.hosts = [(name.to_owned(), "127.0.0.1".to_owned())].into();
    })
    .await;
    certbot
        .renew_forced()
        .await
        .assert_success("certbot renew --force-renewal, on the restored instance");
    let renewed = certbot.live(name);
    assert_ne!(renewed.cert, first.cert, "a new certificate");
    let admin = restored.admin().await;
    let (status, stats) = restored
        .call(
            Method::GET,
            "/api/v2/system/db/stats",
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let accounts = stats["data"]["tables"]
        .as_array()
        .ok_or("tables")?
        .iter()
        .find(|t| t["name"] == "acme_accounts")
        .ok_or("acme_accounts")?
        .clone();
    assert_eq!(
        accounts["rows"], 1,
        "certbot used the restored account: {accounts}"
    );
    restored.stop().await;
    drop((dir, root));
    Ok(())
}
