//! Profiles, one directory each: their rules, and creating, changing and deleting them.

use store::{AcmeProfileFields, AcmeProfileRow};

use super::{check_description, invalid};
use crate::acme::ChallengeType;
use crate::acme::identifiers::Allowed;
use crate::audit::Event;
use crate::templates::MAX_DAYS;
use crate::{Authority, Error, Permission, Principal, Result};

/// Names a profile may not take: the path segments of ACME's own URLs (`/acme/directory`,
/// `/acme/{profile}/acct/…`), which a profile of that name would shadow or be confused with.
pub const RESERVED_PROFILE_NAMES: &[&str] = &[
    "directory",
    "acct",
    "order",
    "authz",
    "chall",
    "cert",
    "new-nonce",
    "new-account",
    "new-order",
    "revoke-cert",
    "key-change",
    "renewal-info",
];

/// Longest terms-of-service or website URL.
const MAX_URL: usize = 2048;
/// Most allowed-identifier entries per profile.
const MAX_ALLOWED: usize = 1000;

/// A profile to create (`name` required) or change (`name` absent or unchanged: it is
/// immutable, being part of every URL clients hold).
#[derive(Debug, Clone, Default)]
pub struct AcmeProfileInput {
    /// The name in its URLs.
    pub name: Option<String>,
    /// The other fields; `None` leaves one as it is (or takes the default on create).
    pub fields: AcmeProfileFields,
}

fn check_name(name: &str) -> Result<()> {
    crate::validate::profile_name("ACME", name, RESERVED_PROFILE_NAMES)
}

fn check_url(field: &str, text: &str) -> Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let bad = || invalid(format!("{field} must be empty or an http(s) URL"));
    if text.len() > MAX_URL {
        return Err(invalid(format!(
            "{field} is longer than {MAX_URL} characters"
        )));
    }
    let url = url::Url::parse(text).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(())
}

/// Each entry read by the rule the protocol applies, written back in its canonical form;
/// repeats dropped.
fn canonical_allowed(entries: &[String]) -> Result<Vec<String>> {
    if entries.len() > MAX_ALLOWED {
        return Err(invalid(format!(
            "at most {MAX_ALLOWED} allowed identifiers per profile"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(entries.len());
    for entry in entries {
        let text = match Allowed::parse(entry.trim())
            .map_err(|e| invalid(format!("allowed identifier '{entry}': {e}")))?
        {
            Allowed::Suffix {
                name,
                subdomains_only,
            } => format!("{}{name}", if subdomains_only { "." } else { "" }),
            Allowed::Network { base, prefix } => format!("{base}/{prefix}"),
        };
        if !out.contains(&text) {
            out.push(text);
        }
    }
    Ok(out)
}

fn canonical_challenges(types: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for name in types {
        let kind = ChallengeType::parse(name).ok_or_else(|| {
            invalid(format!(
                "unknown challenge type '{name}'; expected http-01, dns-01 or tls-alpn-01"
            ))
        })?;
        let name = kind.as_str().to_owned();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    if out.is_empty() {
        return Err(invalid("a profile must offer at least one challenge type"));
    }
    Ok(out)
}

/// What `fields` changes, for the audit record.
fn changed(fields: &AcmeProfileFields) -> String {
    let names = [
        ("description", fields.description.is_some()),
        ("enabled", fields.enabled.is_some()),
        ("ca_id", fields.ca_id.is_some()),
        ("template_id", fields.template_id.is_some()),
        ("validity_days", fields.validity_days.is_some()),
        ("require_eab", fields.require_eab.is_some()),
        ("allowed_identifiers", fields.allowed_identifiers.is_some()),
        ("challenge_types", fields.challenge_types.is_some()),
        ("terms_of_service", fields.terms_of_service.is_some()),
        ("website", fields.website.is_some()),
    ];
    let set: Vec<&str> = names.iter().filter(|(_, s)| *s).map(|(n, _)| *n).collect();
    if set.is_empty() {
        "nothing".into()
    } else {
        set.join(", ")
    }
}

impl Authority {
    /// Checks the fields a profile is given and returns them in canonical form. `current` is
    /// the profile being changed (`None`: a new one, which starts from the table's defaults).
    pub(super) async fn checked_profile_fields(
        &self,
        mut fields: AcmeProfileFields,
        current: Option<&AcmeProfileRow>,
    ) -> Result<AcmeProfileFields> {
        if let Some(d) = &fields.description {
            check_description(d)?;
        }
        if let Some(Some(ca_id)) = fields.ca_id {
            self.ca(ca_id).await.map_err(|e| match e {
                Error::NotFound(_) => invalid(format!("CA {ca_id} does not exist")),
                other => other,
            })?;
            self.usable_issuer(Some(ca_id)).await.map_err(|e| match e {
                Error::NotFound(m) => invalid(m),
                other => other,
            })?;
        }
        if let Some(days) = fields.validity_days
            && !(1..=MAX_DAYS).contains(&days)
        {
            return Err(invalid(format!(
                "validity_days must be between 1 and {MAX_DAYS}"
            )));
        }
        if fields.template_id.is_some() || fields.validity_days.is_some() {
            let template_id = fields
                .template_id
                .unwrap_or_else(|| current.and_then(|p| p.template_id));
            // The table's default validity for a new profile.
            let days = fields
                .validity_days
                .unwrap_or_else(|| current.map_or(90, |p| p.validity_days));
            if let Some(id) = template_id {
                let template = self.template(id).await.map_err(|e| match e {
                    Error::NotFound(_) => invalid(format!("template {id} does not exist")),
                    other => other,
                })?;
                if template.spec.basic_constraints.ca {
                    return Err(invalid(format!(
                        "template '{}' issues CA certificates; ACME issues end-entity certificates",
                        template.spec.name
                    )));
                }
                let max = template
                    .spec
                    .max_validity_days
                    .unwrap_or(template.spec.validity_days);
                if days > max {
                    return Err(invalid(format!(
                        "validity_days {days} is more than template '{}' allows ({max})",
                        template.spec.name
                    )));
                }
            }
        }
        if let Some(entries) = &fields.allowed_identifiers {
            fields.allowed_identifiers = Some(canonical_allowed(entries)?);
        }
        if let Some(types) = &fields.challenge_types {
            fields.challenge_types = Some(canonical_challenges(types)?);
        }
        if let Some(t) = &fields.terms_of_service {
            check_url("terms_of_service", t)?;
        }
        if let Some(w) = &fields.website {
            check_url("website", w)?;
        }
        Ok(fields)
    }

    pub(super) async fn acme_profile_row(&self, id: i64) -> Result<AcmeProfileRow> {
        self.store
            .acme_profile(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("ACME profile {id} does not exist")))
    }

    /// Every ACME profile, by name.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; store errors.
    pub async fn acme_profiles(&self, principal: &Principal) -> Result<Vec<AcmeProfileRow>> {
        principal.require(Permission::ReadAcme, "listing ACME profiles")?;
        Ok(self.store.acme_profiles().await?)
    }

    /// ACME profile `id`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; [`Error::NotFound`].
    pub async fn acme_profile_details(
        &self,
        principal: &Principal,
        id: i64,
    ) -> Result<AcmeProfileRow> {
        principal.require(Permission::ReadAcme, "reading ACME profiles")?;
        self.acme_profile_row(id).await
    }

    /// Creates an ACME profile, served at once at `/acme/{name}/directory` (when enabled).
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:acme`; [`Error::Invalid`] for a bad or reserved
    /// name or a field that breaks its rule (unknown or unusable CA, unknown or CA template,
    /// validity out of range, bad allowed identifier, unknown or no challenge type, a URL that
    /// is not http(s)); [`Error::Conflict`] when the name is taken.
    pub async fn create_acme_profile(
        &self,
        principal: &Principal,
        input: AcmeProfileInput,
    ) -> Result<AcmeProfileRow> {
        principal.require(Permission::WriteAcme, "creating ACME profiles")?;
        let name = input
            .name
            .ok_or_else(|| invalid("a profile needs a name"))?;
        check_name(&name)?;
        let fields = self.checked_profile_fields(input.fields, None).await?;
        let mut tx = self.store.begin_write().await?;
        let id = match tx
            .insert_acme_profile(&name, false, &fields, self.now())
            .await
        {
            Ok(id) => id,
            Err(store::Error::Conflict(_)) => {
                return Err(Error::Conflict(format!(
                    "an ACME profile named '{name}' exists"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "acme_profile_created",
                "acme_profile",
                id,
                format!("'{name}'"),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.acme.profiles.forget();
        self.acme_profile_row(id).await
    }

    /// Changes the fields of ACME profile `id` that `input` sets; its name cannot change.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:acme`; [`Error::NotFound`]; [`Error::Invalid`] for
    /// a new name or a field that breaks its rule, as for
    /// [`Authority::create_acme_profile`].
    pub async fn update_acme_profile(
        &self,
        principal: &Principal,
        id: i64,
        input: AcmeProfileInput,
    ) -> Result<AcmeProfileRow> {
        principal.require(Permission::WriteAcme, "changing ACME profiles")?;
        let current = self.acme_profile_row(id).await?;
        if let Some(name) = &input.name
            && *name != current.name
        {
            return Err(invalid(format!(
                "a profile's name cannot change (it is in every URL its clients hold); \
                 '{}' stays '{}'",
                current.name, current.name
            )));
        }
        let fields = self
            .checked_profile_fields(input.fields, Some(&current))
            .await?;
        let mut tx = self.store.begin_write().await?;
        if !tx.update_acme_profile(id, &fields, self.now()).await? {
            return Err(Error::NotFound(format!("ACME profile {id} does not exist")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "acme_profile_updated",
                "acme_profile",
                id,
                format!("'{}': {}", current.name, changed(&fields)),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.acme.profiles.forget();
        self.acme_profile_row(id).await
    }

    /// Deletes ACME profile `id` with its accounts, orders and keys; certificates issued
    /// through it stay. The default profile cannot be deleted.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `delete:acme`; [`Error::NotFound`]; [`Error::Conflict`]
    /// for the default profile.
    pub async fn delete_acme_profile(&self, principal: &Principal, id: i64) -> Result<()> {
        principal.require(Permission::DeleteAcme, "deleting ACME profiles")?;
        let current = self.acme_profile_row(id).await?;
        if current.is_default {
            return Err(Error::Conflict(format!(
                "'{}' is the default ACME profile (at /acme/directory) and cannot be deleted; \
                 disable it instead",
                current.name
            )));
        }
        let mut tx = self.store.begin_write().await?;
        if !tx.delete_acme_profile(id).await? {
            return Err(Error::NotFound(format!("ACME profile {id} does not exist")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "acme_profile_deleted",
                "acme_profile",
                id,
                format!("'{}' with its accounts, orders and keys", current.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.acme.profiles.forget();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names() {
        for good in ["a", "internal", "team-7", &"x".repeat(63)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Upper",
            "under_score",
            "dot.ted",
            "sp ace",
            &"x".repeat(64),
        ] {
            assert!(matches!(check_name(bad), Err(Error::Invalid(_))), "{bad}");
        }
        for reserved in RESERVED_PROFILE_NAMES {
            assert!(
                matches!(check_name(reserved), Err(Error::Invalid(_))),
                "{reserved}"
            );
        }
    }

    #[test]
    fn allowed_identifiers_are_canonical() -> Result<()> {
        let entries: Vec<String> = [
            "Example.COM",
            ".example.org",
            "10.0.0.0/8",
            "192.0.2.7",
            "example.com",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            canonical_allowed(&entries)?,
            ["example.com", ".example.org", "10.0.0.0/8", "192.0.2.7/32"]
        );
        assert!(canonical_allowed(&["10.0.0.0/33".into()]).is_err());
        assert!(canonical_allowed(&["bad name!".into()]).is_err());
        Ok(())
    }

    #[test]
    fn challenge_types() {
        assert_eq!(
            canonical_challenges(&["dns-01".into(), "dns-01".into()]).ok(),
            Some(vec!["dns-01".to_owned()])
        );
        assert!(canonical_challenges(&[]).is_err());
        assert!(canonical_challenges(&["http-02".into()]).is_err());
    }

    #[test]
    fn urls() {
        for (text, accepted) in [
            ("", true),
            ("https://example.com/tos", true),
            ("ftp://example.com", false),
            ("example.com", false),
            ("javascript:alert(1)", false),
        ] {
            assert_eq!(check_url("website", text).is_ok(), accepted, "{text}");
        }
    }
}
