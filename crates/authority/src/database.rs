//! Database operations for administrators: figures, the integrity check (the engine's own
//! checks and certmint's: issuer links, signatures, fingerprints, sealed keys), upkeep, and
//! the pages an export of certificates and CAs is written from.

use pki::inspect;
use store::{CaRow, CertificateId, CertificateRow, DatabaseStats, EngineCheck, KeyId, PoolStats};

use crate::audit::Event;
use crate::chain_repair::{CaIndex, Link, MAX_LISTED, PAGE};
use crate::{Authority, Permission, Principal, Result};

/// The database's figures and the connection pool's.
#[derive(Debug, Clone)]
pub struct DatabaseReport {
    /// Size, tables and log.
    pub stats: DatabaseStats,
    /// This node's connection pool.
    pub pool: PoolStats,
}

/// One thing the integrity check found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityProblem {
    /// `certificate`, `ca` or `key`.
    pub resource: &'static str,
    /// Its id.
    pub id: i64,
    /// `unreadable_der`, `fingerprint_mismatch`, `issuer_link` or `sealed_key`.
    pub kind: &'static str,
    /// What is wrong.
    pub message: String,
}

/// What the integrity check found.
#[derive(Debug, Clone)]
pub struct IntegrityReport {
    /// The engine's own checks.
    pub engine: EngineCheck,
    /// CAs checked.
    pub cas_checked: i64,
    /// Certificates checked.
    pub certificates_checked: i64,
    /// Keys sealed here, each tried with the vault.
    pub keys_checked: i64,
    /// Keys held elsewhere (an HSM), not opened.
    pub keys_elsewhere: i64,
    /// Problems found in certmint's own checks, in all.
    pub problem_count: i64,
    /// The first [`MAX_LISTED`] of them.
    pub problems: Vec<IntegrityProblem>,
}

impl IntegrityReport {
    /// Whether nothing was found wrong.
    pub fn ok(&self) -> bool {
        self.problem_count == 0 && self.engine.problems.is_empty()
    }

    fn add(&mut self, problems: Vec<IntegrityProblem>) {
        self.problem_count += i64::try_from(problems.len()).unwrap_or(i64::MAX);
        let room = MAX_LISTED.saturating_sub(self.problems.len());
        self.problems.extend(problems.into_iter().take(room));
    }
}

/// What an optimize run did.
#[derive(Debug, Clone)]
pub struct Optimized {
    /// What ran.
    pub actions: Vec<String>,
    /// The figures before.
    pub before: DatabaseStats,
    /// The figures after.
    pub after: DatabaseStats,
}

/// A certificate or CA as exported: its DER and what an index says of it, never a key.
#[derive(Debug, Clone)]
pub struct ExportItem {
    /// `ca` or `certificate`.
    pub kind: &'static str,
    /// Its id.
    pub id: i64,
    /// Its public identifier.
    pub refid: String,
    /// The CA's name; a certificate's common name.
    pub name: Option<String>,
    /// The CA that issued it, when certmint holds it.
    pub issuer_ca_id: Option<i64>,
    /// `valid` or `revoked` (CAs: `active` or `inactive`).
    pub status: String,
    /// The stored certificate: subject, serial, validity, fingerprint, DER.
    pub cert: store::CertFields,
}

impl From<CaRow> for ExportItem {
    fn from(ca: CaRow) -> Self {
        Self {
            kind: "ca",
            id: ca.id.0,
            refid: ca.refid,
            name: Some(ca.name),
            issuer_ca_id: ca.parent_id.map(|p| p.0),
            status: if ca.is_active { "active" } else { "inactive" }.into(),
            cert: ca.cert,
        }
    }
}

impl From<CertificateRow> for ExportItem {
    fn from(c: CertificateRow) -> Self {
        Self {
            kind: "certificate",
            id: c.id.0,
            refid: c.refid,
            name: c.cert.common_name.clone(),
            issuer_ca_id: c.ca_id.map(|p| p.0),
            status: c.status.as_str().into(),
            cert: c.cert,
        }
    }
}

impl Authority {
    /// The database's size, tables (rows, and bytes where the backend says), SQLite's
    /// write-ahead log, and the connection pool.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`] without `admin:system`; store errors.
    pub async fn database_report(&self, principal: &Principal) -> Result<DatabaseReport> {
        principal.require(Permission::AdminSystem, "reading the database figures")?;
        Ok(DatabaseReport {
            stats: self.store.database_stats().await?,
            pool: self.store.pool_stats(),
        })
    }

    /// Checks the database: the engine's own checks, then every CA and certificate (its DER
    /// parses and matches its recorded fingerprint; its issuer link exists and its signature
    /// verifies under the issuer's key) and every key sealed here (it opens with the vault and
    /// matches its recorded public key). Certificates and keys are read a page at a time and
    /// judged in the CPU pool. Audited.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`] without `admin:system`; [`crate::Error::Busy`] when the CPU
    /// pool is full; store errors.
    pub async fn integrity_check(&self, principal: &Principal) -> Result<IntegrityReport> {
        principal.require(Permission::AdminSystem, "checking the database")?;
        let mut report = IntegrityReport {
            engine: self.store.engine_check(MAX_LISTED).await?,
            cas_checked: 0,
            certificates_checked: 0,
            keys_checked: 0,
            keys_elsewhere: 0,
            problem_count: 0,
            problems: Vec::new(),
        };
        let (cas, index) = self.ca_index().await?;
        report.cas_checked = i64::try_from(cas.len()).unwrap_or(i64::MAX);
        let found = {
            let index = index.clone();
            self.cpu.run(move || Ok(ca_problems(&index, &cas))).await?
        };
        report.add(found);

        let mut after = CertificateId(0);
        loop {
            let page = self.store.certificates_after(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            report.certificates_checked += i64::try_from(page.len()).unwrap_or(i64::MAX);
            let index = index.clone();
            let found = self
                .cpu
                .run(move || Ok(certificate_problems(&index, &page)))
                .await?;
            report.add(found);
        }

        let mut after = KeyId(0);
        loop {
            let page = self.store.keys_after(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            let checked = self.check_sealed_keys(&page).await?;
            report.keys_checked += checked.opened;
            report.keys_elsewhere += checked.elsewhere;
            report.add(
                checked
                    .failed
                    .into_iter()
                    .map(|(id, message)| IntegrityProblem {
                        resource: "key",
                        id: id.0,
                        kind: "sealed_key",
                        message,
                    })
                    .collect(),
            );
        }

        let mut tx = self.store.begin_write().await?;
        let mut event = Event::new(
            "database_integrity_checked",
            "system",
            "database",
            format!(
                "{} engine problems; {} problems in {} CAs, {} certificates and {} keys",
                report.engine.problems.len(),
                report.problem_count,
                report.cas_checked,
                report.certificates_checked,
                report.keys_checked
            ),
        );
        if !report.ok() {
            event = event.failed();
        }
        tx.audit(&self.entry_by(principal, event)).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Runs SQLite's `PRAGMA optimize` and empties its write-ahead log, with `VACUUM` when
    /// `vacuum` (it holds the write lock while it rewrites the file); or PostgreSQL's
    /// `VACUUM (ANALYZE)` on certmint's tables. Audited with the sizes before and after.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`] without `admin:system`; store errors.
    pub async fn optimize_database(
        &self,
        principal: &Principal,
        vacuum: bool,
    ) -> Result<Optimized> {
        principal.require(Permission::AdminSystem, "optimizing the database")?;
        let before = self.store.database_stats().await?;
        let actions = self.store.optimize(vacuum).await?;
        let after = self.store.database_stats().await?;
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "database_optimized",
                "system",
                "database",
                format!(
                    "{}; {} → {} bytes",
                    actions.join(", "),
                    before.bytes,
                    after.bytes
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(Optimized {
            actions,
            before,
            after,
        })
    }

    /// Every CA, for an export.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`] without `admin:system`; store errors.
    pub async fn export_cas(&self, principal: &Principal) -> Result<Vec<ExportItem>> {
        principal.require(Permission::AdminSystem, "exporting the database")?;
        Ok(self
            .store
            .cas()
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Up to `limit` certificates with an id above `after`, in id order, for an export that
    /// walks them all a page at a time.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`] without `admin:system`; store errors.
    pub async fn export_certificates(
        &self,
        principal: &Principal,
        after: CertificateId,
        limit: i64,
    ) -> Result<Vec<ExportItem>> {
        principal.require(Permission::AdminSystem, "exporting the database")?;
        Ok(self
            .store
            .certificates_after(after, limit)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

/// What is wrong with a stored certificate (or CA certificate) `der` recorded with
/// `fingerprint` and linked to `linked`, judged against `index`.
fn stored_problems(
    index: &CaIndex,
    resource: &'static str,
    id: i64,
    der: &[u8],
    fingerprint: &str,
    linked: Option<store::CaId>,
    own: Option<store::CaId>,
) -> Vec<IntegrityProblem> {
    let problem = |kind, message| IntegrityProblem {
        resource,
        id,
        kind,
        message,
    };
    let cert = match inspect::Certificate::parse(der) {
        Ok(cert) => cert,
        Err(e) => {
            return vec![problem(
                "unreadable_der",
                format!("its DER does not parse: {e}"),
            )];
        }
    };
    let mut problems = Vec::new();
    if cert.fingerprint_sha256 != fingerprint {
        problems.push(problem(
            "fingerprint_mismatch",
            "its DER does not match its recorded SHA-256 fingerprint: it was altered".into(),
        ));
    }
    let link: Link = index.judge(&cert, linked, own);
    if let Some(message) = index.describe(link) {
        problems.push(problem("issuer_link", message));
    }
    problems
}

/// Problems of the stored CAs; CPU work for the pool.
fn ca_problems(index: &CaIndex, cas: &[CaRow]) -> Vec<IntegrityProblem> {
    cas.iter()
        .flat_map(|ca| {
            stored_problems(
                index,
                "ca",
                ca.id.0,
                &ca.cert.der,
                &ca.cert.fingerprint_sha256,
                ca.parent_id,
                Some(ca.id),
            )
        })
        .collect()
}

/// Problems of a page of certificates; CPU work for the pool.
fn certificate_problems(index: &CaIndex, page: &[CertificateRow]) -> Vec<IntegrityProblem> {
    page.iter()
        .flat_map(|c| {
            stored_problems(
                index,
                "certificate",
                c.id.0,
                &c.cert.der,
                &c.cert.fingerprint_sha256,
                c.ca_id,
                None,
            )
        })
        .collect()
}
