//! The linter every CA signature passes first: it reads the exact to-be-signed bytes of a
//! certificate or CRL and checks them against RFC 5280 (and RFC 5480, RFC 8410, RFC 6960 and
//! the CA/Browser Forum rules that make sense in a private PKI). The CA key signs nothing that
//! has an error-level finding; see [`crate::cert::Prepared::lint`] and [`crate::crl::build`].
//!
//! Checks on requests (name lengths, SAN syntax, template rules) still run first, where they
//! can say which field was wrong. This is the second line: it sees what is about to be signed,
//! whichever door asked and whatever built it.

mod certificate;
mod crl;
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;

use der::Decode;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::time::Time;

pub(crate) use certificate::certificate;
pub(crate) use crl::crl;

use crate::Error;
use crate::name::check_uri;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Reported; the signature goes ahead.
    Warning,
    /// Nothing is signed.
    Error,
}

impl Severity {
    /// `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// A rule the linter checks.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Its name, as findings, settings and the API write it.
    pub name: &'static str,
    /// Its severity unless a CA's settings downgrade it.
    pub severity: Severity,
    /// Where the rule comes from.
    pub citation: &'static str,
    /// What it asks, in one line.
    pub summary: &'static str,
}

macro_rules! rules {
    ($($id:ident = $name:literal, $severity:ident, $citation:literal, $summary:literal;)*) => {
        $(
            #[doc = $summary]
            pub const $id: Rule = Rule {
                name: $name,
                severity: Severity::$severity,
                citation: $citation,
                summary: $summary,
            };
        )*
        /// Every rule, certificates' first, then CRLs'.
        pub const RULES: &[&Rule] = &[$(&$id),*];
    };
}

rules! {
    CERT_DER = "cert_der", Error, "RFC 5280 §4.1, ITU-T X.690 §10",
        "the to-be-signed certificate is DER that decodes as a TBSCertificate";
    CERT_VERSION = "cert_version_v3", Error, "RFC 5280 §4.1.2.1",
        "a certificate with extensions is version 3";
    CERT_SERIAL_LENGTH = "cert_serial_length", Error, "RFC 5280 §4.1.2.2",
        "the serial number is 1 to 20 octets";
    CERT_SERIAL_POSITIVE = "cert_serial_positive", Error, "RFC 5280 §4.1.2.2",
        "the serial number is a positive integer";
    CERT_SIGNATURE_ALGORITHM = "cert_signature_algorithm", Error, "RFC 5280 §4.1.2.3",
        "the signature algorithm is the one the signing key makes";
    CERT_ISSUER_EMPTY = "cert_issuer_empty", Error, "RFC 5280 §4.1.2.4",
        "the issuer name is not empty";
    CERT_TIME_ENCODING = "cert_time_encoding", Error, "RFC 5280 §4.1.2.5",
        "validity dates through 2049 are UTCTime, later ones GeneralizedTime";
    CERT_VALIDITY_ORDER = "cert_validity_order", Error, "RFC 5280 §4.1.2.5",
        "the validity ends after it starts";
    CERT_VALIDITY_CAP = "cert_validity_cap", Error,
        "CA/Browser Forum TLS BR §6.3.2 (cap set per template)",
        "the validity is no longer than the template allows";
    CERT_SUBJECT_EMPTY = "cert_subject_empty", Error, "RFC 5280 §4.1.2.6",
        "an empty subject needs a critical subjectAltName";
    CERT_SUBJECT_ATTRIBUTE = "cert_subject_attribute", Error, "RFC 5280 Appendix A",
        "subject attributes keep their upper bounds and string types";
    CERT_UNIQUE_IDS = "cert_unique_ids", Error, "RFC 5280 §4.1.2.8",
        "conforming CAs do not generate issuer or subject unique identifiers";
    CERT_PUBLIC_KEY = "cert_public_key", Error, "RFC 5280 §4.1.2.7, RFC 5480, RFC 8410",
        "the subject public key is RSA of 2048 bits or more, P-256, P-384 or Ed25519";
    EXT_DUPLICATE = "ext_duplicate", Error, "RFC 5280 §4.2",
        "no extension appears twice";
    EXT_UNKNOWN_CRITICAL = "ext_unknown_critical", Error, "RFC 5280 §4.2",
        "no extension is critical that relying parties may not know";
    EXT_MALFORMED = "ext_malformed", Error, "RFC 5280 §4.2",
        "every extension's value decodes as its type";
    SKI_MISSING_CA = "ski_missing_ca", Error, "RFC 5280 §4.2.1.2",
        "a CA certificate has a subjectKeyIdentifier";
    SKI_MISSING = "ski_missing", Warning, "RFC 5280 §4.2.1.2",
        "an end-entity certificate has a subjectKeyIdentifier";
    SKI_CRITICAL = "ski_critical", Error, "RFC 5280 §4.2.1.2",
        "the subjectKeyIdentifier is not critical";
    AKI_MISSING = "aki_missing", Error, "RFC 5280 §4.2.1.1",
        "a certificate not self-signed has an authorityKeyIdentifier with a keyIdentifier";
    AKI_CRITICAL = "aki_critical", Error, "RFC 5280 §4.2.1.1",
        "the authorityKeyIdentifier is not critical";
    BASIC_CONSTRAINTS_CRITICAL = "basic_constraints_critical", Error, "RFC 5280 §4.2.1.9",
        "a CA certificate's basicConstraints is critical";
    CA_KEY_USAGE = "ca_key_usage", Error, "RFC 5280 §4.2.1.3, §4.2.1.9",
        "a CA certificate has keyUsage with keyCertSign";
    KEY_CERT_SIGN_LEAF = "key_cert_sign_leaf", Error, "RFC 5280 §4.2.1.3",
        "keyCertSign is asserted only with basicConstraints cA TRUE";
    PATH_LEN_LEAF = "path_len_leaf", Error, "RFC 5280 §4.2.1.9",
        "pathLenConstraint appears only with cA TRUE and keyCertSign";
    KEY_USAGE_EMPTY = "key_usage_empty", Error, "RFC 5280 §4.2.1.3",
        "a keyUsage extension asserts at least one bit";
    KEY_USAGE_CRITICAL = "key_usage_critical", Warning, "RFC 5280 §4.2.1.3",
        "keyUsage is critical";
    KEY_USAGE_KEY_TYPE = "key_usage_key_type", Error, "RFC 5480 §3, RFC 8410 §5, RFC 4055 §1.2",
        "key usages are ones the subject's key type can perform";
    KEY_USAGE_AGREEMENT = "key_usage_encipher_decipher", Error, "RFC 5280 §4.2.1.3",
        "encipherOnly and decipherOnly appear only with keyAgreement";
    EKU_EMPTY = "eku_empty", Error, "RFC 5280 §4.2.1.12",
        "an extKeyUsage extension names at least one purpose";
    EKU_KEY_USAGE = "eku_key_usage", Error, "RFC 5280 §4.2.1.12",
        "each extended key usage has a key usage that serves it";
    EKU_ANY_CRITICAL = "eku_any_critical", Warning, "RFC 5280 §4.2.1.12",
        "an extKeyUsage with anyExtendedKeyUsage is not critical";
    NAME_CONSTRAINTS_LEAF = "name_constraints_leaf", Error, "RFC 5280 §4.2.1.10",
        "nameConstraints appear only in CA certificates";
    NAME_CONSTRAINTS_CRITICAL = "name_constraints_critical", Error, "RFC 5280 §4.2.1.10",
        "nameConstraints are critical";
    NAME_CONSTRAINTS_EMPTY = "name_constraints_empty", Error, "RFC 5280 §4.2.1.10",
        "nameConstraints have permitted or excluded subtrees";
    NAME_CONSTRAINTS_IP = "name_constraints_ip", Error, "RFC 5280 §4.2.1.10",
        "an IP subtree is 8 (IPv4) or 32 (IPv6) octets of address and mask";
    SAN_EMPTY = "san_empty", Error, "RFC 5280 §4.2.1.6",
        "a subjectAltName extension has at least one name";
    SAN_CRITICAL = "san_critical", Warning, "RFC 5280 §4.2.1.6",
        "subjectAltName is not critical when the subject is not empty";
    SAN_DNS = "san_dns", Error, "RFC 5280 §4.2.1.6, RFC 1034 §3.5, RFC 6125 §6.4.3",
        "DNS names are lower-case-insensitive LDH A-labels, a wildcard only as the whole leftmost label";
    SAN_IP = "san_ip", Error, "RFC 5280 §4.2.1.6",
        "IP addresses are 4 or 16 octets";
    SAN_EMAIL = "san_email", Error, "RFC 5280 §4.2.1.6",
        "email addresses are an ASCII mailbox at a DNS domain";
    SAN_URI = "san_uri", Error, "RFC 5280 §4.2.1.6, RFC 3986 §3",
        "URIs have a scheme and no spaces";
    POLICIES_DUPLICATE = "policies_duplicate", Error, "RFC 5280 §4.2.1.4",
        "no policy appears twice in certificatePolicies";
    ACCESS_URI = "access_uri", Error, "RFC 5280 §4.2.1.13, §4.2.2.1",
        "CRL distribution points and authority information access are valid URIs";
    AIA_CRITICAL = "aia_critical", Error, "RFC 5280 §4.2.2.1",
        "authorityInfoAccess is not critical";
    OCSP_NOCHECK = "ocsp_nocheck", Error, "RFC 6960 §4.2.2.2.1",
        "id-pkix-ocsp-nocheck appears only with the OCSPSigning purpose";
    TLS_SERVER_SAN = "tls_server_san", Error, "CA/Browser Forum TLS BR §7.1.2.7.12",
        "a TLS server certificate names its hosts in subjectAltName";
    CRL_DER = "crl_der", Error, "RFC 5280 §5.1, ITU-T X.690 §10",
        "the to-be-signed CRL is DER that decodes as a TBSCertList";
    CRL_VERSION = "crl_version_v2", Error, "RFC 5280 §5.1.2.1",
        "a CRL with extensions is version 2";
    CRL_SIGNATURE_ALGORITHM = "crl_signature_algorithm", Error, "RFC 5280 §5.1.2.2",
        "the signature algorithm is the one the CA key makes";
    CRL_ISSUER_EMPTY = "crl_issuer_empty", Error, "RFC 5280 §5.1.2.3",
        "the issuer name is not empty";
    CRL_TIME_ENCODING = "crl_time_encoding", Error, "RFC 5280 §5.1.2.4-6",
        "dates through 2049 are UTCTime, later ones GeneralizedTime";
    CRL_NEXT_UPDATE = "crl_next_update", Error, "RFC 5280 §5.1.2.5",
        "nextUpdate is present and later than thisUpdate";
    CRL_EMPTY_LIST = "crl_empty_list", Error, "RFC 5280 §5.1.2.6",
        "with no revoked certificates the list is absent, not empty";
    CRL_ENTRY_SERIAL = "crl_entry_serial", Error, "RFC 5280 §4.1.2.2, §5.1.2.6",
        "each entry's serial is a positive integer of 1 to 20 octets";
    CRL_REASON = "crl_reason", Error, "RFC 5280 §5.3.1",
        "reason codes are ones RFC 5280 defines, removeFromCRL only in delta CRLs, never critical";
    CRL_REASON_UNSPECIFIED = "crl_reason_unspecified", Warning, "RFC 5280 §5.3.1",
        "an unspecified reason is left out rather than written";
    CRL_ENTRY_EXTENSION = "crl_entry_extension", Error, "RFC 5280 §5.3",
        "entry extensions decode, are not repeated, and none is critical (certmint issues no indirect CRLs)";
    CRL_NUMBER = "crl_number", Error, "RFC 5280 §5.2.3",
        "a non-critical cRLNumber of 0 to 2^159 is present";
    CRL_AKI = "crl_aki", Error, "RFC 5280 §5.2.1",
        "a non-critical authorityKeyIdentifier with a keyIdentifier is present";
    CRL_DELTA = "crl_delta", Error, "RFC 5280 §5.2.4, §5.2.6",
        "a deltaCRLIndicator is critical and below the CRL number, and a delta CRL has no freshestCRL";
    CRL_EXTENSION = "crl_extension", Error, "RFC 5280 §5.2",
        "CRL extensions are known, decodable and not repeated";
}

/// The rule named `name`.
pub fn rule(name: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| r.name == name)
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule.
    pub rule: &'static Rule,
    /// Its severity under the policy in force.
    pub severity: Severity,
    /// What exactly is wrong.
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.rule.name, self.rule.citation, self.detail
        )
    }
}

/// What the linter reported on one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every finding, in the order found.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// The findings that are errors.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    /// The findings that are warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }

    /// The names of the rules broken, each once, in the order found.
    pub fn rule_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for finding in &self.findings {
            if !names.contains(&finding.rule.name) {
                names.push(finding.rule.name);
            }
        }
        names
    }

    /// `Ok` when nothing is an error; otherwise the refusal, naming every error.
    ///
    /// # Errors
    /// [`Error::Lint`] with this report.
    pub fn into_result(self) -> Result<Report, Error> {
        if self.has_errors() {
            Err(Error::Lint(self))
        } else {
            Ok(self)
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, finding) in self.findings.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{finding}")?;
        }
        Ok(())
    }
}

/// What a CA lets through and how long its certificates may live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    warn_only: BTreeSet<&'static str>,
    max_validity: Option<time::Duration>,
}

impl Policy {
    /// Downgrades the rules named to warnings (a CA's setting).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming a rule that does not exist.
    pub fn downgrading<S: AsRef<str>>(mut self, names: &[S]) -> Result<Self, Error> {
        for name in names {
            let name = name.as_ref();
            let rule = rule(name).ok_or_else(|| {
                Error::Invalid(format!("'{name}' is not a lint rule; GET the rule list"))
            })?;
            self.warn_only.insert(rule.name);
        }
        Ok(self)
    }

    /// Caps certificate validity (a template's longest).
    pub fn with_max_validity(mut self, max: time::Duration) -> Self {
        self.max_validity = Some(max);
        self
    }

    /// The rules downgraded to warnings.
    pub fn downgraded(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.warn_only.iter().copied()
    }

    fn severity(&self, rule: &Rule) -> Severity {
        if self.warn_only.contains(rule.name) {
            Severity::Warning
        } else {
            rule.severity
        }
    }
}

/// Collects findings under a policy.
struct Linter<'p> {
    policy: &'p Policy,
    report: Report,
}

impl<'p> Linter<'p> {
    fn new(policy: &'p Policy) -> Self {
        Self {
            policy,
            report: Report::default(),
        }
    }

    fn flag(&mut self, rule: &'static Rule, detail: impl Into<String>) {
        self.report.findings.push(Finding {
            rule,
            severity: self.policy.severity(rule),
            detail: detail.into(),
        });
    }

    fn check(&mut self, ok: bool, rule: &'static Rule, detail: impl FnOnce() -> String) {
        if !ok {
            self.flag(rule, detail());
        }
    }

    /// RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 on.
    fn time_encoding(&mut self, rule: &'static Rule, field: &str, time: &Time) {
        let (year, utc) = match time {
            Time::UtcTime(t) => (t.to_date_time().year(), true),
            Time::GeneralTime(t) => (t.to_date_time().year(), false),
        };
        if utc != (year < 2050) {
            let kind = if utc { "UTCTime" } else { "GeneralizedTime" };
            self.flag(rule, format!("{field} in {year} is encoded as {kind}"));
        }
    }

    /// Checks the serial-number form RFC 5280 §4.1.2.2 sets; `content` is the INTEGER's
    /// content octets.
    fn serial(&mut self, length: &'static Rule, positive: &'static Rule, content: &[u8]) {
        let digits = match content {
            [0, rest @ ..] if rest.first().is_some_and(|b| b & 0x80 != 0) => rest,
            other => other,
        };
        self.check((1..=20).contains(&digits.len()), length, || {
            format!("the serial number is {} octets", digits.len())
        });
        let negative = content.first().is_some_and(|b| b & 0x80 != 0);
        let zero = content.iter().all(|b| *b == 0);
        self.check(!negative && !zero, positive, || {
            "the serial number is zero or negative".into()
        });
    }

    /// Flags extensions that appear twice.
    fn duplicates(&mut self, rule: &'static Rule, extensions: &[Extension]) {
        for (i, extension) in extensions.iter().enumerate() {
            if extensions[..i]
                .iter()
                .any(|e| e.extn_id == extension.extn_id)
            {
                self.flag(
                    rule,
                    format!("extension {} appears twice", extension.extn_id),
                );
            }
        }
    }

    /// Checks the URIs among `names` (CRL distribution points, authority information access).
    fn uris<'n>(&mut self, names: impl IntoIterator<Item = &'n GeneralName>) {
        for name in names {
            if let GeneralName::UniformResourceIdentifier(uri) = name {
                let text = uri.as_str();
                self.check(check_uri(text).is_ok(), &ACCESS_URI, || {
                    format!("URI '{text}'")
                });
            }
        }
    }

    /// Checks the URIs of CRL distribution points or of a freshest-CRL pointer.
    fn distribution_points(&mut self, points: &[DistributionPoint]) {
        for point in points {
            if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                self.uris(names);
            }
        }
    }

    fn finish(self) -> Report {
        self.report
    }
}

/// Decodes an extension's value as `T`, flagging `rule` when it does not decode.
fn decode<'a, T: Decode<'a>>(
    linter: &mut Linter<'_>,
    rule: &'static Rule,
    extension: &'a Extension,
    what: &str,
) -> Option<T> {
    match T::from_der(extension.extn_value.as_bytes()) {
        Ok(value) => Some(value),
        Err(e) => {
            linter.flag(rule, format!("{what} does not decode: {e}"));
            None
        }
    }
}
