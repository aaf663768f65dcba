//! Scheduled backups: the `backup` job's schedule and switch, with what it needs besides: the
//! passphrase (sealed under the master key, never shown again), how many backups to keep and
//! for how long, and whether the master key goes inside.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::shelf::{BackupKind, Shelf};
use super::{BackupRequest, check_passphrase};
use crate::audit::Event;
use crate::jobs::{Job, JobChange, Schedule};
use crate::sealed_settings::{SealedSetting, decoded, encoded};
use crate::{Authority, Error, Permission, Principal, Result};

/// The setting that holds the schedule's other half.
const KEY: &str = "backup";
/// The vault context of the sealed passphrase.
const PASSPHRASE_CONTEXT: &str = "backup-passphrase";
/// The scheduled backups' passphrase, sealed in the backup setting.
pub(crate) const SEALED_PASSPHRASE: SealedSetting = SealedSetting {
    kind: "backup_passphrase",
    label: "backup passphrase",
    key: KEY,
    field: "sealed_passphrase",
    context: PASSPHRASE_CONTEXT,
};
/// Most scheduled backups kept.
const MAX_KEEP: u32 = 1000;
/// Longest retention in days.
const MAX_RETENTION_DAYS: u32 = 3650;

/// The backup setting as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    keep: u32,
    retention_days: Option<u32>,
    include_master_key: bool,
    sealed_passphrase: Option<String>,
}

impl Default for Stored {
    fn default() -> Self {
        Self {
            keep: 7,
            retention_days: None,
            include_master_key: false,
            sealed_passphrase: None,
        }
    }
}

/// How often scheduled backups run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    /// Every hour, from the end of the last run.
    Hourly,
    /// Every day at a time (UTC).
    Daily,
    /// Every week on a day at a time (UTC).
    Weekly,
}

/// The backup schedule as people see it.
#[derive(Debug, Clone, Serialize)]
pub struct BackupSchedule {
    /// Whether backups run on the schedule.
    pub enabled: bool,
    /// Hourly, daily or weekly.
    pub frequency: Frequency,
    /// `HH:MM` (UTC) of daily and weekly backups.
    pub time: Option<String>,
    /// `mon` to `sun`, of weekly backups.
    pub day: Option<String>,
    /// The job's schedule as written (`daily 02:00`).
    pub schedule: String,
    /// Scheduled backups kept (the newest); older ones are removed after each run.
    pub keep: u32,
    /// Scheduled backups older than this are removed too.
    pub retention_days: Option<u32>,
    /// Whether the master key goes inside (under the passphrase).
    pub include_master_key: bool,
    /// Whether a passphrase is set (it is never shown).
    pub passphrase_set: bool,
    /// The directory backups are written to, on the node that runs them.
    pub directory: Option<String>,
    /// When the next one is due.
    pub next_run_at: OffsetDateTime,
    /// When the last one finished, and how.
    pub last_run_at: Option<OffsetDateTime>,
    /// `succeeded`, `failed` or `running`.
    pub last_outcome: Option<String>,
    /// Why the last one failed.
    pub last_error: Option<String>,
}

/// A change to the backup schedule; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct BackupScheduleChange {
    /// Switch it on or off (on needs a passphrase, set now or before).
    pub enabled: Option<bool>,
    /// Hourly, daily or weekly.
    pub frequency: Option<Frequency>,
    /// `HH:MM` (UTC).
    pub time: Option<String>,
    /// `mon` to `sun`.
    pub day: Option<String>,
    /// Scheduled backups kept, 1 to 1000.
    pub keep: Option<u32>,
    /// Remove scheduled backups older than this many days (1 to 3650); `Some(None)` clears it.
    pub retention_days: Option<Option<u32>>,
    /// Put the master key inside.
    pub include_master_key: Option<bool>,
    /// The passphrase scheduled backups are encrypted under.
    pub passphrase: Option<zeroize::Zeroizing<String>>,
}

/// The schedule's frequency, time and day, read back from the job's schedule.
fn described(schedule: &Schedule) -> (Frequency, Option<String>, Option<String>) {
    let text = schedule.to_string();
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["daily", at] => (Frequency::Daily, Some((*at).to_owned()), None),
        ["weekly", day, at] => (
            Frequency::Weekly,
            Some((*at).to_owned()),
            Some((*day).to_owned()),
        ),
        _ => (Frequency::Hourly, None, None),
    }
}

/// The job schedule for a frequency, time and day.
fn schedule_of(frequency: Frequency, time: &str, day: &str) -> Result<Schedule> {
    match frequency {
        Frequency::Hourly => "every 1h".parse(),
        Frequency::Daily => format!("daily {time}").parse(),
        Frequency::Weekly => format!("weekly {day} {time}").parse(),
    }
}

impl Authority {
    async fn stored_backup(&self) -> Result<Stored> {
        match self.store.setting(KEY).await? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| Error::Internal(format!("stored backup settings: {e}"))),
            None => Ok(Stored::default()),
        }
    }

    /// The backup schedule.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; store errors.
    pub async fn backup_schedule(&self, principal: &Principal) -> Result<BackupSchedule> {
        principal.require(Permission::AdminSystem, "reading the backup schedule")?;
        let stored = self.stored_backup().await?;
        let job = self.job(principal, Job::Backup.name()).await?;
        let schedule: Schedule = job.row.schedule.parse()?;
        let (frequency, time, day) = described(&schedule);
        let last = job.row.last.as_ref();
        Ok(BackupSchedule {
            enabled: job.row.enabled,
            frequency,
            time,
            day,
            schedule: schedule.to_string(),
            keep: stored.keep,
            retention_days: stored.retention_days,
            include_master_key: stored.include_master_key,
            passphrase_set: stored.sealed_passphrase.is_some(),
            directory: self
                .backup_shelf()
                .ok()
                .map(|s| s.dir().display().to_string()),
            next_run_at: job.row.next_run_at,
            last_run_at: last.and_then(|l| l.finished_at),
            last_outcome: last.map(|l| l.outcome.clone()),
            last_error: last.and_then(|l| l.error.clone()),
        })
    }

    /// Changes the backup schedule. Audited (never with the passphrase).
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for a bad time, day,
    /// count or passphrase, or switching it on without a passphrase; store errors.
    pub async fn update_backup_schedule(
        &self,
        principal: &Principal,
        change: BackupScheduleChange,
    ) -> Result<BackupSchedule> {
        principal.require(Permission::AdminSystem, "changing the backup schedule")?;
        let current = self.backup_schedule(principal).await?;
        let mut stored = self.stored_backup().await?;
        let mut details = Vec::new();
        if let Some(keep) = change.keep {
            if !(1..=MAX_KEEP).contains(&keep) {
                return Err(Error::Invalid(format!("keep must be from 1 to {MAX_KEEP}")));
            }
            if keep != stored.keep {
                details.push(format!("keep {} → {keep}", stored.keep));
            }
            stored.keep = keep;
        }
        if let Some(days) = change.retention_days {
            if days.is_some_and(|d| !(1..=MAX_RETENTION_DAYS).contains(&d)) {
                return Err(Error::Invalid(format!(
                    "retention_days must be from 1 to {MAX_RETENTION_DAYS}, or null for none"
                )));
            }
            if days != stored.retention_days {
                details.push(format!(
                    "retention_days {:?} → {days:?}",
                    stored.retention_days
                ));
            }
            stored.retention_days = days;
        }
        if let Some(include) = change.include_master_key {
            if include != stored.include_master_key {
                details.push(format!(
                    "include_master_key {} → {include}",
                    stored.include_master_key
                ));
            }
            stored.include_master_key = include;
        }
        if let Some(passphrase) = &change.passphrase {
            check_passphrase(passphrase)?;
            let sealed = self.vault.seal(passphrase.as_bytes(), PASSPHRASE_CONTEXT)?;
            stored.sealed_passphrase = Some(encoded(&sealed));
            details.push("passphrase set".to_owned());
        }
        let frequency = change.frequency.unwrap_or(current.frequency);
        let time = change
            .time
            .or(current.time)
            .unwrap_or_else(|| "02:00".to_owned());
        let day = change
            .day
            .or(current.day)
            .unwrap_or_else(|| "sun".to_owned());
        let schedule = schedule_of(frequency, &time, &day)?;
        let enabled = change.enabled.unwrap_or(current.enabled);
        if enabled && stored.sealed_passphrase.is_none() {
            return Err(Error::Invalid(
                "set a passphrase (at least 12 characters) before switching scheduled backups on: every backup is encrypted under it".into(),
            ));
        }
        if enabled && self.backup_shelf().is_err() {
            return Err(Error::Invalid(
                "this node has no backup directory to write scheduled backups to".into(),
            ));
        }
        if !details.is_empty() {
            let value = serde_json::to_value(&stored)
                .map_err(|e| Error::Internal(format!("backup settings: {e}")))?;
            let mut tx = self.store.begin_write().await?;
            tx.set_setting(KEY, &value, self.now()).await?;
            tx.audit(&self.entry_by(
                principal,
                Event::new(
                    "backup_schedule_updated",
                    "setting",
                    KEY,
                    details.join(", "),
                ),
            ))
            .await?;
            tx.commit().await?;
        }
        self.update_job(
            principal,
            Job::Backup.name(),
            JobChange {
                enabled: Some(enabled),
                schedule: Some(schedule.to_string()),
            },
        )
        .await?;
        self.backup_schedule(principal).await
    }

    /// The `backup` job: a backup under the scheduled passphrase, then retention.
    pub(crate) async fn scheduled_backup(&self) -> Result<String> {
        let stored = self.stored_backup().await?;
        let sealed = stored.sealed_passphrase.as_deref().ok_or_else(|| {
            Error::Invalid(
                "no backup passphrase is set: set one through /api/v2/settings/backup/schedule"
                    .into(),
            )
        })?;
        let passphrase = self.vault.open(
            &decoded(sealed, SEALED_PASSPHRASE.label)?,
            PASSPHRASE_CONTEXT,
        )?;
        let passphrase = String::from_utf8(passphrase.to_vec())
            .map_err(|_| Error::Internal("the stored backup passphrase is not text".into()))?;
        let record = self
            .write_backup_to_shelf(
                &Principal::local("scheduler"),
                BackupRequest {
                    passphrase: zeroize::Zeroizing::new(passphrase),
                    include_master_key: stored.include_master_key,
                },
                BackupKind::Scheduled,
            )
            .await?;
        let shelf = self.backup_shelf()?;
        let past = Shelf::past_retention(
            &shelf.list()?,
            stored.keep,
            stored
                .retention_days
                .map(|d| time::Duration::days(i64::from(d))),
            self.now(),
        );
        for id in &past {
            shelf.remove(id)?;
        }
        if !past.is_empty() {
            let mut tx = self.store.begin_write().await?;
            tx.audit(&self.entry_by(
                &Principal::local("scheduler"),
                Event::new(
                    "backup_pruned",
                    "backup",
                    past.join(","),
                    format!(
                        "{} scheduled backups past the retention removed",
                        past.len()
                    ),
                ),
            ))
            .await?;
            tx.commit().await?;
        }
        Ok(format!(
            "wrote {} ({} bytes); removed {} past the retention",
            record.id,
            record.bytes,
            past.len()
        ))
    }
}
