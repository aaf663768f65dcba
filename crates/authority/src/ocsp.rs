//! The OCSP responder (RFC 6960, with the RFC 5019 lightweight profile): which CA a request
//! names, each certificate's status, and responses signed ahead of need.
//!
//! A response for one certificate without a nonce is the same for every client until it is
//! due for refresh, so it is signed once, kept in memory and in the database, and served from
//! there; a revocation evicts it at once on this node, and within a publisher tick on the
//! others. Requests with a nonce or several certificates are signed for the asker.
//!
//! # Cost of a request
//! A request names at most [`pki::ocsp::MAX_CERT_IDS`] certificates, checked while parsing.
//! Responses kept in memory are capped ([`OcspLimits`]), those for serials never issued
//! apart and lower, so a flood of made-up serials neither grows memory nor pushes out the
//! answers real clients ask for. Whatever is signed on the request path (nonces, several
//! CertIDs, serials never issued, a response due for refresh) is signed on a bounded blocking
//! pool, never on an async worker; a request that finds the pool and its queue full gets
//! `tryLater` at once (RFC 6960 §2.3), while pre-signed answers never wait for it.
//!
//! # The database unreachable
//! Pre-signed answers exist so that relying parties do not depend on the database. While it
//! cannot be reached, every response held in memory is served until its nextUpdate, even one
//! due for refresh, and a request memory cannot answer gets `tryLater`; the CAs answered for
//! are those read last. One request at a time asks the database again (each such request
//! waits as long as the database connection does); the others answer at once.

mod cache;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use bytes::Bytes;
use pki::ocsp::{
    self, CertId, CertStatus, IssuerKeyHashes, Request, Responder, ResponseData, ResponseStatus,
    SingleResponse,
};
use pki::{ExtendedKeyUsage, KeyType, KeyUsage, NameAttribute};
use sha2::{Digest, Sha256};
use store::{CaId, CaRow, CertificateSource, CertificateStatus, OcspResponseRow, RevokedEntry};
use time::{Duration, OffsetDateTime};

use crate::audit::Event;
use crate::blocking::{Admission, Pool};
use crate::{Authority, Error, IssueRequest, KeySource, Principal, Result, RevocationReason};

/// Days a delegated responder certificate is valid.
const RESPONDER_DAYS: i64 = 30;
/// A responder certificate is replaced when it has less than this left: more than any
/// response it signs stays valid.
const ROLLOVER: Duration = Duration::days(10);
/// Revocation changes are looked for this far back, for commits that landed after a poll
/// that had already passed their time.
const WATCH_OVERLAP: Duration = Duration::seconds(2);
/// The most revocation changes taken, and stored responses refreshed, per publisher round.
const BATCH: i64 = 10_000;
/// The name of the built-in template responder certificates are issued from.
const RESPONDER_TEMPLATE: &str = "OCSP Signing";

/// What the responder may spend: signing slots and memory. Each cached response is one
/// SingleResponse with at most the responder certificate beside it (a few KiB at most), so
/// the caps in responses bound memory too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OcspLimits {
    /// Responses signed at once on the request path, each on a blocking thread.
    pub signing_threads: usize,
    /// Requests that may wait for a signing thread; past them, `tryLater`.
    pub signing_queue: usize,
    /// Serials of issued certificates whose responses are kept in memory (past it the oldest
    /// go; the database still has them).
    pub cached_responses: usize,
    /// Serials never issued whose `unknown` responses are kept in memory.
    pub cached_unknown: usize,
}

impl Default for OcspLimits {
    fn default() -> Self {
        Self {
            signing_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            signing_queue: 32,
            cached_responses: 200_000,
            cached_unknown: 10_000,
        }
    }
}

/// Where the revocation watch has got to: the latest change seen, and the changes seen in the
/// overlap before it, so that each is handled once.
#[derive(Debug)]
pub(crate) struct OcspWatch {
    since: OffsetDateTime,
    seen: HashMap<(CaId, String), OffsetDateTime>,
}

impl OcspWatch {
    pub(crate) fn from(since: OffsetDateTime) -> Self {
        Self {
            since,
            seen: HashMap::new(),
        }
    }
}

/// A response to send: the OCSPResponse DER, and for a successful response that any client
/// may be given, what HTTP caches need.
#[derive(Debug, Clone)]
pub struct OcspAnswer {
    /// The OCSPResponse, DER.
    pub der: Bytes,
    /// For a shareable response: its validator and times.
    pub cache: Option<Freshness>,
}

/// What caches need to know of a shareable response (RFC 5019 §6.2).
#[derive(Debug, Clone)]
pub struct Freshness {
    /// A strong validator: a hash of the response.
    pub etag: Arc<str>,
    /// The response's thisUpdate.
    pub this_update: OffsetDateTime,
    /// The response's nextUpdate.
    pub next_update: OffsetDateTime,
}

/// Counters of what the responder answered.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    requests: AtomicU64,
    good: AtomicU64,
    revoked: AtomicU64,
    unknown: AtomicU64,
    malformed: AtomicU64,
    unauthorized: AtomicU64,
    internal_error: AtomicU64,
    try_later: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    stored_hits: AtomicU64,
    signed: AtomicU64,
    served_stale: AtomicU64,
}

/// The counters as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OcspStats {
    /// Requests answered, errors included.
    pub requests: u64,
    /// Certificates reported good.
    pub good: u64,
    /// Certificates reported revoked.
    pub revoked: u64,
    /// Certificates reported unknown.
    pub unknown: u64,
    /// `malformedRequest` answers.
    pub malformed: u64,
    /// `unauthorized` answers.
    pub unauthorized: u64,
    /// `internalError` answers.
    pub internal_error: u64,
    /// `tryLater` answers: the signing pool was full, or the database unavailable.
    pub try_later: u64,
    /// Answers served from memory.
    pub cache_hits: u64,
    /// Cacheable requests memory could not answer.
    pub cache_misses: u64,
    /// Of those, answers found signed in the database.
    pub stored_hits: u64,
    /// Responses signed.
    pub signed: u64,
    /// Answers served from memory because the database could not be reached to check them.
    pub served_stale: u64,
}

/// The database as the responder last found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OcspDatabase {
    /// Whether the responder's last look at the database succeeded.
    pub reachable: bool,
    /// When a look last failed, since this process started.
    pub last_failure: Option<OffsetDateTime>,
}

/// A CA the responder answers for, with the key that signs its responses.
struct ResponderCa {
    ca_id: CaId,
    hashes: IssuerKeyHashes,
    responder: Arc<Responder>,
    validity: Duration,
    /// No response may outlive the responder's certificate (or the CA's).
    valid_until: OffsetDateTime,
    /// A digest of what the responder was built from (CA, signing certificate, validity): it is
    /// built again only when that changes, and responses another one signed are not served.
    source: String,
}

/// A response kept in memory.
struct Entry {
    cert_id: CertId,
    answer: OcspAnswer,
    refresh_at: OffsetDateTime,
    status: CertStatus,
    signer: String,
}

/// The CAs the responder answers for, and when they were read.
type Responders = Option<(Instant, Arc<Vec<Arc<ResponderCa>>>)>;

/// The responder's memory: the CAs it answers for, responses by serial (each serial has one
/// entry per CertID form asked for, usually one), and the pool that signs.
pub(crate) struct OcspState {
    cas: RwLock<Responders>,
    loading: tokio::sync::Mutex<()>,
    /// Responses for issued certificates.
    known: RwLock<cache::Bounded>,
    /// `unknown` responses, for serials never issued: kept apart so that made-up serials push
    /// out only each other.
    unknown: RwLock<cache::Bounded>,
    signing: RwLock<Arc<Pool>>,
    pub(crate) stats: Stats,
    /// Set when a lookup found the database unreachable, cleared when one succeeds.
    unreachable: AtomicBool,
    last_failure: RwLock<Option<OffsetDateTime>>,
    /// Held by the one request that asks the database again while it is unreachable.
    probe: tokio::sync::Mutex<()>,
}

impl Default for OcspState {
    fn default() -> Self {
        let limits = OcspLimits::default();
        Self {
            cas: RwLock::default(),
            loading: tokio::sync::Mutex::default(),
            known: RwLock::new(cache::Bounded::new(limits.cached_responses)),
            unknown: RwLock::new(cache::Bounded::new(limits.cached_unknown)),
            signing: RwLock::new(Arc::new(signing_pool(&limits))),
            stats: Stats::default(),
            unreachable: AtomicBool::new(false),
            last_failure: RwLock::new(None),
            probe: tokio::sync::Mutex::new(()),
        }
    }
}

fn signing_pool(limits: &OcspLimits) -> Pool {
    Pool::new(limits.signing_threads, limits.signing_queue, "OCSP signing")
}

impl std::fmt::Debug for OcspState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OcspState")
    }
}

impl OcspState {
    fn cache_for(&self, status: &CertStatus) -> &RwLock<cache::Bounded> {
        match status {
            CertStatus::Unknown => &self.unknown,
            _ => &self.known,
        }
    }

    fn cached(&self, cert_id: &CertId) -> Option<Arc<Entry>> {
        [&self.known, &self.unknown].into_iter().find_map(|cache| {
            cache
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(cert_id)
        })
    }

    fn keep(&self, entry: Entry) {
        let mut cache = self
            .cache_for(&entry.status)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        cache.insert(entry);
    }

    /// Forgets every response for `serial` (an `unknown` one too: the serial exists now).
    pub(crate) fn evict(&self, serial: &[u8]) {
        self.evict_unless(serial, None);
    }

    /// Forgets the responses for `serial` that do not say `current`, and any `unknown` one:
    /// a response signed after the change it says already is as good as a new one, and
    /// keeping it keeps it servable if the database goes away next.
    fn evict_unless(&self, serial: &[u8], current: Option<&CertStatus>) {
        self.unknown
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(serial);
        self.known
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove_unless(serial, |entry| Some(&entry.status) == current);
    }

    fn signing(&self) -> Arc<Pool> {
        self.signing
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn database_failed(&self, now: OffsetDateTime) {
        self.unreachable.store(true, Ordering::Relaxed);
        *self
            .last_failure
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(now);
    }

    fn database_answered(&self) {
        self.unreachable.store(false, Ordering::Relaxed);
    }

    /// Leave to ask the database: at once while it answers; while it does not, for one
    /// request at a time (holding the guard), and `Unavailable` for the others.
    fn may_ask_database(&self) -> Result<Option<tokio::sync::MutexGuard<'_, ()>>> {
        if !self.unreachable.load(Ordering::Relaxed) {
            return Ok(None);
        }
        self.probe
            .try_lock()
            .map(Some)
            .map_err(|_| Error::Unavailable("the database is unreachable".into()))
    }

    fn count_status(&self, status: &CertStatus) {
        let stats = &self.stats;
        self.count(match status {
            CertStatus::Good => &stats.good,
            CertStatus::Revoked { .. } => &stats.revoked,
            CertStatus::Unknown => &stats.unknown,
        });
    }
}

fn error(status: ResponseStatus) -> OcspAnswer {
    OcspAnswer {
        der: Bytes::from_static(ocsp::error_response(status)),
        cache: None,
    }
}

/// Whether `entry` may still be served at `now`: before its nextUpdate.
fn unexpired(entry: &Entry, now: OffsetDateTime) -> bool {
    entry
        .answer
        .cache
        .as_ref()
        .is_some_and(|f| now < f.next_update)
}

/// `good`, `unknown` or `revoked:{reason}`: what a stored response says, to tell whether it
/// still holds.
fn status_tag(status: &CertStatus) -> String {
    match status {
        CertStatus::Good => "good".into(),
        CertStatus::Unknown => "unknown".into(),
        CertStatus::Revoked { revoked_at, reason } => {
            format!(
                "revoked:{}:{}",
                revoked_at.unix_timestamp(),
                reason.unwrap_or(0)
            )
        }
    }
}

/// A certificate's status from its stored revocation state; `None` for a serial the CA
/// never issued.
fn cert_status(entry: Option<&RevokedEntry>) -> Result<CertStatus> {
    Ok(match entry {
        None => CertStatus::Unknown,
        Some(e) if e.status == CertificateStatus::Revoked => CertStatus::Revoked {
            revoked_at: e.revoked_at,
            reason: Some(
                RevocationReason::parse(e.reason.as_deref().unwrap_or("unspecified"))?.code(),
            )
            .filter(|code| *code != 0),
        },
        Some(_) => CertStatus::Good,
    })
}

impl Authority {
    /// Uses `limits` for the OCSP responder from now on (the default is
    /// [`OcspLimits::default`]): call before serving, as it empties the responder's memory.
    ///
    /// # Errors
    /// [`Error::Invalid`] for no signing thread.
    pub fn configure_ocsp(&self, limits: OcspLimits) -> Result<()> {
        if limits.signing_threads == 0 {
            return Err(Error::Invalid(
                "ocsp_signing_threads must be at least 1".into(),
            ));
        }
        let write = |cache: &RwLock<cache::Bounded>, cap| {
            *cache.write().unwrap_or_else(PoisonError::into_inner) = cache::Bounded::new(cap);
        };
        write(&self.ocsp.known, limits.cached_responses);
        write(&self.ocsp.unknown, limits.cached_unknown);
        *self
            .ocsp
            .signing
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(signing_pool(&limits));
        Ok(())
    }

    /// The pool that signs OCSP responses on the request path: how full it is, and for tests,
    /// a way to fill it.
    pub fn ocsp_signing(&self) -> Arc<Pool> {
        self.ocsp.signing()
    }

    /// Answers an OCSP request (DER): a successful response signed for the request's CA, or
    /// the error status RFC 6960 names: `malformedRequest` for what cannot be read,
    /// `unauthorized` for certificates of CAs this responder does not answer for (or of two
    /// CAs in one request, which no one key can answer), `tryLater` when the response must be
    /// signed and the signing pool is full, or the database is unavailable, `internalError`
    /// when something else fails.
    pub async fn ocsp_respond(&self, der: &[u8]) -> OcspAnswer {
        let stats = &self.ocsp.stats;
        self.ocsp.count(&stats.requests);
        let Ok(request) = Request::parse(der) else {
            self.ocsp.count(&stats.malformed);
            return error(ResponseStatus::MalformedRequest);
        };
        match self.ocsp_answer(&request).await {
            Ok(Some(answer)) => answer,
            Ok(None) => {
                self.ocsp.count(&stats.unauthorized);
                error(ResponseStatus::Unauthorized)
            }
            Err(Error::Unavailable(reason)) => {
                tracing::debug!(%reason, "OCSP responder without its database");
                self.ocsp.database_failed(self.now());
                self.ocsp.count(&stats.try_later);
                error(ResponseStatus::TryLater)
            }
            Err(Error::Busy(reason) | Error::KeyUnavailable(reason)) => {
                tracing::debug!(%reason, "OCSP responder busy, or its key's device away");
                self.ocsp.count(&stats.try_later);
                error(ResponseStatus::TryLater)
            }
            Err(e) => {
                tracing::warn!(error = %e, "OCSP responder failed");
                self.ocsp.count(&stats.internal_error);
                error(ResponseStatus::InternalError)
            }
        }
    }

    async fn ocsp_answer(&self, request: &Request) -> Result<Option<OcspAnswer>> {
        let cas = self.ocsp_cas().await?;
        let mut ca: Option<&Arc<ResponderCa>> = None;
        for id in request.cert_ids() {
            match (cas.iter().find(|c| c.hashes.matches(id)), ca) {
                (None, _) => return Ok(None),
                (Some(found), Some(seen)) if found.ca_id != seen.ca_id => return Ok(None),
                (Some(found), _) => ca = Some(found),
            }
        }
        let Some(ca) = ca else { return Ok(None) };
        if let ([id], None) = (request.cert_ids(), request.nonce()) {
            return self.shared_answer(ca, id).await.map(Some);
        }
        // A place first: a request refused costs no lookup.
        let admission = self.ocsp.signing().admit()?;
        let mut statuses = Vec::with_capacity(request.cert_ids().len());
        for id in request.cert_ids() {
            let status = self.ocsp_status(ca.ca_id, id).await?;
            self.ocsp.count_status(&status);
            statuses.push((id.clone(), status));
        }
        let der = self
            .ocsp_sign(admission, ca, statuses, request.nonce(), self.now())
            .await?;
        Ok(Some(OcspAnswer {
            der: der.into(),
            cache: None,
        }))
    }

    /// The status of the certificate `id` names, as the store holds it.
    async fn ocsp_status(&self, ca_id: CaId, id: &CertId) -> Result<CertStatus> {
        let entry = self
            .store
            .revocation_of(ca_id, &hex::encode(id.serial()))
            .await?;
        cert_status(entry.as_ref())
    }

    /// Signs a response of `ca` giving `statuses` as of `now`, on the signing pool in the place
    /// `admission` holds.
    async fn ocsp_sign(
        &self,
        admission: Admission,
        ca: &ResponderCa,
        statuses: Vec<(CertId, CertStatus)>,
        nonce: Option<&[u8]>,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>> {
        self.ocsp.count(&self.ocsp.stats.signed);
        let next_update = (now + ca.validity).min(ca.valid_until);
        let responder = ca.responder.clone();
        let nonce = nonce.map(<[u8]>::to_vec);
        admission
            .run(move || {
                let singles: Vec<SingleResponse<'_>> = statuses
                    .iter()
                    .map(|(cert_id, status)| SingleResponse {
                        cert_id,
                        status: *status,
                        this_update: now,
                        next_update,
                    })
                    .collect();
                ocsp::sign(
                    &ResponseData {
                        produced_at: now,
                        responses: &singles,
                        nonce: nonce.as_deref(),
                    },
                    &responder,
                )
            })
            .await?
            .map_err(Error::from)
    }

    /// The shareable response for `id`: from memory while it is not due for refresh, else the
    /// stored one if it still says what the store says, else signed now and kept. While the
    /// database is unreachable, the one in memory until it expires.
    async fn shared_answer(&self, ca: &ResponderCa, id: &CertId) -> Result<OcspAnswer> {
        let now = self.now();
        let stats = &self.ocsp.stats;
        let cached = self.ocsp.cached(id).filter(|e| e.signer == ca.source);
        if let Some(entry) = cached.as_ref().filter(|e| now < e.refresh_at) {
            self.ocsp.count(&stats.cache_hits);
            self.ocsp.count_status(&entry.status);
            return Ok(entry.answer.clone());
        }
        self.ocsp.count(&stats.cache_misses);
        let looked_up = match self.ocsp.may_ask_database() {
            Ok(_probe) => self.checked_answer(ca, id, cached.as_deref(), now).await,
            Err(e) => Err(e),
        };
        match looked_up {
            Ok(answer) => {
                self.ocsp.database_answered();
                Ok(answer)
            }
            Err(Error::Unavailable(reason)) => {
                self.ocsp.database_failed(now);
                let entry = cached
                    .filter(|e| unexpired(e, now))
                    .ok_or(Error::Unavailable(reason))?;
                self.ocsp.count(&stats.served_stale);
                self.ocsp.count_status(&entry.status);
                Ok(entry.answer.clone())
            }
            Err(e) => Err(e),
        }
    }

    /// The shareable response for `id` that memory could not give (`cached`, if any, is due
    /// for refresh): the stored one if it still says what the store says, else signed now and
    /// kept. When the signing pool is full, `cached` is served rather than `tryLater` if it
    /// still says what the store says and has not expired.
    async fn checked_answer(
        &self,
        ca: &ResponderCa,
        id: &CertId,
        cached: Option<&Entry>,
        now: OffsetDateTime,
    ) -> Result<OcspAnswer> {
        let stats = &self.ocsp.stats;
        let status = self.ocsp_status(ca.ca_id, id).await?;
        self.ocsp.count_status(&status);
        let tag = status_tag(&status);
        let serial = hex::encode(id.serial());
        let key = hex::encode(id.der());
        // Responses for serials never issued are not stored: anyone could fill the table.
        if status != CertStatus::Unknown {
            let stored = self.store.ocsp_response(ca.ca_id, &serial, &key).await?;
            if let Some(row) =
                stored.filter(|r| r.status == tag && r.signer == ca.source && now < r.refresh_at)
            {
                self.ocsp.count(&stats.stored_hits);
                return Ok(self.remember(id.clone(), status, &row));
            }
        }
        let admission = match self.ocsp.signing().admit() {
            Ok(admission) => admission,
            Err(busy) => {
                return cached
                    .filter(|e| e.status == status && unexpired(e, now))
                    .map(|e| e.answer.clone())
                    .ok_or(busy);
            }
        };
        let row = match self.presign(admission, ca, id, status, now).await {
            Ok(row) => row,
            // The key's device is away: the answer in memory says the same while it lasts.
            Err(e @ Error::KeyUnavailable(_)) => {
                return cached
                    .filter(|e| e.status == status && unexpired(e, now))
                    .map(|e| e.answer.clone())
                    .ok_or(e);
            }
            Err(e) => return Err(e),
        };
        if status != CertStatus::Unknown {
            self.store
                .put_ocsp_responses(std::slice::from_ref(&row))
                .await?;
        }
        Ok(self.remember(id.clone(), status, &row))
    }

    /// Signs the shareable response for `id` with `status` as of `now`, in the place
    /// `admission` holds.
    async fn presign(
        &self,
        admission: Admission,
        ca: &ResponderCa,
        id: &CertId,
        status: CertStatus,
        now: OffsetDateTime,
    ) -> Result<OcspResponseRow> {
        let next_update = (now + ca.validity).min(ca.valid_until);
        let der = self
            .ocsp_sign(admission, ca, vec![(id.clone(), status)], None, now)
            .await?;
        Ok(OcspResponseRow {
            ca_id: ca.ca_id,
            serial: hex::encode(id.serial()),
            cert_id: hex::encode(id.der()),
            status: status_tag(&status),
            signer: ca.source.clone(),
            this_update: now,
            // Half way, as RFC 5019 §6 suggests, so that caches never hold a stale one.
            refresh_at: now + (next_update - now) / 2,
            next_update,
            der,
        })
    }

    fn remember(&self, cert_id: CertId, status: CertStatus, row: &OcspResponseRow) -> OcspAnswer {
        let etag: String = hex::encode(&Sha256::digest(&row.der)[..16]);
        let answer = OcspAnswer {
            der: Bytes::from(row.der.clone()),
            cache: Some(Freshness {
                etag: etag.into(),
                this_update: row.this_update,
                next_update: row.next_update,
            }),
        };
        self.ocsp.keep(Entry {
            cert_id,
            answer: answer.clone(),
            refresh_at: row.refresh_at,
            status,
            signer: row.signer.clone(),
        });
        answer
    }

    /// The CAs the responder answers for, read at most [`crate::STALE_AFTER`] ago.
    async fn ocsp_cas(&self) -> Result<Arc<Vec<Arc<ResponderCa>>>> {
        let fresh = |state: &OcspState| {
            state
                .cas
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .filter(|(read, _)| read.elapsed() < crate::STALE_AFTER)
                .map(|(_, cas)| cas.clone())
        };
        if let Some(cas) = fresh(&self.ocsp) {
            return Ok(cas);
        }
        let previous = self
            .ocsp
            .cas
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(_, cas)| cas.clone());
        // A reload waits as long as the database does, which is long when it is unreachable:
        // while one runs, the others answer for the CAs read before.
        let _one_at_a_time = match (self.ocsp.loading.try_lock(), &previous) {
            (Ok(guard), _) => guard,
            (Err(_), Some(previous)) => return Ok(previous.clone()),
            (Err(_), None) => self.ocsp.loading.lock().await,
        };
        if let Some(cas) = fresh(&self.ocsp) {
            return Ok(cas);
        }
        let before: HashMap<CaId, Arc<ResponderCa>> = previous
            .iter()
            .flat_map(|cas| cas.iter().map(|c| (c.ca_id, c.clone())))
            .collect();
        // Success here does not clear an outage: reading the CAs may work while a lookup,
        // which also writes, does not (SQLite locked by another writer).
        let cas = match self.load_responders(&before).await {
            Ok(cas) => Arc::new(cas),
            Err(Error::Unavailable(reason)) => {
                self.ocsp.database_failed(self.now());
                // Kept as if read now, so that the database is asked again a while later,
                // not by every request.
                previous.ok_or(Error::Unavailable(reason))?
            }
            Err(e) => return Err(e),
        };
        *self
            .ocsp
            .cas
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), cas.clone()));
        Ok(cas)
    }

    /// The responders of the CAs that answer OCSP, reusing those in `before` that have not
    /// changed. A CA whose responder cannot be made is left out, unless the database is
    /// unavailable, which fails the whole.
    async fn load_responders(
        &self,
        before: &HashMap<CaId, Arc<ResponderCa>>,
    ) -> Result<Vec<Arc<ResponderCa>>> {
        let mut cas = Vec::new();
        for ca in self.store.cas().await? {
            if !ca.revocation.ocsp_enabled || ca.key_id.is_none() {
                continue;
            }
            match self.responder_for(&ca, before.get(&ca.id)).await {
                Ok(responder) => cas.push(responder),
                Err(e @ Error::Unavailable(_)) => return Err(e),
                Err(e) => {
                    tracing::warn!(ca = %ca.name, error = %e, "no OCSP responder for this CA");
                }
            }
        }
        Ok(cas)
    }

    /// CA `ca`'s responder: its own key, or its delegated responder certificate, issued (or
    /// replaced, near its end) here when it has none.
    async fn responder_for(
        &self,
        ca: &CaRow,
        before: Option<&Arc<ResponderCa>>,
    ) -> Result<Arc<ResponderCa>> {
        let now = self.now();
        let delegated = ca.revocation.ocsp_signer == "delegated";
        let mut responder_cert = None;
        if delegated {
            if let Some(id) = ca.ocsp_responder_id {
                responder_cert = self.store.certificate(id).await?.filter(|c| {
                    c.status == CertificateStatus::Valid && c.cert.not_after - now > ROLLOVER
                });
            }
            if responder_cert.is_none() {
                responder_cert = Some(self.issue_responder(ca).await?);
            }
        }
        let source = hex::encode(
            &Sha256::digest(format!(
                "{}|{}|{}",
                ca.cert.fingerprint_sha256,
                ca.revocation.ocsp_validity_hours,
                responder_cert
                    .as_ref()
                    .map_or("ca", |c| c.cert.fingerprint_sha256.as_str())
            ))[..16],
        );
        if let Some(before) = before.filter(|b| b.source == source) {
            return Ok(before.clone());
        }
        let (key_id, certificate, valid_until) = match &responder_cert {
            Some(c) => (
                c.key_id.ok_or_else(|| {
                    Error::Internal(format!("responder certificate {} has no key", c.id))
                })?,
                Some(c.cert.der.clone()),
                c.cert.not_after.min(ca.cert.not_after),
            ),
            None => (
                ca.key_id
                    .ok_or_else(|| Error::Internal(format!("CA '{}' has no key", ca.name)))?,
                None,
                ca.cert.not_after,
            ),
        };
        let info = pki::inspect::Certificate::parse(&ca.cert.der)?;
        Ok(Arc::new(ResponderCa {
            ca_id: ca.id,
            hashes: IssuerKeyHashes::new(&info)?,
            responder: Arc::new(self.ocsp_responder(key_id, certificate).await?),
            validity: Duration::hours(ca.revocation.ocsp_validity_hours),
            valid_until,
            source,
        }))
    }

    /// Issues CA `ca` a delegated responder certificate (id-kp-OCSPSigning,
    /// id-pkix-ocsp-nocheck, [`RESPONDER_DAYS`]) through the issuance pipeline, and makes it
    /// the CA's responder.
    async fn issue_responder(&self, ca: &CaRow) -> Result<store::CertificateRow> {
        let template = self
            .templates()
            .await?
            .into_iter()
            .find(|t| t.builtin && t.spec.name == RESPONDER_TEMPLATE)
            .ok_or_else(|| {
                Error::Internal(format!(
                    "the built-in '{RESPONDER_TEMPLATE}' template is gone"
                ))
            })?;
        let mut subject = pki::DistinguishedName::new();
        subject.set(
            NameAttribute::CommonName,
            &format!("{} OCSP Responder", ca.name),
        )?;
        let system = Principal::local("system");
        let issued = self
            .issue(
                &system,
                IssueRequest {
                    ca_id: Some(ca.id),
                    subject,
                    sans: Vec::new(),
                    key: KeySource::Generate(Some(KeyType::EcP256)),
                    template_id: Some(template.id),
                    validity_days: Some(RESPONDER_DAYS),
                    key_usage: Some(vec![KeyUsage::DigitalSignature]),
                    extended_key_usage: Some(vec![ExtendedKeyUsage::OcspSigning]),
                    description: Some(format!("OCSP responder of CA '{}'", ca.name)),
                    source: CertificateSource::System,
                    renewed_from: ca.ocsp_responder_id,
                },
            )
            .await?;
        let mut tx = self.store.begin_write().await?;
        tx.set_ocsp_responder(ca.id, issued.certificate.id).await?;
        tx.audit(&self.entry_by(
            &system,
            Event::new(
                "ocsp_responder_issued",
                "ca",
                ca.id,
                format!(
                    "'{}': responder certificate {} (serial {})",
                    ca.name, issued.certificate.id, issued.certificate.cert.serial
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(issued.certificate)
    }

    /// Evicts the responses of certificates whose revocation changed (here or on another
    /// node) since the last look, and on the publishing node signs their stored responses
    /// again.
    pub(crate) async fn ocsp_watch(&self, watch: &mut OcspWatch, publishing: bool) -> Result<()> {
        let changes = self
            .store
            .revocations_since(watch.since - WATCH_OVERLAP, BATCH)
            .await?;
        for (ca_id, entry, at) in changes {
            let serial = entry.serial.clone();
            watch.since = watch.since.max(at);
            if watch.seen.insert((ca_id, serial.clone()), at) == Some(at) {
                continue;
            }
            let Ok(bytes) = hex::decode(&serial) else {
                continue;
            };
            let current = cert_status(Some(&entry)).ok();
            self.ocsp.evict_unless(&bytes, current.as_ref());
            if publishing {
                let stored = self.store.ocsp_responses_for(ca_id, &serial).await?;
                self.resign(&stored).await?;
            }
        }
        let horizon = watch.since - WATCH_OVERLAP;
        watch.seen.retain(|_, at| *at >= horizon);
        Ok(())
    }

    /// Signs stored responses due for refresh again (on the publishing node). Returns how
    /// many it signed.
    pub(crate) async fn ocsp_refresh(&self) -> Result<usize> {
        let due = self.store.ocsp_responses_due(self.now(), BATCH).await?;
        self.resign(&due).await?;
        Ok(due.len())
    }

    /// The `ocsp_refresh` job: the stored responses due for refresh, a few batches at most
    /// (responses of a CA that no longer answers stay due, and must not keep it busy).
    pub(crate) async fn ocsp_refresh_job(&self) -> Result<String> {
        let mut signed = 0;
        for _ in 0..10 {
            let batch = self.ocsp_refresh().await?;
            signed += batch;
            if usize::try_from(BATCH).is_ok_and(|full| batch < full) {
                break;
            }
        }
        Ok(format!(
            "{signed} OCSP responses due for refresh signed again"
        ))
    }

    async fn resign(&self, rows: &[OcspResponseRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let cas = self.ocsp_cas().await?;
        let now = self.now();
        let mut fresh = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(ca) = cas.iter().find(|c| c.ca_id == row.ca_id) else {
                continue;
            };
            let id = hex::decode(&row.cert_id)
                .ok()
                .and_then(|der| CertId::from_der(&der).ok())
                .ok_or_else(|| Error::Internal(format!("stored CertID '{}'", row.cert_id)))?;
            let status = self.ocsp_status(ca.ca_id, &id).await?;
            // Background work: it waits for its place rather than being refused.
            let admission = self.ocsp.signing().admit_waiting().await?;
            fresh.push(self.presign(admission, ca, &id, status, now).await?);
        }
        self.store.put_ocsp_responses(&fresh).await?;
        Ok(())
    }

    /// What the responder answered since this process started.
    pub fn ocsp_stats(&self) -> OcspStats {
        let s = &self.ocsp.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        OcspStats {
            requests: get(&s.requests),
            good: get(&s.good),
            revoked: get(&s.revoked),
            unknown: get(&s.unknown),
            malformed: get(&s.malformed),
            unauthorized: get(&s.unauthorized),
            internal_error: get(&s.internal_error),
            try_later: get(&s.try_later),
            cache_hits: get(&s.cache_hits),
            cache_misses: get(&s.cache_misses),
            stored_hits: get(&s.stored_hits),
            signed: get(&s.signed),
            served_stale: get(&s.served_stale),
        }
    }

    /// The database as the OCSP responder last found it.
    pub fn ocsp_database(&self) -> OcspDatabase {
        OcspDatabase {
            reachable: !self.ocsp.unreachable.load(Ordering::Relaxed),
            last_failure: *self
                .ocsp
                .last_failure
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// How many responses this process keeps in memory.
    pub fn ocsp_cached(&self) -> usize {
        [&self.ocsp.known, &self.ocsp.unknown]
            .into_iter()
            .map(|cache| cache.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// How many serials never issued this process keeps an `unknown` response for: at most
    /// [`OcspLimits::cached_unknown`].
    pub fn ocsp_cached_unknown(&self) -> usize {
        self.ocsp
            .unknown
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .serials()
    }
}
