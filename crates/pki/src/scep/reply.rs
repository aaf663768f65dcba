//! Building a CertRep: the RA's signed answer to any request.

use super::attributes::{FAILURE, Outgoing, PENDING, SUCCESS};
use super::party::Certificate;
use super::{MessageType, Ra, Reply, ReplyTo, envelope, signed};
use crate::Error;

/// Builds and signs the CertRep (RFC 8894 §3.3.2) answering the request `to` describes: signed
/// by the RA with the request's digest (SHA-256 for a SHA-1 request), repeating its
/// transactionID, its senderNonce as recipientNonce, with a fresh senderNonce. A SUCCESS reply
/// carries the certificates (in the order given: clients take the first for theirs) or the CRL
/// in a certs-only SignedData encrypted to the requester's certificate with the request's
/// cipher; PENDING and FAILURE replies carry no
/// content, FAILURE a failInfo.
///
/// # Errors
/// [`Error::Invalid`] for a SUCCESS without certificates, a certificate or CRL that is not DER,
/// a requester certificate that is missing or whose key is not RSA, or a transactionID a
/// PrintableString cannot hold (never the case for one [`super::read_request`] read);
/// [`Error::Crypto`] when randomness, encryption or signing fails.
pub fn cert_rep(ra: &Ra, to: &ReplyTo, reply: &Reply<'_>) -> Result<Vec<u8>, Error> {
    let (status, fail_info, content) = match *reply {
        Reply::Success { certificates } => {
            if certificates.is_empty() {
                return Err(Error::Invalid(
                    "a SUCCESS reply carries at least the issued certificate".into(),
                ));
            }
            let inner = signed::certs_only(certificates, &[])?;
            (SUCCESS, None, Some(seal(&inner, to)?))
        }
        Reply::Crl(crl) => (
            SUCCESS,
            None,
            Some(seal(&signed::certs_only(&[], &[crl])?, to)?),
        ),
        Reply::Pending => (PENDING, None, None),
        Reply::Failure(fail_info) => (FAILURE, Some(fail_info), None),
    };
    let sender_nonce: [u8; 16] = crate::random::bytes()?;
    let attributes = Outgoing {
        message_type: MessageType::CertRep,
        transaction_id: &to.transaction_id,
        sender_nonce: &sender_nonce,
        recipient_nonce: Some(&to.sender_nonce),
        pki_status: Some(status),
        fail_info,
    };
    signed::sign(
        &ra.party,
        to.digest.for_signing(),
        &attributes,
        content.as_deref(),
    )
}

/// `inner` encrypted to the requester.
fn seal(inner: &[u8], to: &ReplyTo) -> Result<Vec<u8>, Error> {
    let recipient = Certificate::parse(&to.signer_cert)
        .map_err(|e| Error::Invalid(format!("the requester's certificate: {e}")))?;
    envelope::encrypt(inner, &recipient, to.cipher)
}
