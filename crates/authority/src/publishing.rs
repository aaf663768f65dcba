//! Where revocation is published, and the signal that revocation changed on this node.
//!
//! Certificates carry URLs built from one public base URL (AIA caIssuers and OCSP, CRL
//! distribution points), so that the base, not every certificate, changes when certmint moves.

use std::sync::atomic::{AtomicU64, Ordering};

use pki::CertSpec;
use store::CaRow;
use tokio::sync::Notify;

/// The public base URL and the URLs built from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publishing {
    base_url: String,
}

impl Publishing {
    /// Publishing under `base_url` (`http://host:port`, with or without a trailing slash).
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Where CA `refid`'s certificate downloads (AIA caIssuers).
    pub fn ca_issuers_url(&self, refid: &str) -> String {
        format!("{}/ca/{refid}.cer", self.base_url)
    }

    /// Where CA `refid`'s latest full CRL downloads (CRL distribution point).
    pub fn crl_url(&self, refid: &str) -> String {
        format!("{}/crl/{refid}.crl", self.base_url)
    }

    /// Where CA `refid`'s latest delta CRL downloads (Freshest CRL).
    pub fn delta_crl_url(&self, refid: &str) -> String {
        format!("{}/crl/{refid}/delta.crl", self.base_url)
    }

    /// The OCSP responder, one URL for every CA.
    pub fn ocsp_url(&self) -> String {
        format!("{}/ocsp", self.base_url)
    }

    /// Points a certificate `ca` issues to where its revocation and issuer are published, as
    /// the CA's toggles allow: CRL distribution point, OCSP and caIssuers (AIA).
    pub(crate) fn point_to(&self, spec: &mut CertSpec, ca: &CaRow) {
        let s = &ca.revocation;
        let some = |on: bool, url: String| if on { vec![url] } else { Vec::new() };
        spec.crl_urls = some(s.cdp_enabled, self.crl_url(&ca.refid));
        spec.ocsp_urls = some(s.ocsp_enabled, self.ocsp_url());
        spec.ca_issuer_urls = some(s.aia_ca_issuers_enabled, self.ca_issuers_url(&ca.refid));
    }
}

impl Default for Publishing {
    fn default() -> Self {
        Self::new("http://127.0.0.1:8080")
    }
}

/// Counts revocation changes committed on this node and wakes whoever publishes them.
#[derive(Debug, Default)]
pub(crate) struct RevocationSignal {
    changes: AtomicU64,
    notify: Notify,
}

impl RevocationSignal {
    pub(crate) fn raise(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    pub(crate) fn count(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    pub(crate) async fn raised(&self) {
        self.notify.notified().await;
    }
}
