//! A full disk under SQLite: every commit that returned success is on disk after a restart,
//! failed commits say the database is unavailable, and writing resumes by itself once space
//! is back. The database lives on a small tmpfs this test mounts (it runs as root, as the test
//! script and CI do; without the right to mount it fails rather than skips).

use aws_lc_rs::hmac;
use certmint_store::testing::SmallDisk;
use certmint_store::{AuditEntry, ChainKey, Error, NewCertificate, Store, from_micros, to_micros};
use time::{Duration, OffsetDateTime};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn now() -> OffsetDateTime {
    from_micros(to_micros(OffsetDateTime::now_utc()))
}

fn certificate(i: usize, at: OffsetDateTime) -> NewCertificate {
    NewCertificate {
        refid: format!("cert-{i}"),
        ca_id: None,
        key_id: None,
        template_id: None,
        owner_id: None,
        renewed_from: None,
        description: Some("x".repeat(2000)),
        sans: vec![format!("dns:host{i}.example.test")],
        is_ca: false,
        source: "api".into(),
        cert: certmint_store::CertFields {
            subject: format!("CN=host{i}.example.test"),
            common_name: Some(format!("host{i}.example.test")),
            issuer: "CN=Test CA".into(),
            serial: format!("{i:032x}"),
            not_before: at,
            not_after: at + Duration::days(90),
            key_type: "EC P-256".into(),
            signature_algorithm: "ecdsa-with-SHA256".into(),
            subject_key_id: None,
            authority_key_id: None,
            fingerprint_sha256: format!("fp-{i}"),
            der: vec![0x30; 1500],
        },
    }
}

fn entry(i: usize, at: OffsetDateTime) -> AuditEntry {
    AuditEntry {
        at,
        username: Some("tester".into()),
        action: "certificate_issued".into(),
        resource_type: Some("certificate".into()),
        resource_id: Some(i.to_string()),
        details: Some("y".repeat(500)),
        ip_address: None,
        user_agent: None,
        success: true,
    }
}

/// One issuance-like write: a certificate and its audit record in one transaction.
async fn write_one(store: &Store, i: usize) -> Result<i64, Error> {
    let t = now();
    let row = certificate(i, t);
    let mut tx = store.begin_write().await?;
    let ids = tx.insert_certificates(&[(&row, t)]).await?;
    tx.audit(&entry(i, t)).await?;
    tx.commit().await?;
    ids.first().copied().ok_or(Error::Corrupt("no id".into()))
}

#[tokio::test]
async fn a_full_disk_loses_no_acknowledged_write_and_writing_resumes() -> TestResult {
    let disk = SmallDisk::mount("6m")?;
    let url = format!("sqlite://{}?mode=rwc", disk.path().join("t.db").display());
    let key = || ChainKey::from(hmac::Key::new(hmac::HMAC_SHA256, b"disk test chain key"));
    let store = Store::connect(&url, 4).await?.with_chain_key(key());
    store.migrate().await?;
    for i in 0..20 {
        write_one(&store, i).await?;
    }
    let filler = disk.fill()?;

    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for i in 20..220 {
        match write_one(&store, i).await {
            Ok(id) => acknowledged.push((i, id)),
            Err(e) => {
                refused += 1;
                assert!(
                    matches!(e, Error::StorageFull(_)),
                    "a full disk is said to be one, not {e:?}"
                );
            }
        }
    }
    assert!(refused > 0, "the disk never filled");

    // Space comes back: writing resumes on the same store, without a restart.
    std::fs::remove_file(&filler)?;
    let mut resumed = None;
    for i in 220..240 {
        if let Ok(id) = write_one(&store, i).await {
            resumed = Some((i, id));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let resumed = resumed.ok_or("writing did not resume once space was back")?;
    acknowledged.push(resumed);
    for i in 240..250 {
        acknowledged.push((i, write_one(&store, i).await?));
    }
    store.close().await;

    // After a restart every acknowledged write is there.
    let store = Store::connect(&url, 1).await?.with_chain_key(key());
    for (i, id) in &acknowledged {
        let row = store
            .certificate(*id)
            .await?
            .ok_or_else(|| format!("acknowledged certificate {i} (id {id}) is lost"))?;
        assert_eq!(row.refid, format!("cert-{i}"));
    }
    store.close().await;
    Ok(())
}
