//! CA keys in PKCS#11 tokens: providers (a module, a token in it and its PIN), the keys
//! certmint keeps in their tokens, and the signer that makes a CA's signatures there.
//!
//! A provider loads a shared library into the server, so only modules the settings file
//! allows (or the well-known paths of the types certmint knows) can be named, and only by
//! `admin:system`. A provider's PIN is read from an environment variable or sealed by the
//! vault, and never handed back.

pub(crate) mod token;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use pki::{KeyType, Signer};
use store::{CaId, HsmKeyRow, HsmProviderFields, HsmProviderRow, KeyId, NewKey, TokenObject};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use self::token::{FoundKey, Modules, Protection, Token, TokenError, TokenInfo, TokenRef};
pub use self::token::{TokenCounters, TokenState};
use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};

/// The vault context of providers' PINs.
pub(crate) const PIN_CONTEXT: &str = "hsm-provider-pin";

/// The prefix of the environment variables a PIN may be read from, so that a provider cannot
/// point certmint at its other secrets.
pub const PIN_ENV_PREFIX: &str = "CERTMINT_HSM_";

const MAX_PROVIDERS: usize = 32;
const MAX_SESSIONS: i64 = 64;
const DEFAULT_SESSIONS: i64 = 4;

/// A kind of PKCS#11 token certmint knows: where its module is on Debian and Ubuntu, and the
/// package that brings it.
#[derive(Debug, Clone)]
pub struct ProviderType {
    /// The API's `type`.
    pub name: &'static str,
    /// For people.
    pub title: &'static str,
    /// Where its module is found.
    pub modules: &'static [&'static str],
    /// The Debian package with the module, if there is one.
    pub package: Option<&'static str>,
    /// What else the operator does.
    pub notes: &'static str,
}

/// The types certmint knows. `pkcs11` takes any module the settings file allows.
pub const PROVIDER_TYPES: [ProviderType; 4] = [
    ProviderType {
        name: "softhsm2",
        title: "SoftHSM v2",
        modules: &[
            "/usr/lib/softhsm/libsofthsm2.so",
            "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
            "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        ],
        package: Some("softhsm2"),
        notes: "A token in files, for tests and labs: `softhsm2-util --init-token --free --label \
                certmint` makes one. Its keys are only as safe as the token directory.",
    },
    ProviderType {
        name: "opensc",
        title: "OpenSC (smart cards, YubiKey PIV, Nitrokey)",
        modules: &[
            "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
            "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
        ],
        package: Some("opensc"),
        notes: "Needs pcscd running for the card reader.",
    },
    ProviderType {
        name: "yubihsm2",
        title: "YubiHSM 2",
        modules: &[
            "/usr/lib/x86_64-linux-gnu/pkcs11/yubihsm_pkcs11.so",
            "/usr/lib/pkcs11/yubihsm_pkcs11.so",
        ],
        package: Some("yubihsm-pkcs11"),
        notes: "From Yubico's SDK; the module reads its connector URL from the file named by \
                YUBIHSM_PKCS11_CONF, and the PIN is the auth key id followed by its password.",
    },
    ProviderType {
        name: "pkcs11",
        title: "Any PKCS#11 module",
        modules: &[],
        package: None,
        notes: "A vendor's module (Thales Luna, Entrust nShield, AWS CloudHSM, …): add its path \
                to `[hsm] modules` in the settings file first.",
    },
];

fn provider_type(name: &str) -> Result<&'static ProviderType> {
    PROVIDER_TYPES
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "HSM provider type '{name}' is not supported; use one of {}",
                PROVIDER_TYPES.map(|t| t.name).join(", ")
            ))
        })
}

/// How HSM providers are run, from the settings file.
#[derive(Debug, Clone)]
pub struct HsmConfig {
    /// Modules providers may load besides the known types' own.
    pub modules: Vec<PathBuf>,
    /// How long a signature waits for a free session before the request is refused.
    pub session_wait: Duration,
}

impl Default for HsmConfig {
    fn default() -> Self {
        Self {
            modules: Vec::new(),
            session_wait: Duration::from_secs(10),
        }
    }
}

/// The tokens in use, with their modules.
#[derive(Debug, Default)]
pub(crate) struct Hsm {
    config: OnceLock<HsmConfig>,
    modules: Arc<Modules>,
    tokens: Mutex<HashMap<i64, Arc<Token>>>,
}

impl Hsm {
    fn config(&self) -> HsmConfig {
        self.config.get().cloned().unwrap_or_default()
    }

    fn forget(&self, provider_id: i64) {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&provider_id);
    }
}

/// A provider as the API shows it: its PIN never.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// One of [`PROVIDER_TYPES`].
    pub provider_type: String,
    /// The module.
    pub module_path: String,
    /// The token's label, when it is found by label.
    pub token_label: Option<String>,
    /// The slot, when it is found by slot.
    pub slot_id: Option<i64>,
    /// `env` (read from `pin_env`), `sealed` (kept by certmint) or `none`.
    pub pin_source: &'static str,
    /// The variable the PIN is read from.
    pub pin_env: Option<String>,
    /// Sessions opened at most.
    pub max_sessions: i64,
    /// Whether software CA keys may be moved into this token.
    pub allow_key_import: bool,
    /// Whether it signs.
    pub enabled: bool,
    /// How many keys certmint records in its token.
    pub key_count: usize,
    /// How its token is doing on this node, once used.
    pub state: Option<TokenState>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

/// A provider to create or replace.
#[derive(Debug, Clone, Default)]
pub struct ProviderInput {
    /// Unique name.
    pub name: String,
    /// One of [`PROVIDER_TYPES`].
    pub provider_type: String,
    /// The module; the type's first installed module when absent.
    pub module_path: Option<String>,
    /// The token's label.
    pub token_label: Option<String>,
    /// Or its slot.
    pub slot_id: Option<i64>,
    /// The user PIN, to seal; on an update, absent keeps the one set.
    pub pin: Option<Zeroizing<String>>,
    /// Or the environment variable holding it.
    pub pin_env: Option<String>,
    /// Sessions opened at most (default 4).
    pub max_sessions: Option<i64>,
    /// Whether software CA keys may be moved in.
    pub allow_key_import: bool,
    /// On or off (default on).
    pub enabled: Option<bool>,
}

/// A key in a token as the API shows it.
#[derive(Debug, Clone)]
pub struct HsmKey {
    /// The key's id (the CA's `key_id`).
    pub id: i64,
    /// Its provider.
    pub provider_id: i64,
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID`, hex.
    pub object_id: String,
    /// `RSA 2048`, `EC P-256`, …
    pub key_type: String,
    /// The CA it signs for.
    pub ca_id: Option<i64>,
    /// That CA's name.
    pub ca_name: Option<String>,
    /// SHA-256 of the public key (DER), hex.
    pub public_key_sha256: String,
    /// Recorded.
    pub created_at: OffsetDateTime,
    /// The token's flags, when it was asked (one key at a time).
    pub protection: Option<Protection>,
}

fn hsm_key(row: HsmKeyRow) -> HsmKey {
    let object = row.key.hsm.clone().unwrap_or(TokenObject {
        provider_id: 0,
        object_id: Vec::new(),
        label: String::new(),
    });
    HsmKey {
        id: row.key.id.0,
        provider_id: object.provider_id,
        label: object.label,
        object_id: hex::encode(&object.object_id),
        key_type: row.key.key_type,
        ca_id: row.ca.as_ref().map(|(id, _)| id.0),
        ca_name: row.ca.map(|(_, name)| name),
        public_key_sha256: hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &row.key.public_key,
        )),
        created_at: row.key.created_at,
        protection: None,
    }
}

/// What syncing a provider with its token found.
#[derive(Debug, Clone)]
pub struct SyncReport {
    /// Signing keys in the token.
    pub found: usize,
    /// Of those, newly recorded.
    pub added: Vec<HsmKey>,
    /// Keys recorded whose objects the token no longer holds.
    pub missing: Vec<HsmKey>,
}

/// Whether a provider type's module is on this machine, and what installs it.
#[derive(Debug, Clone)]
pub struct Dependency {
    /// The type.
    pub provider_type: &'static str,
    /// The module found, if any.
    pub installed_module: Option<&'static str>,
    /// What the operator runs to install it; certmint installs nothing itself.
    pub install: Option<String>,
    /// What else the operator does.
    pub notes: &'static str,
}

/// A CA key in a token that signs: the token does the signing, so it is done on a blocking
/// thread, and a token that is away makes the signature fail as unavailable.
pub(crate) struct TokenKey {
    token: Arc<Token>,
    object_id: Vec<u8>,
    key_type: KeyType,
    public_key: Vec<u8>,
}

impl Signer for TokenKey {
    fn key_type(&self) -> KeyType {
        self.key_type
    }

    fn public_key_der(&self) -> Vec<u8> {
        self.public_key.clone()
    }

    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, pki::Error> {
        self.token
            .sign(&self.object_id, self.key_type, message)
            .map_err(|e| match e {
                TokenError::Unavailable(why) | TokenError::Busy(why) => {
                    pki::Error::Unavailable(why)
                }
                TokenError::Refused(why) => pki::Error::Crypto(why),
            })
    }

    fn on_device(&self) -> bool {
        true
    }
}

fn token_error(e: TokenError) -> Error {
    match e {
        TokenError::Unavailable(why) | TokenError::Busy(why) => Error::KeyUnavailable(why),
        TokenError::Refused(why) => Error::Invalid(why),
    }
}

fn check_label(label: &str) -> Result<()> {
    if label.is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "a key label has 1 to 64 characters, none of them control characters".into(),
        ));
    }
    Ok(())
}

impl ProviderInput {
    /// The fields to store: every rule checked, the PIN sealed (or `kept`).
    fn checked(
        self,
        authority: &Authority,
        kept_pin: Option<Vec<u8>>,
    ) -> Result<HsmProviderFields> {
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(Error::Invalid(
                "an HSM provider's name has 1 to 64 characters".into(),
            ));
        }
        let kind = provider_type(&self.provider_type)?;
        let allowed = authority.hsm.config().modules;
        let module_path = match self.module_path.filter(|p| !p.trim().is_empty()) {
            Some(path) => path,
            None => installed_module(kind)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "no {} module is installed here; give module_path",
                        kind.title
                    ))
                })?
                .to_owned(),
        };
        let known = kind.modules.contains(&module_path.as_str())
            || allowed.iter().any(|m| m == Path::new(&module_path));
        if !known {
            return Err(Error::Invalid(format!(
                "module '{module_path}' is not one certmint may load: a provider loads its module \
                 into the server, so only the known paths of type '{}' and those listed in \
                 `[hsm] modules` of the settings file are accepted",
                kind.name
            )));
        }
        let (token_label, slot_id) = match (
            self.token_label.filter(|l| !l.trim().is_empty()),
            self.slot_id,
        ) {
            (Some(label), None) if label.chars().count() <= 32 => (Some(label), None),
            (Some(_), None) => {
                return Err(Error::Invalid(
                    "a PKCS#11 token label has at most 32 characters".into(),
                ));
            }
            (None, Some(slot)) if slot >= 0 => (None, Some(slot)),
            _ => {
                return Err(Error::Invalid(
                    "give the token's token_label or its slot_id (one of them)".into(),
                ));
            }
        };
        let pin_env = self.pin_env.filter(|e| !e.is_empty());
        if let Some(var) = &pin_env {
            let well_formed = var.len() > PIN_ENV_PREFIX.len()
                && var.starts_with(PIN_ENV_PREFIX)
                && !var[PIN_ENV_PREFIX.len()..].starts_with('_')
                && var
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !well_formed {
                return Err(Error::Invalid(format!(
                    "pin_env must be an environment variable named {PIN_ENV_PREFIX}… (capitals, \
                     digits, '_'), so that a provider cannot read certmint's other secrets"
                )));
            }
        }
        let pin = match (self.pin, &pin_env) {
            (Some(_), Some(_)) => {
                return Err(Error::Invalid("give pin or pin_env, not both".into()));
            }
            (Some(pin), None) => {
                if pin.is_empty() || pin.len() > 256 {
                    return Err(Error::Invalid("a PIN has 1 to 256 characters".into()));
                }
                Some(authority.vault().seal(pin.as_bytes(), PIN_CONTEXT)?)
            }
            (None, Some(_)) => None,
            (None, None) => Some(kept_pin.ok_or_else(|| {
                Error::Invalid("give the token's user pin, or pin_env naming where it is".into())
            })?),
        };
        let max_sessions = self.max_sessions.unwrap_or(DEFAULT_SESSIONS);
        if !(1..=MAX_SESSIONS).contains(&max_sessions) {
            return Err(Error::Invalid(format!(
                "max_sessions must be between 1 and {MAX_SESSIONS}"
            )));
        }
        Ok(HsmProviderFields {
            name,
            provider_type: kind.name.to_owned(),
            module_path,
            token_label,
            slot_id,
            pin_env,
            pin,
            max_sessions,
            allow_key_import: self.allow_key_import,
            enabled: self.enabled.unwrap_or(true),
        })
    }
}

fn installed_module(kind: &ProviderType) -> Option<&'static str> {
    kind.modules.iter().copied().find(|m| Path::new(m).exists())
}

impl Authority {
    /// Sets how HSM providers run. Set once, at start.
    ///
    /// # Errors
    /// [`Error::Conflict`] when it was set already.
    pub fn configure_hsm(&self, config: HsmConfig) -> Result<()> {
        self.hsm
            .config
            .set(config)
            .map_err(|_| Error::Conflict("HSM providers are already configured".into()))
    }

    /// The provider types certmint knows.
    pub fn hsm_provider_types(&self) -> &'static [ProviderType] {
        &PROVIDER_TYPES
    }

    /// For each provider type, whether its module is here and what installs it.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:cas`.
    pub fn hsm_dependencies(&self, principal: &Principal) -> Result<Vec<Dependency>> {
        principal.require(Permission::ReadCas, "reading HSM dependencies")?;
        Ok(PROVIDER_TYPES
            .iter()
            .map(|kind| {
                let installed_module = installed_module(kind);
                Dependency {
                    provider_type: kind.name,
                    installed_module,
                    install: match (installed_module, kind.package) {
                        (None, Some(package)) => {
                            Some(format!("apt-get install {package} (as root)"))
                        }
                        _ => None,
                    },
                    notes: kind.notes,
                }
            })
            .collect())
    }

    /// What the operator installs for provider type `kind`: certmint installs nothing itself.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for an unknown type.
    pub fn hsm_dependency(&self, principal: &Principal, kind: &str) -> Result<Dependency> {
        principal.require(Permission::AdminSystem, "installing HSM dependencies")?;
        let name = provider_type(kind)?.name;
        self.hsm_dependencies(principal)?
            .into_iter()
            .find(|d| d.provider_type == name)
            .ok_or_else(|| Error::Invalid(format!("unknown HSM provider type '{kind}'")))
    }

    /// Every provider, by name.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:cas`.
    pub async fn hsm_providers(&self, principal: &Principal) -> Result<Vec<Provider>> {
        principal.require(Permission::ReadCas, "listing HSM providers")?;
        let keys = self.reader().hsm_keys(None).await?;
        Ok(self
            .reader()
            .hsm_providers()
            .await?
            .into_iter()
            .map(|row| {
                let n = keys
                    .iter()
                    .filter(|k| k.key.hsm.as_ref().is_some_and(|o| o.provider_id == row.id))
                    .count();
                self.provider_view(row, n)
            })
            .collect())
    }

    /// One provider.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:cas`; [`Error::NotFound`].
    pub async fn hsm_provider(&self, principal: &Principal, id: i64) -> Result<Provider> {
        principal.require(Permission::ReadCas, "reading HSM providers")?;
        self.stored_hsm_provider(id).await
    }

    async fn stored_hsm_provider(&self, id: i64) -> Result<Provider> {
        let row = self.hsm_provider_row(id).await?;
        let n = self.reader().hsm_keys(Some(id)).await?.len();
        Ok(self.provider_view(row, n))
    }

    fn provider_view(&self, row: HsmProviderRow, key_count: usize) -> Provider {
        let state = self
            .hsm
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&row.id)
            .map(|t| t.state());
        let f = row.fields;
        Provider {
            id: row.id,
            name: f.name,
            provider_type: f.provider_type,
            module_path: f.module_path,
            token_label: f.token_label,
            slot_id: f.slot_id,
            pin_source: match (&f.pin_env, &f.pin) {
                (Some(_), _) => "env",
                (None, Some(_)) => "sealed",
                (None, None) => "none",
            },
            pin_env: f.pin_env,
            max_sessions: f.max_sessions,
            allow_key_import: f.allow_key_import,
            enabled: f.enabled,
            key_count,
            state,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    async fn hsm_provider_row(&self, id: i64) -> Result<HsmProviderRow> {
        self.reader()
            .hsm_provider(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no HSM provider {id}")))
    }

    /// Creates a provider. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for a bad field;
    /// [`Error::Conflict`] for a taken name or too many providers.
    pub async fn create_hsm_provider(
        &self,
        principal: &Principal,
        input: ProviderInput,
    ) -> Result<Provider> {
        principal.require(Permission::AdminSystem, "creating HSM providers")?;
        if self.reader().hsm_providers().await?.len() >= MAX_PROVIDERS {
            return Err(Error::Conflict(format!(
                "certmint keeps at most {MAX_PROVIDERS} HSM providers"
            )));
        }
        let fields = input.checked(self, None)?;
        let mut tx = self.store.begin_write().await?;
        let id = tx
            .insert_hsm_provider(&fields, self.now())
            .await?
            .ok_or_else(|| {
                Error::Conflict(format!("an HSM provider named '{}' exists", fields.name))
            })?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "hsm_provider_created",
                "hsm_provider",
                id,
                format!(
                    "{} provider {} ({}, {})",
                    fields.provider_type,
                    fields.name,
                    fields.module_path,
                    token_ref(&fields)
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.stored_hsm_provider(id).await
    }

    /// Replaces a provider's fields. While certmint records keys in its token, the module
    /// and the token cannot change. Audited.
    ///
    /// # Errors
    /// As [`Self::create_hsm_provider`]; [`Error::NotFound`]; [`Error::Conflict`] for moving
    /// a provider with keys.
    pub async fn update_hsm_provider(
        &self,
        principal: &Principal,
        id: i64,
        input: ProviderInput,
    ) -> Result<Provider> {
        principal.require(Permission::AdminSystem, "changing HSM providers")?;
        let before = self.hsm_provider_row(id).await?;
        let fields = input.checked(self, before.fields.pin.clone())?;
        let moved = fields.module_path != before.fields.module_path
            || token_ref(&fields) != token_ref(&before.fields);
        if moved && !self.reader().hsm_keys(Some(id)).await?.is_empty() {
            return Err(Error::Conflict(
                "the provider's token holds keys certmint records: its module and token cannot \
                 change"
                    .into(),
            ));
        }
        let mut tx = self.store.begin_write().await?;
        if !tx.update_hsm_provider(id, &fields, self.now()).await? {
            return Err(Error::NotFound(format!("no HSM provider {id}")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "hsm_provider_updated",
                "hsm_provider",
                id,
                format!(
                    "provider {} ({}, {}, {})",
                    fields.name,
                    fields.module_path,
                    token_ref(&fields),
                    if fields.enabled {
                        "enabled"
                    } else {
                        "disabled"
                    }
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.hsm_changed(id);
        self.stored_hsm_provider(id).await
    }

    /// Deletes a provider whose token holds no key certmint records. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`]; [`Error::Conflict`]
    /// while keys are recorded.
    pub async fn delete_hsm_provider(&self, principal: &Principal, id: i64) -> Result<()> {
        principal.require(Permission::AdminSystem, "deleting HSM providers")?;
        let row = self.hsm_provider_row(id).await?;
        let mut tx = self.store.begin_write().await?;
        let deleted = tx.delete_hsm_provider(id).await.map_err(|e| match e {
            store::Error::Conflict(why) => Error::Conflict(why),
            other => other.into(),
        })?;
        if !deleted {
            return Err(Error::NotFound(format!("no HSM provider {id}")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "hsm_provider_deleted",
                "hsm_provider",
                id,
                format!("provider {}", row.fields.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.hsm_changed(id);
        Ok(())
    }

    /// A provider changed here: its token is opened again with what it says now, and the CAs
    /// signing with it open their keys again.
    fn hsm_changed(&self, id: i64) {
        self.hsm.forget(id);
        self.issuers.forget_signers();
    }

    /// Logs in to the provider's token and says what it is. Not audited: it changes nothing.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`]; the token's refusal
    /// ([`Error::Invalid`]) or absence ([`Error::KeyUnavailable`]).
    pub async fn test_hsm_provider(&self, principal: &Principal, id: i64) -> Result<TokenInfo> {
        principal.require(Permission::AdminSystem, "testing HSM providers")?;
        let token = self.hsm_token(id, true).await?;
        self.on_token(move || token.info()).await
    }

    /// Records the signing keys in the token that certmint does not know yet, and reports the
    /// recorded ones the token no longer holds. Audited.
    ///
    /// # Errors
    /// As [`Self::test_hsm_provider`].
    pub async fn sync_hsm_provider(&self, principal: &Principal, id: i64) -> Result<SyncReport> {
        principal.require(Permission::AdminSystem, "syncing HSM providers")?;
        let token = self.hsm_token(id, true).await?;
        let found = self.on_token(move || token.keys()).await?;
        let recorded = self.reader().hsm_keys(Some(id)).await?;
        let known = |object_id: &[u8]| {
            recorded
                .iter()
                .any(|r| r.key.hsm.as_ref().is_some_and(|o| o.object_id == object_id))
        };
        let new: Vec<&FoundKey> = found.iter().filter(|f| !known(&f.object_id)).collect();
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let mut added = Vec::new();
        for key in &new {
            added.push(tx.insert_key(&token_key_row(id, key)?, now).await?);
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "hsm_provider_synced",
                "hsm_provider",
                id,
                format!(
                    "{} signing key(s) in the token, {} newly recorded",
                    found.len(),
                    added.len()
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        let mut report = SyncReport {
            found: found.len(),
            added: Vec::new(),
            missing: Vec::new(),
        };
        for row in self.reader().hsm_keys(Some(id)).await? {
            let object_id = row.key.hsm.as_ref().map(|o| o.object_id.clone());
            if added.contains(&row.key.id) {
                report.added.push(hsm_key(row));
            } else if !object_id.is_some_and(|o| found.iter().any(|f| f.object_id == o)) {
                report.missing.push(hsm_key(row));
            }
        }
        Ok(report)
    }

    /// The keys recorded in tokens, of one provider or all.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:cas`.
    pub async fn hsm_keys(
        &self,
        principal: &Principal,
        provider_id: Option<i64>,
    ) -> Result<Vec<HsmKey>> {
        principal.require(Permission::ReadCas, "listing HSM keys")?;
        Ok(self
            .reader()
            .hsm_keys(provider_id)
            .await?
            .into_iter()
            .map(hsm_key)
            .collect())
    }

    /// One key, with the protection its token reports when the token can be reached.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:cas`; [`Error::NotFound`].
    pub async fn hsm_key(&self, principal: &Principal, id: KeyId) -> Result<HsmKey> {
        principal.require(Permission::ReadCas, "reading HSM keys")?;
        let row = self.hsm_key_row(id).await?;
        let object = row.key.hsm.clone();
        let mut key = hsm_key(row);
        if let Some(object) = object
            && let Ok(token) = self.hsm_token(object.provider_id, true).await
        {
            key.protection = self
                .on_token(move || token.protection(&object.object_id))
                .await
                .ok()
                .flatten();
        }
        Ok(key)
    }

    /// Key `id`'s public key, DER SubjectPublicKeyInfo.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:cas`; [`Error::NotFound`].
    pub async fn hsm_public_key(&self, principal: &Principal, id: KeyId) -> Result<Vec<u8>> {
        principal.require(Permission::ReadCas, "reading HSM keys")?;
        Ok(self.hsm_key_row(id).await?.key.public_key)
    }

    async fn hsm_key_row(&self, id: KeyId) -> Result<HsmKeyRow> {
        self.reader()
            .hsm_key(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no HSM key {id}")))
    }

    /// Generates a key in the provider's token: sensitive, never extractable, for signing
    /// only. A signature is made and checked against the public key before it is recorded.
    /// Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`]; [`Error::Invalid`]
    /// for a bad label or what the token refuses; [`Error::KeyUnavailable`].
    pub async fn generate_hsm_key(
        &self,
        principal: &Principal,
        provider_id: i64,
        key_type: KeyType,
        label: &str,
    ) -> Result<HsmKey> {
        principal.require(Permission::AdminSystem, "generating HSM keys")?;
        check_label(label)?;
        let mut tx = self.store.begin_write().await?;
        let key_id = self
            .new_token_key(&mut tx, provider_id, key_type, label)
            .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "hsm_key_generated",
                "hsm_key",
                key_id,
                format!("{key_type} key '{label}' in the token of HSM provider {provider_id}"),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(hsm_key(self.hsm_key_row(key_id).await?))
    }

    /// Generates a key in the token of `provider_id` and records it in `tx`; the caller
    /// audits. The key is checked with a signature before it is recorded.
    async fn new_token_key(
        &self,
        tx: &mut store::WriteTx,
        provider_id: i64,
        key_type: KeyType,
        label: &str,
    ) -> Result<KeyId> {
        let (row, _) = self.token_key(provider_id, key_type, label).await?;
        Ok(tx.insert_key(&row, self.now()).await?)
    }

    /// Generates a key in the token of `provider_id`, checked with a signature; returns the
    /// row to record and its signer.
    pub(crate) async fn token_key(
        &self,
        provider_id: i64,
        key_type: KeyType,
        label: &str,
    ) -> Result<(NewKey, Arc<dyn Signer>)> {
        let token = self.hsm_token(provider_id, false).await?;
        let label_owned = label.to_owned();
        let found = {
            let token = token.clone();
            self.on_token(move || token.generate(key_type, &label_owned))
                .await?
        };
        let signer: Arc<dyn Signer> = Arc::new(TokenKey {
            token,
            object_id: found.object_id.clone(),
            key_type,
            public_key: found.public_key.clone(),
        });
        let message = b"certmint checks a new token key";
        let probe = signer.clone();
        let signature = self
            .on_token(move || {
                probe
                    .sign(message)
                    .map_err(|e| TokenError::Refused(e.to_string()))
            })
            .await?;
        pki::device::verify(&found.public_key, message, &signature)?;
        Ok((token_key_row(provider_id, &found)?, signer))
    }

    /// The signer of key `id` in a token, for a new CA: refused when a CA has it already.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Conflict`] for a key in use.
    pub(crate) async fn unused_token_key(&self, id: KeyId) -> Result<Arc<dyn Signer>> {
        let row = self.hsm_key_row(id).await?;
        if let Some((_, ca)) = row.ca {
            return Err(Error::Conflict(format!(
                "HSM key {id} is the key of CA '{ca}' already"
            )));
        }
        self.token_signer(&row.key).await
    }

    /// Destroys a key in its token and forgets it, unless a CA uses it. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`]; [`Error::Conflict`]
    /// for a key in use; [`Error::KeyUnavailable`] when the token cannot be reached.
    pub async fn delete_hsm_key(&self, principal: &Principal, id: KeyId) -> Result<()> {
        principal.require(Permission::AdminSystem, "deleting HSM keys")?;
        let row = self.hsm_key_row(id).await?;
        if let Some((_, ca)) = &row.ca {
            return Err(Error::Conflict(format!(
                "key {id} is the key of CA '{ca}'; delete the CA first"
            )));
        }
        let object = row
            .key
            .hsm
            .clone()
            .ok_or_else(|| Error::NotFound(format!("no HSM key {id}")))?;
        let mut tx = self.store.begin_write().await?;
        if !tx.delete_hsm_key(id).await? {
            return Err(Error::Conflict(format!(
                "key {id} is in use by a certificate or CSR"
            )));
        }
        let token = self.hsm_token(object.provider_id, true).await?;
        let object_id = object.object_id.clone();
        let destroyed = self.on_token(move || token.destroy(&object_id)).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "hsm_key_deleted",
                "hsm_key",
                id,
                format!(
                    "key '{}' destroyed in the token of HSM provider {} ({destroyed} object(s))",
                    object.label, object.provider_id
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves CA `ca_id`'s software key into the provider's token (which must allow it):
    /// imported sensitive and not extractable, checked with a signature against the CA's
    /// public key, then the sealed copy is erased from the database. Backups made before
    /// still hold it. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`]; [`Error::Invalid`]
    /// for a provider that does not allow imports or a CA without a software key;
    /// [`Error::KeyUnavailable`] when the token cannot be reached.
    pub async fn move_ca_key_to_hsm(
        &self,
        principal: &Principal,
        provider_id: i64,
        ca_id: CaId,
        label: Option<String>,
    ) -> Result<HsmKey> {
        principal.require(Permission::AdminSystem, "moving CA keys into an HSM")?;
        let provider = self.hsm_provider_row(provider_id).await?;
        if !provider.fields.allow_key_import {
            return Err(Error::Invalid(format!(
                "HSM provider '{}' does not take imported keys; set its allow_key_import first",
                provider.fields.name
            )));
        }
        let ca = self.ca(ca_id).await?;
        let key_id = ca
            .key_id
            .ok_or_else(|| Error::Invalid(format!("CA '{}' has no private key here", ca.name)))?;
        let row = self
            .reader()
            .key(key_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("key {key_id} not found")))?;
        if row.hsm.is_some() {
            return Err(Error::Conflict(format!(
                "the key of CA '{}' is in an HSM already",
                ca.name
            )));
        }
        let label = label.unwrap_or_else(|| ca.name.clone());
        check_label(&label)?;
        let key = self.open_key(key_id).await?;
        let key_type = key.key_type();
        let parts = pki::device::key_parts(&key)?;
        drop(key);
        let token = self.hsm_token(provider_id, false).await?;
        let object_id = {
            let (token, label) = (token.clone(), label.clone());
            self.on_token(move || token.import(key_type, &parts, &label))
                .await?
        };
        let destroy = |token: Arc<Token>, object_id: Vec<u8>| async move {
            if let Err(e) = self.on_token(move || token.destroy(&object_id)).await {
                tracing::warn!("cannot remove a half-imported key from its token: {e}");
            }
        };
        let probe = TokenKey {
            token: token.clone(),
            object_id: object_id.clone(),
            key_type,
            public_key: row.public_key.clone(),
        };
        let message = b"certmint checks an imported key";
        let checked = self
            .on_token(move || {
                probe
                    .sign(message)
                    .map_err(|e| TokenError::Refused(e.to_string()))
            })
            .await
            .and_then(|signature| Ok(pki::device::verify(&row.public_key, message, &signature)?));
        if let Err(e) = checked {
            destroy(token, object_id).await;
            return Err(e);
        }
        let object = TokenObject {
            provider_id,
            object_id: object_id.clone(),
            label: label.clone(),
        };
        let mut tx = self.store.begin_write().await?;
        if !tx.move_key_to_token(key_id, &object).await? {
            drop(tx);
            destroy(token, object_id).await;
            return Err(Error::Conflict(format!(
                "the key of CA '{}' changed meanwhile",
                ca.name
            )));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "ca_key_moved_to_hsm",
                "ca",
                ca_id,
                format!(
                    "{key_type} key of CA '{}' imported into the token of HSM provider '{}' as \
                     '{label}'; its sealed software copy was erased",
                    ca.name, provider.fields.name
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.issuers.forget_signers();
        Ok(hsm_key(self.hsm_key_row(key_id).await?))
    }

    /// The state of every provider's token on this node.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:cas`.
    pub async fn hsm_status(&self, principal: &Principal) -> Result<Vec<Provider>> {
        self.hsm_providers(principal).await
    }

    /// The signer of stored key `row`, which is in a token.
    pub(crate) async fn token_signer(&self, row: &store::KeyRow) -> Result<Arc<dyn Signer>> {
        let object = row.hsm.clone().ok_or_else(|| {
            Error::Internal(format!("key {} has no token object recorded", row.id))
        })?;
        let key_type = pki::keys::spki_key_type(&row.public_key)?;
        Ok(Arc::new(TokenKey {
            token: self.hsm_token(object.provider_id, false).await?,
            object_id: object.object_id,
            key_type,
            public_key: row.public_key.clone(),
        }))
    }

    /// Runs `op` on a blocking thread: a token's answer is a round trip to a device.
    pub(crate) async fn on_token<T: Send + 'static>(
        &self,
        op: impl FnOnce() -> std::result::Result<T, TokenError> + Send + 'static,
    ) -> Result<T> {
        tokio::task::spawn_blocking(op)
            .await
            .map_err(|e| Error::Internal(format!("HSM task: {e}")))?
            .map_err(token_error)
    }

    /// The token of provider `id`, opened on first use; a disabled provider's only for
    /// administration (`any`).
    async fn hsm_token(&self, id: i64, any: bool) -> Result<Arc<Token>> {
        if let Some(token) = self
            .hsm
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
        {
            return Ok(token.clone());
        }
        let row = self.hsm_provider_row(id).await?;
        if !row.fields.enabled && !any {
            return Err(Error::KeyUnavailable(format!(
                "HSM provider '{}' is disabled",
                row.fields.name
            )));
        }
        let pin = match (&row.fields.pin_env, &row.fields.pin) {
            (Some(var), _) => Zeroizing::new(std::env::var(var).map_err(|_| {
                Error::KeyUnavailable(format!(
                    "HSM provider '{}' reads its PIN from {var}, which is not set",
                    row.fields.name
                ))
            })?),
            (None, Some(sealed)) => {
                let pin = self.vault().open(sealed, PIN_CONTEXT)?;
                Zeroizing::new(String::from_utf8(pin.to_vec()).map_err(|_| {
                    Error::Internal(format!("the PIN of HSM provider {id} is not text"))
                })?)
            }
            (None, None) => {
                return Err(Error::KeyUnavailable(format!(
                    "HSM provider '{}' has no PIN",
                    row.fields.name
                )));
            }
        };
        let find = match (&row.fields.token_label, row.fields.slot_id) {
            (Some(label), _) => TokenRef::Label(label.clone()),
            (None, Some(slot)) => TokenRef::Slot(u64::try_from(slot).unwrap_or_default()),
            (None, None) => {
                return Err(Error::Internal(format!("HSM provider {id} names no token")));
            }
        };
        let config = self.hsm.config();
        let module = {
            let path = PathBuf::from(&row.fields.module_path);
            let modules = self.hsm.modules.clone();
            // Loading runs the module's initialization, which may talk to the device.
            tokio::task::spawn_blocking(move || modules.get(&path))
                .await
                .map_err(|e| Error::Internal(format!("HSM task: {e}")))?
        };
        let token = Token::new(
            row.fields.name.clone(),
            module,
            find,
            pin,
            usize::try_from(row.fields.max_sessions).unwrap_or(1),
            config.session_wait,
        );
        Ok(self
            .hsm
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id)
            .or_insert(token)
            .clone())
    }
}

fn token_ref(f: &HsmProviderFields) -> String {
    match (&f.token_label, f.slot_id) {
        (Some(label), _) => format!("token '{label}'"),
        (None, Some(slot)) => format!("slot {slot}"),
        (None, None) => "no token".into(),
    }
}

fn token_key_row(provider_id: i64, key: &FoundKey) -> Result<NewKey> {
    Ok(NewKey {
        refid: crate::token::refid()?,
        key_type: key.key_type.label(),
        backend: store::PKCS11.into(),
        sealed: None,
        public_key: key.public_key.clone(),
        hsm: Some(TokenObject {
            provider_id,
            object_id: key.object_id.clone(),
            label: key.label.clone(),
        }),
    })
}
