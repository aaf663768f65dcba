//! An upgrade keys the audit chain (migration 0008) on SQLite, and on PostgreSQL when
//! CERTMINT_TEST_DATABASE_URL is set: the records written before it keep their plain hashes and
//! still verify, and the first keyed record after them protects them.

// Tests and benches read the wall clock and draw randomness where they need to.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use certmint_authority::{
    AuditFilter, Authority, MasterKey, Policy, Principal, Publishing, SystemClock, Vault,
};
use store::{AuditEntry, GENESIS_HASH, Store, plain_chain_hash};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Writes records 1 to `count` as a release before the keyed chain did.
async fn write_plain_records(store: &Store, count: i64) -> TestResult {
    let at = store::to_micros(time::OffsetDateTime::now_utc());
    let mut prev = GENESIS_HASH.to_owned();
    for id in 1..=count {
        let entry = AuditEntry {
            at: store::from_micros(at),
            username: Some("old".into()),
            action: "legacy".into(),
            resource_type: None,
            resource_id: None,
            details: Some(format!("record {id}")),
            ip_address: None,
            user_agent: None,
            success: true,
        };
        let hash = plain_chain_hash(id, &entry, &prev);
        store
            .execute_raw(&format!(
                "INSERT INTO audit_log (id, created_at, username, action, details, success, \
                 prev_hash, hash) VALUES ({id}, {at}, 'old', 'legacy', 'record {id}', 1, \
                 '{prev}', '{hash}')"
            ))
            .await?;
        prev = hash;
    }
    store
        .execute_raw(&format!(
            "UPDATE audit_head SET last_id = {count}, last_hash = '{prev}' WHERE id = 1"
        ))
        .await?;
    Ok(())
}

async fn upgrade(url: &str) -> TestResult {
    let vault = Vault::new(&MasterKey::generate()?)?;
    let store = Store::connect(url, 2)
        .await?
        .with_chain_key(vault.audit_chain_key());
    store::testing::migrate_to(&store, 7).await?;
    write_plain_records(&store, 3).await?;
    store.migrate().await?;
    assert_eq!(store.audit_anchor().await?.keyed_from, 4);
    let authority = Authority::new(
        store.clone(),
        vault,
        Arc::new(SystemClock),
        Policy::default(),
        Publishing::default(),
    );
    assert!(authority.audit_verify(None, None).await?.valid);

    // An audited action appends the first keyed record, linked to the plain ones.
    authority
        .audit_export(
            &Principal::local("tester"),
            &AuditFilter::default(),
            10,
            "json",
        )
        .await?;
    let keyed = store.audit_get(4).await?.ok_or("record 4")?;
    assert_ne!(
        keyed.hash,
        plain_chain_hash(4, &keyed.entry, &keyed.prev_hash)
    );
    let report = authority.audit_verify(None, None).await?;
    assert!(report.valid, "{report:?}");
    assert_eq!(report.checked, 4);

    // Anyone can re-hash a plain record, but not the keyed one that links to it.
    let mut old = store.audit_get(3).await?.ok_or("record 3")?;
    old.entry.details = Some("nothing happened".into());
    let hash = plain_chain_hash(3, &old.entry, &old.prev_hash);
    store
        .execute_raw(&format!(
            "UPDATE audit_log SET details = 'nothing happened', hash = '{hash}' WHERE id = 3"
        ))
        .await?;
    let report = authority.audit_verify(None, None).await?;
    assert!(!report.valid);
    assert!(
        report
            .faults
            .iter()
            .any(|f| f.id == 4 && f.kind == "broken_link"),
        "{report:?}"
    );
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn records_from_before_the_key_verify_plainly_and_the_keyed_part_protects_them() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    upgrade(&url).await.map_err(|e| format!("on SQLite: {e}"))?;
    if let Ok(admin) = std::env::var("CERTMINT_TEST_DATABASE_URL")
        && !admin.is_empty()
    {
        let url = store::testing::fresh_postgres_database(&admin).await?;
        upgrade(&url)
            .await
            .map_err(|e| format!("on PostgreSQL: {e}"))?;
    }
    Ok(())
}
