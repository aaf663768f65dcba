//! A template's rules in typed form, and how a request is checked against them and completed:
//! pure functions, no I/O.

use pki::cert::{ExtendedKeyUsage, KeyUsage};
use pki::{KeyType, SubjectAltName};

use super::{MAX_DAYS, TemplateSpec, default_validity};
use crate::renewal::RenewalPolicy;
use crate::{Error, Result};
use store::TemplateId;

/// A template's rules, checked and in typed form: what the issuance pipeline applies.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// The template, when there is one (none: certmint's TLS-server defaults, unrestricted).
    pub template: Option<(TemplateId, String)>,
    validity_days: i64,
    max_validity_days: i64,
    default_key: KeyType,
    allowed_key_types: Vec<KeyType>,
    key_usage: Vec<KeyUsage>,
    allowed_key_usage: Option<Vec<KeyUsage>>,
    extended_key_usage: Vec<ExtendedKeyUsage>,
    allowed_extended_key_usage: Option<Vec<ExtendedKeyUsage>>,
    ca: Option<Option<u8>>,
    san_types: Vec<String>,
    require_san: bool,
    allowed_domains: Vec<String>,
    ocsp_no_check: bool,
    /// The auto-renewal policy it gives its certificates.
    pub renewal: Option<RenewalPolicy>,
}

/// What a request comes to once its template is applied.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    pub validity_days: i64,
    pub key_usage: Vec<KeyUsage>,
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    pub ca: Option<Option<u8>>,
    pub ocsp_no_check: bool,
}

/// The request's side of the checks.
#[derive(Debug)]
pub(crate) struct Asked<'a> {
    pub validity_days: Option<i64>,
    pub key_type: KeyType,
    pub key_usage: Option<&'a [KeyUsage]>,
    pub extended_key_usage: Option<&'a [ExtendedKeyUsage]>,
    pub sans: &'a [SubjectAltName],
}

/// Extended key usages a request without a template may ask for. A delegated OCSP responder
/// (OCSPSigning) can answer "good" for revoked certificates, and anyExtendedKeyUsage or a
/// purpose certmint does not know may mean as much to a relying party: only a template that
/// names them gives them.
const UNTEMPLATED_EXTENDED_KEY_USAGE: [ExtendedKeyUsage; 5] = [
    ExtendedKeyUsage::ServerAuth,
    ExtendedKeyUsage::ClientAuth,
    ExtendedKeyUsage::CodeSigning,
    ExtendedKeyUsage::EmailProtection,
    ExtendedKeyUsage::TimeStamping,
];

impl Rules {
    /// No template: a TLS server certificate unless the request says otherwise; never a CA's
    /// key usages (keyCertSign, cRLSign) nor the extended key usages that only a template may
    /// give.
    pub fn unrestricted() -> Self {
        Self {
            template: None,
            validity_days: default_validity(),
            max_validity_days: MAX_DAYS,
            default_key: KeyType::EcP256,
            allowed_key_types: Vec::new(),
            key_usage: vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment],
            allowed_key_usage: Some(
                KeyUsage::ALL
                    .into_iter()
                    .filter(|u| ![KeyUsage::KeyCertSign, KeyUsage::CrlSign].contains(u))
                    .collect(),
            ),
            extended_key_usage: vec![ExtendedKeyUsage::ServerAuth],
            allowed_extended_key_usage: Some(UNTEMPLATED_EXTENDED_KEY_USAGE.to_vec()),
            ca: None,
            san_types: Vec::new(),
            require_san: false,
            allowed_domains: Vec::new(),
            ocsp_no_check: false,
            renewal: None,
        }
    }

    /// The key certmint generates when the request names none.
    pub fn default_key(&self) -> KeyType {
        self.default_key
    }

    /// The key types a request may have; any when empty.
    pub fn allowed_key_types(&self) -> &[KeyType] {
        &self.allowed_key_types
    }

    /// Whether a request must carry a SAN.
    pub fn requires_san(&self) -> bool {
        self.require_san
    }

    /// The longest validity these rules give, in days: the linter's cap.
    pub fn max_validity_days(&self) -> i64 {
        self.max_validity_days
    }

    fn named(&self) -> String {
        match &self.template {
            Some((_, name)) => format!("template '{name}'"),
            None => "a request without a template".into(),
        }
    }

    /// What to do about a usage the rules refuse.
    fn remedy(&self) -> &'static str {
        match self.template {
            Some(_) => "",
            None => "; only a template that allows it can give it",
        }
    }

    /// Checks a request and fills in what it left out.
    pub fn apply(&self, asked: &Asked<'_>) -> Result<Applied> {
        let who = self.named();
        let days = asked.validity_days.unwrap_or(self.validity_days);
        if days < 1 || days > self.max_validity_days {
            return Err(Error::Invalid(format!(
                "validity_days must be between 1 and {} ({who})",
                self.max_validity_days
            )));
        }
        if !self.allowed_key_types.is_empty() && !self.allowed_key_types.contains(&asked.key_type) {
            return Err(Error::Invalid(format!(
                "{who} does not allow {} keys; allowed: {}",
                asked.key_type.label(),
                labels(&self.allowed_key_types)
            )));
        }
        let key_usage = within(
            asked.key_usage,
            &self.key_usage,
            self.allowed_key_usage.as_deref(),
        )
        .map_err(|u| {
            Error::Invalid(format!(
                "{who} does not allow key usage {}{}",
                u.as_str(),
                self.remedy()
            ))
        })?;
        let extended_key_usage = within(
            asked.extended_key_usage,
            &self.extended_key_usage,
            self.allowed_extended_key_usage.as_deref(),
        )
        .map_err(|u| {
            Error::Invalid(format!(
                "{who} does not allow extended key usage {}{}",
                u.as_string(),
                self.remedy()
            ))
        })?;
        self.check_sans(asked.sans, &who)?;
        Ok(Applied {
            validity_days: days,
            key_usage,
            extended_key_usage,
            ca: self.ca,
            ocsp_no_check: self.ocsp_no_check,
        })
    }

    fn check_sans(&self, sans: &[SubjectAltName], who: &str) -> Result<()> {
        if self.require_san && sans.is_empty() {
            let kinds = if self.san_types.is_empty() {
                "any kind".to_owned()
            } else {
                self.san_types.join(" or ")
            };
            return Err(Error::Invalid(format!(
                "{who} needs at least one subject alternative name ({kinds})"
            )));
        }
        for san in sans {
            if !self.san_types.is_empty() && !self.san_types.iter().any(|k| k == san.kind()) {
                return Err(Error::Invalid(format!(
                    "{who} does not allow {} names such as '{}'; allowed: {}",
                    san.kind(),
                    san.value(),
                    self.san_types.join(", ")
                )));
            }
            if let SubjectAltName::Dns(name) = san
                && !self.allowed_domains.is_empty()
                && !self.allowed_domains.iter().any(|d| in_domain(name, d))
            {
                return Err(Error::RejectedIdentifier(format!(
                    "{who} does not allow the DNS name '{name}'; allowed domains: {}",
                    self.allowed_domains.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// The request's values when it gave some, each within `allowed`; `defaults` otherwise.
fn within<T: Clone + PartialEq>(
    asked: Option<&[T]>,
    defaults: &[T],
    allowed: Option<&[T]>,
) -> std::result::Result<Vec<T>, T> {
    let Some(asked) = asked else {
        return Ok(defaults.to_vec());
    };
    if let Some(allowed) = allowed
        && let Some(bad) = asked.iter().find(|v| !allowed.contains(v))
    {
        return Err(bad.clone());
    }
    Ok(asked.to_vec())
}

fn in_domain(name: &str, domain: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    name == domain
        || name
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

fn labels(types: &[KeyType]) -> String {
    types
        .iter()
        .map(|t| t.label())
        .collect::<Vec<_>>()
        .join(", ")
}

impl TemplateSpec {
    /// Checks every rule, for a template not stored yet.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the first rule that is wrong.
    pub(crate) fn check(&self) -> Result<()> {
        // The id only labels the policy it returns, which is dropped here.
        self.rules(TemplateId(0)).map(drop)
    }

    /// The key type `key_algorithm`, `key_size` and `curve` name, if they name one; without
    /// it, certificates get the first of `allowed_key_types`, or EC P-256.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a combination that names no supported key.
    pub fn named_key(&self) -> Result<Option<KeyType>> {
        // A size alone names an RSA key, a curve alone an EC key.
        let algorithm = match (&self.key_algorithm, self.key_size, &self.curve) {
            (Some(alg), _, _) => alg.as_str(),
            (None, Some(_), None) => "RSA",
            (None, None, Some(_)) => "EC",
            (None, Some(_), Some(_)) => {
                return Err(Error::Invalid(
                    "key_size and curve together need key_algorithm".into(),
                ));
            }
            (None, None, None) => return Ok(None),
        };
        Ok(Some(KeyType::parse(
            algorithm,
            self.key_size,
            self.curve.as_deref(),
        )?))
    }

    /// Checks every rule and returns the typed policy.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the first rule that is wrong.
    pub(crate) fn rules(&self, id: TemplateId) -> Result<Rules> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::Invalid(
                "a template name must have 1 to 100 characters".into(),
            ));
        }
        let bad = |what: String| Error::Invalid(format!("template '{name}': {what}"));
        let max = self.max_validity_days.unwrap_or(self.validity_days);
        if !(1..=MAX_DAYS).contains(&self.validity_days) || !(1..=MAX_DAYS).contains(&max) {
            return Err(bad(format!(
                "validity_days and max_validity_days must be between 1 and {MAX_DAYS}"
            )));
        }
        if max < self.validity_days {
            return Err(bad("max_validity_days is below validity_days".into()));
        }
        let allowed_key_types = self
            .allowed_key_types
            .iter()
            .map(|l| KeyType::from_label(l))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let default_key = match self.named_key().map_err(|e| bad(e.to_string()))? {
            Some(key) => key,
            None => allowed_key_types
                .first()
                .copied()
                .unwrap_or(KeyType::EcP256),
        };
        if !allowed_key_types.is_empty() && !allowed_key_types.contains(&default_key) {
            return Err(bad(format!(
                "the default key {} is not among allowed_key_types",
                default_key.label()
            )));
        }
        let key_usage = self
            .key_usage
            .iter()
            .map(|u| KeyUsage::parse(u))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let extended_key_usage = self
            .extended_key_usage
            .iter()
            .map(|u| ExtendedKeyUsage::parse(u))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let constraints = &self.basic_constraints;
        if constraints.ca && !key_usage.contains(&KeyUsage::KeyCertSign) {
            return Err(bad("a CA template needs the keyCertSign key usage".into()));
        }
        if !constraints.ca && constraints.path_length.is_some() {
            return Err(bad("path_length is for CA templates only".into()));
        }
        if !constraints.ca && key_usage.contains(&KeyUsage::KeyCertSign) {
            return Err(bad(
                "keyCertSign is for CA templates only (set basic_constraints.ca)".into(),
            ));
        }
        let mut san_types = Vec::new();
        for kind in &self.san_types {
            let kind = kind.to_ascii_lowercase();
            if !SubjectAltName::KINDS.contains(&kind.as_str()) {
                return Err(bad(format!(
                    "unknown SAN type '{kind}'; use {}",
                    SubjectAltName::KINDS.join(", ")
                )));
            }
            san_types.push(kind);
        }
        let allowed_domains = self
            .allowed_domains
            .iter()
            .map(|d| pki::name::check_dns_name(d, false))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let renewal = self.renewal_policy().map_err(|e| bad(e.to_string()))?;
        Ok(Rules {
            template: Some((id, name.to_owned())),
            validity_days: self.validity_days,
            max_validity_days: max,
            default_key,
            allowed_key_types,
            allowed_key_usage: Some(key_usage.clone()),
            key_usage,
            allowed_extended_key_usage: Some(extended_key_usage.clone()),
            extended_key_usage,
            ca: constraints.ca.then_some(constraints.path_length),
            san_types,
            require_san: self.require_san,
            allowed_domains,
            ocsp_no_check: self.ocsp_no_check,
            renewal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::builtin_templates;

    #[test]
    fn names_in_domains() {
        for (name, domain, inside) in [
            ("example.com", "example.com", true),
            ("www.example.com", "example.com", true),
            ("*.example.com", "example.com", true),
            ("a.b.example.com", "example.com", true),
            ("badexample.com", "example.com", false),
            ("example.com.evil.test", "example.com", false),
            ("com", "example.com", false),
        ] {
            assert_eq!(in_domain(name, domain), inside, "{name} in {domain}");
        }
    }

    #[test]
    fn requested_values_stay_within_the_allowed() {
        let allowed = [1, 2, 3];
        for (asked, expected) in [
            (None, Ok(vec![9])),
            (Some(&[1, 3][..]), Ok(vec![1, 3])),
            (Some(&[][..]), Ok(vec![])),
            (Some(&[2, 4][..]), Err(4)),
        ] {
            assert_eq!(within(asked, &[9], Some(&allowed)), expected, "{asked:?}");
        }
        assert_eq!(within(Some(&[7]), &[9], None), Ok(vec![7]));
    }

    #[test]
    fn broken_specs_are_refused() {
        type Break = fn(&mut TemplateSpec);
        let cases: [(&str, Break); 9] = [
            ("a blank name", |s| s.name = " ".into()),
            ("no validity", |s| s.validity_days = 0),
            ("more than ten years", |s| {
                s.max_validity_days = Some(MAX_DAYS + 1)
            }),
            ("a maximum below the default", |s| {
                s.max_validity_days = Some(s.validity_days - 1);
            }),
            ("a size and a curve without an algorithm", |s| {
                s.key_size = Some(2048);
                s.curve = Some("P-256".into());
            }),
            ("a CA without keyCertSign", |s| {
                s.basic_constraints.ca = true
            }),
            ("a path length on a leaf", |s| {
                s.basic_constraints.path_length = Some(0);
            }),
            ("keyCertSign on a leaf", |s| {
                s.key_usage.push("keyCertSign".into())
            }),
            ("an unknown SAN type", |s| s.san_types.push("x400".into())),
        ];
        for (what, break_it) in cases {
            let mut spec = builtin_templates().remove(0);
            break_it(&mut spec);
            assert!(matches!(spec.check(), Err(Error::Invalid(_))), "{what}");
        }
    }

    #[test]
    fn builtin_templates_pass_their_own_checks() {
        for spec in builtin_templates() {
            assert!(spec.check().is_ok(), "{}", spec.name);
        }
    }
}
