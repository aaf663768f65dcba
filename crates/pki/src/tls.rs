//! The HTTPS listener's own certificate, made at first start before any CA exists.

use std::net::IpAddr;

use time::{Duration, OffsetDateTime};

use crate::lint::Policy;
use crate::name::check_dns_name;
use crate::{
    CertSpec, DistinguishedName, Error, ExtendedKeyUsage, Issuer, KeyType, KeyUsage, NameAttribute,
    PrivateKey, SubjectAltName,
};

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
/// from an hour before `now` for `days` days, with the given 16-byte serial. It goes through
/// the same prepare, lint and sign steps as every certificate a CA issues.
///
/// # Errors
/// [`Error::Invalid`] for no names or a name that is neither a DNS name nor an IP address;
/// [`Error::Lint`] if the linter refuses it; [`Error::Crypto`] when key generation or signing
/// fails.
pub fn self_signed_tls(
    names: &[String],
    now: OffsetDateTime,
    days: i64,
    serial: [u8; 16],
) -> Result<TlsIdentity, Error> {
    let first = names
        .first()
        .ok_or_else(|| Error::Invalid("the TLS certificate needs at least one name".into()))?;
    let sans = names
        .iter()
        .map(|name| match name.parse::<IpAddr>() {
            Ok(ip) => Ok(SubjectAltName::Ip(ip)),
            Err(_) => check_dns_name(name, true).map(SubjectAltName::Dns),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Invalid(format!("bad TLS certificate name: {e}")))?;
    let mut subject = DistinguishedName::new();
    subject.set(NameAttribute::CommonName, first)?;
    subject.set(NameAttribute::Organization, "certmint")?;
    let key = PrivateKey::generate(KeyType::EcP256)?;
    let mut serial = serial;
    serial[0] &= 0x7f;
    let spec = CertSpec {
        sans,
        key_usage: vec![KeyUsage::DigitalSignature],
        extended_key_usage: vec![ExtendedKeyUsage::ServerAuth],
        ..CertSpec::new(
            subject,
            key.public_key_der(),
            serial,
            now - Duration::hours(1),
            now + Duration::days(days),
        )
    };
    let built = crate::cert::build(&spec, Issuer::SelfSigned(&key), &Policy::default())?;
    Ok(TlsIdentity {
        cert_pem: crate::pem::encode("CERTIFICATE", &built.der),
        key_pkcs8_der: key.pkcs8_der().to_vec(),
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
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
        let blocks = crate::pem::find_blocks(id.cert_pem.as_bytes())?;
        let cert = crate::inspect::Certificate::parse(&blocks[0].der)?;
        assert_eq!(cert.sans, ["dns:localhost", "ip:127.0.0.1"]);
        assert!(cert.self_signed);
        assert_eq!(
            PrivateKey::from_pkcs8_der(&id.key_pkcs8_der)?.public_key_der(),
            cert.public_key_der
        );
        assert!(self_signed_tls(&[], OffsetDateTime::now_utc(), 1, [1; 16]).is_err());
        let bad = self_signed_tls(&["bad name".into()], OffsetDateTime::now_utc(), 1, [1; 16]);
        assert!(matches!(bad, Err(Error::Invalid(_))));
        Ok(())
    }
}
