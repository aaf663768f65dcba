//! The instance-wide settings: the switch, the rate limits, and the default profile's CA and
//! validity.

use store::{AcmeProfileFields, AcmeProfileRow, AcmeState, CaId};

use super::invalid;
use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};

/// Highest hourly rate limit that can be set (0 is none).
const MAX_RATE: i64 = 1_000_000;

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
    pub issuing_ca_id: Option<Option<CaId>>,
    /// The default profile's validity, in days.
    pub validity_days: Option<i64>,
    /// Whether ACME orders wait for an approval. Only `false` is accepted: certmint has no
    /// approval step for ACME orders, and a setting it cannot enforce is not stored.
    pub require_approval: Option<bool>,
}

fn check_rate(field: &str, value: i64) -> Result<()> {
    if !(0..=MAX_RATE).contains(&value) {
        return Err(invalid(format!(
            "{field} must be between 0 (no limit) and {MAX_RATE}"
        )));
    }
    Ok(())
}

impl Authority {
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
}
