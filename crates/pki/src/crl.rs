//! Certificate revocation lists (RFC 5280 §5): full and delta CRLs, version 2, signed by the
//! CA whose certificates they list.
//!
//! Entries are encoded one at a time into the list's DER, never held as a tree of ASN.1
//! values, so a list of a million entries costs about its own size in memory.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS, ID_CE_DELTA_CRL_INDICATOR,
    ID_CE_FRESHEST_CRL, ID_CE_INVALIDITY_DATE,
};
use const_oid::db::rfc5912::{ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, SHA_256_WITH_RSA_ENCRYPTION};
use const_oid::db::rfc8410::ID_ED_25519;
use der::asn1::{BitString, GeneralizedTime, Ia5String, OctetString, Uint, UtcTime};
use der::{Encode, Header, Length, Tag, TagNumber};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::Version;
use x509_cert::crl::RevokedCert;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use crate::cert::{CaSigner, KeyUsage};
use crate::lint::Policy;
use crate::{Error, KeyType};

/// A revoked certificate as a CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The certificate's serial number: the content octets of its DER INTEGER, as
    /// [`crate::inspect::Certificate::serial`] gives them in hex.
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// The RFC 5280 §5.3.1 CRLReason code; for none or `unspecified` (0) the entry carries
    /// no reason, as RFC 5280 asks.
    pub reason: Option<u8>,
    /// When the key is known or suspected to have been compromised (RFC 5280 §5.3.2).
    pub invalidity_date: Option<OffsetDateTime>,
}

/// What a CRL says besides its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlSpec {
    /// The CRL number: increases with every CRL of the CA, full and delta alike.
    pub number: u64,
    /// When this CRL was issued.
    pub this_update: OffsetDateTime,
    /// When the next one will be, at the latest.
    pub next_update: OffsetDateTime,
    /// For a delta CRL, the number of the full CRL it updates (Delta CRL Indicator).
    pub delta_of: Option<u64>,
    /// Where delta CRLs are published (Freshest CRL); for full CRLs only.
    pub freshest_crl_urls: Vec<String>,
}

/// Builds the CRL `spec` describes, listing `revoked`, lints it under `policy` and signs it on
/// behalf of `ca`.
///
/// The issuer name is the CA certificate's subject, byte for byte; the Authority Key
/// Identifier is the one the CA puts on the certificates it issues.
///
/// # Errors
/// [`Error::Invalid`] when the CA may not sign CRLs, the update times are out of order, a delta
/// CRL is not newer than its base or carries Freshest CRL, a reason code is not one RFC 5280
/// defines, or a serial is empty or longer than 20 octets; [`Error::Lint`] when the linter
/// finds an error in the TBS (nothing is signed); [`Error::Crypto`] when signing fails.
pub fn build<'a>(
    spec: &CrlSpec,
    revoked: impl IntoIterator<Item = &'a Revoked>,
    ca: &CaSigner,
    policy: &Policy,
) -> Result<Vec<u8>, Error> {
    let info = ca.info();
    if !info.key_usage.is_empty() && !info.key_usage.contains(&KeyUsage::CrlSign) {
        return Err(Error::Invalid(
            "the CA's key usage does not allow signing CRLs".into(),
        ));
    }
    if spec.next_update <= spec.this_update {
        return Err(Error::Invalid(
            "a CRL's nextUpdate must come after its thisUpdate".into(),
        ));
    }
    if let Some(base) = spec.delta_of {
        if base >= spec.number {
            return Err(Error::Invalid(format!(
                "delta CRL {} cannot update full CRL {base}: its number must be higher",
                spec.number
            )));
        }
        if !spec.freshest_crl_urls.is_empty() {
            return Err(Error::Invalid(
                "a delta CRL must not point to a fresher one".into(),
            ));
        }
    }

    let algorithm = signature_algorithm(ca.signer().key_type())?;
    // One buffer holds the whole CRL, so a long list is never copied into a second one: the
    // headers of the TBS and of the outer SEQUENCE, known only at the end, go into room left
    // at the front, and the list's own header is put in before its entries.
    let mut buf = vec![0; HEADROOM];
    Version::V2.encode_to_vec(&mut buf).map_err(encoding)?;
    algorithm.encode_to_vec(&mut buf).map_err(encoding)?;
    buf.extend_from_slice(&info.subject_raw);
    time(spec.this_update)?
        .encode_to_vec(&mut buf)
        .map_err(encoding)?;
    time(spec.next_update)?
        .encode_to_vec(&mut buf)
        .map_err(encoding)?;

    let entries_start = buf.len();
    let mut revoked = revoked.into_iter();
    if let Some(first) = revoked.next() {
        let first = entry_der(first)?.to_der().map_err(encoding)?;
        let expected = revoked.size_hint().0.saturating_add(1);
        buf.reserve(expected.saturating_mul(first.len() + 4) + 1024);
        buf.extend_from_slice(&first);
        for entry in revoked {
            entry_der(entry)?
                .encode_to_vec(&mut buf)
                .map_err(encoding)?;
        }
        let header = header(Tag::Sequence, buf.len() - entries_start)?;
        buf.splice(entries_start..entries_start, header);
    }
    // RFC 5280 §5.1.2.6: with no revoked certificates the list is absent, not empty.

    let mut extensions = Vec::new();
    for extension in crl_extensions(spec, ca)? {
        extension.encode_to_vec(&mut extensions).map_err(encoding)?;
    }
    let mut sequence = header(Tag::Sequence, extensions.len())?;
    sequence.extend_from_slice(&extensions);
    let explicit = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N0,
    };
    buf.extend_from_slice(&header(explicit, sequence.len())?);
    buf.extend_from_slice(&sequence);

    let tbs_start = prepend_header(&mut buf, HEADROOM)?;
    crate::lint::crl(&buf[tbs_start..], ca.signer().key_type(), policy).into_result()?;
    let signature = ca.signer().sign(&buf[tbs_start..])?;
    algorithm.encode_to_vec(&mut buf).map_err(encoding)?;
    BitString::from_bytes(&signature)
        .map_err(encoding)?
        .encode_to_vec(&mut buf)
        .map_err(encoding)?;
    let start = prepend_header(&mut buf, tbs_start)?;
    buf.drain(..start);
    Ok(buf)
}

/// Room for two SEQUENCE headers: a tag and at most five length octets each.
const HEADROOM: usize = 12;

/// Writes the SEQUENCE header of `buf[from..]` into the room just before `from`; returns
/// where the header starts.
fn prepend_header(buf: &mut [u8], from: usize) -> Result<usize, Error> {
    let header = header(Tag::Sequence, buf.len() - from)?;
    let start = from
        .checked_sub(header.len())
        .ok_or_else(|| Error::Invalid("the CRL is too large to encode".into()))?;
    buf[start..from].copy_from_slice(&header);
    Ok(start)
}

/// The DER header of a TLV with `tag` and `len` content octets.
fn header(tag: Tag, len: usize) -> Result<Vec<u8>, Error> {
    let length = Length::try_from(len).map_err(encoding)?;
    Header::new(tag, length)
        .map_err(encoding)?
        .to_der()
        .map_err(encoding)
}

/// The AlgorithmIdentifier of the signatures `key_type` makes, parameters included where
/// RFC 4055 requires them (NULL for RSA) and absent where RFC 5758 and RFC 8410 forbid them.
pub(crate) fn signature_algorithm(key_type: KeyType) -> Result<AlgorithmIdentifierOwned, Error> {
    let (oid, null) = match key_type {
        KeyType::Rsa { .. } => (SHA_256_WITH_RSA_ENCRYPTION, true),
        KeyType::EcP256 => (ECDSA_WITH_SHA_256, false),
        KeyType::EcP384 => (ECDSA_WITH_SHA_384, false),
        KeyType::Ed25519 => (ID_ED_25519, false),
    };
    Ok(AlgorithmIdentifierOwned {
        oid,
        parameters: if null {
            Some(der::asn1::Any::from(der::asn1::Null))
        } else {
            None
        },
    })
}

fn entry_der(entry: &Revoked) -> Result<RevokedCert, Error> {
    if entry.serial.is_empty() {
        return Err(Error::Invalid("a revoked entry needs a serial".into()));
    }
    let serial_number = SerialNumber::new(&entry.serial).map_err(|_| {
        Error::Invalid(format!(
            "serial {} is longer than the 20 octets RFC 5280 allows",
            hex::encode(&entry.serial)
        ))
    })?;
    let mut extensions = Vec::new();
    // RFC 5280 §5.3.1: the extension is left out rather than saying unspecified (0).
    if let Some(code) = entry.reason.filter(|code| *code != 0) {
        extensions.push(extension(ID_CE_CRL_REASONS, false, &reason(code)?)?);
    }
    if let Some(at) = entry.invalidity_date {
        // RFC 5280 §5.3.2: always GeneralizedTime.
        extensions.push(extension(
            ID_CE_INVALIDITY_DATE,
            false,
            &GeneralizedTime::from_unix_duration(unix(at)?).map_err(encoding)?,
        )?);
    }
    Ok(RevokedCert {
        serial_number,
        revocation_date: time(entry.revoked_at)?,
        crl_entry_extensions: (!extensions.is_empty()).then_some(extensions),
    })
}

pub(crate) fn reason(code: u8) -> Result<CrlReason, Error> {
    Ok(match code {
        1 => CrlReason::KeyCompromise,
        2 => CrlReason::CaCompromise,
        3 => CrlReason::AffiliationChanged,
        4 => CrlReason::Superseded,
        5 => CrlReason::CessationOfOperation,
        6 => CrlReason::CertificateHold,
        8 => CrlReason::RemoveFromCRL,
        9 => CrlReason::PrivilegeWithdrawn,
        10 => CrlReason::AaCompromise,
        other => {
            return Err(Error::Invalid(format!(
                "{other} is not an RFC 5280 CRLReason code"
            )));
        }
    })
}

fn crl_extensions(spec: &CrlSpec, ca: &CaSigner) -> Result<Vec<Extension>, Error> {
    let mut extensions = vec![
        extension(
            ID_CE_AUTHORITY_KEY_IDENTIFIER,
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(ca.key_id()).map_err(encoding)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
        extension(ID_CE_CRL_NUMBER, false, &number(spec.number)?)?,
    ];
    if let Some(base) = spec.delta_of {
        // RFC 5280 §5.2.4: critical, so that a client that cannot apply deltas refuses it.
        extensions.push(extension(ID_CE_DELTA_CRL_INDICATOR, true, &number(base)?)?);
    }
    if !spec.freshest_crl_urls.is_empty() {
        let names = spec
            .freshest_crl_urls
            .iter()
            .map(|url| {
                Ia5String::new(url)
                    .map(GeneralName::UniformResourceIdentifier)
                    .map_err(|_| Error::Invalid(format!("CRL URL '{url}' must be ASCII")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let points = vec![DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(names)),
            reasons: None,
            crl_issuer: None,
        }];
        extensions.push(extension(ID_CE_FRESHEST_CRL, false, &points)?);
    }
    Ok(extensions)
}

fn number(n: u64) -> Result<Uint, Error> {
    Uint::new(&n.to_be_bytes()).map_err(encoding)
}

fn extension(
    extn_id: ObjectIdentifier,
    critical: bool,
    value: &impl Encode,
) -> Result<Extension, Error> {
    Ok(Extension {
        extn_id,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(encoding)?).map_err(encoding)?,
    })
}

/// `t` as RFC 5280 §5.1.2.4 wants it: UTCTime through 2049, GeneralizedTime from 2050.
fn time(t: OffsetDateTime) -> Result<Time, Error> {
    let since_epoch = unix(t)?;
    if t.year() < 2050 {
        UtcTime::from_unix_duration(since_epoch)
            .map(Time::UtcTime)
            .map_err(encoding)
    } else {
        GeneralizedTime::from_unix_duration(since_epoch)
            .map(Time::GeneralTime)
            .map_err(encoding)
    }
}

/// Whole seconds since the epoch: CRL and OCSP times carry no fractions.
pub(crate) fn unix(t: OffsetDateTime) -> Result<std::time::Duration, Error> {
    u64::try_from(t.unix_timestamp())
        .map(std::time::Duration::from_secs)
        .map_err(|_| Error::Invalid(format!("{t} is before 1970")))
}

fn encoding(e: der::Error) -> Error {
    Error::Invalid(format!("the CRL cannot be encoded: {e}"))
}
