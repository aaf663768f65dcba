//! What is sealed under which master key, and rotating the master key.
//!
//! A rotation adds a new key to the key file, seals every sealed secret again under it in
//! batches (each batch one write transaction), then retires the old key. It can stop at any
//! moment — a crash, a kill — and be run again to finish, because every blob names the key
//! it is sealed under and the old key stays in the key file until no blob needs it:
//!
//! 1. the rotation's start is recorded (setting [`SETTING`] and an audit record, one
//!    transaction), naming the version it rotates to;
//! 2. the new key is written to the key file beside the old one, before anything is sealed
//!    under it (a rerun that finds the version missing makes it then);
//! 3. blobs not under the new version are sealed again, a batch per transaction, each
//!    replaced only if it is unchanged since it was read;
//! 4. once none is left, the old key is removed from the key file;
//! 5. the end is recorded (audit records for the retired key and the finished rotation).
//!
//! Only a key file can be rotated: a key from the environment is the operator's to change.
//! While a rotation runs it holds the key file exclusively, so no other process can seal
//! under the old key meanwhile (see [`crate::vault::Vault::hold_exclusively`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use store::{SealedColumn, SealedCount};
use time::OffsetDateTime;

use crate::audit::Event;
use crate::sealed_settings::SEALED_SETTINGS;
use crate::vault::{
    ExclusiveHold, FIRST_VERSION, MasterKey, SEALED_HEADER_LEN, replace_private, sealed_header,
    sealed_version,
};
use crate::{Authority, Error, Permission, Principal, Result};

/// The setting that records the rotation under way, and the last one.
const SETTING: &str = "master_key_rotation";
/// The format byte of blobs that name their version (what the store groups counts by).
const VERSIONED_FORMAT: u8 = 2;
/// Blobs sealed again per write transaction unless the caller says otherwise.
pub const DEFAULT_BATCH: u32 = 500;
/// The most blobs sealed again per write transaction.
pub const MAX_BATCH: u32 = 10_000;
/// How long a rotation run by a serving node waits, after its new key took effect, before it
/// counts what is left under older keys: a request may have sealed a secret under the old key
/// just before, and not have committed it yet. Counted, it is sealed again; committed after the
/// count, it would be left under a key about to be retired.
const SERVING_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
/// Passes over every sealed blob before giving up on blobs that keep appearing under an old key.
const MAX_PASSES: u32 = 3;

/// The rotation, as recorded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Recorded {
    in_progress: bool,
    from_version: u32,
    to_version: u32,
    #[serde(with = "time::serde::rfc3339::option", default)]
    started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    rotated_at: Option<OffsetDateTime>,
    #[serde(default)]
    last_error: Option<String>,
}

/// A file holding one sealed secret (the HTTPS listener's key).
#[derive(Debug, Clone)]
pub struct SealedFile {
    /// What it is, as [`SealedKind::kind`] names it.
    pub kind: &'static str,
    /// Where it is.
    pub path: PathBuf,
    /// The context it was sealed with.
    pub context: &'static str,
}

/// How many blobs of one kind are sealed under one master-key version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionCount {
    /// `None` for blobs in no format certmint knows (damaged).
    pub version: Option<u32>,
    /// How many.
    pub count: i64,
}

/// The sealed blobs of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SealedKind {
    /// `ca_key`, `certificate_key`, `csr_key`, `other_key`, `webhook_secret`,
    /// `acme_eab_key`, `acme_nonce_key`, `totp_secret`, `smtp_password`, `https_listener_key` (this node's
    /// file), `https_listener_shared_key` (the certificate set for every node) or
    /// `backup_passphrase` (of scheduled backups).
    pub kind: String,
    /// How many, under every version.
    pub count: i64,
    /// By master-key version, oldest first.
    pub versions: Vec<VersionCount>,
}

/// What is sealed, and under which master-key versions.
#[derive(Debug, Clone, Serialize)]
pub struct EncryptionStatus {
    /// Always true: every secret at rest is sealed.
    pub enabled: bool,
    /// The master-key version new secrets are sealed under.
    pub version: u32,
    /// The versions held, oldest first (two while a rotation runs).
    pub key_versions: Vec<u32>,
    /// `file` (rotatable) or `environment`.
    pub key_source: &'static str,
    /// Every sealed blob.
    pub total: i64,
    /// Of those, how many are not under [`EncryptionStatus::version`].
    pub under_older_keys: i64,
    /// By kind.
    pub sealed: Vec<SealedKind>,
}

/// The rotation's state.
#[derive(Debug, Clone, Serialize)]
pub struct SecretsStatus {
    /// `idle` or `in_progress`.
    pub state: &'static str,
    /// The version new secrets are sealed under.
    pub current_version: u32,
    /// The versions held, oldest first.
    pub key_versions: Vec<u32>,
    /// `file` (rotatable) or `environment`.
    pub key_source: &'static str,
    /// The version the rotation under way (or the last) went from.
    pub from_version: Option<u32>,
    /// The version it goes to.
    pub to_version: Option<u32>,
    /// Blobs sealed under the current version.
    pub sealed_current: i64,
    /// Blobs sealed, in all.
    pub sealed_total: i64,
    /// Blobs still to seal again.
    pub remaining: i64,
    /// When the rotation under way (or the last) started.
    pub started_at: Option<OffsetDateTime>,
    /// When the last rotation finished.
    pub rotated_at: Option<OffsetDateTime>,
    /// Rotation is started by people, never on a schedule.
    pub next_rotation: Option<OffsetDateTime>,
    /// Why the last run stopped, if it failed.
    pub last_error: Option<String>,
}

/// Progress of a running rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationProgress {
    /// The version it goes to.
    pub to_version: u32,
    /// Blobs sealed again by this run so far.
    pub resealed: u64,
    /// Blobs this run found to seal again when it started.
    pub total: u64,
}

/// What a finished rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationDone {
    /// The version every secret is sealed under now.
    pub to_version: u32,
    /// The versions removed from the key file.
    pub retired: Vec<u32>,
    /// Blobs sealed again by this run.
    pub resealed: u64,
}

/// What [`Authority::verify_sealed`] found.
#[derive(Debug, Clone, Default)]
pub struct SealedCheck {
    /// Blobs that open.
    pub opened: u64,
    /// Those that do not, and why.
    pub failed: Vec<String>,
}

/// A header no blob starts with, so that a batch "not under it" lists every blob.
const NO_HEADER: [u8; SEALED_HEADER_LEN] = [0xFF; SEALED_HEADER_LEN];

/// A rotation that has started: its new key is in the key file. [`Rotation::run`] finishes
/// it.
#[derive(Debug)]
pub struct Rotation {
    authority: Arc<Authority>,
    principal: Principal,
    from_version: u32,
    to_version: u32,
    batch: u32,
    /// When the new key took effect in this process, and how long to let writes sealed
    /// before that settle (see [`SERVING_GRACE`]).
    current_since: std::time::Instant,
    grace: std::time::Duration,
    _hold: ExclusiveHold,
    _running: tokio::sync::OwnedMutexGuard<()>,
}

/// Keeps one rotation at a time in this process.
#[derive(Debug, Default)]
pub(crate) struct RotationLock(Arc<tokio::sync::Mutex<()>>);

fn key_source(authority: &Authority) -> &'static str {
    if authority.vault.key_file().is_some() {
        "file"
    } else {
        "environment"
    }
}

impl Authority {
    /// Registers a file holding a sealed secret, so that the status counts it and a rotation
    /// seals it again.
    pub fn register_sealed_file(&self, file: SealedFile) {
        self.sealed_files
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(file);
    }

    fn sealed_file_list(&self) -> Vec<SealedFile> {
        self.sealed_files
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    async fn recorded_rotation(&self) -> Result<Recorded> {
        match self.store.setting(SETTING).await? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| Error::Internal(format!("stored master key rotation: {e}"))),
            None => Ok(Recorded::default()),
        }
    }

    /// Every sealed blob, counted by kind and version.
    async fn sealed_kinds(&self) -> Result<Vec<SealedKind>> {
        let mut counts: BTreeMap<String, BTreeMap<Option<u32>, i64>> = BTreeMap::new();
        let mut add = |kind: &str, version: Option<u32>, n: i64| {
            *counts
                .entry(kind.to_owned())
                .or_default()
                .entry(version)
                .or_default() += n;
        };
        for column in SealedColumn::ALL {
            for SealedCount {
                kind,
                header,
                count,
            } in self
                .store
                .sealed_counts(column, VERSIONED_FORMAT, SEALED_HEADER_LEN)
                .await?
            {
                add(&kind, sealed_version(&header), count);
            }
        }
        for setting in &SEALED_SETTINGS {
            if let Some(sealed) = self.sealed_setting(setting).await? {
                add(setting.kind, sealed_version(&sealed), 1);
            }
        }
        for file in self.sealed_file_list() {
            match std::fs::read(&file.path) {
                Ok(sealed) => add(file.kind, sealed_version(&sealed), 1),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Internal(format!(
                        "cannot read {}: {e}",
                        file.path.display()
                    )));
                }
            }
        }
        Ok(counts
            .into_iter()
            .map(|(kind, versions)| SealedKind {
                kind,
                count: versions.values().sum(),
                versions: versions
                    .into_iter()
                    .map(|(version, count)| VersionCount { version, count })
                    .collect(),
            })
            .collect())
    }

    /// Opens every sealed blob (and drops what it holds), to show that none is lost. Needs
    /// `admin:system`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; store errors.
    pub async fn verify_sealed(&self, principal: &Principal) -> Result<SealedCheck> {
        principal.require(Permission::AdminSystem, "checking the sealed secrets")?;
        let mut check = SealedCheck::default();
        let mut record = |what: String, opened: Result<()>| match opened {
            Ok(()) => check.opened += 1,
            Err(e) => check.failed.push(format!("{what}: {e}")),
        };
        for column in SealedColumn::ALL {
            let mut after = 0;
            loop {
                let blobs = self
                    .store
                    .sealed_batch(column, &NO_HEADER, after, DEFAULT_BATCH)
                    .await?;
                let Some(last) = blobs.last() else { break };
                after = last.id;
                for blob in &blobs {
                    let opened = column_context(column, blob.binding.as_deref())
                        .and_then(|context| self.vault.check(&blob.sealed, &context));
                    record(format!("{column:?} row {}", blob.id), opened);
                }
            }
        }
        for setting in &SEALED_SETTINGS {
            if let Some(sealed) = self.sealed_setting(setting).await? {
                let opened = self.vault.check(&sealed, setting.context);
                record(format!("the {}", setting.label), opened);
            }
        }
        for file in self.sealed_file_list() {
            match std::fs::read(&file.path) {
                Ok(sealed) => record(
                    file.path.display().to_string(),
                    self.vault.check(&sealed, file.context),
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => record(
                    file.path.display().to_string(),
                    Err(Error::Internal(e.to_string())),
                ),
            }
        }
        Ok(check)
    }

    /// What is sealed, and under which master-key versions. Needs `admin:system`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; store errors.
    pub async fn encryption_status(&self, principal: &Principal) -> Result<EncryptionStatus> {
        principal.require(Permission::AdminSystem, "reading the encryption status")?;
        let version = self.vault.current_version();
        let sealed = self.sealed_kinds().await?;
        let count = |current: bool| -> i64 {
            sealed
                .iter()
                .flat_map(|k| &k.versions)
                .filter(|v| !current || v.version != Some(version))
                .map(|v| v.count)
                .sum()
        };
        Ok(EncryptionStatus {
            enabled: true,
            version,
            key_versions: self.vault.versions(),
            key_source: key_source(self),
            total: count(false),
            under_older_keys: count(true),
            sealed,
        })
    }

    /// The rotation's state: idle or under way, how far, and when the last one finished.
    /// Needs `admin:system`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; store errors.
    pub async fn secrets_status(&self, principal: &Principal) -> Result<SecretsStatus> {
        principal.require(Permission::AdminSystem, "reading the secrets status")?;
        let recorded = self.recorded_rotation().await?;
        let current = self.vault.current_version();
        let sealed = self.sealed_kinds().await?;
        let versions = sealed.iter().flat_map(|k| &k.versions);
        let sealed_total: i64 = versions.clone().map(|v| v.count).sum();
        let sealed_current: i64 = versions
            .filter(|v| v.version == Some(current))
            .map(|v| v.count)
            .sum();
        let key_versions = self.vault.versions();
        let in_progress = recorded.in_progress || key_versions.len() > 1;
        Ok(SecretsStatus {
            state: if in_progress { "in_progress" } else { "idle" },
            current_version: current,
            key_versions,
            key_source: key_source(self),
            from_version: (recorded.to_version > 0).then_some(recorded.from_version),
            to_version: (recorded.to_version > 0).then_some(recorded.to_version),
            sealed_current,
            sealed_total,
            remaining: sealed_total - sealed_current,
            started_at: recorded.started_at,
            rotated_at: recorded.rotated_at,
            next_rotation: None,
            last_error: recorded.last_error,
        })
    }

    /// Starts rotating the master key, or resumes the rotation under way: records the start,
    /// writes the new key (`new_key`, base64 or hex, or a fresh one) to the key file beside
    /// the old, and returns the rotation for [`Rotation::run`] to finish, `batch` blobs per
    /// transaction. Needs `admin:system`; audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for a `new_key` that is
    /// not 32 bytes or a `batch` out of range, or a `new_key` given to a rotation under way;
    /// [`Error::Conflict`] when the key comes from the environment or another rotation runs;
    /// store and key file errors.
    pub async fn begin_master_key_rotation(
        self: &Arc<Self>,
        principal: &Principal,
        new_key: Option<&str>,
        batch: u32,
    ) -> Result<Rotation> {
        principal.require(Permission::AdminSystem, "rotating the master key")?;
        if !(1..=MAX_BATCH).contains(&batch) {
            return Err(Error::Invalid(format!(
                "batch size: 1 to {MAX_BATCH} blobs per transaction"
            )));
        }
        let new_key = new_key
            .map(|text| {
                MasterKey::parse(text).map_err(|_| {
                    Error::Invalid(
                        "new_key: a master key is 32 bytes, written as base64 or hex".into(),
                    )
                })
            })
            .transpose()?;
        self.vault.rotatable()?;
        let running = self
            .master_key_rotation
            .0
            .clone()
            .try_lock_owned()
            .map_err(|_| Error::Conflict("a master key rotation is already running".into()))?;
        let hold = self.vault.hold_exclusively()?;
        let mut recorded = self.recorded_rotation().await?;
        let held = self.vault.versions();
        let current = self.vault.current_version();
        let (from, to) = if recorded.in_progress {
            if new_key.is_some() {
                return Err(Error::Invalid(format!(
                    "a rotation to master key version {} is under way: resume it without new_key",
                    recorded.to_version
                )));
            }
            (recorded.from_version, recorded.to_version)
        } else {
            // Two keys and no record: a rotation whose start was never recorded; finish it.
            let from = held.first().copied().unwrap_or(FIRST_VERSION);
            (from, if held.len() > 1 { current } else { current + 1 })
        };
        if !recorded.in_progress {
            recorded = Recorded {
                in_progress: true,
                from_version: from,
                to_version: to,
                started_at: Some(self.now()),
                rotated_at: recorded.rotated_at,
                last_error: None,
            };
            let details = format!("from master key version {from} to version {to}");
            self.record_rotation(
                &recorded,
                &[Event::new(
                    "master_key_rotation_started",
                    "master_key",
                    to,
                    details,
                )],
                principal,
            )
            .await?;
        }
        if !held.contains(&to) {
            let key = match new_key {
                Some(key) => key,
                None => MasterKey::generate()?,
            };
            self.vault.add_key(to, key)?;
        } else if current != to {
            return Err(Error::Conflict(format!(
                "the key file holds master key version {current}, newer than version {to} \
                 that the rotation under way goes to"
            )));
        }
        Ok(Rotation {
            authority: self.clone(),
            principal: principal.clone(),
            from_version: from,
            to_version: to,
            batch,
            current_since: std::time::Instant::now(),
            // Nothing else in this process seals, and no other process can while the key
            // file is held: see `rotate_master_key_in_background` for a serving node.
            grace: std::time::Duration::ZERO,
            _hold: hold,
            _running: running,
        })
    }

    /// Starts or resumes a rotation (as [`Authority::begin_master_key_rotation`]) and
    /// finishes it in the background; returns the state once it is under way. A failure is
    /// recorded in [`SecretsStatus::last_error`], and audited.
    ///
    /// # Errors
    /// As [`Authority::begin_master_key_rotation`].
    pub async fn rotate_master_key_in_background(
        self: &Arc<Self>,
        principal: &Principal,
        new_key: Option<&str>,
    ) -> Result<SecretsStatus> {
        let mut rotation = self
            .begin_master_key_rotation(principal, new_key, DEFAULT_BATCH)
            .await?;
        rotation.grace = SERVING_GRACE;
        let status = self.secrets_status(principal).await?;
        tokio::spawn(async move {
            if let Err(e) = rotation.run(|_| {}).await {
                tracing::error!(error = %e, "the master key rotation stopped");
            }
        });
        Ok(status)
    }

    async fn record_rotation(
        &self,
        recorded: &Recorded,
        events: &[Event],
        principal: &Principal,
    ) -> Result<()> {
        let value = serde_json::to_value(recorded)
            .map_err(|e| Error::Internal(format!("master key rotation: {e}")))?;
        let mut tx = self.store.begin_write().await?;
        tx.set_setting(SETTING, &value, self.now()).await?;
        for event in events {
            tx.audit(&self.entry_by(principal, event.clone())).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Rotation {
    /// The version this rotation goes to.
    pub fn to_version(&self) -> u32 {
        self.to_version
    }

    /// Seals every blob again under the new key, calling `progress` after each batch, then
    /// retires the old key and records the end. On failure, records and audits why; running
    /// the rotation again resumes it.
    ///
    /// # Errors
    /// Store, vault and key file errors.
    pub async fn run(self, progress: impl FnMut(RotationProgress)) -> Result<RotationDone> {
        match self.reseal_and_retire(progress).await {
            Ok(done) => Ok(done),
            Err(e) => {
                let a = &self.authority;
                let event = Event::new(
                    "master_key_rotation_failed",
                    "master_key",
                    self.to_version,
                    e.to_string(),
                )
                .failed();
                let recorded = a.recorded_rotation().await.map(|r| Recorded {
                    last_error: Some(e.to_string()),
                    ..r
                });
                let written = match recorded {
                    Ok(r) => a.record_rotation(&r, &[event], &self.principal).await,
                    Err(read) => Err(read),
                };
                if let Err(record) = written {
                    tracing::error!(error = %record, "could not record the failed rotation");
                }
                Err(e)
            }
        }
    }

    async fn reseal_and_retire(
        &self,
        mut progress: impl FnMut(RotationProgress),
    ) -> Result<RotationDone> {
        let a = &self.authority;
        let header = sealed_header(self.to_version);
        let mut total = 0u64;
        for column in SealedColumn::ALL {
            total += u64::try_from(a.store.sealed_outside(column, &header).await?).unwrap_or(0);
        }
        let mut state = RotationProgress {
            to_version: self.to_version,
            resealed: 0,
            total,
        };
        progress(state);
        for _ in 0..MAX_PASSES {
            for column in SealedColumn::ALL {
                let mut after = 0;
                loop {
                    let blobs = a
                        .store
                        .sealed_batch(column, &header, after, self.batch)
                        .await?;
                    let Some(last) = blobs.last() else { break };
                    after = last.id;
                    let mut tx = a.store.begin_write().await?;
                    for blob in &blobs {
                        let context = column_context(column, blob.binding.as_deref())?;
                        let sealed = a.vault.reseal(&blob.sealed, &context)?;
                        if tx.reseal(column, blob.id, &blob.sealed, &sealed).await? {
                            state.resealed += 1;
                        }
                    }
                    tx.commit().await?;
                    progress(state);
                }
            }
            for setting in &SEALED_SETTINGS {
                if a.reseal_setting(setting).await? {
                    state.resealed += 1;
                }
            }
            for file in a.sealed_file_list() {
                if reseal_file(a, &file)? {
                    state.resealed += 1;
                }
            }
            progress(state);
            tokio::time::sleep(self.grace.saturating_sub(self.current_since.elapsed())).await;
            if self.remaining().await? == 0 {
                let retired = a.vault.retire_before(self.to_version)?;
                self.finish(&retired).await?;
                return Ok(RotationDone {
                    to_version: self.to_version,
                    retired,
                    resealed: state.resealed,
                });
            }
        }
        Err(Error::Conflict(format!(
            "blobs kept appearing under older master keys after {MAX_PASSES} passes; the old \
             key stays in the key file: run the rotation again"
        )))
    }

    /// Blobs not under the new version, anywhere.
    async fn remaining(&self) -> Result<i64> {
        let kinds = self.authority.sealed_kinds().await?;
        Ok(kinds
            .iter()
            .flat_map(|k| &k.versions)
            .filter(|v| v.version != Some(self.to_version))
            .map(|v| v.count)
            .sum())
    }

    async fn finish(&self, retired: &[u32]) -> Result<()> {
        let a = &self.authority;
        let recorded = a.recorded_rotation().await?;
        let now = a.now();
        // Retired by this run, or by an earlier one that stopped before recording it.
        let retired = if retired.is_empty() {
            format!("version {} and older", self.from_version)
        } else {
            retired
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        a.record_rotation(
            &Recorded {
                in_progress: false,
                from_version: self.from_version,
                to_version: self.to_version,
                started_at: recorded.started_at,
                rotated_at: Some(now),
                last_error: None,
            },
            &[
                Event::new(
                    "master_key_retired",
                    "master_key",
                    self.from_version,
                    format!("removed master key {retired} from the key file"),
                ),
                Event::new(
                    "master_key_rotation_finished",
                    "master_key",
                    self.to_version,
                    format!(
                        "every sealed secret is under master key version {}",
                        self.to_version
                    ),
                ),
            ],
            &self.principal,
        )
        .await
    }
}

/// The vault context of a blob of `column` (see where each is sealed).
fn column_context(column: SealedColumn, binding: Option<&str>) -> Result<String> {
    match column {
        SealedColumn::Keys => binding
            .map(crate::ca::key_context)
            .ok_or_else(|| Error::Internal("a stored key without its refid".into())),
        SealedColumn::WebhookSecrets => Ok(crate::webhooks::SECRET_CONTEXT.to_owned()),
        SealedColumn::AcmeEabKeys => Ok(crate::acme::EAB_CONTEXT.to_owned()),
        SealedColumn::AcmeNonceKey => Ok(crate::acme::NONCE_KEY_CONTEXT.to_owned()),
        SealedColumn::TotpSecrets => Ok(crate::second_factor::TOTP_CONTEXT.to_owned()),
        SealedColumn::SsoSecrets => Ok(crate::sso::SECRET_CONTEXT.to_owned()),
        SealedColumn::HsmPins => Ok(crate::hsm::PIN_CONTEXT.to_owned()),
        _ => Err(Error::Internal(format!(
            "no sealing context is known for {column:?}"
        ))),
    }
}

/// Seals the file again under the current key unless it is already; the file is replaced
/// whole, so a crash leaves the old blob or the new one. Returns whether it was sealed again.
fn reseal_file(authority: &Authority, file: &SealedFile) -> Result<bool> {
    let sealed = match std::fs::read(&file.path) {
        Ok(sealed) => sealed,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(Error::Internal(format!(
                "cannot read {}: {e}",
                file.path.display()
            )));
        }
    };
    if sealed_version(&sealed) == Some(authority.vault.current_version()) {
        return Ok(false);
    }
    replace_private(&file.path, &authority.vault.reseal(&sealed, file.context)?)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    /// The places that seal a secret, each of which the rotation seals again: a new one that
    /// the rotation did not know would become unreadable when the old key is retired.
    const KNOWN: [(&str, usize); 12] = [
        // SealedColumn::Keys
        ("authority/src/ca/keys.rs", 1),
        // SealedColumn::WebhookSecrets
        ("authority/src/webhooks.rs", 3),
        // SealedColumn::AcmeEabKeys
        ("authority/src/acme/admin/eab_keys.rs", 1),
        // SealedColumn::AcmeNonceKey
        ("authority/src/acme/nonces.rs", 1),
        // SealedColumn::TotpSecrets
        ("authority/src/second_factor.rs", 1),
        // SealedColumn::SsoSecrets
        ("authority/src/sso/mod.rs", 1),
        // SealedColumn::HsmPins
        ("authority/src/hsm/mod.rs", 1),
        // SEALED_SETTINGS
        ("authority/src/email.rs", 1),
        ("authority/src/ca/listener.rs", 1),
        ("authority/src/backup/schedule.rs", 1),
        // a SealedFile registered at start
        ("server/src/bootstrap.rs", 1),
        // not the vault's: the audit chain's checkpoint seal
        ("store/src/db.rs", 1),
    ];

    fn seal_calls(dir: &Path, crates: &Path, found: &mut BTreeMap<String, usize>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                seal_calls(&path, crates, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                // Unit tests at the bottom of a file seal what they like.
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                let calls = code.matches(".seal(").count();
                let name = path.strip_prefix(crates).unwrap_or(&path);
                if calls > 0 && !name.ends_with("vault.rs") && !name.ends_with("master_key.rs") {
                    found.insert(name.to_string_lossy().into_owned(), calls);
                }
            }
        }
    }

    #[test]
    fn every_place_that_seals_is_one_the_rotation_seals_again() {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the crates directory");
        let mut found = BTreeMap::new();
        for krate in ["authority", "server", "store", "cli", "pki"] {
            seal_calls(&crates.join(krate).join("src"), crates, &mut found);
        }
        let known: BTreeMap<String, usize> =
            KNOWN.iter().map(|(f, n)| ((*f).to_owned(), *n)).collect();
        assert_eq!(
            found, known,
            "a place seals a secret that the master-key rotation may not know: make the \
             rotation seal it again (a SealedColumn, reseal_* or a SealedFile), then list it here"
        );
    }
}
