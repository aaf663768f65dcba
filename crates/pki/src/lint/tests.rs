//! One deliberately broken certificate or CRL per rule, each caught; and random valid
//! certificates that pass with no finding at all.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;

use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{BitString, GeneralizedTime, Ia5String, OctetString};
use der::{Decode, Encode};
use time::{Duration, OffsetDateTime};
use x509_cert::crl::{RevokedCert, TbsCertList};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies,
    CrlDistributionPoints, CrlReason, ExtendedKeyUsage as Eku, KeyUsage as KuExt, KeyUsages,
    NameConstraints, SubjectAltName as SanExt, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use super::certificate::Tbs;
use super::*;
use crate::cert::{self, CaSigner, ExtendedKeyUsage, Issuer, KeyUsage};
use crate::crl::{CrlSpec, Revoked};
use crate::{CertSpec, DistinguishedName, KeyType, NameAttribute, PrivateKey, SubjectAltName};

fn cn(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.set(NameAttribute::CommonName, name).unwrap();
    dn
}

struct Fixture {
    ca: CaSigner,
    ca_tbs: Vec<u8>,
    leaf_tbs: Vec<u8>,
}

fn fixture() -> Fixture {
    let now = OffsetDateTime::now_utc();
    let ca_key = Arc::new(PrivateKey::generate(KeyType::EcP256).unwrap());
    let mut root = CertSpec::new(
        cn("Lint Root"),
        ca_key.public_key_der(),
        crate::random::serial().unwrap(),
        now - Duration::minutes(5),
        now + Duration::days(3650),
    );
    root.ca = Some(Some(1));
    let prepared = cert::prepare(&root, Issuer::SelfSigned(ca_key.as_ref())).unwrap();
    let ca_tbs = prepared.tbs().to_vec();
    let root_der = prepared
        .lint(&Policy::default())
        .unwrap()
        .sign()
        .unwrap()
        .der;
    let ca = CaSigner::new(&root_der, ca_key).unwrap();

    let leaf_key = PrivateKey::generate(KeyType::EcP256).unwrap();
    let leaf = CertSpec {
        sans: vec![SubjectAltName::parse("dns:www.example.test").unwrap()],
        key_usage: vec![KeyUsage::DigitalSignature],
        extended_key_usage: vec![ExtendedKeyUsage::ServerAuth],
        crl_urls: vec!["http://pki.example.test/crl".into()],
        ocsp_urls: vec!["http://pki.example.test/ocsp".into()],
        ..CertSpec::new(
            cn("www.example.test"),
            leaf_key.public_key_der(),
            crate::random::serial().unwrap(),
            now - Duration::minutes(5),
            now + Duration::days(10),
        )
    };
    let leaf_tbs = cert::prepare(&leaf, Issuer::Ca(&ca))
        .unwrap()
        .tbs()
        .to_vec();
    Fixture {
        ca,
        ca_tbs,
        leaf_tbs,
    }
}

fn names(report: &Report) -> BTreeSet<&'static str> {
    report.findings.iter().map(|f| f.rule.name).collect()
}

fn mutate(tbs: &[u8], change: impl FnOnce(&mut Tbs)) -> Vec<u8> {
    let mut parsed = Tbs::from_der(tbs).unwrap();
    change(&mut parsed);
    parsed.to_der().unwrap()
}

fn extensions(tbs: &mut Tbs) -> &mut Vec<Extension> {
    tbs.extensions.get_or_insert_with(Vec::new)
}

fn find(tbs: &mut Tbs, oid: ObjectIdentifier) -> &mut Extension {
    extensions(tbs)
        .iter_mut()
        .find(|e| e.extn_id == oid)
        .unwrap()
}

fn remove(tbs: &mut Tbs, oid: ObjectIdentifier) {
    extensions(tbs).retain(|e| e.extn_id != oid);
}

fn set(tbs: &mut Tbs, oid: ObjectIdentifier, critical: bool, value: &impl Encode) {
    remove(tbs, oid);
    extensions(tbs).push(ext(oid, critical, value));
}

fn ext(oid: ObjectIdentifier, critical: bool, value: &impl Encode) -> Extension {
    Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der().unwrap()).unwrap(),
    }
}

fn raw_ext(oid: ObjectIdentifier, critical: bool, value: &[u8]) -> Extension {
    Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_vec()).unwrap(),
    }
}

fn ku(bits: &[KeyUsages]) -> KuExt {
    KuExt(bits.iter().fold(Default::default(), |set, bit| set | *bit))
}

fn serial(der: &[u8]) -> SerialNumber<super::certificate::AnySerial> {
    SerialNumber::from_der(der).unwrap()
}

fn generalized(year: i32) -> Time {
    let at = OffsetDateTime::now_utc().replace_year(year).unwrap();
    Time::GeneralTime(
        GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
            u64::try_from(at.unix_timestamp()).unwrap(),
        ))
        .unwrap(),
    )
}

fn dns(name: &str) -> GeneralName {
    GeneralName::DnsName(Ia5String::new(name).unwrap())
}

fn permitting(base: GeneralName) -> NameConstraints {
    NameConstraints {
        permitted_subtrees: Some(vec![GeneralSubtree {
            base,
            minimum: 0,
            maximum: None,
        }]),
        excluded_subtrees: None,
    }
}

const OTHER_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1");
const NOCHECK: ObjectIdentifier = const_oid::db::rfc6960::ID_PKIX_OCSP_NOCHECK;
const SERVER_AUTH: ObjectIdentifier = const_oid::db::rfc5280::ID_KP_SERVER_AUTH;
const CODE_SIGNING: ObjectIdentifier = const_oid::db::rfc5280::ID_KP_CODE_SIGNING;
const ANY_EKU: ObjectIdentifier = const_oid::db::rfc5280::ANY_EXTENDED_KEY_USAGE;

/// A certificate case: which TBS, how to break it, which policy and signer to lint with.
struct Case {
    rule: &'static Rule,
    ca: bool,
    change: Box<dyn FnOnce(&mut Tbs)>,
    policy: Policy,
    signer: KeyType,
}

fn case(rule: &'static Rule, ca: bool, change: impl FnOnce(&mut Tbs) + 'static) -> Case {
    Case {
        rule,
        ca,
        change: Box::new(change),
        policy: Policy::default(),
        signer: KeyType::EcP256,
    }
}

fn certificate_cases() -> Vec<Case> {
    vec![
        case(&CERT_VERSION, false, |t| {
            t.version = x509_cert::Version::V1;
        }),
        case(&CERT_SERIAL_LENGTH, false, |t| {
            let mut der = vec![0x02, 21];
            der.extend([0x11; 21]);
            t.serial_number = serial(&der);
        }),
        case(&CERT_SERIAL_POSITIVE, false, |t| {
            t.serial_number = serial(&[0x02, 0x01, 0xff]);
        }),
        Case {
            signer: KeyType::EcP384,
            ..case(&CERT_SIGNATURE_ALGORITHM, false, |_| {})
        },
        case(&CERT_ISSUER_EMPTY, false, |t| t.issuer = Name::default()),
        case(&CERT_TIME_ENCODING, false, |t| {
            t.validity.not_after = generalized(2040);
        }),
        case(&CERT_VALIDITY_ORDER, false, |t| {
            t.validity.not_after = t.validity.not_before;
        }),
        Case {
            policy: Policy::default().with_max_validity(Duration::days(1)),
            ..case(&CERT_VALIDITY_CAP, false, |_| {})
        },
        case(&CERT_SUBJECT_EMPTY, false, |t| t.subject = Name::default()),
        case(&CERT_SUBJECT_ATTRIBUTE, false, |t| {
            t.subject = Name::from_str(&format!("CN={}", "a".repeat(65))).unwrap();
        }),
        case(&CERT_UNIQUE_IDS, false, |t| {
            t.subject_unique_id = Some(BitString::from_bytes(&[1]).unwrap());
        }),
        case(&CERT_PUBLIC_KEY, false, |t| {
            t.subject_public_key_info.algorithm.oid = OTHER_OID;
        }),
        case(&EXT_DUPLICATE, false, |t| {
            let first = extensions(t)[0].clone();
            extensions(t).push(first);
        }),
        case(&EXT_UNKNOWN_CRITICAL, false, |t| {
            extensions(t).push(raw_ext(OTHER_OID, true, &[0x05, 0x00]));
        }),
        case(&EXT_MALFORMED, false, |t| {
            find(t, KuExt::OID).extn_value = OctetString::new(vec![0xff]).unwrap();
        }),
        case(&SKI_MISSING_CA, true, |t| {
            remove(t, SubjectKeyIdentifier::OID)
        }),
        case(&SKI_MISSING, false, |t| {
            remove(t, SubjectKeyIdentifier::OID)
        }),
        case(&SKI_CRITICAL, false, |t| {
            find(t, SubjectKeyIdentifier::OID).critical = true;
        }),
        case(&AKI_MISSING, false, |t| {
            remove(t, AuthorityKeyIdentifier::OID)
        }),
        case(&AKI_CRITICAL, false, |t| {
            find(t, AuthorityKeyIdentifier::OID).critical = true;
        }),
        case(&BASIC_CONSTRAINTS_CRITICAL, true, |t| {
            find(t, BasicConstraints::OID).critical = false;
        }),
        case(&CA_KEY_USAGE, true, |t| remove(t, KuExt::OID)),
        case(&KEY_CERT_SIGN_LEAF, false, |t| {
            let usages = ku(&[KeyUsages::DigitalSignature, KeyUsages::KeyCertSign]);
            set(t, KuExt::OID, true, &usages);
        }),
        case(&PATH_LEN_LEAF, false, |t| {
            let bc = BasicConstraints {
                ca: false,
                path_len_constraint: Some(0),
            };
            set(t, BasicConstraints::OID, true, &bc);
        }),
        case(&KEY_USAGE_EMPTY, false, |t| {
            find(t, KuExt::OID).extn_value = OctetString::new(vec![0x03, 0x01, 0x00]).unwrap();
        }),
        case(&KEY_USAGE_CRITICAL, false, |t| {
            find(t, KuExt::OID).critical = false;
        }),
        case(&KEY_USAGE_KEY_TYPE, false, |t| {
            let usages = ku(&[KeyUsages::DigitalSignature, KeyUsages::KeyEncipherment]);
            set(t, KuExt::OID, true, &usages);
        }),
        case(&KEY_USAGE_AGREEMENT, false, |t| {
            let usages = ku(&[KeyUsages::DigitalSignature, KeyUsages::EncipherOnly]);
            set(t, KuExt::OID, true, &usages);
        }),
        case(&EKU_EMPTY, false, |t| {
            find(t, Eku::OID).extn_value = OctetString::new(vec![0x30, 0x00]).unwrap();
        }),
        case(&EKU_KEY_USAGE, false, |t| {
            set(t, KuExt::OID, true, &ku(&[KeyUsages::KeyAgreement]));
            set(t, Eku::OID, false, &Eku(vec![CODE_SIGNING]));
        }),
        case(&EKU_ANY_CRITICAL, false, |t| {
            set(t, Eku::OID, true, &Eku(vec![SERVER_AUTH, ANY_EKU]));
        }),
        case(&NAME_CONSTRAINTS_LEAF, false, |t| {
            let nc = permitting(dns("example.test"));
            set(t, NameConstraints::OID, true, &nc);
        }),
        case(&NAME_CONSTRAINTS_CRITICAL, true, |t| {
            let nc = permitting(dns("example.test"));
            set(t, NameConstraints::OID, false, &nc);
        }),
        case(&NAME_CONSTRAINTS_EMPTY, true, |t| {
            let nc = NameConstraints {
                permitted_subtrees: None,
                excluded_subtrees: None,
            };
            set(t, NameConstraints::OID, true, &nc);
        }),
        case(&NAME_CONSTRAINTS_IP, true, |t| {
            let nc = permitting(GeneralName::IpAddress(
                OctetString::new(vec![10, 0, 0, 0]).unwrap(),
            ));
            set(t, NameConstraints::OID, true, &nc);
        }),
        case(&SAN_EMPTY, false, |t| {
            find(t, SanExt::OID).extn_value = OctetString::new(vec![0x30, 0x00]).unwrap();
        }),
        case(&SAN_CRITICAL, false, |t| {
            find(t, SanExt::OID).critical = true
        }),
        case(&SAN_DNS, false, |t| {
            set(
                t,
                SanExt::OID,
                false,
                &SanExt(vec![dns("under_score.example")]),
            );
        }),
        case(&SAN_IP, false, |t| {
            let ip = GeneralName::IpAddress(OctetString::new(vec![10, 0, 0, 0, 1]).unwrap());
            set(t, SanExt::OID, false, &SanExt(vec![dns("ok.example"), ip]));
        }),
        case(&SAN_EMAIL, false, |t| {
            let email = GeneralName::Rfc822Name(Ia5String::new("no-at-sign").unwrap());
            set(
                t,
                SanExt::OID,
                false,
                &SanExt(vec![dns("ok.example"), email]),
            );
        }),
        case(&SAN_URI, false, |t| {
            let uri = GeneralName::UniformResourceIdentifier(Ia5String::new("noscheme").unwrap());
            set(t, SanExt::OID, false, &SanExt(vec![dns("ok.example"), uri]));
        }),
        case(&POLICIES_DUPLICATE, false, |t| {
            let policy = PolicyInformation {
                policy_identifier: OTHER_OID,
                policy_qualifiers: None,
            };
            let policies = CertificatePolicies(vec![policy.clone(), policy]);
            set(t, CertificatePolicies::OID, false, &policies);
        }),
        case(&ACCESS_URI, false, |t| {
            let point = DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![
                    GeneralName::UniformResourceIdentifier(Ia5String::new("not a uri").unwrap()),
                ])),
                reasons: None,
                crl_issuer: None,
            };
            set(
                t,
                CrlDistributionPoints::OID,
                false,
                &CrlDistributionPoints(vec![point]),
            );
        }),
        case(&AIA_CRITICAL, false, |t| {
            find(t, AuthorityInfoAccessSyntax::OID).critical = true;
        }),
        case(&OCSP_NOCHECK, false, |t| {
            extensions(t).push(raw_ext(NOCHECK, false, &[0x05, 0x00]));
        }),
        case(&TLS_SERVER_SAN, false, |t| remove(t, SanExt::OID)),
    ]
}

#[test]
fn every_certificate_rule_catches_its_broken_certificate() {
    let fixture = fixture();
    for case in certificate_cases() {
        let base = if case.ca {
            &fixture.ca_tbs
        } else {
            &fixture.leaf_tbs
        };
        let broken = mutate(base, case.change);
        let report = certificate(&broken, case.signer, &case.policy);
        let finding = report
            .findings
            .iter()
            .find(|f| f.rule == case.rule)
            .unwrap_or_else(|| panic!("{} not caught; found {:?}", case.rule.name, names(&report)));
        assert_eq!(finding.severity, case.rule.severity, "{}", case.rule.name);
    }
    let garbage = certificate(b"\x30\x03\x02\x01", KeyType::EcP256, &Policy::default());
    assert_eq!(names(&garbage), BTreeSet::from(["cert_der"]));
}

#[test]
fn the_unbroken_fixtures_have_no_findings() {
    let fixture = fixture();
    for tbs in [&fixture.ca_tbs, &fixture.leaf_tbs] {
        let report = certificate(tbs, KeyType::EcP256, &Policy::default());
        assert!(report.findings.is_empty(), "{report}");
    }
}

#[test]
fn a_downgraded_rule_warns_and_signs() {
    let fixture = fixture();
    let broken = mutate(&fixture.leaf_tbs, |t| remove(t, SanExt::OID));
    let strict = certificate(&broken, KeyType::EcP256, &Policy::default());
    assert!(strict.has_errors());
    let lenient = Policy::default().downgrading(&["tls_server_san"]).unwrap();
    let report = certificate(&broken, KeyType::EcP256, &lenient);
    assert!(!report.has_errors(), "{report}");
    assert_eq!(
        report.warnings().map(|f| f.rule.name).collect::<Vec<_>>(),
        ["tls_server_san"]
    );
    assert!(Policy::default().downgrading(&["no_such_rule"]).is_err());
}

fn crl_fixture(fixture: &Fixture, delta: bool) -> Vec<u8> {
    let now = OffsetDateTime::now_utc();
    let spec = CrlSpec {
        number: 7,
        this_update: now,
        next_update: now + Duration::days(1),
        delta_of: delta.then_some(6),
        freshest_crl_urls: Vec::new(),
    };
    let entries = [
        Revoked {
            serial: vec![0x01, 0x02],
            revoked_at: now,
            reason: Some(1),
            invalidity_date: Some(now),
        },
        Revoked {
            serial: vec![0x03],
            revoked_at: now,
            reason: None,
            invalidity_date: None,
        },
    ];
    let der = crate::crl::build(&spec, &entries, &fixture.ca, &Policy::default()).unwrap();
    let crl = x509_cert::crl::CertificateList::from_der(&der).unwrap();
    crl.tbs_cert_list.to_der().unwrap()
}

fn crl_extensions(t: &mut TbsCertList) -> &mut Vec<Extension> {
    t.crl_extensions.get_or_insert_with(Vec::new)
}

fn first_entry(t: &mut TbsCertList) -> &mut RevokedCert {
    &mut t.revoked_certificates.as_mut().unwrap()[0]
}

fn reason(code: CrlReason, critical: bool) -> Extension {
    ext(const_oid::db::rfc5280::ID_CE_CRL_REASONS, critical, &code)
}

type CrlChange = Box<dyn FnOnce(&mut TbsCertList)>;

fn crl_cases() -> Vec<(&'static Rule, CrlChange)> {
    use const_oid::db::rfc5280::{
        ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_DELTA_CRL_INDICATOR,
    };
    let drop_ext = |oid: ObjectIdentifier| -> CrlChange {
        Box::new(move |t| crl_extensions(t).retain(|e| e.extn_id != oid))
    };
    vec![
        (
            &CRL_VERSION,
            Box::new(|t| t.version = x509_cert::Version::V1),
        ),
        (&CRL_ISSUER_EMPTY, Box::new(|t| t.issuer = Name::default())),
        (
            &CRL_TIME_ENCODING,
            Box::new(|t| t.this_update = generalized(2030)),
        ),
        (&CRL_NEXT_UPDATE, Box::new(|t| t.next_update = None)),
        (
            &CRL_EMPTY_LIST,
            Box::new(|t| t.revoked_certificates = Some(Vec::new())),
        ),
        (
            &CRL_ENTRY_SERIAL,
            Box::new(|t| {
                first_entry(t).serial_number = SerialNumber::from_der(&[0x02, 0x01, 0x80]).unwrap();
            }),
        ),
        (
            &CRL_REASON,
            Box::new(|t| {
                first_entry(t).crl_entry_extensions =
                    Some(vec![reason(CrlReason::RemoveFromCRL, false)]);
            }),
        ),
        (
            &CRL_REASON_UNSPECIFIED,
            Box::new(|t| {
                first_entry(t).crl_entry_extensions =
                    Some(vec![reason(CrlReason::Unspecified, false)]);
            }),
        ),
        (
            &CRL_ENTRY_EXTENSION,
            Box::new(|t| {
                first_entry(t).crl_entry_extensions =
                    Some(vec![reason(CrlReason::KeyCompromise, true)]);
            }),
        ),
        (&CRL_NUMBER, drop_ext(ID_CE_CRL_NUMBER)),
        (&CRL_AKI, drop_ext(ID_CE_AUTHORITY_KEY_IDENTIFIER)),
        (
            &CRL_DELTA,
            Box::new(|t| {
                let base = der::asn1::Uint::new(&[6]).unwrap();
                crl_extensions(t).push(ext(ID_CE_DELTA_CRL_INDICATOR, false, &base));
            }),
        ),
        (
            &CRL_EXTENSION,
            Box::new(|t| {
                let first = crl_extensions(t)[0].clone();
                crl_extensions(t).push(first);
            }),
        ),
    ]
}

#[test]
fn every_crl_rule_catches_its_broken_crl() {
    let fixture = fixture();
    let base = crl_fixture(&fixture, false);
    for (rule, change) in crl_cases() {
        let mut tbs = TbsCertList::from_der(&base).unwrap();
        change(&mut tbs);
        let report = crl(&tbs.to_der().unwrap(), KeyType::EcP256, &Policy::default());
        assert!(
            report.findings.iter().any(|f| f.rule == rule),
            "{} not caught; found {:?}",
            rule.name,
            names(&report)
        );
    }
    let report = crl(&base, KeyType::EcP384, &Policy::default());
    assert_eq!(names(&report), BTreeSet::from(["crl_signature_algorithm"]));
    let garbage = crl(b"\x30\x00", KeyType::EcP256, &Policy::default());
    assert_eq!(names(&garbage), BTreeSet::from(["crl_der"]));
    for delta in [false, true] {
        let report = crl(
            &crl_fixture(&fixture, delta),
            KeyType::EcP256,
            &Policy::default(),
        );
        assert!(report.findings.is_empty(), "{report}");
    }
}

#[test]
fn every_rule_has_a_broken_case() {
    let mut covered: BTreeSet<&str> = certificate_cases().iter().map(|c| c.rule.name).collect();
    covered.extend(crl_cases().iter().map(|(r, _)| r.name));
    covered.extend(["cert_der", "crl_der", "crl_signature_algorithm"]);
    let all: BTreeSet<&str> = RULES.iter().map(|r| r.name).collect();
    assert_eq!(
        all.difference(&covered).collect::<Vec<_>>(),
        Vec::<&&str>::new()
    );
    assert_eq!(RULES.len(), all.len(), "rule names are unique");
}

/// A small deterministic generator, so that a failure names the seed that made it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn chance(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn label(&mut self) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let len = 1 + self.below(12);
        let mut label: String = (0..len)
            .map(|_| char::from(CHARS[self.below(CHARS.len())]))
            .collect();
        if len > 2 && self.chance() {
            label.insert(1, '-');
        }
        label
    }
}

fn random_spec(rng: &mut Rng, key: &PrivateKey) -> CertSpec {
    let now = OffsetDateTime::now_utc();
    let mut subject = DistinguishedName::new();
    let attributes = [
        (NameAttribute::CommonName, rng.label()),
        (NameAttribute::Organization, format!("Org {}", rng.label())),
        (NameAttribute::OrganizationalUnit, rng.label()),
        (NameAttribute::Country, "DE".to_owned()),
        (NameAttribute::Locality, format!("Town, {}", rng.label())),
    ];
    for (attribute, value) in attributes {
        if rng.chance() {
            subject.set(attribute, &value).unwrap();
        }
    }
    let mut sans = Vec::new();
    for _ in 0..rng.below(5) {
        let domain = format!("{}.{}.test", rng.label(), rng.label());
        let san = match rng.below(5) {
            0 => SubjectAltName::Dns(format!("*.{domain}")),
            1 => SubjectAltName::Ip(std::net::IpAddr::from([10, 0, 0, rng.below(250) as u8])),
            2 => SubjectAltName::Email(format!("{}@{domain}", rng.label())),
            3 => SubjectAltName::Uri(format!("https://{domain}/{}", rng.label())),
            _ => SubjectAltName::Dns(domain),
        };
        sans.push(san);
    }
    if subject.is_empty() && sans.is_empty() {
        subject
            .set(NameAttribute::CommonName, &rng.label())
            .unwrap();
    }
    let purposes = [
        (ExtendedKeyUsage::ServerAuth, KeyUsage::DigitalSignature),
        (ExtendedKeyUsage::ClientAuth, KeyUsage::DigitalSignature),
        (ExtendedKeyUsage::CodeSigning, KeyUsage::DigitalSignature),
        (
            ExtendedKeyUsage::EmailProtection,
            KeyUsage::ContentCommitment,
        ),
        (ExtendedKeyUsage::TimeStamping, KeyUsage::ContentCommitment),
    ];
    let mut spec = CertSpec::new(
        subject,
        key.public_key_der(),
        crate::random::serial().unwrap(),
        now - Duration::minutes(5),
        now + Duration::days(1 + rng.below(3000) as i64),
    );
    for (purpose, usage) in purposes {
        let is_server = purpose == ExtendedKeyUsage::ServerAuth;
        if rng.chance() && (!is_server || !sans.is_empty()) {
            spec.extended_key_usage.push(purpose);
            if !spec.key_usage.contains(&usage) {
                spec.key_usage.push(usage);
            }
        }
    }
    if rng.chance() {
        spec.key_usage.push(KeyUsage::KeyAgreement);
    }
    if rng.chance() {
        spec.crl_urls
            .push(format!("http://{}.test/crl", rng.label()));
        spec.ocsp_urls
            .push(format!("http://{}.test/ocsp", rng.label()));
    }
    if rng.chance() {
        spec.ca = Some(rng.chance().then_some(0));
        spec.key_usage.clear();
        spec.extended_key_usage.clear();
    }
    spec.sans = sans;
    spec
}

#[test]
fn random_valid_certificates_have_no_findings() {
    let fixture = fixture();
    let keys: Vec<PrivateKey> = [KeyType::EcP256, KeyType::Ed25519, KeyType::EcP384]
        .into_iter()
        .map(|k| PrivateKey::generate(k).unwrap())
        .collect();
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let key = &keys[rng.below(keys.len())];
        let spec = random_spec(&mut rng, key);
        let prepared = cert::prepare(&spec, Issuer::Ca(&fixture.ca))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let linted = prepared
            .lint(&Policy::default())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(
            linted.report().findings.is_empty(),
            "seed {seed}: {}",
            linted.report()
        );
        linted.sign().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}
