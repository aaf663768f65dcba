//! SCEP's administration: the switch and the profiles, one-time challenges, the requests that
//! wait for approval, and statistics.

use store::{
    CaId, NewScepRequest, Page, PageRequest, ScepProfileFields, ScepProfileRow, ScepRequestFilter,
    ScepRequestRow, ScepRequestStatus, TemplateId,
};
use time::{Duration, OffsetDateTime};

use super::RESERVED_NAMES;
use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};

/// Longest validity of a one-time challenge: a month.
const MAX_CHALLENGE_HOURS: i64 = 24 * 31;
/// Shortest static challenge: it is a shared password, guessed offline by nobody only if long.
const MIN_STATIC_CHALLENGE: usize = 12;
/// Longest challenge accepted anywhere.
pub(super) const MAX_CHALLENGE: usize = 255;
/// Longest reason for a rejection.
const MAX_REASON: usize = 1000;
/// Most profiles.
const MAX_PROFILES: usize = 100;

/// The name of the profile at `/scep`: the database is made with it, and it is never renamed
/// or removed, so a change can address it without reading the settings first.
pub const DEFAULT_SCEP_PROFILE: &str = "default";

/// The digest purpose of one-time challenges.
pub(super) const ONE_TIME: &str = "scep one-time";

/// The digest purpose of profile `name`'s static challenge.
pub(super) fn static_purpose(name: &str) -> String {
    format!("scep static {name}")
}

/// The SCEP settings: the switch and every profile, the default first.
#[derive(Debug, Clone)]
pub struct ScepConfig {
    /// Whether SCEP serves at all.
    pub enabled: bool,
    /// The profiles; the first is the default one, at `/scep`.
    pub profiles: Vec<ScepProfileRow>,
}

/// A profile to create or change, by name; `None` leaves a field as it is (or takes the
/// default on create).
#[derive(Debug, Clone, Default)]
pub struct ScepProfileChange {
    /// The name in its URL, `/scep/{name}`; `default` is the profile at `/scep`.
    pub name: String,
    /// Whether it serves.
    pub enabled: Option<bool>,
    /// The issuing CA (`Some(None)`: the default CA).
    pub ca_id: Option<Option<CaId>>,
    /// The CA identifier clients send with GetCACert.
    pub ca_ident: Option<String>,
    /// The template (`Some(None)`: none; client certificates then).
    pub template_id: Option<Option<TemplateId>>,
    /// Whether requests with a good challenge are issued at once.
    pub auto_approve: Option<bool>,
    /// The static challenge password (`Some(None)` removes it).
    pub challenge_password: Option<Option<String>>,
    /// Validity of one-time challenges for its CA, in hours.
    pub challenge_validity_hours: Option<i64>,
}

/// A change to the SCEP settings, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct ScepConfigChange {
    /// Whether SCEP serves at all.
    pub enabled: Option<bool>,
    /// Profiles to create or change, by name.
    pub profiles: Vec<ScepProfileChange>,
    /// Profiles to delete, by name, with their requests (not the default one).
    pub remove_profiles: Vec<String>,
}

/// A one-time challenge just made: shown once, stored only as a keyed digest.
#[derive(Debug, Clone)]
pub struct ChallengeIssued {
    /// The CA it is good for.
    pub ca_id: CaId,
    /// The challenge password.
    pub challenge: String,
    /// When it stops working, if not used before.
    pub expires_at: OffsetDateTime,
    /// How long it is good for, in hours.
    pub validity_hours: i64,
    /// Open challenges of the CA ended by a regeneration.
    pub revoked: u64,
}

/// One profile's requests by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScepProfileStats {
    /// The profile.
    pub name: String,
    /// Issued certificates.
    pub issued: i64,
    /// Waiting for approval.
    pub pending: i64,
    /// Rejected by an administrator.
    pub rejected: i64,
    /// Refused by certmint (bad challenge, template rules, …).
    pub failed: i64,
    /// Requests in the last 24 hours, whatever became of them.
    pub last_24h: i64,
}

/// SCEP's statistics, from the database (the same on every node).
#[derive(Debug, Clone, Default)]
pub struct ScepStats {
    /// Whether SCEP serves.
    pub enabled: bool,
    /// Per profile.
    pub profiles: Vec<ScepProfileStats>,
    /// All profiles together.
    pub total: ScepProfileStats,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

fn check_validity_hours(hours: i64) -> Result<()> {
    if !(1..=MAX_CHALLENGE_HOURS).contains(&hours) {
        return Err(invalid(format!(
            "challenge_validity must be between 1 and {MAX_CHALLENGE_HOURS} hours"
        )));
    }
    Ok(())
}

/// What `change` sets, for the audit record (never the challenge itself).
fn changed(change: &ScepProfileChange) -> String {
    let names = [
        ("enabled", change.enabled.is_some()),
        ("ca_id", change.ca_id.is_some()),
        ("ca_ident", change.ca_ident.is_some()),
        ("template_id", change.template_id.is_some()),
        ("auto_approve", change.auto_approve.is_some()),
        ("challenge_password", change.challenge_password.is_some()),
        (
            "challenge_validity",
            change.challenge_validity_hours.is_some(),
        ),
    ];
    let set: Vec<&str> = names.iter().filter(|(_, s)| *s).map(|(n, _)| *n).collect();
    if set.is_empty() {
        "nothing".into()
    } else {
        set.join(", ")
    }
}

impl Authority {
    /// The SCEP settings and profiles.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:scep`; store errors.
    pub async fn scep_config(&self, principal: &Principal) -> Result<ScepConfig> {
        principal.require(Permission::ReadScep, "reading the SCEP settings")?;
        self.scep_config_row().await
    }

    async fn scep_config_row(&self) -> Result<ScepConfig> {
        Ok(ScepConfig {
            enabled: self.store.scep_enabled().await?,
            profiles: self.store.scep_profiles().await?,
        })
    }

    /// Checks a profile change and turns it into the fields to store.
    async fn scep_profile_fields(&self, change: &ScepProfileChange) -> Result<ScepProfileFields> {
        crate::validate::profile_name("SCEP", &change.name, RESERVED_NAMES)?;
        if let Some(Some(ca_id)) = change.ca_id {
            self.usable_issuer(Some(ca_id)).await.map_err(|e| match e {
                Error::NotFound(m) => invalid(m),
                other => other,
            })?;
        }
        if let Some(Some(id)) = change.template_id {
            let template = self.template(id).await.map_err(|e| match e {
                Error::NotFound(_) => invalid(format!("template {id} does not exist")),
                other => other,
            })?;
            if template.spec.basic_constraints.ca {
                return Err(invalid(format!(
                    "template '{}' issues CA certificates; SCEP issues end-entity certificates",
                    template.spec.name
                )));
            }
        }
        if let Some(ident) = &change.ca_ident
            && (ident.len() > 255 || ident.chars().any(char::is_control))
        {
            return Err(invalid(
                "ca_ident must be at most 255 characters, without control characters",
            ));
        }
        if let Some(hours) = change.challenge_validity_hours {
            check_validity_hours(hours)?;
        }
        let challenge_digest = match &change.challenge_password {
            None => None,
            Some(None) => Some(None),
            Some(Some(password)) if password.is_empty() => Some(None),
            Some(Some(password)) => {
                if password.chars().count() < MIN_STATIC_CHALLENGE || password.len() > MAX_CHALLENGE
                {
                    return Err(invalid(format!(
                        "a static challenge password must be {MIN_STATIC_CHALLENGE} to \
                         {MAX_CHALLENGE} characters: every client of the profile shares it"
                    )));
                }
                Some(Some(
                    self.vault
                        .challenge_digest(&static_purpose(&change.name), password),
                ))
            }
        };
        Ok(ScepProfileFields {
            enabled: change.enabled,
            ca_id: change.ca_id,
            ca_ident: change.ca_ident.clone(),
            template_id: change.template_id,
            auto_approve: change.auto_approve,
            challenge_digest,
            challenge_validity_hours: change.challenge_validity_hours,
        })
    }

    /// Changes the SCEP settings: the switch, profiles created or changed by name, profiles
    /// removed; all in one audited transaction.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:scep`; [`Error::Invalid`] for a bad name, an
    /// unknown or unusable CA, an unknown or CA template, a challenge out of bounds, a
    /// validity out of range, removing the default profile or too many profiles.
    pub async fn update_scep_config(
        &self,
        principal: &Principal,
        change: ScepConfigChange,
    ) -> Result<ScepConfig> {
        principal.require(Permission::WriteScep, "changing the SCEP settings")?;
        if change.profiles.len() > MAX_PROFILES {
            return Err(invalid(format!("at most {MAX_PROFILES} SCEP profiles")));
        }
        let mut checked = Vec::with_capacity(change.profiles.len());
        for profile in &change.profiles {
            checked.push((profile, self.scep_profile_fields(profile).await?));
        }
        let existing = self.store.scep_profiles().await?;
        for name in &change.remove_profiles {
            if existing.iter().any(|p| p.is_default && p.name == *name) {
                return Err(invalid(format!(
                    "profile '{name}' is the default one, at /scep; it can be disabled, not removed"
                )));
            }
        }
        if existing.len() + checked_new(&change, &existing) > MAX_PROFILES + 1 {
            return Err(invalid(format!(
                "at most {MAX_PROFILES} SCEP profiles besides the default one"
            )));
        }
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        if let Some(enabled) = change.enabled {
            tx.set_scep_enabled(enabled).await?;
            tx.audit(&self.entry_by(
                principal,
                Event::new(
                    "scep_settings_updated",
                    "scep",
                    "",
                    format!("SCEP {}", if enabled { "enabled" } else { "disabled" }),
                ),
            ))
            .await?;
        }
        for (profile, fields) in checked {
            let (id, action) = match existing.iter().find(|p| p.name == profile.name) {
                Some(row) => {
                    tx.update_scep_profile(row.id, &fields, now).await?;
                    (row.id, "scep_profile_updated")
                }
                None => (
                    tx.insert_scep_profile(&profile.name, false, &fields, now)
                        .await?,
                    "scep_profile_created",
                ),
            };
            tx.audit(&self.entry_by(
                principal,
                Event::new(
                    action,
                    "scep_profile",
                    id,
                    format!("'{}': {}", profile.name, changed(profile)),
                ),
            ))
            .await?;
        }
        for name in &change.remove_profiles {
            let row = existing.iter().find(|p| p.name == *name).ok_or_else(|| {
                Error::NotFound(format!("there is no SCEP profile named '{name}'"))
            })?;
            tx.delete_scep_profile(row.id).await?;
            tx.audit(&self.entry_by(
                principal,
                Event::new(
                    "scep_profile_deleted",
                    "scep_profile",
                    row.id,
                    format!("'{name}'"),
                ),
            ))
            .await?;
        }
        tx.commit().await?;
        self.scep_config_row().await
    }

    /// The hours one-time challenges of CA `ca_id` stay good: the longest among the enabled
    /// profiles issuing from it.
    async fn challenge_hours(&self, ca_id: CaId) -> Result<i64> {
        let default_ca = self.usable_issuer(None).await.ok().map(|ca| ca.id);
        self.store
            .scep_profiles()
            .await?
            .iter()
            .filter(|p| p.enabled && p.ca_id.or(default_ca) == Some(ca_id))
            .map(|p| p.challenge_validity_hours)
            .max()
            .ok_or_else(|| {
                invalid(format!(
                    "no enabled SCEP profile issues from CA {ca_id}: a challenge for it would \
                     be of no use"
                ))
            })
    }

    /// Makes a one-time challenge password for CA `ca_id`, good for one enrollment through
    /// any profile issuing from that CA until it expires. With `regenerate`, every challenge
    /// of the CA still open is ended first.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:scep`; [`Error::Invalid`] for an unknown or
    /// unusable CA, or one no enabled profile issues from.
    pub async fn scep_challenge(
        &self,
        principal: &Principal,
        ca_id: CaId,
        regenerate: bool,
    ) -> Result<ChallengeIssued> {
        principal.require(Permission::WriteScep, "making SCEP challenges")?;
        let ca = self.usable_issuer(Some(ca_id)).await.map_err(|e| match e {
            Error::NotFound(m) => invalid(m),
            other => other,
        })?;
        let hours = self.challenge_hours(ca_id).await?;
        let challenge = hex::encode(crate::token::random_bytes::<16>()?);
        let now = self.now();
        let expires_at = now + Duration::hours(hours);
        let mut tx = self.store.begin_write().await?;
        let revoked = if regenerate {
            tx.expire_scep_challenges(ca_id, now).await?
        } else {
            0
        };
        tx.insert_scep_challenge(
            ca_id,
            &self.vault.challenge_digest(ONE_TIME, &challenge),
            expires_at,
            &principal.username,
            now,
        )
        .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                if regenerate {
                    "scep_challenge_regenerated"
                } else {
                    "scep_challenge_created"
                },
                "ca",
                ca_id,
                format!(
                    "one-time SCEP challenge for CA '{}', good for {hours} hours{}",
                    ca.name,
                    if regenerate {
                        format!("; {revoked} open challenges ended")
                    } else {
                        String::new()
                    }
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(ChallengeIssued {
            ca_id,
            challenge,
            expires_at,
            validity_hours: hours,
            revoked,
        })
    }

    /// SCEP requests, newest first.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:scep`; store errors.
    pub async fn scep_requests(
        &self,
        principal: &Principal,
        filter: &ScepRequestFilter,
        page: PageRequest,
    ) -> Result<Page<ScepRequestRow>> {
        principal.require(Permission::ReadScep, "listing SCEP requests")?;
        Ok(self.store.scep_requests(filter, page).await?)
    }

    /// SCEP request `id`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:scep`; [`Error::NotFound`].
    pub async fn scep_request(&self, principal: &Principal, id: i64) -> Result<ScepRequestRow> {
        principal.require(Permission::ReadScep, "reading SCEP requests")?;
        self.scep_request_row(id).await
    }

    async fn scep_request_row(&self, id: i64) -> Result<ScepRequestRow> {
        self.store
            .scep_request(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("SCEP request {id} does not exist")))
    }

    /// Approves pending request `id`: the certificate is issued now, as the profile's SCEP
    /// client (as automatic approval does: whoever may change a profile to issue at once may
    /// let one request through), with the approver in `decided_by` and the audit record; the
    /// client receives it when it next polls.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:scep`; [`Error::NotFound`]; [`Error::Conflict`] when
    /// it is not pending; what issuing refuses (the request is then marked failed, with the
    /// reason).
    pub async fn approve_scep_request(
        &self,
        principal: &Principal,
        id: i64,
    ) -> Result<ScepRequestRow> {
        principal.require(Permission::WriteScep, "approving SCEP requests")?;
        let request = self.scep_request_row(id).await?;
        let profile = self.scep_profile_by_id(request.profile_id).await?;
        let csr = request
            .csr
            .as_deref()
            .filter(|_| request.status == ScepRequestStatus::Pending)
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "SCEP request {id} is {}, not pending",
                    request.status
                ))
            })?;
        let csr = pki::csr::Csr::from_der(csr).map_err(|e| Error::Internal(e.to_string()))?;
        // Claimed first, so that two approvals cannot issue twice; a poll meanwhile is told
        // to wait.
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        if !tx
            .settle_scep_request(
                id,
                ScepRequestStatus::Pending,
                ScepRequestStatus::Issued,
                None,
                None,
                &principal.username,
                now,
            )
            .await?
        {
            return Err(Error::Conflict(format!(
                "SCEP request {id} was decided meanwhile"
            )));
        }
        tx.commit().await?;
        let client = Principal::enrollment("scep", &profile.name, principal.origin.clone());
        let outcome = self
            .issue_for_scep(&client, &profile, &csr, request.renewed_from)
            .await;
        let mut tx = self.store.begin_write().await?;
        let (status, certificate, reason) = match &outcome {
            Ok(certificate) => (ScepRequestStatus::Issued, Some(*certificate), None),
            Err(e) => (ScepRequestStatus::Failed, None, Some(e.to_string())),
        };
        tx.settle_scep_request(
            id,
            ScepRequestStatus::Issued,
            status,
            certificate,
            reason.as_deref(),
            &principal.username,
            self.now(),
        )
        .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "scep_request_approved",
                "scep_request",
                id,
                match &outcome {
                    Ok(certificate) => format!(
                        "'{}' through profile '{}': certificate {certificate}",
                        request.subject, profile.name
                    ),
                    Err(e) => format!(
                        "'{}' through profile '{}', but issuing failed: {e}",
                        request.subject, profile.name
                    ),
                },
            ),
        ))
        .await?;
        tx.commit().await?;
        outcome?;
        self.scep_request_row(id).await
    }

    /// Rejects pending request `id`; the client receives a failure when it next polls.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:scep`; [`Error::NotFound`]; [`Error::Conflict`]
    /// when it is not pending; [`Error::Invalid`] for a reason over 1,000 characters.
    pub async fn reject_scep_request(
        &self,
        principal: &Principal,
        id: i64,
        reason: Option<&str>,
    ) -> Result<ScepRequestRow> {
        principal.require(Permission::WriteScep, "rejecting SCEP requests")?;
        if reason.is_some_and(|r| r.len() > MAX_REASON) {
            return Err(invalid(format!(
                "a reason must be at most {MAX_REASON} characters"
            )));
        }
        let request = self.scep_request_row(id).await?;
        let mut tx = self.store.begin_write().await?;
        if !tx
            .settle_scep_request(
                id,
                ScepRequestStatus::Pending,
                ScepRequestStatus::Rejected,
                None,
                reason,
                &principal.username,
                self.now(),
            )
            .await?
        {
            return Err(Error::Conflict(format!(
                "SCEP request {id} is {}, not pending",
                request.status
            )));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "scep_request_rejected",
                "scep_request",
                id,
                format!(
                    "'{}'{}",
                    request.subject,
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.scep_request_row(id).await
    }

    /// SCEP's statistics: requests per profile and outcome, in all and in the last day.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:scep`; store errors.
    pub async fn scep_stats(&self, principal: &Principal) -> Result<ScepStats> {
        principal.require(Permission::ReadScep, "reading SCEP statistics")?;
        let config = self.scep_config_row().await?;
        let all = self.store.scep_counts(None).await?;
        let recent = self
            .store
            .scep_counts(Some(self.now() - Duration::hours(24)))
            .await?;
        let mut total = ScepProfileStats {
            name: "all".into(),
            ..ScepProfileStats::default()
        };
        let mut profiles = Vec::with_capacity(config.profiles.len());
        for profile in &config.profiles {
            let mut stats = ScepProfileStats {
                name: profile.name.clone(),
                ..ScepProfileStats::default()
            };
            for count in all.iter().filter(|c| c.profile_id == profile.id) {
                let slot = match count.status {
                    ScepRequestStatus::Issued => &mut stats.issued,
                    ScepRequestStatus::Pending => &mut stats.pending,
                    ScepRequestStatus::Rejected => &mut stats.rejected,
                    ScepRequestStatus::Failed => &mut stats.failed,
                };
                *slot += count.requests;
            }
            stats.last_24h = recent
                .iter()
                .filter(|c| c.profile_id == profile.id)
                .map(|c| c.requests)
                .sum();
            total.issued += stats.issued;
            total.pending += stats.pending;
            total.rejected += stats.rejected;
            total.failed += stats.failed;
            total.last_24h += stats.last_24h;
            profiles.push(stats);
        }
        Ok(ScepStats {
            enabled: config.enabled,
            profiles,
            total,
        })
    }

    pub(super) async fn scep_profile_by_id(&self, id: i64) -> Result<ScepProfileRow> {
        self.store
            .scep_profiles()
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| Error::NotFound(format!("SCEP profile {id} does not exist")))
    }

    /// Records a request that was not left pending: issued, or refused with `reason`. On
    /// connections whose commits do not wait for the disk: the certificate is already stored
    /// (with its audit record) and a failure is already answered; this row is the log.
    pub(super) async fn log_scep_request(&self, request: NewScepRequest) -> Result<()> {
        let mut tx = self.store.begin_relaxed_write().await?;
        tx.insert_scep_request(&request, self.now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a request that waits for approval, with its CSR, and audits it.
    pub(super) async fn hold_scep_request(
        &self,
        principal: &Principal,
        request: NewScepRequest,
        profile: &str,
    ) -> Result<i64> {
        let mut tx = self.store.begin_write().await?;
        let id = tx.insert_scep_request(&request, self.now()).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "scep_request_pending",
                "scep_request",
                id,
                format!(
                    "'{}' through profile '{profile}' waits for approval",
                    request.subject
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(id)
    }
}

/// How many of `change`'s profiles are new.
fn checked_new(change: &ScepConfigChange, existing: &[ScepProfileRow]) -> usize {
    change
        .profiles
        .iter()
        .filter(|p| !existing.iter().any(|e| e.name == p.name))
        .count()
}
