//! The issuance pipeline against a real database (SQLite, or PostgreSQL when
//! CERTMINT_TEST_DATABASE_URL is set), checked with the `openssl` command line tool.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use certmint_authority::pki::DistinguishedName;
use certmint_authority::pki::csr::Csr;
use certmint_authority::pki::{KeyType, NameAttribute, SubjectAltName, pem};
use certmint_authority::{
    Authority, CaId, CaKind, CertificateFilter, CertificateId, CertificateState, Error,
    IssueRequest, KeySource, MasterKey, NewCaInput, PageRequest, Pointers, Policy, Principal, Role,
    SystemClock, Vault,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An authority, and the store under it for the writes a test makes behind its back (only the
/// authority crate holds a store in the product).
struct Harness {
    authority: Authority,
    store: store::Store,
}

impl std::ops::Deref for Harness {
    type Target = Authority;

    fn deref(&self) -> &Authority {
        &self.authority
    }
}

impl Harness {
    fn store(&self) -> &store::Store {
        &self.store
    }
}

async fn authority(dir: &Path) -> Harness {
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
    let store = store::Store::connect(&url, 4).await.expect("database");
    store.migrate().await.expect("migrations");
    let vault = Vault::new(&MasterKey::generate().expect("key")).expect("vault");
    let authority = Authority::new(
        store.clone(),
        vault,
        Arc::new(SystemClock),
        Policy::default(),
        certmint_authority::Publishing::default(),
    );
    Harness { authority, store }
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("the openssl command is required for this test: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn subject(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.set(NameAttribute::CommonName, cn).expect("cn");
    dn
}

fn request(cn: &str, key: KeySource) -> IssueRequest {
    IssueRequest {
        ca_id: None,
        subject: subject(cn),
        sans: vec![SubjectAltName::parse(&format!("dns:{cn}")).expect("san")],
        key,
        template_id: None,
        validity_days: Some(90),
        key_usage: None,
        extended_key_usage: None,
        description: None,
        source: certmint_authority::CertificateSource::Api,
        renewed_from: None,
    }
}

fn viewer() -> Principal {
    let mut p = Principal::local("viewer-test");
    p.role = Role::Viewer;
    p
}

async fn certificate_count(authority: &Authority) -> i64 {
    authority
        .reader()
        .certificates(
            &CertificateFilter::default(),
            authority.now(),
            PageRequest {
                page: 1,
                per_page: 1,
                after: None,
            },
        )
        .await
        .expect("list")
        .total
}

#[tokio::test]
async fn first_start_makes_a_hierarchy_whose_certificates_openssl_verifies() -> TestResult {
    let dir = tempfile::tempdir()?;
    let authority = authority(dir.path()).await;
    assert!(authority.ensure_default_hierarchy().await?);
    assert!(
        !authority.ensure_default_hierarchy().await?,
        "made only once"
    );
    let cas = authority.cas().await?;
    assert_eq!(cas.len(), 2);
    let (root, sub) = (&cas[0], &cas[1]);
    assert_eq!(
        (root.ca_type.as_str(), root.cert.key_type.as_str()),
        ("root", "EC P-384")
    );
    assert_eq!(
        (sub.ca_type.as_str(), sub.cert.key_type.as_str()),
        ("intermediate", "EC P-256")
    );
    assert_eq!(sub.parent_id, Some(root.id));
    assert!(sub.is_default && !root.is_default);
    assert_eq!(
        (root.cert.not_after - root.cert.not_before).whole_days(),
        3650
    );
    assert_eq!(
        (sub.cert.not_after - sub.cert.not_before).whole_days(),
        1825
    );
    std::fs::write(
        dir.path().join("root.pem"),
        pem::encode("CERTIFICATE", &root.cert.der),
    )?;
    std::fs::write(
        dir.path().join("sub.pem"),
        pem::encode("CERTIFICATE", &sub.cert.der),
    )?;

    let admin = Principal::local("admin-test");
    for key_type in [
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Ed25519,
        KeyType::Rsa { bits: 2048 },
    ] {
        let issued = authority
            .issue(
                &admin,
                request("svc.example.test", KeySource::Generate(Some(key_type))),
            )
            .await?
            .certificate;
        assert_eq!(
            issued,
            authority.certificate(issued.id).await?,
            "the returned row is the stored row"
        );
        assert!(issued.key_id.is_some(), "the generated key is stored");
        assert_eq!(issued.ca_id, Some(sub.id));
        assert_eq!(issued.cert.key_type, key_type.label());
        assert_eq!(issued.sans, ["dns:svc.example.test"]);
        assert_eq!(issued.status, certmint_authority::CertificateStatus::Valid);
        std::fs::write(
            dir.path().join("leaf.pem"),
            pem::encode("CERTIFICATE", &issued.cert.der),
        )?;
        let out = openssl(
            dir.path(),
            &[
                "verify",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "sub.pem",
                "-purpose",
                "sslserver",
                "leaf.pem",
            ],
        );
        assert!(out.contains("leaf.pem: OK"), "{key_type}: {out}");

        // The server-side key is sealed at rest, and only export:keys may take it out.
        let denied = authority
            .certificate_key(&viewer(), issued.id)
            .await
            .unwrap_err();
        assert!(matches!(denied, Error::Forbidden(_)), "{denied:?}");
        let key = authority.certificate_key(&admin, issued.id).await?;
        std::fs::write(dir.path().join("key.pem"), key.to_pkcs8_pem().as_bytes())?;
        let cert_key = openssl(
            dir.path(),
            &["x509", "-in", "leaf.pem", "-noout", "-pubkey"],
        );
        let own_key = openssl(dir.path(), &["pkey", "-in", "key.pem", "-pubout"]);
        assert_eq!(cert_key, own_key, "{key_type}");
    }

    // Each issuance and each key export left an audit record, and the chain holds.
    let issued = authority
        .audit_logs(
            &certmint_authority::AuditFilter {
                action: Some("certificate_issued".into()),
                ..Default::default()
            },
            PageRequest {
                page: 1,
                per_page: 50,
                after: None,
            },
        )
        .await?;
    assert_eq!(issued.total, 4);
    let exported = authority
        .audit_logs(
            &certmint_authority::AuditFilter {
                action: Some("private_key_exported".into()),
                ..Default::default()
            },
            PageRequest {
                page: 1,
                per_page: 50,
                after: None,
            },
        )
        .await?;
    assert_eq!(exported.total, 4);
    assert!(authority.audit_verify(None, None).await?.valid);
    // And an outbox event per certificate, written with it.
    assert_eq!(
        authority
            .store()
            .pending_events("certificate_issued", 100)
            .await?
            .len(),
        4
    );
    // No private key is stored in clear.
    let leaf = authority.certificate(CertificateId(1)).await?;
    let key = authority.certificate_key(&admin, leaf.id).await?;
    let sealed = authority
        .store()
        .key(leaf.key_id.expect("key id"))
        .await?
        .expect("row");
    let stored = sealed.sealed.expect("sealed");
    assert!(
        !stored
            .windows(32)
            .any(|w| key.pkcs8_der().windows(32).any(|k| k == w))
    );
    // Deleting the certificate destroys the sealed key with it.
    authority.delete_certificate(&admin, leaf.id).await?;
    assert!(authority.store().key(sealed.id).await?.is_none());
    assert!(matches!(
        authority.certificate(leaf.id).await,
        Err(Error::NotFound(_))
    ));
    Ok(())
}

#[tokio::test]
async fn csrs_from_openssl_are_signed_and_bad_requests_write_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let authority = authority(dir.path()).await;
    authority.ensure_default_hierarchy().await?;
    let admin = Principal::local("admin-test");
    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "rsa:2048",
            "-keyout",
            "k.pem",
            "-out",
            "r.csr",
            "-subj",
            "/CN=csr.example.test",
        ],
    );
    let csr = Csr::parse(&std::fs::read(dir.path().join("r.csr"))?)?;
    let issued = authority
        .issue(
            &admin,
            request("csr.example.test", KeySource::Csr(Box::new(csr))),
        )
        .await?
        .certificate;
    assert_eq!(issued.key_id, None, "the requester keeps the key");
    assert_eq!(issued, authority.certificate(issued.id).await?);
    assert_eq!(issued.cert.key_type, "RSA 2048");
    let before = certificate_count(&authority).await;

    let mut too_long = request(
        "long.example.test",
        KeySource::Generate(Some(KeyType::EcP256)),
    );
    too_long.validity_days = Some(2000);
    let err = authority.issue(&admin, too_long).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("would end after CA")),
        "{err:?}"
    );

    let err = authority
        .issue(
            &viewer(),
            request("v.example.test", KeySource::Generate(Some(KeyType::EcP256))),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");

    let mut unknown_ca = request("x.example.test", KeySource::Generate(Some(KeyType::EcP256)));
    unknown_ca.ca_id = Some(CaId(999));
    let err = authority.issue(&admin, unknown_ca).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("does not exist")),
        "{err:?}"
    );

    authority
        .store()
        .execute_raw("UPDATE cas SET is_active = 0")
        .await?;
    let err = authority
        .issue(
            &admin,
            request("i.example.test", KeySource::Generate(Some(KeyType::EcP256))),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("inactive")),
        "{err:?}"
    );
    authority
        .store()
        .execute_raw("UPDATE cas SET is_active = 1, not_after = 1")
        .await?;
    // Changed behind the authority's back: its CA rows are read again after a second.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let err = authority
        .issue(
            &admin,
            request("e.example.test", KeySource::Generate(Some(KeyType::EcP256))),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("expired")),
        "{err:?}"
    );

    assert_eq!(
        certificate_count(&authority).await,
        before,
        "nothing was written"
    );
    Ok(())
}

#[tokio::test]
async fn intermediates_chain_up_and_names_must_be_unique() -> TestResult {
    let dir = tempfile::tempdir()?;
    let authority = authority(dir.path()).await;
    let admin = Principal::local("admin-test");
    let root = authority
        .create_ca(
            &admin,
            NewCaInput {
                name: None,
                description: None,
                subject: subject("Lab Root"),
                kind: CaKind::Root,
                parent_id: None,
                key_type: KeyType::Rsa { bits: 3072 },
                key_location: certmint_authority::KeyLocation::Software,
                validity_days: 3650,
                path_len: Some(1),
                name_constraints: None,
                make_default: false,
                require_template: false,
                pointers: Pointers::default(),
            },
        )
        .await?;
    assert_eq!(root.name, "Lab Root");
    let input = NewCaInput {
        name: Some("Lab Issuing".into()),
        description: None,
        subject: subject("Lab Issuing"),
        kind: CaKind::Intermediate,
        parent_id: Some(root.id),
        key_type: KeyType::Ed25519,
        key_location: certmint_authority::KeyLocation::Software,
        validity_days: 365,
        path_len: Some(0),
        name_constraints: None,
        make_default: true,
        require_template: false,
        pointers: Pointers::default(),
    };
    let sub = authority.create_ca(&admin, input.clone()).await?;
    assert_eq!(
        authority.ca_chain(sub.id).await?,
        [sub.cert.der.clone(), root.cert.der.clone()]
    );
    let err = authority.create_ca(&admin, input).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");

    let leaf = authority
        .issue(
            &admin,
            request(
                "ed.example.test",
                KeySource::Generate(Some(KeyType::EcP256)),
            ),
        )
        .await?
        .certificate;
    std::fs::write(
        dir.path().join("root.pem"),
        pem::encode("CERTIFICATE", &root.cert.der),
    )?;
    std::fs::write(
        dir.path().join("sub.pem"),
        pem::encode("CERTIFICATE", &sub.cert.der),
    )?;
    std::fs::write(
        dir.path().join("leaf.pem"),
        pem::encode("CERTIFICATE", &leaf.cert.der),
    )?;
    let out = openssl(
        dir.path(),
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "sub.pem",
            "leaf.pem",
        ],
    );
    assert!(out.contains("OK"), "{out}");

    let active = authority
        .store()
        .certificates(
            &CertificateFilter {
                state: Some(CertificateState::Active),
                ca_id: Some(sub.id),
                search: Some("ED.EXAMPLE".into()),
                ..Default::default()
            },
            authority.now(),
            PageRequest {
                page: 1,
                per_page: 10,
                after: None,
            },
        )
        .await?;
    assert_eq!(active.total, 1);
    let revoked = authority
        .store()
        .certificates(
            &CertificateFilter {
                state: Some(CertificateState::Revoked),
                ..Default::default()
            },
            authority.now(),
            PageRequest {
                page: 1,
                per_page: 10,
                after: None,
            },
        )
        .await?;
    assert_eq!(revoked.total, 0);
    Ok(())
}

/// Chains are kept in memory once read; deleting a CA forgets them, so the deleted CA's chain
/// is gone and a CA that gets its id (SQLite reuses the highest) shows its own.
#[tokio::test]
async fn a_deleted_cas_chain_is_forgotten() -> TestResult {
    let dir = tempfile::tempdir()?;
    let authority = authority(dir.path()).await;
    let admin = Principal::local("admin-test");
    let root = |name: &str| NewCaInput {
        name: None,
        description: None,
        subject: subject(name),
        kind: CaKind::Root,
        parent_id: None,
        key_type: KeyType::EcP256,
        key_location: certmint_authority::KeyLocation::Software,
        validity_days: 365,
        path_len: None,
        name_constraints: None,
        make_default: false,
        require_template: false,
        pointers: Pointers::default(),
    };
    let first = authority.create_ca(&admin, root("First Root")).await?;
    assert_eq!(
        authority.ca_chain(first.id).await?,
        std::slice::from_ref(&first.cert.der)
    );
    authority.delete_ca(&admin, first.id, false).await?;
    let gone = authority.ca_chain(first.id).await.unwrap_err();
    assert!(matches!(gone, Error::NotFound(_)), "{gone:?}");
    let second = authority.create_ca(&admin, root("Second Root")).await?;
    assert_eq!(authority.ca_chain(second.id).await?, [second.cert.der]);
    Ok(())
}

/// Concurrent issuances share transactions (group commit): every one is stored with its audit
/// record, a stored CSR signed twice at once is signed once, the failing write does not undo
/// the others in its batch, and the audit chain stays whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_issuances_commit_together_and_fail_alone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let authority = Arc::new(authority(dir.path()).await);
    authority.ensure_default_hierarchy().await?;
    let admin = Principal::local("admin");
    let key = certmint_authority::pki::PrivateKey::generate(KeyType::EcP256)?;
    let csr = certmint_authority::pki::csr::make(
        &key,
        &subject("twice.example.test"),
        &[SubjectAltName::parse("dns:twice.example.test")?],
    )?;
    let stored = authority
        .upload_csr(&admin, None, csr.der.as_slice())
        .await?;
    let before = authority
        .store()
        .count_certificates(&CertificateFilter::default(), authority.now())
        .await?;

    let mut tasks = Vec::new();
    for i in 0..40 {
        let authority = authority.clone();
        tasks.push(tokio::spawn(async move {
            let cn = format!("batch{i}.example.test");
            authority
                .issue(
                    &Principal::local("admin"),
                    request(&cn, KeySource::Generate(Some(KeyType::EcP256))),
                )
                .await
                .map(|_| ())
        }));
    }
    let signs: Vec<_> = (0..2)
        .map(|_| {
            let authority = authority.clone();
            tokio::spawn(async move {
                authority
                    .sign_csr(&Principal::local("admin"), stored.id, Default::default())
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let mut outcomes = Vec::new();
    for sign in signs {
        outcomes.push(sign.await?);
    }
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Err(Error::Conflict(_)))),
        "{outcomes:?}"
    );
    let after = authority
        .store()
        .count_certificates(&CertificateFilter::default(), authority.now())
        .await?;
    assert_eq!(after, before + 41);
    let signed = authority.csr(stored.id).await?;
    assert_eq!(signed.status, certmint_authority::CsrStatus::Signed);
    let verification = authority.audit_verify(None, None).await?;
    assert!(verification.valid, "{:?}", verification.faults);
    Ok(())
}

/// Issuing CAs are kept in memory, but whether one is still active is checked in the
/// transaction that stores the certificate: a CA deactivated elsewhere (another node, here the
/// store directly) issues nothing more, at once.
#[tokio::test]
async fn a_ca_deactivated_behind_the_cache_issues_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let authority = authority(dir.path()).await;
    authority.ensure_default_hierarchy().await?;
    let admin = Principal::local("admin");
    let first = authority
        .issue(
            &admin,
            request("before.example.test", KeySource::Generate(None)),
        )
        .await?;
    let ca_id = first.certificate.ca_id.ok_or("no issuing CA")?;

    let mut tx = authority.store().begin_write().await?;
    tx.update_ca(
        ca_id,
        &store::CaUpdate {
            is_active: Some(false),
            ..Default::default()
        },
        authority.now(),
    )
    .await?;
    tx.commit().await?;

    let before = certificate_count(&authority).await;
    let refused = authority
        .issue(
            &admin,
            request("after.example.test", KeySource::Generate(None)),
        )
        .await;
    match refused {
        Err(Error::Invalid(message)) => assert!(message.contains("inactive"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        certificate_count(&authority).await,
        before,
        "nothing written"
    );
    let verification = authority.audit_verify(None, None).await?;
    assert!(verification.valid, "{:?}", verification.faults);
    Ok(())
}

async fn audited(authority: &Authority, filter: certmint_authority::AuditFilter) -> i64 {
    authority
        .audit_logs(
            &filter,
            PageRequest {
                page: 1,
                per_page: 1,
                after: None,
            },
        )
        .await
        .expect("audit")
        .total
}

#[tokio::test]
async fn every_builtin_template_issues_with_every_key_type_it_allows_without_lint_findings()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let authority = authority(dir.path()).await;
    authority.ensure_default_hierarchy().await?;
    authority.ensure_builtin_templates().await?;
    let builtins: Vec<_> = authority
        .templates()
        .await?
        .into_iter()
        .filter(|t| t.builtin)
        .collect();
    assert_eq!(
        builtins.len(),
        certmint_authority::builtin_templates().len()
    );
    let root = authority
        .cas()
        .await?
        .into_iter()
        .find(|c| c.ca_type == "root")
        .ok_or("no root")?;
    let admin = Principal::local("admin");
    let key_types = [
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Ed25519,
        KeyType::Rsa { bits: 2048 },
    ];
    for template in authority
        .templates()
        .await?
        .into_iter()
        .filter(|t| t.builtin)
    {
        let spec = &template.spec;
        let is_ca = spec.basic_constraints.ca;
        let kinds = &spec.san_types;
        let allows = |kind: &str| kinds.is_empty() || kinds.iter().any(|k| k == kind);
        let san = if allows("dns") {
            "dns:host.example.test"
        } else {
            "email:ops@example.test"
        };
        let mut issued = 0;
        for key_type in key_types {
            let outcome = authority
                .issue(
                    &admin,
                    IssueRequest {
                        ca_id: is_ca.then_some(root.id),
                        template_id: Some(template.id),
                        validity_days: Some(30),
                        sans: if is_ca {
                            Vec::new()
                        } else {
                            vec![SubjectAltName::parse(san)?]
                        },
                        subject: subject(&format!("{} {key_type}", spec.name)),
                        ..request("template.example.test", KeySource::Generate(Some(key_type)))
                    },
                )
                .await;
            match outcome {
                Ok(_) => issued += 1,
                // A key type the template does not allow is refused before anything is built.
                Err(Error::Invalid(message)) => assert!(
                    message.contains("key"),
                    "template '{}' with {key_type}: {message}",
                    spec.name
                ),
                Err(other) => panic!("template '{}' with {key_type}: {other}", spec.name),
            }
        }
        assert!(issued > 0, "template '{}' issued nothing", spec.name);
    }
    let warned = certmint_authority::AuditFilter {
        search: Some("lint warnings".into()),
        ..Default::default()
    };
    assert_eq!(audited(&authority, warned).await, 0);
    let refused = certmint_authority::AuditFilter {
        action: Some("certificate_refused".into()),
        ..Default::default()
    };
    assert_eq!(audited(&authority, refused).await, 0);
    Ok(())
}

#[tokio::test]
async fn a_lint_refusal_signs_nothing_is_audited_and_a_ca_can_downgrade_the_rule() -> TestResult {
    let dir = tempfile::tempdir()?;
    let authority = authority(dir.path()).await;
    authority.ensure_default_hierarchy().await?;
    let admin = Principal::local("admin");
    // A TLS server certificate whose common name is no host name gets no SAN from it, and a
    // serverAuth certificate without SANs is what the linter refuses.
    let no_san = || IssueRequest {
        subject: subject("not a host name"),
        sans: Vec::new(),
        ..request("placeholder.example.test", KeySource::Generate(None))
    };
    let before = certificate_count(&authority).await;
    let refused = authority.issue(&admin, no_san()).await;
    let Err(Error::Lint(report)) = refused else {
        panic!("expected a lint refusal, got {refused:?}");
    };
    assert_eq!(report.rule_names(), ["tls_server_san"]);
    assert_eq!(certificate_count(&authority).await, before);
    let refusals = certmint_authority::AuditFilter {
        action: Some("certificate_refused".into()),
        success: Some(false),
        search: Some("tls_server_san".into()),
        ..Default::default()
    };
    assert_eq!(audited(&authority, refusals).await, 1);

    // A common name that is a host name becomes the SAN.
    let named = authority
        .issue(
            &admin,
            IssueRequest {
                sans: Vec::new(),
                ..request("cn-only.example.test", KeySource::Generate(None))
            },
        )
        .await?;
    assert_eq!(named.certificate.sans, ["dns:cn-only.example.test"]);

    let ca = authority.default_ca().await?;
    let unknown = authority
        .update_ca(
            &admin,
            ca.id,
            certmint_authority::CaUpdate {
                lint_warn_only: Some(vec!["no_such_rule".into()]),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(unknown, Err(Error::Invalid(_))), "{unknown:?}");
    authority
        .update_ca(
            &admin,
            ca.id,
            certmint_authority::CaUpdate {
                lint_warn_only: Some(vec!["tls_server_san".into()]),
                ..Default::default()
            },
        )
        .await?;
    let issued = authority.issue(&admin, no_san()).await?;
    assert!(issued.certificate.sans.is_empty());
    let warned = certmint_authority::AuditFilter {
        action: Some("certificate_issued".into()),
        search: Some("lint warnings: tls_server_san".into()),
        ..Default::default()
    };
    assert_eq!(audited(&authority, warned).await, 1);
    Ok(())
}

/// The HTTPS listener's certificate comes from the default CA while it can issue; when it
/// cannot, the self-signed fallback is recorded in the audit log with its fingerprint and why.
#[tokio::test]
async fn the_listener_certificate_is_issued_and_a_self_signed_fallback_is_recorded() -> TestResult {
    let dir = tempfile::tempdir()?;
    let authority = authority(dir.path()).await;
    authority.ensure_default_hierarchy().await?;
    let names = vec!["listener.example.test".to_owned(), "127.0.0.1".to_owned()];
    let read = |pem: &str| {
        let der = certmint_authority::pki::bundle::read(pem.as_bytes(), None)
            .unwrap()
            .certificates;
        certmint_authority::pki::inspect::Certificate::parse(&der[0]).unwrap()
    };

    let issued = read(&authority.listener_identity(&names).await?.cert_pem);
    let ca = authority.default_ca().await?;
    assert!(!issued.self_signed);
    assert_eq!(issued.issuer, ca.cert.subject);
    let fallbacks = || certmint_authority::AuditFilter {
        action: Some("listener_certificate_self_signed".into()),
        ..Default::default()
    };
    assert_eq!(audited(&authority, fallbacks()).await, 0);

    let admin = Principal::local("admin");
    authority
        .update_ca(
            &admin,
            ca.id,
            certmint_authority::CaUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await?;
    let fallback = read(&authority.listener_identity(&names).await?.cert_pem);
    assert!(fallback.self_signed);
    let recorded = certmint_authority::AuditFilter {
        search: Some(fallback.fingerprint_sha256.clone()),
        ..fallbacks()
    };
    assert_eq!(audited(&authority, recorded).await, 1);
    let why = certmint_authority::AuditFilter {
        search: Some("inactive".into()),
        ..fallbacks()
    };
    assert_eq!(audited(&authority, why).await, 1);
    let verification = authority.audit_verify(None, None).await?;
    assert!(verification.valid, "{:?}", verification.faults);
    Ok(())
}
