//! Certificate templates: named rule sets a request is checked against and takes its defaults
//! from (validity, key types, usages, SAN rules, CA or not), and the built-in ones every
//! installation starts with.

use pki::cert::{ExtendedKeyUsage, KeyUsage};
use pki::{KeyType, SubjectAltName};
use serde::{Deserialize, Serialize};
use store::{NewTemplate, TemplateRow};
use time::OffsetDateTime;

use crate::Permission;
use crate::audit::Event;
use crate::{Authority, Error, Principal, Result};

/// Longest validity any template may allow: 10 years.
pub(crate) const MAX_DAYS: i64 = 3650;

/// A template as written and read through the API, exported and imported: its name and rules.
/// The stored body is this document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// Display name, unique.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Validity when the request gives none, in days.
    #[serde(default = "default_validity")]
    pub validity_days: i64,
    /// The longest validity a request may ask for; `validity_days` when absent.
    #[serde(default)]
    pub max_validity_days: Option<i64>,
    /// The key certmint generates when the request names none: RSA, EC or Ed25519.
    #[serde(default)]
    pub key_algorithm: Option<String>,
    /// With `key_algorithm`: RSA bits or EC size.
    #[serde(default)]
    pub key_size: Option<u32>,
    /// With `key_algorithm` EC: P-256 or P-384.
    #[serde(default)]
    pub curve: Option<String>,
    /// Key types a certificate may have (`EC P-256`, `RSA 3072`, …); any when empty.
    #[serde(default)]
    pub allowed_key_types: Vec<String>,
    /// Key usages issued, and the most a request may ask for.
    #[serde(default)]
    pub key_usage: Vec<String>,
    /// Extended key usages issued, and the most a request may ask for.
    #[serde(default)]
    pub extended_key_usage: Vec<String>,
    /// Whether certificates are CAs, and their path length.
    #[serde(default)]
    pub basic_constraints: BasicConstraints,
    /// SAN kinds allowed (`dns`, `ip`, `email`, `uri`); any when empty.
    #[serde(default)]
    pub san_types: Vec<String>,
    /// Whether a request must carry at least one SAN.
    #[serde(default)]
    pub require_san: bool,
    /// DNS names must be one of these domains or under one; any when empty.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Adds id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1), for OCSP responder certificates.
    #[serde(default)]
    pub ocsp_no_check: bool,
}

fn default_validity() -> i64 {
    365
}

/// The basic constraints a template gives its certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicConstraints {
    /// A CA certificate.
    #[serde(default)]
    pub ca: bool,
    /// Path length constraint, for a CA.
    #[serde(default)]
    pub path_length: Option<u8>,
}

/// A stored template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Integer id.
    pub id: i64,
    /// Shipped with certmint: read-only.
    pub builtin: bool,
    /// Name and rules.
    pub spec: TemplateSpec,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl Template {
    fn from_row(row: TemplateRow) -> Result<Self> {
        let mut spec: TemplateSpec = serde_json::from_str(&row.body).map_err(|e| {
            Error::Internal(format!("stored template {} does not parse: {e}", row.id))
        })?;
        spec.name = row.name;
        spec.description = row.description;
        Ok(Self {
            id: row.id,
            builtin: row.builtin,
            spec,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    /// New templates.
    pub imported: usize,
    /// Existing templates replaced.
    pub updated: usize,
    /// Templates left alone: the name exists and updating was not asked for, or it is built in.
    pub skipped: usize,
}

/// A template's rules, checked and in typed form: what the issuance pipeline applies.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// The template, when there is one (none: certmint's TLS-server defaults, unrestricted).
    pub template: Option<(i64, String)>,
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
        }
    }

    /// The key certmint generates when the request names none.
    pub fn default_key(&self) -> KeyType {
        self.default_key
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
    /// Checks every rule and returns the typed policy.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the first rule that is wrong.
    pub(crate) fn rules(&self, id: i64) -> Result<Rules> {
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
        // A size alone names an RSA key, a curve alone an EC key.
        let algorithm = match (&self.key_algorithm, self.key_size, &self.curve) {
            (Some(alg), _, _) => Some(alg.as_str()),
            (None, Some(_), None) => Some("RSA"),
            (None, None, Some(_)) => Some("EC"),
            (None, Some(_), Some(_)) => {
                return Err(bad("key_size and curve together need key_algorithm".into()));
            }
            (None, None, None) => None,
        };
        let default_key = match algorithm {
            Some(alg) => KeyType::parse(alg, self.key_size, self.curve.as_deref())
                .map_err(|e| bad(e.to_string()))?,
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
        })
    }

    fn to_row(&self, builtin: bool) -> Result<NewTemplate> {
        let body = serde_json::to_string(self)
            .map_err(|e| Error::Internal(format!("cannot write the template: {e}")))?;
        Ok(NewTemplate {
            name: self.name.trim().to_owned(),
            description: self.description.clone(),
            builtin,
            body,
        })
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The templates every installation starts with.
pub fn builtin_templates() -> Vec<TemplateSpec> {
    let base = |name: &str, description: &str| TemplateSpec {
        name: name.into(),
        description: Some(description.into()),
        validity_days: 365,
        max_validity_days: None,
        key_algorithm: None,
        key_size: None,
        curve: None,
        allowed_key_types: Vec::new(),
        key_usage: strings(&["digitalSignature", "keyEncipherment"]),
        extended_key_usage: Vec::new(),
        basic_constraints: BasicConstraints::default(),
        san_types: Vec::new(),
        require_san: false,
        allowed_domains: Vec::new(),
        ocsp_no_check: false,
    };
    vec![
        TemplateSpec {
            max_validity_days: Some(397),
            extended_key_usage: strings(&["serverAuth"]),
            san_types: strings(&["dns", "ip"]),
            require_san: true,
            ..base(
                "TLS Server",
                "HTTPS and other TLS servers: DNS and IP names, at most 397 days (CA/Browser Forum)",
            )
        },
        TemplateSpec {
            max_validity_days: Some(825),
            key_usage: strings(&["digitalSignature"]),
            extended_key_usage: strings(&["clientAuth"]),
            ..base(
                "TLS Client",
                "TLS client authentication (mTLS) for users and machines",
            )
        },
        TemplateSpec {
            max_validity_days: Some(397),
            extended_key_usage: strings(&["serverAuth", "clientAuth"]),
            san_types: strings(&["dns", "ip", "uri"]),
            require_san: true,
            ..base(
                "TLS Server and Client",
                "Services that both accept and make TLS connections (service mesh, mTLS peers)",
            )
        },
        TemplateSpec {
            max_validity_days: Some(1095),
            key_usage: strings(&["digitalSignature"]),
            extended_key_usage: strings(&["codeSigning"]),
            san_types: strings(&["email", "uri"]),
            ..base("Code Signing", "Signing software and scripts")
        },
        TemplateSpec {
            max_validity_days: Some(825),
            key_usage: strings(&["digitalSignature", "keyEncipherment", "nonRepudiation"]),
            extended_key_usage: strings(&["emailProtection"]),
            san_types: strings(&["email"]),
            require_san: true,
            ..base("S/MIME Email", "Signing and encrypting e-mail (S/MIME)")
        },
        TemplateSpec {
            validity_days: 90,
            max_validity_days: Some(365),
            key_usage: strings(&["digitalSignature"]),
            extended_key_usage: strings(&["OCSPSigning"]),
            ocsp_no_check: true,
            ..base(
                "OCSP Signing",
                "Delegated OCSP responders (RFC 6960), with id-pkix-ocsp-nocheck",
            )
        },
        TemplateSpec {
            validity_days: 1825,
            max_validity_days: Some(3650),
            key_usage: strings(&["digitalSignature", "keyCertSign", "cRLSign"]),
            basic_constraints: BasicConstraints {
                ca: true,
                path_length: Some(0),
            },
            ..base(
                "Subordinate CA",
                "A CA below one of certmint's, issuing end-entity certificates only (path length 0)",
            )
        },
    ]
}

impl Authority {
    /// Every template, by id.
    ///
    /// # Errors
    /// Store errors.
    pub async fn templates(&self) -> Result<Vec<Template>> {
        self.store
            .templates()
            .await?
            .into_iter()
            .map(Template::from_row)
            .collect()
    }

    /// Template `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn template(&self, id: i64) -> Result<Template> {
        let row = self
            .store
            .template(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("template {id} does not exist")))?;
        Template::from_row(row)
    }

    /// The policy for an issuance request naming `template_id`, or the unrestricted one.
    /// A template that does not exist is a mistake in the request, not a missing resource.
    pub(crate) async fn rules(&self, template_id: Option<i64>) -> Result<Rules> {
        let Some(id) = template_id else {
            return Ok(Rules::unrestricted());
        };
        let template = self.template(id).await.map_err(|e| match e {
            Error::NotFound(m) => Error::Invalid(m),
            other => other,
        })?;
        template.spec.rules(id)
    }

    /// Creates a template.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:templates`; [`Error::Invalid`] for a broken rule;
    /// [`Error::Conflict`] when the name is taken.
    pub async fn create_template(
        &self,
        principal: &Principal,
        spec: TemplateSpec,
    ) -> Result<Template> {
        principal.require(Permission::WriteTemplates, "creating templates")?;
        spec.rules(0)?;
        let row = spec.to_row(false)?;
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let id = tx
            .insert_template(&row, now)
            .await
            .map_err(name_taken(&row.name))?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "template_created",
                "template",
                id,
                format!("'{}'", row.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.template(id).await
    }

    /// Replaces template `id`'s name and rules.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:templates`; [`Error::NotFound`]; [`Error::Conflict`]
    /// for a built-in template or a name that is taken; [`Error::Invalid`] for a broken rule.
    pub async fn update_template(
        &self,
        principal: &Principal,
        id: i64,
        spec: TemplateSpec,
    ) -> Result<Template> {
        principal.require(Permission::WriteTemplates, "changing templates")?;
        let before = self.template(id).await?;
        if before.builtin {
            return Err(read_only(&before.spec.name));
        }
        spec.rules(id)?;
        let row = spec.to_row(false)?;
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        if !tx
            .update_template(id, &row, now)
            .await
            .map_err(name_taken(&row.name))?
        {
            return Err(Error::NotFound(format!("template {id} does not exist")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "template_updated",
                "template",
                id,
                format!("'{}' (was '{}')", row.name, before.spec.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.template(id).await
    }

    /// Deletes template `id`. Certificates issued from it stay, unlinked.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `delete:templates`; [`Error::NotFound`]; [`Error::Conflict`]
    /// for a built-in template.
    pub async fn delete_template(&self, principal: &Principal, id: i64) -> Result<()> {
        principal.require(Permission::DeleteTemplates, "deleting templates")?;
        let before = self.template(id).await?;
        if before.builtin {
            return Err(read_only(&before.spec.name));
        }
        let mut tx = self.store.begin_write().await?;
        if !tx.delete_template(id).await? {
            return Err(Error::NotFound(format!("template {id} does not exist")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "template_deleted",
                "template",
                id,
                format!("'{}'", before.spec.name),
            ),
        ))
        .await?;
        Ok(tx.commit().await?)
    }

    /// Imports templates in one transaction: all of them or, if one is invalid, none. A name
    /// that exists is replaced with `update_existing`, skipped otherwise; built-in templates
    /// are always skipped.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:templates`; [`Error::Invalid`] naming the first
    /// broken template.
    pub async fn import_templates(
        &self,
        principal: &Principal,
        specs: Vec<TemplateSpec>,
        update_existing: bool,
    ) -> Result<ImportCounts> {
        principal.require(Permission::WriteTemplates, "importing templates")?;
        let mut rows = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            spec.rules(0)
                .map_err(|e| Error::Invalid(format!("template {} of the file: {e}", i + 1)))?;
            rows.push(spec.to_row(false)?);
        }
        let now = self.now();
        let mut counts = ImportCounts::default();
        let mut tx = self.store.begin_write().await?;
        for row in &rows {
            let (id, action) = match tx.template_named(&row.name).await? {
                Some(existing) if existing.builtin || !update_existing => {
                    counts.skipped += 1;
                    continue;
                }
                Some(existing) => {
                    tx.update_template(existing.id, row, now).await?;
                    counts.updated += 1;
                    (existing.id, "template_updated")
                }
                None => {
                    counts.imported += 1;
                    (
                        tx.insert_template(row, now)
                            .await
                            .map_err(name_taken(&row.name))?,
                        "template_created",
                    )
                }
            };
            tx.audit(&self.entry_by(
                principal,
                Event::new(action, "template", id, format!("'{}' (imported)", row.name)),
            ))
            .await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    /// Stores the built-in templates that are missing (by name); run at every start. Shipped
    /// data, not anyone's action, so not audited.
    ///
    /// # Errors
    /// Store errors.
    pub async fn ensure_builtin_templates(&self) -> Result<()> {
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        for spec in builtin_templates() {
            if tx.template_named(&spec.name).await?.is_none() {
                tx.insert_template(&spec.to_row(true)?, now).await?;
            }
        }
        Ok(tx.commit().await?)
    }
}

fn read_only(name: &str) -> Error {
    Error::Conflict(format!(
        "'{name}' is a built-in template and cannot be changed or deleted; export it and import \
         a copy under another name"
    ))
}

fn name_taken(name: &str) -> impl FnOnce(store::Error) -> Error + '_ {
    move |e| match e {
        store::Error::Conflict => Error::Conflict(format!("a template named '{name}' exists")),
        other => other.into(),
    }
}
