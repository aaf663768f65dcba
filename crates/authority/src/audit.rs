//! The audit trail: building records, reading them, and proving the chain intact.

use time::{Duration, OffsetDateTime};

use crate::principal::{Origin, Principal};
use crate::{Authority, Error, Result};
use store::{
    AuditCheckpoint, AuditEntry, AuditFilter, AuditRecord, AuditStats, ChainAnchor, Page,
    PageRequest, from_micros, plain_chain_hash, to_micros,
};

/// Records are read in batches of this many while verifying.
const VERIFY_BATCH: i64 = 1000;
/// A verification report lists at most this many faults.
const MAX_FAULTS: usize = 100;
/// A verification that finds the chain whole keeps a checkpoint of its last record when it
/// got this many records past the newest checkpoint: the next one re-hashes at most this many
/// records more than are new.
const CHECKPOINT_EVERY: i64 = 10_000;
/// Checkpoints tried, newest first, before a verification walks the whole chain instead.
const CHECKPOINTS_TRIED: i64 = 8;

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
    /// `altered`, `missing`, `broken_link`, or `forged_checkpoint` for a checkpoint whose
    /// signature is not genuine.
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
    /// The record of the checkpoint the walk started after, when it started from one: the
    /// records up to it were found whole before and were not hashed again.
    pub from_checkpoint: Option<i64>,
    /// Where it breaks, first fault first.
    pub faults: Vec<ChainFault>,
}

/// A signed statement of the chain's head at one moment: kept outside the database, it lets a
/// later verification prove that no record up to it was removed or rewritten since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The id of the newest record then.
    pub last_id: i64,
    /// Its hash.
    pub head_hash: String,
    /// The first keyed record id then (it never moves).
    pub keyed_from: i64,
    /// When the checkpoint was taken (kept to the microsecond).
    pub at: OffsetDateTime,
    /// HMAC-SHA256 over the fields above under a key derived from the master key, hex.
    pub signature: String,
}

impl Checkpoint {
    fn canonical(&self) -> Vec<u8> {
        format!(
            "certmint audit checkpoint v1\n{}\n{}\n{}\n{}",
            self.last_id,
            self.head_hash,
            self.keyed_from,
            to_micros(self.at)
        )
        .into_bytes()
    }
}

/// Replaces the characters that could forge a line or reorder text where a record is shown
/// (C0 and C1 controls, line and paragraph separators, bidirectional overrides, isolates and
/// marks) by a visible `\u{…}` escape, so that user text in a record reads as what it is.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let hidden = c.is_control()
            || matches!(
                c,
                '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            );
        if hidden {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
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
            username: username.map(printable),
            action: event.action.to_owned(),
            resource_type: Some(event.resource_type.to_owned()),
            resource_id: Some(printable(&event.resource_id)),
            details: Some(printable(&event.details)),
            ip_address: origin.ip.as_deref().map(printable),
            user_agent: origin.user_agent.as_deref().map(printable),
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

    /// The home page's activity feed: at most `limit` audit records after skipping the
    /// `offset` newest, newest first.
    ///
    /// # Errors
    /// Store errors.
    pub async fn recent_activity(&self, limit: u32, offset: u32) -> Result<Vec<AuditRecord>> {
        Ok(self
            .store
            .audit_recent(i64::from(limit), i64::from(offset))
            .await?)
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
            after: None,
        };
        Ok(self.store.audit_list(&filter, page).await?.items)
    }

    /// Removes records older than `retention_days`, keeping the rest of the chain verifiable,
    /// and audits the cleanup. Returns how many records were removed.
    ///
    /// # Errors
    /// [`Error::Invalid`] for fewer days than the policy's `audit_min_retention_days` (and at
    /// least 1) or more than 36,500; store errors.
    pub async fn audit_cleanup(&self, principal: &Principal, retention_days: i64) -> Result<i64> {
        self.check_retention_days(retention_days)?;
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

    /// Checks a retention period against the policy's floor.
    ///
    /// # Errors
    /// [`Error::Invalid`] for fewer days than `audit_min_retention_days` (and at least 1) or
    /// more than 36,500.
    pub(crate) fn check_retention_days(&self, retention_days: i64) -> Result<()> {
        let floor = i64::from(self.policy.audit_min_retention_days).clamp(1, 36_500);
        if !(floor..=36_500).contains(&retention_days) {
            return Err(Error::Invalid(format!(
                "retention_days must be between {floor} and 36500: records younger than \
                 {floor} days (audit_min_retention_days) are never removed"
            )));
        }
        Ok(())
    }

    /// Walks the chain from `start_id` to `end_id` (by default all of it) and reports every
    /// record whose content no longer matches its hash, every broken link and every gap. A walk
    /// from the chain's start that finds it whole up to its head may leave a checkpoint there
    /// for [`Authority::audit_verify_since_checkpoint`].
    ///
    /// # Errors
    /// [`Error::Invalid`] when `start_id` is after `end_id`; store errors.
    pub async fn audit_verify(
        &self,
        start_id: Option<i64>,
        end_id: Option<i64>,
    ) -> Result<Verification> {
        let (report, anchor) = self.walk_chain(start_id, end_id).await?;
        if start_id.is_none() {
            self.keep_checkpoint(&anchor, &report).await;
        }
        Ok(report)
    }

    /// [`Authority::audit_verify`]'s walk, with the anchor it walked from.
    async fn walk_chain(
        &self,
        start_id: Option<i64>,
        end_id: Option<i64>,
    ) -> Result<(Verification, ChainAnchor)> {
        let mut anchor = self.store.audit_anchor().await?;
        let mut faults = Vec::new();
        if anchor.keyed_from > anchor.first_id && !self.keyed_from_sealed(&anchor) {
            faults.push(ChainFault {
                id: anchor.keyed_from,
                kind: "altered",
                message: format!(
                    "the chain says records before {} are from before it was keyed, but the key \
                     did not seal that: every record is checked as keyed",
                    anchor.keyed_from
                ),
            });
            anchor.keyed_from = anchor.first_id;
        }
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
                if self.chain_hash(&anchor, record) != record.hash {
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
        let report = Verification {
            valid: faults.is_empty(),
            checked,
            start_id: start,
            end_id: end,
            from_checkpoint: None,
            faults,
        };
        Ok((report, anchor))
    }

    /// Verifies what is new since the newest checkpoint this server kept and can still trust:
    /// its signature is genuine, its record still carries the hash it had, and the chain is
    /// keyed from where it was. Such a checkpoint's records are not hashed again (a full
    /// [`Authority::audit_verify`] does that); a checkpoint that fails those checks is a
    /// fault in the report, and the walk starts from an older one, or from the chain's start.
    ///
    /// # Errors
    /// Store errors.
    pub async fn audit_verify_since_checkpoint(&self) -> Result<Verification> {
        let anchor = self.store.audit_anchor().await?;
        let mut faults = Vec::new();
        let mut trusted = None;
        for kept in self
            .store
            .audit_checkpoints(anchor.first_id, CHECKPOINTS_TRIED)
            .await?
        {
            let checkpoint = Checkpoint {
                last_id: kept.record_id,
                head_hash: kept.hash,
                keyed_from: kept.keyed_from,
                at: kept.created_at,
                signature: kept.signature,
            };
            match self.checkpoint_refusal(&checkpoint).await? {
                Some(fault) => faults.push(fault),
                None => {
                    trusted = Some(checkpoint.last_id);
                    break;
                }
            }
        }
        let (mut report, anchor) = self.walk_chain(trusted.map(|id| id + 1), None).await?;
        report.from_checkpoint = trusted;
        if !faults.is_empty() {
            faults.append(&mut report.faults);
            faults.truncate(MAX_FAULTS);
            report.faults = faults;
            report.valid = false;
        }
        self.keep_checkpoint(&anchor, &report).await;
        Ok(report)
    }

    /// Keeps a checkpoint of the chain's head when `report`, a walk from the chain's start or
    /// from a trusted checkpoint, found the chain whole up to it, and it is [`CHECKPOINT_EVERY`]
    /// records or more past the newest checkpoint kept. A checkpoint that cannot be written is
    /// logged and left: the report stands without it, and the next walk goes further back.
    async fn keep_checkpoint(&self, anchor: &ChainAnchor, report: &Verification) {
        if let Err(e) = self.try_keep_checkpoint(anchor, report).await {
            tracing::warn!(error = %e, "audit checkpoint not kept");
        }
    }

    async fn try_keep_checkpoint(&self, anchor: &ChainAnchor, report: &Verification) -> Result<()> {
        let end = report.end_id;
        if !report.valid || end != anchor.last_id {
            return Ok(());
        }
        let newest = self.store.audit_checkpoints(anchor.first_id, 1).await?;
        let since = newest.first().map_or(anchor.first_id - 1, |c| c.record_id);
        if end - since < CHECKPOINT_EVERY {
            return Ok(());
        }
        let Some(record) = self.store.audit_get(end).await? else {
            return Ok(());
        };
        let mut checkpoint = Checkpoint {
            last_id: end,
            head_hash: record.hash,
            keyed_from: anchor.keyed_from,
            at: from_micros(to_micros(self.now())),
            signature: String::new(),
        };
        checkpoint.signature = self.vault.sign_checkpoint(&checkpoint.canonical());
        let mut tx = self.store.begin_write().await?;
        tx.insert_audit_checkpoint(&AuditCheckpoint {
            record_id: checkpoint.last_id,
            hash: checkpoint.head_hash,
            keyed_from: checkpoint.keyed_from,
            signature: checkpoint.signature,
            created_at: checkpoint.at,
        })
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Authority {
    /// The hash `record` must carry: keyed from the anchor's `keyed_from` on, plain before.
    fn chain_hash(&self, anchor: &ChainAnchor, record: &AuditRecord) -> String {
        if record.id >= anchor.keyed_from {
            self.vault
                .audit_chain_key()
                .hash(record.id, &record.entry, &record.prev_hash)
        } else {
            plain_chain_hash(record.id, &record.entry, &record.prev_hash)
        }
    }

    fn keyed_from_sealed(&self, anchor: &ChainAnchor) -> bool {
        anchor
            .keyed_seal
            .as_deref()
            .is_some_and(|seal| self.vault.audit_chain_key().sealed(anchor.keyed_from, seal))
    }

    /// A signed checkpoint of the chain's head now, to keep outside the database.
    ///
    /// # Errors
    /// Store errors.
    pub async fn audit_checkpoint(&self) -> Result<Checkpoint> {
        let anchor = self.store.audit_anchor().await?;
        let mut checkpoint = Checkpoint {
            last_id: anchor.last_id,
            head_hash: anchor.last_hash,
            keyed_from: anchor.keyed_from,
            at: from_micros(to_micros(self.now())),
            signature: String::new(),
        };
        checkpoint.signature = self.vault.sign_checkpoint(&checkpoint.canonical());
        Ok(checkpoint)
    }

    /// Verifies the whole chain as [`Authority::audit_verify`] does, and that it still holds
    /// what `checkpoint` saw: its record with its hash, and the same keyed part. A checkpoint
    /// whose signature is not genuine proves nothing and fails.
    ///
    /// # Errors
    /// Store errors.
    pub async fn audit_verify_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Verification> {
        if !self.checkpoint_genuine(checkpoint) {
            return Ok(Verification {
                valid: false,
                checked: 0,
                start_id: checkpoint.last_id,
                end_id: checkpoint.last_id,
                from_checkpoint: None,
                faults: vec![forged(checkpoint.last_id)],
            });
        }
        let mut report = self.audit_verify(None, None).await?;
        if let Some(fault) = self.checkpoint_fault(checkpoint).await? {
            report.faults.insert(0, fault);
            report.faults.truncate(MAX_FAULTS);
            report.valid = false;
        }
        Ok(report)
    }

    fn checkpoint_genuine(&self, checkpoint: &Checkpoint) -> bool {
        self.vault
            .checkpoint_signed(&checkpoint.canonical(), &checkpoint.signature)
    }

    /// Why `checkpoint` cannot be trusted, if it cannot: its signature, or what
    /// [`Authority::checkpoint_fault`] finds.
    async fn checkpoint_refusal(&self, checkpoint: &Checkpoint) -> Result<Option<ChainFault>> {
        if !self.checkpoint_genuine(checkpoint) {
            return Ok(Some(forged(checkpoint.last_id)));
        }
        self.checkpoint_fault(checkpoint).await
    }

    async fn checkpoint_fault(&self, checkpoint: &Checkpoint) -> Result<Option<ChainFault>> {
        let id = checkpoint.last_id;
        let anchor = self.store.audit_anchor().await?;
        let fault = |kind, message: String| Some(ChainFault { id, kind, message });
        if anchor.keyed_from != checkpoint.keyed_from {
            return Ok(fault(
                "altered",
                format!(
                    "the chain is keyed from record {} but was keyed from record {} at the checkpoint",
                    anchor.keyed_from, checkpoint.keyed_from
                ),
            ));
        }
        if id == 0 {
            return Ok(None);
        }
        if id < anchor.first_id {
            return Ok(fault(
                "missing",
                format!(
                    "record {id} of the checkpoint was removed by a retention cleanup; the checkpoint can no longer be checked"
                ),
            ));
        }
        Ok(match self.store.audit_get(id).await? {
            None => fault(
                "missing",
                format!("record {id} of the checkpoint is missing"),
            ),
            Some(record) if record.hash != checkpoint.head_hash => fault(
                "altered",
                format!("record {id} no longer carries the hash it had at the checkpoint"),
            ),
            Some(_) => None,
        })
    }
}

fn forged(id: i64) -> ChainFault {
    ChainFault {
        id,
        kind: "forged_checkpoint",
        message: "the checkpoint's signature is not genuine: this server did not issue it, or \
                  a field of it was changed"
            .into(),
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

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn printable_escapes_controls_separators_and_bidi_and_keeps_the_rest() {
        for (text, shown) in [
            ("plain ünïcödé 名前", "plain ünïcödé 名前"),
            ("a\nb\r\tc\0", "a\\u{a}b\\u{d}\\u{9}c\\u{0}"),
            ("\u{7f}\u{85}\u{9f}", "\\u{7f}\\u{85}\\u{9f}"),
            ("\u{2028}\u{2029}", "\\u{2028}\\u{2029}"),
            (
                "\u{202a}\u{202e}\u{2066}\u{2069}",
                "\\u{202a}\\u{202e}\\u{2066}\\u{2069}",
            ),
            ("\u{200e}\u{200f}\u{61c}", "\\u{200e}\\u{200f}\\u{61c}"),
            ("\u{202f}\u{206a}", "\u{202f}\u{206a}"),
        ] {
            assert_eq!(printable(text), shown, "{text:?}");
        }
    }
}
