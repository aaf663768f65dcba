//! Backups: written from a running authority, refused when damaged, altered, cut short, opened
//! with the wrong passphrase or of a later schema, and restored into another database (the
//! other engine when CERTMINT_TEST_DATABASE_URL is set) with every row, a verifying audit
//! chain and CA keys that still sign.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use certmint_authority::backup::{BackupContents, SecretString, open_backup, restore_database};
use certmint_authority::pki::{DistinguishedName, NameAttribute, SubjectAltName};
use certmint_authority::{
    Authority, Error, IssueRequest, KeySource, MasterKey, Policy, Principal, SystemClock, Vault,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PASSPHRASE: &str = "correct horse battery staple";

fn postgres() -> Option<String> {
    std::env::var("CERTMINT_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

async fn open_store(url: &str) -> store::Store {
    let store = store::Store::connect(url, 4).await.expect("database");
    store.migrate().await.expect("migrations");
    store
}

fn authority(store: &store::Store, key: &MasterKey) -> Authority {
    Authority::new(
        store.clone(),
        Vault::new(key).expect("vault"),
        Arc::new(SystemClock),
        Policy::default(),
        certmint_authority::Publishing::default(),
    )
}

fn request(cn: &str) -> IssueRequest {
    let mut subject = DistinguishedName::new();
    subject.set(NameAttribute::CommonName, cn).expect("cn");
    IssueRequest {
        ca_id: None,
        subject,
        sans: vec![SubjectAltName::parse(&format!("dns:{cn}")).expect("san")],
        key: KeySource::Generate(None),
        template_id: None,
        validity_days: Some(90),
        key_usage: None,
        extended_key_usage: None,
        description: None,
        source: certmint_authority::CertificateSource::Api,
        renewed_from: None,
    }
}

fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

/// A backup of `authority` written to `path`.
async fn back_up(authority: &Authority, path: &Path) -> certmint_authority::backup::Manifest {
    let file = std::fs::File::create(path).expect("backup file");
    authority
        .write_backup(
            file,
            secret(PASSPHRASE),
            BackupContents {
                files: vec![("certmint.toml".into(), b"[acme]\n".to_vec())],
                master_key: None,
            },
        )
        .await
        .expect("backup")
}

async fn refused(path: &Path, passphrase: &str) -> String {
    let file = std::fs::File::open(path).expect("backup file");
    match open_backup(file, secret(passphrase)).await {
        Err(Error::Invalid(why)) => why,
        Err(e) => panic!("refused with the wrong kind of error: {e}"),
        Ok(_) => panic!("opened"),
    }
}

#[tokio::test]
async fn a_backup_restores_everything_into_another_database() -> TestResult {
    let dir = tempfile::tempdir()?;
    let sqlite = |name: &str| format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
    let key = MasterKey::generate()?;
    let source = open_store(&sqlite("source.db")).await;
    let before = authority(&source, &key);
    before.ensure_default_hierarchy().await?;
    let admin = Principal::local("admin-test");
    let mut issued = Vec::new();
    for i in 0..5 {
        issued.push(
            before
                .issue(&admin, request(&format!("host{i}.example.test")))
                .await?
                .certificate,
        );
    }
    let path = dir.path().join("one.cmbackup");
    let manifest = back_up(&before, &path).await;
    assert_eq!(manifest.schema_version, source.schema_version().await?);
    assert!(!manifest.master_key_included);
    let count = |name: &str| {
        manifest
            .tables
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.rows)
    };
    assert_eq!(count("cas"), Some(2));
    assert_eq!(count("certificates"), Some(5));
    // Certificates are written after the backup: they are not in it.
    before.issue(&admin, request("later.example.test")).await?;

    // Into the other engine where there is one.
    let target_url = match postgres() {
        Some(admin) => store::testing::fresh_postgres_database(&admin).await?,
        None => sqlite("target.db"),
    };
    let target = open_store(&target_url).await;
    // A server with another master key is refused before anything is written.
    let other = authority(&target, &MasterKey::generate()?);
    other.ensure_default_hierarchy().await?;
    let backup = open_backup(std::fs::File::open(&path)?, secret(PASSPHRASE)).await?;
    let Err(Error::Invalid(why)) =
        restore_database(&target, &Vault::new(&MasterKey::generate()?)?, backup).await
    else {
        panic!("restored under another master key");
    };
    assert!(why.contains("master key"), "{why}");
    assert_eq!(other.cas().await?.len(), 2, "the target is untouched");

    let mut backup = open_backup(std::fs::File::open(&path)?, secret(PASSPHRASE)).await?;
    assert_eq!(
        backup.file("certmint.toml")?.as_deref(),
        Some(&b"[acme]\n"[..])
    );
    let loaded = restore_database(&target, &Vault::new(&key)?, backup).await?;
    assert_eq!(loaded, manifest.tables);
    let after = authority(&target, &key);
    for certificate in &issued {
        assert_eq!(&after.certificate(certificate.id).await?, certificate);
    }
    // The search index is not in a backup: the load fills it again as the certificates go in.
    let found = target
        .certificates(
            &store::CertificateFilter {
                search: Some("HOST3.example".into()),
                ..Default::default()
            },
            after.now(),
            store::PageRequest {
                page: 1,
                per_page: 10,
                after: None,
            },
        )
        .await?;
    assert_eq!(found.total, 1);
    assert_eq!(found.items[0].id, issued[3].id);
    let cas = after.cas().await?;
    assert_eq!(
        cas.iter().map(|c| c.id).collect::<Vec<_>>(),
        before.cas().await?.iter().map(|c| c.id).collect::<Vec<_>>()
    );
    let verification = after.audit_verify(None, None).await?;
    assert!(verification.valid, "{:?}", verification.faults);
    assert!(verification.checked > 5);
    // The CA's sealed key opens under the same master key: the restored CA signs.
    let fresh = after
        .issue(&admin, request("restored.example.test"))
        .await?;
    assert!(
        issued
            .iter()
            .all(|c| i64::from(fresh.certificate.id) > i64::from(c.id))
    );
    Ok(())
}

#[tokio::test]
async fn damaged_altered_short_or_wrongly_keyed_backups_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let store = open_store(&url).await;
    let key = MasterKey::generate()?;
    let authority = authority(&store, &key);
    authority.ensure_default_hierarchy().await?;
    let path = dir.path().join("good.cmbackup");
    back_up(&authority, &path).await;
    let good = std::fs::read(&path)?;

    assert!(refused(&path, "wrong").await.contains("wrong passphrase"));

    let altered = dir.path().join("altered.cmbackup");
    let mut bytes = good.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&altered, &bytes)?;
    refused(&altered, PASSPHRASE).await;

    let short = dir.path().join("short.cmbackup");
    std::fs::write(&short, &good[..good.len() - 100])?;
    refused(&short, PASSPHRASE).await;

    let garbage = dir.path().join("garbage.cmbackup");
    std::fs::write(&garbage, b"not a backup at all")?;
    refused(&garbage, PASSPHRASE).await;

    // Appended bytes are refused too: the encryption authenticates the end.
    let longer = dir.path().join("longer.cmbackup");
    let mut file = std::fs::File::create(&longer)?;
    file.write_all(&good)?;
    file.write_all(b"trailing")?;
    drop(file);
    refused(&longer, PASSPHRASE).await;

    // A backup of a later schema is refused with a clear message, before anything is written.
    store
        .execute_raw(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', 1, X'00', 0)",
        )
        .await?;
    let newer = dir.path().join("newer.cmbackup");
    back_up(&authority, &newer).await;
    let target = open_store(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("t.db").display()
    ))
    .await;
    let backup = open_backup(std::fs::File::open(&newer)?, secret(PASSPHRASE)).await?;
    let Err(Error::Invalid(why)) = restore_database(&target, &Vault::new(&key)?, backup).await
    else {
        panic!("a later schema was restored");
    };
    assert!(why.contains("upgrade certmint"), "{why}");
    assert_eq!(
        target.audit_anchor().await?.last_id,
        0,
        "the target is untouched"
    );
    Ok(())
}

#[tokio::test]
async fn a_backup_of_an_older_schema_restores_into_an_empty_database_and_is_migrated() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let old = store::Store::connect(&url, 4).await?;
    // The schema of the release before the last migration: backups exist from schema
    // OLDEST_SCHEMA on, so this needs a migration after it (every release adds some).
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../store/migrations/sqlite");
    let older = (certmint_authority::backup::OLDEST_SCHEMA..old.latest_migration())
        .rev()
        .find(|v| {
            std::fs::read_dir(&migrations)
                .into_iter()
                .flatten()
                .flatten()
                .any(|f| {
                    f.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("{v:04}_"))
                })
        })
        .expect("a migration after the first schema backups were written at");
    store::testing::migrate_to(&old, older).await?;
    assert_eq!(old.schema_version().await?, older);
    let key = MasterKey::generate()?;
    let before = authority(&old, &key);
    before.ensure_default_hierarchy().await?;
    let admin = Principal::local("admin-test");
    let issued = before
        .issue(&admin, request("old.example.test"))
        .await?
        .certificate;
    let path = dir.path().join("old.cmbackup");
    let manifest = back_up(&before, &path).await;
    assert_eq!(manifest.schema_version, older);

    let target_url = match postgres() {
        Some(admin) => store::testing::fresh_postgres_database(&admin).await?,
        None => format!("sqlite://{}?mode=rwc", dir.path().join("new.db").display()),
    };
    let backup = open_backup(std::fs::File::open(&path)?, secret(PASSPHRASE)).await?;
    let restored =
        certmint_authority::backup::restore_into(&target_url, &Vault::new(&key)?, backup).await?;
    assert_eq!(restored.manifest.schema_version, older);
    let target = open_store(&target_url).await;
    assert_eq!(
        target.schema_version().await?,
        target.latest_migration(),
        "migrated on after the load"
    );
    let after = authority(&target, &key);
    assert_eq!(after.certificate(issued.id).await?, issued);
    let verification = after.audit_verify(None, None).await?;
    assert!(verification.valid, "{:?}", verification.faults);
    let fresh = after
        .issue(&admin, request("new.example.test"))
        .await?
        .certificate;

    // Into a database that holds certmint's tables at another schema: refused, untouched.
    let backup = open_backup(std::fs::File::open(&path)?, secret(PASSPHRASE)).await?;
    let Err(Error::Invalid(why)) =
        certmint_authority::backup::restore_into(&target_url, &Vault::new(&key)?, backup).await
    else {
        panic!("restored over a database of another schema");
    };
    assert!(why.contains("schema"), "{why}");
    assert_eq!(
        after.certificate(fresh.id).await?,
        fresh,
        "the target is untouched"
    );
    Ok(())
}
