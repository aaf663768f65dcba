//! Certificate templates: named rule sets a request is checked against and takes its defaults
//! from (validity, key types, usages, SAN rules, CA or not), and the built-in ones every
//! installation starts with.
//!
//! The rules themselves are pure (`rules`); `builtin` holds the shipped templates and `crud`
//! the stored ones.

mod builtin;
mod crud;
mod rules;

use serde::{Deserialize, Serialize};
use store::TemplateId;
use time::OffsetDateTime;

use crate::Result;
use crate::renewal::{KeyPolicy, LifetimeFraction, RenewWhen, RenewalPolicy};

pub use builtin::builtin_templates;
pub(crate) use rules::{Asked, Rules};

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
    /// Renew its certificates whose key certmint holds before they expire.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_renew: bool,
    /// With `auto_renew`: this many days before expiry (1 to 3650).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_before_days: Option<i64>,
    /// With `auto_renew`: once this share of the lifetime remains (between 0 and 1); a third
    /// when neither this nor `renew_before_days` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_lifetime_fraction: Option<LifetimeFraction>,
    /// With `auto_renew`: keep the key (`same_key`) or generate a new one (`rekey`).
    #[serde(default, skip_serializing_if = "is_same_key")]
    pub renew_key_policy: KeyPolicy,
}

fn is_same_key(policy: &KeyPolicy) -> bool {
    *policy == KeyPolicy::SameKey
}

impl TemplateSpec {
    /// This spec with `other`'s auto-renewal fields, for an editor that does not show them.
    #[must_use]
    pub fn with_renewal_of(self, other: &TemplateSpec) -> Self {
        Self {
            auto_renew: other.auto_renew,
            renew_before_days: other.renew_before_days,
            renew_lifetime_fraction: other.renew_lifetime_fraction,
            renew_key_policy: other.renew_key_policy,
            ..self
        }
    }

    /// The auto-renewal policy it gives its certificates, if it gives one.
    ///
    /// # Errors
    /// [`Error::Invalid`] for both a number of days and a share of the lifetime, or days out
    /// of range.
    pub fn renewal_policy(&self) -> Result<Option<RenewalPolicy>> {
        let when = RenewWhen::new(self.renew_before_days, self.renew_lifetime_fraction)?;
        Ok(self.auto_renew.then_some(RenewalPolicy {
            when,
            key_policy: self.renew_key_policy,
        }))
    }
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
    pub id: TemplateId,
    /// Shipped with certmint: read-only.
    pub builtin: bool,
    /// Name and rules.
    pub spec: TemplateSpec,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
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
