//! The audit trail: building records, reading them, and proving the chain intact.

use time::{Duration, OffsetDateTime};

use crate::principal::{Origin, Principal};
use crate::{Authority, Error, Result};
use store::{AuditEntry, AuditFilter, AuditRecord, AuditStats, Page, PageRequest, chain_hash};

/// Records are read in batches of this many while verifying.
const VERIFY_BATCH: i64 = 1000;
/// A verification report lists at most this many faults.
const MAX_FAULTS: usize = 100;

/// One auditable event, before it gets its actor, origin and time.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    action: &'static str,
    resource_type: &'static str,
    resource_id: String,
    details: String,
    success: bool,
}

impl Event {
    pub(crate) fn new(
        action: &'static str,
        resource_type: &'static str,
        resource_id: impl ToString,
        details: impl Into<String>,
    ) -> Self {
        Self {
            action,
            resource_type,
            resource_id: resource_id.to_string(),
            details: details.into(),
            success: true,
        }
    }

    pub(crate) fn failed(mut self) -> Self {
        self.success = false;
        self
    }
}

/// A place where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFault {
    /// The first record id concerned.
    pub id: i64,
    /// `altered`, `missing` or `broken_link`.
    pub kind: &'static str,
    /// What is wrong there.
    pub message: String,
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// True when every checked record is intact and linked, and none is missing.
    pub valid: bool,
    /// How many records were checked.
    pub checked: i64,
    /// The first id of the range checked.
    pub start_id: i64,
    /// The last id of the range checked.
    pub end_id: i64,
    /// Where it breaks, first fault first.
    pub faults: Vec<ChainFault>,
}

impl Authority {
    pub(crate) fn entry(
        &self,
        username: Option<&str>,
        origin: &Origin,
        event: Event,
    ) -> AuditEntry {
        AuditEntry {
            at: self.now(),
            username: username.map(str::to_owned),
            action: event.action.to_owned(),
            resource_type: Some(event.resource_type.to_owned()),
            resource_id: Some(event.resource_id),
            details: Some(event.details),
            ip_address: origin.ip.clone(),
            user_agent: origin.user_agent.clone(),
            success: event.success,
        }
    }

    pub(crate) fn entry_by(&self, principal: &Principal, event: Event) -> AuditEntry {
        self.entry(Some(&principal.username), &principal.origin, event)
    }

    /// Audit records, newest first.
    ///
    /// # Errors
    /// Store errors.
    pub async fn audit_logs(
        &self,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditRecord>> {
        Ok(self.store.audit_list(filter, page).await?)
    }

    /// One audit record.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such record.
    pub async fn audit_log(&self, id: i64) -> Result<AuditRecord> {
        self.store
            .audit_get(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no audit record {id}")))
    }

    /// Totals over the last `days` days.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a period outside 1 to 3650 days; store errors.
    pub async fn audit_stats(&self, days: i64) -> Result<AuditStats> {
        if !(1..=3650).contains(&days) {
            return Err(Error::Invalid("days must be between 1 and 3650".into()));
        }
        Ok(self
            .store
            .audit_stats(self.now() - Duration::days(days))
            .await?)
    }

    /// Every action name in the log.
    ///
    /// # Errors
    /// Store errors.
    pub async fn audit_actions(&self) -> Result<Vec<String>> {
        Ok(self.store.audit_actions().await?)
    }

    /// Records for export, oldest first. Exporting is itself audited.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a limit outside 1 to 100,000; store errors.
    pub async fn audit_export(
        &self,
        principal: &Principal,
        filter: &AuditFilter,
        limit: i64,
        format: &str,
    ) -> Result<Vec<AuditRecord>> {
        if !(1..=100_000).contains(&limit) {
            return Err(Error::Invalid("limit must be between 1 and 100000".into()));
        }
        let records = self.store.audit_export(filter, limit).await?;
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "audit_exported",
                "audit",
                format,
                format!("{} records exported as {format}", records.len()),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(records)
    }

    /// The principal's own recent activity.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a limit outside 1 to 100; store errors.
    pub async fn activity(&self, principal: &Principal, limit: u32) -> Result<Vec<AuditRecord>> {
        if !(1..=100).contains(&limit) {
            return Err(Error::Invalid("limit must be between 1 and 100".into()));
        }
        let filter = AuditFilter {
            username: Some(principal.username.clone()),
            ..AuditFilter::default()
        };
        let page = PageRequest {
            page: 1,
            per_page: limit,
        };
        Ok(self.store.audit_list(&filter, page).await?.items)
    }

    /// Removes records older than `retention_days`, keeping the rest of the chain verifiable,
    /// and audits the cleanup. Returns how many records were removed.
    ///
    /// # Errors
    /// [`Error::Invalid`] for fewer than 1 day; store errors.
    pub async fn audit_cleanup(&self, principal: &Principal, retention_days: i64) -> Result<i64> {
        if !(1..=36_500).contains(&retention_days) {
            return Err(Error::Invalid(
                "retention_days must be between 1 and 36500".into(),
            ));
        }
        let cutoff = self.now() - Duration::days(retention_days);
        let mut tx = self.store.begin_write().await?;
        let removed = tx.audit_remove_before(cutoff).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "audit_cleanup",
                "audit",
                retention_days,
                format!("{removed} records older than {retention_days} days removed"),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Walks the chain from `start_id` to `end_id` (by default all of it) and reports every
    /// record whose content no longer matches its hash, every broken link and every gap.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `start_id` is after `end_id`; store errors.
    pub async fn audit_verify(
        &self,
        start_id: Option<i64>,
        end_id: Option<i64>,
    ) -> Result<Verification> {
        let anchor = self.store.audit_anchor().await?;
        let start = start_id.unwrap_or(anchor.first_id).max(anchor.first_id);
        let end = end_id.unwrap_or(anchor.last_id).min(anchor.last_id);
        if start_id.is_some() && end_id.is_some() && start_id > end_id {
            return Err(Error::Invalid("start_id must not be after end_id".into()));
        }
        let mut expected_prev = if start == anchor.first_id {
            Some(anchor.first_prev_hash.clone())
        } else {
            self.store.audit_get(start - 1).await?.map(|r| r.hash)
        };
        let mut faults = Vec::new();
        let mut expected_id = start;
        let mut checked = 0;
        let mut last_hash = None;
        while expected_id <= end {
            let batch = self
                .store
                .audit_chain_batch(expected_id - 1, end, VERIFY_BATCH)
                .await?;
            let Some(last) = batch.last() else { break };
            let next_after_batch = last.id + 1;
            for record in &batch {
                if record.id != expected_id {
                    faults.push(missing(expected_id, record.id - 1));
                } else if let Some(prev) = &expected_prev
                    && *prev != record.prev_hash
                {
                    faults.push(ChainFault {
                        id: record.id,
                        kind: "broken_link",
                        message: format!(
                            "record {} does not link to the record before it (its prev_hash differs from record {}'s hash)",
                            record.id,
                            record.id - 1
                        ),
                    });
                }
                if chain_hash(record.id, &record.entry, &record.prev_hash) != record.hash {
                    faults.push(ChainFault {
                        id: record.id,
                        kind: "altered",
                        message: format!(
                            "record {} was altered: its content no longer matches its hash",
                            record.id
                        ),
                    });
                }
                expected_prev = Some(record.hash.clone());
                expected_id = record.id + 1;
                checked += 1;
            }
            last_hash = Some(last.hash.clone());
            expected_id = next_after_batch;
            if faults.len() >= MAX_FAULTS {
                break;
            }
        }
        if faults.len() < MAX_FAULTS {
            if expected_id <= end {
                faults.push(missing(expected_id, end));
            } else if end == anchor.last_id
                && end >= start
                && last_hash.as_deref() != Some(anchor.last_hash.as_str())
            {
                faults.push(ChainFault {
                    id: end,
                    kind: "altered",
                    message: format!("record {end} does not match the chain head's hash"),
                });
            }
        }
        faults.truncate(MAX_FAULTS);
        Ok(Verification {
            valid: faults.is_empty(),
            checked,
            start_id: start,
            end_id: end,
            faults,
        })
    }
}

fn missing(from: i64, to: i64) -> ChainFault {
    let message = if from == to {
        format!("record {from} is missing")
    } else {
        format!("records {from} to {to} are missing")
    };
    ChainFault {
        id: from,
        kind: "missing",
        message,
    }
}

/// Parses an ISO date (`2026-01-31`) or an RFC 3339 time into a time.
///
/// # Errors
/// [`Error::Malformed`] naming the field.
pub fn parse_time(field: &str, value: &str) -> Result<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &format)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| {
            Error::Malformed(format!(
                "{field} must be a date (YYYY-MM-DD) or an RFC 3339 time"
            ))
        })
}
