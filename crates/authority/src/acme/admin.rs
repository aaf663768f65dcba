//! ACME administration, for people through the REST API: the instance-wide settings, the
//! statistics, the accounts and orders clients made, the profiles (one directory each) and
//! their external account binding keys.
//!
//! Every function takes the caller's [`Principal`] and checks its permission here
//! (`read:acme`, `write:acme`, `delete:acme`); every change is audited in its own transaction
//! and drops the protocol's profile snapshot, so this node serves the change at once (other
//! nodes within [`crate::STALE_AFTER`]).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use store::{
    AcmeAccountRow, AcmeCounts, AcmeEabKeyRow, AcmeFilter, AcmeOrderRow, AcmeProfileFields,
    AcmeProfileRow, AcmeState, Page, PageRequest,
};
use zeroize::Zeroizing;

use super::ChallengeType;
use super::identifiers::Allowed;
use crate::Permission;
use crate::audit::Event;
use crate::templates::MAX_DAYS;
use crate::{Authority, Error, Principal, Result};

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

/// The context the vault seals external account binding keys under; the protocol opens them
/// with the same one.
const EAB_CONTEXT: &str = "acme-eab-key";
/// Longest description of a profile or a key.
const MAX_DESCRIPTION: usize = 1000;
/// Longest terms-of-service or website URL.
const MAX_URL: usize = 2048;
/// Most allowed-identifier entries per profile.
const MAX_ALLOWED: usize = 1000;
/// Highest hourly rate limit that can be set (0 is none).
const MAX_RATE: i64 = 1_000_000;
/// Statuses an account can have.
const ACCOUNT_STATUSES: &[&str] = &["valid", "deactivated", "revoked"];
/// Statuses an order can have.
const ORDER_STATUSES: &[&str] = &["pending", "ready", "processing", "valid", "invalid"];

/// The instance-wide ACME settings, with the default profile that `/acme/directory` serves
/// (whose CA and validity the reference's settings show).
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// The switch, and the rate limits.
    pub state: AcmeState,
    /// The profile at `/acme/directory`, when there is one.
    pub default_profile: Option<AcmeProfileRow>,
}

/// A change to the settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AcmeSettingsChange {
    /// Whether ACME serves at all.
    pub enabled: Option<bool>,
    /// New orders per account and hour; 0 is no limit.
    pub orders_per_account_hour: Option<i64>,
    /// New accounts per client address and hour; 0 is no limit.
    pub accounts_per_address_hour: Option<i64>,
    /// The default profile's issuing CA (`Some(None)`: the default CA).
    pub issuing_ca_id: Option<Option<i64>>,
    /// The default profile's validity, in days.
    pub validity_days: Option<i64>,
    /// Whether ACME orders wait for an approval. Only `false` is accepted: certmint has no
    /// approval step for ACME orders, and a setting it cannot enforce is not stored.
    pub require_approval: Option<bool>,
}

/// Counts for the statistics page.
#[derive(Debug, Clone)]
pub struct AcmeStats {
    /// Whether ACME serves at all.
    pub enabled: bool,
    /// Accounts and orders by status, profiles, keys not revoked.
    pub counts: AcmeCounts,
    /// Profiles whose directory serves.
    pub profiles_enabled: i64,
}

/// A profile to create (`name` required) or change (`name` absent or unchanged: it is
/// immutable, being part of every URL clients hold).
#[derive(Debug, Clone, Default)]
pub struct AcmeProfileInput {
    /// The name in its URLs.
    pub name: Option<String>,
    /// The other fields; `None` leaves one as it is (or takes the default on create).
    pub fields: AcmeProfileFields,
}

/// An order with what an administrator wants to know about where it came from.
#[derive(Debug, Clone)]
pub struct AcmeOrderDetails {
    /// The order.
    pub order: AcmeOrderRow,
    /// The account that placed it, when it still exists.
    pub account: Option<AcmeAccountRow>,
}

/// A new external account binding key, with its HMAC key as the client needs it. The HMAC
/// key is shown this once: only its sealed form is stored.
#[derive(Debug, Clone)]
pub struct IssuedEabKey {
    /// The stored key (the HMAC sealed).
    pub key: AcmeEabKeyRow,
    /// The HMAC key, base64url without padding (`--eab-hmac-key`).
    pub hmac_key: Zeroizing<String>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

fn check_name(name: &str) -> Result<()> {
    let well_formed = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !well_formed {
        return Err(invalid(format!(
            "profile name '{name}' must be 1 to 63 lowercase letters, digits or hyphens"
        )));
    }
    if RESERVED_PROFILE_NAMES.contains(&name) {
        return Err(invalid(format!(
            "profile name '{name}' is reserved: ACME's own URLs use it"
        )));
    }
    Ok(())
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

fn check_description(text: &str) -> Result<()> {
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(invalid(format!(
            "description is longer than {MAX_DESCRIPTION} characters"
        )));
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

fn check_rate(field: &str, value: i64) -> Result<()> {
    if !(0..=MAX_RATE).contains(&value) {
        return Err(invalid(format!(
            "{field} must be between 0 (no limit) and {MAX_RATE}"
        )));
    }
    Ok(())
}

fn check_status(what: &str, status: Option<&str>, known: &[&str]) -> Result<()> {
    match status {
        Some(s) if !known.contains(&s) => Err(Error::Malformed(format!(
            "unknown {what} status '{s}'; expected one of {}",
            known.join(", ")
        ))),
        _ => Ok(()),
    }
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
    async fn checked_profile_fields(
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

    async fn acme_profile_row(&self, id: i64) -> Result<AcmeProfileRow> {
        self.store
            .acme_profile(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("ACME profile {id} does not exist")))
    }

    /// The instance-wide ACME settings and the default profile.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; store errors.
    pub async fn acme_settings(&self, principal: &Principal) -> Result<AcmeSettings> {
        principal.require(Permission::ReadAcme, "reading the ACME settings")?;
        self.acme_settings_row().await
    }

    async fn acme_settings_row(&self) -> Result<AcmeSettings> {
        Ok(AcmeSettings {
            state: self.store.acme_state().await?,
            default_profile: self.store.default_acme_profile().await?,
        })
    }

    /// Changes the instance-wide settings and the default profile's CA and validity, in one
    /// audited transaction.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:acme`; [`Error::Invalid`] for a value out of range,
    /// an unknown or unusable CA, or `require_approval: true` (not supported);
    /// [`Error::Conflict`] for profile fields when there is no default profile.
    pub async fn update_acme_settings(
        &self,
        principal: &Principal,
        change: AcmeSettingsChange,
    ) -> Result<AcmeSettings> {
        principal.require(Permission::WriteAcme, "changing the ACME settings")?;
        if change.require_approval == Some(true) {
            return Err(invalid(
                "require_approval is not supported: ACME orders are issued once their \
                 authorizations are valid, without an approval step",
            ));
        }
        if let Some(v) = change.orders_per_account_hour {
            check_rate("orders_per_account_hour", v)?;
        }
        if let Some(v) = change.accounts_per_address_hour {
            check_rate("accounts_per_address_hour", v)?;
        }
        let before = self.acme_settings_row().await?;
        let fields = AcmeProfileFields {
            ca_id: change.issuing_ca_id,
            validity_days: change.validity_days,
            ..AcmeProfileFields::default()
        };
        let profile_change = fields.ca_id.is_some() || fields.validity_days.is_some();
        let default_profile = match (&before.default_profile, profile_change) {
            (Some(p), true) => Some((p.id, self.checked_profile_fields(fields, Some(p)).await?)),
            (None, true) => {
                return Err(Error::Conflict(
                    "there is no default ACME profile whose CA or validity could be set".into(),
                ));
            }
            (_, false) => None,
        };
        let state = AcmeState {
            enabled: change.enabled.unwrap_or(before.state.enabled),
            orders_per_account_hour: change
                .orders_per_account_hour
                .unwrap_or(before.state.orders_per_account_hour),
            accounts_per_address_hour: change
                .accounts_per_address_hour
                .unwrap_or(before.state.accounts_per_address_hour),
        };
        if state == before.state && default_profile.is_none() {
            return Ok(before);
        }
        let mut details = Vec::new();
        if state.enabled != before.state.enabled {
            details.push(format!("enabled {}", state.enabled));
        }
        if state.orders_per_account_hour != before.state.orders_per_account_hour {
            details.push(format!(
                "orders_per_account_hour {}",
                state.orders_per_account_hour
            ));
        }
        if state.accounts_per_address_hour != before.state.accounts_per_address_hour {
            details.push(format!(
                "accounts_per_address_hour {}",
                state.accounts_per_address_hour
            ));
        }
        if let Some(ca) = change.issuing_ca_id {
            details.push(match ca {
                Some(id) => format!("issuing_ca_id {id}"),
                None => "issuing_ca_id default CA".into(),
            });
        }
        if let Some(days) = change.validity_days {
            details.push(format!("validity_days {days}"));
        }
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        tx.set_acme_state(&state).await?;
        if let Some((id, fields)) = &default_profile {
            tx.update_acme_profile(*id, fields, now).await?;
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "acme_settings_updated",
                "acme_settings",
                1,
                if details.is_empty() {
                    "unchanged".to_owned()
                } else {
                    details.join(", ")
                },
            ),
        ))
        .await?;
        tx.commit().await?;
        self.acme.profiles.forget();
        self.acme_settings_row().await
    }

    /// Accounts and orders by status, profiles and keys.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; store errors.
    pub async fn acme_stats(&self, principal: &Principal) -> Result<AcmeStats> {
        principal.require(Permission::ReadAcme, "reading ACME statistics")?;
        let profiles_enabled = self
            .store
            .acme_profiles()
            .await?
            .iter()
            .filter(|p| p.enabled)
            .count();
        Ok(AcmeStats {
            enabled: self.store.acme_state().await?.enabled,
            counts: self.store.acme_counts().await?,
            profiles_enabled: i64::try_from(profiles_enabled).unwrap_or(i64::MAX),
        })
    }

    /// One page of ACME accounts, newest first, filtered by profile and status.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; [`Error::Malformed`] for an unknown status;
    /// store errors.
    pub async fn acme_accounts(
        &self,
        principal: &Principal,
        filter: &AcmeFilter,
        page: PageRequest,
    ) -> Result<Page<AcmeAccountRow>> {
        principal.require(Permission::ReadAcme, "listing ACME accounts")?;
        check_status("account", filter.status.as_deref(), ACCOUNT_STATUSES)?;
        Ok(self.store.acme_accounts(filter, page).await?)
    }

    /// ACME account `id`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; [`Error::NotFound`].
    pub async fn acme_account_details(
        &self,
        principal: &Principal,
        id: i64,
    ) -> Result<AcmeAccountRow> {
        principal.require(Permission::ReadAcme, "reading ACME accounts")?;
        self.acme_account_row(id).await
    }

    async fn acme_account_row(&self, id: i64) -> Result<AcmeAccountRow> {
        self.store
            .acme_account_by_id(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("ACME account {id} does not exist")))
    }

    /// Deactivates ACME account `id` for its holder (RFC 8555 §7.3.6): it can make no more
    /// requests; its certificates stay valid.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:acme`; [`Error::NotFound`]; [`Error::Conflict`]
    /// when it is already deactivated or revoked.
    pub async fn deactivate_acme_account(
        &self,
        principal: &Principal,
        id: i64,
    ) -> Result<AcmeAccountRow> {
        principal.require(Permission::WriteAcme, "deactivating ACME accounts")?;
        let account = self.acme_account_row(id).await?;
        if account.status != "valid" {
            return Err(Error::Conflict(format!(
                "ACME account {id} is already {}",
                account.status
            )));
        }
        let mut tx = self.store.begin_write().await?;
        tx.update_acme_account(id, &account.contact, "deactivated", self.now())
            .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "acme_account_deactivated",
                "acme_account",
                id,
                format!("{} by an administrator", account.refid),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.acme.accounts.forget(&account.refid);
        self.acme_account_row(id).await
    }

    /// One page of ACME orders, newest first, filtered by profile, account and status.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; [`Error::Malformed`] for an unknown status;
    /// store errors.
    pub async fn acme_orders(
        &self,
        principal: &Principal,
        filter: &AcmeFilter,
        page: PageRequest,
    ) -> Result<Page<AcmeOrderRow>> {
        principal.require(Permission::ReadAcme, "listing ACME orders")?;
        check_status("order", filter.status.as_deref(), ORDER_STATUSES)?;
        Ok(self.store.acme_orders(filter, page).await?)
    }

    /// The ACME order whose URL names `refid`, with its account.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; [`Error::NotFound`].
    pub async fn acme_order_details(
        &self,
        principal: &Principal,
        refid: &str,
    ) -> Result<AcmeOrderDetails> {
        principal.require(Permission::ReadAcme, "reading ACME orders")?;
        let order = self
            .store
            .acme_order(refid)
            .await?
            .ok_or_else(|| Error::NotFound(format!("ACME order {refid} does not exist")))?;
        let account = self.store.acme_account_by_id(order.account_id).await?;
        Ok(AcmeOrderDetails { order, account })
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
            Err(store::Error::Conflict) => {
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

    /// The external account binding keys of profile `profile_id`, newest first.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:acme`; [`Error::NotFound`] for no such profile.
    pub async fn acme_eab_keys(
        &self,
        principal: &Principal,
        profile_id: i64,
    ) -> Result<Vec<AcmeEabKeyRow>> {
        principal.require(
            Permission::ReadAcme,
            "listing external account binding keys",
        )?;
        self.acme_profile_row(profile_id).await?;
        Ok(self.store.acme_eab_keys(profile_id).await?)
    }

    /// Makes an external account binding key for profile `profile_id`: a random key id
    /// (16 bytes) and HMAC key (32 bytes), both base64url. The HMAC key is returned this once
    /// and stored sealed by the vault.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:acme`; [`Error::NotFound`] for no such profile;
    /// [`Error::Invalid`] for a description that is too long; [`Error::Internal`] when the
    /// random generator or the vault fails.
    pub async fn create_acme_eab_key(
        &self,
        principal: &Principal,
        profile_id: i64,
        description: &str,
    ) -> Result<IssuedEabKey> {
        principal.require(
            Permission::WriteAcme,
            "creating external account binding keys",
        )?;
        check_description(description)?;
        let profile = self.acme_profile_row(profile_id).await?;
        // Both values are pasted into command lines (certbot --eab-kid K, lego --hmac H), where
        // a leading '-' reads as an option: the key id is hex, and an HMAC key whose base64url
        // would start with '-' (first six bits 62) is drawn again.
        let key_id = hex::encode(crate::token::random_bytes::<16>()?);
        let mut secret = Zeroizing::new([0u8; 32]);
        loop {
            crate::token::fill_random(secret.as_mut_slice())?;
            if secret[0] & 0xFC != 0xF8 {
                break;
            }
        }
        let sealed = self.vault.seal(secret.as_slice(), EAB_CONTEXT)?;
        let hmac_key = Zeroizing::new(URL_SAFE_NO_PAD.encode(secret.as_slice()));
        let created_by = principal.user.as_ref().map(|u| u.id);
        let mut tx = self.store.begin_write().await?;
        let id = tx
            .insert_acme_eab_key(
                &key_id,
                profile_id,
                &sealed,
                description,
                created_by,
                self.now(),
            )
            .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "acme_eab_key_created",
                "acme_eab_key",
                id,
                format!("key id {key_id} on profile '{}'", profile.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        let key =
            self.store.acme_eab_key_by_id(id).await?.ok_or_else(|| {
                Error::Internal("a new external account binding key vanished".into())
            })?;
        Ok(IssuedEabKey { key, hmac_key })
    }

    /// Revokes an external account binding key of profile `profile_id`, named by its integer
    /// id or by its key id: no account can register with it any more (the account it bound,
    /// if any, stays).
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:acme`; [`Error::NotFound`] for no such profile or
    /// key; [`Error::Conflict`] when it was revoked before.
    pub async fn revoke_acme_eab_key(
        &self,
        principal: &Principal,
        profile_id: i64,
        key: &str,
    ) -> Result<AcmeEabKeyRow> {
        principal.require(
            Permission::WriteAcme,
            "revoking external account binding keys",
        )?;
        let profile = self.acme_profile_row(profile_id).await?;
        let mut found = None;
        if let Ok(id) = key.parse::<i64>() {
            found = self.store.acme_eab_key_by_id(id).await?;
        }
        if found.is_none() {
            found = self.store.acme_eab_key(key).await?;
        }
        let stored = found
            .filter(|k| k.profile_id == profile_id)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "profile '{}' has no external account binding key {key}",
                    profile.name
                ))
            })?;
        let mut tx = self.store.begin_write().await?;
        if !tx.revoke_acme_eab_key(stored.id, self.now()).await? {
            return Err(Error::Conflict(format!(
                "external account binding key {} is already revoked",
                stored.key_id
            )));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "acme_eab_key_revoked",
                "acme_eab_key",
                stored.id,
                format!("key id {} on profile '{}'", stored.key_id, profile.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.store
            .acme_eab_key_by_id(stored.id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("key {key} was deleted meanwhile")))
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
    fn challenge_types_and_urls() {
        assert_eq!(
            canonical_challenges(&["dns-01".into(), "dns-01".into()]).ok(),
            Some(vec!["dns-01".to_owned()])
        );
        assert!(canonical_challenges(&[]).is_err());
        assert!(canonical_challenges(&["http-02".into()]).is_err());
        assert!(check_url("website", "").is_ok());
        assert!(check_url("website", "https://example.com/tos").is_ok());
        assert!(check_url("website", "ftp://example.com").is_err());
        assert!(check_url("website", "example.com").is_err());
        assert!(check_url("website", "javascript:alert(1)").is_err());
    }
}
