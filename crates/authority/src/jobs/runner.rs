//! The runner: on every node, once a second, each job that is due (by its schedule, or because
//! someone asked) is run here if this node can take its lease. The lease is renewed while the
//! job runs, so a node killed mid-run gives the job up within one lease period, and the next
//! node to take the lease finds it still due and runs it.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use store::JobEnd;
use time::Duration;
use tokio::sync::watch;

use super::{Job, Schedule};
use crate::{Authority, Result};

/// How often a node looks for due jobs.
const TICK: StdDuration = StdDuration::from_secs(1);
/// How long a job's lease lasts without renewal: a dead node's job is taken over after this.
pub(crate) const LEASE: Duration = Duration::seconds(15);
/// How often a running job's lease is renewed.
const RENEW_EVERY: StdDuration = StdDuration::from_secs(5);
/// The longest error kept with a job.
const MAX_ERROR: usize = 1000;

impl Authority {
    /// Runs due jobs as node `node` until `stop` turns true.
    pub(crate) async fn run_scheduler(
        self: Arc<Self>,
        node: String,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(TICK) => {}
            }
            if let Err(e) = self.run_due_jobs(&node).await {
                tracing::warn!(error = %e, "the scheduler could not look for due jobs");
            }
        }
    }

    /// Runs, one after another, the jobs due now whose lease this node takes.
    async fn run_due_jobs(&self, node: &str) -> Result<()> {
        let now = self.now();
        for (job, row) in self.job_rows().await? {
            if !due(
                row.enabled,
                row.next_run_at,
                row.run_requested_at.is_some(),
                now,
            ) {
                continue;
            }
            let (lease, own) = job.lease();
            if !self
                .store
                .take_lease(&lease, node, now, now + LEASE)
                .await?
            {
                continue;
            }
            // Another node may have run it between the read above and the lease.
            let still_due = self.store.job(job.name()).await?.is_some_and(|r| {
                due(
                    r.enabled,
                    r.next_run_at,
                    r.run_requested_at.is_some(),
                    self.now(),
                )
            });
            if still_due {
                self.run_leased(job, &lease, node).await?;
            }
            if own {
                self.store.release_lease(&lease, node).await?;
            }
        }
        Ok(())
    }

    /// Runs `job`, holding `lease` all along, and records how it went.
    async fn run_leased(&self, job: Job, lease: &str, node: &str) -> Result<()> {
        let started = self.now();
        self.store.job_started(job.name(), node, started).await?;
        let clock = Instant::now();
        let outcome = {
            let run = self.run_job(job);
            tokio::pin!(run);
            loop {
                tokio::select! {
                    outcome = &mut run => break outcome,
                    () = tokio::time::sleep(RENEW_EVERY) => {
                        let now = self.now();
                        if let Err(e) = self.store.take_lease(lease, node, now, now + LEASE).await {
                            tracing::warn!(job = job.name(), error = %e, "could not renew a job's lease");
                        }
                    }
                }
            }
        };
        let finished_at = self.now();
        let schedule: Schedule = match self.store.job(job.name()).await? {
            Some(row) => row.schedule.parse().unwrap_or(job.default_schedule()),
            None => job.default_schedule(),
        };
        let (succeeded, summary, error) = match outcome {
            Ok(summary) => (true, Some(summary), None),
            Err(e) => {
                tracing::warn!(job = job.name(), error = %e, "a scheduled job failed");
                let mut message = e.to_string();
                message.truncate(message.floor_char_boundary(MAX_ERROR));
                (false, None, Some(message))
            }
        };
        let end = JobEnd {
            started_at: started,
            finished_at,
            duration_ms: i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX),
            succeeded,
            summary,
            error,
            next_run_at: schedule.next_after(finished_at),
        };
        self.store.job_finished(job.name(), &end).await?;
        Ok(())
    }

    /// Runs `job` once, saying what it did.
    async fn run_job(&self, job: Job) -> Result<String> {
        match job {
            Job::CrlRefresh => self.crl_refresh().await,
            Job::OcspRefresh => self.ocsp_refresh_job().await,
            Job::AuditRetention => self.apply_audit_retention().await,
            Job::Recovery => self.acme_recover_stalled().await,
            Job::ExpiryScan => self.expiry_scan_job().await,
            Job::WebhookDelivery => self.deliver_webhooks().await,
            Job::AutoRenewal => self.auto_renewal_job().await,
            Job::ReportDelivery => self.deliver_reports().await,
            Job::Backup => self.scheduled_backup().await,
            Job::SyslogForward => self.forward_audit_to_syslog().await,
        }
    }
}

/// Whether a job is due at `now`: asked for, or enabled and past its time.
fn due(
    enabled: bool,
    next_run_at: time::OffsetDateTime,
    requested: bool,
    now: time::OffsetDateTime,
) -> bool {
    requested || (enabled && next_run_at <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_job_is_due_when_asked_for_or_enabled_and_past_its_time() {
        let now = datetime!(2026-12-02 10:00:00 UTC);
        let past = now - Duration::SECOND;
        let ahead = now + Duration::SECOND;
        assert!(due(true, past, false, now));
        assert!(due(true, now, false, now));
        assert!(!due(true, ahead, false, now));
        assert!(!due(false, past, false, now), "disabled");
        assert!(due(false, ahead, true, now), "asked for, even disabled");
    }
}
