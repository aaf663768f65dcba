//! Lints a to-be-signed certificate.

use const_oid::db::rfc5280::{
    ANY_EXTENDED_KEY_USAGE as ANY_EKU, ID_KP_CLIENT_AUTH, ID_KP_CODE_SIGNING,
    ID_KP_EMAIL_PROTECTION, ID_KP_OCSP_SIGNING, ID_KP_SERVER_AUTH, ID_KP_TIME_STAMPING,
};
use const_oid::db::rfc6960::ID_PKIX_OCSP_NOCHECK;
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::certificate::{Profile, TbsCertificateInner, Version};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage as KeyUsageExt, KeyUsages, NameConstraints,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::Name;

use super::*;
use crate::cert::KeyUsage;
use crate::keys::{KeyType, spki_key_type};
use crate::name::{NameAttribute, check_dns_name, check_email};

/// Decodes serials of any length, so that the linter can say what is wrong with one instead
/// of failing to read the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnySerial;

impl Profile for AnySerial {
    fn check_serial_number(_: &x509_cert::serial_number::SerialNumber<Self>) -> der::Result<()> {
        Ok(())
    }
}

/// A to-be-signed certificate as the linter reads it.
pub(crate) type Tbs = TbsCertificateInner<AnySerial>;

/// The extensions certmint writes and this linter understands; any other one marked
/// critical would make relying parties refuse the certificate.
const KNOWN: [ObjectIdentifier; 11] = [
    SubjectKeyIdentifier::OID,
    AuthorityKeyIdentifier::OID,
    KeyUsageExt::OID,
    ExtendedKeyUsage::OID,
    BasicConstraints::OID,
    SubjectAltName::OID,
    NameConstraints::OID,
    CertificatePolicies::OID,
    CrlDistributionPoints::OID,
    AuthorityInfoAccessSyntax::OID,
    ID_PKIX_OCSP_NOCHECK,
];

/// Lints the DER TBSCertificate `tbs`, which a key of type `signer` is about to sign.
pub(crate) fn certificate(tbs: &[u8], signer: KeyType, policy: &Policy) -> Report {
    let mut linter = Linter::new(policy);
    match Tbs::from_der(tbs) {
        Ok(tbs) => lint(&mut linter, &tbs, signer),
        Err(e) => linter.flag(&CERT_DER, e.to_string()),
    }
    linter.finish()
}

/// What the extensions say, once decoded.
#[derive(Default)]
struct Extensions<'a> {
    basic_constraints: Option<(&'a Extension, BasicConstraints)>,
    key_usage: Option<(&'a Extension, Vec<KeyUsage>)>,
    eku: Option<(&'a Extension, Vec<ObjectIdentifier>)>,
    san: Option<(&'a Extension, Vec<GeneralName>)>,
    ski: Option<&'a Extension>,
    aki: Option<(&'a Extension, AuthorityKeyIdentifier)>,
    name_constraints: Option<(&'a Extension, NameConstraints)>,
    ocsp_nocheck: bool,
}

fn lint(linter: &mut Linter<'_>, tbs: &Tbs, signer: KeyType) {
    let extensions: &[Extension] = tbs.extensions.as_deref().unwrap_or_default();
    linter.check(
        extensions.is_empty() || tbs.version == Version::V3,
        &CERT_VERSION,
        || format!("version {:?} with extensions", tbs.version),
    );
    linter.serial(
        &CERT_SERIAL_LENGTH,
        &CERT_SERIAL_POSITIVE,
        tbs.serial_number.as_bytes(),
    );
    let expected = crate::crl::signature_algorithm(signer).ok();
    linter.check(
        expected.as_ref() == Some(&tbs.signature),
        &CERT_SIGNATURE_ALGORITHM,
        || {
            format!(
                "the TBS names {} but the {} key signs with another",
                tbs.signature.oid,
                signer.label()
            )
        },
    );
    linter.check(!tbs.issuer.0.is_empty(), &CERT_ISSUER_EMPTY, || {
        "the issuer name is empty".into()
    });
    linter.time_encoding(&CERT_TIME_ENCODING, "notBefore", &tbs.validity.not_before);
    linter.time_encoding(&CERT_TIME_ENCODING, "notAfter", &tbs.validity.not_after);
    let not_before = tbs.validity.not_before.to_unix_duration();
    let not_after = tbs.validity.not_after.to_unix_duration();
    linter.check(not_after > not_before, &CERT_VALIDITY_ORDER, || {
        "notAfter is not after notBefore".into()
    });
    if let Some(max) = policy_cap(linter) {
        let lifetime = not_after.saturating_sub(not_before);
        linter.check(lifetime <= max, &CERT_VALIDITY_CAP, || {
            format!(
                "the validity of {} s exceeds the {} s the template allows",
                lifetime.as_secs(),
                max.as_secs()
            )
        });
    }
    subject_attributes(linter, &tbs.subject);
    linter.check(
        tbs.issuer_unique_id.is_none() && tbs.subject_unique_id.is_none(),
        &CERT_UNIQUE_IDS,
        || "a unique identifier is present".into(),
    );
    let key_type = match tbs.subject_public_key_info.to_der() {
        Ok(der) => spki_key_type(&der).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let key_type = match key_type {
        Ok(k) => Some(k),
        Err(e) => {
            linter.flag(&CERT_PUBLIC_KEY, e);
            None
        }
    };

    linter.duplicates(&EXT_DUPLICATE, extensions);
    let ext = read_extensions(linter, extensions);
    let is_ca = ext.basic_constraints.as_ref().is_some_and(|(_, bc)| bc.ca);
    let self_issued = tbs.issuer == tbs.subject;

    subject_and_sans(linter, tbs, &ext, is_ca);
    key_identifiers(linter, &ext, is_ca, self_issued);
    ca_rules(linter, &ext, is_ca);
    if let Some((extension, usages)) = &ext.key_usage {
        key_usage(linter, extension, usages, key_type);
    }
    if let Some((extension, purposes)) = &ext.eku {
        extended_key_usage(linter, extension, purposes, ext.key_usage.as_ref());
    }
    linter.check(
        !ext.ocsp_nocheck
            || ext
                .eku
                .as_ref()
                .is_some_and(|(_, p)| p.contains(&ID_KP_OCSP_SIGNING)),
        &OCSP_NOCHECK,
        || "id-pkix-ocsp-nocheck without the OCSPSigning purpose".into(),
    );
}

fn policy_cap(linter: &Linter<'_>) -> Option<std::time::Duration> {
    linter
        .policy
        .max_validity
        .and_then(|d| std::time::Duration::try_from(d).ok())
}

/// Decodes the extensions the rules look at, flagging each one that does not decode or that
/// nobody could process as critical.
fn read_extensions<'a>(linter: &mut Linter<'_>, extensions: &'a [Extension]) -> Extensions<'a> {
    let mut ext = Extensions::default();
    for extension in extensions {
        let id = extension.extn_id;
        linter.check(
            !extension.critical || KNOWN.contains(&id),
            &EXT_UNKNOWN_CRITICAL,
            || format!("extension {id} is critical but not one relying parties know"),
        );
        if id == BasicConstraints::OID {
            ext.basic_constraints = decode(linter, &EXT_MALFORMED, extension, "basicConstraints")
                .map(|bc| (extension, bc));
        } else if id == KeyUsageExt::OID {
            ext.key_usage = decode::<KeyUsageExt>(linter, &EXT_MALFORMED, extension, "keyUsage")
                .map(|ku| (extension, usages(ku)));
        } else if id == ExtendedKeyUsage::OID {
            ext.eku = decode::<ExtendedKeyUsage>(linter, &EXT_MALFORMED, extension, "extKeyUsage")
                .map(|eku| (extension, eku.0));
        } else if id == SubjectAltName::OID {
            ext.san = decode::<SubjectAltName>(linter, &EXT_MALFORMED, extension, "subjectAltName")
                .map(|san| (extension, san.0));
        } else if id == SubjectKeyIdentifier::OID {
            ext.ski = decode::<SubjectKeyIdentifier>(
                linter,
                &EXT_MALFORMED,
                extension,
                "subjectKeyIdentifier",
            )
            .map(|_| extension);
        } else if id == AuthorityKeyIdentifier::OID {
            ext.aki = decode(linter, &EXT_MALFORMED, extension, "authorityKeyIdentifier")
                .map(|aki| (extension, aki));
        } else if id == NameConstraints::OID {
            ext.name_constraints = decode(linter, &EXT_MALFORMED, extension, "nameConstraints")
                .map(|nc| (extension, nc));
        } else if id == CertificatePolicies::OID {
            if let Some(policies) =
                decode::<CertificatePolicies>(linter, &EXT_MALFORMED, extension, "policies")
            {
                policies_rules(linter, &policies);
            }
        } else if id == CrlDistributionPoints::OID {
            if let Some(points) =
                decode::<CrlDistributionPoints>(linter, &EXT_MALFORMED, extension, "CRLDP")
            {
                linter.distribution_points(&points.0);
            }
        } else if id == AuthorityInfoAccessSyntax::OID {
            linter.check(!extension.critical, &AIA_CRITICAL, || {
                "authorityInfoAccess is critical".into()
            });
            if let Some(aia) =
                decode::<AuthorityInfoAccessSyntax>(linter, &EXT_MALFORMED, extension, "AIA")
            {
                linter.uris(aia.0.iter().map(|a| &a.access_location));
            }
        } else if id == ID_PKIX_OCSP_NOCHECK {
            linter.check(
                extension.extn_value.as_bytes() == [0x05, 0x00],
                &EXT_MALFORMED,
                || "id-pkix-ocsp-nocheck is not NULL".into(),
            );
            ext.ocsp_nocheck = true;
        }
    }
    ext
}

fn usages(ku: KeyUsageExt) -> Vec<KeyUsage> {
    [
        (KeyUsages::DigitalSignature, KeyUsage::DigitalSignature),
        (KeyUsages::NonRepudiation, KeyUsage::ContentCommitment),
        (KeyUsages::KeyEncipherment, KeyUsage::KeyEncipherment),
        (KeyUsages::DataEncipherment, KeyUsage::DataEncipherment),
        (KeyUsages::KeyAgreement, KeyUsage::KeyAgreement),
        (KeyUsages::KeyCertSign, KeyUsage::KeyCertSign),
        (KeyUsages::CRLSign, KeyUsage::CrlSign),
        (KeyUsages::EncipherOnly, KeyUsage::EncipherOnly),
        (KeyUsages::DecipherOnly, KeyUsage::DecipherOnly),
    ]
    .into_iter()
    .filter(|(bit, _)| ku.0.contains(*bit))
    .map(|(_, usage)| usage)
    .collect()
}

/// RFC 5280 Appendix A bounds and string types of the attributes certmint knows.
fn subject_attributes(linter: &mut Linter<'_>, subject: &Name) {
    for atv in subject.0.iter().flat_map(|rdn| rdn.0.iter()) {
        let Some(attribute) = NameAttribute::from_oid(&atv.oid) else {
            continue;
        };
        let name = attribute.short_name();
        let bytes = atv.value.value();
        let chars = match atv.value.tag() {
            Tag::Utf8String => std::str::from_utf8(bytes).map(|s| s.chars().count()).ok(),
            Tag::PrintableString | Tag::Ia5String => bytes.is_ascii().then_some(bytes.len()),
            Tag::BmpString => Some(bytes.len() / 2),
            _ => None,
        };
        let Some(chars) = chars else {
            linter.flag(
                &CERT_SUBJECT_ATTRIBUTE,
                format!("subject {name} is not a valid directory string"),
            );
            continue;
        };
        linter.check(
            (1..=attribute.max_len()).contains(&chars),
            &CERT_SUBJECT_ATTRIBUTE,
            || {
                format!(
                    "subject {name} has {chars} characters; 1 to {} are allowed",
                    attribute.max_len()
                )
            },
        );
        if attribute == NameAttribute::Country {
            linter.check(
                atv.value.tag() == Tag::PrintableString
                    && bytes.iter().all(u8::is_ascii_alphabetic),
                &CERT_SUBJECT_ATTRIBUTE,
                || "subject C is not a two-letter PrintableString".into(),
            );
        }
    }
}

fn subject_and_sans(linter: &mut Linter<'_>, tbs: &Tbs, ext: &Extensions<'_>, is_ca: bool) {
    let subject_empty = tbs.subject.0.is_empty();
    match &ext.san {
        Some((extension, names)) => {
            linter.check(!names.is_empty(), &SAN_EMPTY, || {
                "subjectAltName has no names".into()
            });
            linter.check(
                !subject_empty || extension.critical,
                &CERT_SUBJECT_EMPTY,
                || "the subject is empty and subjectAltName is not critical".into(),
            );
            linter.check(subject_empty || !extension.critical, &SAN_CRITICAL, || {
                "subjectAltName is critical beside a subject name".into()
            });
            for name in names {
                san(linter, name);
            }
        }
        None => linter.check(!subject_empty, &CERT_SUBJECT_EMPTY, || {
            "the subject is empty and there is no subjectAltName".into()
        }),
    }
    let tls_server = ext
        .eku
        .as_ref()
        .is_some_and(|(_, p)| p.contains(&ID_KP_SERVER_AUTH));
    linter.check(
        is_ca || !tls_server || ext.san.as_ref().is_some_and(|(_, n)| !n.is_empty()),
        &TLS_SERVER_SAN,
        || "a serverAuth certificate without subjectAltName".into(),
    );
}

fn san(linter: &mut Linter<'_>, name: &GeneralName) {
    match name {
        GeneralName::DnsName(dns) => {
            let text = dns.as_str();
            let ok = check_dns_name(text, true).is_ok_and(|n| n.eq_ignore_ascii_case(text));
            linter.check(ok, &SAN_DNS, || format!("DNS name '{text}'"));
        }
        GeneralName::IpAddress(ip) => {
            let len = ip.as_bytes().len();
            linter.check(len == 4 || len == 16, &SAN_IP, || {
                format!("an IP address of {len} octets")
            });
        }
        GeneralName::Rfc822Name(email) => {
            let text = email.as_str();
            let ok = check_email(text).is_ok_and(|e| e.eq_ignore_ascii_case(text));
            linter.check(ok, &SAN_EMAIL, || format!("email '{text}'"));
        }
        GeneralName::UniformResourceIdentifier(uri) => {
            let text = uri.as_str();
            linter.check(check_uri(text).is_ok(), &SAN_URI, || {
                format!("URI '{text}'")
            });
        }
        _ => {}
    }
}

fn policies_rules(linter: &mut Linter<'_>, policies: &CertificatePolicies) {
    for (i, policy) in policies.0.iter().enumerate() {
        let id = policy.policy_identifier;
        if policies.0[..i].iter().any(|p| p.policy_identifier == id) {
            linter.flag(&POLICIES_DUPLICATE, format!("policy {id} appears twice"));
        }
    }
}

fn key_identifiers(linter: &mut Linter<'_>, ext: &Extensions<'_>, is_ca: bool, self_issued: bool) {
    match ext.ski {
        Some(extension) => linter.check(!extension.critical, &SKI_CRITICAL, || {
            "subjectKeyIdentifier is critical".into()
        }),
        None if is_ca => linter.flag(&SKI_MISSING_CA, "a CA certificate without one"),
        None => linter.flag(&SKI_MISSING, "an end-entity certificate without one"),
    }
    match &ext.aki {
        Some((extension, aki)) => {
            linter.check(!extension.critical, &AKI_CRITICAL, || {
                "authorityKeyIdentifier is critical".into()
            });
            linter.check(aki.key_identifier.is_some(), &AKI_MISSING, || {
                "authorityKeyIdentifier without a keyIdentifier".into()
            });
        }
        None => linter.check(self_issued, &AKI_MISSING, || {
            "no authorityKeyIdentifier on a certificate another CA signs".into()
        }),
    }
}

fn ca_rules(linter: &mut Linter<'_>, ext: &Extensions<'_>, is_ca: bool) {
    let cert_sign = ext
        .key_usage
        .as_ref()
        .is_some_and(|(_, u)| u.contains(&KeyUsage::KeyCertSign));
    if let Some((extension, bc)) = &ext.basic_constraints {
        linter.check(
            !bc.ca || extension.critical,
            &BASIC_CONSTRAINTS_CRITICAL,
            || "basicConstraints with cA TRUE is not critical".into(),
        );
        linter.check(
            bc.path_len_constraint.is_none() || (bc.ca && cert_sign),
            &PATH_LEN_LEAF,
            || "pathLenConstraint without cA TRUE and keyCertSign".into(),
        );
    }
    linter.check(!is_ca || cert_sign, &CA_KEY_USAGE, || {
        "a CA certificate without keyUsage keyCertSign".into()
    });
    linter.check(is_ca || !cert_sign, &KEY_CERT_SIGN_LEAF, || {
        "keyCertSign without basicConstraints cA TRUE".into()
    });
    if let Some((extension, nc)) = &ext.name_constraints {
        linter.check(is_ca, &NAME_CONSTRAINTS_LEAF, || {
            "nameConstraints on an end-entity certificate".into()
        });
        linter.check(extension.critical, &NAME_CONSTRAINTS_CRITICAL, || {
            "nameConstraints are not critical".into()
        });
        let permitted = nc.permitted_subtrees.as_deref().unwrap_or_default();
        let excluded = nc.excluded_subtrees.as_deref().unwrap_or_default();
        linter.check(
            !permitted.is_empty() || !excluded.is_empty(),
            &NAME_CONSTRAINTS_EMPTY,
            || "nameConstraints without subtrees".into(),
        );
        for subtree in permitted.iter().chain(excluded) {
            if let GeneralName::IpAddress(ip) = &subtree.base {
                let len = ip.as_bytes().len();
                linter.check(len == 8 || len == 32, &NAME_CONSTRAINTS_IP, || {
                    format!("an IP subtree of {len} octets")
                });
            }
        }
    }
}

fn key_usage(
    linter: &mut Linter<'_>,
    extension: &Extension,
    usages: &[KeyUsage],
    key_type: Option<KeyType>,
) {
    linter.check(!usages.is_empty(), &KEY_USAGE_EMPTY, || {
        "keyUsage asserts no bit".into()
    });
    linter.check(extension.critical, &KEY_USAGE_CRITICAL, || {
        "keyUsage is not critical".into()
    });
    if let Some(key_type) = key_type {
        for usage in usages.iter().filter(|u| !u.fits(key_type)) {
            linter.flag(
                &KEY_USAGE_KEY_TYPE,
                format!("{} with a {} key", usage.as_str(), key_type.label()),
            );
        }
    }
    let agreement_only = [KeyUsage::EncipherOnly, KeyUsage::DecipherOnly];
    linter.check(
        usages.contains(&KeyUsage::KeyAgreement)
            || !usages.iter().any(|u| agreement_only.contains(u)),
        &KEY_USAGE_AGREEMENT,
        || "encipherOnly or decipherOnly without keyAgreement".into(),
    );
}

/// RFC 5280 §4.2.1.12: the key usage bits consistent with each purpose.
fn serving_usages(purpose: ObjectIdentifier) -> Option<&'static [KeyUsage]> {
    use KeyUsage as K;
    Some(match purpose {
        p if p == ID_KP_SERVER_AUTH => &[K::DigitalSignature, K::KeyEncipherment, K::KeyAgreement],
        p if p == ID_KP_CLIENT_AUTH => &[K::DigitalSignature, K::KeyAgreement],
        p if p == ID_KP_CODE_SIGNING => &[K::DigitalSignature],
        p if p == ID_KP_EMAIL_PROTECTION => &[
            K::DigitalSignature,
            K::ContentCommitment,
            K::KeyEncipherment,
            K::KeyAgreement,
        ],
        p if p == ID_KP_TIME_STAMPING || p == ID_KP_OCSP_SIGNING => {
            &[K::DigitalSignature, K::ContentCommitment]
        }
        _ => return None,
    })
}

fn extended_key_usage(
    linter: &mut Linter<'_>,
    extension: &Extension,
    purposes: &[ObjectIdentifier],
    key_usage: Option<&(&Extension, Vec<KeyUsage>)>,
) {
    linter.check(!purposes.is_empty(), &EKU_EMPTY, || {
        "extKeyUsage names no purpose".into()
    });
    linter.check(
        !(extension.critical && purposes.contains(&ANY_EKU)),
        &EKU_ANY_CRITICAL,
        || "a critical extKeyUsage with anyExtendedKeyUsage".into(),
    );
    let Some((_, usages)) = key_usage else {
        return;
    };
    for purpose in purposes {
        if let Some(serving) = serving_usages(*purpose) {
            linter.check(
                usages.iter().any(|u| serving.contains(u)),
                &EKU_KEY_USAGE,
                || {
                    format!(
                        "purpose {purpose} needs one of {}",
                        serving
                            .iter()
                            .map(|u| u.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            );
        }
    }
}
