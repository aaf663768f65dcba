//! tls-alpn-01 (RFC 8737, RFC 8738 §6): a TLS handshake on the identifier negotiating
//! `acme-tls/1`, whose self-signed certificate names the identifier and carries the digest of
//! the key authorization.

use std::net::IpAddr;
use std::sync::Arc;

use pki::acme::{AlpnIdentifier, check_tls_alpn_certificate};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls13_signature_with_raw_key};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::time::Instant;

use super::{Failure, Validator, connect, normalise_name, within};
use crate::Error;
use crate::acme::{Identifier, ProblemType};

/// The ALPN protocol of tls-alpn-01 (RFC 8737 §6.2).
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

impl Validator {
    pub(super) async fn tls_alpn01(
        &self,
        identifier: &Identifier,
        key_authorization: &str,
        deadline: Instant,
    ) -> Result<(), Failure> {
        let (addresses, sni, expected) = match identifier {
            Identifier::Dns(name) => (
                self.addresses(name, deadline).await?,
                normalise_name(name),
                AlpnIdentifier::Dns(name),
            ),
            Identifier::Ip(ip) => (vec![*ip], reverse_dns_name(*ip), AlpnIdentifier::Ip(*ip)),
        };
        let server_name = ServerName::try_from(sni.clone()).map_err(|e| {
            Failure::new(
                ProblemType::Malformed,
                format!("{sni} cannot be sent as a TLS server name: {e}"),
            )
        })?;
        let port = self.config.tls_port;
        let target = format!("{identifier} (port {port})");
        let stream = connect(
            &self.config.address_policy,
            &addresses,
            port,
            &target,
            deadline,
        )
        .await?;
        let tls = within(deadline, self.tls.connect(server_name, stream), || {
            Failure::new(
                ProblemType::Tls,
                format!("timed out in the TLS handshake with {target} (SNI {sni})"),
            )
        })
        .await?
        .map_err(|e| {
            tracing::debug!(target, "tls-alpn-01 handshake failed: {e}");
            Failure::new(
                ProblemType::Tls,
                format!(
                    "the TLS handshake with {target} (SNI {sni}) failed: {}",
                    tls_failure(&e)
                ),
            )
        })?;
        let (_, session) = tls.get_ref();
        if session.alpn_protocol() != Some(ACME_TLS_ALPN) {
            let got = match session.alpn_protocol() {
                Some(_) => "another protocol",
                None => "no protocol",
            };
            return Err(Failure::new(
                ProblemType::Tls,
                format!(
                    "{target} (SNI {sni}) negotiated {got}; tls-alpn-01 needs ALPN \"acme-tls/1\""
                ),
            ));
        }
        let certificate = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or_else(|| {
                Failure::new(
                    ProblemType::Tls,
                    format!("{target} presented no certificate"),
                )
            })?;
        check_tls_alpn_certificate(certificate.as_ref(), expected, key_authorization).map_err(
            |reason| {
                // The reason quotes the certificate, which is not the client's to read back.
                tracing::debug!(target, "tls-alpn-01 certificate refused: {reason}");
                Failure::new(
                    ProblemType::IncorrectResponse,
                    format!(
                        "the certificate {target} presented for {sni} is not a valid tls-alpn-01 \
                         response: it must be parseable, name exactly the identifier and carry \
                         a critical acmeIdentifier extension with the SHA-256 digest of the key \
                         authorization"
                    ),
                )
            },
        )
    }
}

/// The class of a TLS failure, without what the peer sent (alert descriptions and
/// certificate errors are protocol constants, so they are named).
fn tls_failure(error: &std::io::Error) -> String {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::AlertReceived(alert)) => format!("the server sent the alert {alert:?}"),
        Some(rustls::Error::InvalidCertificate(problem)) => {
            format!(
                "the certificate was refused ({})",
                certificate_problem(problem)
            )
        }
        Some(rustls::Error::NoApplicationProtocol) => {
            "the server does not offer the protocol acme-tls/1".to_owned()
        }
        Some(_) => "the server broke the TLS protocol".to_owned(),
        None => format!("the connection failed ({})", error.kind()),
    }
}

/// A certificate error's name; those with context carry names from the certificate, and
/// `Other` parser text, so only the plain ones the verifier here raises are named.
fn certificate_problem(problem: &CertificateError) -> &'static str {
    match problem {
        CertificateError::BadSignature => "BadSignature",
        CertificateError::BadEncoding => "BadEncoding",
        _ => "unusable",
    }
}

/// The tls-alpn-01 client configuration: ALPN `acme-tls/1` only, over
/// [`accept_any_chain`].
pub(super) fn tls_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    accept_any_chain(vec![ACME_TLS_ALPN.to_vec()])
}

/// A client configuration for connections that look at the server's certificate instead of
/// trusting it: TLS 1.2 and 1.3, the ALPN protocols `alpn`, no session resumption, and
/// [`DangerousAcceptAnyChain`] in place of certificate path validation. Whatever it connects
/// to is not authenticated; only what the certificate says may be used, after checking it.
///
/// # Errors
/// [`Error::Internal`] when rustls cannot build it.
pub(crate) fn accept_any_chain(alpn: Vec<Vec<u8>>) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(DangerousAcceptAnyChain {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Internal(format!("cannot build a TLS client configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Accepts any certificate chain — the tls-alpn-01 certificate is self-signed by design, and its
/// content is checked afterwards by [`check_tls_alpn_certificate`]; the SSL check tool reports
/// on the chain rather than trusting it — but still verifies the handshake signatures, so the
/// peer must hold the private key of the certificate it presents.
///
/// Security: only where nothing is sent to the server and its certificate is checked or merely
/// reported afterwards (tls-alpn-01, the SSL check). Used anywhere else this would accept any
/// server.
#[derive(Debug)]
struct DangerousAcceptAnyChain {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for DangerousAcceptAnyChain {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // As rustls' `verify_tls12_signature`, which tries every algorithm the scheme maps to,
        // but with the key taken from the certificate by x509-parser (see `spki`).
        let candidates = self
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algorithms)| *algorithms)
            .ok_or(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
        let spki = spki(cert)?;
        let key = webpki::RawPublicKeyEntity::try_from(&spki)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if candidates.iter().any(|algorithm| {
            key.verify_signature(*algorithm, message, dss.signature())
                .is_ok()
        }) {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::BadSignature,
            ))
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature_with_raw_key(message, &spki(cert)?, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The public key of a tls-alpn-01 certificate. rustls' own helpers parse the certificate with
/// webpki, which refuses the critical acmeIdentifier extension every such certificate carries.
fn spki(cert: &CertificateDer<'_>) -> Result<SubjectPublicKeyInfoDer<'static>, rustls::Error> {
    pki::acme::subject_public_key_info(cert.as_ref())
        .map(|spki| SubjectPublicKeyInfoDer::from(spki.to_vec()))
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))
}

/// The reverse-mapping name of `ip`, sent as SNI for an IP identifier (RFC 8738 §6), e.g.
/// `1.2.0.192.in-addr.arpa`, or nibble by nibble under `ip6.arpa`.
fn reverse_dns_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, c, d] = ip.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(ip) => {
            let mut name = String::with_capacity(72);
            for byte in ip.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Mutex;

    use rcgen::{CertificateParams, CustomExtension, KeyPair, SanType};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use sha2::{Digest, Sha256};

    use crate::acme::ChallengeType;
    use crate::acme::validation::test_support::{
        KEY_AUTHORIZATION, LOCALHOST, Outcome, TOKEN, answer_challenge, assert_problem,
        assert_tells_nothing_read, bind_loopback, config, dns, http_server, public_only, validator,
    };

    // ---- tls-alpn-01 ----

    struct TlsResponder {
        port: u16,
        /// The SNI of each handshake.
        server_names: Arc<Mutex<Vec<Option<String>>>>,
    }

    /// A TLS server presenting a certificate for `san` whose acmeIdentifier holds the digest
    /// of `key_authorization`, offering `alpn` and the given TLS versions.
    async fn tls_responder(
        san: SanType,
        key_authorization: &str,
        alpn: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> TlsResponder {
        tls_responder_signing(san, key_authorization, alpn, versions, false).await
    }

    /// As [`tls_responder`]; with `foreign_key`, the handshake is signed with a key other than
    /// the certificate's.
    async fn tls_responder_signing(
        san: SanType,
        key_authorization: &str,
        alpn: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
        foreign_key: bool,
    ) -> TlsResponder {
        let key = KeyPair::generate().expect("test key");
        let handshake_key = if foreign_key {
            KeyPair::generate().expect("test key")
        } else {
            KeyPair::try_from(key.serialize_der()).expect("test key")
        };
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![san];
        params.custom_extensions = vec![CustomExtension::new_acme_identifier(&Sha256::digest(
            key_authorization.as_bytes(),
        ))];
        let cert = params.self_signed(&key).expect("test certificate");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        // Not `with_single_cert`: it parses the certificate with webpki, which refuses the
        // critical acmeIdentifier extension.
        let signing_key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                handshake_key.serialize_der(),
            )))
            .expect("test signing key");
        let server_names = Arc::new(Mutex::new(Vec::new()));
        let resolver = RecordingResolver {
            key: Arc::new(rustls::sign::CertifiedKey::new(
                vec![cert.der().clone()],
                signing_key,
            )),
            server_names: server_names.clone(),
        };
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("test versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let (listener, port) = bind_loopback().await;
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = acceptor.accept(stream).await;
                });
            }
        });
        TlsResponder { port, server_names }
    }

    /// Presents one certificate and records the SNI of each ClientHello (before the client
    /// can finish its handshake, so tests need not wait for the server).
    #[derive(Debug)]
    struct RecordingResolver {
        key: Arc<rustls::sign::CertifiedKey>,
        server_names: Arc<Mutex<Vec<Option<String>>>>,
    }

    impl rustls::server::ResolvesServerCert for RecordingResolver {
        fn resolve(
            &self,
            hello: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            let sni = hello.server_name().map(str::to_owned);
            self.server_names.lock().ok()?.push(sni);
            Some(self.key.clone())
        }
    }

    fn tls13() -> Vec<&'static rustls::SupportedProtocolVersion> {
        vec![&rustls::version::TLS13]
    }

    async fn tls_alpn01(responder: &TlsResponder, identifier: &Identifier) -> Outcome {
        validator(config(1, responder.port))
            .validate(
                ChallengeType::TlsAlpn01,
                identifier,
                TOKEN,
                KEY_AUTHORIZATION,
            )
            .await
    }

    fn example_test_san() -> SanType {
        SanType::DnsName("example.test".try_into().expect("test name"))
    }

    #[tokio::test]
    async fn tls_alpn01_passes_with_the_right_certificate() {
        for versions in [tls13(), vec![&rustls::version::TLS12]] {
            let responder = tls_responder(
                example_test_san(),
                KEY_AUTHORIZATION,
                &[ACME_TLS_ALPN],
                &versions,
            )
            .await;
            assert_eq!(tls_alpn01(&responder, &dns("example.test")).await, Ok(()));
            assert_eq!(
                *responder.server_names.lock().expect("test lock"),
                vec![Some("example.test".to_owned())]
            );
        }
    }

    #[tokio::test]
    async fn tls_alpn01_passes_for_an_ip_identifier_with_the_reverse_name_as_sni() {
        let responder = tls_responder(
            SanType::IpAddress(LOCALHOST),
            KEY_AUTHORIZATION,
            &[ACME_TLS_ALPN],
            &tls13(),
        )
        .await;
        assert_eq!(
            tls_alpn01(&responder, &Identifier::Ip(LOCALHOST)).await,
            Ok(())
        );
        assert_eq!(
            *responder.server_names.lock().expect("test lock"),
            vec![Some("1.0.0.127.in-addr.arpa".to_owned())]
        );
    }

    #[tokio::test]
    async fn tls_alpn01_refuses_a_wrong_digest_or_name() {
        let identifier = dns("example.test");
        let responder = tls_responder(
            example_test_san(),
            "other.authorization",
            &[ACME_TLS_ALPN],
            &tls13(),
        )
        .await;
        assert_problem(
            &tls_alpn01(&responder, &identifier).await,
            ProblemType::IncorrectResponse,
            "SHA-256",
            &identifier,
        );
        let wrong_name = SanType::DnsName("other.test".try_into().expect("test name"));
        let responder =
            tls_responder(wrong_name, KEY_AUTHORIZATION, &[ACME_TLS_ALPN], &tls13()).await;
        let outcome = tls_alpn01(&responder, &identifier).await;
        assert_problem(
            &outcome,
            ProblemType::IncorrectResponse,
            "not a valid tls-alpn-01 response",
            &identifier,
        );
        // What the certificate holds is not read back, nor where it came from.
        assert_tells_nothing_read(&outcome, &["other.test", "127.0.0.1"]);
    }

    #[tokio::test]
    async fn tls_alpn01_does_not_connect_to_loopback_by_default() {
        let responder = tls_responder(
            example_test_san(),
            KEY_AUTHORIZATION,
            &[ACME_TLS_ALPN],
            &tls13(),
        )
        .await;
        let identifier = dns("example.test");
        let outcome = validator(public_only(config(1, responder.port)))
            .validate(
                ChallengeType::TlsAlpn01,
                &identifier,
                TOKEN,
                KEY_AUTHORIZATION,
            )
            .await;
        assert_problem(
            &outcome,
            ProblemType::Connection,
            "does not connect to",
            &identifier,
        );
        assert_tells_nothing_read(&outcome, &["127.0.0.1"]);
        assert!(responder.server_names.lock().expect("test lock").is_empty());
    }

    #[tokio::test]
    async fn tls_alpn01_needs_the_acme_alpn() {
        let identifier = dns("example.test");
        // No ALPN at all: the handshake succeeds without a protocol.
        let responder = tls_responder(example_test_san(), KEY_AUTHORIZATION, &[], &tls13()).await;
        assert_problem(
            &tls_alpn01(&responder, &identifier).await,
            ProblemType::Tls,
            "negotiated no protocol",
            &identifier,
        );
        // Only other protocols: the server refuses the handshake.
        let responder =
            tls_responder(example_test_san(), KEY_AUTHORIZATION, &[b"h2"], &tls13()).await;
        assert_problem(
            &tls_alpn01(&responder, &identifier).await,
            ProblemType::Tls,
            "handshake",
            &identifier,
        );
    }

    /// The chain is not checked, but the handshake signature is: a responder that shows the
    /// right certificate without holding its key fails.
    #[tokio::test]
    async fn tls_alpn01_checks_the_handshake_signature() {
        let identifier = dns("example.test");
        for versions in [tls13(), vec![&rustls::version::TLS12]] {
            let responder = tls_responder_signing(
                example_test_san(),
                KEY_AUTHORIZATION,
                &[ACME_TLS_ALPN],
                &versions,
                true,
            )
            .await;
            assert_problem(
                &tls_alpn01(&responder, &identifier).await,
                ProblemType::Tls,
                "BadSignature",
                &identifier,
            );
        }
    }

    #[tokio::test]
    async fn tls_alpn01_reports_a_plain_tcp_server_as_tls() {
        let (listener, port) = bind_loopback().await;
        http_server(listener, answer_challenge);
        let identifier = dns("example.test");
        let outcome = validator(config(1, port))
            .validate(
                ChallengeType::TlsAlpn01,
                &identifier,
                TOKEN,
                KEY_AUTHORIZATION,
            )
            .await;
        assert_problem(&outcome, ProblemType::Tls, "handshake", &identifier);
    }

    #[test]
    fn reverse_names_follow_rfc_8738() {
        assert_eq!(
            reverse_dns_name("192.0.2.1".parse().expect("test address")),
            "1.2.0.192.in-addr.arpa"
        );
        // The example of RFC 8738 §6.
        assert_eq!(
            reverse_dns_name("2001:db8::1".parse().expect("test address")),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
