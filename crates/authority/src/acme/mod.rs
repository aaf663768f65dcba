//! The ACME registration authority (RFC 8555): accounts, orders, authorizations, challenges and
//! their validation. The wire format (JWS, URLs, problem documents over HTTP) is the server's;
//! this module keeps the state machine and issues through [`crate::Authority::issue`].
//!
//! Order progress (new orders, challenge states, finalization) and used nonces are committed
//! with [`store::Store::begin_relaxed_write`]: a crash of the machine may lose the last moments
//! of it, which the client redoes, while certificates, accounts and audit records are always
//! committed durably. That keeps a busy ACME server from waiting on a disk flush for every
//! step of every order.

mod accounts;
mod admin;
mod certificates;
mod challenges;
mod identifiers;
mod nonces;
mod orders;
mod problem;
mod profiles;
mod recent;
mod renewal;
pub mod validation;
mod writer;

use std::sync::{Arc, OnceLock};

/// The context the vault seals external account binding keys under; the protocol opens them
/// with the same one.
pub(crate) const EAB_CONTEXT: &str = "acme-eab-key";
/// The context the vault seals the key of ACME nonces under.
pub(crate) const NONCE_KEY_CONTEXT: &str = "acme-nonce-key";

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use accounts::{AccountRequest, ExternalBinding};
pub use admin::{
    AcmeOrderDetails, AcmeProfileInput, AcmeSettings, AcmeSettingsChange, AcmeStats, IssuedEabKey,
    RESERVED_PROFILE_NAMES,
};
pub use certificates::RevokeBy;
pub use orders::OrderRequest;
pub use problem::{AcmeError, ChallengeType, Identifier, Problem, ProblemType};
pub use profiles::DEFAULT_PROFILE;
pub use renewal::{RENEWAL_INFO_RETRY, RenewalWindow};
pub use store::{AcmeAccountRow, AcmeProfileRow, AcmeStatus as Status};

use crate::Error;
use store::CertificateId;

/// A challenge of an authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// http-01, dns-01 or tls-alpn-01.
    #[serde(rename = "type")]
    pub kind: ChallengeType,
    /// The token the client builds its response from.
    pub token: String,
    /// pending, processing, valid or invalid.
    pub status: Status,
    /// When it was validated.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub validated: Option<OffsetDateTime>,
    /// Why validation failed.
    #[serde(default)]
    pub error: Option<Problem>,
}

/// An authorization: proof of control over one identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    /// The identifier (for a wildcard, the base name).
    pub identifier: Identifier,
    /// Whether the order asked for `*.` the identifier.
    pub wildcard: bool,
    /// pending, valid, invalid, deactivated, expired.
    pub status: Status,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// The challenges offered.
    pub challenges: Vec<Challenge>,
}

/// An order, with its authorizations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Its id in URLs.
    pub refid: String,
    /// The account that placed it.
    pub account_id: i64,
    /// pending, ready, processing, valid or invalid.
    pub status: Status,
    /// When it expires.
    pub expires: OffsetDateTime,
    /// The identifiers asked for, as asked.
    pub identifiers: Vec<Identifier>,
    /// One per identifier.
    pub authorizations: Vec<Authorization>,
    /// Requested notBefore.
    pub not_before: Option<OffsetDateTime>,
    /// Requested notAfter.
    pub not_after: Option<OffsetDateTime>,
    /// Why it is invalid.
    pub error: Option<Problem>,
    /// The certificate issued for it.
    pub certificate_id: Option<CertificateId>,
    /// The ARI identifier of the certificate it replaces.
    pub replaces: Option<String>,
    /// When it last changed.
    pub updated: OffsetDateTime,
}

/// The certificate of a valid order, as the client downloads it.
#[derive(Debug, Clone)]
pub struct IssuedChain {
    /// Leaf first, then the CAs above it up to the root, DER.
    pub chain: Vec<Vec<u8>>,
}

/// ACME's share of the authority's state.
#[derive(Debug, Default)]
pub(crate) struct AcmeCore {
    nonces: nonces::Nonces,
    validator: OnceLock<Arc<validation::Validator>>,
    profiles: profiles::ProfileCache,
    writer: writer::OrderWriter,
    /// Accounts recently used, by refid, with their keys parsed.
    accounts: recent::Recent<(AcmeAccountRow, pki::jose::Jwk)>,
    /// Certificates of orders finalized here, by order refid, with the account's id.
    issued: recent::Recent<(i64, IssuedChain)>,
}

/// The problem an authority error is in ACME's terms. The database's own words stay in the
/// log: they may name hosts and tables.
impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(m) | Error::Malformed(m) | Error::NotFound(m) | Error::Conflict(m) => {
                Problem::new(ProblemType::Malformed, m)
            }
            Error::BadCsr(m) => Problem::new(ProblemType::BadCsr, m),
            Error::RejectedIdentifier(m) => Problem::new(ProblemType::RejectedIdentifier, m),
            Error::AlreadyRevoked(m) => Problem::new(ProblemType::AlreadyRevoked, m),
            Error::RateLimited { detail, .. } => Problem::new(ProblemType::RateLimited, detail),
            Error::Unauthorized(m) | Error::Forbidden(m) => {
                Problem::new(ProblemType::Unauthorized, m)
            }
            Error::Unavailable(m) => {
                tracing::warn!(detail = %m, "ACME request: database unavailable");
                Problem::new(
                    ProblemType::ServerInternal,
                    "the service is unavailable; try again shortly",
                )
            }
            e @ (Error::StorageFull | Error::Busy(_)) => {
                Problem::new(ProblemType::ServerInternal, e.to_string())
            }
            other => {
                tracing::error!("ACME request failed: {other:?}");
                Problem::new(ProblemType::ServerInternal, "internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each typed refusal becomes its own ACME problem, and the database's own words never
    /// reach a client.
    #[test]
    fn typed_errors_become_their_acme_problems() {
        let cases = [
            (Error::BadCsr("bad".into()), ProblemType::BadCsr),
            (
                Error::RejectedIdentifier("no".into()),
                ProblemType::RejectedIdentifier,
            ),
            (
                Error::AlreadyRevoked("twice".into()),
                ProblemType::AlreadyRevoked,
            ),
            (Error::Invalid("x".into()), ProblemType::Malformed),
            (Error::NotFound("x".into()), ProblemType::Malformed),
            (Error::Forbidden("x".into()), ProblemType::Unauthorized),
        ];
        for (error, kind) in cases {
            assert_eq!(Problem::from(error).kind, kind);
        }

        let limited = Problem::from(Error::RateLimited {
            detail: "at most 5 per 3600 seconds".into(),
            retry_after: 42,
        });
        assert_eq!(limited.kind, ProblemType::RateLimited);
        assert_eq!(limited.detail, "at most 5 per 3600 seconds");

        let down = Problem::from(Error::Unavailable(
            "error connecting to server: db.internal.example:5432 refused".into(),
        ));
        assert_eq!(down.kind, ProblemType::ServerInternal);
        assert!(!down.detail.contains("db.internal"), "{}", down.detail);

        let fault = Problem::from(Error::Internal("UNIQUE constraint failed: cas.name".into()));
        assert_eq!(fault.kind, ProblemType::ServerInternal);
        assert!(!fault.detail.contains("constraint"), "{}", fault.detail);
    }
}
