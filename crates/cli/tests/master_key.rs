//! `certmint master-key rotate` killed with SIGKILL at random moments, again and again, then
//! resumed: after every kill each sealed secret still opens, and at the end every one is
//! sealed under the newest key, the old keys are gone from the key file, and the server
//! starts and hands out the same private keys as before.
//!
//! Runs on a fresh PostgreSQL database when `CERTMINT_TEST_DATABASE_URL` names a server, else
//! on SQLite.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{EPHEMERAL, Http, Server, TestResult, api_key, call, certmint, err, out, run, serve};
use reqwest::Method;

/// Certificates issued with server-held keys before the rotations: with small batches,
/// enough transactions that kills land in the middle.
const CERTIFICATES: usize = 40;
/// Kill-and-resume rounds.
const ROUNDS: u32 = 24;

fn master_key(data: &Path, database: &[String], args: &[&str]) -> Command {
    let mut command = certmint();
    command
        .arg("master-key")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .args(database);
    command
}

/// `master-key status`, asserting that every sealed secret opens; returns its output.
fn checked_status(data: &Path, database: &[String]) -> String {
    let output = run(&mut master_key(data, database, &["status"]));
    assert!(
        output.status.success(),
        "a sealed secret does not open:\n{}{}",
        out(&output),
        err(&output)
    );
    let text = out(&output);
    assert!(text.contains(", failed: 0"), "{text}");
    text
}

/// The master-key versions `status` says are held.
fn versions_held(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.split_once("versions held: "))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

/// A small deterministic generator, so a failing run can be repeated.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// The PEM (certificate and private key) of each certificate in `ids`.
fn private_keys(http: &Http, server: &Server, key: &str, ids: &[i64]) -> Vec<String> {
    let client = Http::client(server).unwrap();
    ids.iter()
        .map(|id| {
            let path = format!("/api/v2/certificates/{id}/export?format=pem&include_key=true");
            http.rt.block_on(async {
                let response = client
                    .get(server.https_url(&path))
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 200);
                let pem = response.text().await.unwrap();
                assert!(pem.contains("PRIVATE KEY"), "{pem}");
                pem
            })
        })
        .collect()
}

#[test]
fn rotation_killed_at_random_points_resumes_and_loses_nothing() -> TestResult {
    let started = Instant::now();
    let http = Http::new();
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");
    let database = http.database_args();

    let server = Server::start(serve(&data, EPHEMERAL).args(&database), &data)?;
    let password = server.admin_password().ok_or("the admin password")?;
    let key = api_key(&http, &server, &password, &["*"])?;
    let mut ids = Vec::new();
    for n in 0..CERTIFICATES {
        let name = format!("host{n}.example.test");
        let (status, body) = call(
            &http,
            &server,
            &key,
            Method::POST,
            "/api/v2/certificates",
            Some(serde_json::json!({"common_name": name, "san": [format!("dns:{name}")]})),
        )?;
        assert_eq!(status, 201, "{body}");
        ids.push(body["data"]["id"].as_i64().ok_or("id")?);
    }
    let (status, body) = call(
        &http,
        &server,
        &key,
        Method::POST,
        "/api/v2/webhooks",
        Some(
            serde_json::json!({"name": "ops", "url": "https://hooks.example.test/x",
                                "events": ["certificate_issued"]}),
        ),
    )?;
    assert_eq!(status, 201, "{body}");
    let keys_before = private_keys(&http, &server, &key, &ids);

    // Beside a running server, the rotation refuses: the server would seal under the old key.
    let output = run(&mut master_key(&data, &database, &["rotate"]));
    assert!(!output.status.success(), "{}", out(&output));
    assert!(
        err(&output).contains("another certmint process uses"),
        "{}",
        err(&output)
    );
    server.stop()?;

    // One whole rotation, to learn how long one takes.
    let before = checked_status(&data, &database);
    assert_eq!(versions_held(&before), "[1]", "{before}");
    let timed = Instant::now();
    let output = run(&mut master_key(
        &data,
        &database,
        &["rotate", "--batch-size", "1"],
    ));
    let whole = timed.elapsed();
    assert!(output.status.success(), "{}", err(&output));
    assert!(out(&output).contains("sealed again: "), "{}", out(&output));
    assert_eq!(versions_held(&checked_status(&data, &database)), "[2]");

    // Kills at random moments of a rotation, once it has written its new key (before that,
    // a kill finds nothing begun, and how long a start takes varies with the machine's load):
    // each leaves every secret readable, and the next run picks up where the last stopped.
    let mut random = Lcg(0x5eed);
    let window = u64::try_from(whole.as_millis()).unwrap_or(1000).max(50);
    let keys_in_file = || {
        std::fs::read_to_string(data.join("master.key"))
            .map(|f| f.matches("\nkey ").count())
            .unwrap_or(0)
    };
    let mut interrupted = 0;
    for round in 0..ROUNDS {
        let mut child = master_key(&data, &database, &["rotate", "--batch-size", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let spawned = Instant::now();
        while keys_in_file() < 2
            && child.try_wait()?.is_none()
            && spawned.elapsed() < Duration::from_millis(window * 4)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(random.below(window)));
        let _ = child.kill();
        let exit = child.wait()?;
        let now = checked_status(&data, &database);
        if versions_held(&now).contains(',') {
            interrupted += 1;
        }
        eprintln!("round {round}: {exit}, versions {}", versions_held(&now));
    }
    assert!(
        interrupted >= 3,
        "only {interrupted} of {ROUNDS} kills landed while two keys were held"
    );

    // Resumed to the end: everything under one key, the old ones gone.
    let output = run(&mut master_key(&data, &database, &["rotate"]));
    assert!(output.status.success(), "{}", err(&output));
    let after = checked_status(&data, &database);
    assert!(after.contains("under older keys: 0"), "{after}");
    assert!(!versions_held(&after).contains(','), "{after}");
    let opened = |s: &str| {
        s.lines()
            .find_map(|l| l.split_once("opened: "))
            .and_then(|(_, rest)| rest.split(',').next())
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    assert_eq!(opened(&after), opened(&before), "as many secrets as before");
    assert!(opened(&after) > Some(u64::try_from(CERTIFICATES)?));
    let file = std::fs::read_to_string(data.join("master.key"))?;
    assert_eq!(
        file.matches("\nkey ").count(),
        1,
        "one key left:\n{}",
        file.len()
    );

    // The server starts (its TLS key was sealed again too) and hands out the same keys.
    let server = Server::start(serve(&data, EPHEMERAL).args(&database), &data)?;
    assert_eq!(private_keys(&http, &server, &key, &ids), keys_before);
    let (status, body) = call(
        &http,
        &server,
        &key,
        Method::POST,
        "/api/v2/certificates",
        Some(serde_json::json!({"common_name": "after.example.test"})),
    )?;
    assert_eq!(status, 201, "the CA's key opens: {body}");
    server.stop()?;
    http.drop_database(&database);
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
    Ok(())
}

#[test]
fn a_key_from_the_environment_is_not_rotated_and_says_what_to_do() -> TestResult {
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let output = run(master_key(&data, &[], &["rotate"]).env("CERTMINT_MASTER_KEY", key));
    common::assert_fails(
        &output,
        &["CERTMINT_MASTER_KEY", "cannot rewrite", "master.key"],
    );
    assert!(!data.join("master.key").exists());
    let output = run(master_key(&data, &[], &["status"]).env("CERTMINT_MASTER_KEY", key));
    assert!(output.status.success(), "{}", err(&output));
    assert!(out(&output).contains("(environment)"), "{}", out(&output));

    // A bad batch size is refused before a rotation starts.
    let output = run(&mut master_key(
        &data,
        &[],
        &["rotate", "--batch-size", "0"],
    ));
    common::assert_fails(&output, &["batch size"]);
    Ok(())
}
