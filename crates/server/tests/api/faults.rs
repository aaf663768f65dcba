//! Faults lose nothing: with the data directory's disk full, every certificate, revocation,
//! CRL and ACME finalization answered with success is in the database after a restart, the
//! rest get a clear 503, readiness says why, and service resumes by itself once space is back.

use std::path::Path;
use std::time::Duration;

use instant_acme::{ChallengeType, Identifier, NewOrder, OrderStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::testing::SmallDisk;

use crate::acme::{AcmeServer, csr, make_ready, retries};
use crate::acme_peers::HttpResponder;
use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};

/// A server on SQLite (whatever the test pass) with its data in `dir`.
async fn serve_from(dir: &Path) -> TestServer {
    let dir = dir.to_path_buf();
    TestServer::start_with(move |s| {
        s.data_dir = dir;
        s.database_url = String::new();
    })
    .await
}

async fn issue(server: &TestServer, admin: &Session, n: usize) -> (StatusCode, Value) {
    server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &Auth::Session(admin),
            Some(json!({"common_name": format!("full-{n}.example.test"), "validity_days": 30})),
        )
        .await
}

#[tokio::test]
async fn a_full_disk_loses_no_acknowledged_certificate_and_service_resumes() -> TestResult {
    let disk = SmallDisk::mount("48m")?;
    let server = serve_from(disk.path()).await;
    let admin = server.admin().await;
    let mut acknowledged = Vec::new();
    for n in 0..3 {
        let (status, body) = issue(&server, &admin, n).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        acknowledged.push(body["data"]["id"].as_i64().ok_or("id")?);
    }
    let filler = disk.fill()?;

    let mut refused = 0;
    for n in 3..60 {
        let (status, body) = issue(&server, &admin, n).await;
        match status {
            StatusCode::CREATED => acknowledged.push(body["data"]["id"].as_i64().ok_or("id")?),
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert!(
                    body["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("disk is full")),
                    "{body}"
                );
            }
            other => panic!("issuance on a full disk answered {other}: {body}"),
        }
    }
    assert!(refused > 0, "the disk never filled");
    // Revocation is refused the same way, never with a 500.
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/v2/certificates/{}/revoke", acknowledged[0]),
            &Auth::Session(&admin),
            Some(json!({"reason": "keyCompromise"})),
        )
        .await;
    assert!(
        status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::OK,
        "revocation on a full disk: {status} {body}"
    );
    let revoked = status == StatusCode::OK;
    let (status, ready) = server
        .call(Method::GET, "/api/v2/health/ready", &Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["checks"]["disk"]["status"], "error", "{ready}");

    // Space comes back: the same process serves again, without a restart.
    std::fs::remove_file(&filler)?;
    let mut resumed = false;
    for n in 60..100 {
        let (status, body) = issue(&server, &admin, n).await;
        if status == StatusCode::CREATED {
            acknowledged.push(body["data"]["id"].as_i64().ok_or("id")?);
            resumed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(resumed, "issuance did not resume once space was back");
    let (status, ready) = server
        .call(Method::GET, "/api/v2/health/ready", &Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    let metrics = server
        .request(Method::GET, "/metrics", &Auth::Session(&admin), None)
        .await
        .text()
        .await?;
    assert!(
        metrics.contains("certmint_data_dir_free_bytes"),
        "{metrics}"
    );
    server.stop().await;

    // After a restart every acknowledged certificate is there.
    let server = serve_from(disk.path()).await;
    let admin = server.login("admin", ADMIN_PASSWORD).await;
    for id in &acknowledged {
        let (status, body) = server
            .call(
                Method::GET,
                &format!("/api/v2/certificates/{id}"),
                &Auth::Session(&admin),
                None,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "acknowledged certificate {id}: {body}"
        );
    }
    if revoked {
        let (_, body) = server
            .call(
                Method::GET,
                &format!("/api/v2/certificates/{}", acknowledged[0]),
                &Auth::Session(&admin),
                None,
            )
            .await;
        assert_eq!(
            body["data"]["status"], "revoked",
            "an acknowledged revocation: {body}"
        );
    }
    server.stop().await;
    Ok(())
}

/// What a 503 for a full disk says, wherever it comes from.
fn says_disk_full(text: &str) -> bool {
    text.contains("disk is full")
}

#[tokio::test]
async fn a_full_disk_loses_no_published_crl_and_publishing_resumes() -> TestResult {
    let disk = SmallDisk::mount("48m")?;
    let server = serve_from(disk.path()).await;
    let admin = server.admin().await;
    let (status, body) = issue(&server, &admin, 0).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let revoke = format!("/api/v2/certificates/{}/revoke", body["data"]["id"]);
    let (status, body) = server
        .call(
            Method::POST,
            &revoke,
            &Auth::Session(&admin),
            Some(json!({"reason": "keyCompromise"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ca = server
        .running
        .as_ref()
        .ok_or("running")?
        .app
        .authority
        .default_ca()
        .await?;
    let regenerate = format!("/api/v2/crl/{}/regenerate", ca.id);
    let mut published = Vec::new();
    let publish = async |published: &mut Vec<i64>| -> TestResult<StatusCode> {
        let (status, body) = server
            .call(Method::POST, &regenerate, &Auth::Session(&admin), None)
            .await;
        match status {
            StatusCode::OK => {
                for crl in body["data"].as_array().ok_or("published CRLs")? {
                    published.push(crl["number"].as_i64().ok_or("number")?);
                }
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(says_disk_full(&body["message"].to_string()), "{body}");
            }
            other => panic!("CRL publication on a full disk answered {other}: {body}"),
        }
        Ok(status)
    };
    assert_eq!(publish(&mut published).await?, StatusCode::OK);

    let filler = disk.fill()?;
    let mut refused = 0;
    for _ in 0..30 {
        if publish(&mut published).await? == StatusCode::SERVICE_UNAVAILABLE {
            refused += 1;
        }
    }
    assert!(refused > 0, "the disk never filled");

    std::fs::remove_file(&filler)?;
    let mut resumed = false;
    for _ in 0..40 {
        if publish(&mut published).await? == StatusCode::OK {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        resumed,
        "CRL publication did not resume once space was back"
    );
    server.stop().await;

    // Every CRL answered 200 is there after a restart, and downloads by its number.
    let server = serve_from(disk.path()).await;
    let admin = server.login("admin", ADMIN_PASSWORD).await;
    let (status, detail) = server
        .call(
            Method::GET,
            &format!("/api/v2/crl/{}", ca.id),
            &Auth::Session(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let latest = detail["data"]["latest"]["number"]
        .as_i64()
        .ok_or("latest")?;
    let highest = published.iter().copied().max().ok_or("nothing published")?;
    assert!(
        latest >= highest,
        "latest CRL {latest}, acknowledged {highest}"
    );
    for number in &published {
        let response = server
            .client
            .get(format!("{}/crl/{}/{number}.crl", server.http, ca.refid))
            .send()
            .await?;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "acknowledged CRL {number} is gone"
        );
    }
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_full_disk_loses_no_finalized_acme_order_and_finalizing_resumes() -> TestResult {
    let disk = SmallDisk::mount("48m")?;
    let http = HttpResponder::start();
    let names: Vec<String> = (0..6).map(|n| format!("full-{n}.acme.test")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let data_dir = disk.path().to_path_buf();
    let acme = AcmeServer::start_with(http.port(), 1, None, &name_refs, move |s| {
        s.data_dir = data_dir;
        s.database_url = String::new();
    })
    .await;
    let admin = acme.server.admin().await;
    let account = acme.account().await;
    let mut ready = Vec::new();
    for name in &names {
        let identifiers = [Identifier::Dns(name.clone())];
        let order = account.new_order(&NewOrder::new(&identifiers)).await?;
        let order = make_ready(order, ChallengeType::Http01, |_, t, ka| http.set(t, ka)).await?;
        ready.push((name.as_str(), order));
    }

    let filler = disk.fill()?;
    // Until a write is refused, the database may still have room in pages it holds.
    let mut full = false;
    for n in 0..100 {
        if issue(&acme.server, &admin, n).await.0 == StatusCode::SERVICE_UNAVAILABLE {
            full = true;
            break;
        }
    }
    assert!(full, "the disk never filled");
    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    for (name, mut order) in ready {
        let (_, request) = csr(&[name])?;
        match order.finalize_csr(request.der()).await {
            Ok(()) => acknowledged.push((name, order.poll_certificate(&retries()).await?)),
            Err(e) => {
                let text = format!("{e:?}");
                assert!(
                    says_disk_full(&text) && text.contains("serverInternal"),
                    "finalize on a full disk: {text}"
                );
                refused.push((name, order));
            }
        }
    }
    assert!(
        !refused.is_empty(),
        "every finalization succeeded on a full disk"
    );

    // Space comes back: each refused order is finalized by the same process, on its own.
    std::fs::remove_file(&filler)?;
    for (name, mut order) in refused {
        let (_, request) = csr(&[name])?;
        let mut done = None;
        for _ in 0..40 {
            if order.refresh().await.is_ok() && order.state().status == OrderStatus::Processing {
                // Left processing by a write that failed: given up on after a while.
                acme.server.clock.advance(time::Duration::minutes(6));
            }
            if order.finalize_csr(request.der()).await.is_ok() {
                done = Some(order.poll_certificate(&retries()).await?);
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let chain = done.ok_or_else(|| format!("{name} could not be finalized again"))?;
        acknowledged.push((name, chain));
    }
    assert_eq!(acknowledged.len(), names.len());
    let store_url = acme.server.database_url.clone();
    acme.server.stop().await;

    // After a restart every certificate a client was given is in the inventory.
    let server = serve_from(disk.path()).await;
    assert_eq!(server.database_url, store_url);
    let store = server.raw_store().await;
    for (name, chain) in &acknowledged {
        let leaf = pki::pem::find_blocks(chain.as_bytes())?
            .into_iter()
            .next()
            .ok_or("an empty chain")?;
        let info = pki::inspect::Certificate::parse(&leaf.der)?;
        let rows = store.certificates_with_serial(&info.serial).await?;
        assert!(
            rows.iter().any(|r| r.cert.der == leaf.der),
            "the certificate for {name} is not in the inventory"
        );
    }
    server.stop().await;
    Ok(())
}
