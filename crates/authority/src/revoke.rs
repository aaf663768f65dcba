//! Revocation: the one entry point that takes a certificate out of service (RFC 5280 §5.3.1
//! reasons), puts it on hold, or releases a hold.

use store::{CertificateId, CertificateRow, CertificateStatus, NewEvent, Revocation};
use time::OffsetDateTime;

use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};

/// An RFC 5280 CRLReason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// 0
    Unspecified,
    /// 1
    KeyCompromise,
    /// 2
    CaCompromise,
    /// 3
    AffiliationChanged,
    /// 4
    Superseded,
    /// 5
    CessationOfOperation,
    /// 6: temporary; can be released.
    CertificateHold,
    /// 8: releases a hold.
    RemoveFromCrl,
    /// 9
    PrivilegeWithdrawn,
    /// 10
    AaCompromise,
}

impl RevocationReason {
    /// Every reason, in code order.
    pub const ALL: [RevocationReason; 10] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::RemoveFromCrl,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// The name stored and shown: RFC 5280's CRLReason name as the UCM reference spells it
    /// (`caCompromise`, not the ASN.1 module's `cACompromise`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "caCompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::RemoveFromCrl => "removeFromCRL",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aaCompromise",
        }
    }

    /// The CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::RemoveFromCrl => 8,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// How a stored reason is shown: in [`as_str`](Self::as_str)'s spelling, also for rows
    /// written before that spelling changed (`cACompromise`); text that names no reason is
    /// shown as it is.
    pub fn shown(stored: &str) -> String {
        Self::parse(stored).map_or_else(|_| stored.to_owned(), |r| r.as_str().to_owned())
    }

    /// The reason with RFC 5280 code `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Reads a reason in camelCase (`keyCompromise`), snake_case (`key_compromise`) or any
    /// case (`cACompromise`, as RFC 5280's ASN.1 module spells it).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the accepted reasons.
    pub fn parse(text: &str) -> Result<Self> {
        let key = text.replace(['_', '-', ' '], "").to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().to_ascii_lowercase() == key)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown revocation reason '{text}'; expected one of {}",
                    Self::ALL.map(Self::as_str).join(", ")
                ))
            })
    }
}

impl Authority {
    /// Revokes certificate `id`, or with [`RevocationReason::RemoveFromCrl`] releases it from
    /// hold. A held certificate may be revoked again for a permanent reason; a permanently
    /// revoked one stays revoked. `invalidity_date` is when the key is known or suspected to
    /// have been compromised, if the revoker knows. The CA's CRL is rebuilt shortly after, and
    /// OCSP answers change within a second.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `delete:certificates`; [`Error::NotFound`];
    /// [`Error::AlreadyRevoked`] when the certificate is already revoked for good, or already
    /// on hold when a hold is asked for; [`Error::Conflict`] when it is not on hold when a
    /// release is asked for, or changed meanwhile; [`Error::Invalid`] for an invalidity date in the future or
    /// given with a release.
    pub async fn revoke(
        &self,
        principal: &Principal,
        id: CertificateId,
        reason: RevocationReason,
        comment: Option<&str>,
        invalidity_date: Option<OffsetDateTime>,
    ) -> Result<CertificateRow> {
        if !principal.can(Permission::DeleteCertificates) {
            return Err(Error::Forbidden(
                "revoking certificates needs delete:certificates".into(),
            ));
        }
        self.revoke_for(principal, id, reason, comment, invalidity_date)
            .await
    }

    /// [`Self::revoke`] for a principal whose right to revoke this one certificate its door has
    /// already decided (a user's own login certificate).
    pub(crate) async fn revoke_for(
        &self,
        principal: &Principal,
        id: CertificateId,
        reason: RevocationReason,
        comment: Option<&str>,
        invalidity_date: Option<OffsetDateTime>,
    ) -> Result<CertificateRow> {
        let now = self.now();
        if invalidity_date.is_some_and(|d| d > now) {
            return Err(Error::Invalid(
                "the invalidity date cannot be in the future".into(),
            ));
        }
        if invalidity_date.is_some() && reason == RevocationReason::RemoveFromCrl {
            return Err(Error::Invalid(
                "a release from hold takes no invalidity date".into(),
            ));
        }
        let cert = self.certificate(id).await?;
        let held =
            cert.revocation_reason.as_deref() == Some(RevocationReason::CertificateHold.as_str());
        let revoked = cert.status == CertificateStatus::Revoked;
        let (change, action) = match reason {
            RevocationReason::RemoveFromCrl if held => (None, "certificate_released"),
            RevocationReason::RemoveFromCrl => {
                return Err(Error::Conflict(format!(
                    "certificate {id} is not on hold, so there is nothing to release"
                )));
            }
            _ if revoked && !held => {
                return Err(Error::AlreadyRevoked(format!(
                    "certificate {id} is already revoked ({})",
                    cert.revocation_reason.as_deref().unwrap_or("unspecified")
                )));
            }
            RevocationReason::CertificateHold if held => {
                return Err(Error::AlreadyRevoked(format!(
                    "certificate {id} is already on hold"
                )));
            }
            _ => {
                // A hold made permanent keeps the time it was first taken out of service.
                let at = if held {
                    cert.revoked_at.unwrap_or(now)
                } else {
                    now
                };
                (
                    Some(Revocation {
                        at,
                        reason: reason.as_str(),
                        comment,
                        invalidity_date,
                    }),
                    "certificate_revoked",
                )
            }
        };
        let mut tx = self.store.begin_write().await?;
        let read = (cert.status, cert.revocation_reason.as_deref());
        if !tx.set_revocation(id, read, change.as_ref(), now).await? {
            drop(tx);
            return Err(match self.store.certificate(id).await? {
                Some(_) => Error::Conflict(format!(
                    "certificate {id} changed while this request was handled; read it again \
                     and retry"
                )),
                None => Error::NotFound(format!("certificate {id} not found")),
            });
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                action,
                "certificate",
                id,
                format!(
                    "'{}' serial {}, reason {}{}",
                    cert.cert.subject,
                    cert.cert.serial,
                    reason.as_str(),
                    comment.map(|c| format!(": {c}")).unwrap_or_default()
                ),
            ),
        ))
        .await?;
        tx.queue_event(
            &NewEvent {
                event_type: action.into(),
                resource_type: "certificate".into(),
                resource_id: id.to_string(),
                payload: serde_json::json!({
                    "serial": cert.cert.serial,
                    "ca_id": cert.ca_id,
                    "reason": reason.as_str(),
                }),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        self.revocation_changed(&cert.cert.serial);
        self.certificate(id).await
    }
}
