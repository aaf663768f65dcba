//! The background publisher: CRLs (and the OCSP responder's upkeep) on whichever node holds
//! the publishing lease, so that several nodes sharing a database publish each CRL once.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use time::Duration;
use tokio::sync::watch;

use crate::Authority;
use crate::crl::CrlWatch;
use crate::jobs::PUBLISHER_LEASE;
use crate::ocsp::OcspWatch;

/// How often the publisher looks for work when nothing wakes it.
const TICK: StdDuration = StdDuration::from_millis(250);
/// How long a lease lasts, and how often its holder renews it.
const LEASE: Duration = Duration::seconds(15);
const RENEW_EVERY: StdDuration = StdDuration::from_secs(5);

/// A name for this node in leases and job runs: its host, its process id (which tell an
/// operator where a job ran) and a random part (which keeps two runs of one host apart).
///
/// # Errors
/// [`crate::Error::Internal`] when no randomness can be drawn.
pub fn node_name() -> crate::Result<String> {
    let host = host_name().unwrap_or_else(|| "node".to_owned());
    let random = crate::token::refid()?;
    let short = random.get(..8).unwrap_or(&random);
    Ok(format!("{host}/{}/{short}", std::process::id()))
}

/// This machine's host name, when the system says.
pub(crate) fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

impl Authority {
    /// Runs this node's background work until `stop` turns true: the revocation publisher and
    /// the scheduled jobs, under one name for the node in the leases they take.
    pub async fn run_background(self: Arc<Self>, stop: watch::Receiver<bool>) {
        match node_name() {
            Ok(node) => self.run_background_as(node, stop).await,
            Err(e) => {
                tracing::error!(error = %e, "this node cannot name itself, so it runs no background work");
            }
        }
    }

    /// [`Authority::run_background`] under `node`, a name from [`node_name`] that the caller
    /// shows elsewhere too.
    pub async fn run_background_as(self: Arc<Self>, node: String, stop: watch::Receiver<bool>) {
        tracing::info!(%node, "background work runs as this node");
        tokio::join!(
            self.clone().run_publisher(node.clone(), stop.clone()),
            self.run_scheduler(node, stop),
        );
    }

    /// Publishes until `stop` turns true: woken by each revocation on this node, and every
    /// [`TICK`] for changes made elsewhere and for refreshes that fall due.
    async fn run_publisher(self: Arc<Self>, holder: String, mut stop: watch::Receiver<bool>) {
        let mut watch = CrlWatch::default();
        let mut revocations = OcspWatch::from(self.now());
        let mut asked: Option<Instant> = None;
        let mut held = false;
        loop {
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = stop.changed() => return,
                () = self.revocations.raised() => {}
                () = tokio::time::sleep(TICK) => {}
            }
            if asked.is_none_or(|at| at.elapsed() >= RENEW_EVERY) {
                asked = Some(Instant::now());
                let now = self.now();
                held = self
                    .store
                    .take_lease(PUBLISHER_LEASE, &holder, now, now + LEASE)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "could not take the publishing lease");
                        false
                    });
            }
            // Every node forgets the OCSP responses that revocations made wrong; the lease
            // holder also signs the stored ones again and publishes CRLs.
            if let Err(e) = self.ocsp_watch(&mut revocations, held).await {
                tracing::warn!(error = %e, "OCSP revocation watch failed");
            }
            if !held {
                continue;
            }
            if let Err(e) = self.crl_round(&mut watch).await {
                tracing::warn!(error = %e, "CRL publishing failed");
            }
            if let Err(e) = self.ocsp_refresh().await {
                tracing::warn!(error = %e, "OCSP refresh failed");
            }
        }
    }
}
