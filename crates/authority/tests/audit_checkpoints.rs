//! Incremental verification of the audit chain (issue 25), on SQLite and on PostgreSQL when
//! CERTMINT_TEST_DATABASE_URL is set: a walk that finds the chain whole leaves a signed
//! checkpoint at its head once 10,000 records have passed the newest one, and the next
//! verification re-hashes only the records after the newest checkpoint it can trust. A forged
//! checkpoint is a fault, the full walk still sees what the checkpoint skips, and a retention
//! cleanup takes the checkpoints of the records it removes with them.

// Tests read the wall clock.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use certmint_authority::{Authority, MasterKey, Policy, Principal, Publishing, SystemClock, Vault};
use store::{AuditCheckpoint, AuditEntry, Store};
use time::{Duration, OffsetDateTime};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Appends `count` records made at `at`, in one transaction.
async fn append(store: &Store, count: usize, at: OffsetDateTime) -> TestResult {
    let entries: Vec<AuditEntry> = (0..count)
        .map(|i| AuditEntry {
            at,
            username: Some("loader".into()),
            action: "bulk_test".into(),
            resource_type: None,
            resource_id: None,
            details: Some(format!("record {i}")),
            ip_address: None,
            user_agent: None,
            success: true,
        })
        .collect();
    let mut tx = store.begin_write().await?;
    tx.audit_many(&entries).await?;
    tx.commit().await?;
    Ok(())
}

async fn checkpoints(url: &str) -> TestResult {
    let vault = Vault::new(&MasterKey::generate()?)?;
    let store = Store::connect(url, 2)
        .await?
        .with_chain_key(vault.audit_chain_key());
    store.migrate().await?;
    let authority = Authority::new(
        store.clone(),
        vault,
        Arc::new(SystemClock),
        Policy::default(),
        Publishing::default(),
    );
    let now = OffsetDateTime::now_utc();

    // Too few records for a checkpoint: every walk starts from the chain's start.
    append(&store, 100, now - Duration::days(200)).await?;
    let first = authority.audit_verify_since_checkpoint().await?;
    assert!(first.valid, "{first:?}");
    assert_eq!(first.from_checkpoint, None);
    assert!(store.audit_checkpoints(0, 10).await?.is_empty());

    // 10,000 more: the walk from the start keeps a checkpoint at the head.
    append(&store, 10_000, now - Duration::days(200)).await?;
    let whole = authority.audit_verify_since_checkpoint().await?;
    assert!(whole.valid, "{whole:?}");
    assert_eq!(whole.from_checkpoint, None);
    assert_eq!(whole.checked, whole.end_id);
    let head = whole.end_id;
    let kept = store.audit_checkpoints(0, 10).await?;
    assert_eq!(kept.iter().map(|c| c.record_id).collect::<Vec<_>>(), [head]);
    assert_eq!(
        kept[0].hash,
        store.audit_get(head).await?.ok_or("head")?.hash
    );

    // What is new since is all a verification re-hashes; too few for another checkpoint.
    append(&store, 20, now).await?;
    let since = authority.audit_verify_since_checkpoint().await?;
    assert!(since.valid, "{since:?}");
    assert_eq!(since.from_checkpoint, Some(head));
    assert_eq!((since.start_id, since.checked), (head + 1, 20));
    assert_eq!(store.audit_checkpoints(0, 10).await?.len(), 1);

    // A checkpoint someone wrote into the database without the key is a fault; the walk
    // starts from the older one it can trust.
    let forged_at = head + 10;
    let mut tx = store.begin_write().await?;
    tx.insert_audit_checkpoint(&AuditCheckpoint {
        record_id: forged_at,
        hash: store.audit_get(forged_at).await?.ok_or("record")?.hash,
        keyed_from: kept[0].keyed_from,
        signature: kept[0].signature.clone(),
        created_at: kept[0].created_at,
    })
    .await?;
    tx.commit().await?;
    let report = authority.audit_verify_since_checkpoint().await?;
    assert!(!report.valid);
    assert_eq!(report.from_checkpoint, Some(head));
    assert_eq!(report.faults.len(), 1, "{report:?}");
    assert_eq!(
        (report.faults[0].id, report.faults[0].kind),
        (forged_at, "forged_checkpoint")
    );
    store
        .execute_raw(&format!(
            "DELETE FROM audit_checkpoints WHERE record_id = {forged_at}"
        ))
        .await?;

    // A record rewritten behind the checkpoint escapes the walk from it, not the full walk.
    let victim = store.audit_get(5).await?.ok_or("record 5")?;
    store
        .execute_raw("UPDATE audit_log SET details = 'forged' WHERE id = 5")
        .await?;
    assert!(authority.audit_verify_since_checkpoint().await?.valid);
    let full = authority.audit_verify(None, None).await?;
    assert!(!full.valid);
    assert_eq!((full.faults[0].id, full.faults[0].kind), (5, "altered"));
    store
        .execute_raw(&format!(
            "UPDATE audit_log SET details = '{}' WHERE id = 5",
            victim.entry.details.as_deref().unwrap_or_default()
        ))
        .await?;

    // The checkpoint's own record rewritten: the checkpoint is not trusted, and the walk from
    // the start finds the record.
    let original = store.audit_get(head).await?.ok_or("head")?;
    store
        .execute_raw(&format!(
            "UPDATE audit_log SET hash = '{}' WHERE id = {head}",
            "ab".repeat(32)
        ))
        .await?;
    let report = authority.audit_verify_since_checkpoint().await?;
    assert!(!report.valid);
    assert_eq!(report.from_checkpoint, None);
    assert!(
        report
            .faults
            .iter()
            .any(|f| f.id == head && f.kind == "altered"),
        "{report:?}"
    );
    store
        .execute_raw(&format!(
            "UPDATE audit_log SET hash = '{}' WHERE id = {head}",
            original.hash
        ))
        .await?;
    assert!(authority.audit_verify_since_checkpoint().await?.valid);

    // Removing the old records removes their checkpoints; the walk starts from the new start.
    authority
        .audit_cleanup(&Principal::local("admin-test"), 90)
        .await?;
    assert!(store.audit_checkpoints(0, 10).await?.is_empty());
    let after = authority.audit_verify_since_checkpoint().await?;
    assert!(after.valid, "{after:?}");
    assert_eq!(after.from_checkpoint, None);
    assert_eq!(after.start_id, head + 1);
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn verification_starts_after_the_newest_trusted_checkpoint() -> TestResult {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    checkpoints(&url)
        .await
        .map_err(|e| format!("on SQLite: {e}"))?;
    if let Ok(admin) = std::env::var("CERTMINT_TEST_DATABASE_URL")
        && !admin.is_empty()
    {
        let url = store::testing::fresh_postgres_database(&admin).await?;
        checkpoints(&url)
            .await
            .map_err(|e| format!("on PostgreSQL: {e}"))?;
    }
    Ok(())
}
