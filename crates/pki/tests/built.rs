//! What `cert::build` says it built is what parsing the certificate reads: issuance stores
//! the former without parsing its own output back, so the two must never drift apart.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::process::Command;
use std::sync::Arc;

use certmint_pki::cert::{self, Built, CaSigner};
use certmint_pki::inspect::Certificate;
use certmint_pki::{
    CertSpec, DistinguishedName, Issuer, KeyType, NameAttribute, PrivateKey, SubjectAltName, pem,
    random,
};
use time::{Duration, OffsetDateTime};

fn spec(subject: DistinguishedName, key: &PrivateKey, serial: [u8; 16]) -> CertSpec {
    let now = OffsetDateTime::now_utc();
    CertSpec::new(
        subject,
        key.public_key_der(),
        serial,
        now - Duration::minutes(5),
        now + Duration::days(10),
    )
}

fn cn(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.set(NameAttribute::CommonName, name).unwrap();
    dn
}

/// Asserts that `built` holds what parsing its DER reads.
fn assert_read_back(built: &Built) {
    let read = Certificate::parse(&built.der).unwrap();
    let from_der = Built {
        der: read.der.clone(),
        subject: read.subject.clone(),
        common_name: read.common_name.clone(),
        issuer: read.issuer.clone(),
        serial: read.serial.clone(),
        not_before: read.not_before,
        not_after: read.not_after,
        sans: read.sans.clone(),
        is_ca: read.is_ca,
        key_type: read.key_type.unwrap(),
        signature_algorithm: read.signature_algorithm.clone(),
        subject_key_id: read.subject_key_id.clone().unwrap(),
        authority_key_id: read.authority_key_id.clone(),
        fingerprint_sha256: read.fingerprint_sha256.clone(),
    };
    assert_eq!(built, &from_der);
}

#[test]
fn built_fields_are_what_parsing_reads() {
    // A zero serial is not positive (RFC 5280 §4.1.2.2): the linter refuses it (see
    // `a_zero_serial_is_never_signed`).
    let mut serials = vec![[0xff; 16], [0x7f; 16], [0x01; 16]];
    let mut leading_zeros = [0u8; 16];
    leading_zeros[2] = 0x80;
    leading_zeros[15] = 0x01;
    serials.push(leading_zeros);
    leading_zeros[2] = 0x7f;
    serials.push(leading_zeros);
    serials.push(random::serial().unwrap());

    for root_type in [
        KeyType::EcP384,
        KeyType::EcP256,
        KeyType::Ed25519,
        KeyType::Rsa { bits: 2048 },
    ] {
        let root_key = Arc::new(PrivateKey::generate(root_type).unwrap());
        let mut root_spec = spec(
            cn("Root, \"quoted\" + more"),
            &root_key,
            random::serial().unwrap(),
        );
        root_spec.ca = Some(None);
        root_spec.not_after += Duration::days(3650);
        let root = cert::build(
            &root_spec,
            Issuer::SelfSigned(root_key.as_ref()),
            &certmint_pki::lint::Policy::default(),
        )
        .unwrap();
        assert_read_back(&root);
        let ca = CaSigner::new(&root.der, root_key).unwrap();

        for (i, serial) in serials.iter().enumerate() {
            let key_type = [
                KeyType::EcP256,
                KeyType::EcP384,
                KeyType::Ed25519,
                KeyType::Rsa { bits: 2048 },
            ][i % 4];
            let key = PrivateKey::generate(key_type).unwrap();
            let mut subject = DistinguishedName::new();
            for (attribute, value) in [
                (NameAttribute::Country, "DE"),
                (NameAttribute::State, "Berlin"),
                (NameAttribute::Locality, " leading and trailing "),
                (NameAttribute::Organization, "Bits, Bytes & <Co>; Ltd."),
                (NameAttribute::OrganizationalUnit, "#hash\\back"),
                (NameAttribute::CommonName, "höst.example.test"),
                (NameAttribute::EmailAddress, "ops@example.test"),
                (NameAttribute::SerialNumber, "4711"),
            ]
            .iter()
            .take(1 + i % 8)
            {
                subject.set(*attribute, value).unwrap();
            }
            let mut leaf = spec(subject, &key, *serial);
            leaf.sans = [
                "dns:www.example.test",
                "dns:*.api.example.test",
                "ip:10.1.2.3",
                "ip:2001:db8::1",
                "email:ops@example.test",
                "uri:https://www.example.test/id?x=1",
            ]
            .iter()
            .take(i % 7)
            .map(|s| SubjectAltName::parse(s).unwrap())
            .collect();
            if i == 3 {
                leaf.ca = Some(Some(0));
            }
            assert_read_back(
                &cert::build(
                    &leaf,
                    Issuer::Ca(&ca),
                    &certmint_pki::lint::Policy::default(),
                )
                .unwrap(),
            );
        }
        // A certificate with no subject, only SANs.
        let key = PrivateKey::generate(KeyType::EcP256).unwrap();
        let mut bare = spec(DistinguishedName::new(), &key, random::serial().unwrap());
        bare.sans = vec![SubjectAltName::parse("dns:bare.example.test").unwrap()];
        assert_read_back(
            &cert::build(
                &bare,
                Issuer::Ca(&ca),
                &certmint_pki::lint::Policy::default(),
            )
            .unwrap(),
        );
    }
}

/// A CA certificate without a subject key identifier (made by openssl): the authority key
/// identifier of what it signs is derived from its key, as rcgen does.
#[test]
fn certificates_from_a_ca_without_a_key_identifier_say_what_they_carry() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/O=Old School/CN=No SKI CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-addext",
            "subjectKeyIdentifier=none",
            "-addext",
            "authorityKeyIdentifier=none",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("the openssl command is required for this test: {e}"));
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ca_der = pem::find_blocks(&std::fs::read(dir.path().join("ca.pem")).unwrap())
        .unwrap()
        .remove(0)
        .der;
    assert_eq!(Certificate::parse(&ca_der).unwrap().subject_key_id, None);
    let ca_key =
        PrivateKey::parse(&std::fs::read(dir.path().join("ca.key")).unwrap(), None).unwrap();
    let ca = CaSigner::new(&ca_der, Arc::new(ca_key)).unwrap();

    let key = PrivateKey::generate(KeyType::EcP256).unwrap();
    let leaf = cert::build(
        &spec(cn("leaf.example.test"), &key, random::serial().unwrap()),
        Issuer::Ca(&ca),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap();
    assert!(leaf.authority_key_id.is_some());
    assert_eq!(leaf.issuer, "CN=No SKI CA,O=Old School");
    assert_read_back(&leaf);
}

#[test]
fn a_zero_serial_is_never_signed() {
    let key = Arc::new(PrivateKey::generate(KeyType::EcP256).unwrap());
    let mut root = spec(cn("Zero"), &key, [0u8; 16]);
    root.ca = Some(None);
    let err = cert::build(
        &root,
        Issuer::SelfSigned(key.as_ref()),
        &certmint_pki::lint::Policy::default(),
    )
    .unwrap_err();
    let certmint_pki::Error::Lint(report) = err else {
        panic!("expected a lint refusal, got {err}");
    };
    assert_eq!(report.rule_names(), ["cert_serial_positive"]);
}
