//! The HTTPS listener's own certificate, made at first start before any CA exists.

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::Error;

/// A certificate and its private key.
pub struct TlsIdentity {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 DER.
    pub key_pkcs8_der: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// A self-signed ECDSA P-256 server certificate for `names` (DNS names or IP addresses), valid
/// from an hour before `now` for `days` days, with the given 16-byte serial.
///
/// # Errors
/// [`Error::Invalid`] for no names or a name that is neither a DNS name nor an IP address;
/// [`Error::Crypto`] when key generation or signing fails.
pub fn self_signed_tls(
    names: &[String],
    now: OffsetDateTime,
    days: i64,
    serial: [u8; 16],
) -> Result<TlsIdentity, Error> {
    let first = names
        .first()
        .ok_or_else(|| Error::Invalid("the TLS certificate needs at least one name".into()))?;
    let mut params = CertificateParams::new(names.to_vec())
        .map_err(|e| Error::Invalid(format!("bad TLS certificate name: {e}")))?;
    params
        .distinguished_name
        .push(DnType::CommonName, first.clone());
    params
        .distinguished_name
        .push(DnType::OrganizationName, "certmint");
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    let mut serial = serial;
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    Ok(TlsIdentity {
        cert_pem: cert.pem(),
        key_pkcs8_der: key.serialize_der(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_certificate_for_dns_and_ip_names() -> Result<(), Error> {
        let id = self_signed_tls(
            &["localhost".into(), "127.0.0.1".into()],
            OffsetDateTime::now_utc(),
            365,
            [0xff; 16],
        )?;
        assert!(id.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!id.key_pkcs8_der.is_empty());
        assert!(self_signed_tls(&[], OffsetDateTime::now_utc(), 1, [1; 16]).is_err());
        Ok(())
    }
}
