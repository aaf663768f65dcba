//! What revocation publishing reads and writes: per-CA settings, revoked entries for CRLs and
//! OCSP, the CRLs themselves, pre-signed OCSP responses, and job leases.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use time::OffsetDateTime;

use crate::db::{Arg, Filter, flag};
use crate::words::CertificateStatus;
use crate::{CaId, CertificateId, Error, Reader, Store, WriteTx, from_micros, to_micros};

/// How a CA publishes revocation, and what its certificates point to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationSettings {
    /// Certificates carry a CRL distribution point, and CRLs are published.
    pub cdp_enabled: bool,
    /// Certificates carry the OCSP URL, and the responder answers for the CA.
    pub ocsp_enabled: bool,
    /// Certificates carry the caIssuers URL (`/ca/{refid}.cer`).
    pub aia_ca_issuers_enabled: bool,
    /// A full CRL's nextUpdate, in hours after its thisUpdate.
    pub crl_validity_hours: i64,
    /// A new full CRL is made this many hours after the last.
    pub crl_refresh_hours: i64,
    /// Delta CRLs are published, and full CRLs point to them (Freshest CRL).
    pub delta_crl_enabled: bool,
    /// A delta CRL's nextUpdate, in hours after its thisUpdate.
    pub delta_crl_validity_hours: i64,
    /// `delegated` (a responder certificate) or `ca` (the CA's own key).
    pub ocsp_signer: String,
    /// An OCSP response's nextUpdate, in hours after its thisUpdate.
    pub ocsp_validity_hours: i64,
}

pub(crate) const SETTINGS_COLUMNS: &str = "cdp_enabled, ocsp_enabled, aia_ca_issuers_enabled, \
    crl_validity_hours, crl_refresh_hours, delta_crl_enabled, delta_crl_validity_hours, \
    ocsp_signer, ocsp_validity_hours, ocsp_responder_id, crl_dirty_since, crl_dirty_at";

impl RevocationSettings {
    pub(crate) fn read(row: &AnyRow) -> Result<Self, Error> {
        Ok(Self {
            cdp_enabled: row.try_get::<i64, _>("cdp_enabled")? != 0,
            ocsp_enabled: row.try_get::<i64, _>("ocsp_enabled")? != 0,
            aia_ca_issuers_enabled: row.try_get::<i64, _>("aia_ca_issuers_enabled")? != 0,
            crl_validity_hours: row.try_get("crl_validity_hours")?,
            crl_refresh_hours: row.try_get("crl_refresh_hours")?,
            delta_crl_enabled: row.try_get::<i64, _>("delta_crl_enabled")? != 0,
            delta_crl_validity_hours: row.try_get("delta_crl_validity_hours")?,
            ocsp_signer: row.try_get("ocsp_signer")?,
            ocsp_validity_hours: row.try_get("ocsp_validity_hours")?,
        })
    }
}

/// Revocation changes of a CA not yet in a CRL: the first and the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingChanges {
    /// The first change since the last CRL.
    pub since: OffsetDateTime,
    /// The latest change.
    pub latest: OffsetDateTime,
}

pub(crate) fn pending(row: &AnyRow) -> Result<Option<PendingChanges>, Error> {
    let since: Option<i64> = row.try_get("crl_dirty_since")?;
    let latest: Option<i64> = row.try_get("crl_dirty_at")?;
    Ok(since.zip(latest).map(|(since, latest)| PendingChanges {
        since: from_micros(since),
        latest: from_micros(latest),
    }))
}

/// A certificate's revocation as CRLs and OCSP report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial, lower-case hex.
    pub serial: String,
    /// `revoked`, or `valid` for a released hold (delta CRLs list those as removeFromCRL).
    pub status: CertificateStatus,
    /// When it was revoked; when it was released, for a released hold.
    pub revoked_at: OffsetDateTime,
    /// RFC 5280 reason name.
    pub reason: Option<String>,
    /// When the key is known or suspected to have been compromised.
    pub invalidity_date: Option<OffsetDateTime>,
}

fn revoked_entry(row: &AnyRow) -> Result<RevokedEntry, Error> {
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    let changed_at: Option<i64> = row.try_get("revocation_changed_at")?;
    Ok(RevokedEntry {
        serial: row.try_get("serial")?,
        status: CertificateStatus::read(row, "status")?,
        revoked_at: from_micros(revoked_at.or(changed_at).unwrap_or_default()),
        reason: row.try_get("revocation_reason")?,
        invalidity_date: row
            .try_get::<Option<i64>, _>("invalidity_date")?
            .map(from_micros),
    })
}

const ENTRY_COLUMNS: &str =
    "serial, status, revoked_at, revocation_changed_at, revocation_reason, invalidity_date";

/// A published CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlRow {
    /// The CA that signed it.
    pub ca_id: CaId,
    /// Its CRL number.
    pub number: i64,
    /// For a delta CRL, the number of the full CRL it updates.
    pub delta_of: Option<i64>,
    /// When it was issued.
    pub this_update: OffsetDateTime,
    /// When the next one is due at the latest.
    pub next_update: OffsetDateTime,
    /// How many certificates it lists.
    pub entries: i64,
    /// The CRL, DER; empty when a listing left it out.
    pub der: Vec<u8>,
}

fn crl(row: &AnyRow, with_der: bool) -> Result<CrlRow, Error> {
    Ok(CrlRow {
        ca_id: row.try_get("ca_id")?,
        number: row.try_get("number")?,
        delta_of: row.try_get("delta_of")?,
        this_update: from_micros(row.try_get("this_update")?),
        next_update: from_micros(row.try_get("next_update")?),
        entries: row.try_get("entries")?,
        der: if with_der {
            row.try_get("der")?
        } else {
            Vec::new()
        },
    })
}

const CRL_COLUMNS: &str = "ca_id, number, delta_of, this_update, next_update, entries";

impl Reader {
    /// The certificates of CA `ca_id` that a full CRL issued at `at` lists: revoked (held
    /// ones included) and not expired by then, as RFC 5280 §3.3 lets expired ones drop off.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn revoked_entries(
        &self,
        ca_id: CaId,
        at: OffsetDateTime,
    ) -> Result<Vec<RevokedEntry>, Error> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM certificates \
             WHERE ca_id = $1 AND status = 'revoked' AND not_after >= $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ca_id)
            .bind(to_micros(at))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(revoked_entry).collect()
    }

    /// The certificates of CA `ca_id` whose revocation state changed after `since`, revoked
    /// or released, for a delta CRL.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn revocation_changes(
        &self,
        ca_id: CaId,
        since: OffsetDateTime,
    ) -> Result<Vec<RevokedEntry>, Error> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM certificates \
             WHERE revocation_changed_at > $1 AND ca_id = $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_micros(since))
            .bind(ca_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(revoked_entry).collect()
    }

    /// The revocation state of the certificate CA `ca_id` issued with `serial` (lower-case
    /// hex), a CA certificate included, or `None` when it issued none with that serial.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn revocation_of(
        &self,
        ca_id: CaId,
        serial: &str,
    ) -> Result<Option<RevokedEntry>, Error> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM certificates \
             WHERE {} = {} AND serial = $1 AND ca_id = $2",
            self.backend().serial_tail("serial"),
            self.backend().serial_tail("$1"),
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(serial.to_owned())
            .bind(ca_id)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = row {
            return revoked_entry(&row).map(Some);
        }
        // A CA's own certificate, issued by its parent, lives in `cas`; CAs are not revoked.
        let ca = sqlx::query("SELECT serial FROM cas WHERE parent_id = $1 AND serial = $2")
            .bind(ca_id)
            .bind(serial.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        Ok(ca.map(|_| RevokedEntry {
            serial: serial.to_owned(),
            status: CertificateStatus::Valid,
            revoked_at: OffsetDateTime::UNIX_EPOCH,
            reason: None,
            invalidity_date: None,
        }))
    }

    /// CA id and revocation state of every certificate whose revocation state changed at or
    /// after `since`, with the time of the change, oldest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn revocations_since(
        &self,
        since: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<(CaId, RevokedEntry, OffsetDateTime)>, Error> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT ca_id, {ENTRY_COLUMNS} FROM certificates \
             WHERE revocation_changed_at >= $1 AND ca_id IS NOT NULL \
             ORDER BY revocation_changed_at LIMIT $2"
        )))
        .bind(to_micros(since))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("ca_id")?,
                    revoked_entry(r)?,
                    from_micros(r.try_get("revocation_changed_at")?),
                ))
            })
            .collect()
    }

    /// The latest CRL of CA `ca_id`: the latest delta with `delta`, the latest full one
    /// without.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn latest_crl(&self, ca_id: CaId, delta: bool) -> Result<Option<CrlRow>, Error> {
        self.latest_crl_row(ca_id, delta, true).await
    }

    /// [`Store::latest_crl`] without its DER, which runs to megabytes for a long list.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn latest_crl_info(&self, ca_id: CaId, delta: bool) -> Result<Option<CrlRow>, Error> {
        self.latest_crl_row(ca_id, delta, false).await
    }

    async fn latest_crl_row(
        &self,
        ca_id: CaId,
        delta: bool,
        with_der: bool,
    ) -> Result<Option<CrlRow>, Error> {
        let kind = if delta {
            "delta_of IS NOT NULL"
        } else {
            "delta_of IS NULL"
        };
        let der = if with_der { ", der" } else { "" };
        let sql = format!(
            "SELECT {CRL_COLUMNS}{der} FROM crls WHERE ca_id = $1 AND {kind} \
             ORDER BY number DESC LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ca_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| crl(r, with_der)).transpose()
    }

    /// CRL number `number` of CA `ca_id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn crl(&self, ca_id: CaId, number: i64) -> Result<Option<CrlRow>, Error> {
        Filter::new(
            "ca_id = ? AND number = ?",
            [Arg::Int(ca_id.0), Arg::Int(number)],
        )
        .fetch_row(self, &format!("{CRL_COLUMNS}, der"), "crls", |r| {
            crl(r, true)
        })
        .await
    }

    /// The newest `limit` CRLs of CA `ca_id`, full and delta, newest first, without their DER.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn crl_history(&self, ca_id: CaId, limit: i64) -> Result<Vec<CrlRow>, Error> {
        let sql = format!(
            "SELECT {CRL_COLUMNS} FROM crls WHERE ca_id = $1 ORDER BY number DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ca_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| crl(r, false)).collect()
    }

    /// The number the next CRL of CA `ca_id` takes.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn next_crl_number(&self, ca_id: CaId) -> Result<i64, Error> {
        let row =
            sqlx::query("SELECT COALESCE(MAX(number), 0) + 1 AS n FROM crls WHERE ca_id = $1")
                .bind(ca_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(row.try_get("n")?)
    }

    /// The pre-signed OCSP response of CA `ca_id` for `cert_id` (hex of the CertID's DER),
    /// which names `serial`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn ocsp_response(
        &self,
        ca_id: CaId,
        serial: &str,
        cert_id: &str,
    ) -> Result<Option<OcspResponseRow>, Error> {
        Filter::new(
            "ca_id = ? AND serial = ? AND cert_id = ?",
            [
                Arg::Int(ca_id.0),
                Arg::Text(serial.to_owned()),
                Arg::Text(cert_id.to_owned()),
            ],
        )
        .fetch_row(self, OCSP_COLUMNS, "ocsp_responses", ocsp_row)
        .await
    }

    /// Every pre-signed OCSP response of CA `ca_id` for `serial`, one per CertID form.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn ocsp_responses_for(
        &self,
        ca_id: CaId,
        serial: &str,
    ) -> Result<Vec<OcspResponseRow>, Error> {
        let sql =
            format!("SELECT {OCSP_COLUMNS} FROM ocsp_responses WHERE ca_id = $1 AND serial = $2");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ca_id)
            .bind(serial.to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ocsp_row).collect()
    }

    /// How many pre-signed OCSP responses CA `ca_id` has stored.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn count_ocsp_responses(&self, ca_id: CaId) -> Result<i64, Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM ocsp_responses WHERE ca_id = $1")
            .bind(ca_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Pre-signed OCSP responses due to be signed again by `before`, soonest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn ocsp_responses_due(
        &self,
        before: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<OcspResponseRow>, Error> {
        let sql = format!(
            "SELECT {OCSP_COLUMNS} FROM ocsp_responses \
             WHERE refresh_at < $1 ORDER BY refresh_at LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_micros(before))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ocsp_row).collect()
    }
}

impl Store {
    /// Takes or renews lease `name` for `holder` until `until`, unless another holder's lease
    /// runs past `now`. Returns whether `holder` holds it.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
               expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
        )
        .bind(name.to_owned())
        .bind(holder.to_owned())
        .bind(to_micros(until))
        .bind(to_micros(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores pre-signed OCSP responses, replacing older ones for the same CA and CertID. Not audited: a response only restates what the certificates table holds.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn put_ocsp_responses(&self, responses: &[OcspResponseRow]) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        for r in responses {
            sqlx::query(
                "INSERT INTO ocsp_responses \
                   (ca_id, serial, cert_id, status, signer, this_update, next_update, \
                    refresh_at, der) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (ca_id, serial, cert_id) DO UPDATE SET status = excluded.status, \
                   signer = excluded.signer, \
                   this_update = excluded.this_update, next_update = excluded.next_update, \
                   refresh_at = excluded.refresh_at, der = excluded.der",
            )
            .bind(r.ca_id)
            .bind(r.serial.clone())
            .bind(r.cert_id.clone())
            .bind(r.status.clone())
            .bind(r.signer.clone())
            .bind(to_micros(r.this_update))
            .bind(to_micros(r.next_update))
            .bind(to_micros(r.refresh_at))
            .bind(r.der.clone())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A pre-signed OCSP response as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspResponseRow {
    /// The CA the response speaks for.
    pub ca_id: CaId,
    /// The certificate's serial, lower-case hex.
    pub serial: String,
    /// The CertID it answers, hex of its DER.
    pub cert_id: String,
    /// good, unknown, or `revoked:{time}:{reason}`.
    pub status: String,
    /// What signed it: a digest of the responder's key, certificate and settings.
    pub signer: String,
    /// The response's thisUpdate.
    pub this_update: OffsetDateTime,
    /// The response's nextUpdate.
    pub next_update: OffsetDateTime,
    /// When it is to be signed again.
    pub refresh_at: OffsetDateTime,
    /// The OCSPResponse, DER.
    pub der: Vec<u8>,
}

const OCSP_COLUMNS: &str =
    "ca_id, serial, cert_id, status, signer, this_update, next_update, refresh_at, der";

fn ocsp_row(row: &AnyRow) -> Result<OcspResponseRow, Error> {
    Ok(OcspResponseRow {
        ca_id: row.try_get("ca_id")?,
        serial: row.try_get("serial")?,
        cert_id: row.try_get("cert_id")?,
        status: row.try_get("status")?,
        signer: row.try_get("signer")?,
        this_update: from_micros(row.try_get("this_update")?),
        next_update: from_micros(row.try_get("next_update")?),
        refresh_at: from_micros(row.try_get("refresh_at")?),
        der: row.try_get("der")?,
    })
}

impl WriteTx {
    /// Stores a CRL CA `crl.ca_id` has signed. The caller took its number from
    /// [`Store::next_crl_number`] outside this transaction, so two nodes may have picked the
    /// same one: the second gets [`Error::Conflict`] and should build again.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the CA already has a CRL with that number.
    pub async fn insert_crl(&mut self, crl: &CrlRow) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO crls (ca_id, number, delta_of, this_update, next_update, entries, der) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(crl.ca_id)
        .bind(crl.number)
        .bind(crl.delta_of)
        .bind(to_micros(crl.this_update))
        .bind(to_micros(crl.next_update))
        .bind(crl.entries)
        .bind(crl.der.clone())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Forgets CA `ca_id`'s pending revocation changes if the latest is still `latest`: a
    /// change made while its CRL was being built stays pending for the next one.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn clear_pending_changes(
        &mut self,
        ca_id: CaId,
        latest: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE cas SET crl_dirty_since = NULL, crl_dirty_at = NULL \
             WHERE id = $1 AND crl_dirty_at <= $2",
        )
        .bind(ca_id)
        .bind(to_micros(latest))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Sets CA `ca_id`'s revocation settings.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_revocation_settings(
        &mut self,
        ca_id: CaId,
        s: &RevocationSettings,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE cas SET cdp_enabled = $1, ocsp_enabled = $2, aia_ca_issuers_enabled = $3, \
             crl_validity_hours = $4, crl_refresh_hours = $5, delta_crl_enabled = $6, \
             delta_crl_validity_hours = $7, ocsp_signer = $8, ocsp_validity_hours = $9, \
             updated_at = $10 WHERE id = $11",
        )
        .bind(flag(s.cdp_enabled))
        .bind(flag(s.ocsp_enabled))
        .bind(flag(s.aia_ca_issuers_enabled))
        .bind(s.crl_validity_hours)
        .bind(s.crl_refresh_hours)
        .bind(flag(s.delta_crl_enabled))
        .bind(s.delta_crl_validity_hours)
        .bind(s.ocsp_signer.clone())
        .bind(s.ocsp_validity_hours)
        .bind(to_micros(now))
        .bind(ca_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Sets what CA `ca_id`'s certificates point to (CRL distribution point, OCSP responder,
    /// caIssuers), leaving its other revocation settings as they are.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_pointers(
        &mut self,
        ca_id: CaId,
        cdp_enabled: bool,
        ocsp_enabled: bool,
        aia_ca_issuers_enabled: bool,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE cas SET cdp_enabled = $1, ocsp_enabled = $2, aia_ca_issuers_enabled = $3 \
             WHERE id = $4",
        )
        .bind(flag(cdp_enabled))
        .bind(flag(ocsp_enabled))
        .bind(flag(aia_ca_issuers_enabled))
        .bind(ca_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Makes certificate `certificate_id` CA `ca_id`'s OCSP responder.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_ocsp_responder(
        &mut self,
        ca_id: CaId,
        certificate_id: CertificateId,
    ) -> Result<(), Error> {
        sqlx::query("UPDATE cas SET ocsp_responder_id = $1 WHERE id = $2")
            .bind(certificate_id)
            .bind(ca_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
