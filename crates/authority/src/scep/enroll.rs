//! The SCEP operations a client performs: GetCACert, and PKIOperation with its messages
//! (PKCSReq, RenewalReq, CertPoll, GetCert, GetCRL), each answered with a CertRep.

use pki::cert::{ExtendedKeyUsage, KeyUsage};
use pki::csr::Csr;
use pki::inspect;
use pki::scep::{FailInfo, MessageType, Reply, ReplyTo, RequestContent, ScepError};
use store::{
    CertificateId, CertificateSource, CertificateStatus, NewScepRequest, ScepProfileRow,
    ScepRequestStatus,
};

use super::admin::{MAX_CHALLENGE, ONE_TIME, static_purpose};
use crate::audit::Event;
use crate::issue::{IssueRequest, KeySource};
use crate::{Authority, Error, Origin, Principal, Result};

/// What GetCACert answers: the CA's certificate, the RA's, and the CAs above the CA, as a
/// degenerate PKCS#7.
#[derive(Debug, Clone)]
pub struct CaCerts {
    /// certs-only PKCS#7, DER: the CA, the RA, then the CA's issuers up to its root (clients
    /// such as certmonger verify the RA's signatures up to a root).
    pub pkcs7: Vec<u8>,
}

/// A CertRep, DER, ready to send.
#[derive(Debug, Clone)]
pub struct ScepAnswer {
    /// The CertRep message.
    pub cert_rep: Vec<u8>,
}

/// What a CertRep says, owning what it carries.
enum Outcome {
    Issued(Vec<u8>),
    Crl(Vec<u8>),
    Pending,
    Failure(FailInfo),
}

impl Outcome {
    fn cert_rep(&self, ra: &pki::scep::Ra, to: &ReplyTo) -> Result<Vec<u8>, pki::Error> {
        match self {
            Self::Issued(der) => pki::scep::cert_rep(
                ra,
                to,
                &Reply::Success {
                    certificates: &[der.as_slice()],
                },
            ),
            Self::Crl(der) => pki::scep::cert_rep(ra, to, &Reply::Crl(der)),
            Self::Pending => pki::scep::cert_rep(ra, to, &Reply::Pending),
            Self::Failure(info) => pki::scep::cert_rep(ra, to, &Reply::Failure(*info)),
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

/// One PKCSReq or RenewalReq, as the pipeline below sees it.
struct Enrollment<'a> {
    profile: &'a ScepProfileRow,
    message_type: MessageType,
    reply_to: &'a ReplyTo,
    csr: Csr,
    key_digest: String,
    origin: &'a Origin,
}

impl Enrollment<'_> {
    fn record(&self, status: ScepRequestStatus) -> NewScepRequest {
        NewScepRequest {
            profile_id: self.profile.id,
            transaction_id: self.reply_to.transaction_id.clone(),
            message_type: match self.message_type {
                MessageType::RenewalReq => "RenewalReq",
                _ => "PKCSReq",
            }
            .into(),
            status,
            subject: self.csr.subject_text.clone(),
            public_key_sha256: self.key_digest.clone(),
            csr: None,
            renewed_from: None,
            certificate_id: None,
            reason: None,
            origin_ip: self.origin.ip.clone(),
        }
    }
}

impl Authority {
    /// The profile at `/scep/{name}` (`None`: the default one at `/scep`), if SCEP and the
    /// profile serve.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such profile, or one (or SCEP) disabled.
    pub async fn scep_profile(&self, name: Option<&str>) -> Result<ScepProfileRow> {
        let profile = match name {
            Some(name) => self.store.scep_profile_named(name).await?,
            None => self.store.default_scep_profile().await?,
        };
        let unknown = || {
            Error::NotFound(match name {
                Some(name) => format!("there is no SCEP profile '{name}' serving here"),
                None => "SCEP does not serve here".into(),
            })
        };
        let profile = profile.filter(|p| p.enabled).ok_or_else(unknown)?;
        if !self.store.scep_enabled().await? {
            return Err(unknown());
        }
        Ok(profile)
    }

    /// GetCACert: profile `name`'s CA certificate and RA certificate.
    ///
    /// # Errors
    /// As [`Authority::scep_profile`]; [`Error::Invalid`] when its CA cannot issue.
    pub async fn scep_ca_certs(&self, name: Option<&str>) -> Result<CaCerts> {
        let profile = self.scep_profile(name).await?;
        let ra = self.scep_ra(&profile).await?;
        let ca = self.usable_issuer(profile.ca_id).await?;
        let chain = self.ca_chain(ca.id).await?;
        let mut certificates: Vec<&[u8]> = vec![&ca.cert.der, ra.certificate()];
        certificates.extend(chain.iter().skip(1).map(Vec::as_slice));
        let pkcs7 = pki::bundle::pkcs7_certs_only(&certificates)?;
        Ok(CaCerts { pkcs7 })
    }

    /// PKIOperation: reads `message` (a pkiMessage, DER) sent to profile `name` and answers
    /// with a CertRep: SUCCESS with the certificate or CRL, PENDING while a request waits for
    /// approval, or FAILURE with the reason's failInfo. Refusals are answered in the protocol
    /// and recorded; wrong challenges are audited.
    ///
    /// # Errors
    /// As [`Authority::scep_profile`]; [`Error::Malformed`] for a message too damaged to
    /// answer in the protocol; [`Error::Busy`], [`Error::Unavailable`] and
    /// [`Error::StorageFull`] when the request could not be decided (nothing was issued).
    pub async fn scep_operation(
        &self,
        name: Option<&str>,
        message: Vec<u8>,
        origin: Origin,
    ) -> Result<ScepAnswer> {
        let profile = self.scep_profile(name).await?;
        let ra = self.scep_ra(&profile).await?;
        let reader = ra.clone();
        let request = self
            .scep
            .cpu
            .run(move || Ok(pki::scep::read_request(&message, &reader)))
            .await?;
        let (reply_to, outcome) = match request {
            Err(ScepError::Malformed(m)) => {
                return Err(Error::Malformed(format!("not a usable SCEP message: {m}")));
            }
            Err(ScepError::Refused {
                reply_to,
                fail_info,
                reason,
            }) => {
                tracing::info!(profile = %profile.name, %reason, "SCEP message refused");
                (*reply_to, Outcome::Failure(fail_info))
            }
            Ok(request) => {
                let outcome = self
                    .scep_answer(
                        &profile,
                        request.message_type,
                        &request.reply_to,
                        request.content,
                        &origin,
                    )
                    .await?;
                (request.reply_to, outcome)
            }
        };
        let cert_rep = self
            .scep
            .cpu
            .run(move || Ok(outcome.cert_rep(&ra, &reply_to)?))
            .await?;
        Ok(ScepAnswer { cert_rep })
    }

    async fn scep_answer(
        &self,
        profile: &ScepProfileRow,
        message_type: MessageType,
        reply_to: &ReplyTo,
        content: RequestContent,
        origin: &Origin,
    ) -> Result<Outcome> {
        match (message_type, content) {
            (MessageType::PkcsReq | MessageType::RenewalReq, RequestContent::Csr(der)) => {
                let csr = match Csr::from_der(&der) {
                    Ok(csr) => csr,
                    Err(e) => {
                        tracing::info!(profile = %profile.name, error = %e, "SCEP CSR refused");
                        return Ok(Outcome::Failure(FailInfo::BadRequest));
                    }
                };
                let enrollment = Enrollment {
                    profile,
                    message_type,
                    reply_to,
                    key_digest: sha256_hex(&csr.public_key_der),
                    csr,
                    origin,
                };
                self.scep_enroll(enrollment).await
            }
            (MessageType::CertPoll, RequestContent::IssuerAndSubject { .. }) => {
                self.scep_poll(profile, reply_to).await
            }
            (MessageType::GetCert, RequestContent::IssuerAndSerial { issuer, serial }) => {
                self.scep_get_cert(profile, &issuer, &serial).await
            }
            (MessageType::GetCrl, RequestContent::IssuerAndSerial { issuer, .. }) => {
                self.scep_get_crl(profile, &issuer).await
            }
            _ => Ok(Outcome::Failure(FailInfo::BadRequest)),
        }
    }

    /// The public key of the certificate a message was signed with, SHA-256 hex, or `None`
    /// when it cannot be read.
    fn signer_key_digest(reply_to: &ReplyTo) -> Option<String> {
        inspect::Certificate::parse(&reply_to.signer_cert)
            .ok()
            .map(|c| sha256_hex(&c.public_key_der))
    }

    async fn scep_enroll(&self, enrollment: Enrollment<'_>) -> Result<Outcome> {
        let Enrollment {
            profile,
            message_type,
            reply_to,
            ..
        } = enrollment;
        // A client that was told to wait sends the same request again: the answer is what
        // became of it, and its challenge is not asked for twice.
        if let Some(previous) = self
            .store
            .scep_transaction(profile.id, &reply_to.transaction_id, &enrollment.key_digest)
            .await?
        {
            match (previous.status, previous.certificate_id) {
                (ScepRequestStatus::Pending, _) | (ScepRequestStatus::Issued, None) => {
                    return Ok(Outcome::Pending);
                }
                (ScepRequestStatus::Issued, Some(id)) => {
                    return Ok(Outcome::Issued(self.certificate(id).await?.cert.der));
                }
                (ScepRequestStatus::Rejected, _) => {
                    return Ok(Outcome::Failure(FailInfo::BadRequest));
                }
                (ScepRequestStatus::Failed, _) => {}
            }
        }
        let renews = if message_type == MessageType::RenewalReq {
            match self
                .scep_renewed(profile, reply_to, &enrollment.csr)
                .await?
            {
                Ok(id) => Some(id),
                Err((info, reason)) => return self.scep_refuse(&enrollment, info, reason).await,
            }
        } else {
            if Self::signer_key_digest(reply_to).as_deref() != Some(&enrollment.key_digest) {
                return self
                    .scep_refuse(
                        &enrollment,
                        FailInfo::BadMessageCheck,
                        "the request was not signed with the key of its CSR".into(),
                    )
                    .await;
            }
            if let Err(reason) = self.scep_check_challenge(profile, &enrollment.csr).await? {
                let refused = self
                    .scep_refuse(&enrollment, FailInfo::BadRequest, reason.clone())
                    .await;
                let mut tx = self.store.begin_write().await?;
                tx.audit(&self.entry(
                    Some(&format!("scep:{}", profile.name)),
                    enrollment.origin,
                    Event::new(
                        "scep_challenge_refused",
                        "scep_profile",
                        profile.id,
                        format!("'{}': {reason}", enrollment.csr.subject_text),
                    ),
                ))
                .await?;
                tx.commit().await?;
                return refused;
            }
            None
        };
        let principal = Principal::enrollment("scep", &profile.name, enrollment.origin.clone());
        if !profile.auto_approve {
            let mut held = enrollment.record(ScepRequestStatus::Pending);
            held.csr = Some(enrollment.csr.der.clone());
            held.renewed_from = renews;
            self.hold_scep_request(&principal, held, &profile.name)
                .await?;
            return Ok(Outcome::Pending);
        }
        match self
            .issue_for_scep(&principal, profile, &enrollment.csr, renews)
            .await
        {
            Ok(id) => {
                let certificate = self.certificate(id).await?;
                let mut issued = enrollment.record(ScepRequestStatus::Issued);
                issued.certificate_id = Some(id);
                issued.renewed_from = renews;
                self.log_scep_request(issued).await?;
                Ok(Outcome::Issued(certificate.cert.der))
            }
            Err(e) if e.is_transient() || matches!(e, Error::Internal(_)) => Err(e),
            Err(e) => {
                self.scep_refuse(&enrollment, FailInfo::BadRequest, e.to_string())
                    .await
            }
        }
    }

    /// Answers FAILURE with `info`, and records why.
    async fn scep_refuse(
        &self,
        enrollment: &Enrollment<'_>,
        info: FailInfo,
        reason: String,
    ) -> Result<Outcome> {
        tracing::info!(profile = %enrollment.profile.name, %reason, "SCEP request refused");
        let mut failed = enrollment.record(ScepRequestStatus::Failed);
        failed.reason = Some(reason);
        self.log_scep_request(failed).await?;
        Ok(Outcome::Failure(info))
    }

    /// Checks a PKCSReq's challenge password: the profile's static one, or a one-time
    /// challenge of its CA, used up here. `Ok(Err(reason))` when it is missing or wrong.
    async fn scep_check_challenge(
        &self,
        profile: &ScepProfileRow,
        csr: &Csr,
    ) -> Result<Result<(), String>> {
        let Some(challenge) = csr
            .challenge_password
            .as_ref()
            .map(|c| c.0.as_str())
            .filter(|c| !c.is_empty() && c.len() <= MAX_CHALLENGE)
        else {
            return Ok(Err("the CSR carries no usable challenge password".into()));
        };
        if let Some(digest) = &profile.challenge_digest
            && crate::token::constant_time_eq(
                digest,
                &self
                    .vault
                    .challenge_digest(&static_purpose(&profile.name), challenge),
            )
        {
            return Ok(Ok(()));
        }
        let ca = self.usable_issuer(profile.ca_id).await?;
        let mut tx = self.store.begin_write().await?;
        let used = tx
            .use_scep_challenge(
                ca.id,
                &self.vault.challenge_digest(ONE_TIME, challenge),
                self.now(),
            )
            .await?;
        tx.commit().await?;
        Ok(if used {
            Ok(())
        } else {
            Err("the challenge password is wrong, used or expired".into())
        })
    }

    /// Checks a RenewalReq: signed with a certificate this profile's CA issued, still valid
    /// and not revoked, for the same subject as the CSR. Returns that certificate's id, or the
    /// failInfo and reason to refuse with.
    async fn scep_renewed(
        &self,
        profile: &ScepProfileRow,
        reply_to: &ReplyTo,
        csr: &Csr,
    ) -> Result<Result<CertificateId, (FailInfo, String)>> {
        let Ok(signer) = inspect::Certificate::parse(&reply_to.signer_cert) else {
            return Ok(Err((
                FailInfo::BadCertId,
                "the renewal is not signed with a readable certificate".into(),
            )));
        };
        let ca = self.usable_issuer(profile.ca_id).await?;
        let fingerprint = sha256_hex(&reply_to.signer_cert);
        let known = self
            .store
            .certificates_with_serial(&signer.serial)
            .await?
            .into_iter()
            .find(|c| c.ca_id == Some(ca.id) && c.cert.fingerprint_sha256 == fingerprint);
        let Some(old) = known else {
            return Ok(Err((
                FailInfo::BadCertId,
                format!(
                    "the renewal is signed with a certificate CA '{}' did not issue here",
                    ca.name
                ),
            )));
        };
        let now = self.now();
        if old.status != CertificateStatus::Valid || old.cert.not_after <= now {
            return Ok(Err((
                FailInfo::BadCertId,
                format!("certificate {} is revoked or expired", old.id),
            )));
        }
        if signer.subject_name != csr.subject {
            return Ok(Err((
                FailInfo::BadRequest,
                format!(
                    "a renewal keeps its subject: the CSR asks for '{}', certificate {} is for '{}'",
                    csr.subject_text, old.id, signer.subject
                ),
            )));
        }
        Ok(Ok(old.id))
    }

    /// Issues a SCEP request's certificate through the pipeline: from the profile's CA and
    /// template; without a template, a client certificate.
    pub(super) async fn issue_for_scep(
        &self,
        principal: &Principal,
        profile: &ScepProfileRow,
        csr: &Csr,
        renews: Option<CertificateId>,
    ) -> Result<CertificateId> {
        let (key_usage, extended_key_usage) = match profile.template_id {
            Some(_) => (None, None),
            None => (
                Some(vec![KeyUsage::DigitalSignature]),
                Some(vec![ExtendedKeyUsage::ClientAuth]),
            ),
        };
        let issued = self
            .issue(
                principal,
                IssueRequest {
                    ca_id: profile.ca_id,
                    subject: csr.subject.clone(),
                    sans: csr.sans.clone(),
                    key: KeySource::Csr(Box::new(csr.clone())),
                    template_id: profile.template_id,
                    validity_days: None,
                    key_usage,
                    extended_key_usage,
                    description: None,
                    source: CertificateSource::Scep,
                    renewed_from: renews,
                },
            )
            .await?;
        Ok(issued.certificate.id)
    }

    /// CertPoll: what became of the request this transaction made with this key.
    async fn scep_poll(&self, profile: &ScepProfileRow, reply_to: &ReplyTo) -> Result<Outcome> {
        let Some(key_digest) = Self::signer_key_digest(reply_to) else {
            return Ok(Outcome::Failure(FailInfo::BadCertId));
        };
        let previous = self
            .store
            .scep_transaction(profile.id, &reply_to.transaction_id, &key_digest)
            .await?;
        Ok(match previous.map(|p| (p.status, p.certificate_id)) {
            None => Outcome::Failure(FailInfo::BadCertId),
            Some((ScepRequestStatus::Pending, _) | (ScepRequestStatus::Issued, None)) => {
                Outcome::Pending
            }
            Some((ScepRequestStatus::Issued, Some(id))) => {
                Outcome::Issued(self.certificate(id).await?.cert.der)
            }
            Some((ScepRequestStatus::Rejected | ScepRequestStatus::Failed, _)) => {
                Outcome::Failure(FailInfo::BadRequest)
            }
        })
    }

    /// GetCert: a certificate this profile's CA issued, by issuer and serial.
    async fn scep_get_cert(
        &self,
        profile: &ScepProfileRow,
        issuer: &[u8],
        serial: &[u8],
    ) -> Result<Outcome> {
        let ca = self.usable_issuer(profile.ca_id).await?;
        if !names_ca(&ca.cert.der, issuer) {
            return Ok(Outcome::Failure(FailInfo::BadCertId));
        }
        let found = self
            .store
            .certificates_with_serial(&hex::encode(serial))
            .await?
            .into_iter()
            .find(|c| c.ca_id == Some(ca.id));
        Ok(match found {
            Some(c) => Outcome::Issued(c.cert.der),
            None => Outcome::Failure(FailInfo::BadCertId),
        })
    }

    /// GetCRL: the latest full CRL of this profile's CA.
    async fn scep_get_crl(&self, profile: &ScepProfileRow, issuer: &[u8]) -> Result<Outcome> {
        let ca = self.usable_issuer(profile.ca_id).await?;
        if !names_ca(&ca.cert.der, issuer) {
            return Ok(Outcome::Failure(FailInfo::BadCertId));
        }
        Ok(match self.store.latest_crl(ca.id, false).await? {
            Some(crl) => Outcome::Crl(crl.der),
            None => Outcome::Failure(FailInfo::BadRequest),
        })
    }
}

/// Whether `issuer` (a DER Name) is the subject of CA certificate `ca_der`.
fn names_ca(ca_der: &[u8], issuer: &[u8]) -> bool {
    inspect::Certificate::parse(ca_der).is_ok_and(|ca| ca.subject_raw == issuer)
}
