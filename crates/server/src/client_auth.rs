//! TLS client certificates on the HTTPS listener: asked for, never required, and not judged at
//! the TLS layer. The handshake only proves that the client holds the key of the certificate
//! it presents; which certificates a door accepts (EST: issued by the endpoint's CA, valid,
//! not revoked) is decided by the door through the authority, with the chain the connection
//! carries in [`crate::listen::Conn::client_chain`].
//!
//! Accepting any chain here is deliberate and safe only because of that: nothing trusts a
//! connection for having presented a certificate. Hence the name of the verifier.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

/// The chain a client presented, its own certificate first, DER.
pub type ClientChain = Arc<Vec<CertificateDer<'static>>>;

/// Asks every client for a certificate, accepts a handshake without one, and takes any chain
/// whose handshake signature verifies; see the module documentation.
#[derive(Debug)]
pub struct DangerousAnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl DangerousAnyClientCertificate {
    /// A verifier checking handshake signatures with `provider`'s algorithms.
    pub fn new(provider: &CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for DangerousAnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
