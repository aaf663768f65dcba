//! Row ids as their own types, so that a CA's id cannot be passed where a certificate's is
//! expected. They are stored and sent as plain integers.
//!
//! ```
//! use certmint_store::CaId;
//! fn name(ca: CaId) -> String {
//!     format!("CA {ca}")
//! }
//! assert_eq!(name(CaId(7)), "CA 7");
//! ```
//!
//! A certificate's id where a CA's is expected does not compile:
//!
//! ```compile_fail
//! use certmint_store::{CaId, CertificateId};
//! fn name(ca: CaId) -> String {
//!     format!("CA {ca}")
//! }
//! name(CertificateId(7));
//! ```

use std::fmt;

macro_rules! row_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type,
            serde::Serialize, serde::Deserialize,
        )]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

row_id! {
    /// A CA's id (`cas.id`).
    CaId
}

row_id! {
    /// A certificate's id (`certificates.id`).
    CertificateId
}

row_id! {
    /// A stored private key's id (`keys.id`).
    KeyId
}

row_id! {
    /// A certificate template's id (`templates.id`).
    TemplateId
}

row_id! {
    /// A stored certificate signing request's id (`csrs.id`).
    CsrId
}
