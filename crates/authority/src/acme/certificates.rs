//! Finalization (RFC 8555 §7.4), certificate download (§7.4.2) and revocation (§7.6).

use std::sync::Arc;

use pki::csr::Csr;
use pki::jose::Jwk;
use pki::{DistinguishedName, NameAttribute, SubjectAltName};
use store::{AcmeAccountRow, AcmeProfileRow, CertificateRow, CertificateSource};

use super::identifiers::check_csr;
use super::orders::no_such_order;
use super::{AcmeError, Identifier, IssuedChain, Order, Problem, ProblemType, Status};
use crate::issue::{IssueRequest, KeySource};
use crate::{Authority, Error, Origin, Principal, RevocationReason};

/// Who asks for a revocation.
#[derive(Debug, Clone, Copy)]
pub enum RevokeBy<'a> {
    /// The account the certificate was issued to.
    Account(&'a AcmeAccountRow),
    /// Whoever holds the certificate's key (the JWS was signed with it).
    CertificateKey(&'a Jwk),
}

/// Reasons a subscriber may give (RFC 8555 §7.6 allows the server to refuse others): the
/// ones a CA or a hold would use are the operator's to give.
const SUBSCRIBER_REASONS: [RevocationReason; 6] = [
    RevocationReason::Unspecified,
    RevocationReason::KeyCompromise,
    RevocationReason::AffiliationChanged,
    RevocationReason::Superseded,
    RevocationReason::CessationOfOperation,
    RevocationReason::PrivilegeWithdrawn,
];

fn bad_csr(detail: impl Into<String>) -> Problem {
    Problem::new(ProblemType::BadCsr, detail)
}

/// What an order becomes when its issuance failed with `e`, the problem recorded in it, and
/// the problem the client is answered with. A failure that is not the order's (the database,
/// its disk or the key-work pool short) decides nothing about it: it is ready to finalize
/// again, and records no error.
fn after_failed_issuance(e: Error) -> (Status, Option<Problem>, AcmeError) {
    if e.is_transient() {
        return (Status::Ready, None, e.into());
    }
    let problem = match e {
        Error::Invalid(m) | Error::Malformed(m) => bad_csr(m),
        e @ Error::Lint(_) => bad_csr(e.to_string()),
        other => Problem::from(other),
    };
    (Status::Invalid, Some(problem.clone()), problem.into())
}

/// How long an order may stay `processing` before the recovery job takes it for one whose
/// node stopped: a finalization takes well under a second, and its client waits for it.
const STALLED_AFTER: time::Duration = time::Duration::seconds(30);
/// Orders the recovery job takes on at a time.
const STALLED_BATCH: i64 = 100;

/// The description of the certificate issued for order `refid`, by which a finalization
/// its node did not finish is found again.
fn order_description(refid: &str) -> String {
    format!("ACME order {refid}")
}

impl Authority {
    /// The recovery job's part for ACME: each order left `processing` by a node that stopped
    /// is finished — `valid`, with its certificate, when the certificate was stored before the
    /// node stopped, and otherwise `ready`, for its client to finalize again (as after any
    /// failure that is not the order's).
    pub(crate) async fn acme_recover_stalled(&self) -> Result<String, Error> {
        let now = self.now();
        let stalled = self
            .store
            .acme_orders_stalled(now - STALLED_AFTER, STALLED_BATCH)
            .await?;
        let (mut finished, mut reopened) = (0, 0);
        for row in stalled {
            let certificate_id = self
                .store
                .acme_certificate_described(&order_description(&row.refid), row.updated_at)
                .await?;
            let recover = move |order: &mut Order| {
                if order.status != Status::Processing {
                    return Ok(false);
                }
                order.status = if certificate_id.is_some() {
                    Status::Valid
                } else {
                    Status::Ready
                };
                order.certificate_id = certificate_id;
                Ok(true)
            };
            let (_, written) = self
                .acme_change_order(row.account_id, &row.refid, Box::new(recover))
                .await
                .map_err(|e| Error::Internal(format!("ACME order {}: {e}", row.refid)))?;
            match (written, certificate_id) {
                (true, Some(_)) => finished += 1,
                (true, None) => reopened += 1,
                (false, _) => {}
            }
        }
        Ok(format!(
            "{finished} stalled ACME orders finished with their certificate, {reopened} made ready again"
        ))
    }

    /// Finalizes order `refid` with `csr_der` (DER PKCS#10): checks the CSR names exactly the
    /// order's identifiers, then issues through [`Authority::issue`] under `profile`.
    ///
    /// # Errors
    /// `orderNotReady` unless the order is ready; `badCSR` for a CSR that does not parse,
    /// verify or match, or that the CA's key rules refuse (the order is then invalid); a 503
    /// `serverInternal` when the database, its disk or the CPU pool is short, with the order
    /// `ready` again for the client to retry.
    pub async fn acme_finalize(
        self: &Arc<Self>,
        profile: &AcmeProfileRow,
        account: &AcmeAccountRow,
        refid: &str,
        csr_der: &[u8],
        origin: &Origin,
    ) -> Result<Order, AcmeError> {
        // Whether the CSR is any good is said only once the order is known to be ready: an
        // order that is not says so, whatever the CSR.
        let csr = Csr::parse(csr_der).map_err(|e| bad_csr(e.to_string()));
        let checked = csr.clone();
        let start = move |order: &mut Order| {
            if order.status != Status::Ready {
                return Err(not_ready(order).into());
            }
            check_csr(&checked?, &order.identifiers)?;
            order.status = Status::Processing;
            Ok(true)
        };
        let (order, _) = self
            .acme_change_order(account.id, refid, Box::new(start))
            .await?;
        let csr = csr?;

        // Checked when the order was placed; here only the link is wanted.
        let renewed_from = match &order.replaces {
            Some(ari) => self.certificate_by_ari(ari).await.ok().map(|c| c.id),
            None => None,
        };
        let issued = self
            .issue(
                &Principal::acme(account.id, &account.refid, origin.clone()),
                IssueRequest {
                    ca_id: profile.ca_id,
                    subject: subject(&csr, &order.identifiers),
                    sans: order.identifiers.iter().map(san).collect(),
                    key: KeySource::Csr(Box::new(csr)),
                    template_id: profile.template_id,
                    validity_days: Some(profile.validity_days),
                    key_usage: None,
                    extended_key_usage: None,
                    description: Some(order_description(refid)),
                    source: CertificateSource::Acme,
                    renewed_from,
                },
            )
            .await;
        let (status, certificate_id, error, failed, issued) = match issued {
            Ok(issued) => (
                Status::Valid,
                Some(issued.certificate.id),
                None,
                None,
                Some(issued.certificate),
            ),
            Err(e) => {
                let (status, error, answer) = after_failed_issuance(e);
                (status, None, error, Some(answer), None)
            }
        };
        let finish = move |order: &mut Order| {
            order.status = status;
            order.certificate_id = certificate_id;
            order.error = error;
            Ok(true)
        };
        let (order, _) = self
            .acme_change_order(account.id, refid, Box::new(finish))
            .await?;
        if let Some(problem) = failed {
            return Err(problem);
        }
        // Clients download the certificate right after this answer.
        if let Some(issued) = issued
            && let Ok(chain) = self.chain_of(issued).await
        {
            self.acme.issued.put(refid, (account.id, chain));
        }
        Ok(order)
    }

    /// The certificate of valid order `refid`, with the chain above it.
    ///
    /// # Errors
    /// A 404 problem when the order has no certificate.
    pub async fn acme_certificate(
        &self,
        account: &AcmeAccountRow,
        refid: &str,
    ) -> Result<IssuedChain, AcmeError> {
        if let Some((owner, issued)) = self.acme.issued.get(refid)
            && owner == account.id
        {
            return Ok(issued);
        }
        let order = self.acme_order(account, refid).await?;
        let cert_id = order
            .certificate_id
            .filter(|_| order.status == Status::Valid)
            .ok_or_else(|| no_such_order(refid))?;
        let cert = self.certificate(cert_id).await?;
        Ok(self.chain_of(cert).await?)
    }

    /// `cert` with the chain above it.
    async fn chain_of(&self, cert: CertificateRow) -> crate::Result<IssuedChain> {
        let mut chain = vec![cert.cert.der];
        if let Some(ca_id) = cert.ca_id {
            chain.extend(self.ca_chain(ca_id).await?);
        }
        Ok(IssuedChain { chain })
    }

    /// Revokes the certificate `cert_der` (RFC 8555 §7.6) for the account it was issued to,
    /// or for whoever holds its key.
    ///
    /// # Errors
    /// `malformed` for something that is not a certificate; 404 for one this server did not
    /// issue; `unauthorized` for anyone else; `badRevocationReason`; `alreadyRevoked`.
    pub async fn acme_revoke(
        &self,
        profile: &AcmeProfileRow,
        by: RevokeBy<'_>,
        cert_der: &[u8],
        reason: Option<u8>,
        origin: &Origin,
    ) -> Result<(), AcmeError> {
        let reason = match reason {
            None => RevocationReason::Unspecified,
            Some(code) => RevocationReason::from_code(code)
                .filter(|r| SUBSCRIBER_REASONS.contains(r))
                .ok_or_else(|| {
                    Problem::new(
                        ProblemType::BadRevocationReason,
                        format!(
                            "reason {code} is not one a subscriber may give; use one of {}",
                            SUBSCRIBER_REASONS.map(|r| r.code().to_string()).join(", ")
                        ),
                    )
                })?,
        };
        let info = pki::inspect::Certificate::parse(cert_der)
            .map_err(|e| Problem::new(ProblemType::Malformed, e.to_string()))?;
        let row = self
            .store
            .certificates_with_serial(&info.serial)
            .await?
            .into_iter()
            .find(|r| r.cert.der == cert_der)
            .ok_or_else(|| Error::NotFound("this server did not issue that certificate".into()))?;
        let principal = match by {
            RevokeBy::Account(account) => {
                let order = self.store.acme_order_of_certificate(row.id).await?;
                if order.is_none_or(|o| o.account_id != account.id)
                    || account.profile_id != profile.id
                {
                    return Err(Problem::new(
                        ProblemType::Unauthorized,
                        "the certificate was not issued to this account",
                    )
                    .into());
                }
                Principal::acme(account.id, &account.refid, origin.clone())
            }
            RevokeBy::CertificateKey(jwk) => {
                if jwk.spki_der() != info.public_key_der {
                    return Err(Problem::new(
                        ProblemType::Unauthorized,
                        "the request is signed neither by the account nor by the certificate's key",
                    )
                    .into());
                }
                Principal::acme(0, &format!("key-of-{}", info.serial), origin.clone())
            }
        };
        match self
            .revoke(&principal, row.id, reason, Some("via ACME"), None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn not_ready(order: &Order) -> Problem {
    Problem::new(
        ProblemType::OrderNotReady,
        format!("the order is {}, not ready", order.status.as_str()),
    )
}

fn san(id: &Identifier) -> SubjectAltName {
    match id {
        Identifier::Dns(name) => SubjectAltName::Dns(name.clone()),
        Identifier::Ip(ip) => SubjectAltName::Ip(*ip),
    }
}

/// The subject: the CSR's common name when it has one (it names an identifier, checked),
/// otherwise the first DNS identifier short enough for one (RFC 5280's 64 characters).
fn subject(csr: &Csr, identifiers: &[Identifier]) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    let cn = csr
        .subject
        .get(NameAttribute::CommonName)
        .map(str::to_owned)
        .or_else(|| {
            identifiers.iter().find_map(|id| match id {
                Identifier::Dns(n) if n.len() <= 64 => Some(n.clone()),
                _ => None,
            })
        });
    if let Some(cn) = cn {
        // A common name the checks above let through is always a valid value.
        let _ = name.set(NameAttribute::CommonName, &cn);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_that_is_not_the_orders_leaves_it_ready() {
        for e in [
            Error::StorageFull,
            Error::Unavailable("the database is away".into()),
            Error::Busy("the pool is full".into()),
        ] {
            let (status, recorded, answer) = after_failed_issuance(e);
            assert_eq!(status, Status::Ready);
            assert!(recorded.is_none(), "{recorded:?}");
            assert!(
                matches!(&answer, AcmeError::Failed(e) if e.is_transient()),
                "{answer:?}"
            );
        }
        let (status, recorded, answer) =
            after_failed_issuance(Error::Invalid("RSA keys under 2048 bits".into()));
        assert_eq!(status, Status::Invalid);
        assert!(
            matches!(&answer, AcmeError::Problem(p) if p.kind == ProblemType::BadCsr),
            "{answer:?}"
        );
        assert_eq!(recorded.map(|p| p.kind), Some(ProblemType::BadCsr));
    }

    #[test]
    fn a_lint_refusal_fails_the_order_as_a_bad_csr_naming_the_rule() {
        let report = pki::lint::Report {
            findings: vec![pki::lint::Finding {
                rule: &pki::lint::TLS_SERVER_SAN,
                severity: pki::lint::Severity::Error,
                detail: "a serverAuth certificate without subjectAltName".into(),
            }],
        };
        let (status, recorded, answer) = after_failed_issuance(Error::Lint(report));
        assert_eq!(status, Status::Invalid);
        assert!(
            matches!(&answer, AcmeError::Problem(p)
                if p.kind == ProblemType::BadCsr && p.detail.contains("tls_server_san")),
            "{answer:?}"
        );
        assert_eq!(recorded.map(|p| p.kind), Some(ProblemType::BadCsr));
    }
}
