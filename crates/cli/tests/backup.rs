//! Backups through the real binary: written through the API and by `certmint backup create`
//! beside a running server, restored by `certmint backup restore` onto fresh data directories
//! (SQLite → SQLite, SQLite → PostgreSQL, PostgreSQL → SQLite when `CERTMINT_TEST_DATABASE_URL`
//! names a server; SQLite throughout otherwise), and through the API into a running server,
//! which starts again by itself. Every restored instance has the same rows, a verifying audit
//! chain, the same admin password, and revokes an old certificate with OCSP saying so.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    EPHEMERAL, Http, Server, TestResult, api_key, call, certmint, err, ocsp_status, out, run, serve,
};
use reqwest::Method;
use serde_json::{Value, json};

const PASSPHRASE: &str = "a passphrase for the backup test";
/// Tables a node writes to by itself once started (the audit chain, published CRLs and OCSP
/// answers, events, leases, its own logins): a restored one has at least the backup's rows.
const MOVING: [&str; 12] = [
    "audit_log",
    "audit_head",
    "crls",
    "ocsp_responses",
    "outbox",
    "webhook_deliveries",
    "expiry_notices",
    "leases",
    "acme_used_nonces",
    "acme_rate_counters",
    "sessions",
    // Written by the scheduler's first tick, which a slow machine may not have reached when
    // the backup is taken.
    "jobs",
];

fn backup(data: &Path, database: &[String], args: &[&str]) -> Command {
    let mut command = certmint();
    command
        .arg("backup")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .args(database)
        .env("CERTMINT_BACKUP_PASSPHRASE", PASSPHRASE);
    command
}

/// Rows per table, as `/system/db/stats` counts them.
fn rows(http: &Http, server: &Server, key: &str) -> BTreeMap<String, u64> {
    let (status, body) = call(
        http,
        server,
        key,
        Method::GET,
        "/api/v2/system/db/stats",
        None,
    )
    .expect("stats");
    assert_eq!(status, 200, "{body}");
    table_counts(&body["data"]["tables"])
}

/// `[{name, rows}]` as a map.
fn table_counts(tables: &Value) -> BTreeMap<String, u64> {
    tables
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn issue(http: &Http, server: &Server, key: &str, name: &str) -> i64 {
    let (status, body) = call(
        http,
        server,
        key,
        Method::POST,
        "/api/v2/certificates",
        Some(json!({"common_name": name, "san": [format!("dns:{name}")]})),
    )
    .expect("issue");
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_i64().expect("id")
}

/// When `server`'s node started, by its health answer; none while it is not answering.
fn started_at(http: &Http, server: &Server) -> Option<f64> {
    http.rt.block_on(async {
        let health: Value = Http::client(server)
            .ok()?
            .get(server.https_url("/api/v2/health"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        health["started_at"].as_f64()
    })
}

/// Waits until `server`'s node answers again after starting anew (a restore or a reset), no
/// longer the one that started at `before`.
fn wait_restarted(http: &Http, server: &Server, before: f64) {
    let since = Instant::now();
    while started_at(http, server).is_none_or(|now| now == before) {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "the node did not start again"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How many certificates a search for `name` finds.
fn named(http: &Http, server: &Server, key: &str, name: &str) -> u64 {
    let (status, found) = call(
        http,
        server,
        key,
        Method::GET,
        &format!("/api/v2/certificates?search={name}"),
        None,
    )
    .expect("search");
    assert_eq!(status, 200, "{found}");
    found["meta"]["total"].as_u64().expect("total")
}

/// Checks an instance restored from a backup whose tables held `expected` rows: every table
/// as many rows (those in [`MOVING`] at least as many, and one API key more, made here), the
/// audit chain verifies, the admin's password works, and the certificate `old` revokes with
/// OCSP saying so. Returns an API key.
fn check_restored(
    http: &Http,
    server: &Server,
    password: &str,
    expected: &BTreeMap<String, u64>,
    old: i64,
    dir: &Path,
) -> Result<String, Box<dyn std::error::Error>> {
    let key = api_key(http, server, password, &["*"])?;
    let found = rows(http, server, &key);
    for (table, rows) in expected {
        let here = found.get(table).copied().unwrap_or_default();
        if MOVING.contains(&table.as_str()) {
            assert!(here >= *rows, "{table}: {here} rows, the backup had {rows}");
        } else if table == "api_keys" {
            assert_eq!(here, rows + 1, "{table}");
        } else {
            assert_eq!(here, *rows, "{table}");
        }
    }
    // Three issued and the HTTPS listener's.
    assert!(expected["certificates"] >= 4, "{expected:?}");
    let (status, verify) = call(
        http,
        server,
        &key,
        Method::GET,
        "/api/v2/audit/verify",
        None,
    )?;
    assert_eq!(status, 200, "{verify}");
    assert_eq!(verify["data"]["valid"], true, "{verify}");
    let said = ocsp_status(http, server, server, &key, old, dir)?;
    assert!(said.contains(": good"), "{said}");
    let (status, revoked) = call(
        http,
        server,
        &key,
        Method::POST,
        &format!("/api/v2/certificates/{old}/revoke"),
        Some(json!({"reason": "superseded"})),
    )?;
    assert_eq!(status, 200, "{revoked}");
    let since = Instant::now();
    loop {
        let said = ocsp_status(http, server, server, &key, old, dir)?;
        if said.contains(": revoked") {
            break;
        }
        assert!(since.elapsed() < Duration::from_secs(5), "{said}");
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(key)
}

/// Restores `file` into the fresh data directory `data` on `database`, then starts it.
fn restore_and_start(
    file: &Path,
    data: &Path,
    database: &[String],
) -> Result<Server, Box<dyn std::error::Error>> {
    let output = run(&mut backup(
        data,
        database,
        &["restore", &file.display().to_string()],
    ));
    assert!(
        output.status.success(),
        "restore: {}{}",
        out(&output),
        err(&output)
    );
    assert!(
        out(&output).contains("restored the backup"),
        "{}",
        out(&output)
    );
    Ok(Server::start(serve(data, EPHEMERAL).args(database), data)?)
}

/// `certmint backup create` on `data`: the backup's file and its record's table counts.
fn create_by_cli(
    data: &Path,
    database: &[String],
    args: &[&str],
) -> Result<(String, BTreeMap<String, u64>), Box<dyn std::error::Error>> {
    let mut all = vec!["create"];
    all.extend_from_slice(args);
    let output = run(&mut backup(data, database, &all));
    assert!(output.status.success(), "{}{}", out(&output), err(&output));
    let file = out(&output)
        .split_whitespace()
        .next()
        .ok_or("the backup's path")?
        .to_owned();
    let record: Value =
        serde_json::from_slice(&std::fs::read(file.replace(".cmbackup", ".json"))?)?;
    Ok((file, table_counts(&record["tables"])))
}

#[test]
fn backups_restore_onto_fresh_instances_of_either_engine_and_into_a_running_one() -> TestResult {
    let http = Http::new();
    let root = tempfile::tempdir()?;
    let source_dir = root.path().join("source");
    let source = Server::start(&mut serve(&source_dir, EPHEMERAL), &source_dir)?;
    let password = source.admin_password().ok_or("the admin password")?;
    let key = api_key(&http, &source, &password, &["*"])?;
    let narrow = api_key(
        &http,
        &source,
        &password,
        &["read:certificates", "read:audit"],
    )?;
    let ids: Vec<i64> = (0..3)
        .map(|n| issue(&http, &source, &key, &format!("host{n}.example.test")))
        .collect();
    let (status, body) = call(
        &http,
        &source,
        &key,
        Method::POST,
        "/api/v2/webhooks",
        Some(json!({"name": "ops", "url": "https://hooks.example.test/x"})),
    )?;
    assert_eq!(status, 201, "{body}");

    // A key without admin:system reaches none of it.
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v2/system/backup/create",
            Some(json!({"passphrase": PASSPHRASE})),
        ),
        (Method::GET, "/api/v2/system/backup/list", None),
        (Method::GET, "/api/v2/settings/backup/history", None),
        (Method::GET, "/api/v2/settings/backup/schedule", None),
        (
            Method::POST,
            "/api/v2/system/backup/restore",
            Some(
                json!({"backup_id": "certmint-20260101-000000-00000000", "passphrase": PASSPHRASE}),
            ),
        ),
    ] {
        let (status, answer) = call(&http, &source, &narrow, method, path, body)?;
        assert_eq!(status, 403, "{path}: {answer}");
    }
    let (status, answer) = call(
        &http,
        &source,
        &key,
        Method::POST,
        "/api/v2/system/backup/create",
        Some(json!({"passphrase": "short"})),
    )?;
    assert_eq!(status, 422, "{answer}");

    let (status, created) = call(
        &http,
        &source,
        &key,
        Method::POST,
        "/api/v2/system/backup/create",
        Some(json!({"passphrase": PASSPHRASE, "include_master_key": true})),
    )?;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"]
        .as_str()
        .ok_or("backup id")?
        .to_owned();
    assert_eq!(created["data"]["master_key_included"], true);
    let expected = table_counts(&created["data"]["tables"]);
    let (status, listed) = call(
        &http,
        &source,
        &key,
        Method::GET,
        "/api/v2/settings/backup/history",
        None,
    )?;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["data"][0]["id"], id.as_str(), "{listed}");
    let (status, answer) = call(
        &http,
        &source,
        &narrow,
        Method::GET,
        &format!("/api/v2/system/backup/{id}/download"),
        None,
    )?;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = call(
        &http,
        &source,
        &key,
        Method::GET,
        "/api/v2/system/backup/..%2Fmaster.key/download",
        None,
    )?;
    assert_eq!(status, 404, "{answer}");
    let downloaded = http.rt.block_on(async {
        Http::client(&source)?
            .get(source.https_url(&format!("/api/v2/system/backup/{id}.cmbackup/download")))
            .bearer_auth(&key)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await
            .map_err(Box::<dyn std::error::Error>::from)
    })?;
    assert_eq!(
        downloaded.len() as u64,
        created["data"]["size"].as_u64().ok_or("size")?
    );
    let file = root.path().join("downloaded.cmbackup");
    std::fs::write(&file, &downloaded)?;
    // Written after the backup: no restore brings it back.
    issue(&http, &source, &key, "later.example.test");
    assert_eq!(named(&http, &source, &key, "later.example.test"), 1);

    // Refused before anything is written: a wrong passphrase, a file cut short, a byte
    // changed.
    let refused_dir = root.path().join("refused");
    let output = run(
        backup(&refused_dir, &[], &["restore", &file.display().to_string()])
            .env("CERTMINT_BACKUP_PASSPHRASE", "not the passphrase at all"),
    );
    assert!(!output.status.success());
    assert!(err(&output).contains("passphrase"), "{}", err(&output));
    let cut = root.path().join("cut.cmbackup");
    std::fs::write(&cut, &downloaded[..downloaded.len() / 2])?;
    let mut changed = downloaded.to_vec();
    let middle = changed.len() / 2;
    changed[middle] ^= 0x20;
    let tampered = root.path().join("tampered.cmbackup");
    std::fs::write(&tampered, &changed)?;
    for bad in [&cut, &tampered] {
        let output = run(&mut backup(
            &refused_dir,
            &[],
            &["restore", &bad.display().to_string()],
        ));
        assert!(!output.status.success(), "{}", out(&output));
        assert!(!err(&output).is_empty());
    }
    assert!(
        !refused_dir.join("certmint.db").exists() && !refused_dir.join("master.key").exists(),
        "a refused restore wrote something"
    );

    // SQLite → SQLite, with the master key from the backup.
    let b_dir = root.path().join("b");
    let b = restore_and_start(&file, &b_dir, &[])?;
    assert_eq!(b.admin_password(), None, "the restored admin is used");
    let b_key = check_restored(&http, &b, &password, &expected, ids[0], root.path())?;
    assert_eq!(named(&http, &b, &b_key, "later.example.test"), 0);

    // A backup by the command line beside the running server; a restore there is refused.
    let (b_file, b_expected) = create_by_cli(&b_dir, &[], &[])?;
    let output = run(&mut backup(&b_dir, &[], &["list"]));
    assert_eq!(out(&output).lines().count(), 1, "{}", out(&output));
    let output = run(&mut backup(&b_dir, &[], &["restore", &b_file]));
    assert!(!output.status.success());
    assert!(err(&output).contains("stop it"), "{}", err(&output));
    b.stop()?;

    // Into PostgreSQL (where there is one); the master key file comes separately.
    let pg = http.database_args();
    let c_dir = root.path().join("c");
    std::fs::create_dir_all(&c_dir)?;
    std::fs::copy(b_dir.join("master.key"), c_dir.join("master.key"))?;
    let c = restore_and_start(Path::new(&b_file), &c_dir, &pg)?;
    check_restored(&http, &c, &password, &b_expected, ids[1], root.path())?;

    // And from there into SQLite again.
    let (c_file, c_expected) = create_by_cli(&c_dir, &pg, &["--include-master-key"])?;
    c.stop()?;
    let d_dir = root.path().join("d");
    let d = restore_and_start(Path::new(&c_file), &d_dir, &[])?;
    check_restored(&http, &d, &password, &c_expected, ids[2], root.path())?;
    d.stop()?;
    http.drop_database(&pg);

    // Into the running source, uploaded: it starts again by itself, without the certificate
    // written after the backup.
    let form = reqwest::multipart::Form::new()
        .text("passphrase", PASSPHRASE)
        .part(
            "file",
            reqwest::multipart::Part::bytes(downloaded.to_vec()).file_name("b.cmbackup"),
        );
    let before = started_at(&http, &source).ok_or("the source's health")?;
    let (status, restored) = http.rt.block_on(async {
        let response = Http::client(&source)?
            .post(source.https_url("/api/v2/system/backup/restore"))
            .bearer_auth(&key)
            .multipart(form)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok::<_, Box<dyn std::error::Error>>((status, response.json::<Value>().await?))
    })?;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["data"]["restarting"], true);
    wait_restarted(&http, &source, before);
    // The key was made before the backup, so it works on the restored rows.
    assert_eq!(named(&http, &source, &key, "later.example.test"), 0);
    check_restored(&http, &source, &password, &expected, ids[0], root.path())?;
    let (status, audit) = call(
        &http,
        &source,
        &key,
        Method::GET,
        "/api/v2/audit/logs?action=backup_restored",
        None,
    )?;
    assert_eq!(status, 200, "{audit}");
    assert_eq!(audit["meta"]["total"], 1, "{audit}");
    source.stop()?;
    Ok(())
}

#[test]
fn a_database_reset_backs_up_first_starts_anew_and_is_undone_by_restoring() -> TestResult {
    let http = Http::new();
    let root = tempfile::tempdir()?;
    let dir = root.path().join("node");
    let database = http.database_args();
    let server = Server::start(serve(&dir, EPHEMERAL).args(&database), &dir)?;
    let password = server.admin_password().ok_or("the admin password")?;
    let key = api_key(&http, &server, &password, &["*"])?;
    let narrow = api_key(&http, &server, &password, &["read:certificates"])?;
    issue(&http, &server, &key, "before-reset.example.test");
    let reset = |key: &str, body: Value| {
        call(
            &http,
            &server,
            key,
            Method::POST,
            "/api/v2/system/db/reset",
            Some(body),
        )
    };

    // Refused, with nothing dropped: without admin:system, unconfirmed, a passphrase too
    // short, an unknown field.
    let (status, answer) = reset(&narrow, json!({"confirm": true, "passphrase": PASSPHRASE}))?;
    assert_eq!(status, 403, "{answer}");
    for body in [
        json!({"confirm": false, "passphrase": PASSPHRASE}),
        json!({"passphrase": PASSPHRASE}),
        json!({"confirm": true, "passphrase": "short"}),
        json!({"confirm": true, "passphrase": PASSPHRASE, "keep": "users"}),
    ] {
        let (status, answer) = reset(&key, body.clone())?;
        assert!(matches!(status, 400 | 422), "{body}: {status} {answer}");
    }
    assert_eq!(named(&http, &server, &key, "before-reset.example.test"), 1);

    let before = started_at(&http, &server).ok_or("the node's health")?;
    let (status, done) = reset(&key, json!({"confirm": true, "passphrase": PASSPHRASE}))?;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["data"]["restarting"], true);
    assert_eq!(done["data"]["admin_username"], "admin");
    let new_password = done["data"]["admin_password"]
        .as_str()
        .ok_or("the new admin's password")?
        .to_owned();
    let backup_id = done["data"]["backup"]["id"]
        .as_str()
        .ok_or("the backup's id")?
        .to_owned();
    assert_eq!(done["data"]["backup"]["master_key_included"], false);

    // The node starts again on an empty database: the old key and password are gone, the new
    // password works, the old certificate is not there, and the new chain starts with the
    // reset.
    wait_restarted(&http, &server, before);
    let new_key = api_key(&http, &server, &new_password, &["*"])?;
    assert_eq!(http.login(&server, "admin", &password)?, 401);
    let (status, _) = call(
        &http,
        &server,
        &key,
        Method::GET,
        "/api/v2/certificates",
        None,
    )?;
    assert_eq!(status, 401);
    assert_eq!(
        named(&http, &server, &new_key, "before-reset.example.test"),
        0
    );
    // The started node made a new hierarchy.
    let (status, cas) = call(&http, &server, &new_key, Method::GET, "/api/v2/cas", None)?;
    assert_eq!(status, 200, "{cas}");
    assert_eq!(cas["meta"]["total"], 2, "{cas}");
    let (status, verify) = call(
        &http,
        &server,
        &new_key,
        Method::GET,
        "/api/v2/audit/verify",
        None,
    )?;
    assert_eq!(status, 200, "{verify}");
    assert_eq!(verify["data"]["valid"], true, "{verify}");
    let (status, audit) = call(
        &http,
        &server,
        &new_key,
        Method::GET,
        "/api/v2/audit/logs?action=database_reset",
        None,
    )?;
    assert_eq!(status, 200, "{audit}");
    assert_eq!(audit["meta"]["total"], 1, "{audit}");
    assert!(
        audit["data"][0]["details"]
            .as_str()
            .unwrap_or_default()
            .contains(&backup_id),
        "{audit}"
    );

    // The backup taken first undoes it.
    let before = started_at(&http, &server).ok_or("the node's health")?;
    let (status, restored) = call(
        &http,
        &server,
        &new_key,
        Method::POST,
        "/api/v2/system/backup/restore",
        Some(json!({"backup_id": backup_id, "passphrase": PASSPHRASE})),
    )?;
    assert_eq!(status, 200, "{restored}");
    wait_restarted(&http, &server, before);
    assert_eq!(named(&http, &server, &key, "before-reset.example.test"), 1);
    assert_eq!(http.login(&server, "admin", &password)?, 200);
    server.stop()?;
    http.drop_database(&database);
    Ok(())
}
