//! Scheduled jobs: what runs in the background, when, on which node, and how it went.
//!
//! Each job runs on one node at a time, under a lease in the database; the runner
//! ([`Authority::run_scheduler`]) looks for due jobs every second on every node. People see
//! the jobs, change their schedules and ask for runs through [`Authority::jobs`],
//! [`Authority::update_job`] and [`Authority::request_job_run`] (`admin:system`).

mod expiry;
mod renewal;
mod retention;
mod runner;

pub(crate) use runner::LEASE;
mod schedule;

use std::str::FromStr;

use store::JobRow;

pub use expiry::{ExpiryAlerts, ExpiryAlertsChange, ExpiryNotice, ExpiryScan};
pub use retention::{AuditRetention, AuditRetentionChange};
pub use schedule::Schedule;

use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};

/// The lease the revocation publisher holds; the jobs that sign CRLs and OCSP responses run
/// under it, so that they run where the publisher does and never beside it.
pub(crate) const PUBLISHER_LEASE: &str = "revocation-publisher";

/// A job certmint runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Publishes the CRLs that are due by time (their refresh interval, or a nextUpdate near).
    CrlRefresh,
    /// Signs again the pre-signed OCSP responses that are due for refresh.
    OcspRefresh,
    /// Removes audit records past the retention period, when retention is on.
    AuditRetention,
    /// Finishes work that a node which died left half done: ACME orders left `processing`.
    Recovery,
    /// Announces certificates and CAs nearing expiry: events, and mail when mail is on.
    ExpiryScan,
    /// Sends outbox events to the webhook endpoints that ask for them.
    WebhookDelivery,
    /// Renews the certificates whose auto-renewal policy says they are due.
    AutoRenewal,
    /// Mails the scheduled reports that are due, each once per occurrence.
    ReportDelivery,
    /// Writes a backup to the backup directory and removes those past the retention.
    Backup,
    /// Forwards new audit records to the syslog server, when forwarding is on.
    SyslogForward,
}

impl Job {
    /// Every job.
    pub const ALL: [Job; 10] = [
        Job::CrlRefresh,
        Job::OcspRefresh,
        Job::AuditRetention,
        Job::Recovery,
        Job::ExpiryScan,
        Job::WebhookDelivery,
        Job::AutoRenewal,
        Job::ReportDelivery,
        Job::Backup,
        Job::SyslogForward,
    ];

    /// Its name in the API and the database.
    pub fn name(self) -> &'static str {
        match self {
            Job::CrlRefresh => "crl_refresh",
            Job::OcspRefresh => "ocsp_refresh",
            Job::AuditRetention => "audit_retention",
            Job::Recovery => "recovery",
            Job::ExpiryScan => "expiry_scan",
            Job::WebhookDelivery => "webhook_delivery",
            Job::AutoRenewal => "auto_renewal",
            Job::ReportDelivery => "report_delivery",
            Job::Backup => "backup",
            Job::SyslogForward => "syslog_forward",
        }
    }

    /// What it does, for people.
    pub fn description(self) -> &'static str {
        match self {
            Job::CrlRefresh => {
                "Publishes CRLs that are due by time: past their refresh interval or near their nextUpdate"
            }
            Job::OcspRefresh => {
                "Signs again the pre-signed OCSP responses that are due for refresh"
            }
            Job::AuditRetention => {
                "Removes audit records older than the retention period, when retention is on"
            }
            Job::Recovery => {
                "Finishes work a stopped or killed node left half done: ACME orders left processing"
            }
            Job::ExpiryScan => {
                "Announces certificates and CAs crossing an expiry alert threshold, once each: events, and mail when email is on"
            }
            Job::WebhookDelivery => {
                "Sends new events to the webhook endpoints that ask for them, and retries failed deliveries"
            }
            Job::AutoRenewal => {
                "Renews the certificates whose auto-renewal policy says they are due, retrying failures with backoff"
            }
            Job::ReportDelivery => {
                "Mails the scheduled reports that are due, each once per scheduled time whichever node runs it"
            }
            Job::Backup => {
                "Writes an encrypted backup to the backup directory of the node that runs it, then removes scheduled backups past the retention; set through /settings/backup/schedule"
            }
            Job::SyslogForward => {
                "Forwards new audit records to the syslog server in order, when forwarding is on, retrying failures with backoff"
            }
        }
    }

    /// Its schedule until someone changes it.
    pub fn default_schedule(self) -> Schedule {
        match self {
            Job::CrlRefresh | Job::OcspRefresh => Schedule::Every(time::Duration::MINUTE),
            Job::AuditRetention => Schedule::Daily(time::Time::MIDNIGHT + time::Duration::hours(3)),
            Job::Recovery => Schedule::Every(time::Duration::seconds(10)),
            Job::ExpiryScan => Schedule::Daily(time::Time::MIDNIGHT + time::Duration::hours(6)),
            Job::WebhookDelivery | Job::SyslogForward => {
                Schedule::Every(time::Duration::seconds(5))
            }
            Job::AutoRenewal => Schedule::Every(time::Duration::minutes(10)),
            Job::ReportDelivery => Schedule::Every(time::Duration::MINUTE),
            Job::Backup => Schedule::Daily(time::Time::MIDNIGHT + time::Duration::hours(2)),
        }
    }

    /// Whether it runs on its schedule until someone says otherwise: all but backups, which
    /// need a passphrase first.
    pub fn enabled_by_default(self) -> bool {
        self != Job::Backup
    }

    /// The lease it runs under, and whether it is its own (the runner gives its own back when
    /// a run ends; the publisher's it keeps).
    fn lease(self) -> (String, bool) {
        match self {
            Job::CrlRefresh | Job::OcspRefresh => (PUBLISHER_LEASE.to_owned(), false),
            other => (format!("job:{}", other.name()), true),
        }
    }
}

impl FromStr for Job {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Job::ALL
            .into_iter()
            .find(|j| j.name() == name)
            .ok_or_else(|| Error::NotFound(format!("there is no job named '{name}'")))
    }
}

/// A job as people see it: what it is, with its row.
#[derive(Debug, Clone)]
pub struct JobState {
    /// Which job.
    pub job: Job,
    /// Its schedule and runs.
    pub row: JobRow,
}

/// A change to a job; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct JobChange {
    /// Whether it runs on its schedule.
    pub enabled: Option<bool>,
    /// Its schedule.
    pub schedule: Option<String>,
}

impl Authority {
    /// Every job's row, after adding those the database does not have yet (each due at once).
    pub(crate) async fn job_rows(&self) -> Result<Vec<(Job, JobRow)>> {
        let mut rows = self.store.jobs().await?;
        if Job::ALL
            .iter()
            .any(|j| !rows.iter().any(|r| r.name == j.name()))
        {
            let now = self.now();
            let jobs: Vec<(&str, String, time::OffsetDateTime, bool)> = Job::ALL
                .iter()
                .map(|j| {
                    (
                        j.name(),
                        j.default_schedule().to_string(),
                        now,
                        j.enabled_by_default(),
                    )
                })
                .collect();
            self.store.ensure_jobs(&jobs).await?;
            rows = self.store.jobs().await?;
        }
        Ok(rows
            .into_iter()
            .filter_map(|row| Some((row.name.parse().ok()?, row)))
            .collect())
    }

    /// Every job with its schedule, its last run and its next.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; store errors.
    pub async fn jobs(&self, principal: &Principal) -> Result<Vec<JobState>> {
        principal.require(Permission::AdminSystem, "reading the scheduled jobs")?;
        Ok(self
            .job_rows()
            .await?
            .into_iter()
            .map(|(job, row)| JobState { job, row })
            .collect())
    }

    /// Job `name`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`] for no such job; store
    /// errors.
    pub async fn job(&self, principal: &Principal, name: &str) -> Result<JobState> {
        principal.require(Permission::AdminSystem, "reading the scheduled jobs")?;
        let job: Job = name.parse()?;
        self.job_rows()
            .await?
            .into_iter()
            .find(|(j, _)| *j == job)
            .map(|(job, row)| JobState { job, row })
            .ok_or_else(|| Error::NotFound(format!("there is no job named '{name}'")))
    }

    /// Asks for a run of job `name` as soon as a node can take it (within a second or two,
    /// unless it is running), whether or not it is enabled. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`] for no such job; store
    /// errors.
    pub async fn request_job_run(&self, principal: &Principal, name: &str) -> Result<JobState> {
        principal.require(Permission::AdminSystem, "running a scheduled job")?;
        let job = self.job(principal, name).await?.job;
        let mut tx = self.store.begin_write().await?;
        tx.request_job_run(job.name(), self.now()).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new("job_run_requested", "job", job.name(), "run asked for now"),
        ))
        .await?;
        tx.commit().await?;
        self.job(principal, job.name()).await
    }

    /// Changes job `name`'s schedule or switch; its next run follows the new schedule from
    /// now. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`] for no such job;
    /// [`Error::Invalid`] for a schedule that does not parse; store errors.
    pub async fn update_job(
        &self,
        principal: &Principal,
        name: &str,
        change: JobChange,
    ) -> Result<JobState> {
        principal.require(Permission::AdminSystem, "changing a scheduled job")?;
        let current = self.job(principal, name).await?;
        let schedule = match &change.schedule {
            Some(text) => text.parse::<Schedule>()?,
            None => current.row.schedule.parse()?,
        };
        let enabled = change.enabled.unwrap_or(current.row.enabled);
        let mut details = Vec::new();
        if schedule.to_string() != current.row.schedule {
            details.push(format!("schedule {} → {schedule}", current.row.schedule));
        }
        if enabled != current.row.enabled {
            details.push(format!("enabled {} → {enabled}", current.row.enabled));
        }
        if details.is_empty() {
            return Ok(current);
        }
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        tx.set_job_schedule(
            current.job.name(),
            &schedule.to_string(),
            enabled,
            schedule.next_after(now),
        )
        .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new("job_updated", "job", current.job.name(), details.join(", ")),
        ))
        .await?;
        tx.commit().await?;
        self.job(principal, current.job.name()).await
    }
}
