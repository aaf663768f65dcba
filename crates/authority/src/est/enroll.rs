//! The EST operations: the CA certificates, the CSR attributes, and enrollment (simple,
//! re-enrollment, server-side key generation), each through [`Authority::issue`].

use pki::csr::Csr;
use pki::est::{CsrAttr, csr_attrs};
use store::{CaRow, CertificateSource};

use super::auth::{Client, EstCaller};
use super::{Endpoint, REFUSED};
use crate::audit::Event;
use crate::{Authority, Error, IssueRequest, Issued, KeySource, Principal, Result};

/// What an enrollment asks for (RFC 7030 §4.2, §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstOperation {
    /// `simpleenroll`: a certificate for the CSR's key.
    Enroll,
    /// `simplereenroll`: a new certificate for the client certificate presented, with the same
    /// subject and SANs.
    Reenroll,
    /// `serverkeygen`: a certificate for a key certmint generates and hands over.
    ServerKeyGen,
}

impl EstOperation {
    /// The operation's name in its URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enroll => "simpleenroll",
            Self::Reenroll => "simplereenroll",
            Self::ServerKeyGen => "serverkeygen",
        }
    }
}

/// Whether `error` is the client's doing, to be audited as a refusal (and not a fault of ours
/// or a full pool, which the logs and metrics tell).
fn refusal(error: &Error) -> bool {
    matches!(
        error,
        Error::Invalid(_)
            | Error::Malformed(_)
            | Error::BadCsr(_)
            | Error::RejectedIdentifier(_)
            | Error::Lint(_)
            | Error::Forbidden(_)
            | Error::Conflict(_)
    )
}

impl Authority {
    /// The CA certificates of endpoint `label` (`None`: the default): its CA's chain up to the
    /// root, as a certs-only PKCS#7, DER.
    ///
    /// # Errors
    /// [`Error::NotFound`] when EST is off or there is no such label; [`Error::Invalid`] when
    /// its CA is gone; store errors.
    pub async fn est_ca_certs(&self, label: Option<&str>) -> Result<Vec<u8>> {
        let endpoint = self.est_endpoint(label).await?;
        let ca = self.issuing_ca(endpoint.settings.ca_id).await?;
        let chain = self.ca_chain(ca.id).await?;
        let certs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
        pki::bundle::pkcs7_certs_only(&certs)
            .map_err(|e| Error::Internal(format!("CA '{}' chain: {e}", ca.name)))
    }

    /// What endpoint `label`'s template asks CSRs to carry, as a DER `CsrAttrs`
    /// (RFC 7030 §4.5.2): the key types it allows, and the subjectAltName extension when it
    /// requires one. `None` when it asks for nothing.
    ///
    /// # Errors
    /// [`Error::NotFound`] when EST is off or there is no such label; [`Error::Invalid`] when
    /// its template is gone; store errors.
    pub async fn est_csr_attrs(&self, label: Option<&str>) -> Result<Option<Vec<u8>>> {
        let endpoint = self.est_endpoint(label).await?;
        let rules = self.rules(endpoint.settings.template_id).await?;
        let mut attrs = rules
            .allowed_key_types()
            .iter()
            .map(|k| CsrAttr::key_type(*k))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Internal(e.to_string()))?;
        if rules.requires_san() {
            attrs.push(CsrAttr::subject_alt_name());
        }
        if attrs.is_empty() {
            return Ok(None);
        }
        csr_attrs(&attrs)
            .map(Some)
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// Enrolls at endpoint `label` (`None`: the default): authenticates `caller`, reads the
    /// CSR (its signature is the proof of possession) and issues. A re-enrollment needs the
    /// client certificate it renews, one certmint issued, and a CSR with exactly its subject
    /// and SANs; the new certificate records which it renewed. With server-side key
    /// generation, the key is certmint's (the template's default type) and comes back in
    /// [`Issued::key`].
    ///
    /// # Errors
    /// [`Error::NotFound`] when EST is off or there is no such label;
    /// [`Error::Unauthorized`] without credentials, or with wrong ones; [`Error::Forbidden`]
    /// for a client certificate that does not pass, or a re-enrollment without one;
    /// [`Error::BadCsr`] for a CSR that does not parse or verify; [`Error::Invalid`] for one
    /// the template refuses or that a re-enrollment changes; [`Error::Busy`] when the password
    /// checks or key generation are full; store errors. Refusals after authentication and
    /// wrong passwords are audited.
    pub async fn est_enroll(
        &self,
        label: Option<&str>,
        caller: &EstCaller,
        operation: EstOperation,
        csr_der: &[u8],
    ) -> Result<Issued> {
        let endpoint = self.est_endpoint(label).await?;
        let ca = self.issuing_ca(endpoint.settings.ca_id).await?;
        let client = self
            .est_authenticate(&endpoint, &ca, caller, operation)
            .await?;
        let principal = Principal::enrollment("est", &endpoint.name, caller.origin.clone());
        let issued = self
            .est_issue(&endpoint, &principal, &client, operation, csr_der)
            .await;
        if let Err(e) = &issued
            && refusal(e)
        {
            let mut tx = self.store.begin_write().await?;
            tx.audit(
                &self.entry_by(
                    &principal,
                    Event::new(
                        REFUSED,
                        "est",
                        &endpoint.name,
                        format!("{} by {} refused: {e}", operation.as_str(), client.who()),
                    )
                    .failed(),
                ),
            )
            .await?;
            tx.commit().await?;
        }
        issued
    }

    async fn est_authenticate(
        &self,
        endpoint: &Endpoint,
        ca: &CaRow,
        caller: &EstCaller,
        operation: EstOperation,
    ) -> Result<Client> {
        let certificate = match &caller.client_certificate {
            Some(der) => Some(
                self.check_client_certificate(der, std::slice::from_ref(ca))
                    .await,
            ),
            None => None,
        };
        if operation == EstOperation::Reenroll {
            let certificate = certificate.ok_or_else(|| {
                Error::Forbidden(
                    "re-enrollment needs the certificate it renews as the TLS client certificate"
                        .into(),
                )
            })??;
            if certificate.row.is_none() {
                return Err(Error::Forbidden(
                    "the client certificate is not one certmint issued, so it cannot be renewed"
                        .into(),
                ));
            }
            return Ok(Client::Certificate(Box::new(certificate)));
        }
        match (certificate, &caller.basic) {
            (Some(Ok(certificate)), _) => Ok(Client::Certificate(Box::new(certificate))),
            (_, Some((username, password))) => {
                self.est_password(endpoint, username, password, &caller.origin)
                    .await?;
                Ok(Client::Password {
                    username: username.clone(),
                })
            }
            (Some(Err(e)), None) => Err(e),
            (None, None) => Err(Error::Unauthorized(
                "EST needs HTTP Basic credentials or a TLS client certificate".into(),
            )),
        }
    }

    async fn est_issue(
        &self,
        endpoint: &Endpoint,
        principal: &Principal,
        client: &Client,
        operation: EstOperation,
        csr_der: &[u8],
    ) -> Result<Issued> {
        let csr = Csr::parse(csr_der).map_err(|e| Error::BadCsr(e.to_string()))?;
        let renewed = match client {
            Client::Certificate(c) if operation == EstOperation::Reenroll => {
                if csr.subject != c.info.subject_name {
                    return Err(Error::Invalid(format!(
                        "a re-enrollment keeps the subject: the CSR asks for '{}', the \
                         certificate has '{}'",
                        csr.subject_text, c.info.subject
                    )));
                }
                let mut asked: Vec<String> = csr.sans.iter().map(|s| s.to_api_string()).collect();
                let mut held = c.info.sans.clone();
                asked.sort();
                held.sort();
                if asked != held {
                    return Err(Error::Invalid(format!(
                        "a re-enrollment keeps the subject alternative names: the CSR asks for \
                         [{}], the certificate has [{}]",
                        asked.join(", "),
                        held.join(", ")
                    )));
                }
                c.row.as_ref().map(|r| r.id)
            }
            _ => None,
        };
        let description = format!("EST {} by {}", operation.as_str(), client.who());
        let subject = csr.subject.clone();
        let sans = csr.sans.clone();
        let key = match operation {
            EstOperation::ServerKeyGen => KeySource::Generate(None),
            EstOperation::Enroll | EstOperation::Reenroll => KeySource::Csr(Box::new(csr)),
        };
        self.issue(
            principal,
            IssueRequest {
                ca_id: endpoint.settings.ca_id,
                subject,
                sans,
                key,
                template_id: endpoint.settings.template_id,
                validity_days: None,
                key_usage: None,
                extended_key_usage: None,
                description: Some(description),
                source: CertificateSource::Est,
                renewed_from: renewed,
            },
        )
        .await
    }
}
