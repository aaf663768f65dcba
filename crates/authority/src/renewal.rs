//! Auto-renewal policies: per template (in its rules) and per certificate (overriding the
//! template's). A policy renews a certificate whose key certmint holds some days before it
//! expires, or once a share of its lifetime remains (as ACME Renewal Information suggests),
//! keeping its key or generating a new one of the same type. The `auto_renewal` job
//! (`jobs::renewal`) does the renewing.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use store::{AutoRenewalRow, CertificateId, CertificateRow, OwnRenewalPolicy, RenewAt, TemplateId};
use time::{Duration, OffsetDateTime};

use crate::audit::Event;
use crate::templates::MAX_DAYS;
use crate::{Authority, Error, Permission, Principal, Result};

/// What happens to the key at renewal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPolicy {
    /// The new certificate has the old one's key.
    #[default]
    SameKey,
    /// certmint generates a new key of the same type, and keeps it.
    Rekey,
}

impl KeyPolicy {
    /// Its name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SameKey => "same_key",
            Self::Rekey => "rekey",
        }
    }

    /// The policy named `name`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for another name.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "same_key" => Ok(Self::SameKey),
            "rekey" => Ok(Self::Rekey),
            other => Err(Error::Invalid(format!(
                "key_policy '{other}': use same_key or rekey"
            ))),
        }
    }
}

/// A share of a certificate's lifetime, strictly between 0 and 1, kept in millionths so that
/// policies compare exactly and the database computes with integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifetimeFraction(i64);

const PPM: i64 = 1_000_000;

impl LifetimeFraction {
    /// `value`, which must lie strictly between 0 and 1.
    ///
    /// # Errors
    /// [`Error::Invalid`] otherwise.
    pub fn new(value: f64) -> Result<Self> {
        // The cast saturates, and NaN fails the range check.
        #[allow(clippy::cast_possible_truncation)]
        let ppm = (value * 1e6).round() as i64;
        if value.is_finite() && value > 0.0 && value < 1.0 && (1..PPM).contains(&ppm) {
            Ok(Self(ppm))
        } else {
            Err(Error::Invalid(format!(
                "lifetime_fraction {value}: give a number between 0 and 1 (exclusive), such as \
                 0.33 to renew when a third of the lifetime remains"
            )))
        }
    }

    /// Its value.
    #[allow(clippy::cast_precision_loss)]
    pub fn value(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

impl Serialize for LifetimeFraction {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_f64(self.value())
    }
}

impl<'de> Deserialize<'de> for LifetimeFraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Self::new(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// When a policy renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewWhen {
    /// This many days before the certificate expires.
    DaysBefore(i64),
    /// Once this share of its lifetime remains.
    LifetimeRemaining(LifetimeFraction),
}

/// The share of the lifetime left when renewing without a stated time: a third, as certbot
/// and ACME Renewal Information windows commonly do.
const DEFAULT_PPM: i64 = 333_333;

impl RenewWhen {
    /// From the API's two fields, at most one given; a third of the lifetime when neither is.
    ///
    /// # Errors
    /// [`Error::Invalid`] for both, or days outside 1 to 3650.
    pub fn new(days_before: Option<i64>, fraction: Option<LifetimeFraction>) -> Result<Self> {
        match (days_before, fraction) {
            (Some(_), Some(_)) => Err(Error::Invalid(
                "give days_before or lifetime_fraction, not both".into(),
            )),
            (Some(days), None) if !(1..=MAX_DAYS).contains(&days) => Err(Error::Invalid(format!(
                "days_before {days}: give 1 to {MAX_DAYS} days"
            ))),
            (Some(days), None) => Ok(Self::DaysBefore(days)),
            (None, Some(f)) => Ok(Self::LifetimeRemaining(f)),
            (None, None) => Ok(Self::LifetimeRemaining(LifetimeFraction(DEFAULT_PPM))),
        }
    }

    /// When a certificate valid from `not_before` to `not_after` is due: in whole seconds, as
    /// the store computes it for a template's certificates.
    pub fn due_at(self, not_before: OffsetDateTime, not_after: OffsetDateTime) -> OffsetDateTime {
        match self {
            Self::DaysBefore(days) => not_after - Duration::days(days),
            Self::LifetimeRemaining(f) => {
                let lifetime = (not_after - not_before).whole_seconds();
                not_after - Duration::seconds(lifetime.saturating_mul(f.0) / PPM)
            }
        }
    }

    /// The days before expiry, when that is the rule.
    pub fn days_before(self) -> Option<i64> {
        match self {
            Self::DaysBefore(d) => Some(d),
            Self::LifetimeRemaining(_) => None,
        }
    }

    /// The share of the lifetime, when that is the rule.
    pub fn lifetime_fraction(self) -> Option<LifetimeFraction> {
        match self {
            Self::DaysBefore(_) => None,
            Self::LifetimeRemaining(f) => Some(f),
        }
    }

    fn stored(self) -> RenewAt {
        match self {
            Self::DaysBefore(d) => RenewAt::DaysBefore(d),
            Self::LifetimeRemaining(f) => RenewAt::LifetimePpm(f.0),
        }
    }
}

/// An auto-renewal policy in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalPolicy {
    /// When.
    pub when: RenewWhen,
    /// What happens to the key.
    pub key_policy: KeyPolicy,
}

impl RenewalPolicy {
    /// The store's form of a policy applied to a template's certificates.
    pub(crate) fn stored_at(policy: Option<Self>) -> Option<RenewAt> {
        policy.map(|p| p.when.stored())
    }
}

/// A certificate's own setting, overriding its template's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnPolicy {
    /// Renewed by this policy, whatever the template says.
    On(RenewalPolicy),
    /// Never renewed automatically, whatever the template says.
    Off,
}

/// A change to a certificate's auto-renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoRenewalChange {
    /// Its own policy.
    Own(OwnPolicy),
    /// Drop its own policy: its template's applies.
    Inherit,
}

/// A certificate's auto-renewal as people see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoRenewal {
    /// The certificate.
    pub certificate_id: CertificateId,
    /// The policy in force, if any.
    pub policy: Option<RenewalPolicy>,
    /// The template whose policy is in force (or, when off, would be), when the certificate
    /// has none of its own.
    pub inherited_from_template: Option<TemplateId>,
    /// When the next attempt is due: the policy's time, or later while backing off.
    pub next_renewal_at: Option<OffsetDateTime>,
    /// Failed attempts since the last success or policy change.
    pub attempts: i64,
    /// The last attempt.
    pub last_attempt_at: Option<OffsetDateTime>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The certificate that renewed this one, if any.
    pub renewed_by: Option<CertificateId>,
}

/// The policy a stored own setting says, `None` for off.
pub(crate) fn own_policy(own: &OwnRenewalPolicy) -> Result<Option<RenewalPolicy>> {
    if !own.enabled {
        return Ok(None);
    }
    let when = match own.at {
        Some(RenewAt::DaysBefore(d)) => RenewWhen::DaysBefore(d),
        Some(RenewAt::LifetimePpm(ppm)) => RenewWhen::LifetimeRemaining(LifetimeFraction(ppm)),
        None => RenewWhen::new(None, None)?,
    };
    let key_policy = own
        .key_policy
        .as_deref()
        .map(KeyPolicy::parse)
        .transpose()?
        .unwrap_or_default();
    Ok(Some(RenewalPolicy { when, key_policy }))
}

impl Authority {
    /// The policy template `id` gives its certificates, if it still exists and has one.
    pub(crate) async fn template_renewal(&self, id: TemplateId) -> Result<Option<RenewalPolicy>> {
        match self.template(id).await {
            Ok(t) => t.spec.renewal_policy(),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The policy in force for `cert` with auto-renewal row `row`, and whether it is its
    /// template's.
    pub(crate) async fn renewal_in_force(
        &self,
        cert: &CertificateRow,
        row: Option<&AutoRenewalRow>,
    ) -> Result<(Option<RenewalPolicy>, Option<TemplateId>)> {
        if let Some(own) = row.and_then(|r| r.own.as_ref()) {
            return Ok((own_policy(own)?, None));
        }
        match cert.template_id {
            Some(t) => Ok((self.template_renewal(t).await?, Some(t))),
            None => Ok((None, None)),
        }
    }

    /// Certificate `id`'s auto-renewal: the policy in force and the state of its attempts.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:certificates`; [`Error::NotFound`]; store errors.
    pub async fn auto_renewal(
        &self,
        principal: &Principal,
        id: CertificateId,
    ) -> Result<AutoRenewal> {
        principal.require(
            Permission::ReadCertificates,
            "reading a certificate's auto-renewal",
        )?;
        let cert = self.certificate(id).await?;
        let row = self.store.auto_renewal(id).await?;
        let (policy, inherited) = self.renewal_in_force(&cert, row.as_ref()).await?;
        let renewed_by = self.renewals_of(id).await?.into_iter().next();
        let next_renewal_at = row
            .as_ref()
            .and_then(|r| {
                r.due_at
                    .map(|due| r.next_attempt_at.map_or(due, |n| n.max(due)))
            })
            .filter(|_| renewed_by.is_none() && policy.is_some());
        Ok(AutoRenewal {
            certificate_id: id,
            policy,
            inherited_from_template: inherited,
            next_renewal_at,
            attempts: row.as_ref().map_or(0, |r| r.attempts),
            last_attempt_at: row.as_ref().and_then(|r| r.last_attempt_at),
            last_error: row.and_then(|r| r.last_error),
            renewed_by,
        })
    }

    /// Sets certificate `id`'s own auto-renewal policy, or drops it for its template's. A
    /// change starts the backoff over. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:certificates`; [`Error::NotFound`];
    /// [`Error::Invalid`] for turning it on for a certificate whose key certmint does not
    /// hold, a CA certificate, or one revoked or expired; store errors.
    pub async fn set_auto_renewal(
        &self,
        principal: &Principal,
        id: CertificateId,
        change: AutoRenewalChange,
    ) -> Result<AutoRenewal> {
        principal.require(
            Permission::WriteCertificates,
            "changing a certificate's auto-renewal",
        )?;
        let cert = self.certificate(id).await?;
        let now = self.now();
        let (own, policy, detail) = match change {
            AutoRenewalChange::Own(OwnPolicy::On(policy)) => {
                if cert.key_id.is_none() {
                    return Err(Error::Invalid(format!(
                        "certificate {id}: certmint does not hold its private key, so it cannot \
                         renew it on its own; renew it with a CSR instead"
                    )));
                }
                if cert.is_ca {
                    return Err(Error::Invalid(format!(
                        "certificate {id} is a CA certificate; CAs are renewed as CAs"
                    )));
                }
                if cert.status != store::CertificateStatus::Valid || cert.cert.not_after <= now {
                    return Err(Error::Invalid(format!(
                        "certificate {id} is revoked or expired: there is nothing to renew"
                    )));
                }
                let own = OwnRenewalPolicy {
                    enabled: true,
                    at: Some(policy.when.stored()),
                    key_policy: Some(policy.key_policy.as_str().to_owned()),
                };
                (Some(own), Some(policy), describe(Some(policy)))
            }
            AutoRenewalChange::Own(OwnPolicy::Off) => (
                Some(OwnRenewalPolicy {
                    enabled: false,
                    at: None,
                    key_policy: None,
                }),
                None,
                "off".to_owned(),
            ),
            AutoRenewalChange::Inherit => {
                let policy = match cert.template_id {
                    Some(t) if cert.key_id.is_some() && !cert.is_ca => {
                        self.template_renewal(t).await?
                    }
                    _ => None,
                };
                (None, policy, format!("template's: {}", describe(policy)))
            }
        };
        let due_at = policy.map(|p| p.when.due_at(cert.cert.not_before, cert.cert.not_after));
        let mut tx = self.store.begin_write().await?;
        tx.set_auto_renewal(id, own.as_ref(), due_at, now).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "certificate_auto_renewal_updated",
                "certificate",
                id,
                detail,
            ),
        ))
        .await?;
        tx.commit().await?;
        self.auto_renewal(principal, id).await
    }
}

/// A policy for the audit log.
pub(crate) fn describe(policy: Option<RenewalPolicy>) -> String {
    match policy {
        None => "off".into(),
        Some(p) => {
            let when = match p.when {
                RenewWhen::DaysBefore(d) => format!("{d} days before expiry"),
                RenewWhen::LifetimeRemaining(f) => {
                    format!("when {} of the lifetime remains", f.value())
                }
            };
            format!("{when}, {}", p.key_policy.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_outside_zero_to_one_are_refused() {
        for bad in [0.0, 1.0, -0.5, 1.5, f64::NAN, 0.000_000_1] {
            assert!(LifetimeFraction::new(bad).is_err(), "{bad}");
        }
        assert_eq!(
            LifetimeFraction::new(0.25)
                .map(LifetimeFraction::value)
                .ok(),
            Some(0.25)
        );
    }

    #[test]
    fn due_times_follow_days_or_the_share_of_lifetime() {
        let from = time::macros::datetime!(2026-01-01 00:00 UTC);
        let to = from + Duration::days(90);
        assert_eq!(
            RenewWhen::DaysBefore(30).due_at(from, to),
            to - Duration::days(30)
        );
        let third = RenewWhen::LifetimeRemaining(LifetimeFraction::new(1.0 / 3.0).unwrap());
        let due = third.due_at(from, to);
        assert!((due - (from + Duration::days(60))).abs() < Duration::seconds(10));
        assert!(RenewWhen::new(Some(0), None).is_err());
        assert!(RenewWhen::new(Some(3651), None).is_err());
        assert!(RenewWhen::new(Some(3), LifetimeFraction::new(0.5).ok()).is_err());
    }
}
