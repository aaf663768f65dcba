//! PKCS#11 tokens at run time: the loaded modules, a pool of logged-in sessions per token, and
//! the few operations certmint asks of a token. Every function here blocks on the module and
//! runs on a blocking thread (see `Authority::on_token`).
//!
//! A module is initialized once per process, so the providers on one module share it. When a
//! token goes away, the sessions, object handles and even the module's view of its slots
//! stay broken after it comes back (SoftHSM keeps its token list from `C_Initialize`), so
//! recovery drops every session of the module, finalizes it and initializes it again, at
//! most once per [`RETRY_AFTER`]; in between, the token's callers are told at once that it is
//! unavailable.
//!
//! A session is checked out of its pool only by a caller holding the module's read lock, and
//! the reset takes the write lock: so no session is in use, or closed on a module initialized
//! again (where its handle may name someone else's session), while a module resets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use pki::KeyType;
use pki::device::KeyParts;
use zeroize::Zeroizing;

/// How long a token that failed is reported unavailable before it is tried again.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What went wrong on a token.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum TokenError {
    /// The token, its module or the key cannot be reached now; it may come back.
    #[error("{0}")]
    Unavailable(String),
    /// Every session is in use, and none came free in time.
    #[error("{0}")]
    Busy(String),
    /// The token refused what was asked (a mechanism it lacks, a wrong PIN, …).
    #[error("{0}")]
    Refused(String),
}

type TokenResult<T> = Result<T, TokenError>;

/// What an operation on a session met.
enum OpError {
    /// The module said no.
    Ck(CkError),
    /// The key is not in the token (any more).
    KeyMissing,
    /// What the token gave back does not make a key certmint uses.
    Invalid(String),
}

impl From<CkError> for OpError {
    fn from(e: CkError) -> Self {
        Self::Ck(e)
    }
}

impl From<pki::Error> for OpError {
    fn from(e: pki::Error) -> Self {
        Self::Invalid(e.to_string())
    }
}

type OpResult<T> = Result<T, OpError>;

/// Whether `e` says the token, the session or the login is gone, rather than that the request
/// was wrong: those are cured by starting again on a fresh module.
fn is_gone(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::GeneralError
                | RvError::DeviceError
                | RvError::DeviceRemoved
                | RvError::DeviceMemory
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::CryptokiNotInitialized
                | RvError::SlotIdInvalid
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid
                | RvError::FunctionFailed,
            _
        )
    )
}

fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("{function:?} failed: {rv}"),
        other => other.to_string(),
    }
}

/// How a provider finds its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenRef {
    /// By `CKA_LABEL` of the token.
    Label(String),
    /// By slot id.
    Slot(u64),
}

impl std::fmt::Display for TokenRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Label(label) => write!(f, "token '{label}'"),
            Self::Slot(id) => write!(f, "slot {id}"),
        }
    }
}

struct ModuleState {
    pkcs11: Option<Pkcs11>,
    /// Why the last load failed.
    failure: Option<String>,
}

/// A loaded PKCS#11 module, shared by the tokens in it.
pub(crate) struct Module {
    path: PathBuf,
    state: RwLock<ModuleState>,
    tokens: Mutex<Vec<Weak<Token>>>,
    reset_at: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Loads and initializes the module at `path`; why not, in words that name no path (they
/// reach whoever asked for a signature), the path going to the log.
fn load(path: &Path) -> Result<Pkcs11, String> {
    let failed = |why: String| {
        tracing::warn!(module = %path.display(), "{why}");
        why
    };
    let pkcs11 =
        Pkcs11::new(path).map_err(|e| failed(format!("cannot load the PKCS#11 module: {e}")))?;
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(pkcs11),
        Err(e) => Err(failed(format!(
            "cannot initialize the PKCS#11 module: {}",
            describe(&e)
        ))),
    }
}

impl Module {
    fn new(path: &Path) -> Self {
        let (pkcs11, failure) = match load(path) {
            Ok(p) => (Some(p), None),
            Err(why) => (None, Some(why)),
        };
        Self {
            path: path.to_owned(),
            state: RwLock::new(ModuleState { pkcs11, failure }),
            tokens: Mutex::new(Vec::new()),
            reset_at: Mutex::new(None),
        }
    }

    /// Drops every session of every token on this module, finalizes it and loads it again,
    /// unless that was done less than [`RETRY_AFTER`] ago. Returns whether it did.
    fn reset(&self) -> bool {
        {
            let mut at = lock(&self.reset_at);
            if at.is_some_and(|t| t.elapsed() < RETRY_AFTER) {
                return false;
            }
            *at = Some(Instant::now());
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let tokens: Vec<Arc<Token>> = lock(&self.tokens)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for token in &tokens {
            let mut pool = lock(&token.pool);
            pool.idle.clear();
            pool.open = 0;
            token.freed.notify_all();
        }
        if let Some(old) = state.pkcs11.take()
            && let Err(e) = old.finalize()
        {
            tracing::warn!(module = %self.path.display(), "C_Finalize: {}", describe(&e));
        }
        match load(&self.path) {
            Ok(p) => {
                state.pkcs11 = Some(p);
                state.failure = None;
            }
            Err(why) => state.failure = Some(why),
        }
        tracing::info!(module = %self.path.display(), "PKCS#11 module initialized again");
        true
    }
}

/// Modules by path, for the process: a second `C_Initialize` of a module fails.
#[derive(Default)]
pub(crate) struct Modules {
    loaded: Mutex<HashMap<PathBuf, Arc<Module>>>,
}

impl std::fmt::Debug for Modules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Modules")
    }
}

impl Modules {
    /// The module at `path`, loaded on first use.
    pub(crate) fn get(&self, path: &Path) -> Arc<Module> {
        lock(&self.loaded)
            .entry(path.to_owned())
            .or_insert_with(|| Arc::new(Module::new(path)))
            .clone()
    }
}

/// A session with the object handles it found, by `CKA_ID`.
struct Pooled {
    session: Session,
    slot: Slot,
    handles: HashMap<Vec<u8>, ObjectHandle>,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Pooled>,
    /// Sessions open, idle or checked out.
    open: usize,
    /// When the token last failed, and why; cleared by the next success.
    broken: Option<(Instant, String)>,
}

/// What a token says about itself.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// The token's label.
    pub label: String,
    /// Its maker.
    pub manufacturer: String,
    /// Its model.
    pub model: String,
    /// Its serial number.
    pub serial_number: String,
    /// The slot it is in.
    pub slot_id: u64,
    /// The key types it can make and sign with, of those certmint uses.
    pub key_types: Vec<String>,
}

/// A private key found in a token.
#[derive(Debug, Clone)]
pub(crate) struct FoundKey {
    pub(crate) object_id: Vec<u8>,
    pub(crate) label: String,
    pub(crate) key_type: KeyType,
    pub(crate) public_key: Vec<u8>,
}

/// A key's protection as the token reports it.
#[derive(Debug, Clone, Copy)]
pub struct Protection {
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`.
    pub extractable: bool,
    /// `CKA_ALWAYS_SENSITIVE`.
    pub always_sensitive: bool,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: bool,
    /// `CKA_LOCAL`: made in the token.
    pub local: bool,
}

/// Counters of a token's use since start.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenCounters {
    /// Signatures made.
    pub signatures: u64,
    /// Operations that failed.
    pub failures: u64,
    /// Times the token was found again after it failed.
    pub recoveries: u64,
}

/// The state of a token as `GET /system/hsm-status` shows it.
#[derive(Debug, Clone)]
pub struct TokenState {
    /// Whether its last operation worked.
    pub available: bool,
    /// Why not, when it failed.
    pub last_error: Option<String>,
    /// Sessions open.
    pub sessions_open: usize,
    /// Of those, idle.
    pub sessions_idle: usize,
    /// The most it opens.
    pub max_sessions: usize,
    /// Counters.
    pub counters: TokenCounters,
}

/// One provider's token: where it is, its PIN and its sessions.
pub(crate) struct Token {
    name: String,
    module: Arc<Module>,
    find: TokenRef,
    pin: Zeroizing<String>,
    max_sessions: usize,
    wait: Duration,
    pool: Mutex<Pool>,
    freed: Condvar,
    signatures: AtomicU64,
    failures: AtomicU64,
    recoveries: AtomicU64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("find", &self.find)
            .finish_non_exhaustive()
    }
}

const KEY_ID_LEN: usize = 16;

impl Token {
    /// The token `find` in `module`, for provider `name`, with at most `max_sessions` sessions
    /// and callers waiting at most `wait` for one.
    pub(crate) fn new(
        name: String,
        module: Arc<Module>,
        find: TokenRef,
        pin: Zeroizing<String>,
        max_sessions: usize,
        wait: Duration,
    ) -> Arc<Self> {
        let token = Arc::new(Self {
            name,
            module: module.clone(),
            find,
            pin,
            max_sessions: max_sessions.max(1),
            wait,
            pool: Mutex::new(Pool::default()),
            freed: Condvar::new(),
            signatures: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
        });
        let mut tokens = lock(&module.tokens);
        tokens.retain(|t| t.strong_count() > 0);
        tokens.push(Arc::downgrade(&token));
        token
    }

    /// How the token is doing.
    pub(crate) fn state(&self) -> TokenState {
        let pool = lock(&self.pool);
        TokenState {
            available: pool.broken.is_none(),
            last_error: pool.broken.as_ref().map(|(_, why)| why.clone()),
            sessions_open: pool.open,
            sessions_idle: pool.idle.len(),
            max_sessions: self.max_sessions,
            counters: TokenCounters {
                signatures: self.signatures.load(Ordering::Relaxed),
                failures: self.failures.load(Ordering::Relaxed),
                recoveries: self.recoveries.load(Ordering::Relaxed),
            },
        }
    }

    /// Runs `op` on a session of the token; when the token is gone, starts again once on a
    /// fresh module.
    fn with_session<T>(&self, op: impl Fn(&Pkcs11, &mut Pooled) -> OpResult<T>) -> TokenResult<T> {
        if let Some((at, why)) = lock(&self.pool).broken.clone()
            && at.elapsed() < RETRY_AFTER
        {
            return Err(TokenError::Unavailable(why));
        }
        let outcome = match self.attempt(&op) {
            Err(TokenError::Unavailable(_)) if self.module.reset() => self.attempt(&op),
            other => other,
        };
        let mut pool = lock(&self.pool);
        match &outcome {
            Err(TokenError::Unavailable(why)) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                pool.broken = Some((Instant::now(), why.clone()));
            }
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {
                if pool.broken.take().is_some() {
                    self.recoveries.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(provider = %self.name, "HSM token available again");
                }
            }
        }
        outcome
    }

    fn attempt<T>(&self, op: &impl Fn(&Pkcs11, &mut Pooled) -> OpResult<T>) -> TokenResult<T> {
        let state = self
            .module
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let pkcs11 = state.pkcs11.as_ref().ok_or_else(|| {
            TokenError::Unavailable(format!(
                "HSM provider '{}' {}",
                self.name,
                state
                    .failure
                    .as_deref()
                    .unwrap_or("has no PKCS#11 module loaded")
            ))
        })?;
        let mut pooled = self.checkout(pkcs11)?;
        let result = op(pkcs11, &mut pooled);
        let gone = match result {
            Ok(value) => {
                self.checkin(pooled);
                return Ok(value);
            }
            Err(OpError::Ck(e)) if is_gone(&e) => describe(&e),
            Err(OpError::KeyMissing) => "the key is not in the token".to_owned(),
            Err(OpError::Ck(e)) => {
                self.checkin(pooled);
                return Err(TokenError::Refused(format!(
                    "the {} of HSM provider '{}' refused: {}",
                    self.find,
                    self.name,
                    describe(&e)
                )));
            }
            Err(OpError::Invalid(why)) => {
                self.checkin(pooled);
                return Err(TokenError::Refused(format!(
                    "the {} of HSM provider '{}' gave what certmint cannot use: {why}",
                    self.find, self.name
                )));
            }
        };
        drop(pooled);
        let mut pool = lock(&self.pool);
        pool.open = pool.open.saturating_sub(1);
        self.freed.notify_one();
        Err(TokenError::Unavailable(format!(
            "the {} of HSM provider '{}' cannot be used: {gone}",
            self.find, self.name
        )))
    }

    fn checkin(&self, pooled: Pooled) {
        lock(&self.pool).idle.push(pooled);
        self.freed.notify_one();
    }

    /// An idle session, or a new one while fewer than the most are open, or the first to come
    /// free within the wait.
    fn checkout(&self, pkcs11: &Pkcs11) -> TokenResult<Pooled> {
        let started = Instant::now();
        let mut pool = lock(&self.pool);
        loop {
            if let Some(pooled) = pool.idle.pop() {
                return Ok(pooled);
            }
            if pool.open < self.max_sessions {
                pool.open += 1;
                drop(pool);
                return self.open_session(pkcs11).inspect_err(|_| {
                    let mut pool = lock(&self.pool);
                    pool.open = pool.open.saturating_sub(1);
                    self.freed.notify_one();
                });
            }
            let left = self.wait.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(TokenError::Busy(format!(
                    "all {} sessions of HSM provider '{}' are busy, and none came free within {} s",
                    self.max_sessions,
                    self.name,
                    self.wait.as_secs()
                )));
            }
            pool = self
                .freed
                .wait_timeout(pool, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn slot(&self, pkcs11: &Pkcs11) -> TokenResult<Slot> {
        let gone = |e: CkError| {
            TokenError::Unavailable(format!(
                "cannot list the slots of HSM provider '{}': {}",
                self.name,
                describe(&e)
            ))
        };
        for slot in pkcs11.get_slots_with_token().map_err(gone)? {
            let found = match &self.find {
                TokenRef::Slot(id) => slot.id() == *id,
                TokenRef::Label(label) => pkcs11
                    .get_token_info(slot)
                    .is_ok_and(|info| info.label() == label),
            };
            if found {
                return Ok(slot);
            }
        }
        Err(TokenError::Unavailable(format!(
            "HSM provider '{}' finds no {} in its module",
            self.name, self.find
        )))
    }

    fn open_session(&self, pkcs11: &Pkcs11) -> TokenResult<Pooled> {
        let slot = self.slot(pkcs11)?;
        let session = pkcs11.open_rw_session(slot).map_err(|e| {
            TokenError::Unavailable(format!(
                "cannot open a session on the {} of HSM provider '{}': {}",
                self.find,
                self.name,
                describe(&e)
            ))
        })?;
        let pin = AuthPin::new(self.pin.as_str().into());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(Pooled {
                session,
                slot,
                handles: HashMap::new(),
            }),
            Err(e @ CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLocked, _)) => {
                Err(TokenError::Refused(format!(
                    "HSM provider '{}' cannot log in to its {}: {}",
                    self.name,
                    self.find,
                    describe(&e)
                )))
            }
            Err(e) => Err(TokenError::Unavailable(format!(
                "HSM provider '{}' cannot log in to its {}: {}",
                self.name,
                self.find,
                describe(&e)
            ))),
        }
    }

    /// What the token says about itself, from a logged-in session (which proves the PIN).
    pub(crate) fn info(&self) -> TokenResult<TokenInfo> {
        self.with_session(|pkcs11, s| {
            let info = pkcs11.get_token_info(s.slot)?;
            let mechanisms = pkcs11.get_mechanism_list(s.slot)?;
            let has = |m: &Mechanism| mechanisms.contains(&m.mechanism_type());
            let key_types = KeyType::ALL
                .into_iter()
                .filter(|k| has(&generator(*k)) && has(&mechanism(*k)))
                .map(KeyType::label)
                .collect();
            Ok(TokenInfo {
                label: info.label().to_owned(),
                manufacturer: info.manufacturer_id().to_owned(),
                model: info.model().to_owned(),
                serial_number: info.serial_number().to_owned(),
                slot_id: s.slot.id(),
                key_types,
            })
        })
    }

    /// Generates a key pair of `key_type` labelled `label`: the private key sensitive, never
    /// extractable and for signing only. Returns its `CKA_ID` and public key.
    pub(crate) fn generate(&self, key_type: KeyType, label: &str) -> TokenResult<FoundKey> {
        let object_id = new_object_id()?;
        let (mut public, mut private) = templates(&object_id, label);
        public.push(Attribute::Verify(true));
        match key_type {
            KeyType::Rsa { bits } => {
                public.push(Attribute::ModulusBits(u64::from(bits).into()));
                public.push(Attribute::PublicExponent(vec![1, 0, 1]));
            }
            _ => {
                let params = pki::device::ec_params(key_type).map_err(refused)?;
                public.push(Attribute::EcParams(params));
            }
        }
        private.extend([Attribute::Sensitive(true), Attribute::Extractable(false)]);
        let public_key = self.with_session(|_, s| {
            let (public_handle, _) =
                s.session
                    .generate_key_pair(&generator(key_type), &public, &private)?;
            public_key_of(&s.session, public_handle, key_type)
        })?;
        Ok(FoundKey {
            object_id,
            label: label.to_owned(),
            key_type,
            public_key,
        })
    }

    /// Puts a software key into the token, sensitive and not extractable; returns its `CKA_ID`.
    pub(crate) fn import(
        &self,
        key_type: KeyType,
        parts: &KeyParts,
        label: &str,
    ) -> TokenResult<Vec<u8>> {
        let object_id = new_object_id()?;
        let (mut public, mut private) = templates(&object_id, label);
        public.extend([
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Verify(true),
        ]);
        private.extend([
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
        ]);
        match parts {
            KeyParts::Rsa(p) => {
                let [n, e, d, p1, p2, e1, e2, c] = p;
                for template in [&mut public, &mut private] {
                    template.extend([
                        Attribute::KeyType(CkKeyType::RSA),
                        Attribute::Modulus(n.to_vec()),
                        Attribute::PublicExponent(e.to_vec()),
                    ]);
                }
                private.extend([
                    Attribute::PrivateExponent(d.to_vec()),
                    Attribute::Prime1(p1.to_vec()),
                    Attribute::Prime2(p2.to_vec()),
                    Attribute::Exponent1(e1.to_vec()),
                    Attribute::Exponent2(e2.to_vec()),
                    Attribute::Coefficient(c.to_vec()),
                ]);
            }
            KeyParts::Ec {
                params,
                value,
                point,
            } => {
                let ck_type = if key_type == KeyType::Ed25519 {
                    CkKeyType::EC_EDWARDS
                } else {
                    CkKeyType::EC
                };
                for template in [&mut public, &mut private] {
                    template.extend([
                        Attribute::KeyType(ck_type),
                        Attribute::EcParams(params.clone()),
                    ]);
                }
                public.push(Attribute::EcPoint(point.clone()));
                private.push(Attribute::Value(value.to_vec()));
            }
        }
        let created = self.with_session(|_, s| {
            let private_handle = s.session.create_object(&private)?;
            if let Err(e) = s.session.create_object(&public) {
                let _ = s.session.destroy_object(private_handle);
                return Err(e.into());
            }
            Ok(())
        });
        wipe(&mut private);
        created.map(|()| object_id)
    }

    /// Every private key in the token that signs, with its public key.
    pub(crate) fn keys(&self) -> TokenResult<Vec<FoundKey>> {
        self.with_session(|_, s| {
            let mut found = Vec::new();
            let handles = s.session.find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Sign(true),
            ])?;
            for handle in handles {
                let attributes = s.session.get_attributes(
                    handle,
                    &[
                        AttributeType::Id,
                        AttributeType::Label,
                        AttributeType::KeyType,
                    ],
                )?;
                let mut object_id = None;
                let mut label = String::new();
                let mut ck_type = None;
                for a in attributes {
                    match a {
                        Attribute::Id(id) => object_id = Some(id),
                        Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                        Attribute::KeyType(t) => ck_type = Some(t),
                        _ => {}
                    }
                }
                let Some(object_id) = object_id.filter(|id| !id.is_empty()) else {
                    continue;
                };
                let Some(public_handle) = s
                    .session
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PUBLIC_KEY),
                        Attribute::Id(object_id.clone()),
                    ])?
                    .first()
                    .copied()
                else {
                    continue;
                };
                let Some(key_type) =
                    ck_type.and_then(|t| token_key_type(&s.session, public_handle, t))
                else {
                    continue;
                };
                if let Ok(public_key) = public_key_of(&s.session, public_handle, key_type) {
                    found.push(FoundKey {
                        object_id,
                        label,
                        key_type,
                        public_key,
                    });
                }
            }
            Ok(found)
        })
    }

    /// The protection flags of private key `object_id`.
    pub(crate) fn protection(&self, object_id: &[u8]) -> TokenResult<Option<Protection>> {
        self.with_session(|_, s| {
            let Some(handle) = find_private(s, object_id)? else {
                return Ok(None);
            };
            let attributes = s.session.get_attributes(
                handle,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                    AttributeType::Local,
                ],
            )?;
            let mut p = Protection {
                sensitive: false,
                extractable: true,
                always_sensitive: false,
                never_extractable: false,
                local: false,
            };
            for a in attributes {
                match a {
                    Attribute::Sensitive(v) => p.sensitive = v,
                    Attribute::Extractable(v) => p.extractable = v,
                    Attribute::AlwaysSensitive(v) => p.always_sensitive = v,
                    Attribute::NeverExtractable(v) => p.never_extractable = v,
                    Attribute::Local(v) => p.local = v,
                    _ => {}
                }
            }
            Ok(Some(p))
        })
    }

    /// Destroys the private and public key objects `object_id`; returns how many went.
    pub(crate) fn destroy(&self, object_id: &[u8]) -> TokenResult<usize> {
        self.with_session(|_, s| {
            let handles = s
                .session
                .find_objects(&[Attribute::Id(object_id.to_vec())])?;
            for handle in &handles {
                s.session.destroy_object(*handle)?;
            }
            s.handles.remove(object_id);
            Ok(handles.len())
        })
    }

    /// Signs `message` with private key `object_id` of `key_type`; the signature as X.509
    /// carries it.
    pub(crate) fn sign(
        &self,
        object_id: &[u8],
        key_type: KeyType,
        message: &[u8],
    ) -> TokenResult<Vec<u8>> {
        let input = pki::device::to_be_signed(key_type, message);
        let mechanism = mechanism(key_type);
        let raw = self.with_session(|_, s| {
            let handle = match s.handles.get(object_id) {
                Some(handle) => *handle,
                None => {
                    let handle = find_private(s, object_id)?.ok_or(OpError::KeyMissing)?;
                    s.handles.insert(object_id.to_vec(), handle);
                    handle
                }
            };
            let signature = s
                .session
                .sign(&mechanism, handle, &input)
                .inspect_err(|_| {
                    s.handles.remove(object_id);
                })?;
            Ok(pki::device::x509_signature(key_type, signature)?)
        })?;
        self.signatures.fetch_add(1, Ordering::Relaxed);
        Ok(raw)
    }
}

fn refused(e: pki::Error) -> TokenError {
    TokenError::Refused(e.to_string())
}

/// Overwrites the secret parts of a private key template.
fn wipe(template: &mut [Attribute]) {
    use zeroize::Zeroize;
    for attribute in template {
        if let Attribute::PrivateExponent(v)
        | Attribute::Prime1(v)
        | Attribute::Prime2(v)
        | Attribute::Exponent1(v)
        | Attribute::Exponent2(v)
        | Attribute::Coefficient(v)
        | Attribute::Value(v) = attribute
        {
            v.zeroize();
        }
    }
}

fn new_object_id() -> TokenResult<Vec<u8>> {
    pki::random::bytes::<KEY_ID_LEN>()
        .map(|id| id.to_vec())
        .map_err(|e| TokenError::Refused(format!("no key id: {e}")))
}

/// The attributes both halves of a new key pair share, then those of a CA's private key: in
/// the token, its own, for signing and nothing else.
fn templates(object_id: &[u8], label: &str) -> (Vec<Attribute>, Vec<Attribute>) {
    let common = [
        Attribute::Token(true),
        Attribute::Id(object_id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let mut public = common.to_vec();
    public.extend([
        Attribute::Private(false),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
    ]);
    let mut private = common.to_vec();
    private.extend([
        Attribute::Private(true),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]);
    (public, private)
}

fn generator(key_type: KeyType) -> Mechanism<'static> {
    match key_type {
        KeyType::Rsa { .. } => Mechanism::RsaPkcsKeyPairGen,
        KeyType::EcP256 | KeyType::EcP384 => Mechanism::EccKeyPairGen,
        KeyType::Ed25519 => Mechanism::EccEdwardsKeyPairGen,
    }
}

/// The mechanism a key of `key_type` signs with, over `pki::device::to_be_signed`.
fn mechanism(key_type: KeyType) -> Mechanism<'static> {
    match key_type {
        KeyType::Rsa { .. } => Mechanism::Sha256RsaPkcs,
        KeyType::EcP256 | KeyType::EcP384 => Mechanism::Ecdsa,
        KeyType::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
    }
}

fn find_private(s: &Pooled, object_id: &[u8]) -> OpResult<Option<ObjectHandle>> {
    Ok(s.session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(object_id.to_vec()),
        ])?
        .first()
        .copied())
}

/// The certmint key type of a token key of type `ck_type` whose public key is `handle`.
fn token_key_type(session: &Session, handle: ObjectHandle, ck_type: CkKeyType) -> Option<KeyType> {
    if ck_type == CkKeyType::RSA {
        let modulus = session
            .get_attributes(handle, &[AttributeType::Modulus])
            .ok()?
            .into_iter()
            .find_map(|a| match a {
                Attribute::Modulus(m) => Some(m),
                _ => None,
            })?;
        let bits = u32::try_from(modulus.len() * 8).ok()?;
        return KeyType::from_label(&format!("RSA {bits}")).ok();
    }
    let params = session
        .get_attributes(handle, &[AttributeType::EcParams])
        .ok()?
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcParams(p) => Some(p),
            _ => None,
        })?;
    pki::device::ec_params_key_type(&params).ok()
}

/// The DER SubjectPublicKeyInfo of public key object `handle`.
fn public_key_of(session: &Session, handle: ObjectHandle, key_type: KeyType) -> OpResult<Vec<u8>> {
    if let KeyType::Rsa { .. } = key_type {
        let mut modulus = Vec::new();
        let mut exponent = Vec::new();
        for a in session.get_attributes(
            handle,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )? {
            match a {
                Attribute::Modulus(m) => modulus = m,
                Attribute::PublicExponent(e) => exponent = e,
                _ => {}
            }
        }
        return Ok(pki::device::rsa_public_key(&modulus, &exponent)?);
    }
    let point = session
        .get_attributes(handle, &[AttributeType::EcPoint])?
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(p) => Some(p),
            _ => None,
        })
        .unwrap_or_default();
    Ok(pki::device::ec_public_key(key_type, &point)?)
}
