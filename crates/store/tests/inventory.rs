//! The certificate inventory at scale: with 100,000 rows, the filtered, paginated list query
//! and the import's check for a stored certificate are answered through an index, not by
//! scanning the table (SQLite, and PostgreSQL when
//! CERTMINT_TEST_DATABASE_URL is set).

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use certmint_store::{
    Backend, CaId, CertFields, CertificateFilter, CertificateState, NewCa, PageRequest, Store,
};
use time::{Duration, OffsetDateTime};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ROWS: i64 = 100_000;

async fn store(dir: &std::path::Path) -> Store {
    let url = match std::env::var("CERTMINT_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(admin) => certmint_store::testing::fresh_postgres_database(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("CERTMINT_TEST_DATABASE_URL is set, but PostgreSQL is unusable: {e}")
            }),
        None => format!("sqlite://{}?mode=rwc", dir.join("t.db").display()),
    };
    let store = Store::connect(&url, 2).await.expect("database");
    store.migrate().await.expect("migrations");
    store
}

fn ca(name: &str, now: OffsetDateTime) -> NewCa {
    NewCa {
        refid: format!("refid-{name}"),
        name: name.into(),
        description: None,
        ca_type: "root".into(),
        parent_id: None,
        key_id: None,
        path_len: None,
        is_default: false,
        source: certmint_store::CaSource::Imported,
        require_template: false,
        cert: CertFields {
            subject: format!("CN={name}"),
            common_name: Some(name.into()),
            issuer: format!("CN={name}"),
            serial: "01".into(),
            not_before: now,
            not_after: now + Duration::days(3650),
            key_type: "EC P-256".into(),
            signature_algorithm: "ecdsa-with-SHA256".into(),
            subject_key_id: None,
            authority_key_id: None,
            fingerprint_sha256: format!("fp-{name}"),
            der: vec![0x30, 0x00],
        },
    }
}

/// Fills the table in one statement: a tenth revoked, a fifth expired, the rest spread over
/// the coming two years, split between two CAs.
async fn fill(store: &Store, first_ca: CaId, now: OffsetDateTime) -> TestResult {
    let now_us = now.unix_timestamp() * 1_000_000;
    let der = match store.backend() {
        Backend::Sqlite => "x'3000'",
        Backend::Postgres => "'\\x3000'::bytea",
    };
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS}) \
         INSERT INTO certificates (refid, ca_id, sans, status, subject, common_name, issuer, \
           serial, not_before, not_after, key_type, signature_algorithm, fingerprint_sha256, \
           source, der, is_ca, created_at, updated_at) \
         SELECT 'ref-' || i, {first_ca} + (i % 2), 'dns:host' || i || '.example.test', \
           CASE WHEN i % 10 = 0 THEN 'revoked' ELSE 'valid' END, \
           'CN=host' || i || '.example.test', 'host' || i || '.example.test', 'CN=CA', \
           'serial' || i, {now_us} - 86400000000, \
           CASE WHEN i % 5 = 0 THEN {now_us} - 3600000000 \
                ELSE {now_us} + (i % 730) * 86400000000 END, \
           'EC P-256', 'ecdsa-with-SHA256', 'fp' || i, 'api', {der}, 0, {now_us}, {now_us} \
         FROM n"
    );
    assert_eq!(store.execute_raw(&sql).await?, u64::try_from(ROWS)?);
    store.execute_raw("ANALYZE").await?;
    Ok(())
}

#[tokio::test]
async fn filtered_pages_of_a_large_inventory_use_an_index() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = store(dir.path()).await;
    let now = OffsetDateTime::now_utc();
    let mut tx = store.begin_write().await?;
    let first = tx.insert_ca(&ca("one", now), now).await?;
    tx.insert_ca(&ca("two", now), now).await?;
    tx.commit().await?;
    fill(&store, first, now).await?;

    let page = PageRequest {
        page: 3,
        per_page: 50,
    };
    let filters = [
        (
            "by CA",
            CertificateFilter {
                ca_id: Some(first),
                ..Default::default()
            },
        ),
        (
            "active by CA",
            CertificateFilter {
                state: Some(CertificateState::Active),
                ca_id: Some(CaId(first.0 + 1)),
                ..Default::default()
            },
        ),
        (
            "revoked",
            CertificateFilter {
                state: Some(CertificateState::Revoked),
                ..Default::default()
            },
        ),
        (
            "expiring",
            CertificateFilter {
                state: Some(CertificateState::ExpiringBefore(now + Duration::days(30))),
                ..Default::default()
            },
        ),
        (
            "expired",
            CertificateFilter {
                state: Some(CertificateState::Expired),
                ..Default::default()
            },
        ),
    ];
    for (label, filter) in &filters {
        let plan = store.explain_certificates(filter, now, page).await?;
        let scans = match store.backend() {
            Backend::Sqlite => plan
                .lines()
                .any(|l| l.trim().starts_with("SCAN certificates") && !l.contains("USING")),
            Backend::Postgres => plan.contains("Seq Scan"),
        };
        assert!(!scans, "{label}: the list query scans the table:\n{plan}");
        assert!(
            plan.contains("certificates_") || plan.contains("INDEX") || plan.contains("Index"),
            "{label}: no index in the plan:\n{plan}"
        );
    }

    // An import's "stored already?" check finds certificates through the serial index.
    let plan = store
        .explain_certificate_known("fp4242", "serial4242")
        .await?;
    assert!(
        plan.contains("certificates_serial_tail"),
        "the known-certificate check does not use the serial index:\n{plan}"
    );
    let mut tx = store.begin_write().await?;
    assert!(tx.certificate_known("fp4242", "serial4242").await?);
    assert!(!tx.certificate_known("fp4242", "serial4243").await?);
    assert!(!tx.certificate_known("fp4243", "serial4242").await?);
    drop(tx);

    // And the pages are right: counts match the fill pattern.
    let revoked = store.certificates(&filters[2].1, now, page).await?;
    assert_eq!(revoked.total, ROWS / 10);
    assert_eq!(revoked.items.len(), 50);
    assert!(
        revoked
            .items
            .iter()
            .all(|c| c.status == certmint_store::CertificateStatus::Revoked)
    );
    let by_ca = store.certificates(&filters[0].1, now, page).await?;
    assert_eq!(by_ca.total, ROWS / 2);
    let expired = store.certificates(&filters[4].1, now, page).await?;
    // Multiples of 5 that are not multiples of 10 (those are revoked).
    assert_eq!(expired.total, ROWS / 10);
    let search = store
        .certificates(
            &CertificateFilter {
                search: Some("HOST4242.example".into()),
                ..Default::default()
            },
            now,
            PageRequest {
                page: 1,
                per_page: 10,
            },
        )
        .await?;
    assert_eq!(search.total, 1);
    Ok(())
}
