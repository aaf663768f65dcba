//! certmint's registration authority: who may do what, and the record of what was done.
//!
//! Trust boundary: front doors hand this crate an authenticated [`Principal`] (or credentials to
//! authenticate) and parsed input; this crate decides whether the action is allowed, checks the
//! input against policy, and commits the change together with its audit record. It never
//! trusts a front door's idea of permissions beyond the route check it was asked to make.

mod accounts;
pub mod acme;
mod api_keys;
mod audit;
pub mod backup;
pub mod blocking;
mod ca;
pub mod certificate_metadata;
mod chain_repair;
mod client_certificate;
mod clock;
mod committer;
mod credentials;
mod crl;
mod csrs;
mod database;
pub mod email;
mod error;
pub mod est;
mod groups;
pub mod hsm;
mod import;
mod inventory;
mod issue;
pub mod jobs;
mod live;
mod login_certificates;
pub mod master_key;
mod ocsp;
pub mod outbound;
mod overview;
mod passkeys;
pub mod password;
mod password_reset;
mod principal;
mod publisher;
mod publishing;
pub mod rbac;
mod renewal;
pub mod reports;
mod revoke;
pub mod saved_views;
mod scep;
mod sealed_settings;
mod search;
mod second_factor;
mod served;
mod sessions;
mod ssl_check;
pub mod sso;
pub mod syslog;
mod templates;
pub mod token;
mod truststore;
mod validate;
pub mod vault;
mod webhooks;

use std::sync::Arc;

use store::Store;
use time::OffsetDateTime;

pub use accounts::{NewUserInput, PasswordChanged, UserUpdateInput};
pub use api_keys::{ApiKeyInput, ApiKeyUpdate, IssuedApiKey};
pub use audit::{ChainFault, Checkpoint, Verification, parse_time};
pub use ca::{
    CaKind, KeyLocation, LISTENER_KEY_CONTEXT, ListenerIdentity, ListenerInfo, ListenerRequest,
    ListenerSource, NewCaInput, Pointers,
};
pub use chain_repair::{ChainFinding, ChainRepair, ChainStats};
pub use clock::{Clock, ManualClock, SystemClock};
pub use crl::CrlKind;
pub use csrs::{SignCsr, parse_csr};
pub use database::{DatabaseReport, ExportItem, IntegrityProblem, IntegrityReport, Optimized};
pub use error::{Error, Result};
pub use groups::{GroupInput, MEMBER_ROLES};
pub use import::{ImportInput, ImportReport};
pub use issue::{IssueRequest, Issued, KeySource};
pub use live::{InForce, LIVE_SETTINGS, LiveSetting, LiveValues, RateLimitReset};
pub use login_certificates::{LoginKey, MtlsChange, MtlsSettings, NewLoginCertificate, Reach};
pub use ocsp::{Freshness, OcspAnswer, OcspDatabase, OcspLimits, OcspStats};
pub use overview::Overview;
pub use passkeys::{CEREMONY_LIFETIME, PasskeyRow, RelyingParty};
pub use pki;
pub use principal::{Credential, Origin, Principal};
pub use publisher::node_name;
pub use publishing::Publishing;
pub use rbac::{Permission, Role};
pub use renewal::{
    AutoRenewal, AutoRenewalChange, KeyPolicy, LifetimeFraction, OwnPolicy, RenewWhen,
    RenewalPolicy,
};
pub use revoke::RevocationReason;
pub use scep::{
    CaCerts, ChallengeIssued, DEFAULT_SCEP_PROFILE, ScepAnswer, ScepConfig, ScepConfigChange,
    ScepProfileChange, ScepProfileStats, ScepStats,
};
pub use search::SearchResults;
pub use second_factor::{
    MAX_CODE_ATTEMPTS, PENDING_LIFETIME, PendingLogin, RECOVERY_CODES, SecondFactorStatus,
    TotpEnrollment,
};
pub use sessions::{DatabaseDown, LoginMethod, LoginOutcome, LoginStep, OUTAGE_GRACE};
pub use ssl_check::{CHECK_TIMEOUT, MAX_CHAIN, SslReport};
pub use webhooks::{TestDelivery, Webhook, WebhookInput, WebhookWithSecret, sign as sign_webhook};
// Front doors read rows and get a `Reader`; the `Store`, which writes, stays in this crate.
pub use store::{
    AcmeAccountRow, AcmeAccountStatus, AcmeEabKeyRow, AcmeFilter, AcmeOrderRow, AcmeProfileFields,
    AcmeProfileRow, ApiKeyRow, AuditFilter, AuditRecord, AuditStats, Backend, CaId, CaRow,
    CaSource, CaSummary, CaUpdate, CertFields, CertificateChange, CertificateFilter, CertificateId,
    CertificateOrder, CertificateRow, CertificateSource, CertificateState, CertificateStatus,
    CertificateSummary, CrlRow, CsrId, CsrRow, CsrSource, CsrStatus, DatabaseStats, DeliveryRow,
    EngineCheck, GroupMemberRow, GroupRow, KeyId, LocationFields, LocationRow, Page, PageRequest,
    PoolStats, Reader, RevocationSettings, SanKind, SavedViewRow, ScepProfileRow,
    ScepRequestFilter, ScepRequestRow, ScepRequestStatus, SessionRow, TableStats, TemplateId,
    TimeWindow, TrustSource, TrustStats, TrustedRow, UserCertificateRow, UserCertificateStats,
    UserFilter, UserRow,
};
pub use templates::{BasicConstraints, ImportCounts, Template, TemplateSpec, builtin_templates};
pub use truststore::{TrustLabels, TrustReport};
pub use vault::{MasterKey, Vault};

/// How long a row kept in memory (an issuing CA, a session, an API key and its user) is used
/// before it is read again: what another node changes shows here within this time. This node's
/// own changes show at once.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Account and session rules. Every field has an operator-facing setting of the same name; all
/// but `audit_min_retention_days` can be changed through the API without a restart (see
/// [`Authority::in_force`]).
#[derive(Debug, Clone)]
pub struct Policy {
    /// Shortest password accepted.
    pub password_min_length: usize,
    /// Consecutive failed logins that lock an account.
    pub lockout_threshold: u32,
    /// How long a lockout lasts.
    pub lockout_minutes: u32,
    /// A session ends after this long without a request.
    pub session_idle_minutes: u32,
    /// A session ends this long after login, whatever its activity.
    pub session_absolute_minutes: u32,
    /// Roles whose holders must log in with a second factor.
    pub second_factor_roles: Vec<String>,
    /// Audit cleanup never removes records younger than this many days.
    pub audit_min_retention_days: u32,
    /// Login requests per minute and client address (0: unlimited).
    pub auth_rate_limit_per_minute: u32,
    /// Whether the login rate limit applies.
    pub auth_rate_limit_enabled: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            password_min_length: 12,
            lockout_threshold: 10,
            lockout_minutes: 15,
            session_idle_minutes: 30,
            session_absolute_minutes: 12 * 60,
            second_factor_roles: Vec::new(),
            audit_min_retention_days: 90,
            auth_rate_limit_per_minute: 10,
            auth_rate_limit_enabled: true,
        }
    }
}

/// The registration authority: the store, the vault, the clock and the policy, and the
/// operations over them.
#[derive(Debug)]
pub struct Authority {
    store: Store,
    vault: Vault,
    clock: Arc<dyn Clock>,
    /// The rules as configured: what is in force until the API sets a value.
    policy: Policy,
    /// The rules in force, with the values set through the API.
    live: live::LiveCache,
    /// The group-commit writer of issued certificates.
    committer: committer::Committer,
    /// Issuing CAs and their opened keys.
    issuers: ca::Issuers,
    /// Sessions and API keys recently presented, with their users.
    credentials: credentials::Credentials<credentials::Login>,
    /// Where certificates say revocation and issuers are published.
    publishing: std::sync::RwLock<Publishing>,
    /// Raised by every revocation change committed here.
    revocations: publishing::RevocationSignal,
    /// The OCSP responder's CAs, responses and counters.
    ocsp: ocsp::OcspState,
    /// CA certificates and CRLs as last served, for while the database is unreachable.
    served: served::Served,
    /// Held while a CRL is built and stored.
    crl_publishing: tokio::sync::Mutex<()>,
    /// Held for a whole round of CRL decisions, so that the publisher and the `crl_refresh`
    /// job never both find the same CRL due.
    crl_rounds: tokio::sync::Mutex<()>,
    /// ACME's nonces, validator and profiles.
    acme: acme::AcmeCore,
    /// EST's settings and the passwords that verified.
    est: est::EstCore,
    /// SCEP's RAs, opened.
    scep: scep::ScepCore,
    /// Where long CPU work runs.
    cpu: blocking::Pool,
    /// Where the SSL check tool may connect (public addresses only when unset).
    ssl_check_policy: std::sync::OnceLock<outbound::AddressPolicy>,
    /// Where mail may be sent (public addresses only when unset).
    email_policy: std::sync::OnceLock<outbound::AddressPolicy>,
    /// Where webhooks may connect (public addresses only when unset).
    webhook_policy: std::sync::OnceLock<outbound::AddressPolicy>,
    /// Where SSO providers may be reached (public addresses only when unset).
    sso_policy: std::sync::OnceLock<outbound::AddressPolicy>,
    /// OIDC providers' metadata and keys, kept a while.
    sso_metadata: sso::oidc::MetadataCache,
    /// PKCS#11 modules and the tokens in use.
    hsm: hsm::Hsm,
    /// Where the syslog server may be (public addresses only when unset).
    syslog_policy: std::sync::OnceLock<outbound::AddressPolicy>,
    /// The client webhooks are sent with, made at the first delivery.
    webhook_client: std::sync::OnceLock<reqwest::Client>,
    /// Files outside the database holding sealed secrets.
    sealed_files: std::sync::RwLock<Vec<master_key::SealedFile>>,
    /// Held while the master key is rotated.
    master_key_rotation: master_key::RotationLock,
    /// Where this node keeps backups and which of its files go into them.
    backup_place: std::sync::OnceLock<backup::BackupPlace>,
    /// Held while a backup is written or opened: each costs a passphrase derivation of
    /// 256 MiB, so one runs at a time.
    backup_work: tokio::sync::Mutex<()>,
}

/// What the pool for long key work is called in its refusals.
pub const KEY_WORK: &str = "key work";

impl Authority {
    /// Connects to the database at `database_url` (at most `max_connections`), brings its
    /// schema up to date and assembles an authority over it: what a front door starts from,
    /// since only this crate holds the store.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database cannot be reached; [`Error::Invalid`] for an
    /// unusable URL or a failed migration.
    pub async fn open(
        database_url: &str,
        max_connections: u32,
        vault: Vault,
        clock: Arc<dyn Clock>,
        policy: Policy,
        publishing: Publishing,
    ) -> Result<Self> {
        // An operator reads these at start: say what is wrong with the URL or the schema.
        let starting = |e: store::Error| match e {
            store::Error::Config(m) | store::Error::Migration(m) => Error::Invalid(m),
            other => other.into(),
        };
        // Keyed before migrating, so that the migration that keys the audit chain can seal it.
        let store = Store::connect(database_url, max_connections)
            .await
            .map_err(starting)?
            .with_chain_key(vault.audit_chain_key());
        store.migrate().await.map_err(starting)?;
        Ok(Self::new(store, vault, clock, policy, publishing))
    }

    /// Assembles an authority over an opened, migrated store, publishing under `publishing`.
    pub fn new(
        store: Store,
        vault: Vault,
        clock: Arc<dyn Clock>,
        policy: Policy,
        publishing: Publishing,
    ) -> Self {
        // Every write of this authority extends the chain under the key only the vault derives.
        let store = store.with_chain_key(vault.audit_chain_key());
        Self {
            committer: committer::Committer::start(store.clone()),
            store,
            vault,
            clock,
            policy,
            live: live::LiveCache::default(),
            issuers: ca::Issuers::default(),
            credentials: credentials::Credentials::default(),
            publishing: std::sync::RwLock::new(publishing),
            revocations: publishing::RevocationSignal::default(),
            ocsp: ocsp::OcspState::default(),
            served: served::Served::default(),
            crl_publishing: tokio::sync::Mutex::new(()),
            crl_rounds: tokio::sync::Mutex::new(()),
            acme: acme::AcmeCore::default(),
            est: est::EstCore::default(),
            scep: scep::ScepCore::default(),
            cpu: blocking::Pool::per_core(KEY_WORK),
            ssl_check_policy: std::sync::OnceLock::new(),
            email_policy: std::sync::OnceLock::new(),
            webhook_policy: std::sync::OnceLock::new(),
            sso_policy: std::sync::OnceLock::new(),
            sso_metadata: std::sync::Mutex::default(),
            hsm: hsm::Hsm::default(),
            syslog_policy: std::sync::OnceLock::new(),
            webhook_client: std::sync::OnceLock::new(),
            sealed_files: std::sync::RwLock::default(),
            master_key_rotation: master_key::RotationLock::default(),
            backup_place: std::sync::OnceLock::new(),
            backup_work: tokio::sync::Mutex::new(()),
        }
    }

    /// Runs long CPU work in `cpu` rather than in a pool of one worker per core.
    #[must_use]
    pub fn with_cpu_pool(mut self, cpu: blocking::Pool) -> Self {
        self.cpu = cpu;
        self
    }

    /// The bounded pool for long CPU work (key derivations, RSA key generation): what a front
    /// door runs such work in when it has no other call into this crate to make.
    pub fn cpu(&self) -> &blocking::Pool {
        &self.cpu
    }

    /// Read access to storage, for reads that need no policy (lists, lookups). Only this
    /// crate writes: a front door gets the reader, never the store.
    ///
    /// ```no_run
    /// # async fn f(authority: &certmint_authority::Authority) -> Result<(), Box<dyn std::error::Error>> {
    /// let ca = authority.reader().ca(certmint_authority::CaId(1)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// A write through it does not compile:
    ///
    /// ```compile_fail
    /// # async fn f(authority: &certmint_authority::Authority) {
    /// let tx = authority.reader().begin_write().await;
    /// # }
    /// ```
    pub fn reader(&self) -> &Reader {
        &self.store
    }

    /// The vault that seals secrets at rest.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Where revocation and issuer certificates are published.
    pub fn publishing(&self) -> Publishing {
        self.publishing
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Publishes under `publishing` from now on: the listeners' real addresses are known only
    /// once they are bound.
    pub fn publish_at(&self, publishing: Publishing) {
        *self
            .publishing
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = publishing;
    }

    /// After a revocation change to the certificate with `serial` (hex) has committed: its
    /// OCSP responses here are forgotten at once, and this node's publisher woken.
    pub(crate) fn revocation_changed(&self, serial: &str) {
        if let Ok(bytes) = hex::decode(serial) {
            self.ocsp.evict(&bytes);
        }
        self.revocations.raise();
    }

    /// The current time by the injected clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Checks that the database answers (readiness).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when it does not.
    pub async fn ping(&self) -> Result<()> {
        self.store
            .ping()
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))
    }

    /// Whether the database is SQLite, which lives in the data directory (so a full data disk
    /// stops every write).
    pub fn store_is_sqlite(&self) -> bool {
        self.store.backend() == store::Backend::Sqlite
    }

    /// Database pool figures.
    pub fn pool_stats(&self) -> PoolStats {
        self.store.pool_stats()
    }

    /// Closes the database pool (at shutdown).
    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// Formats a time as RFC 3339, the form used in JSON and messages.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
