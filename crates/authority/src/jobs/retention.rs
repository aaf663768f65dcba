//! Audit retention: whether the `audit_retention` job removes old audit records, and how old.
//! Off until an administrator turns it on: a CA keeps its audit trail unless told otherwise.

use serde::{Deserialize, Serialize};

use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};

/// The settings key.
const KEY: &str = "audit_retention";

/// The audit retention settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRetention {
    /// Whether the job removes records.
    pub enabled: bool,
    /// Records older than this many days are removed.
    pub retention_days: i64,
}

impl Default for AuditRetention {
    fn default() -> Self {
        Self {
            enabled: false,
            retention_days: 365,
        }
    }
}

/// A change; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditRetentionChange {
    /// Whether the job removes records.
    pub enabled: Option<bool>,
    /// How old records get before it does.
    pub retention_days: Option<i64>,
}

impl Authority {
    async fn stored_audit_retention(&self) -> Result<AuditRetention> {
        match self.store.setting(KEY).await? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| Error::Internal(format!("stored audit retention: {e}"))),
            None => Ok(AuditRetention::default()),
        }
    }

    /// The audit retention settings.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; store errors.
    pub async fn audit_retention(&self, principal: &Principal) -> Result<AuditRetention> {
        principal.require(Permission::AdminSystem, "reading the audit retention")?;
        self.stored_audit_retention().await
    }

    /// Changes the audit retention settings. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for fewer days than the
    /// policy's `audit_min_retention_days` (and at least 1) or more than 36,500; store errors.
    pub async fn update_audit_retention(
        &self,
        principal: &Principal,
        change: AuditRetentionChange,
    ) -> Result<AuditRetention> {
        principal.require(Permission::AdminSystem, "changing the audit retention")?;
        let before = self.stored_audit_retention().await?;
        let after = AuditRetention {
            enabled: change.enabled.unwrap_or(before.enabled),
            retention_days: change.retention_days.unwrap_or(before.retention_days),
        };
        self.check_retention_days(after.retention_days)?;
        if after == before {
            return Ok(before);
        }
        let value =
            serde_json::to_value(after).map_err(|e| Error::Internal(format!("retention: {e}")))?;
        let mut tx = self.store.begin_write().await?;
        tx.set_setting(KEY, &value, self.now()).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "audit_retention_updated",
                "settings",
                KEY,
                format!(
                    "enabled {} → {}, retention_days {} → {}",
                    before.enabled, after.enabled, before.retention_days, after.retention_days
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// The `audit_retention` job.
    pub(crate) async fn apply_audit_retention(&self) -> Result<String> {
        let retention = self.stored_audit_retention().await?;
        if !retention.enabled {
            return Ok("retention is off: nothing removed".into());
        }
        let removed = self
            .audit_cleanup(&Principal::local("scheduler"), retention.retention_days)
            .await?;
        Ok(format!(
            "{removed} records older than {} days removed",
            retention.retention_days
        ))
    }
}
