//! Auto-renewal: policies per certificate and per template, the `auto_renewal` job renewing
//! due certificates once each (same key or rekey) as the test clock moves, failures backing
//! off, announced by an event and mail, and succeeding later.

use authority::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer, openssl, post};
use crate::email_alerts::SmtpServer;
use crate::jobs::run_job;

async fn call(
    server: &TestServer,
    s: &Session,
    m: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    server.call(m, path, &Auth::Session(s), body).await
}

/// Turns off the schedules of the jobs that would race with the runs asked for here or take
/// the events read here: moving the clock makes every enabled job due.
async fn quiet_jobs(server: &TestServer, admin: &Session) {
    for job in ["auto_renewal", "webhook_delivery", "expiry_scan"] {
        let (status, body) = call(
            server,
            admin,
            Method::PATCH,
            &format!("/api/v2/system/jobs/{job}"),
            Some(json!({"enabled": false})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

async fn issue(server: &TestServer, s: &Session, cn: &str, extra: Value) -> TestResult<Value> {
    let mut body = json!({"common_name": cn, "san": [format!("dns:{cn}")], "validity_days": 90});
    if let (Some(b), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(extra.clone());
    }
    let (status, answer) = post(server, s, "/api/v2/certificates", body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    Ok(answer["data"].clone())
}

async fn policy(server: &TestServer, s: &Session, id: i64) -> TestResult<Value> {
    let (status, body) = call(
        server,
        s,
        Method::GET,
        &format!("/api/v2/certificates/{id}/auto-renewal"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(body["data"].clone())
}

async fn set_policy(server: &TestServer, s: &Session, id: i64, body: Value) -> (StatusCode, Value) {
    call(
        server,
        s,
        Method::PUT,
        &format!("/api/v2/certificates/{id}/auto-renewal"),
        Some(body),
    )
    .await
}

async fn key_of(server: &TestServer, s: &Session, id: i64) -> TestResult<String> {
    let (status, body) = post(
        server,
        s,
        &format!("/api/v2/certificates/{id}/key"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(body["data"]["private_key"]
        .as_str()
        .ok_or("private_key")?
        .to_owned())
}

fn time_of(v: &Value) -> TestResult<OffsetDateTime> {
    Ok(OffsetDateTime::parse(
        v.as_str().ok_or("a time")?,
        &Rfc3339,
    )?)
}

fn id_of(v: &Value) -> TestResult<i64> {
    Ok(v["id"].as_i64().ok_or("id")?)
}

/// Runs the job; returns its summary.
async fn renew_now(server: &TestServer, admin: &Session) -> TestResult<String> {
    let job = run_job(server, admin, "auto_renewal").await?;
    assert_eq!(job["last_run"]["outcome"], "succeeded", "{job}");
    Ok(job["last_run"]["summary"]
        .as_str()
        .ok_or("summary")?
        .to_owned())
}

#[tokio::test]
async fn a_certificate_policy_renews_it_once_with_the_same_key_or_a_new_one() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    quiet_jobs(&server, &admin).await;

    let same = issue(&server, &admin, "same.example.test", json!({})).await?;
    let rekey = issue(
        &server,
        &admin,
        "rekey.example.test",
        json!({"key_algorithm": "RSA", "key_size": 2048}),
    )
    .await?;
    let (same_id, rekey_id) = (id_of(&same)?, id_of(&rekey)?);

    // Off until set.
    let off = policy(&server, &admin, same_id).await?;
    assert_eq!(off["enabled"], false, "{off}");
    assert!(off["next_renewal_at"].is_null(), "{off}");

    // Bad values are refused, and nothing is stored.
    for bad in [
        json!({"enabled": true, "days_before": 0}),
        json!({"enabled": true, "days_before": 3651}),
        json!({"enabled": true, "lifetime_fraction": 0}),
        json!({"enabled": true, "lifetime_fraction": 1}),
        json!({"enabled": true, "lifetime_fraction": 1.5}),
        json!({"enabled": true, "lifetime_fraction": -0.2}),
        json!({"enabled": true, "days_before": 10, "lifetime_fraction": 0.5}),
        json!({"enabled": true, "key_policy": "new"}),
        json!({"enabled": false, "days_before": 10}),
        json!({"days_before": 10}),
        json!({"inherit": true, "enabled": true}),
        json!({"enabled": true, "when": "soon"}),
        json!({"enabled": "yes"}),
    ] {
        let (status, body) = set_policy(&server, &admin, same_id, bad.clone()).await;
        assert!(status.is_client_error(), "{bad}: {status} {body}");
        assert_ne!(status, StatusCode::NOT_FOUND, "{bad}: {body}");
    }
    assert_eq!(policy(&server, &admin, same_id).await?["enabled"], false);
    let (status, _) = set_policy(&server, &admin, 424_242, json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = set_policy(
        &server,
        &admin,
        same_id,
        json!({"enabled": true, "days_before": 30}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let set = &body["data"];
    assert_eq!(set["enabled"], true);
    assert_eq!(set["days_before"], 30);
    assert_eq!(set["key_policy"], "same_key");
    assert_eq!(set["inherited_from_template"], false);
    assert_eq!(
        time_of(&set["next_renewal_at"])?,
        time_of(&same["valid_until"])? - Duration::days(30),
        "{set}"
    );
    let (status, body) = set_policy(
        &server,
        &admin,
        rekey_id,
        json!({"enabled": true, "lifetime_fraction": 0.25, "key_policy": "rekey"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["lifetime_fraction"], 0.25);
    assert_eq!(body["data"]["key_policy"], "rekey");

    // A certificate whose key certmint does not hold cannot be renewed on its own.
    let dir = tempfile::tempdir()?;
    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k.pem",
            "-out",
            "r.csr",
            "-subj",
            "/CN=csr.example.test",
        ],
    )?;
    let csr = std::fs::read_to_string(dir.path().join("r.csr"))?;
    let (status, from_csr) =
        post(&server, &admin, "/api/v2/certificates", json!({"csr": csr})).await;
    assert_eq!(status, StatusCode::CREATED, "{from_csr}");
    let from_csr = from_csr["data"].clone();
    assert_eq!(from_csr["private_key_available"], false);
    let (status, body) =
        set_policy(&server, &admin, id_of(&from_csr)?, json!({"enabled": true})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("private key"), "{body}");

    // Who may not renew certificates may not set their policy; a viewer may read it.
    server.user(&admin, "vera", "viewer").await;
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let (status, body) = set_policy(&server, &vera, same_id, json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(policy(&server, &vera, same_id).await?["enabled"], true);

    // Nothing is due yet.
    assert_eq!(
        renew_now(&server, &admin).await?,
        "0 certificates renewed, 0 failed"
    );

    // 61 days on, the first is due (30 days before its end); the second, due once a quarter
    // of its lifetime remains (day 67.5), is not.
    server.clock.advance(Duration::days(61));
    let admin = server.admin().await;
    assert_eq!(
        renew_now(&server, &admin).await?,
        "1 certificates renewed, 0 failed"
    );
    let state = policy(&server, &admin, same_id).await?;
    let successor = state["renewed_by"]
        .as_i64()
        .ok_or(format!("renewed: {state}"))?;
    assert_eq!(state["attempts"], 0);
    assert!(state["next_renewal_at"].is_null(), "{state}");
    let (_, new) = call(
        &server,
        &admin,
        Method::GET,
        &format!("/api/v2/certificates/{successor}"),
        None,
    )
    .await;
    assert_eq!(new["data"]["renewed_from"], same_id, "{new}");
    assert_eq!(new["data"]["common_name"], "same.example.test");
    assert_eq!(new["data"]["source"], "system");
    assert_eq!(
        key_of(&server, &admin, successor).await?,
        key_of(&server, &admin, same_id).await?
    );
    assert!(policy(&server, &admin, rekey_id).await?["renewed_by"].is_null());
    // The certificate's own policy carries over to its successor.
    let carried = policy(&server, &admin, successor).await?;
    assert_eq!(carried["enabled"], true, "{carried}");
    assert_eq!(carried["days_before"], 30);
    assert_eq!(
        time_of(&carried["next_renewal_at"])?,
        time_of(&new["data"]["valid_until"])? - Duration::days(30)
    );

    // The renewal was announced through the outbox, for webhooks.
    let store = server.raw_store().await;
    let renewed = store.pending_events("certificate_renewed", 100).await?;
    assert!(
        renewed
            .iter()
            .any(|(_, id, p)| id == &successor.to_string() && p["renewed_from"] == same_id),
        "{renewed:?}"
    );

    // A week later the second is due, and gets a new key of the same type.
    server.clock.advance(Duration::days(7));
    let admin = server.admin().await;
    assert_eq!(
        renew_now(&server, &admin).await?,
        "1 certificates renewed, 0 failed"
    );
    let rekeyed = policy(&server, &admin, rekey_id).await?["renewed_by"]
        .as_i64()
        .ok_or("rekeyed")?;
    assert_ne!(
        key_of(&server, &admin, rekeyed).await?,
        key_of(&server, &admin, rekey_id).await?
    );
    let (_, new) = call(
        &server,
        &admin,
        Method::GET,
        &format!("/api/v2/certificates/{rekeyed}"),
        None,
    )
    .await;
    assert_eq!(new["data"]["key_type"], "RSA 2048", "{new}");
    assert_eq!(new["data"]["private_key_available"], true);

    // Never twice: running again renews nothing, and each has one successor.
    assert_eq!(
        renew_now(&server, &admin).await?,
        "0 certificates renewed, 0 failed"
    );
    for (old, new) in [(same_id, successor), (rekey_id, rekeyed)] {
        let (_, list) = call(
            &server,
            &admin,
            Method::GET,
            "/api/v2/certificates?per_page=100",
            None,
        )
        .await;
        let successors: Vec<i64> = list["data"]
            .as_array()
            .ok_or("list")?
            .iter()
            .filter(|c| c["renewed_from"] == old)
            .filter_map(|c| c["id"].as_i64())
            .collect();
        assert_eq!(successors, [new], "{list}");
    }
    assert!(
        server
            .audit_total(
                &Auth::Session(&admin),
                "action=certificate_renewed&username=auto-renewal"
            )
            .await
            >= 2
    );
    Ok(())
}

#[tokio::test]
async fn template_policy_applies_and_a_certificate_policy_overrides_it() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    quiet_jobs(&server, &admin).await;

    // Bad template values are refused.
    for bad in [
        json!({"auto_renew": true, "renew_before_days": 0}),
        json!({"auto_renew": true, "renew_before_days": 5000}),
        json!({"auto_renew": true, "renew_before_days": 5, "renew_lifetime_fraction": 0.5}),
        json!({"auto_renew": true, "renew_lifetime_fraction": 1.0}),
        json!({"auto_renew": true, "renew_key_policy": "sometimes"}),
    ] {
        let mut body =
            json!({"name": "bad", "validity_days": 100, "key_usage": ["digitalSignature"]});
        body.as_object_mut()
            .ok_or("object")?
            .extend(bad.as_object().ok_or("object")?.clone());
        let (status, answer) = post(&server, &admin, "/api/v2/templates", body).await;
        assert!(status.is_client_error(), "{bad}: {status} {answer}");
    }

    let (status, body) = post(
        &server,
        &admin,
        "/api/v2/templates",
        json!({"name": "Half-life", "validity_days": 100, "key_usage": ["digitalSignature"],
               "extended_key_usage": ["serverAuth"], "auto_renew": true,
               "renew_lifetime_fraction": 0.5, "renew_key_policy": "rekey"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["auto_renew"], true, "{body}");
    assert_eq!(body["data"]["renew_lifetime_fraction"], 0.5);
    assert_eq!(body["data"]["renew_key_policy"], "rekey");
    let template = body["data"]["id"].as_i64().ok_or("id")?;
    let (status, body) = post(&server, &admin, "/api/v2/templates", json!({"name": "Plain", "validity_days": 100, "key_usage": ["digitalSignature"], "extended_key_usage": ["serverAuth"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        body["data"].get("auto_renew").is_none_or(|v| v == false),
        "{body}"
    );
    let plain = body["data"]["id"].as_i64().ok_or("id")?;

    let follows = issue(
        &server,
        &admin,
        "follows.example.test",
        json!({"template_id": template, "validity_days": null}),
    )
    .await?;
    let opts_out = issue(
        &server,
        &admin,
        "opts-out.example.test",
        json!({"template_id": template, "validity_days": null}),
    )
    .await?;
    let later = issue(
        &server,
        &admin,
        "later.example.test",
        json!({"template_id": plain, "validity_days": null}),
    )
    .await?;
    let (follows_id, opts_out_id, later_id) = (id_of(&follows)?, id_of(&opts_out)?, id_of(&later)?);

    let inherited = policy(&server, &admin, follows_id).await?;
    assert_eq!(inherited["enabled"], true, "{inherited}");
    assert_eq!(inherited["inherited_from_template"], true);
    assert_eq!(inherited["template_id"], template);
    assert_eq!(inherited["lifetime_fraction"], 0.5);
    assert_eq!(inherited["key_policy"], "rekey");
    let (status, body) = set_policy(&server, &admin, opts_out_id, json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["enabled"], false);
    assert_eq!(body["data"]["inherited_from_template"], false);
    assert_eq!(policy(&server, &admin, later_id).await?["enabled"], false);

    // Turning a template's policy on applies it to the certificates already issued from it.
    let (status, body) = call(
        &server,
        &admin,
        Method::PUT,
        &format!("/api/v2/templates/{plain}"),
        Some(json!({"auto_renew": true, "renew_before_days": 10})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["renew_before_days"], 10);
    let now_on = policy(&server, &admin, later_id).await?;
    assert_eq!(now_on["enabled"], true, "{now_on}");
    assert_eq!(now_on["days_before"], 10);
    assert_eq!(
        time_of(&now_on["next_renewal_at"])?,
        time_of(&later["valid_until"])? - Duration::days(10),
        "{now_on}"
    );

    // Half the lifetime (100 days) is day 50: not due on day 49, due on day 51.
    server.clock.advance(Duration::days(49));
    let admin = server.admin().await;
    assert_eq!(
        renew_now(&server, &admin).await?,
        "0 certificates renewed, 0 failed"
    );
    server.clock.advance(Duration::days(2));
    let admin = server.admin().await;
    assert_eq!(
        renew_now(&server, &admin).await?,
        "1 certificates renewed, 0 failed"
    );
    let renewed = policy(&server, &admin, follows_id).await?;
    let successor = renewed["renewed_by"].as_i64().ok_or(format!("{renewed}"))?;
    assert_ne!(
        key_of(&server, &admin, successor).await?,
        key_of(&server, &admin, follows_id).await?
    );
    // The successor comes from the same template, so its policy follows too.
    let next = policy(&server, &admin, successor).await?;
    assert_eq!(next["inherited_from_template"], true, "{next}");
    assert!(next["next_renewal_at"].is_string(), "{next}");
    assert!(policy(&server, &admin, opts_out_id).await?["renewed_by"].is_null());
    assert!(policy(&server, &admin, later_id).await?["renewed_by"].is_null());

    // Dropping its own policy puts it back under the template's: it is overdue, so renewed.
    let (status, body) = set_policy(&server, &admin, opts_out_id, json!({"inherit": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["enabled"], true);
    assert_eq!(body["data"]["inherited_from_template"], true);
    assert_eq!(
        renew_now(&server, &admin).await?,
        "1 certificates renewed, 0 failed"
    );
    assert!(policy(&server, &admin, opts_out_id).await?["renewed_by"].is_i64());

    // A template's policy turned off stops it for the certificates that follow it.
    let (status, body) = call(
        &server,
        &admin,
        Method::PUT,
        &format!("/api/v2/templates/{plain}"),
        Some(json!({"auto_renew": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(policy(&server, &admin, later_id).await?["enabled"], false);
    server.clock.advance(Duration::days(45));
    let admin = server.admin().await;
    renew_now(&server, &admin).await?;
    assert!(policy(&server, &admin, later_id).await?["renewed_by"].is_null());
    Ok(())
}

#[tokio::test]
async fn failed_renewals_back_off_alert_and_succeed_later() -> TestResult {
    let smtp = SmtpServer::start().await?;
    let server = TestServer::start_with(|s| s.email.allow_private_targets = true).await;
    let admin = server.admin().await;
    quiet_jobs(&server, &admin).await;
    let (status, body) = call(
        &server,
        &admin,
        Method::PATCH,
        "/api/v2/settings/email",
        Some(
            json!({"enabled": true, "host": "127.0.0.1", "port": smtp.port, "security": "none",
                    "from_address": "certmint@example.test"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        &server,
        &admin,
        Method::PUT,
        "/api/v2/system/alerts/expiry",
        Some(json!({"recipients": ["pki@example.test"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The certificate's owner hears of it too.
    let owner = server.user(&admin, "oscar", "operator").await;
    let (status, body) = call(
        &server,
        &admin,
        Method::PUT,
        &format!("/api/v2/users/{owner}"),
        Some(json!({"email": "oscar@example.test"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let oscar = server.login("oscar", ADMIN_PASSWORD).await;
    let cert = issue(&server, &oscar, "fragile.example.test", json!({})).await?;
    let id = id_of(&cert)?;
    let ca = cert["ca_id"].as_i64().ok_or("ca_id")?;
    let (status, body) = set_policy(
        &server,
        &oscar,
        id,
        json!({"enabled": true, "days_before": 30}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let ca_path = format!("/api/v2/cas/{ca}");
    let (status, body) = call(
        &server,
        &admin,
        Method::PATCH,
        &ca_path,
        Some(json!({"is_active": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    server.clock.advance(Duration::days(61));
    let admin = server.admin().await;
    assert_eq!(
        renew_now(&server, &admin).await?,
        "0 certificates renewed, 1 failed"
    );
    let failed = policy(&server, &admin, id).await?;
    assert_eq!(failed["attempts"], 1, "{failed}");
    assert!(failed["renewed_by"].is_null());
    assert!(
        failed["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failed}"
    );
    assert!(
        failed["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("inactive")),
        "{failed}"
    );
    // (Times are kept to the microsecond.)
    let now = server.clock.now();
    let near =
        |t: OffsetDateTime, want: OffsetDateTime| (t - want).abs() < Duration::milliseconds(1);
    assert!(
        near(
            time_of(&failed["next_renewal_at"])?,
            now + Duration::minutes(15)
        ),
        "{failed}"
    );
    assert!(near(time_of(&failed["last_attempt_at"])?, now), "{failed}");

    // The failure is an event for webhooks, and a mail to the owner and the recipients.
    let store = server.raw_store().await;
    let events = store
        .pending_events("certificate_renewal_failed", 100)
        .await?;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].1, id.to_string());
    assert_eq!(events[0].2["attempts"], 1);
    assert_eq!(events[0].2["name"], "fragile.example.test");
    let got = smtp.take()?;
    let to: Vec<&str> = got.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(to, ["oscar@example.test", "pki@example.test"], "{got:?}");
    for m in &got {
        assert!(m.subject.contains("failed"), "{m:?}");
        assert!(m.text.contains("fragile.example.test"), "{m:?}");
    }
    let (_, hooks) = call(
        &server,
        &admin,
        Method::GET,
        "/api/v2/webhooks/events",
        None,
    )
    .await;
    assert!(
        hooks.to_string().contains("certificate_renewal_failed"),
        "{hooks}"
    );

    // The CA is back, but the certificate waits out its backoff.
    let (status, body) = call(
        &server,
        &admin,
        Method::PATCH,
        &ca_path,
        Some(json!({"is_active": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        renew_now(&server, &admin).await?,
        "0 certificates renewed, 0 failed"
    );
    assert_eq!(policy(&server, &admin, id).await?["attempts"], 1);

    server.clock.advance(Duration::minutes(16));
    let admin = server.admin().await;
    assert_eq!(
        renew_now(&server, &admin).await?,
        "1 certificates renewed, 0 failed"
    );
    let done = policy(&server, &admin, id).await?;
    assert!(done["renewed_by"].is_i64(), "{done}");
    assert_eq!(done["attempts"], 0);
    assert!(done["last_error"].is_null(), "{done}");
    let got = smtp.take()?;
    let to: Vec<&str> = got.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(to, ["oscar@example.test", "pki@example.test"], "{got:?}");
    assert!(got.iter().all(|m| m.subject.contains("renewed")), "{got:?}");
    // The successor keeps its owner, so the owner hears of its renewals too.
    let successor = done["renewed_by"].as_i64().ok_or("successor")?;
    let stored = store
        .certificate(authority::CertificateId(successor))
        .await?
        .ok_or("stored successor")?;
    assert_eq!(stored.owner_id, Some(owner));
    Ok(())
}
