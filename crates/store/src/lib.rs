//! certmint's storage authority: the schema, its migrations and every SQL query.
//!
//! Trust boundary: this crate trusts its callers to have authorised what they ask for; it
//! guarantees only that what belongs together is written in one transaction, and that every
//! audited change extends the hash chain inside that same transaction ([`WriteTx`]).
//!
//! One set of queries serves SQLite and PostgreSQL through sqlx's `Any` driver: placeholders are
//! `$n` (both accept them), timestamps are unix microseconds, flags are 0/1 integers.

mod acme;
mod api_keys;
mod audit;
mod cas;
mod cert_fields;
mod certificate_metadata;
mod certificates;
mod csrs;
mod dashboard;
mod db;
mod error;
mod est;
mod expiry;
mod groups;
mod hsm;
mod ids;
mod jobs;
mod keys;
mod maintenance;
mod outbox;
mod passkeys;
mod renewals;
mod reports;
mod revocation;
mod saved_views;
mod scep;
mod sealed;
mod second_factor;
mod sessions;
mod snapshot;
mod sso;
mod syslog;
mod templates;
#[cfg(feature = "test-support")]
pub mod testing;
mod truststore;
mod user_certificates;
mod users;
mod webhooks;
mod words;

pub use acme::{
    AcmeAccountRow, AcmeCounts, AcmeEabKeyRow, AcmeFilter, AcmeOrderChange, AcmeOrderRow,
    AcmeProfileFields, AcmeProfileRow, AcmeState, NewAcmeAccount, NewAcmeOrder,
};
pub use api_keys::{ApiKeyRow, NewApiKey};
pub use audit::{
    AuditCheckpoint, AuditEntry, AuditFilter, AuditRecord, AuditStats, ChainAnchor, ChainKey,
    GENESIS_HASH, plain_chain_hash,
};
pub use cas::{CaRow, CaUpdate, NewCa};
pub use cert_fields::CertFields;
pub use certificate_metadata::{CertificateChange, LocationFields, LocationRow};
pub use certificates::{
    CertificateFilter, CertificateOrder, CertificateRow, CertificateState, NewCertificate,
    Revocation, SanKind, TimeWindow,
};
pub use csrs::{CsrRow, NewCsr};
pub use dashboard::{
    CaSummary, CertificateStates, CertificateSummary, CsrSummary, DayCount, TemplateSummary,
    Totals, UserSummary,
};
pub use db::{Backend, PoolStats, Reader, Store, WriteTx};
pub use error::Error;
pub use est::{EstConfigRow, EstEndpoint, EstLabelRow};
pub use expiry::{ExpiryCandidate, ExpiryCursor, ExpirySubject, UnmailedNotice};
pub use groups::{GroupFields, GroupGrant, GroupMemberRow, GroupRow};
pub use hsm::{HsmKeyRow, HsmProviderFields, HsmProviderRow};
pub use ids::{CaId, CertificateId, CsrId, KeyId, TemplateId};
pub use jobs::{JobEnd, JobRow, JobRun};
pub use keys::{KeyRow, NewKey, PKCS11, TokenObject};
pub use maintenance::{DatabaseStats, EngineCheck, TableStats};
pub use outbox::NewEvent;
pub use passkeys::{CeremonyRow, NewCeremony, NewPasskey, PasskeyRow, PasskeyUse};
pub use renewals::{AutoRenewalRow, DueRenewal, OwnRenewalPolicy, RenewAt, RenewalCursor};
pub use reports::{ActionCount, CertificateProfile, ReportCertificate, ReportOrder};
pub use revocation::{CrlRow, OcspResponseRow, PendingChanges, RevocationSettings, RevokedEntry};
pub use saved_views::SavedViewRow;
pub use scep::{
    NewScepRequest, ScepCount, ScepProfileFields, ScepProfileRow, ScepRequestFilter, ScepRequestRow,
};
pub use sealed::{SealedBlob, SealedColumn, SealedCount};
pub use second_factor::{NewPendingLogin, PendingLoginRow, TotpRow};
pub use sessions::{NewSession, SessionRow};
pub use snapshot::{Column, Kind, Load, Table, Value};
pub use sso::{NewSsoLogin, SsoLoginRow, SsoProviderFields, SsoProviderRow};
pub use syslog::SyslogCursor;
pub use templates::{NewTemplate, TemplateRow};
pub use truststore::{NewTrusted, TrustStats, TrustedRow};
pub use user_certificates::{UserCertificateFilter, UserCertificateRow, UserCertificateStats};
pub use users::{NewUser, UserFilter, UserRow, UserUpdate};
pub use webhooks::{DeliveryAttempt, DeliveryRow, NewWebhook, OutboxEvent, WebhookRow};
pub use words::{
    AcmeAccountStatus, AcmeStatus, CaSource, CertificateSource, CertificateStatus, CsrSource,
    CsrStatus, ScepRequestStatus, TrustSource,
};

/// A page of a list query: 1-based page number and page size, already clamped by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based page number; not used with `after`.
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
    /// The page after the row with this id, in the list's id order (a keyset page: it costs
    /// the same however deep it is, where a page number skips every row before it). Only a
    /// list in id order takes it; another answers [`Error::Invalid`].
    pub after: Option<i64>,
}

impl PageRequest {
    fn limit(self) -> i64 {
        i64::from(self.per_page)
    }

    fn offset(self) -> i64 {
        i64::from(self.page.saturating_sub(1)) * i64::from(self.per_page)
    }
}

/// One page of rows and the total number of rows that matched.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// How many rows matched the filter in all: counted, or estimated when `estimated`.
    pub total: i64,
    /// Whether `total` is an estimate: the certificate list estimates past
    /// [`COUNTED_EXACTLY`] matches, so that a count costs the same at any size.
    pub estimated: bool,
}

impl<T> Page<T> {
    /// A page of a list whose `total` was counted.
    pub(crate) fn counted(items: Vec<T>, total: i64) -> Self {
        Self {
            items,
            total,
            estimated: false,
        }
    }
}

/// Most matches a list counts one by one (a covering index's entries, or rows, in a few
/// milliseconds); past it the certificate list estimates
/// ([`db::Filter::count_bounded`]).
pub const COUNTED_EXACTLY: i64 = 20_000;

/// Converts a timestamp to the stored form (unix microseconds).
pub fn to_micros(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// Converts the stored form (unix microseconds) back to a timestamp.
pub fn from_micros(us: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}
