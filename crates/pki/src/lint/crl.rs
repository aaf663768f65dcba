//! Lints a to-be-signed CRL, reading its entries one at a time so that a list of a million
//! costs no more memory than one entry.

use std::cmp::Ordering;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS, ID_CE_DELTA_CRL_INDICATOR,
    ID_CE_FRESHEST_CRL, ID_CE_INVALIDITY_DATE, ID_CE_ISSUER_ALT_NAME,
    ID_CE_ISSUING_DISTRIBUTION_POINT,
};
use der::asn1::{ContextSpecific, GeneralizedTime, Uint};
use der::{Decode, Reader, SliceReader, Tag, TagNumber};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Version;
use x509_cert::crl::RevokedCert;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason};
use x509_cert::name::Name;

use super::*;
use crate::keys::KeyType;

/// What the entries said that only the CRL's extensions can judge.
#[derive(Default)]
struct Entries {
    count: u64,
    removals: u64,
}

/// Lints the DER TBSCertList `tbs`, which a key of type `signer` is about to sign.
pub(crate) fn crl(tbs: &[u8], signer: KeyType, policy: &Policy) -> Report {
    let mut linter = Linter::new(policy);
    let read = SliceReader::new(tbs).and_then(|mut reader| {
        reader.sequence(|r| read(r, &mut linter, signer))?;
        reader.finish(())
    });
    if let Err(e) = read {
        linter.flag(&CRL_DER, e.to_string());
    }
    linter.finish()
}

fn read<'a, R: Reader<'a>>(r: &mut R, linter: &mut Linter<'_>, signer: KeyType) -> der::Result<()> {
    let version = Option::<Version>::decode(r)?;
    let signature = AlgorithmIdentifierOwned::decode(r)?;
    let issuer = Name::decode(r)?;
    let this_update = Time::decode(r)?;
    let next_update = Option::<Time>::decode(r)?;
    let entries = if r.peek_tag()? == Tag::Sequence {
        let entries = r.sequence(|list| {
            let mut entries = Entries::default();
            while !list.is_finished() {
                entry(linter, &RevokedCert::decode(list)?, &mut entries);
                entries.count += 1;
            }
            Ok(entries)
        })?;
        linter.check(entries.count > 0, &CRL_EMPTY_LIST, || {
            "revokedCertificates is present but empty".into()
        });
        entries
    } else {
        Entries::default()
    };
    let extensions =
        ContextSpecific::<Vec<Extension>>::decode_explicit(r, TagNumber::N0)?.map(|c| c.value);

    let expected = crate::crl::signature_algorithm(signer).ok();
    linter.check(
        expected.as_ref() == Some(&signature),
        &CRL_SIGNATURE_ALGORITHM,
        || {
            format!(
                "the TBS names {} but the {} key signs with another",
                signature.oid,
                signer.label()
            )
        },
    );
    linter.check(
        extensions.is_none() || version == Some(Version::V2),
        &CRL_VERSION,
        || "extensions on a CRL that is not version 2".into(),
    );
    linter.check(!issuer.0.is_empty(), &CRL_ISSUER_EMPTY, || {
        "the issuer name is empty".into()
    });
    linter.time_encoding(&CRL_TIME_ENCODING, "thisUpdate", &this_update);
    match &next_update {
        Some(next) => {
            linter.time_encoding(&CRL_TIME_ENCODING, "nextUpdate", next);
            linter.check(
                next.to_unix_duration() > this_update.to_unix_duration(),
                &CRL_NEXT_UPDATE,
                || "nextUpdate is not after thisUpdate".into(),
            );
        }
        None => linter.flag(&CRL_NEXT_UPDATE, "nextUpdate is missing"),
    }
    crl_extensions(linter, extensions.as_deref().unwrap_or_default(), &entries);
    Ok(())
}

fn entry(linter: &mut Linter<'_>, entry: &RevokedCert, entries: &mut Entries) {
    linter.serial(
        &CRL_ENTRY_SERIAL,
        &CRL_ENTRY_SERIAL,
        entry.serial_number.as_bytes(),
    );
    linter.time_encoding(&CRL_TIME_ENCODING, "revocationDate", &entry.revocation_date);
    let extensions: &[Extension] = entry.crl_entry_extensions.as_deref().unwrap_or_default();
    linter.duplicates(&CRL_ENTRY_EXTENSION, extensions);
    for extension in extensions {
        let id = extension.extn_id;
        linter.check(!extension.critical, &CRL_ENTRY_EXTENSION, || {
            format!("entry extension {id} is critical")
        });
        if id == ID_CE_CRL_REASONS {
            match decode::<CrlReason>(linter, &CRL_REASON, extension, "the reason code") {
                Some(CrlReason::Unspecified) => {
                    linter.flag(&CRL_REASON_UNSPECIFIED, "an entry says unspecified");
                }
                Some(CrlReason::RemoveFromCRL) => entries.removals += 1,
                _ => {}
            }
        } else if id == ID_CE_INVALIDITY_DATE {
            decode::<GeneralizedTime>(linter, &CRL_ENTRY_EXTENSION, extension, "invalidityDate");
        } else {
            linter.flag(
                &CRL_ENTRY_EXTENSION,
                format!("unknown entry extension {id}"),
            );
        }
    }
}

/// The CRL extensions certmint writes or may one day.
const KNOWN: [ObjectIdentifier; 6] = [
    ID_CE_AUTHORITY_KEY_IDENTIFIER,
    ID_CE_CRL_NUMBER,
    ID_CE_DELTA_CRL_INDICATOR,
    ID_CE_FRESHEST_CRL,
    ID_CE_ISSUING_DISTRIBUTION_POINT,
    ID_CE_ISSUER_ALT_NAME,
];

fn crl_extensions(linter: &mut Linter<'_>, extensions: &[Extension], entries: &Entries) {
    linter.duplicates(&CRL_EXTENSION, extensions);
    let find = |id: ObjectIdentifier| extensions.iter().find(|e| e.extn_id == id);
    for extension in extensions {
        let id = extension.extn_id;
        linter.check(
            !extension.critical || KNOWN.contains(&id),
            &CRL_EXTENSION,
            || format!("extension {id} is critical but not one relying parties know"),
        );
    }

    match find(ID_CE_AUTHORITY_KEY_IDENTIFIER) {
        Some(extension) => {
            linter.check(!extension.critical, &CRL_AKI, || {
                "authorityKeyIdentifier is critical".into()
            });
            if let Some(aki) =
                decode::<AuthorityKeyIdentifier>(linter, &CRL_AKI, extension, "the AKI")
            {
                linter.check(aki.key_identifier.is_some(), &CRL_AKI, || {
                    "authorityKeyIdentifier without a keyIdentifier".into()
                });
            }
        }
        None => linter.flag(&CRL_AKI, "authorityKeyIdentifier is missing"),
    }

    let number = match find(ID_CE_CRL_NUMBER) {
        Some(extension) => {
            linter.check(!extension.critical, &CRL_NUMBER, || {
                "cRLNumber is critical".into()
            });
            let number = decode::<Uint>(linter, &CRL_NUMBER, extension, "cRLNumber");
            if let Some(n) = &number {
                linter.check(n.as_bytes().len() <= 20, &CRL_NUMBER, || {
                    format!("cRLNumber of {} octets", n.as_bytes().len())
                });
            }
            number
        }
        None => {
            linter.flag(&CRL_NUMBER, "cRLNumber is missing");
            None
        }
    };

    let delta = find(ID_CE_DELTA_CRL_INDICATOR);
    if let Some(extension) = delta {
        linter.check(extension.critical, &CRL_DELTA, || {
            "deltaCRLIndicator is not critical".into()
        });
        let base = decode::<Uint>(linter, &CRL_DELTA, extension, "deltaCRLIndicator");
        if let (Some(base), Some(number)) = (base, &number) {
            linter.check(
                compare(base.as_bytes(), number.as_bytes()) == Ordering::Less,
                &CRL_DELTA,
                || "the base CRL number is not below this CRL's".into(),
            );
        }
        linter.check(find(ID_CE_FRESHEST_CRL).is_none(), &CRL_DELTA, || {
            "a delta CRL with freshestCRL".into()
        });
    }
    linter.check(
        delta.is_some() || entries.removals == 0,
        &CRL_REASON,
        || format!("{} removeFromCRL entries in a full CRL", entries.removals),
    );
    if let Some(extension) = find(ID_CE_FRESHEST_CRL)
        && let Some(points) =
            decode::<Vec<DistributionPoint>>(linter, &CRL_EXTENSION, extension, "freshestCRL")
    {
        linter.distribution_points(&points);
    }
}

/// Orders two non-negative DER integers by value.
fn compare(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |x: &[u8]| -> Vec<u8> { x.iter().copied().skip_while(|b| *b == 0).collect() };
    let (a, b) = (strip(a), strip(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}
