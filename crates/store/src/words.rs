//! The closed sets of words kept in text columns — statuses and sources — as enums, so that a
//! misspelt comparison does not compile. Each reads back strictly: a word the code never
//! writes is a damaged row, not a new state.

use std::fmt;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::Error;

macro_rules! stored_words {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order declared.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The word stored, and shown in the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }

            /// The value `word` names.
            pub fn parse(word: &str) -> Option<Self> {
                match word {
                    $($word => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// Reads `column` of `row`.
            pub(crate) fn read(row: &AnyRow, column: &str) -> Result<Self, Error> {
                let word: String = row.try_get(column)?;
                Self::parse(&word).ok_or_else(|| {
                    Error::Corrupt(format!(
                        "{column} '{word}' is not a {}",
                        stringify!($name)
                    ))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let word = String::deserialize(d)?;
                Self::parse(&word).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "'{word}' is not a {}",
                        stringify!($name)
                    ))
                })
            }
        }
    };
}

stored_words! {
    /// Whether a certificate is revoked (a hold included) — not whether it has expired, which
    /// depends on the time it is asked at.
    CertificateStatus {
        /// Not revoked, or a hold released.
        Valid = "valid",
        /// Revoked, or on hold.
        Revoked = "revoked",
    }
}

stored_words! {
    /// Which door a certificate came in by.
    CertificateSource {
        /// The REST API or the CLI.
        Api = "api",
        /// An ACME order.
        Acme = "acme",
        /// A stored CSR, signed.
        Csr = "csr",
        /// certmint itself: the listener's certificate, OCSP responders.
        System = "system",
        /// Imported, not issued here.
        Imported = "imported",
        /// An EST enrollment (RFC 7030).
        Est = "est",
        /// A SCEP enrollment (RFC 8894).
        Scep = "scep",
    }
}

stored_words! {
    /// Where a SCEP request stands.
    ScepRequestStatus {
        /// Waiting for an administrator.
        Pending = "pending",
        /// Issued.
        Issued = "issued",
        /// Refused by an administrator.
        Rejected = "rejected",
        /// Refused by certmint (a bad challenge, a template's rule, …).
        Failed = "failed",
    }
}

stored_words! {
    /// How a CA came to be.
    CaSource {
        /// Created here, root or intermediate.
        Created = "created",
        /// An intermediate signed here through the issuance pipeline.
        Issued = "issued",
        /// Imported.
        Imported = "imported",
    }
}

stored_words! {
    /// Where a stored CSR is in its life.
    CsrStatus {
        /// Waiting to be signed.
        Pending = "pending",
        /// Signed: its certificate is stored.
        Signed = "signed",
    }
}

stored_words! {
    /// How a stored CSR came to be.
    CsrSource {
        /// Uploaded, its key held by whoever made it.
        Uploaded = "uploaded",
        /// Generated here, with its key.
        Generated = "generated",
    }
}

stored_words! {
    /// How a trusted certificate came into the trust store.
    TrustSource {
        /// Added as one certificate.
        Manual = "manual",
        /// Imported from a bundle or file.
        Import = "import",
        /// Read from the operating system's CA bundle.
        System = "system",
    }
}

stored_words! {
    /// An ACME account's status (RFC 8555 §7.1.2).
    AcmeAccountStatus {
        /// In use.
        Valid = "valid",
        /// Closed by its client.
        Deactivated = "deactivated",
        /// Closed by the server.
        Revoked = "revoked",
    }
}

stored_words! {
    /// The state of an ACME order, authorization or challenge (RFC 8555 §7.1.6).
    AcmeStatus {
        /// Waiting for the client.
        Pending = "pending",
        /// Every authorization is valid; the order can be finalized.
        Ready = "ready",
        /// Being validated (challenge) or issued (order).
        Processing = "processing",
        /// Done.
        Valid = "valid",
        /// Failed, or expired before it was done.
        Invalid = "invalid",
        /// Given up by the client.
        Deactivated = "deactivated",
        /// Its time ran out.
        Expired = "expired",
        /// Revoked by the server.
        Revoked = "revoked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_itself_and_others_are_refused() {
        for status in CertificateStatus::ALL {
            assert_eq!(CertificateStatus::parse(status.as_str()), Some(*status));
        }
        for source in CertificateSource::ALL {
            assert_eq!(CertificateSource::parse(source.as_str()), Some(*source));
        }
        assert_eq!(CertificateStatus::parse("Revoked"), None);
        assert_eq!(CsrStatus::parse("rejected"), None);
        assert_eq!(
            serde_json::to_value(AcmeAccountStatus::Deactivated).ok(),
            Some(serde_json::json!("deactivated"))
        );
        assert_eq!(
            serde_json::from_value::<AcmeStatus>(serde_json::json!("ready")).ok(),
            Some(AcmeStatus::Ready)
        );
        assert!(serde_json::from_value::<AcmeStatus>(serde_json::json!("Ready")).is_err());
    }
}
