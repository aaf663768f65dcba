//! Certificates, CSRs and CRLs checked by the real `openssl` command line tool.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use certmint_pki::cert::{self, CaSigner, NameConstraints, Subtree};
use certmint_pki::csr::{self, Csr};
use certmint_pki::inspect::Certificate;
use certmint_pki::{
    CertSpec, DistinguishedName, ExtendedKeyUsage, Issuer, KeyType, KeyUsage, NameAttribute,
    PrivateKey, SubjectAltName, pem, random,
};
use time::{Duration, OffsetDateTime};

/// Runs openssl and returns its stdout; panics (never skips) when openssl is missing or fails.
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

fn openssl_fails(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("the openssl command is required for this test: {e}"));
    assert!(
        !out.status.success(),
        "openssl {args:?} succeeded but should not have"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.set(NameAttribute::Country, "DE").unwrap();
    dn.set(NameAttribute::Organization, "certmint tests")
        .unwrap();
    dn.set(NameAttribute::CommonName, cn).unwrap();
    dn
}

fn spec(subject: DistinguishedName, public_key: Vec<u8>, days: i64) -> CertSpec {
    let now = OffsetDateTime::now_utc();
    CertSpec::new(
        subject,
        public_key,
        random::serial().unwrap(),
        now - Duration::minutes(5),
        now + Duration::days(days),
    )
}

struct Hierarchy {
    root_key: Arc<PrivateKey>,
    root: Vec<u8>,
    sub: Vec<u8>,
    /// The issuing CA, signing with its key.
    sub_ca: CaSigner,
}

fn hierarchy() -> Hierarchy {
    let root_key = Arc::new(PrivateKey::generate(KeyType::EcP384).unwrap());
    let mut root_spec = spec(name("Test Root"), root_key.public_key_der(), 3650);
    root_spec.ca = Some(None);
    let root = cert::build(
        &root_spec,
        Issuer::SelfSigned(root_key.as_ref()),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap()
    .der;

    let sub_key = PrivateKey::generate(KeyType::EcP256).unwrap();
    let mut sub_spec = spec(name("Test Issuing CA"), sub_key.public_key_der(), 1825);
    sub_spec.ca = Some(Some(0));
    sub_spec.crl_urls = vec!["http://pki.example.test/crl/root.crl".into()];
    sub_spec.ca_issuer_urls = vec!["http://pki.example.test/ca/root.cer".into()];
    sub_spec.name_constraints = Some(NameConstraints {
        permitted: vec![
            Subtree::parse("dns:example.test").unwrap(),
            Subtree::parse("ip:10.0.0.0/8").unwrap(),
            Subtree::parse("email:example.test").unwrap(),
        ],
        excluded: vec![Subtree::parse("dns:secret.example.test").unwrap()],
    });
    let root_ca = CaSigner::new(&root, root_key.clone()).unwrap();
    let sub = cert::build(
        &sub_spec,
        Issuer::Ca(&root_ca),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap()
    .der;
    Hierarchy {
        root_key,
        root,
        sub_ca: CaSigner::new(&sub, Arc::new(sub_key)).unwrap(),
        sub,
    }
}

fn write_pem(dir: &Path, file: &str, der: &[u8]) {
    std::fs::write(dir.join(file), pem::encode("CERTIFICATE", der)).unwrap();
}

#[test]
fn leaves_of_every_key_type_verify_with_openssl_and_show_their_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let h = hierarchy();
    write_pem(dir.path(), "root.pem", &h.root);
    write_pem(dir.path(), "sub.pem", &h.sub);

    for key_type in [
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Ed25519,
        KeyType::Rsa { bits: 2048 },
        KeyType::Rsa { bits: 3072 },
    ] {
        let key = PrivateKey::generate(key_type).unwrap();
        let mut leaf = spec(name("www.example.test"), key.public_key_der(), 397);
        leaf.subject
            .set(NameAttribute::OrganizationalUnit, "Web")
            .unwrap();
        leaf.subject.set(NameAttribute::State, "Berlin").unwrap();
        leaf.subject.set(NameAttribute::Locality, "Berlin").unwrap();
        leaf.subject
            .set(NameAttribute::EmailAddress, "ops@example.test")
            .unwrap();
        leaf.subject
            .set(NameAttribute::SerialNumber, "4711")
            .unwrap();
        leaf.sans = [
            "dns:www.example.test",
            "dns:*.api.example.test",
            "ip:10.1.2.3",
            "email:ops@example.test",
            "uri:https://www.example.test/id",
        ]
        .iter()
        .map(|s| SubjectAltName::parse(s).unwrap())
        .collect();
        leaf.key_usage = vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment];
        leaf.extended_key_usage = vec![ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth];
        leaf.crl_urls = vec!["http://pki.example.test/crl/sub.crl".into()];
        leaf.ocsp_urls = vec!["http://pki.example.test/ocsp".into()];
        leaf.ca_issuer_urls = vec!["http://pki.example.test/ca/sub.cer".into()];
        leaf.policies = vec![const_oid::ObjectIdentifier::new_unwrap("2.23.140.1.2.2")];
        let der = cert::build(
            &leaf,
            Issuer::Ca(&h.sub_ca),
            &certmint_pki::lint::Policy::default(),
        )
        .unwrap()
        .der;
        write_pem(dir.path(), "leaf.pem", &der);

        let verified = openssl(
            dir.path(),
            &[
                "verify",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "sub.pem",
                "-x509_strict",
                "leaf.pem",
            ],
        );
        assert!(verified.contains("leaf.pem: OK"), "{key_type}: {verified}");

        let text = openssl(
            dir.path(),
            &[
                "x509", "-in", "leaf.pem", "-noout", "-text", "-nameopt", "RFC2253",
            ],
        );
        for expected in [
            "CN=www.example.test",
            "OU=Web",
            "emailAddress=ops@example.test",
            "serialNumber=4711",
            "DNS:www.example.test",
            "DNS:*.api.example.test",
            "IP Address:10.1.2.3",
            "email:ops@example.test",
            "URI:https://www.example.test/id",
            "TLS Web Server Authentication, TLS Web Client Authentication",
            "X509v3 Basic Constraints: critical",
            "CA:FALSE",
            "X509v3 Key Usage: critical",
            "Digital Signature",
            "X509v3 Subject Key Identifier",
            "X509v3 Authority Key Identifier",
            "URI:http://pki.example.test/crl/sub.crl",
            "OCSP - URI:http://pki.example.test/ocsp",
            "CA Issuers - URI:http://pki.example.test/ca/sub.cer",
            "Policy: 2.23.140.1.2.2",
            "Signature Algorithm: ecdsa-with-SHA256",
        ] {
            assert!(
                text.contains(expected),
                "{key_type}: '{expected}' missing from\n{text}"
            );
        }
        // Only RSA keys encrypt (RFC 5480, RFC 8410).
        assert_eq!(
            text.contains("Key Encipherment"),
            matches!(key_type, KeyType::Rsa { .. }),
            "{key_type}: {text}"
        );

        let info = Certificate::parse(&der).unwrap();
        assert_eq!(info.key_type, Some(key_type));
        assert_eq!(info.serial.len(), 32, "16-byte serial: {}", info.serial);
        assert_eq!(
            info.authority_key_id,
            Certificate::parse(&h.sub).unwrap().subject_key_id
        );
        assert!(info.is_issued_by(&Certificate::parse(&h.sub).unwrap()));
        assert!(!info.is_issued_by(&Certificate::parse(&h.root).unwrap()));
        assert_eq!(info.common_name.as_deref(), Some("www.example.test"));
        assert_eq!(
            info.subject,
            "emailAddress=ops@example.test,CN=www.example.test,serialNumber=4711,OU=Web,\
             O=certmint tests,L=Berlin,ST=Berlin,C=DE"
        );
    }

    // The intermediate's name constraints are enforced by openssl.
    let key = PrivateKey::generate(KeyType::EcP256).unwrap();
    let mut outside = spec(name("intruder"), key.public_key_der(), 30);
    outside.sans = vec![SubjectAltName::parse("dns:secret.example.test").unwrap()];
    let der = cert::build(
        &outside,
        Issuer::Ca(&h.sub_ca),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap()
    .der;
    write_pem(dir.path(), "outside.pem", &der);
    let err = openssl_fails(
        dir.path(),
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "sub.pem",
            "outside.pem",
        ],
    );
    assert!(err.contains("excluded subtree violation"), "{err}");
    let text = openssl(dir.path(), &["x509", "-in", "sub.pem", "-noout", "-text"]);
    for expected in [
        "X509v3 Name Constraints: critical",
        "Permitted:",
        "DNS:example.test",
        "IP:10.0.0.0/255.0.0.0",
        "Excluded:",
        "CA:TRUE, pathlen:0",
        "Certificate Sign, CRL Sign",
    ] {
        assert!(text.contains(expected), "'{expected}' missing from\n{text}");
    }
}

#[test]
fn issuance_rules_are_enforced() {
    let h = hierarchy();
    let key = PrivateKey::generate(KeyType::EcP256).unwrap();

    let mut too_long = spec(name("long"), key.public_key_der(), 2000);
    too_long.not_after = OffsetDateTime::now_utc() + Duration::days(6000);
    let err = cert::build(
        &too_long,
        Issuer::Ca(&h.sub_ca),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("ends after the issuer's"), "{err}");

    let mut sub_ca = spec(name("deeper CA"), key.public_key_der(), 30);
    sub_ca.ca = Some(None);
    let err = cert::build(
        &sub_ca,
        Issuer::Ca(&h.sub_ca),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("path length"), "{err}");

    let leaf = cert::build(
        &spec(name("leaf"), key.public_key_der(), 30),
        Issuer::Ca(&h.sub_ca),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap()
    .der;
    let key = Arc::new(key);
    let err = CaSigner::new(&leaf, key.clone()).unwrap_err();
    assert!(err.to_string().contains("not a CA"), "{err}");

    let err = CaSigner::new(&h.sub, h.root_key.clone()).unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");

    let err = cert::build(
        &spec(DistinguishedName::new(), key.public_key_der(), 10),
        Issuer::Ca(&h.sub_ca),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("subject name or at least one SAN"),
        "{err}"
    );

    let mut nc_on_leaf = spec(name("x"), key.public_key_der(), 10);
    nc_on_leaf.name_constraints = Some(NameConstraints::default());
    assert!(
        cert::build(
            &nc_on_leaf,
            Issuer::Ca(&h.sub_ca),
            &certmint_pki::lint::Policy::default()
        )
        .is_err()
    );

    let err = cert::build(
        &spec(name("x"), key.public_key_der(), 10),
        Issuer::SelfSigned(h.sub_ca.signer()),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("its own key"), "{err}");
}

#[test]
fn csrs_made_by_openssl_are_read_verified_and_signed() {
    let dir = tempfile::tempdir().unwrap();
    let h = hierarchy();
    write_pem(dir.path(), "root.pem", &h.root);
    write_pem(dir.path(), "sub.pem", &h.sub);
    for (label, newkey, expected) in [
        (
            "rsa",
            vec!["-newkey", "rsa:2048"],
            KeyType::Rsa { bits: 2048 },
        ),
        (
            "ec",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyType::EcP256,
        ),
        ("ed", vec!["-newkey", "ed25519"], KeyType::Ed25519),
    ] {
        let csr_file = format!("{label}.csr");
        let mut args = vec![
            "req", "-new", "-nodes", "-keyout", "k.pem", "-out", &csr_file,
        ];
        args.extend(newkey);
        args.extend([
            "-subj",
            "/C=DE/O=Example/CN=app.example.test",
            "-addext",
            "subjectAltName=DNS:app.example.test,IP:10.0.2.7,email:a@example.test",
            "-addext",
            "keyUsage=digitalSignature",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ]);
        openssl(dir.path(), &args);
        let pem_text = std::fs::read(dir.path().join(&csr_file)).unwrap();
        let csr = Csr::parse(&pem_text).unwrap();
        assert_eq!(csr.key_type, expected);
        assert_eq!(
            csr.subject.get(NameAttribute::CommonName),
            Some("app.example.test")
        );
        assert_eq!(
            csr.subject.to_string(),
            "CN=app.example.test,O=Example,C=DE"
        );
        assert_eq!(
            csr.sans
                .iter()
                .map(SubjectAltName::to_api_string)
                .collect::<Vec<_>>(),
            [
                "dns:app.example.test",
                "ip:10.0.2.7",
                "email:a@example.test"
            ]
        );
        assert_eq!(csr.key_usage, [KeyUsage::DigitalSignature]);
        assert_eq!(csr.extended_key_usage, [ExtendedKeyUsage::ServerAuth]);

        let mut leaf = spec(csr.subject.clone(), csr.public_key_der.clone(), 90);
        leaf.sans = csr.sans.clone();
        leaf.key_usage = vec![KeyUsage::DigitalSignature];
        let der = cert::build(
            &leaf,
            Issuer::Ca(&h.sub_ca),
            &certmint_pki::lint::Policy::default(),
        )
        .unwrap()
        .der;
        write_pem(dir.path(), "leaf.pem", &der);
        let verified = openssl(
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
        assert!(verified.contains("OK"), "{verified}");
        // The certificate carries the CSR's key: openssl matches it with the private key.
        let cert_key = openssl(
            dir.path(),
            &["x509", "-in", "leaf.pem", "-noout", "-pubkey"],
        );
        let own_key = openssl(dir.path(), &["pkey", "-in", "k.pem", "-pubout"]);
        assert_eq!(cert_key, own_key);
        // And the server-side reader accepts the key openssl wrote.
        let key =
            PrivateKey::parse(&std::fs::read(dir.path().join("k.pem")).unwrap(), None).unwrap();
        assert_eq!(key.public_key_der(), csr.public_key_der);
    }
}

#[test]
fn a_csr_challenge_password_is_read_and_kept_out_of_debug() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("req.cnf"),
        "[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n\
         [dn]\nCN = device-17\n[attrs]\nchallengePassword = s3cret-Challenge\n",
    )
    .unwrap();
    openssl(
        dir.path(),
        &[
            "req", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", "k.pem", "-config",
            "req.cnf", "-out", "c.csr",
        ],
    );
    let csr = Csr::parse(&std::fs::read(dir.path().join("c.csr")).unwrap()).unwrap();
    let password = csr.challenge_password.clone().unwrap();
    assert_eq!(password.0, "s3cret-Challenge");
    assert!(!format!("{csr:?}").contains("s3cret"));
    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "rsa:2048",
            "-keyout",
            "k2.pem",
            "-subj",
            "/CN=device-18",
            "-out",
            "d.csr",
        ],
    );
    let without = Csr::parse(&std::fs::read(dir.path().join("d.csr")).unwrap()).unwrap();
    assert_eq!(without.challenge_password, None);
}

#[test]
fn bad_csrs_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "rsa:1024",
            "-keyout",
            "k.pem",
            "-out",
            "small.csr",
            "-subj",
            "/CN=small",
        ],
    );
    let err = Csr::parse(&std::fs::read(dir.path().join("small.csr")).unwrap()).unwrap_err();
    assert!(err.to_string().contains("1024 bits is too small"), "{err}");

    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-521",
            "-keyout",
            "k.pem",
            "-out",
            "p521.csr",
            "-subj",
            "/CN=p521",
        ],
    );
    let err = Csr::parse(&std::fs::read(dir.path().join("p521.csr")).unwrap()).unwrap_err();
    assert!(err.to_string().contains("curve"), "{err}");

    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            "k.pem",
            "-out",
            "good.csr",
            "-outform",
            "DER",
            "-subj",
            "/CN=good",
        ],
    );
    let mut der = std::fs::read(dir.path().join("good.csr")).unwrap();
    assert!(Csr::parse(&der).is_ok());
    // Flip a bit in the subject: the signature no longer verifies.
    let at = der.windows(4).position(|w| w == b"good").unwrap();
    der[at] ^= 0x01;
    let err = Csr::parse(&der).unwrap_err();
    assert!(
        err.to_string().contains("signature does not verify"),
        "{err}"
    );

    der.truncate(der.len() / 2);
    let err = Csr::parse(&der).unwrap_err();
    assert!(err.to_string().contains("not a valid PKCS#10"), "{err}");
    let err =
        Csr::parse(b"-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n").unwrap_err();
    assert!(err.to_string().contains("no CERTIFICATE REQUEST"), "{err}");
}

#[test]
fn server_side_csrs_are_valid_for_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate(KeyType::EcP256).unwrap();
    let sans = [SubjectAltName::parse("dns:made.example.test").unwrap()];
    let made = csr::make(&key, &name("made.example.test"), &sans).unwrap();
    std::fs::write(dir.path().join("made.csr"), made.to_pem()).unwrap();
    let text = openssl(
        dir.path(),
        &["req", "-in", "made.csr", "-noout", "-verify", "-text"],
    );
    assert!(
        text.contains("CN=made.example.test") || text.contains("CN = made.example.test"),
        "{text}"
    );
    assert!(text.contains("DNS:made.example.test"), "{text}");
}

/// A leaf of the test hierarchy, written as `file`; returns its serial (DER content octets).
fn leaf_file(h: &Hierarchy, dir: &Path, cn: &str, file: &str) -> Vec<u8> {
    let key = PrivateKey::generate(KeyType::EcP256).unwrap();
    let built = cert::build(
        &spec(name(cn), key.public_key_der(), 30),
        Issuer::Ca(&h.sub_ca),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap();
    write_pem(dir, file, &built.der);
    hex::decode(built.serial).unwrap()
}

/// What `openssl crl -text` shows of DER CRL `file`.
fn crl_text(dir: &Path, file: &str) -> String {
    openssl(
        dir,
        &["crl", "-inform", "DER", "-in", file, "-noout", "-text"],
    )
}

fn write_crl(dir: &Path, file: &str, der: &[u8]) {
    std::fs::write(dir.join(file), der).unwrap();
    openssl(
        dir,
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            file,
            "-out",
            &format!("{file}.pem"),
        ],
    );
}

#[test]
fn crls_and_deltas_are_read_and_enforced_by_openssl() {
    use certmint_pki::crl::{self, CrlSpec, Revoked};

    let dir = tempfile::tempdir().unwrap();
    let h = hierarchy();
    write_pem(dir.path(), "root.pem", &h.root);
    write_pem(dir.path(), "sub.pem", &h.sub);
    let compromised = leaf_file(
        &h,
        dir.path(),
        "compromised.example.test",
        "compromised.pem",
    );
    let held = leaf_file(&h, dir.path(), "held.example.test", "held.pem");
    leaf_file(&h, dir.path(), "good.example.test", "good.pem");

    let now = OffsetDateTime::now_utc();
    let full = CrlSpec {
        number: 7,
        this_update: now,
        next_update: now + Duration::days(7),
        delta_of: None,
        freshest_crl_urls: vec!["http://pki.example.test/crl/sub-delta.crl".into()],
    };
    let entries = [
        Revoked {
            serial: compromised.clone(),
            revoked_at: now - Duration::hours(1),
            reason: Some(1),
            invalidity_date: Some(now - Duration::days(2)),
        },
        Revoked {
            serial: held.clone(),
            revoked_at: now - Duration::minutes(30),
            reason: Some(6),
            invalidity_date: None,
        },
    ];
    write_crl(
        dir.path(),
        "full.crl",
        &crl::build(
            &full,
            &entries,
            &h.sub_ca,
            &certmint_pki::lint::Policy::default(),
        )
        .unwrap(),
    );
    let text = crl_text(dir.path(), "full.crl");
    for expected in [
        "Version 2 (0x1)",
        "Issuer: C = DE, O = certmint tests, CN = Test Issuing CA",
        "X509v3 CRL Number: \n                7",
        "X509v3 Authority Key Identifier",
        "X509v3 Freshest CRL",
        "URI:http://pki.example.test/crl/sub-delta.crl",
        &hex::encode_upper(&compromised),
        "Key Compromise",
        "Invalidity Date",
        &hex::encode_upper(&held),
        "Certificate Hold",
    ] {
        assert!(text.contains(expected), "'{expected}' missing from\n{text}");
    }
    // The CRL's AKI is the CA's SKI, as on the certificates it issues.
    let ski = Certificate::parse(&h.sub).unwrap().subject_key_id.unwrap();
    let ski_text = ski
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(
        text.contains(&ski_text),
        "AKI {ski_text} missing from\n{text}"
    );

    // openssl checks the CRL's signature against the CA and refuses what it lists.
    let verify = |leaf: &'static str, crl: &'static str| {
        [
            "verify",
            "-crl_check",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "sub.pem",
            "-CRLfile",
            crl,
            leaf,
        ]
    };
    openssl(dir.path(), &verify("good.pem", "full.crl.pem"));
    for revoked in ["compromised.pem", "held.pem"] {
        let said = openssl_fails(dir.path(), &verify(revoked, "full.crl.pem"));
        assert!(said.contains("certificate revoked"), "{revoked}: {said}");
    }

    // The hold is released: the delta says removeFromCRL; the next full CRL drops it.
    let delta = CrlSpec {
        number: 8,
        this_update: now,
        next_update: now + Duration::days(1),
        delta_of: Some(7),
        freshest_crl_urls: Vec::new(),
    };
    let released = [Revoked {
        serial: held.clone(),
        revoked_at: now - Duration::minutes(30),
        reason: Some(8),
        invalidity_date: None,
    }];
    write_crl(
        dir.path(),
        "delta.crl",
        &crl::build(
            &delta,
            &released,
            &h.sub_ca,
            &certmint_pki::lint::Policy::default(),
        )
        .unwrap(),
    );
    let text = crl_text(dir.path(), "delta.crl");
    for expected in [
        "X509v3 Delta CRL Indicator: critical",
        "Remove From CRL",
        &hex::encode_upper(&held),
    ] {
        assert!(text.contains(expected), "'{expected}' missing from\n{text}");
    }
    let next = CrlSpec {
        number: 9,
        freshest_crl_urls: Vec::new(),
        ..full.clone()
    };
    write_crl(
        dir.path(),
        "next.crl",
        &crl::build(
            &next,
            &entries[..1],
            &h.sub_ca,
            &certmint_pki::lint::Policy::default(),
        )
        .unwrap(),
    );
    openssl(dir.path(), &verify("held.pem", "next.crl.pem"));

    // An empty CRL has no list at all, and a CRL running past 2049 uses GeneralizedTime.
    let empty = CrlSpec {
        number: 10,
        next_update: OffsetDateTime::from_unix_timestamp(2_600_000_000).unwrap(),
        ..next
    };
    write_crl(
        dir.path(),
        "empty.crl",
        &crl::build(
            &empty,
            &[],
            &h.sub_ca,
            &certmint_pki::lint::Policy::default(),
        )
        .unwrap(),
    );
    let text = crl_text(dir.path(), "empty.crl");
    assert!(text.contains("No Revoked Certificates."), "{text}");
    assert!(
        text.contains("Next Update: May 22 14:13:20 2052 GMT"),
        "{text}"
    );
    let list = <x509_cert::crl::CertificateList as der::Decode>::from_der(
        &std::fs::read(dir.path().join("empty.crl")).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        list.tbs_cert_list.this_update,
        x509_cert::time::Time::UtcTime(_)
    ));
    assert!(matches!(
        list.tbs_cert_list.next_update,
        Some(x509_cert::time::Time::GeneralTime(_))
    ));
    assert_eq!(list.tbs_cert_list.revoked_certificates, None);
    openssl(dir.path(), &verify("good.pem", "empty.crl.pem"));
}

#[test]
fn bad_crl_requests_are_refused_with_the_reason() {
    use certmint_pki::crl::{self, CrlSpec, Revoked};

    let h = hierarchy();
    let now = OffsetDateTime::now_utc();
    let valid = CrlSpec {
        number: 2,
        this_update: now,
        next_update: now + Duration::days(1),
        delta_of: None,
        freshest_crl_urls: Vec::new(),
    };
    let entry = |serial: Vec<u8>, reason| Revoked {
        serial,
        revoked_at: now,
        reason,
        invalidity_date: None,
    };
    for (crl_spec, entries, expected) in [
        (
            CrlSpec {
                next_update: now,
                ..valid.clone()
            },
            vec![],
            "after its thisUpdate",
        ),
        (
            CrlSpec {
                delta_of: Some(2),
                ..valid.clone()
            },
            vec![],
            "must be higher",
        ),
        (
            CrlSpec {
                delta_of: Some(1),
                freshest_crl_urls: vec!["http://x.test/d.crl".into()],
                ..valid.clone()
            },
            vec![],
            "fresher",
        ),
        (
            valid.clone(),
            vec![entry(vec![1], Some(7))],
            "not an RFC 5280 CRLReason",
        ),
        (
            valid.clone(),
            vec![entry(Vec::new(), None)],
            "needs a serial",
        ),
        (
            valid.clone(),
            vec![entry(vec![0x7f; 21], None)],
            "20 octets",
        ),
    ] {
        let err = crl::build(
            &crl_spec,
            &entries,
            &h.sub_ca,
            &certmint_pki::lint::Policy::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
    // An unspecified reason is left out, not written.
    let der = crl::build(
        &valid,
        &[entry(vec![1], Some(0))],
        &h.sub_ca,
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap();
    let list = <x509_cert::crl::CertificateList as der::Decode>::from_der(&der).unwrap();
    let entries = list.tbs_cert_list.revoked_certificates.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].crl_entry_extensions, None);

    // A CA whose key usage leaves out cRLSign cannot sign CRLs.
    let key = Arc::new(PrivateKey::generate(KeyType::EcP256).unwrap());
    let mut no_crl = spec(name("No CRL CA"), key.public_key_der(), 30);
    no_crl.ca = Some(Some(0));
    no_crl.key_usage = vec![KeyUsage::KeyCertSign, KeyUsage::DigitalSignature];
    let root = CaSigner::new(&h.root, h.root_key.clone()).unwrap();
    let no_crl = cert::build(
        &no_crl,
        Issuer::Ca(&root),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap();
    let no_crl = CaSigner::new(&no_crl.der, key).unwrap();
    let err = crl::build(&valid, &[], &no_crl, &certmint_pki::lint::Policy::default()).unwrap_err();
    assert!(
        err.to_string().contains("does not allow signing CRLs"),
        "{err}"
    );
}
