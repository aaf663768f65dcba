use time::OffsetDateTime;

/// What the registration authority refuses, in kinds that are safe to show to the caller.
/// The server maps each kind to an HTTP status exactly once.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is well-formed but a value breaks a rule (422).
    #[error("{0}")]
    Invalid(String),
    /// The request cannot be understood (400).
    #[error("{0}")]
    Malformed(String),
    /// A certificate signing request that cannot be used: unreadable, or its signature does
    /// not verify (422; ACME `badCSR`).
    #[error("{0}")]
    BadCsr(String),
    /// A name the policy does not issue for (422; ACME `rejectedIdentifier`).
    #[error("{0}")]
    RejectedIdentifier(String),
    /// The certificate is already revoked, or already on hold (409; ACME `alreadyRevoked`).
    #[error("{0}")]
    AlreadyRevoked(String),
    /// Too many requests of this kind from this caller (429 with `Retry-After`; ACME
    /// `rateLimited`).
    #[error("{detail}")]
    RateLimited {
        /// What the limit is, for a person.
        detail: String,
        /// Seconds until the same request may succeed.
        retry_after: u32,
    },
    /// The linter found errors in the certificate or CRL about to be signed, so nothing was
    /// signed (422); the report names each rule.
    #[error("refused before signing: {0}")]
    Lint(pki::lint::Report),
    /// No valid credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The account is locked after too many failed logins (401).
    #[error("account is locked after {attempts} failed logins; try again after {}", crate::rfc3339(*.until))]
    Locked {
        /// How many failures locked it.
        attempts: u32,
        /// When logins are accepted again.
        until: OffsetDateTime,
    },
    /// Valid credentials without the right to do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such thing (404).
    #[error("{0}")]
    NotFound(String),
    /// It clashes with what exists (409).
    #[error("{0}")]
    Conflict(String),
    /// A server certmint talks to for this request (a mail server) could not be reached or
    /// refused; the message says which and why (502).
    #[error("{0}")]
    Upstream(String),
    /// The database is down (503).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The database's disk is full: nothing was written; the same request may succeed once
    /// space is freed (503).
    #[error("the database's disk is full, so nothing was written; try again once space is freed")]
    StorageFull,
    /// A CA's key is in a device (an HSM) that cannot sign now: away, failing, or every
    /// session busy (503 with `Retry-After`); the message says which.
    #[error("{0}")]
    KeyUnavailable(String),
    /// The pool for long CPU work is full (503 with `Retry-After`); the message says so.
    #[error("{0}")]
    Busy(String),
    /// A fault of ours; details are logged, not shown (500).
    #[error("internal error")]
    Internal(String),
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Conflict(constraint) => {
                Self::Conflict(format!("already exists ({constraint})"))
            }
            store::Error::Unavailable(m) => Self::Unavailable(m),
            store::Error::Invalid(m) => Self::Invalid(m),
            store::Error::StorageFull(m) => {
                tracing::error!(detail = %m, "the database's disk is full: writes are refused");
                Self::StorageFull
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl Error {
    /// Whether the same request may succeed later unchanged: the database, its disk or the
    /// CPU pool was short, and nothing was decided about the request itself.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::StorageFull | Self::Busy(_)
        )
    }

    /// Seconds the caller is asked to wait before trying the same request again, for the
    /// kinds where waiting helps.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Busy(_) => Some(crate::blocking::RETRY_AFTER_SECONDS),
            Self::Unavailable(_) | Self::StorageFull | Self::KeyUnavailable(_) => {
                Some(RETRY_UNAVAILABLE_SECONDS)
            }
            Self::RateLimited { retry_after, .. } => Some(u64::from(*retry_after)),
            _ => None,
        }
    }
}

/// Seconds a caller is asked to wait after the database was unavailable or full.
const RETRY_UNAVAILABLE_SECONDS: u64 = 5;

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
