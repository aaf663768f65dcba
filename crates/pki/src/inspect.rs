//! Reading certificates: the fields people search by and the details the API shows.

use std::net::IpAddr;

use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::Error;
use crate::cert::{ExtendedKeyUsage, KeyUsage};
use crate::keys::{KeyType, spki_key_type};
use crate::name::{NameAttribute, escape_rfc4514};

/// What certmint reads from a certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Subject, RFC 4514.
    pub subject: String,
    /// The subject's common name.
    pub common_name: Option<String>,
    /// The subject's attributes that certmint can write again (for renewal).
    pub subject_name: crate::DistinguishedName,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// The issuer's common name.
    pub issuer_common_name: Option<String>,
    /// Serial number, lower-case hex of its DER value.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// SANs as `kind:value` (`dns:`, `ip:`, `email:`, `uri:`; other kinds as `other:`).
    pub sans: Vec<String>,
    /// Whether basicConstraints says cA.
    pub is_ca: bool,
    /// The path length constraint.
    pub path_len: Option<u32>,
    /// Key usages (empty when the extension is absent).
    pub key_usage: Vec<KeyUsage>,
    /// Extended key usages.
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// Subject key identifier.
    pub subject_key_id: Option<Vec<u8>>,
    /// Authority key identifier.
    pub authority_key_id: Option<Vec<u8>>,
    /// Subject public key, DER SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
    /// The key's type, when certmint supports it.
    pub key_type: Option<KeyType>,
    /// Signature algorithm, as OpenSSL names it (or the dotted OID).
    pub signature_algorithm: String,
    /// SHA-256 fingerprint of the DER, lower-case hex.
    pub fingerprint_sha256: String,
    /// SHA-1 fingerprint of the DER, lower-case hex (shown, never trusted).
    pub fingerprint_sha1: String,
    /// Whether subject and issuer are the same name and the signature verifies with the
    /// certificate's own key.
    pub self_signed: bool,
    /// CRL distribution point URLs.
    pub crl_urls: Vec<String>,
    /// OCSP responder URLs.
    pub ocsp_urls: Vec<String>,
    /// CA issuer URLs.
    pub ca_issuer_urls: Vec<String>,
    /// Certificate policy OIDs.
    pub policies: Vec<String>,
    /// Raw DER of the subject name, for exact issuer matching.
    pub subject_raw: Vec<u8>,
    /// Raw DER of the issuer name.
    pub issuer_raw: Vec<u8>,
}

impl Certificate {
    /// Parses a DER certificate.
    ///
    /// # Errors
    /// [`Error::Invalid`] for malformed or truncated DER, trailing bytes, or extensions that
    /// cannot be read.
    pub fn parse(der: &[u8]) -> Result<Self, Error> {
        let (rest, x509) = X509Certificate::from_der(der)
            .map_err(|e| Error::Invalid(format!("not a valid X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::Invalid(
                "the certificate has trailing bytes after its DER".into(),
            ));
        }
        let tbs = &x509.tbs_certificate;
        let mut info = Self {
            der: der.to_vec(),
            subject: rfc4514(tbs.subject()),
            common_name: common_name(tbs.subject()),
            subject_name: crate::DistinguishedName::from_x509(tbs.subject()).unwrap_or_default(),
            issuer: rfc4514(tbs.issuer()),
            issuer_common_name: common_name(tbs.issuer()),
            serial: hex::encode(x509.raw_serial()),
            not_before: x509.validity().not_before.to_datetime(),
            not_after: x509.validity().not_after.to_datetime(),
            sans: Vec::new(),
            is_ca: false,
            path_len: None,
            key_usage: Vec::new(),
            extended_key_usage: Vec::new(),
            subject_key_id: None,
            authority_key_id: None,
            public_key_der: tbs.subject_pki.raw.to_vec(),
            key_type: spki_key_type(tbs.subject_pki.raw).ok(),
            signature_algorithm: signature_name(&x509.signature_algorithm.algorithm.to_id_string()),
            fingerprint_sha256: hex::encode(digest(&SHA256, der)),
            fingerprint_sha1: hex::encode(digest(&SHA1_FOR_LEGACY_USE_ONLY, der)),
            self_signed: tbs.subject().as_raw() == tbs.issuer().as_raw()
                && x509.verify_signature(None).is_ok(),
            crl_urls: Vec::new(),
            ocsp_urls: Vec::new(),
            ca_issuer_urls: Vec::new(),
            policies: Vec::new(),
            subject_raw: tbs.subject().as_raw().to_vec(),
            issuer_raw: tbs.issuer().as_raw().to_vec(),
        };
        for ext in x509.extensions() {
            info.read_extension(ext.parsed_extension())?;
        }
        Ok(info)
    }

    fn read_extension(&mut self, ext: &ParsedExtension<'_>) -> Result<(), Error> {
        match ext {
            ParsedExtension::BasicConstraints(bc) => {
                self.is_ca = bc.ca;
                self.path_len = bc.path_len_constraint;
            }
            ParsedExtension::KeyUsage(ku) => self.key_usage = key_usages(ku),
            ParsedExtension::ExtendedKeyUsage(eku) => {
                self.extended_key_usage = extended_key_usages(eku);
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                self.sans = san.general_names.iter().map(general_name).collect();
            }
            ParsedExtension::SubjectKeyIdentifier(id) => self.subject_key_id = Some(id.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                self.authority_key_id = aki.key_identifier.as_ref().map(|k| k.0.to_vec());
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        self.crl_urls.extend(names.iter().filter_map(uri));
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for desc in aia.iter() {
                    let Some(url) = uri(&desc.access_location) else {
                        continue;
                    };
                    match desc.access_method.to_id_string().as_str() {
                        "1.3.6.1.5.5.7.48.1" => self.ocsp_urls.push(url),
                        "1.3.6.1.5.5.7.48.2" => self.ca_issuer_urls.push(url),
                        _ => {}
                    }
                }
            }
            ParsedExtension::CertificatePolicies(policies) => {
                self.policies = policies
                    .iter()
                    .map(|p| p.policy_id.to_id_string())
                    .collect();
            }
            ParsedExtension::ParseError { error } => {
                return Err(Error::Invalid(format!(
                    "unreadable certificate extension: {error}"
                )));
            }
            _ => {}
        }
        Ok(())
    }

    /// The SANs that are DNS names, without their kind.
    pub fn dns_names(&self) -> impl Iterator<Item = &str> {
        self.sans.iter().filter_map(|s| s.strip_prefix("dns:"))
    }

    /// Whether the certificate names `host` (a DNS name or an IP address) in its SANs, as a
    /// TLS client checks it (RFC 6125): DNS names compared in any case, a wildcard standing
    /// for exactly one whole leftmost label; IP addresses by value. The subject common name
    /// is not consulted, as browsers no longer do.
    pub fn names_host(&self, host: &str) -> bool {
        sans_name_host(&self.sans, host)
    }

    /// Whether `issuer` (parsed) signed this certificate: names match and the signature
    /// verifies with the issuer's key.
    pub fn is_issued_by(&self, issuer: &Certificate) -> bool {
        if self.issuer_raw != issuer.subject_raw {
            return false;
        }
        let (Ok((_, child)), Ok((_, parent))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&issuer.der),
        ) else {
            return false;
        };
        child.verify_signature(Some(parent.public_key())).is_ok()
    }
}

/// RFC 3339 text of a time, in UTC.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The usages set in a parsed keyUsage extension.
pub(crate) fn key_usages(ku: &x509_parser::extensions::KeyUsage) -> Vec<KeyUsage> {
    let bits = [
        ku.digital_signature(),
        ku.non_repudiation(),
        ku.key_encipherment(),
        ku.data_encipherment(),
        ku.key_agreement(),
        ku.key_cert_sign(),
        ku.crl_sign(),
        ku.encipher_only(),
        ku.decipher_only(),
    ];
    KeyUsage::ALL
        .into_iter()
        .zip(bits)
        .filter_map(|(u, set)| set.then_some(u))
        .collect()
}

/// The purposes in a parsed extendedKeyUsage extension, named ones first.
pub(crate) fn extended_key_usages(
    eku: &x509_parser::extensions::ExtendedKeyUsage<'_>,
) -> Vec<ExtendedKeyUsage> {
    let named = [
        (eku.server_auth, ExtendedKeyUsage::ServerAuth),
        (eku.client_auth, ExtendedKeyUsage::ClientAuth),
        (eku.code_signing, ExtendedKeyUsage::CodeSigning),
        (eku.email_protection, ExtendedKeyUsage::EmailProtection),
        (eku.time_stamping, ExtendedKeyUsage::TimeStamping),
        (eku.ocsp_signing, ExtendedKeyUsage::OcspSigning),
        (eku.any, ExtendedKeyUsage::Any),
    ];
    let others = eku
        .other
        .iter()
        .filter_map(|oid| crate::oid::from_der_value(oid.as_bytes()))
        .map(ExtendedKeyUsage::Other);
    named
        .into_iter()
        .filter_map(|(set, e)| set.then_some(e))
        .chain(others)
        .collect()
}

/// A general name as `kind:value`; kinds certmint does not issue come out as `dirname:…`,
/// `other:…` or `ip:#hex` (a malformed address).
pub(crate) fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(v) => format!("dns:{v}"),
        GeneralName::RFC822Name(v) => format!("email:{v}"),
        GeneralName::URI(v) => format!("uri:{v}"),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(*bytes).map(|b| format!("ip:{}", IpAddr::from(b))),
            16 => <[u8; 16]>::try_from(*bytes).map(|b| format!("ip:{}", IpAddr::from(b))),
            _ => Ok(format!("ip:#{}", hex::encode(bytes))),
        }
        .unwrap_or_else(|_| format!("ip:#{}", hex::encode(bytes))),
        GeneralName::DirectoryName(n) => format!("dirname:{}", rfc4514(n)),
        other => format!("other:{other:?}"),
    }
}

fn uri(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::URI(u) => Some((*u).to_owned()),
        _ => None,
    }
}

fn common_name(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}

/// A name in RFC 4514 form: most specific RDN first.
fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let label = crate::oid::from_der_value(atv.attr_type().as_bytes())
                        .and_then(|o| NameAttribute::from_oid(&o))
                        .map_or(oid, |a| a.short_name().to_owned());
                    let value = atv.as_str().map_or_else(
                        |_| format!("#{}", hex::encode(atv.attr_value().data)),
                        escape_rfc4514,
                    );
                    format!("{label}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// OpenSSL's name for a signature algorithm OID.
pub(crate) fn signature_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "ED25519",
        other => other,
    }
    .to_owned()
}

/// [`Certificate::names_host`] over SANs written `kind:value`.
fn sans_name_host(sans: &[String], host: &str) -> bool {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return sans
            .iter()
            .filter_map(|s| s.strip_prefix("ip:"))
            .any(|s| s.parse::<IpAddr>() == Ok(ip));
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    sans.iter()
        .filter_map(|s| s.strip_prefix("dns:"))
        .any(|name| {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(base) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == base),
                None => name == host,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_sans_as_tls_clients_match_them() {
        let sans: Vec<String> = [
            "dns:www.Example.test",
            "dns:*.api.example.test",
            "ip:10.0.0.1",
        ]
        .map(str::to_owned)
        .to_vec();
        for (host, named) in [
            ("www.example.test", true),
            ("WWW.example.test.", true),
            ("example.test", false),
            ("v1.api.example.test", true),
            ("api.example.test", false),
            ("a.v1.api.example.test", false),
            ("10.0.0.1", true),
            ("10.0.0.2", false),
            ("::ffff:10.0.0.1", false),
        ] {
            assert_eq!(sans_name_host(&sans, host), named, "{host}");
        }
    }
}
