//! EST's registration authority on two nodes sharing one database (SQLite, or PostgreSQL when
//! CERTMINT_TEST_DATABASE_URL is set): a new password is refused at once on the node that set
//! it and within a second on the other, and a burst of first enrollments with one password,
//! larger than the verification pool's queue, all get through its one verification.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use certmint_authority::est::{EstCaller, EstOperation, EstSettingsChange};
use certmint_authority::pki::csr;
use certmint_authority::pki::{
    DistinguishedName, KeyType, NameAttribute, PrivateKey, SubjectAltName,
};
use certmint_authority::{
    Authority, CertificateSource, Error, MasterKey, Policy, Principal, SystemClock, Vault,
};
use zeroize::Zeroizing;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Two authorities over one database and one master key: two nodes.
async fn two_nodes(dir: &std::path::Path) -> (Authority, Authority) {
    let url = match std::env::var("CERTMINT_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(admin) => store::testing::fresh_postgres_database(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("CERTMINT_TEST_DATABASE_URL is set, but PostgreSQL is unusable: {e}")
            }),
        None => format!("sqlite://{}?mode=rwc", dir.join("t.db").display()),
    };
    let master = MasterKey::generate().expect("key");
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let store = store::Store::connect(&url, 8).await.expect("database");
        store.migrate().await.expect("migrations");
        nodes.push(Authority::new(
            store,
            Vault::new(&master).expect("vault"),
            Arc::new(SystemClock),
            Policy::default(),
            certmint_authority::Publishing::default(),
        ));
    }
    let b = nodes.pop().expect("node b");
    let a = nodes.pop().expect("node a");
    (a, b)
}

fn csr(cn: &str) -> Vec<u8> {
    let key = PrivateKey::generate(KeyType::EcP256).expect("key");
    let mut subject = DistinguishedName::new();
    subject.set(NameAttribute::CommonName, cn).expect("cn");
    let sans = [SubjectAltName::parse(&format!("dns:{cn}")).expect("san")];
    csr::make(&key, &subject, &sans).expect("csr").der
}

fn caller(password: &str) -> EstCaller {
    EstCaller {
        basic: Some(("device".into(), Zeroizing::new(password.into()))),
        ..EstCaller::default()
    }
}

async fn set_password(node: &Authority, password: &str) -> TestResult {
    node.update_est_settings(
        &Principal::local("admin"),
        EstSettingsChange {
            enabled: Some(true),
            username: Some("device".into()),
            password: Some(Some(Zeroizing::new(password.into()))),
            ..EstSettingsChange::default()
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_password_reaches_every_node_within_a_second() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (a, b) = two_nodes(dir.path()).await;
    a.ensure_default_hierarchy().await?;
    set_password(&a, "the first enrollment secret").await?;
    let old = caller("the first enrollment secret");
    let issued = b
        .est_enroll(None, &old, EstOperation::Enroll, &csr("one.example.test"))
        .await?;
    assert_eq!(issued.certificate.source, CertificateSource::Est);

    set_password(&a, "the second enrollment secret").await?;
    let refused = a
        .est_enroll(None, &old, EstOperation::Enroll, &csr("two.example.test"))
        .await;
    assert!(
        matches!(refused, Err(Error::Unauthorized(_))),
        "at once on the node that changed it: {refused:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refused = b
        .est_enroll(None, &old, EstOperation::Enroll, &csr("two.example.test"))
        .await;
    assert!(
        matches!(refused, Err(Error::Unauthorized(_))),
        "within a second on the other: {refused:?}"
    );
    let new = caller("the second enrollment secret");
    b.est_enroll(None, &new, EstOperation::Enroll, &csr("two.example.test"))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_first_enrollments_with_one_password_all_enroll() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (a, _) = two_nodes(dir.path()).await;
    a.ensure_default_hierarchy().await?;
    set_password(&a, "a shared enrollment secret").await?;
    let a = Arc::new(a);
    // More than the verification pool queues (256 per core): those past it wait for the
    // check under way instead of being refused as busy.
    let burst = 256 * std::thread::available_parallelism().map_or(1, usize::from) + 64;
    let csrs: Vec<Vec<u8>> = (0..burst)
        .map(|i| csr(&format!("burst{i}.example.test")))
        .collect();
    let mut tasks = Vec::new();
    for csr in csrs {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let caller = caller("a shared enrollment secret");
            a.est_enroll(None, &caller, EstOperation::Enroll, &csr)
                .await
                .map(|_| ())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
