//! ACME's certificate-level pieces: the tls-alpn-01 validation certificate (RFC 8737).

use std::net::IpAddr;

use const_oid::ObjectIdentifier;
use der::Decode;
use der::asn1::OctetStringRef;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// id-pe-acmeIdentifier (RFC 8737 §6.1).
const ACME_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.31");

/// What a tls-alpn-01 validation certificate must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlpnIdentifier<'a> {
    /// A DNS name (A-labels), compared case-insensitively.
    Dns(&'a str),
    /// An IP address (RFC 8738 §6).
    Ip(IpAddr),
}

/// Checks the certificate a tls-alpn-01 responder presented (RFC 8737 §3, RFC 8738 §6):
/// a subjectAltName extension with exactly one entry, the dNSName (case-insensitive) or iPAddress
/// being validated; the critical acmeIdentifier extension (id-pe-acmeIdentifier,
/// 1.3.6.1.5.5.7.1.31) whose value is an ASN.1 OCTET STRING holding SHA-256(key_authorization).
///
/// Only the certificate's content is checked: it is self-signed by design, and that the peer
/// holds its private key is the TLS handshake's business.
///
/// # Errors
/// A human-readable reason when the certificate cannot be parsed or breaks one of the rules.
pub fn check_tls_alpn_certificate(
    der: &[u8],
    identifier: AlpnIdentifier<'_>,
    key_authorization: &str,
) -> Result<(), String> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("the certificate could not be parsed: {e}"))?;
    if !rest.is_empty() {
        return Err("the certificate has trailing data".into());
    }
    check_subject_alt_name(&cert, identifier)?;
    check_acme_identifier(&cert, key_authorization)
}

/// The DER SubjectPublicKeyInfo of the certificate `der`, so that the handshake signatures of a
/// tls-alpn-01 responder can be checked against the key it presents. (webpki, which rustls uses
/// for that, refuses to parse a certificate with the critical acmeIdentifier extension.)
///
/// # Errors
/// A human-readable reason when the certificate cannot be parsed.
pub fn subject_public_key_info(der: &[u8]) -> Result<&[u8], String> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("the certificate could not be parsed: {e}"))?;
    Ok(cert.tbs_certificate.subject_pki.raw)
}

fn check_subject_alt_name(
    cert: &X509Certificate<'_>,
    identifier: AlpnIdentifier<'_>,
) -> Result<(), String> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("the subjectAltName extension is invalid: {e}"))?
        .ok_or("the certificate has no subjectAltName extension")?;
    let [name] = san.value.general_names.as_slice() else {
        return Err(format!(
            "the subjectAltName extension must hold exactly one name, not {}",
            san.value.general_names.len()
        ));
    };
    let matches = match (identifier, name) {
        (AlpnIdentifier::Dns(want), GeneralName::DNSName(got)) => got.eq_ignore_ascii_case(want),
        (AlpnIdentifier::Ip(IpAddr::V4(want)), GeneralName::IPAddress(got)) => {
            *got == want.octets().as_slice()
        }
        (AlpnIdentifier::Ip(IpAddr::V6(want)), GeneralName::IPAddress(got)) => {
            *got == want.octets().as_slice()
        }
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        let want = match identifier {
            AlpnIdentifier::Dns(name) => format!("the dNSName {name}"),
            AlpnIdentifier::Ip(ip) => format!("the iPAddress {ip}"),
        };
        Err(format!(
            "the subjectAltName names {}, not {want}",
            describe(name)
        ))
    }
}

fn check_acme_identifier(
    cert: &X509Certificate<'_>,
    key_authorization: &str,
) -> Result<(), String> {
    let mut found = cert
        .extensions()
        .iter()
        .filter(|ext| ext.oid.as_bytes() == ACME_IDENTIFIER.as_bytes());
    let ext = found
        .next()
        .ok_or("the certificate has no acmeIdentifier extension")?;
    if found.next().is_some() {
        return Err("the certificate has more than one acmeIdentifier extension".into());
    }
    if !ext.critical {
        return Err("the acmeIdentifier extension is not marked critical".into());
    }
    let value = OctetStringRef::from_der(ext.value)
        .map_err(|e| format!("the acmeIdentifier extension is not an OCTET STRING: {e}"))?;
    let expected = Sha256::digest(key_authorization.as_bytes());
    if value.as_bytes() == expected.as_slice() {
        Ok(())
    } else {
        Err("the acmeIdentifier extension does not hold the SHA-256 digest of the key authorization".into())
    }
}

/// A general name as a person would read it; only used in error messages.
fn describe(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(dns) => format!("the dNSName {dns}"),
        GeneralName::IPAddress(bytes) => match <[u8; 4]>::try_from(*bytes) {
            Ok(v4) => format!("the iPAddress {}", IpAddr::from(v4)),
            Err(_) => match <[u8; 16]>::try_from(*bytes) {
                Ok(v6) => format!("the iPAddress {}", IpAddr::from(v6)),
                Err(_) => format!("an iPAddress of {} bytes", bytes.len()),
            },
        },
        other => format!("{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use rcgen::{CertificateParams, CustomExtension, KeyPair, PublicKeyData, SanType};

    const KEY_AUTHORIZATION: &str = "token123.thumbprint456";

    fn digest(key_authorization: &str) -> Vec<u8> {
        Sha256::digest(key_authorization.as_bytes()).to_vec()
    }

    fn certificate(sans: Vec<SanType>, extensions: Vec<CustomExtension>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = sans;
        params.custom_extensions = extensions;
        let key = KeyPair::generate().expect("test key");
        params
            .self_signed(&key)
            .expect("test certificate")
            .der()
            .to_vec()
    }

    fn dns(name: &str) -> SanType {
        SanType::DnsName(name.try_into().expect("test name"))
    }

    fn good_extension() -> CustomExtension {
        CustomExtension::new_acme_identifier(&digest(KEY_AUTHORIZATION))
    }

    #[test]
    fn a_good_certificate_passes_for_a_dns_name() {
        let der = certificate(vec![dns("Example.COM")], vec![good_extension()]);
        assert_eq!(
            check_tls_alpn_certificate(&der, AlpnIdentifier::Dns("example.com"), KEY_AUTHORIZATION),
            Ok(())
        );
    }

    #[test]
    fn a_good_certificate_passes_for_ip_addresses() {
        for ip in ["192.0.2.7", "2001:db8::1"] {
            let ip: IpAddr = ip.parse().expect("test address");
            let der = certificate(vec![SanType::IpAddress(ip)], vec![good_extension()]);
            assert_eq!(
                check_tls_alpn_certificate(&der, AlpnIdentifier::Ip(ip), KEY_AUTHORIZATION),
                Ok(()),
                "{ip}"
            );
        }
    }

    #[test]
    fn bad_certificates_fail_with_a_reason() {
        let non_critical = {
            let mut ext = good_extension();
            ext.set_criticality(false);
            ext
        };
        let not_an_octet_string = {
            let mut ext = CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 31],
                vec![0x0c, 0x02, b'h', b'i'],
            );
            ext.set_criticality(true);
            ext
        };
        let ip: IpAddr = "192.0.2.7".parse().expect("test address");
        let cases: Vec<(&str, Vec<u8>, AlpnIdentifier<'_>, &str)> = vec![
            (
                "wrong digest",
                certificate(
                    vec![dns("example.com")],
                    vec![CustomExtension::new_acme_identifier(&digest("other.auth"))],
                ),
                AlpnIdentifier::Dns("example.com"),
                "digest",
            ),
            (
                "missing extension",
                certificate(vec![dns("example.com")], vec![]),
                AlpnIdentifier::Dns("example.com"),
                "no acmeIdentifier",
            ),
            (
                "non-critical extension",
                certificate(vec![dns("example.com")], vec![non_critical]),
                AlpnIdentifier::Dns("example.com"),
                "critical",
            ),
            (
                "extension value is not an OCTET STRING",
                certificate(vec![dns("example.com")], vec![not_an_octet_string]),
                AlpnIdentifier::Dns("example.com"),
                "OCTET STRING",
            ),
            (
                "two SANs",
                certificate(
                    vec![dns("example.com"), dns("www.example.com")],
                    vec![good_extension()],
                ),
                AlpnIdentifier::Dns("example.com"),
                "exactly one",
            ),
            (
                "no SAN",
                certificate(vec![], vec![good_extension()]),
                AlpnIdentifier::Dns("example.com"),
                "no subjectAltName",
            ),
            (
                "wrong name",
                certificate(vec![dns("example.org")], vec![good_extension()]),
                AlpnIdentifier::Dns("example.com"),
                "example.org",
            ),
            (
                "DNS name where an IP address is validated",
                certificate(vec![dns("example.com")], vec![good_extension()]),
                AlpnIdentifier::Ip(ip),
                "192.0.2.7",
            ),
            (
                "wrong IP address",
                certificate(
                    vec![SanType::IpAddress(
                        "192.0.2.8".parse().expect("test address"),
                    )],
                    vec![good_extension()],
                ),
                AlpnIdentifier::Ip(ip),
                "192.0.2.8",
            ),
            (
                "garbage DER",
                b"\x30\x03\x02\x01".to_vec(),
                AlpnIdentifier::Dns("example.com"),
                "parsed",
            ),
            (
                "empty input",
                Vec::new(),
                AlpnIdentifier::Dns("example.com"),
                "parsed",
            ),
        ];
        for (case, der, identifier, reason) in cases {
            match check_tls_alpn_certificate(&der, identifier, KEY_AUTHORIZATION) {
                Ok(()) => panic!("{case}: accepted"),
                Err(e) => assert!(e.contains(reason), "{case}: {e}"),
            }
        }
    }

    #[test]
    fn the_public_key_is_the_certificate_key() {
        let key = KeyPair::generate().expect("test key");
        let mut params = CertificateParams::default();
        params.custom_extensions = vec![good_extension()];
        let der = params
            .self_signed(&key)
            .expect("test certificate")
            .der()
            .to_vec();
        assert_eq!(
            subject_public_key_info(&der),
            Ok(key.subject_public_key_info().as_slice())
        );
        assert!(subject_public_key_info(b"garbage").is_err());
    }

    #[test]
    fn trailing_data_after_the_certificate_fails() {
        let mut der = certificate(vec![dns("example.com")], vec![good_extension()]);
        der.push(0);
        assert!(
            check_tls_alpn_certificate(&der, AlpnIdentifier::Dns("example.com"), KEY_AUTHORIZATION)
                .is_err()
        );
    }
}
