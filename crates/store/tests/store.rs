//! The storage authority on every backend available: SQLite (a temporary file) always, and a
//! fresh PostgreSQL database as well when `CERTMINT_TEST_DATABASE_URL` names a server, which
//! must then be reachable: an unreachable server fails the tests instead of skipping them.
//!
//! Each test is written once as an `async fn(Store)` and run on every backend by
//! [`on_every_backend`].

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use aws_lc_rs::hmac;
use certmint_store::{
    AcmeOrderChange, AcmeProfileFields, AcmeStatus, AuditEntry, AuditRecord, Backend, CaSource,
    CertificateId, CertificateSource, CertificateStatus, ChainKey, CsrSource, Error, ExpirySubject,
    GENESIS_HASH, NewAcmeAccount, NewAcmeOrder, NewApiKey, NewSession, NewUser, PageRequest, Store,
    UserFilter, UserRow, UserUpdate, from_micros, plain_chain_hash, to_micros,
};
use time::{Duration, OffsetDateTime};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The PostgreSQL server to test on, if any.
fn postgres_admin_url() -> Option<String> {
    std::env::var("CERTMINT_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// The chain key of the stores under test (the vault derives the real one).
fn chain_key() -> ChainKey {
    ChainKey::from(hmac::Key::new(hmac::HMAC_SHA256, b"test chain key"))
}

/// Opens and migrates a store on `url`, chaining audit records under [`chain_key`].
async fn open(url: &str) -> Store {
    let store = Store::connect(url, 8)
        .await
        .unwrap_or_else(|e| panic!("cannot open {url}: {e}"))
        .with_chain_key(chain_key());
    store.migrate().await.expect("migrations");
    store
}

/// Runs `test` on a migrated store of each backend: SQLite, then PostgreSQL when configured.
async fn on_every_backend<F, Fut>(test: F) -> TestResult
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = TestResult>,
{
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    eprintln!("== on SQLite");
    let store = open(&url).await;
    assert_eq!(store.backend(), Backend::Sqlite);
    test(store.clone())
        .await
        .map_err(|e| format!("on SQLite: {e}"))?;
    store.close().await;

    if let Some(admin) = postgres_admin_url() {
        let url = certmint_store::testing::fresh_postgres_database(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("CERTMINT_TEST_DATABASE_URL is set, but PostgreSQL is unusable: {e}")
            });
        eprintln!("== on PostgreSQL");
        let store = open(&url).await;
        assert_eq!(store.backend(), Backend::Postgres);
        test(store.clone())
            .await
            .map_err(|e| format!("on PostgreSQL: {e}"))?;
        store.close().await;
        drop_database(&admin, &url).await;
    }
    Ok(())
}

/// Drops a test database after a passing test (a failing one keeps it, to look at).
async fn drop_database(admin: &str, url: &str) {
    let name = url
        .split('?')
        .next()
        .and_then(|base| base.rsplit('/').next())
        .unwrap_or_default();
    if !name.starts_with("certmint_test_") {
        return;
    }
    if let Ok(server) = Store::connect(admin, 1).await {
        let _ = server
            .execute_raw(&format!("DROP DATABASE IF EXISTS {name}"))
            .await;
        server.close().await;
    }
}

/// Now, to the microsecond (what the store keeps).
fn now() -> OffsetDateTime {
    from_micros(to_micros(OffsetDateTime::now_utc()))
}

fn entry(action: &str, at: OffsetDateTime) -> AuditEntry {
    AuditEntry {
        at,
        username: Some("tester".into()),
        action: action.into(),
        resource_type: Some("user".into()),
        resource_id: Some("1".into()),
        details: Some(format!("details of {action}")),
        ip_address: Some("192.0.2.1".into()),
        user_agent: None,
        success: true,
    }
}

fn new_user(name: &str, role: &str) -> NewUser {
    NewUser {
        username: name.into(),
        email: Some(format!("{name}@example.test")),
        full_name: Some(format!("{name} Example")),
        role: role.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    }
}

fn session(user_id: i64, token: &str, at: OffsetDateTime) -> NewSession {
    NewSession {
        user_id,
        token_hash: format!("token-hash-{token}"),
        csrf_token: format!("csrf-{token}"),
        auth_method: "password".into(),
        ip_address: None,
        user_agent: None,
        expires_at: at + Duration::hours(1),
    }
}

fn api_key(user_id: i64, name: &str) -> NewApiKey {
    NewApiKey {
        user_id,
        name: name.into(),
        key_prefix: "cm_abcd".into(),
        key_hash: format!("key-hash-{name}"),
        permissions: vec!["read:users".into()],
        expires_at: None,
    }
}

fn page(page: u32, per_page: u32) -> PageRequest {
    PageRequest {
        page,
        per_page,
        after: None,
    }
}

/// Every record of the chain, oldest first.
async fn chain(store: &Store) -> Result<Vec<AuditRecord>, Error> {
    store.audit_chain_batch(0, i64::MAX, 10_000).await
}

/// Asserts that `records` have contiguous ids, start from `first_prev_hash`, link each to the
/// one before, and carry the keyed hash of their own content.
fn assert_linked(records: &[AuditRecord], first_prev_hash: &str) {
    let key = chain_key();
    let mut prev = first_prev_hash.to_owned();
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            assert_eq!(r.id, records[i - 1].id + 1, "no gap before record {}", r.id);
        }
        assert_eq!(
            r.prev_hash, prev,
            "record {} links to its predecessor",
            r.id
        );
        assert_eq!(
            r.hash,
            key.hash(r.id, &r.entry, &r.prev_hash),
            "record {} carries its own hash",
            r.id
        );
        prev = r.hash.clone();
    }
}

// ---------------------------------------------------------------------------------------------
// Migrations

async fn migrations_are_idempotent(store: Store) -> TestResult {
    // `on_every_backend` migrated once already; twice more, on this pool and on another one.
    store.migrate().await?;
    store.migrate().await?;
    store.ping().await?;
    let anchor = store.audit_anchor().await?;
    assert_eq!(
        (anchor.first_id, anchor.last_id),
        (1, 0),
        "the chain head is seeded once"
    );
    assert_eq!(anchor.first_prev_hash, GENESIS_HASH);
    assert_eq!(anchor.last_hash, GENESIS_HASH);
    assert_eq!(
        anchor.keyed_from, 1,
        "a new chain is keyed from its first record"
    );
    assert_eq!(store.user_count().await?, 0);
    Ok(())
}

#[tokio::test]
async fn migrations_run_twice_and_ping_answers() -> TestResult {
    on_every_backend(migrations_are_idempotent).await
}

/// Migration 0004 rebuilds `certificates` (and `csrs`, which refers to it) on SQLite to drop the
/// UNIQUE fingerprint: rows, ids and the link from a CSR to its certificate survive, the link
/// is still a foreign key, and certificates are then found by fingerprint through their serial.
async fn certificate_lookup_migration(url: &str) -> TestResult {
    let store = Store::connect(url, 2).await?;
    certmint_store::testing::migrate_to(&store, 3).await?;
    let t = now();
    let mut tx = store.begin_write().await?;
    let ids = tx
        .insert_certificates(&[(&new_certificate(1, t), t), (&new_certificate(2, t), t)])
        .await?;
    let csr = tx
        .insert_csr(
            &certmint_store::NewCsr {
                refid: "csr-1".into(),
                name: "one".into(),
                subject: "CN=host1.example.test".into(),
                common_name: Some("host1.example.test".into()),
                sans: vec!["dns:host1.example.test".into()],
                key_type: "EC P-256".into(),
                signature_algorithm: "ecdsa-with-SHA256".into(),
                public_key: vec![0x30, 0x00],
                key_id: None,
                source: CsrSource::Uploaded,
                der: vec![0x30, 0x00],
                owner_id: None,
            },
            t,
        )
        .await?;
    assert!(tx.mark_csr_signed(csr, ids[0], t).await?);
    tx.commit().await?;

    store.migrate().await?;
    for (i, id) in (1..=2).zip(&ids) {
        let row = store
            .certificate(*id)
            .await?
            .ok_or("a certificate is gone")?;
        assert_eq!(row.cert.serial, format!("{i:032x}"));
        assert_eq!(row.cert.fingerprint_sha256, format!("fp-{i}"));
    }
    let signed = store.csr(csr).await?.ok_or("the CSR is gone")?;
    assert_eq!(signed.certificate_id, Some(ids[0]));

    let mut tx = store.begin_write().await?;
    assert!(tx.certificate_known("fp-1", &format!("{:032x}", 1)).await?);
    assert!(!tx.certificate_known("fp-1", &format!("{:032x}", 2)).await?);
    assert!(!tx.certificate_known("fp-3", &format!("{:032x}", 3)).await?);
    // The link still follows its certificate: deleting it clears the CSR's link.
    assert!(tx.delete_certificate(ids[0]).await?);
    tx.commit().await?;
    let unlinked = store
        .csr(csr)
        .await?
        .ok_or("the CSR went with its certificate")?;
    assert_eq!(unlinked.certificate_id, None);
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn certificates_keep_their_rows_and_links_through_the_lookup_migration() -> TestResult {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    certificate_lookup_migration(&url)
        .await
        .map_err(|e| format!("on SQLite: {e}"))?;
    if let Some(admin) = postgres_admin_url() {
        let url = certmint_store::testing::fresh_postgres_database(&admin).await?;
        certificate_lookup_migration(&url)
            .await
            .map_err(|e| format!("on PostgreSQL: {e}"))?;
    }
    Ok(())
}

/// Migration 0008 keys the chain from the record after the newest one written before it: those
/// keep their plain hashes, and records appended afterwards are the keyed part.
async fn keyed_chain_migration(url: &str) -> TestResult {
    let store = Store::connect(url, 2).await?.with_chain_key(chain_key());
    certmint_store::testing::migrate_to(&store, 7).await?;
    let mut tx = store.begin_write().await?;
    tx.audit_many(&[entry("old 1", now()), entry("old 2", now())])
        .await?;
    tx.commit().await?;
    store.migrate().await?;
    let anchor = store.audit_anchor().await?;
    assert_eq!((anchor.last_id, anchor.keyed_from), (2, 3));
    let seal = anchor
        .keyed_seal
        .ok_or("the run that keyed the chain sealed its start")?;
    assert!(chain_key().sealed(3, &seal));
    assert!(!chain_key().sealed(4, &seal));

    // Only that run seals: a start moved and unsealed later stays unsealed.
    store
        .execute_raw("UPDATE audit_head SET keyed_from = 4, keyed_seal = NULL WHERE id = 1")
        .await?;
    store.migrate().await?;
    assert_eq!(store.audit_anchor().await?.keyed_seal, None);
    store
        .execute_raw(&format!(
            "UPDATE audit_head SET keyed_from = 3, keyed_seal = '{seal}' WHERE id = 1"
        ))
        .await?;
    let mut tx = store.begin_write().await?;
    assert_eq!(tx.audit(&entry("new", now())).await?, 3);
    tx.commit().await?;
    assert_eq!(store.audit_anchor().await?.keyed_from, 3, "it never moves");
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn the_keyed_chain_migration_keeps_older_records_in_the_plain_part() -> TestResult {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    keyed_chain_migration(&url)
        .await
        .map_err(|e| format!("on SQLite: {e}"))?;
    if let Some(admin) = postgres_admin_url() {
        let url = certmint_store::testing::fresh_postgres_database(&admin).await?;
        keyed_chain_migration(&url)
            .await
            .map_err(|e| format!("on PostgreSQL: {e}"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Users

async fn user_rows(store: Store) -> TestResult {
    let t0 = now();
    let mut tx = store.begin_write().await?;
    let ann = tx.insert_user(&new_user("ann", "viewer"), t0).await?;
    tx.commit().await?;

    let row = store.user(ann).await?.ok_or("ann by id")?;
    assert_eq!(row.id, ann);
    assert_eq!(row.username, "ann");
    assert_eq!(row.email.as_deref(), Some("ann@example.test"));
    assert_eq!(row.full_name.as_deref(), Some("ann Example"));
    assert_eq!(row.role, "viewer");
    assert_eq!(row.password_hash, new_user("ann", "viewer").password_hash);
    assert!(row.enabled);
    assert_eq!(row.failed_logins, 0);
    assert_eq!((row.locked_until, row.last_login_at), (None, None));
    assert_eq!(
        (row.created_at, row.updated_at, row.password_changed_at),
        (t0, t0, t0)
    );
    assert_eq!(store.user_by_name("ann").await?, Some(row.clone()));
    assert_eq!(store.user_by_name("ANN").await?, None, "names are exact");
    assert_eq!(store.user(ann + 1000).await?, None);
    assert_eq!(store.user_by_name("nobody").await?, None);

    // Some(None) clears, Some(Some(..)) sets, None leaves a field alone.
    let t1 = t0 + Duration::seconds(5);
    let mut tx = store.begin_write().await?;
    let update = UserUpdate {
        email: Some(None),
        full_name: Some(Some("Ann Other".into())),
        role: Some("operator".into()),
        enabled: Some(false),
    };
    assert!(tx.update_user(ann, &update, t1).await?);
    assert!(
        !tx.update_user(ann + 1000, &update, t1).await?,
        "no such user"
    );
    tx.commit().await?;
    let updated = store.user(ann).await?.ok_or("ann")?;
    assert_eq!(updated.email, None);
    assert_eq!(updated.full_name.as_deref(), Some("Ann Other"));
    assert_eq!(updated.role, "operator");
    assert!(!updated.enabled);
    assert_eq!(
        (updated.created_at, updated.updated_at),
        (t0, t1),
        "created_at stays, updated_at moves"
    );

    let t2 = t1 + Duration::seconds(5);
    let mut tx = store.begin_write().await?;
    assert!(tx.update_user(ann, &UserUpdate::default(), t2).await?);
    tx.commit().await?;
    let same = store.user(ann).await?.ok_or("ann")?;
    assert_eq!(
        same,
        UserRow {
            updated_at: t2,
            ..updated
        },
        "an empty update changes nothing else"
    );

    // A taken username is a conflict naming its constraint the same way on both engines, and
    // the failed transaction writes nothing.
    let mut tx = store.begin_write().await?;
    match tx.insert_user(&new_user("ann", "admin"), t2).await {
        Err(Error::Conflict(constraint)) => assert_eq!(constraint, "users.username"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    drop(tx);
    assert_eq!(store.user_count().await?, 1);

    // A dropped transaction writes nothing.
    let mut tx = store.begin_write().await?;
    tx.insert_user(&new_user("ghost", "viewer"), t2).await?;
    drop(tx);
    assert_eq!(store.user_by_name("ghost").await?, None);
    assert_eq!(store.user_count().await?, 1);
    Ok(())
}

#[tokio::test]
async fn users_insert_get_update_and_conflict() -> TestResult {
    on_every_backend(user_rows).await
}

async fn user_lists(store: Store) -> TestResult {
    let t = now();
    let mut tx = store.begin_write().await?;
    let mut ids = Vec::new();
    for (name, role) in [
        ("ann", "viewer"),
        ("ben", "operator"),
        ("cat", "operator"),
        ("dan", "admin"),
        ("e_f", "auditor"),
    ] {
        ids.push(tx.insert_user(&new_user(name, role), t).await?);
    }
    let cat = ids[2];
    let disable = UserUpdate {
        enabled: Some(false),
        full_name: Some(Some("Catherine Percent%".into())),
        ..UserUpdate::default()
    };
    assert!(tx.update_user(cat, &disable, t).await?);
    let backslash = UserUpdate {
        full_name: Some(Some("Dan Back\\slash".into())),
        ..UserUpdate::default()
    };
    assert!(tx.update_user(ids[3], &backslash, t).await?);
    tx.commit().await?;

    let names = |p: &certmint_store::Page<UserRow>| {
        p.items
            .iter()
            .map(|u| u.username.clone())
            .collect::<Vec<_>>()
    };
    let all = store.users(&UserFilter::default(), page(1, 100)).await?;
    assert_eq!(all.total, 5);
    assert_eq!(names(&all), ["ann", "ben", "cat", "dan", "e_f"], "by id");

    let filter = |role: Option<&str>, enabled: Option<bool>, search: Option<&str>| UserFilter {
        role: role.map(str::to_owned),
        enabled,
        search: search.map(str::to_owned),
    };
    for (f, expected) in [
        (filter(Some("operator"), None, None), &["ben", "cat"][..]),
        (filter(None, Some(false), None), &["cat"]),
        (
            filter(None, Some(true), None),
            &["ann", "ben", "dan", "e_f"],
        ),
        (filter(Some("operator"), Some(true), None), &["ben"]),
        (filter(None, None, Some("BEN@EXAMPLE")), &["ben"]),
        (filter(None, None, Some("catherine")), &["cat"]),
        (
            filter(None, None, Some("example")),
            &["ann", "ben", "cat", "dan", "e_f"],
        ),
        // LIKE wildcards in the search text match only themselves.
        (filter(None, None, Some("_")), &["e_f"]),
        (filter(None, None, Some("%")), &["cat"]),
        (filter(None, None, Some("\\")), &["dan"]),
        (filter(None, None, Some("nobody")), &[]),
        (filter(Some("admin"), None, Some("ann")), &[]),
    ] {
        let found = store.users(&f, page(1, 100)).await?;
        assert_eq!(names(&found), expected, "{f:?}");
        assert_eq!(found.total, i64::try_from(expected.len())?, "{f:?}");
    }

    // Pages: the total is the whole match, the items one page of it.
    let everyone = UserFilter::default();
    let per_two = |n| store.users(&everyone, page(n, 2));
    let first = per_two(1).await?;
    assert_eq!(
        (first.total, names(&first)),
        (5, vec!["ann".into(), "ben".into()])
    );
    let last = per_two(3).await?;
    assert_eq!((last.total, names(&last)), (5, vec!["e_f".to_owned()]));
    let beyond = per_two(4).await?;
    assert_eq!((beyond.total, beyond.items.len()), (5, 0));
    let operators = store
        .users(&filter(Some("operator"), None, None), page(2, 1))
        .await?;
    assert_eq!(
        (operators.total, names(&operators)),
        (2, vec!["cat".into()])
    );
    Ok(())
}

#[tokio::test]
async fn users_list_with_filters_and_page_totals() -> TestResult {
    on_every_backend(user_lists).await
}

async fn user_deletion(store: Store) -> TestResult {
    let t = now();
    let mut tx = store.begin_write().await?;
    let ann = tx.insert_user(&new_user("ann", "viewer"), t).await?;
    let ben = tx.insert_user(&new_user("ben", "viewer"), t).await?;
    tx.insert_session(&session(ann, "ann-1", t), t).await?;
    tx.insert_session(&session(ann, "ann-2", t), t).await?;
    tx.insert_session(&session(ben, "ben-1", t), t).await?;
    tx.insert_api_key(&api_key(ann, "ann-key"), t).await?;
    tx.insert_api_key(&api_key(ben, "ben-key"), t).await?;
    tx.commit().await?;
    assert_eq!(store.live_sessions(ann, t).await?.len(), 2);
    assert_eq!(store.api_keys(ann).await?.len(), 1);

    let mut tx = store.begin_write().await?;
    assert!(tx.delete_user(ann).await?);
    assert!(!tx.delete_user(ann).await?, "already gone");
    tx.commit().await?;

    assert_eq!(store.user(ann).await?, None);
    assert_eq!(store.session_by_token("token-hash-ann-1").await?, None);
    assert_eq!(store.session_by_token("token-hash-ann-2").await?, None);
    assert!(store.live_sessions(ann, t).await?.is_empty());
    assert_eq!(store.api_key_by_hash("key-hash-ann-key").await?, None);
    assert!(store.api_keys(ann).await?.is_empty());
    // Another user's rows are untouched.
    assert!(store.session_by_token("token-hash-ben-1").await?.is_some());
    assert!(store.api_key_by_hash("key-hash-ben-key").await?.is_some());

    // Foreign keys are enforced (on SQLite too): no session for a user that does not exist,
    // and the caller hears it named something missing.
    let mut tx = store.begin_write().await?;
    assert!(matches!(
        tx.insert_session(&session(ann, "orphan", t), t).await,
        Err(Error::Invalid(m)) if m.contains("does not exist")
    ));
    drop(tx);
    let mut tx = store.begin_write().await?;
    assert!(tx.insert_api_key(&api_key(ann, "orphan"), t).await.is_err());
    drop(tx);
    assert_eq!(store.session_by_token("token-hash-orphan").await?, None);
    Ok(())
}

#[tokio::test]
async fn deleting_a_user_cascades_to_sessions_and_api_keys() -> TestResult {
    on_every_backend(user_deletion).await
}

// ---------------------------------------------------------------------------------------------
// The audit chain

async fn audit_chain(store: Store) -> TestResult {
    let t = now();
    let first = entry("first", t);
    let second = AuditEntry {
        username: None,
        resource_type: None,
        resource_id: None,
        details: None,
        ip_address: None,
        user_agent: Some("agent/1".into()),
        success: false,
        ..entry("second", t + Duration::microseconds(1))
    };
    let mut tx = store.begin_write().await?;
    assert_eq!(tx.audit(&first).await?, 1);
    assert_eq!(tx.audit(&second).await?, 2);
    tx.commit().await?;

    // Dropping a transaction rolls back its change and its audit record together.
    let mut tx = store.begin_write().await?;
    tx.insert_user(&new_user("ghost", "viewer"), t).await?;
    assert_eq!(tx.audit(&entry("rolled back", t)).await?, 3);
    drop(tx);
    assert_eq!(store.user_by_name("ghost").await?, None);
    assert_eq!(store.audit_get(3).await?, None);
    assert_eq!(store.audit_anchor().await?.last_id, 2);

    // A transaction without audit records leaves the chain alone.
    let mut tx = store.begin_write().await?;
    tx.insert_user(&new_user("quiet", "viewer"), t).await?;
    tx.commit().await?;
    assert_eq!(store.audit_anchor().await?.last_id, 2);

    // The next committed record takes the rolled-back id: no gap.
    let third = entry("third", t + Duration::seconds(1));
    let mut tx = store.begin_write().await?;
    tx.insert_user(&new_user("ann", "viewer"), t).await?;
    assert_eq!(tx.audit(&third).await?, 3);
    tx.commit().await?;
    assert!(store.user_by_name("ann").await?.is_some());

    let records = chain(&store).await?;
    assert_eq!(records.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        records.iter().map(|r| r.entry.clone()).collect::<Vec<_>>(),
        [first, second, third],
        "entries read back as written"
    );
    assert_eq!(records[0].prev_hash, GENESIS_HASH);
    assert_linked(&records, GENESIS_HASH);
    assert_eq!(store.audit_get(2).await?.as_ref(), Some(&records[1]));

    let anchor = store.audit_anchor().await?;
    assert_eq!((anchor.first_id, anchor.last_id), (1, 3));
    assert_eq!(anchor.first_prev_hash, GENESIS_HASH);
    assert_eq!(anchor.last_hash, records[2].hash);

    // The hash is keyed: the plain SHA-256 anyone could recompute is not it, and another key
    // gives another hash.
    let r = &records[2];
    assert_ne!(r.hash, plain_chain_hash(r.id, &r.entry, &r.prev_hash));
    let other = ChainKey::from(hmac::Key::new(hmac::HMAC_SHA256, b"another key"));
    assert_ne!(r.hash, other.hash(r.id, &r.entry, &r.prev_hash));
    Ok(())
}

#[tokio::test]
async fn audit_records_chain_without_gaps_and_roll_back_with_their_change() -> TestResult {
    on_every_backend(audit_chain).await
}

/// The check comes before any SQL, so one backend shows it.
#[tokio::test]
async fn a_store_without_the_chain_key_cannot_append_audit_records() -> TestResult {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let keyless = Store::connect(&url, 1).await?;
    keyless.migrate().await?;
    let mut tx = keyless.begin_write().await?;
    assert!(matches!(
        tx.audit(&entry("keyless", now())).await,
        Err(Error::Config(_))
    ));
    drop(tx);
    assert_eq!(keyless.audit_anchor().await?.last_id, 0);
    keyless.close().await;
    Ok(())
}

async fn concurrent_writers(store: Store) -> TestResult {
    const WRITERS: usize = 20;
    let start = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = store.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                let mut tx = store.begin_write().await?;
                let at = now();
                let id = tx
                    .insert_user(&new_user(&format!("u{i}"), "viewer"), at)
                    .await?;
                // Give the others every chance to interleave, were they not held back.
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                let audited = AuditEntry {
                    resource_id: Some(id.to_string()),
                    ..entry("user_created", at)
                };
                let record = tx.audit(&audited).await?;
                tx.commit().await?;
                Ok::<_, Error>((id, record))
            })
        })
        .collect();
    let mut record_ids = BTreeSet::new();
    let mut user_ids = BTreeSet::new();
    for task in tasks {
        let (user, record) = task.await??;
        user_ids.insert(user.to_string());
        record_ids.insert(record);
    }
    let expected: BTreeSet<i64> = (1..=i64::try_from(WRITERS)?).collect();
    assert_eq!(record_ids, expected, "each writer got its own record id");

    let records = chain(&store).await?;
    assert_eq!(
        records.iter().map(|r| r.id).collect::<BTreeSet<_>>(),
        expected
    );
    assert_linked(&records, GENESIS_HASH);
    assert_eq!(
        records
            .iter()
            .filter_map(|r| r.entry.resource_id.clone())
            .collect::<BTreeSet<_>>(),
        user_ids,
        "each record belongs to its writer's user"
    );
    let anchor = store.audit_anchor().await?;
    assert_eq!(anchor.last_id, i64::try_from(WRITERS)?);
    assert_eq!(Some(&anchor.last_hash), records.last().map(|r| &r.hash));
    assert_eq!(store.user_count().await?, i64::try_from(WRITERS)?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_extend_one_chain() -> TestResult {
    on_every_backend(concurrent_writers).await
}

async fn retention(store: Store) -> TestResult {
    let base = now() - Duration::days(10);
    let at = |day: i64| base + Duration::days(day);
    let mut tx = store.begin_write().await?;
    for day in 1..=5 {
        tx.audit(&entry(&format!("day {day}"), at(day))).await?;
    }
    tx.commit().await?;
    let before = chain(&store).await?;
    assert_eq!(before.len(), 5);

    // A removal that is rolled back changes nothing.
    let mut tx = store.begin_write().await?;
    assert_eq!(tx.audit_remove_before(at(4)).await?, 3);
    drop(tx);
    assert_eq!(chain(&store).await?, before);
    assert_eq!(store.audit_anchor().await?.first_id, 1);

    // Nothing is older than the cutoff: nothing moves.
    let mut tx = store.begin_write().await?;
    assert_eq!(tx.audit_remove_before(at(0)).await?, 0);
    tx.commit().await?;
    assert_eq!(store.audit_anchor().await?.first_prev_hash, GENESIS_HASH);

    // Records of days 1-3 go; the anchor moves to record 3's hash, and 4 and 5 link from it.
    let mut tx = store.begin_write().await?;
    assert_eq!(tx.audit_remove_before(at(4)).await?, 3);
    tx.commit().await?;
    let anchor = store.audit_anchor().await?;
    assert_eq!((anchor.first_id, anchor.last_id), (4, 5));
    assert_eq!(anchor.first_prev_hash, before[2].hash);
    assert_eq!(anchor.last_hash, before[4].hash);
    let remaining = chain(&store).await?;
    assert_eq!(remaining, before[3..]);
    assert_linked(&remaining, &anchor.first_prev_hash);

    // The chain goes on from its tip.
    let mut tx = store.begin_write().await?;
    assert_eq!(tx.audit(&entry("day 6", at(6))).await?, 6);
    tx.commit().await?;
    let remaining = chain(&store).await?;
    assert_eq!(
        remaining.iter().map(|r| r.id).collect::<Vec<_>>(),
        [4, 5, 6]
    );
    assert_linked(&remaining, &anchor.first_prev_hash);

    // Removing everything, with a new record in the same transaction: the anchor is the last
    // removed record's hash, and the new record links from it.
    let mut tx = store.begin_write().await?;
    assert_eq!(tx.audit_remove_before(now()).await?, 3);
    assert_eq!(tx.audit(&entry("retention", now())).await?, 7);
    tx.commit().await?;
    let anchor = store.audit_anchor().await?;
    let remaining = chain(&store).await?;
    assert_eq!(remaining.len(), 1);
    assert_eq!(
        (anchor.first_id, anchor.last_id, remaining[0].id),
        (7, 7, 7)
    );
    assert_linked(&remaining, &anchor.first_prev_hash);
    assert_eq!(anchor.last_hash, remaining[0].hash);
    Ok(())
}

#[tokio::test]
async fn retention_moves_the_anchor_and_the_rest_still_links() -> TestResult {
    on_every_backend(retention).await
}

// ---------------------------------------------------------------------------------------------
// Batch writes

/// A certificate row to store; its refid tells it apart.
fn new_certificate(i: usize, at: OffsetDateTime) -> certmint_store::NewCertificate {
    certmint_store::NewCertificate {
        refid: format!("cert-{i}"),
        ca_id: None,
        key_id: None,
        template_id: None,
        owner_id: None,
        renewed_from: None,
        description: Some(format!("certificate {i}")),
        sans: vec![format!("dns:host{i}.example.test")],
        is_ca: false,
        source: CertificateSource::Api,
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
            der: vec![0x30, 0x03, 0x02, 0x01, u8::try_from(i % 128).unwrap_or(0)],
        },
    }
}

async fn batch_writes(store: Store) -> TestResult {
    // More rows than one statement may bind, so that the writes are split.
    const ROWS: usize = 2_600;
    let t = now();
    let keys: Vec<certmint_store::NewKey> = (0..3)
        .map(|i| certmint_store::NewKey {
            refid: format!("key-{i}"),
            key_type: "EC P-256".into(),
            backend: "software".into(),
            sealed: Some(vec![u8::try_from(i).unwrap_or(0); 8]),
            public_key: vec![0x30, u8::try_from(i).unwrap_or(0)],
            hsm: None,
        })
        .collect();
    let mut certificates: Vec<_> = (0..ROWS).map(|i| new_certificate(i, t)).collect();
    let entries: Vec<AuditEntry> = (0..ROWS).map(|i| entry(&format!("a{i}"), t)).collect();
    let events: Vec<certmint_store::NewEvent> = (0..ROWS)
        .map(|i| certmint_store::NewEvent {
            event_type: "certificate_issued".into(),
            resource_type: "certificate".into(),
            resource_id: i.to_string(),
            payload: serde_json::json!({ "n": i }),
        })
        .collect();

    let mut tx = store.begin_write().await?;
    let key_rows: Vec<_> = keys.iter().map(|k| (k, t)).collect();
    let key_ids = tx.insert_keys(&key_rows).await?;
    for (c, key_id) in certificates.iter_mut().zip(&key_ids) {
        c.key_id = Some(*key_id);
    }
    let rows: Vec<_> = certificates.iter().map(|c| (c, t)).collect();
    let ids = tx.insert_certificates(&rows).await?;
    tx.audit_many(&entries).await?;
    let queued: Vec<_> = events.iter().map(|e| (e, t)).collect();
    tx.queue_events(&queued).await?;
    tx.commit().await?;

    // Every id given back is the row written in that place.
    for (key, id) in keys.iter().zip(&key_ids) {
        assert_eq!(
            store.key(*id).await?.map(|k| k.refid),
            Some(key.refid.clone())
        );
    }
    assert_eq!(ids.len(), ROWS);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ROWS,
        "ids are distinct"
    );
    for (i, (c, id)) in certificates.iter().zip(&ids).enumerate() {
        if i % 97 == 0 || i < 3 || i == ROWS - 1 {
            let row = store
                .certificate(*id)
                .await?
                .ok_or("a certificate is missing")?;
            assert_eq!(
                row,
                c.clone().stored_as(*id, t),
                "certificate {i} reads back as written"
            );
        }
    }
    let records = chain(&store).await?;
    assert_eq!(records.len(), ROWS);
    assert_linked(&records, GENESIS_HASH);
    assert_eq!(
        records.iter().map(|r| r.entry.clone()).collect::<Vec<_>>(),
        entries,
        "audit records in order"
    );
    let pending = store
        .pending_events("certificate_issued", i64::try_from(2 * ROWS)?)
        .await?;
    assert_eq!(pending.len(), ROWS);
    Ok(())
}

#[tokio::test]
async fn batches_of_certificates_audit_records_and_events_are_written_in_order() -> TestResult {
    on_every_backend(batch_writes).await
}

/// SQLite's write-ahead log is copied into the database file in the background: commits do
/// not run checkpoints themselves, yet the data reaches the main file within seconds.
#[tokio::test]
async fn sqlite_checkpoints_run_in_the_background() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("t.db");
    let store = open(&format!("sqlite://{}?mode=rwc", file.display())).await;
    let t = now();
    // Give the checkpoints that follow the migrations time to finish.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let before = std::fs::metadata(&file)?.len();
    let certificates: Vec<_> = (0..2_000).map(|i| new_certificate(i, t)).collect();
    let rows: Vec<_> = certificates.iter().map(|c| (c, t)).collect();
    let mut tx = store.begin_write().await?;
    tx.insert_certificates(&rows).await?;
    tx.commit().await?;
    let wal = std::fs::metadata(dir.path().join("t.db-wal"))?.len();
    assert!(wal > 100_000, "the commit went to the log ({wal} bytes)");

    let mut grown = before;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        grown = std::fs::metadata(&file)?.len();
        if grown > before + 100_000 {
            break;
        }
    }
    assert!(
        grown > before + 100_000,
        "the log reached the database file ({before} -> {grown} bytes)"
    );
    store.close().await;
    Ok(())
}

async fn leases(store: Store) -> TestResult {
    let now = OffsetDateTime::now_utc();
    let until = now + Duration::seconds(15);
    assert!(store.take_lease("job", "node-a", now, until).await?);
    assert!(
        !store.take_lease("job", "node-b", now, until).await?,
        "another node's lease holds until it expires"
    );
    assert!(
        store
            .take_lease(
                "job",
                "node-a",
                now + Duration::seconds(5),
                until + Duration::seconds(5)
            )
            .await?,
        "its holder renews it"
    );
    assert!(
        !store
            .take_lease("job", "node-b", until, until + Duration::seconds(15))
            .await?,
        "renewed: still held at the old expiry"
    );
    let later = until + Duration::seconds(6);
    assert!(
        store
            .take_lease("job", "node-b", later, later + Duration::seconds(15))
            .await?,
        "once it has expired, another node takes it"
    );
    assert!(!store.take_lease("job", "node-a", later, later).await?);
    assert!(
        store.take_lease("other", "node-a", later, later).await?,
        "leases are by name"
    );
    Ok(())
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires() -> TestResult {
    on_every_backend(leases).await
}

async fn acme_shared_state(store: Store) -> TestResult {
    let now = OffsetDateTime::now_utc();
    let later = now + Duration::minutes(30);
    // A batch of nonces: each is fresh once; again, or twice in one batch, it is not.
    let batch = vec![
        ("n1".to_owned(), later),
        ("n2".to_owned(), later),
        ("n2".to_owned(), later),
    ];
    let mut tx = store.begin_relaxed_write().await?;
    let fresh: BTreeSet<String> = tx.use_nonces(&batch).await?.into_iter().collect();
    tx.commit().await?;
    assert_eq!(fresh, BTreeSet::from(["n1".to_owned(), "n2".to_owned()]));
    let mut tx = store.begin_relaxed_write().await?;
    let again = tx
        .use_nonces(&[("n1".to_owned(), later), ("n3".to_owned(), now)])
        .await?;
    tx.commit().await?;
    assert_eq!(again, ["n3".to_owned()], "n1 was used before");
    // Rolled back, a use is forgotten.
    let mut tx = store.begin_relaxed_write().await?;
    assert_eq!(tx.use_nonces(&[("n4".to_owned(), later)]).await?, ["n4"]);
    drop(tx);
    let mut tx = store.begin_relaxed_write().await?;
    assert_eq!(tx.use_nonces(&[("n4".to_owned(), later)]).await?, ["n4"]);
    tx.commit().await?;
    assert_eq!(
        store.purge_used_nonces(now + Duration::seconds(1)).await?,
        1,
        "only n3 had expired"
    );
    // The first node to store a nonce key sets it for every node.
    let first = store.acme_nonce_key(b"first".to_vec()).await?;
    let second = store.acme_nonce_key(b"second".to_vec()).await?;
    assert_eq!(
        (first.as_slice(), second.as_slice()),
        (&b"first"[..], &b"first"[..])
    );
    // Rate counters count per key and window, and old windows go.
    let window = from_micros(to_micros(now) / 1_000_000 * 1_000_000);
    assert_eq!(store.count_rate("orders:1", window).await?, 1);
    assert_eq!(store.count_rate("orders:1", window).await?, 2);
    assert_eq!(store.count_rate("orders:2", window).await?, 1);
    let next = window + Duration::HOUR;
    assert_eq!(store.count_rate("orders:1", next).await?, 1);
    assert_eq!(store.purge_rate_counters(next).await?, 2);
    assert_eq!(store.count_rate("orders:1", next).await?, 2);
    Ok(())
}

#[tokio::test]
async fn acme_nonces_keys_and_rate_counters_are_shared_state() -> TestResult {
    on_every_backend(acme_shared_state).await
}

async fn acme_order_batches(store: Store) -> TestResult {
    let now = from_micros(to_micros(OffsetDateTime::now_utc()));
    let mut tx = store.begin_write().await?;
    let profile = tx
        .insert_acme_profile("batch", false, &AcmeProfileFields::default(), now)
        .await?;
    let account = tx
        .insert_acme_account(
            &NewAcmeAccount {
                refid: "acct".into(),
                profile_id: profile,
                thumbprint: "thumb".into(),
                jwk: "{}".into(),
                contact: Vec::new(),
                tos_agreed: true,
                eab_key_id: None,
                origin_ip: None,
            },
            now,
        )
        .await?;
    tx.commit().await?;
    // A constraint over two columns is named with both, the same on both engines.
    let mut tx = store.begin_write().await?;
    let twice = tx
        .insert_acme_account(
            &NewAcmeAccount {
                refid: "acct-2".into(),
                profile_id: profile,
                thumbprint: "thumb".into(),
                jwk: "{}".into(),
                contact: Vec::new(),
                tos_agreed: true,
                eab_key_id: None,
                origin_ip: None,
            },
            now,
        )
        .await;
    match twice {
        Err(Error::Conflict(constraint)) => assert_eq!(
            constraint,
            "acme_accounts.profile_id, acme_accounts.thumbprint"
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
    drop(tx);
    let new = |refid: &str| NewAcmeOrder {
        refid: refid.into(),
        account_id: account,
        status: AcmeStatus::Pending,
        identifiers: "[]".into(),
        authorizations: format!("[\"{refid}\"]"),
        not_before: None,
        not_after: None,
        expires_at: now + Duration::days(7),
        replaces: None,
    };
    let (a, b, c) = (new("a"), new("b"), new("c"));
    // Three orders in one statement, two of them changed in one more.
    let mut tx = store.begin_relaxed_write().await?;
    tx.insert_acme_orders(&[(&a, now), (&b, now), (&c, now)])
        .await?;
    let mut named = tx.acme_orders_named(&["a", "c", "missing"]).await?;
    named.sort_by(|x, y| x.refid.cmp(&y.refid));
    assert_eq!(
        named.iter().map(|o| o.refid.as_str()).collect::<Vec<_>>(),
        ["a", "c"]
    );
    let later = now + Duration::seconds(5);
    let change = |status: AcmeStatus, error: Option<&str>| AcmeOrderChange {
        status,
        authorizations: format!("[\"{status}\"]"),
        error: error.map(str::to_owned),
        certificate_id: None,
    };
    tx.update_acme_orders(&[
        (named[0].id, change(AcmeStatus::Ready, None), later),
        (named[1].id, change(AcmeStatus::Invalid, Some("{}")), later),
    ])
    .await?;
    tx.commit().await?;
    let (Some(a), Some(b), Some(c)) = (
        store.acme_order("a").await?,
        store.acme_order("b").await?,
        store.acme_order("c").await?,
    ) else {
        return Err("an order is gone".into());
    };
    assert_eq!(
        (
            a.status.as_str(),
            a.authorizations.as_str(),
            a.error,
            a.updated_at
        ),
        ("ready", "[\"ready\"]", None, later)
    );
    assert_eq!(
        (c.status.as_str(), c.error.as_deref(), c.updated_at),
        ("invalid", Some("{}"), later)
    );
    assert_eq!(
        (b.status.as_str(), b.authorizations.as_str(), b.updated_at),
        ("pending", "[\"b\"]", now),
        "b was not changed"
    );
    Ok(())
}

#[tokio::test]
async fn acme_orders_are_inserted_read_and_changed_in_batches() -> TestResult {
    on_every_backend(acme_order_batches).await
}

async fn conditional_revocation(store: Store) -> TestResult {
    use certmint_store::Revocation;
    let t = now();
    let mut tx = store.begin_write().await?;
    let row = new_certificate(0, t);
    let id = tx.insert_certificates(&[(&row, t)]).await?[0];
    tx.commit().await?;
    let hold = Revocation {
        at: t,
        reason: "certificateHold",
        comment: None,
        invalidity_date: None,
    };
    let compromise = Revocation {
        reason: "keyCompromise",
        ..hold
    };
    let mut tx = store.begin_write().await?;
    assert!(
        tx.set_revocation(id, (CertificateStatus::Valid, None), Some(&hold), t)
            .await?
    );
    tx.commit().await?;

    // Two requests read the hold; the keyCompromise lands first...
    let held = (CertificateStatus::Revoked, Some("certificateHold"));
    let mut tx = store.begin_write().await?;
    assert!(tx.set_revocation(id, held, Some(&compromise), t).await?);
    tx.commit().await?;
    // ...and the release, decided on the hold it read, changes nothing.
    let mut tx = store.begin_write().await?;
    assert!(!tx.set_revocation(id, held, None, t).await?);
    assert!(
        !tx.set_revocation(id, (CertificateStatus::Valid, None), None, t)
            .await?
    );
    tx.commit().await?;
    let stored = store.certificate(id).await?.ok_or("the certificate")?;
    assert_eq!(stored.status, CertificateStatus::Revoked);
    assert_eq!(stored.revocation_reason.as_deref(), Some("keyCompromise"));

    // A status the code never writes is a damaged row, not a new state.
    store
        .execute_raw(&format!(
            "UPDATE certificates SET status = 'suspended' WHERE id = {id}"
        ))
        .await?;
    match store.certificate(id).await {
        Err(Error::Corrupt(detail)) => assert!(detail.contains("suspended"), "{detail}"),
        other => panic!("a damaged status read back as {other:?}"),
    }
    store
        .execute_raw(&format!(
            "UPDATE certificates SET status = 'revoked' WHERE id = {id}"
        ))
        .await?;

    let mut tx = store.begin_write().await?;
    assert!(
        !tx.set_revocation(
            CertificateId(id.0 + 1000),
            (CertificateStatus::Valid, None),
            Some(&hold),
            t
        )
        .await?,
        "no such certificate"
    );
    tx.commit().await?;
    Ok(())
}

#[tokio::test]
async fn a_revocation_change_applies_only_over_the_state_it_was_decided_on() -> TestResult {
    on_every_backend(conditional_revocation).await
}

async fn password_attempts(store: Store) -> TestResult {
    let t = now();
    let mut tx = store.begin_write().await?;
    let id = tx.insert_user(&new_user("guessed", "viewer"), t).await?;
    tx.commit().await?;
    // Attempts counted from many connections at once are each counted once.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut tx = store.begin_write().await?;
            let n = tx.count_password_attempt(id, t).await?;
            tx.commit().await?;
            Ok::<_, Error>(n)
        });
    }
    let mut counts = Vec::new();
    while let Some(n) = tasks.join_next().await {
        counts.push(n??.ok_or("the account is not locked")?);
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=16).collect::<Vec<i64>>());

    // A locked account counts nothing until the lock ends, then starts from zero.
    let until = t + Duration::minutes(15);
    let mut tx = store.begin_write().await?;
    tx.lock_user(id, until).await?;
    assert_eq!(tx.count_password_attempt(id, t).await?, None);
    assert_eq!(tx.count_password_attempt(id, until).await?, Some(1));
    tx.commit().await?;
    let row = store.user(id).await?.ok_or("the user")?;
    assert_eq!((row.failed_logins, row.locked_until), (1, Some(until)));
    Ok(())
}

#[tokio::test]
async fn password_attempts_are_counted_atomically_and_not_while_locked() -> TestResult {
    on_every_backend(password_attempts).await
}

// ---------------------------------------------------------------------------------------------
// A full disk (SQLite)

/// One issuance-like write, large enough to fill a small disk quickly: a certificate and its
/// audit record in one transaction.
async fn write_one(store: &Store, i: usize) -> Result<CertificateId, Error> {
    let t = now();
    let mut row = certmint_store::NewCertificate {
        description: Some("x".repeat(2000)),
        ..new_certificate(i, t)
    };
    row.cert.der = vec![0x30; 1500];
    let mut tx = store.begin_write().await?;
    let ids = tx.insert_certificates(&[(&row, t)]).await?;
    tx.audit(&entry("certificate_issued", t)).await?;
    tx.commit().await?;
    ids.first().copied().ok_or(Error::Corrupt("no id".into()))
}

/// Every commit that returned success is on disk after a reopen, failed commits say the disk
/// is full, and writing resumes on the same store once space is back. The database lives on a
/// small tmpfs this test mounts (it runs as root, as the test script and CI do; without the
/// right to mount it fails rather than skips).
#[tokio::test]
async fn a_full_disk_loses_no_acknowledged_write_and_writing_resumes() -> TestResult {
    let disk = certmint_store::testing::SmallDisk::mount("6m")?;
    let url = format!("sqlite://{}?mode=rwc", disk.path().join("t.db").display());
    let store = open(&url).await;
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
    let store = open(&url).await;
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

// ---------------------------------------------------------------------------------------------
// Figures for the console

async fn console_figures(store: Store) -> TestResult {
    let t = now();
    let mut tx = store.begin_write().await?;
    let mut cas = Vec::new();
    for i in 0..3 {
        let cert = new_certificate(900 + i, t).cert;
        let ca = certmint_store::NewCa {
            refid: format!("ca-{i}"),
            name: format!("CA {i}"),
            description: None,
            ca_type: "root".into(),
            parent_id: None,
            key_id: None,
            path_len: None,
            is_default: false,
            source: CaSource::Imported,
            require_template: false,
            cert,
        };
        cas.push(tx.insert_ca(&ca, t).await?);
    }
    // Two certificates of the first CA, one of the second, none of the third, one of none.
    for (i, ca) in [
        (1, Some(cas[0])),
        (2, Some(cas[0])),
        (3, Some(cas[1])),
        (4, None),
    ] {
        let cert = certmint_store::NewCertificate {
            ca_id: ca,
            ..new_certificate(i, t)
        };
        tx.insert_certificate(&cert, t).await?;
    }
    let lena = tx
        .insert_user(&new_user("lena-search", "viewer"), t)
        .await?;
    tx.insert_user(&new_user("other", "auditor"), t).await?;
    for i in 0..4 {
        tx.audit(&entry(&format!("action-{i}"), t)).await?;
    }
    tx.commit().await?;

    let per_ca = store.certificates_per_ca().await?;
    assert_eq!(per_ca.get(&cas[0]), Some(&2));
    assert_eq!(per_ca.get(&cas[1]), Some(&1));
    assert_eq!(per_ca.get(&cas[2]), None);
    assert_eq!(per_ca.len(), 2);

    let users = store.search_users("LENA-S", 10).await?;
    assert_eq!(users.iter().map(|u| u.id).collect::<Vec<_>>(), [lena]);
    assert_eq!(users[0].role, "viewer");
    assert!(users[0].enabled);
    assert!(
        store.search_users("example.test", 1).await?.len() == 1,
        "by email, limited"
    );
    assert!(store.search_csrs("anything", 5).await?.is_empty());
    assert_eq!(store.totals().await?.acme_accounts, 0);

    let recent = store.audit_recent(2, 1).await?;
    let actions: Vec<&str> = recent.iter().map(|r| r.entry.action.as_str()).collect();
    assert_eq!(
        actions,
        ["action-2", "action-1"],
        "newest first, after the one skipped"
    );
    Ok(())
}

#[tokio::test]
async fn console_figures_count_per_ca_find_users_and_page_the_activity() -> TestResult {
    on_every_backend(console_figures).await
}

async fn est_settings_and_counts(store: Store) -> TestResult {
    use certmint_store::{CaId, EstConfigRow, EstEndpoint, EstLabelRow, TemplateId};

    // Off, and without credentials, until configured.
    let empty = store.est_config().await?;
    assert_eq!(empty, EstConfigRow::default());

    let t = now();
    let endpoint = |ca: Option<i64>, user: &str, hash: Option<&str>| EstEndpoint {
        ca_id: ca.map(CaId),
        template_id: ca.map(TemplateId),
        username: user.into(),
        password_hash: hash.map(str::to_owned),
    };
    let config = EstConfigRow {
        enabled: true,
        default: endpoint(None, "device", Some("$argon2id$default")),
        labels: vec![
            EstLabelRow {
                label: "a".into(),
                endpoint: endpoint(Some(7), "", None),
            },
            EstLabelRow {
                label: "b".into(),
                endpoint: endpoint(Some(8), "lab", Some("$argon2id$b")),
            },
        ],
        updated_at: Some(t),
    };
    let generation = store.credentials_generation();
    let mut tx = store.begin_write().await?;
    tx.set_est_config(&config, t).await?;
    tx.commit().await?;
    assert_eq!(store.est_config().await?, config);
    assert!(
        store.credentials_generation() > generation,
        "remembered EST passwords are dropped"
    );

    // The list is replaced whole; a label named twice is a conflict and changes nothing.
    let mut fewer = config.clone();
    fewer.labels.remove(0);
    let mut tx = store.begin_write().await?;
    tx.set_est_config(&fewer, t).await?;
    tx.commit().await?;
    assert_eq!(store.est_config().await?.labels, fewer.labels);
    let mut twice = fewer.clone();
    twice.labels.push(twice.labels[0].clone());
    let mut tx = store.begin_write().await?;
    let clash = tx.set_est_config(&twice, t).await;
    assert!(matches!(clash, Err(Error::Conflict(_))), "{clash:?}");
    drop(tx);
    assert_eq!(store.est_config().await?, fewer);

    // Certificates by source, all and recent; audit records by endpoint and action.
    let rows: Vec<_> = (0..5)
        .map(|i| {
            let mut c = new_certificate(9_000 + i, t);
            if i < 3 {
                c.source = CertificateSource::Est;
            }
            c
        })
        .collect();
    let old = t - Duration::days(2);
    let mut tx = store.begin_write().await?;
    let dated: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, c)| (c, if i == 0 { old } else { t }))
        .collect();
    tx.insert_certificates(&dated).await?;
    let mut audited = Vec::new();
    for (action, who, at) in [
        ("certificate_issued", "est:default", old),
        ("certificate_issued", "est:default", t),
        ("certificate_renewed", "est:default", t),
        ("certificate_issued", "est:b", t),
        ("est_enrollment_refused", "est:default", t),
        ("certificate_issued", "admin", t),
    ] {
        let mut e = entry(action, at);
        e.username = Some(who.into());
        audited.push(e);
    }
    tx.audit_many(&audited).await?;
    tx.commit().await?;
    let day = t - Duration::DAY;
    assert_eq!(store.est_certificates(day).await?, (3, 2));
    let issued = ["certificate_issued", "certificate_renewed"];
    assert_eq!(
        store.est_audit_count("est:default", &issued, day).await?,
        (3, 2)
    );
    assert_eq!(store.est_audit_count("est:b", &issued, day).await?, (1, 1));
    assert_eq!(
        store
            .est_audit_count("est:default", &["est_enrollment_refused"], day)
            .await?,
        (1, 1)
    );
    assert_eq!(store.est_audit_count("est:c", &issued, day).await?, (0, 0));
    Ok(())
}

#[tokio::test]
async fn est_settings_replace_their_labels_and_counts_come_from_the_database() -> TestResult {
    on_every_backend(est_settings_and_counts).await
}

async fn expiry_pages(store: Store) -> TestResult {
    // Five certificates expiring at the same microsecond, so that pages of two split ties;
    // one an hour later (the window's end, included); one at the window's start (excluded);
    // one a day past the end.
    let t = now();
    let issued: Vec<_> = (0..8)
        .map(|i| {
            let at = match i {
                0..=4 => t,
                5 => t + Duration::hours(1),
                6 => t - Duration::hours(1),
                _ => t + Duration::days(1),
            };
            new_certificate(i, at)
        })
        .collect();
    let rows: Vec<_> = issued.iter().map(|c| (c, t)).collect();
    let mut tx = store.begin_write().await?;
    let ids = tx.insert_certificates(&rows).await?;
    tx.commit().await?;
    let expiry = |c: &certmint_store::NewCertificate| c.cert.not_after;
    let (since, until) = (expiry(&issued[6]), expiry(&issued[5]));
    let mut cursor = None;
    let mut seen = Vec::new();
    loop {
        let page = store
            .expiry_candidates(ExpirySubject::Certificate, since, until, cursor, 2)
            .await?;
        let Some(last) = page.last() else { break };
        cursor = Some((last.not_after, last.id));
        seen.extend(page.iter().map(|c| c.id));
    }
    let expected: Vec<i64> = ids[..6].iter().map(|id| id.0).collect();
    assert_eq!(seen, expected, "each once, by expiry then id");
    Ok(())
}

#[tokio::test]
async fn expiry_candidates_page_through_ties_once_each() -> TestResult {
    on_every_backend(expiry_pages).await
}

// ---------------------------------------------------------------------------------------------
// Snapshots and loads (backups)

/// Every row of every table of `store`, by table, in a comparable order.
async fn everything(
    store: &Store,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, Error> {
    let tables = store.tables().await?;
    let mut rows: std::collections::BTreeMap<String, Vec<String>> = tables
        .iter()
        .map(|t| (t.name.clone(), Vec::new()))
        .collect();
    for (table, read) in tables.iter().zip(read_all(store, &tables).await?) {
        for values in read {
            let line = serde_json::to_string(&values).map_err(|e| Error::Corrupt(e.to_string()))?;
            rows.entry(table.name.clone()).or_default().push(line);
        }
    }
    for lines in rows.values_mut() {
        lines.sort();
    }
    Ok(rows)
}

/// Every row of `tables` in one snapshot, by table.
async fn read_all(
    store: &Store,
    tables: &[certmint_store::Table],
) -> Result<Vec<Vec<Vec<certmint_store::Value>>>, Error> {
    let (send, mut receive) = tokio::sync::mpsc::channel(2);
    // Seven rows at a time, so that tables take several batches.
    let reading = async move { store.snapshot(tables, 7, &send).await };
    let mut read = vec![Vec::new(); tables.len()];
    let collecting = async {
        while let Some((i, rows)) = receive.recv().await {
            read[i].extend(rows);
        }
    };
    let (result, ()) = tokio::join!(reading, collecting);
    result?;
    Ok(read)
}

/// Users, their sessions and keys, certificates with keys, audit records and events.
async fn fill(store: &Store) -> TestResult {
    let t = now();
    let mut tx = store.begin_write().await?;
    let ann = tx.insert_user(&new_user("ann", "admin"), t).await?;
    tx.insert_session(&session(ann, "ann-1", t), t).await?;
    tx.insert_api_key(&api_key(ann, "ann-key"), t).await?;
    let key = certmint_store::NewKey {
        refid: "key-0".into(),
        key_type: "EC P-256".into(),
        backend: "software".into(),
        sealed: Some(vec![0, 159, 255, 7]),
        public_key: vec![0x30, 0x59],
        hsm: None,
    };
    let key_ids = tx.insert_keys(&[(&key, t)]).await?;
    let mut certificates: Vec<_> = (0..40).map(|i| new_certificate(i, t)).collect();
    for c in &mut certificates {
        c.key_id = key_ids.first().copied();
    }
    let rows: Vec<_> = certificates.iter().map(|c| (c, t)).collect();
    tx.insert_certificates(&rows).await?;
    let entries: Vec<AuditEntry> = (0..25).map(|i| entry(&format!("a{i}"), t)).collect();
    tx.audit_many(&entries).await?;
    tx.commit().await?;
    Ok(())
}

/// Snapshots `from` and loads it into `to`: every table holds the same rows after, the audit
/// chain links, and new rows take ids past the loaded ones.
async fn snapshot_into(from: &Store, to: &Store) -> TestResult {
    // The target has rows of its own, which the load replaces.
    let mut tx = to.begin_write().await?;
    tx.insert_user(&new_user("zed", "viewer"), now()).await?;
    tx.commit().await?;
    assert_eq!(from.schema_version().await?, to.schema_version().await?);

    let tables = from.tables().await?;
    assert_eq!(
        tables,
        to.tables().await?,
        "both engines have the same tables and column types"
    );
    let read = read_all(from, &tables).await?;
    let mut load = to.begin_load().await?;
    // By name: a table is loaded before those it references (api_keys before users).
    for (table, rows) in tables.iter().zip(&read) {
        load.rows(&table.name, &table.columns, rows).await?;
    }
    load.commit().await?;

    assert_eq!(everything(from).await?, everything(to).await?);
    assert_linked(&chain(to).await?, GENESIS_HASH);
    assert!(to.user_by_name("zed").await?.is_none(), "replaced");
    let mut tx = to.begin_write().await?;
    let name = format!("new-{}", to_micros(now()));
    let next = tx.insert_user(&new_user(&name, "viewer"), now()).await?;
    tx.commit().await?;
    let ann = to.user_by_name("ann").await?.ok_or("ann was loaded")?;
    assert!(next > ann.id, "ids continue past the loaded ones");
    Ok(())
}

/// A load that does not fit is refused and leaves the target as it was.
async fn refused_loads(store: Store) -> TestResult {
    fill(&store).await?;
    let before = everything(&store).await?;
    let tables = store.tables().await?;
    let users = tables
        .iter()
        .find(|t| t.name == "users")
        .ok_or("users table")?;
    let sessions = tables
        .iter()
        .find(|t| t.name == "sessions")
        .ok_or("sessions table")?;

    // A session of a user the load does not hold.
    let orphan = read_all(&store, std::slice::from_ref(sessions))
        .await?
        .concat();
    let mut load = store.begin_load().await?;
    load.rows("sessions", &sessions.columns, &orphan).await?;
    assert!(matches!(load.commit().await, Err(Error::Invalid(_))));

    // Unknown tables, other columns, and values of the wrong type.
    let mut load = store.begin_load().await?;
    assert!(matches!(
        load.rows("no_such_table", &users.columns, &[]).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        load.rows("users", &users.columns[1..], &[]).await,
        Err(Error::Invalid(_))
    ));
    let wrong: Vec<certmint_store::Value> = users
        .columns
        .iter()
        .map(|_| certmint_store::Value::Text("x".into()))
        .collect();
    assert!(matches!(
        load.rows("users", &users.columns, &[wrong]).await,
        Err(Error::Invalid(_))
    ));
    drop(load);
    assert_eq!(everything(&store).await?, before, "nothing was written");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Database operations

async fn link_walks_and_relinks(store: Store) -> TestResult {
    let t = now();
    let mut tx = store.begin_write().await?;
    let mut cas = Vec::new();
    for i in 0..2 {
        let mut cert = new_certificate(700 + i, t).cert;
        cert.subject_key_id = Some(format!("5k{i}"));
        cas.push(
            tx.insert_ca(
                &certmint_store::NewCa {
                    refid: format!("link-ca-{i}"),
                    name: format!("Link CA {i}"),
                    description: None,
                    ca_type: "root".into(),
                    parent_id: None,
                    key_id: None,
                    path_len: None,
                    is_default: false,
                    source: CaSource::Imported,
                    require_template: false,
                    cert,
                },
                t,
            )
            .await?,
        );
    }
    // Confirmed by key identifiers; linked to a CA of another key identifier; without an
    // authority key identifier; not linked.
    let mut ids = Vec::new();
    for (i, ca, aki) in [
        (1, Some(cas[0]), Some("5k0")),
        (2, Some(cas[1]), Some("5k0")),
        (3, Some(cas[0]), None),
        (4, None, Some("5k0")),
    ] {
        let mut c = new_certificate(i, t);
        c.ca_id = ca;
        c.cert.authority_key_id = aki.map(str::to_owned);
        ids.push(tx.insert_certificate(&c, t).await?);
    }
    tx.commit().await?;

    // Every certificate, a page at a time, in id order.
    let first = store.certificates_after(CertificateId(0), 3).await?;
    let rest = store.certificates_after(first[2].id, 3).await?;
    let walked: Vec<_> = first.iter().chain(&rest).map(|c| c.id).collect();
    assert_eq!(walked, ids);
    // Only the links the key identifiers do not confirm.
    let unconfirmed: Vec<_> = store
        .unconfirmed_links_after(CertificateId(0), 10)
        .await?
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(unconfirmed, ids[1..]);
    assert_eq!(
        store.unconfirmed_links_after(ids[2], 10).await?[0].id,
        ids[3]
    );

    // A relink applies only over the link it was judged on.
    let mut tx = store.begin_write().await?;
    assert!(
        !tx.relink_certificate(ids[1], None, cas[0], t).await?,
        "the link moved on"
    );
    assert!(
        tx.relink_certificate(ids[1], Some(cas[1]), cas[0], t)
            .await?
    );
    assert!(tx.relink_certificate(ids[3], None, cas[0], t).await?);
    assert!(!tx.relink_ca(cas[1], Some(cas[0]), cas[0], t).await?);
    assert!(tx.relink_ca(cas[1], None, cas[0], t).await?);
    tx.commit().await?;
    let unconfirmed = store.unconfirmed_links_after(CertificateId(0), 10).await?;
    assert_eq!(
        unconfirmed.len(),
        1,
        "only the one without a key identifier"
    );
    assert_eq!(
        store.certificate(ids[3]).await?.ok_or("row")?.ca_id,
        Some(cas[0])
    );
    assert_eq!(store.ca(cas[1]).await?.ok_or("ca")?.parent_id, Some(cas[0]));

    let stats = store.database_stats().await?;
    let certificates = stats
        .tables
        .iter()
        .find(|t| t.name == "certificates")
        .ok_or("certificates table")?;
    assert_eq!(certificates.rows, 4);
    assert!(certificates.bytes.is_some_and(|b| b > 0));
    assert!(stats.bytes > 0);
    assert_eq!(
        stats.wal_bytes.is_some(),
        store.backend() == Backend::Sqlite
    );
    let check = store.engine_check(10).await?;
    assert!(check.problems.is_empty(), "{check:?}");
    assert!(!store.optimize(false).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_snapshot_loads_into_either_engine_with_every_row() -> TestResult {
    let dir = tempfile::tempdir()?;
    let sqlite = |name: &str| format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
    let (a, b) = (open(&sqlite("a.db")).await, open(&sqlite("b.db")).await);
    fill(&a).await?;
    snapshot_into(&a, &b).await?;
    if let Some(admin) = postgres_admin_url() {
        let url = certmint_store::testing::fresh_postgres_database(&admin).await?;
        let pg = open(&url).await;
        // SQLite to PostgreSQL, then back into a fresh SQLite file.
        snapshot_into(&b, &pg)
            .await
            .map_err(|e| format!("into PostgreSQL: {e}"))?;
        let c = open(&sqlite("c.db")).await;
        let mut tx = pg.begin_write().await?;
        tx.audit(&entry("on PostgreSQL", now())).await?;
        tx.commit().await?;
        snapshot_into(&pg, &c)
            .await
            .map_err(|e| format!("from PostgreSQL: {e}"))?;

        // Every reference may be checked at commit, so loads need no order.
        let deferrable = "SELECT 1 FROM pg_constraint WHERE contype = 'f' \
                          AND connamespace = current_schema()::regnamespace";
        assert!(
            pg.execute_raw(&format!("{deferrable} AND condeferrable"))
                .await?
                > 0
        );
        assert_eq!(
            pg.execute_raw(&format!("{deferrable} AND NOT condeferrable"))
                .await?,
            0,
            "a foreign key that is not DEFERRABLE"
        );
        pg.close().await;
        drop_database(&admin, &url).await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sealed blobs, for the master-key rotation

async fn sealed_blobs(store: Store) -> TestResult {
    use certmint_store::{NewKey, SealedColumn, SealedCount};
    let now = OffsetDateTime::UNIX_EPOCH;
    let v1 = |n: u8| [&[1u8][..], &[n; 20]].concat();
    let mut tx = store.begin_write().await?;
    for n in 0..3 {
        tx.insert_key(
            &NewKey {
                refid: format!("k{n}"),
                key_type: "EC P-256".into(),
                backend: "software".into(),
                sealed: Some(v1(n)),
                public_key: vec![n],
                hsm: None,
            },
            now,
        )
        .await?;
    }
    tx.commit().await?;
    let counts = store.sealed_counts(SealedColumn::Keys, 2, 5).await?;
    let old = SealedCount {
        kind: "other_key".into(),
        header: vec![1],
        count: 3,
    };
    assert_eq!(counts, [old], "unversioned blobs count by their first byte");
    let v2 = [2u8, 0, 0, 0, 2];
    assert_eq!(store.sealed_outside(SealedColumn::Keys, &v2).await?, 3);
    let batch = store.sealed_batch(SealedColumn::Keys, &v2, 0, 2).await?;
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0].binding.as_deref(), Some("k0"));
    let mut tx = store.begin_write().await?;
    let new = [&v2[..], b"fresh blob"].concat();
    assert!(
        tx.reseal(SealedColumn::Keys, batch[0].id, &batch[0].sealed, &new)
            .await?
    );
    assert!(
        !tx.reseal(SealedColumn::Keys, batch[1].id, b"stale", &new)
            .await?,
        "a blob changed since it was read is left alone"
    );
    tx.commit().await?;
    let rest = store
        .sealed_batch(SealedColumn::Keys, &v2, batch[0].id, 10)
        .await?;
    assert_eq!(rest.len(), 2);
    assert_eq!(store.sealed_outside(SealedColumn::Keys, &v2).await?, 2);
    let mut counts = store.sealed_counts(SealedColumn::Keys, 2, 5).await?;
    counts.sort_by(|a, b| a.header.cmp(&b.header));
    let counts: Vec<_> = counts.into_iter().map(|c| (c.header, c.count)).collect();
    assert_eq!(counts, [(vec![1], 2), (v2.to_vec(), 1)]);
    for column in SealedColumn::ALL {
        store.sealed_counts(column, 2, 5).await?;
        store.sealed_batch(column, &v2, 0, 1).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_load_that_does_not_fit_writes_nothing() -> TestResult {
    on_every_backend(refused_loads).await
}

#[tokio::test]
async fn certificates_are_walked_by_page_and_relinked_only_over_the_link_judged() -> TestResult {
    on_every_backend(link_walks_and_relinks).await
}

#[tokio::test]
async fn sealed_blobs_are_counted_by_header_and_resealed_by_compare_and_swap() -> TestResult {
    on_every_backend(sealed_blobs).await
}

// ---------------------------------------------------------------------------------------------
// Substring search

/// What the search finds, found by reading every row: `text` (control characters dropped,
/// trimmed), or its hex digits when it is hex written with colons or spaces (8 digits or more:
/// a serial or fingerprint as people copy them), in any case in the common name, a SAN, the
/// serial or the subject, or at the start of the fingerprint.
fn found_by_scan(rows: &[certmint_store::NewCertificate], text: &str) -> Vec<String> {
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    let text = text.trim().to_lowercase();
    let serial: String = text
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let serial =
        (serial.len() >= 8 && serial.chars().all(|c| c.is_ascii_hexdigit())).then_some(serial);
    let mut found: Vec<String> = rows
        .iter()
        .filter(|c| {
            let fields = [
                c.cert.common_name.clone().unwrap_or_default(),
                c.sans.join(" "),
                c.cert.serial.clone(),
                c.cert.subject.clone(),
            ];
            let fingerprint = c.cert.fingerprint_sha256.to_lowercase();
            let held = |t: &str| {
                fields.iter().any(|f| f.to_lowercase().contains(t)) || fingerprint.starts_with(t)
            };
            held(&text) || serial.as_deref().is_some_and(held)
        })
        .map(|c| c.refid.clone())
        .collect();
    found.sort();
    found
}

/// The first page of `per_page` certificates holding `text`.
async fn searched(
    store: &Store,
    text: &str,
    per_page: u32,
) -> Result<certmint_store::Page<certmint_store::CertificateRow>, Error> {
    let filter = certmint_store::CertificateFilter {
        search: Some(text.to_owned()),
        ..Default::default()
    };
    store
        .certificates(
            &filter,
            now(),
            PageRequest {
                page: 1,
                per_page,
                after: None,
            },
        )
        .await
}

async fn search(store: Store) -> TestResult {
    let t = now();
    let mut rows: Vec<certmint_store::NewCertificate> =
        (0..400).map(|i| new_certificate(i, t)).collect();
    for (i, c) in rows.iter_mut().enumerate() {
        c.cert.serial = format!("{:040x}", (i as u128 + 1) * 0x9e37_79b9_7f4a_7c15);
        c.cert.fingerprint_sha256 = (0..4u64)
            .map(|k| {
                format!(
                    "{:016x}",
                    (i as u64 * 4 + k + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                )
            })
            .collect();
        if i % 7 == 0 {
            c.cert.subject = format!("CN=host{i}.example.test,O=Acme Widgets \"Ltd\",C=DE");
            c.sans.push(format!("ip:10.0.{}.{}", i / 256, i % 256));
        }
        if i % 11 == 0 {
            c.cert.common_name = None;
            c.cert.subject = format!("O=Ünïcode Örg 100%_off {i}");
        }
        // A common name that neither the subject as written nor a SAN holds.
        if i % 13 == 0 {
            c.cert.common_name = Some(format!("Solo, Ltd {i}"));
            c.cert.subject = format!("CN=Solo\\, Ltd {i},O=Solo");
        }
    }
    let mut tx = store.begin_write().await?;
    let pairs: Vec<_> = rows.iter().map(|c| (c, t)).collect();
    let ids = tx.insert_certificates(&pairs).await?;
    tx.commit().await?;

    let serial = rows[42].cert.serial.clone();
    let colons: Vec<String> = serial.as_bytes()[8..24]
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).to_uppercase())
        .collect();
    let texts = [
        "host12".to_owned(),
        "HOST3".to_owned(),
        ".example.test".to_owned(),
        "host399.example.test".to_owned(),
        "10.0.1.".to_owned(),
        "acme widgets \"ltd\"".to_owned(),
        "100%_off".to_owned(),
        "%_".to_owned(),
        "ÜNÏCODE".to_owned(),
        serial[10..30].to_owned(),
        colons.join(":"),
        colons.join(" "),
        rows[5].cert.fingerprint_sha256[..20].to_owned(),
        rows[6].cert.fingerprint_sha256.to_uppercase(),
        rows[7].cert.fingerprint_sha256[..6].to_owned(),
        // The middle of a fingerprint is not searched.
        rows[8].cert.fingerprint_sha256[20..40].to_owned(),
        "solo, ltd 39".to_owned(),
        "ÖRG 100".to_owned(),
        "h".to_owned(),
        "42".to_owned(),
        "host\u{1f}12".to_owned(),
        "nowhere".to_owned(),
        "\"".to_owned(),
        "a\" OR \"b".to_owned(),
        "NEAR(x y)".to_owned(),
    ];
    let by_id: std::collections::HashMap<i64, String> = ids
        .iter()
        .zip(&rows)
        .map(|(id, c)| (id.0, c.refid.clone()))
        .collect();
    for text in &texts {
        let expected = found_by_scan(&rows, text);
        let page = searched(&store, text, 1000).await?;
        let mut found: Vec<String> = page.items.iter().map(|c| c.refid.clone()).collect();
        found.sort();
        assert_eq!(found, expected, "search {text:?}");
        assert_eq!(page.total, expected.len() as i64, "count of {text:?}");
        let mut quick: Vec<String> = store
            .search_certificates(text, 1000)
            .await?
            .iter()
            .filter_map(|c| by_id.get(&c.id.0).cloned())
            .collect();
        quick.sort();
        assert_eq!(quick, expected, "global search {text:?}");
    }
    // Not a needle at all: every certificate.
    let all = searched(&store, " \u{7} ", 1).await?;
    assert_eq!(all.total, 400);
    assert!(found_by_scan(&rows, "host12").len() > 1);
    assert_eq!(found_by_scan(&rows, "solo, ltd 39").len(), 2);
    assert_eq!(
        found_by_scan(&rows, &rows[6].cert.fingerprint_sha256).len(),
        1
    );
    assert!(found_by_scan(&rows, &rows[8].cert.fingerprint_sha256[20..40]).is_empty());

    // The index follows the rows: a deleted certificate is no longer found.
    let mut tx = store.begin_write().await?;
    assert!(tx.delete_certificate(ids[399]).await?);
    tx.commit().await?;
    let gone = searched(&store, "host399.example", 10).await?;
    assert_eq!(gone.total, 0);
    Ok(())
}

#[tokio::test]
async fn search_finds_what_reading_every_row_finds() -> TestResult {
    on_every_backend(search).await
}

// ---------------------------------------------------------------------------------------------
// The certificate list's filters and orders

/// Where a stored certificate falls in an order, as a sort in Rust places it.
type SortKey = fn(&Stored) -> (i64, i64);

/// A stored certificate as a brute-force filter sees it.
struct Stored {
    id: CertificateId,
    row: certmint_store::NewCertificate,
    revoked: bool,
    renewed: bool,
    team: Option<i64>,
    tags: Vec<String>,
}

/// Whether `s` passes every condition of `f` at `t`, decided in Rust on the row.
fn passes(f: &certmint_store::CertificateFilter, s: &Stored, t: OffsetDateTime) -> bool {
    use certmint_store::CertificateState as State;
    let c = &s.row;
    let after = c.cert.not_after;
    let state = match f.state {
        None => true,
        Some(State::Active) => !s.revoked && after > t,
        Some(State::Expired) => !s.revoked && after <= t,
        Some(State::Revoked) => s.revoked,
        Some(State::ExpiringBefore(until)) => !s.revoked && after > t && after <= until,
    };
    let within = |w: certmint_store::TimeWindow, at: OffsetDateTime| {
        w.from.is_none_or(|from| at >= from) && w.until.is_none_or(|until| at < until)
    };
    state
        && f.ca_id.is_none_or(|ca| c.ca_id == Some(ca))
        && f.template_id.is_none_or(|id| c.template_id == Some(id))
        && f.source.is_none_or(|source| c.source == source)
        && f.key_type.as_ref().is_none_or(|k| &c.cert.key_type == k)
        && f.signature_algorithm
            .as_ref()
            .is_none_or(|a| &c.cert.signature_algorithm == a)
        && f.issuer.as_ref().is_none_or(|i| &c.cert.issuer == i)
        && f.owner_id.is_none_or(|o| c.owner_id == Some(o))
        && f.team_id.is_none_or(|team| s.team == Some(team))
        && f.tag.as_ref().is_none_or(|tag| s.tags.contains(tag))
        && f.san_kind.is_none_or(|k| {
            c.sans
                .iter()
                .any(|san| san.starts_with(&format!("{}:", k.as_str())))
        })
        && within(f.valid_from, c.cert.not_before)
        && within(f.valid_until, after)
        && f.renewed.is_none_or(|r| s.renewed == r)
        && f.has_key.is_none_or(|h| c.key_id.is_some() == h)
        && f.search
            .as_ref()
            .is_none_or(|text| !found_by_scan(std::slice::from_ref(c), text).is_empty())
}

async fn filters(store: Store) -> TestResult {
    use certmint_store::{CertificateFilter, CertificateOrder, SanKind, TimeWindow};
    const ROWS: usize = 300;
    let t = now();
    let mut tx = store.begin_write().await?;
    let template = tx
        .insert_template(
            &certmint_store::NewTemplate {
                name: "servers".into(),
                description: None,
                builtin: false,
                body: "{}".into(),
            },
            t,
        )
        .await?;
    let ann = tx.insert_user(&new_user("ann", "operator"), t).await?;
    let ben = tx.insert_user(&new_user("ben", "operator"), t).await?;
    let key = tx
        .insert_key(
            &certmint_store::NewKey {
                refid: "key-held".into(),
                key_type: "EC P-256".into(),
                backend: "software".into(),
                sealed: Some(vec![1; 8]),
                public_key: vec![0x30, 1],
                hsm: None,
            },
            t,
        )
        .await?;
    let key_types = ["EC P-256", "RSA 2048", "Ed25519"];
    let signatures = ["ecdsa-with-SHA256", "sha256WithRSAEncryption"];
    let rows: Vec<certmint_store::NewCertificate> = (0..ROWS)
        .map(|i| {
            let mut c = new_certificate(i, t);
            c.template_id = (i % 5 == 0).then_some(template);
            c.owner_id = [Some(ann), Some(ben), None, None][i % 4];
            c.source = CertificateSource::ALL[i % CertificateSource::ALL.len()];
            c.key_id = (i % 8 == 0).then_some(key);
            c.cert.key_type = key_types[i % 3].into();
            c.cert.signature_algorithm = signatures[i % 2].into();
            c.cert.issuer = if i % 5 < 2 {
                "CN=Other CA, O=Ü"
            } else {
                "CN=Test CA"
            }
            .into();
            c.cert.not_before = t - Duration::hours(i as i64);
            c.cert.not_after = t + Duration::days((i % 40) as i64 - 10);
            if i % 17 == 5 {
                c.sans.clear();
            }
            if i % 6 == 0 {
                c.sans.push(format!("ip:10.0.0.{}", i % 250));
            }
            if i % 9 == 0 {
                c.sans.push(format!("email:user{i}@example.test"));
            }
            if i % 10 == 0 {
                c.sans
                    .push(format!("uri:https://host{i}.example.test/ip:{i}"));
            }
            // A subject that holds "ip:" and "email:" as text, without such SANs.
            if i % 23 == 1 {
                c.cert.subject = format!("CN=ship:yard {i},OU=email: none");
            }
            c
        })
        .collect();
    // The second half renews some of the first.
    let half = ROWS / 2;
    let first: Vec<_> = rows[..half].iter().map(|c| (c, t)).collect();
    let mut ids = tx.insert_certificates(&first).await?;
    let mut rows = rows;
    for i in half..ROWS {
        if i % 10 == 3 {
            rows[i].renewed_from = Some(ids[i - half]);
        }
    }
    let second: Vec<_> = rows[half..].iter().map(|c| (c, t)).collect();
    ids.extend(tx.insert_certificates(&second).await?);
    let mut stored: Vec<Stored> = ids
        .iter()
        .zip(rows)
        .map(|(id, row)| Stored {
            id: *id,
            row,
            revoked: false,
            renewed: false,
            team: None,
            tags: Vec::new(),
        })
        .collect();
    let team = tx
        .insert_group(
            &certmint_store::GroupFields {
                name: "web".into(),
                description: None,
                role: None,
                permissions: Vec::new(),
            },
            t,
        )
        .await?;
    let renewed: Vec<CertificateId> = stored.iter().filter_map(|s| s.row.renewed_from).collect();
    for (i, s) in stored.iter_mut().enumerate() {
        s.renewed = renewed.contains(&s.id);
        // Records set after issuance: a team, tags (added, replaced, taken away) and an owner
        // reassigned or cleared.
        let mut change = certmint_store::CertificateChange {
            team_id: (i % 3 == 0).then_some(Some(team)),
            add_tags: [(i % 4 == 0, "prod"), (i % 6 == 0, "web")]
                .into_iter()
                .filter(|(yes, _)| *yes)
                .map(|(_, tag)| tag.to_owned())
                .collect(),
            ..Default::default()
        };
        if i % 7 == 0 {
            change.owner_id = Some(Some(ben));
            s.row.owner_id = Some(ben);
        } else if i % 7 == 1 {
            change.owner_id = Some(None);
            s.row.owner_id = None;
        }
        if change != certmint_store::CertificateChange::default() {
            assert!(tx.change_certificate(s.id, &change, t).await?);
        }
        if i % 12 == 0 {
            let replace = certmint_store::CertificateChange {
                tags: Some(vec!["web".into(), "legacy".into()]),
                remove_tags: vec!["ignored-when-replacing".into()],
                ..Default::default()
            };
            assert!(tx.change_certificate(s.id, &replace, t).await?);
        } else if i % 8 == 0 {
            let remove = certmint_store::CertificateChange {
                remove_tags: vec!["prod".into()],
                ..Default::default()
            };
            assert!(tx.change_certificate(s.id, &remove, t).await?);
        }
        s.team = change.team_id.flatten();
        s.tags = if i % 12 == 0 {
            vec!["legacy".into(), "web".into()]
        } else {
            let mut tags = change.add_tags.clone();
            tags.retain(|tag| !(i % 8 == 0 && tag == "prod"));
            tags
        };
        if i % 11 == 0 {
            let revocation = certmint_store::Revocation {
                at: t,
                reason: "keyCompromise",
                comment: None,
                invalidity_date: None,
            };
            assert!(
                tx.set_revocation(s.id, (CertificateStatus::Valid, None), Some(&revocation), t)
                    .await?
            );
            s.revoked = true;
        }
    }
    tx.commit().await?;

    let window = TimeWindow {
        from: Some(t - Duration::hours(100)),
        until: Some(t - Duration::hours(40)),
    };
    let expiring = TimeWindow {
        from: Some(t),
        until: Some(t + Duration::days(7)),
    };
    let one = |f: fn(&mut CertificateFilter)| {
        let mut filter = CertificateFilter::default();
        f(&mut filter);
        filter
    };
    let filters = [
        one(|_| {}),
        one(|f| f.template_id = Some(certmint_store::TemplateId(1))),
        one(|f| f.source = Some(CertificateSource::Est)),
        one(|f| f.source = Some(CertificateSource::Api)),
        one(|f| f.key_type = Some("RSA 2048".into())),
        one(|f| f.key_type = Some("RSA 4096".into())),
        one(|f| f.signature_algorithm = Some("ecdsa-with-SHA256".into())),
        one(|f| f.issuer = Some("CN=Other CA, O=Ü".into())),
        one(|f| f.san_kind = Some(SanKind::Ip)),
        one(|f| f.san_kind = Some(SanKind::Email)),
        one(|f| f.san_kind = Some(SanKind::Uri)),
        one(|f| f.san_kind = Some(SanKind::Dns)),
        one(|f| f.renewed = Some(true)),
        one(|f| f.renewed = Some(false)),
        one(|f| f.has_key = Some(true)),
        one(|f| f.has_key = Some(false)),
        one(|f| f.tag = Some("prod".into())),
        one(|f| f.tag = Some("legacy".into())),
    ];
    let mut filters = filters.to_vec();
    let template_id = template;
    filters.extend([
        CertificateFilter {
            template_id: Some(template_id),
            ..Default::default()
        },
        CertificateFilter {
            owner_id: Some(ann),
            ..Default::default()
        },
        CertificateFilter {
            owner_id: Some(ben),
            key_type: Some("Ed25519".into()),
            ..Default::default()
        },
        CertificateFilter {
            team_id: Some(team),
            ..Default::default()
        },
        CertificateFilter {
            team_id: Some(team),
            tag: Some("web".into()),
            state: Some(certmint_store::CertificateState::Active),
            ..Default::default()
        },
        CertificateFilter {
            valid_from: window,
            ..Default::default()
        },
        CertificateFilter {
            valid_until: expiring,
            ..Default::default()
        },
        CertificateFilter {
            valid_until: TimeWindow {
                from: None,
                until: Some(t),
            },
            renewed: Some(false),
            ..Default::default()
        },
        CertificateFilter {
            state: Some(certmint_store::CertificateState::ExpiringBefore(
                t + Duration::days(14),
            )),
            renewed: Some(false),
            has_key: Some(false),
            ..Default::default()
        },
        CertificateFilter {
            state: Some(certmint_store::CertificateState::Revoked),
            san_kind: Some(SanKind::Ip),
            source: Some(CertificateSource::Api),
            ..Default::default()
        },
        CertificateFilter {
            search: Some("HOST4".into()),
            issuer: Some("CN=Test CA".into()),
            valid_from: window,
            ..Default::default()
        },
    ]);
    for filter in &filters {
        let mut expected: Vec<i64> = stored
            .iter()
            .filter(|s| passes(filter, s, t))
            .map(|s| s.id.0)
            .collect();
        expected.reverse();
        let listed = store.certificates(filter, t, page(1, 1000)).await?;
        let found: Vec<i64> = listed.items.iter().map(|c| c.id.0).collect();
        assert_eq!(found, expected, "{filter:?}");
        assert_eq!(listed.total, expected.len() as i64, "count of {filter:?}");
        // Each row reads back the records set on it, its tags sorted.
        for c in &listed.items {
            let s = stored
                .iter()
                .find(|s| s.id == c.id)
                .ok_or("a row not stored")?;
            let mut tags = s.tags.clone();
            tags.sort();
            assert_eq!(
                (c.owner_id, c.team_id, &c.tags),
                (s.row.owner_id, s.team, &tags)
            );
        }
        // A list of few matches finds their ids first; a walk, without the count, reads in
        // order and checks each row: both give the same.
        let walked: Vec<i64> = store
            .certificate_rows(filter, t, page(1, 1000))
            .await?
            .iter()
            .map(|c| c.id.0)
            .collect();
        assert_eq!(walked, expected, "walking {filter:?}");
    }
    // Every filter above narrows and none is empty but the RSA 4096 one: they test something.
    let sizes: Vec<usize> = filters
        .iter()
        .map(|f| stored.iter().filter(|s| passes(f, s, t)).count())
        .collect();
    assert_eq!(sizes.iter().filter(|n| **n == 0).count(), 1, "{sizes:?}");
    assert!(sizes[1..].iter().all(|n| *n < ROWS), "{sizes:?}");

    // Each order, on its own and filtered, ties broken by id, on two pages as on one.
    let orders: [(CertificateOrder, SortKey); 6] = [
        (CertificateOrder::Newest, |s| (-s.id.0, 0)),
        (CertificateOrder::Oldest, |s| (s.id.0, 0)),
        (CertificateOrder::ExpiresFirst, |s| {
            (to_micros(s.row.cert.not_after), s.id.0)
        }),
        (CertificateOrder::ExpiresLast, |s| {
            (-to_micros(s.row.cert.not_after), -s.id.0)
        }),
        (CertificateOrder::ValidFromFirst, |s| {
            (to_micros(s.row.cert.not_before), s.id.0)
        }),
        (CertificateOrder::ValidFromLast, |s| {
            (-to_micros(s.row.cert.not_before), -s.id.0)
        }),
    ];
    for (order, key) in orders {
        for filter in [
            CertificateFilter::default(),
            CertificateFilter {
                key_type: Some("EC P-256".into()),
                valid_until: expiring,
                ..Default::default()
            },
        ] {
            let filter = CertificateFilter { order, ..filter };
            let mut expected: Vec<&Stored> =
                stored.iter().filter(|s| passes(&filter, s, t)).collect();
            expected.sort_by_key(|s| key(s));
            let expected: Vec<i64> = expected.iter().map(|s| s.id.0).collect();
            let mut found = Vec::new();
            let mut walked = Vec::new();
            for n in 1..=2 {
                let half_page = u32::try_from(expected.len().div_ceil(2).max(1))?;
                let p = store.certificates(&filter, t, page(n, half_page)).await?;
                found.extend(p.items.iter().map(|c| c.id.0));
                let rows = store
                    .certificate_rows(&filter, t, page(n, half_page))
                    .await?;
                walked.extend(rows.iter().map(|c| c.id.0));
            }
            assert_eq!(found, expected, "{filter:?}");
            assert_eq!(walked, expected, "walking {filter:?}");
        }
        // Only an id order takes a cursor.
        let by_cursor = store
            .certificates(
                &CertificateFilter {
                    order,
                    ..Default::default()
                },
                t,
                PageRequest {
                    after: Some(ids[100].0),
                    ..page(1, 10)
                },
            )
            .await;
        assert_eq!(by_cursor.is_ok(), order.by_id(), "{order:?}: {by_cursor:?}");
    }
    Ok(())
}

#[tokio::test]
async fn filters_find_what_reading_every_row_finds() -> TestResult {
    on_every_backend(filters).await
}

// ---------------------------------------------------------------------------------------------
// Keyset pages

async fn keyset_pages(store: Store) -> TestResult {
    let t = now();
    let rows: Vec<_> = (0..25).map(|i| new_certificate(i, t)).collect();
    let mut tx = store.begin_write().await?;
    let pairs: Vec<_> = rows.iter().map(|c| (c, t)).collect();
    tx.insert_certificates(&pairs).await?;
    tx.commit().await?;
    let filter = certmint_store::CertificateFilter::default();

    // Walking after the last row of each page gives what the numbered pages give.
    let mut numbered = Vec::new();
    for n in 1..=3 {
        let p = store.certificates(&filter, t, page(n, 10)).await?;
        assert_eq!(p.total, 25);
        numbered.extend(p.items.iter().map(|c| c.id.0));
    }
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let request = PageRequest {
            after,
            ..page(1, 10)
        };
        let p = store.certificates(&filter, t, request).await?;
        assert_eq!(p.total, 25, "the count is of the whole list");
        let Some(last) = p.items.last() else { break };
        after = Some(last.id.0);
        walked.extend(p.items.iter().map(|c| c.id.0));
    }
    assert_eq!(walked, numbered);
    assert_eq!(walked.len(), 25);
    assert!(walked.windows(2).all(|w| w[0] > w[1]), "newest first");

    // A list in another order takes no cursor.
    let refused = store
        .groups(
            None,
            PageRequest {
                after: Some(1),
                ..page(1, 10)
            },
        )
        .await;
    assert!(
        matches!(&refused, Err(Error::Invalid(m)) if m.contains("no cursor")),
        "{refused:?}"
    );
    Ok(())
}

#[tokio::test]
async fn keyset_pages_walk_the_list_numbered_pages_walk() -> TestResult {
    on_every_backend(keyset_pages).await
}

// ---------------------------------------------------------------------------------------------
// Certificate records: owner, team, tags, locations

async fn certificate_records(store: Store) -> TestResult {
    use certmint_store::{CertificateChange, LocationFields};
    let t = now();
    let mut tx = store.begin_write().await?;
    let ids = tx
        .insert_certificates(&[(&new_certificate(1, t), t), (&new_certificate(2, t), t)])
        .await?;
    tx.commit().await?;
    let (one, two) = (ids[0], ids[1]);
    let mut tx = store.begin_write().await?;
    let missing = CertificateId(two.0 + 100);
    let tagged = CertificateChange {
        tags: Some(vec!["b".into(), "a".into()]),
        description: Some(Some("front end".into())),
        ..Default::default()
    };
    assert!(tx.change_certificate(one, &tagged, t).await?);
    assert!(
        !tx.change_certificate(missing, &tagged, t).await?,
        "no such certificate"
    );
    assert_eq!(tx.count_certificate_tags(one).await?, 2);
    // A team that does not exist is refused as the caller's mistake, and nothing is written.
    let no_team = CertificateChange {
        team_id: Some(Some(999_999)),
        ..Default::default()
    };
    assert!(matches!(
        tx.change_certificate(two, &no_team, t).await,
        Err(Error::Invalid(_))
    ));
    drop(tx);

    // Nor is a location of a certificate that does not exist.
    let mut tx = store.begin_write().await?;
    let at = |host: &str, port| LocationFields {
        host: host.into(),
        port,
        path: Some("/etc/ssl/web.pem".into()),
        note: None,
    };
    assert!(matches!(
        tx.insert_certificate_location(missing, &at("web3", None), t)
            .await,
        Err(Error::Invalid(_))
    ));
    drop(tx);
    let mut tx = store.begin_write().await?;
    assert!(tx.change_certificate(one, &tagged, t).await?);
    let first = tx
        .insert_certificate_location(one, &at("web1", Some(443)), t)
        .await?;
    tx.insert_certificate_location(one, &at("web2", None), t)
        .await?;
    // Another certificate's location is not this one's to change or delete.
    assert_eq!(
        tx.update_certificate_location(two, first, &at("elsewhere", None), t)
            .await?,
        None
    );
    assert_eq!(tx.delete_certificate_location(two, first).await?, None);
    let moved = tx
        .update_certificate_location(one, first, &at("web1.example.test", Some(8443)), t)
        .await?
        .ok_or("the location was not found")?;
    assert_eq!(
        (moved.host.as_str(), moved.port),
        ("web1.example.test", Some(8443))
    );
    assert_eq!(tx.count_certificate_locations(one).await?, 2);
    tx.commit().await?;

    let read = store.certificate(one).await?.ok_or("certificate one")?;
    assert_eq!(read.tags, ["a", "b"]);
    assert_eq!(read.description.as_deref(), Some("front end"));
    let hosts: Vec<String> = store
        .certificate_locations(one)
        .await?
        .into_iter()
        .map(|l| l.host)
        .collect();
    assert_eq!(hosts, ["web1.example.test", "web2"]);
    assert!(store.certificate_locations(two).await?.is_empty());

    // Deleting the certificate takes its tags and locations with it.
    let mut tx = store.begin_write().await?;
    assert!(tx.delete_certificate(one).await?);
    assert_eq!(tx.count_certificate_tags(one).await?, 0);
    assert_eq!(tx.count_certificate_locations(one).await?, 0);
    tx.commit().await?;
    Ok(())
}

#[tokio::test]
async fn certificate_records_change_without_touching_others() -> TestResult {
    on_every_backend(certificate_records).await
}

async fn saved_views(store: Store) -> TestResult {
    let t = now();
    let mut tx = store.begin_write().await?;
    let ann = tx.insert_user(&new_user("ann", "operator"), t).await?;
    let ben = tx.insert_user(&new_user("ben", "viewer"), t).await?;
    let soon = tx
        .insert_saved_view(ann, "expiring", "status=expiring", t)
        .await?;
    tx.insert_saved_view(ann, "another", "tag=prod", t).await?;
    tx.insert_saved_view(ben, "expiring", "status=expiring&days=7", t)
        .await?;
    assert_eq!(tx.count_saved_views(ann).await?, 2);
    tx.commit().await?;
    // A name is one user's once; another user may use it.
    let mut tx = store.begin_write().await?;
    assert!(matches!(
        tx.insert_saved_view(ann, "expiring", "status=revoked", t)
            .await,
        Err(Error::Conflict(_))
    ));
    drop(tx);
    let names: Vec<String> = store
        .saved_views(ann)
        .await?
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["another", "expiring"], "by name");
    // One user cannot delete another's view; deleting a user deletes theirs.
    let mut tx = store.begin_write().await?;
    assert!(!tx.delete_saved_view(ben, soon).await?);
    assert!(tx.delete_saved_view(ann, soon).await?);
    tx.delete_user(ben).await?;
    tx.commit().await?;
    assert_eq!(store.saved_views(ann).await?.len(), 1);
    assert!(store.saved_views(ben).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn saved_views_belong_to_their_user() -> TestResult {
    on_every_backend(saved_views).await
}

// ---------------------------------------------------------------------------------------------
// Outbox retention

async fn outbox_pruning(store: Store) -> TestResult {
    let t = now();
    let event = |i: usize| certmint_store::NewEvent {
        event_type: "certificate_issued".into(),
        resource_type: "certificate".into(),
        resource_id: format!("cert-{i}"),
        payload: serde_json::json!({"i": i}),
    };
    let events: Vec<_> = (0..10).map(event).collect();
    let mut tx = store.begin_write().await?;
    tx.queue_events(&events.iter().map(|e| (e, t)).collect::<Vec<_>>())
        .await?;
    tx.commit().await?;
    let ids: Vec<i64> = store
        .undelivered_events(100)
        .await?
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids.len(), 10);
    // The first eight fanned out a day ago; the last two not yet.
    let mut tx = store.begin_write().await?;
    tx.mark_events_delivered(ids[7], t - Duration::days(1))
        .await?;
    tx.commit().await?;

    // Only what was fanned out before the cutoff, at most `limit` at a time, oldest first.
    let mut tx = store.begin_write().await?;
    assert_eq!(tx.prune_events(t - Duration::days(2), 100).await?, 0);
    assert_eq!(tx.prune_events(t, 3).await?, 3);
    assert_eq!(tx.prune_events(t, 100).await?, 5);
    tx.commit().await?;
    let left: Vec<i64> = store
        .undelivered_events(100)
        .await?
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, ids[8..].to_vec(), "events not fanned out stay");

    // Once all are fanned out, the newest stays, and the next event's id comes after it.
    let mut tx = store.begin_write().await?;
    tx.mark_events_delivered(ids[9], t - Duration::days(1))
        .await?;
    assert_eq!(tx.prune_events(t, 100).await?, 1);
    assert_eq!(tx.prune_events(t, 100).await?, 0);
    tx.queue_event(&event(10), t).await?;
    tx.commit().await?;
    let next = store.undelivered_events(100).await?;
    assert_eq!(next.len(), 1);
    assert!(next[0].id > ids[9], "{} after {}", next[0].id, ids[9]);
    Ok(())
}

#[tokio::test]
async fn fanned_out_events_leave_the_outbox_but_ids_never_repeat() -> TestResult {
    on_every_backend(outbox_pruning).await
}
