//! The key vault's software backend: every secret at rest is sealed with AES-256-GCM under a
//! key-encryption key derived (HKDF-SHA256) from a master key.
//!
//! The master key can be rotated (see `crate::master_key`), so there may be several: each has
//! a version, and every sealed blob names the version it was sealed under. New blobs are
//! sealed under the newest key; any blob opens as long as its key is still held. The keys
//! that protect records outliving any one master key — the audit chain, audit checkpoints and
//! enrollment challenge digests — come from an integrity seed that rotation keeps: replacing
//! them would break the audit chain and every stored challenge.

use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Prk};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::token::random_bytes;
use crate::{Error, Result};
use store::ChainKey;

/// The format of blobs sealed before keys had versions: always under the first master key.
const SEALED_V1: u8 = 1;
/// The format that names the master-key version: this byte, the version (4 bytes,
/// big-endian), the nonce, the ciphertext and its tag.
const SEALED_VERSIONED: u8 = 2;
/// The length of a [`SEALED_VERSIONED`] blob's header, which [`sealed_header`] gives.
pub const SEALED_HEADER_LEN: usize = 5;
/// The version of the first master key, and of every blob in the [`SEALED_V1`] format.
pub const FIRST_VERSION: u32 = 1;
/// The HKDF salt every master key and the integrity seed are extracted with.
const SALT: &[u8] = b"certmint vault";

/// The master-key version `sealed` names, or `None` when it is in no known format.
pub fn sealed_version(sealed: &[u8]) -> Option<u32> {
    match sealed.split_first()? {
        (&SEALED_V1, _) => Some(FIRST_VERSION),
        (&SEALED_VERSIONED, rest) => Some(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)),
        _ => None,
    }
}

/// The first bytes of every blob sealed under `version`: what a query compares to find the
/// blobs not sealed under it yet.
pub fn sealed_header(version: u32) -> [u8; SEALED_HEADER_LEN] {
    let mut header = [SEALED_VERSIONED; SEALED_HEADER_LEN];
    header[1..].copy_from_slice(&version.to_be_bytes());
    header
}

/// A 256-bit master key. Its `Debug` output is redacted and its memory is zeroized on drop.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A fresh random key.
    ///
    /// # Errors
    /// [`Error::Internal`] when the CSPRNG fails.
    pub fn generate() -> Result<Self> {
        Ok(Self(Zeroizing::new(random_bytes::<32>()?)))
    }

    /// Reads a key written as base64 or hex (surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`Error::Invalid`] unless the text decodes to exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            hex::decode(text)
                .ok()
                .filter(|b| b.len() == 32)
                .or_else(|| STANDARD.decode(text).ok())
                .unwrap_or_default(),
        );
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            Error::Invalid("the master key must be 32 bytes, written as base64 or hex".into())
        })?;
        Ok(Self(Zeroizing::new(key)))
    }

    /// The key as base64, the form written to the key file.
    pub fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_slice()))
    }

    /// HKDF's pseudorandom key for this key: every key derived from it starts here.
    fn extract(&self) -> Zeroizing<[u8; 32]> {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, SALT), self.0.as_slice());
        let mut prk = Zeroizing::new([0u8; 32]);
        prk.copy_from_slice(tag.as_ref());
        prk
    }
}

/// The master keys by version, and the integrity seed.
///
/// In the key file, a single line holding one key (the form certmint first writes, and the
/// form of a key from the environment) is version 1, with the seed derived from it. Once
/// rotated, the file lists the seed and every key still held:
///
/// ```text
/// integrity <base64>
/// key 1 <base64>
/// key 2 <base64>
/// ```
pub struct KeyRing {
    /// HKDF's pseudorandom key for the integrity keys (those of the first master key).
    integrity: Zeroizing<[u8; 32]>,
    keys: BTreeMap<u32, MasterKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyRing(versions {:?}, <redacted>)", self.versions())
    }
}

impl KeyRing {
    /// `master` as version 1, the integrity seed derived from it.
    pub fn single(master: MasterKey) -> Self {
        Self {
            integrity: master.extract(),
            keys: BTreeMap::from([(FIRST_VERSION, master)]),
        }
    }

    /// Reads a key file's text.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the line that is wrong, or when no key is given.
    pub fn parse(text: &str) -> Result<Self> {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        if let [single] = lines.as_slice()
            && !single.contains(char::is_whitespace)
        {
            return Ok(Self::single(MasterKey::parse(single)?));
        }
        let bad = |n: usize, why: &str| {
            Error::Invalid(format!("master key file, entry {}: {why}", n + 1))
        };
        let mut integrity = None;
        let mut keys = BTreeMap::new();
        for (n, line) in lines.iter().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["integrity", seed] => integrity = Some(MasterKey::parse(seed)?.0),
                ["key", version, key] => {
                    let version: u32 = version
                        .parse()
                        .ok()
                        .filter(|v| *v >= FIRST_VERSION)
                        .ok_or_else(|| bad(n, "the version must be a whole number from 1"))?;
                    if keys.insert(version, MasterKey::parse(key)?).is_some() {
                        return Err(bad(n, "a version given twice"));
                    }
                }
                _ => {
                    return Err(bad(
                        n,
                        "expected `integrity <base64>` or `key <version> <base64>`",
                    ));
                }
            }
        }
        let integrity = integrity
            .or_else(|| keys.get(&FIRST_VERSION).map(MasterKey::extract))
            .ok_or_else(|| {
                Error::Invalid(
                    "master key file: no integrity line, and no key 1 to derive it from".into(),
                )
            })?;
        if keys.is_empty() {
            return Err(Error::Invalid("master key file: it holds no key".into()));
        }
        Ok(Self { integrity, keys })
    }

    /// The text of the key file that holds this ring.
    fn encode(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::from(
            "# certmint master keys: keep this file secret (mode 0600) and backed up.\n\
             # A sealed secret opens only while the key of its version is here.\n",
        ));
        text.push_str(&format!(
            "integrity {}\n",
            STANDARD.encode(self.integrity.as_slice())
        ));
        for (version, key) in &self.keys {
            text.push_str(&format!("key {version} {}\n", key.encode().as_str()));
        }
        text
    }

    /// Reads the key file at `path`, or creates it (mode 0600) with a new key when it is
    /// absent. Returns the ring and whether the file was created.
    ///
    /// # Errors
    /// [`Error::Internal`] when the file cannot be read or written; [`Error::Invalid`] when it
    /// does not hold keys.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool)> {
        match std::fs::read_to_string(path).map(Zeroizing::new) {
            Ok(text) => Ok((Self::parse(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = MasterKey::generate()?;
                write_private(path, key.encode().as_bytes())?;
                Ok((Self::single(key), true))
            }
            Err(e) => Err(Error::Internal(format!(
                "cannot read the master key file {}: {e}",
                path.display()
            ))),
        }
    }

    /// The versions held, oldest first.
    pub fn versions(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// The newest version: the one new blobs are sealed under.
    pub fn current(&self) -> u32 {
        self.keys
            .keys()
            .next_back()
            .copied()
            .unwrap_or(FIRST_VERSION)
    }
}

/// The permission bits of the file at `path` when its group or others may read or write it, so
/// the caller can warn that the master key is exposed; `None` when only its owner may, or on
/// systems without Unix permissions.
pub fn exposed_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Writes a file readable by its owner only, failing if it already exists.
///
/// # Errors
/// [`Error::Internal`] when the file cannot be created.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| Error::Internal(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))
}

/// Replaces the file at `path` with `contents`, readable by its owner only, so that a crash at
/// any moment leaves either the old file or the new one, whole and on disk.
///
/// # Errors
/// [`Error::Internal`] when the file cannot be written.
pub fn replace_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut staged = path.as_os_str().to_owned();
    staged.push(".new");
    let staged = PathBuf::from(staged);
    // A leftover of a crash, perhaps with other permissions: never reused.
    match std::fs::remove_file(&staged) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::Internal(format!(
                "cannot remove {}: {e}",
                staged.display()
            )));
        }
        _ => {}
    }
    write_private(&staged, contents)?;
    std::fs::rename(&staged, path)
        .map_err(|e| Error::Internal(format!("cannot replace {}: {e}", path.display())))?;
    // The rename is durable only once the directory is.
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::Internal(format!("cannot sync {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// The keys in use: the ring, and a key-encryption key per version.
struct Keys {
    ring: KeyRing,
    keks: BTreeMap<u32, LessSafeKey>,
}

impl Keys {
    fn new(ring: KeyRing) -> Result<Self> {
        let keks = ring
            .keys
            .iter()
            .map(|(version, key)| Ok((*version, kek(key)?)))
            .collect::<Result<_>>()?;
        Ok(Self { ring, keks })
    }
}

/// Opens (creating it if need be) the lock file beside the key file at `path`.
fn lock_file(path: &Path) -> Result<File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let name = PathBuf::from(name);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(&name)
        .map_err(|e| Error::Internal(format!("cannot open {}: {e}", name.display())))
}

/// The exclusive hold of the key file a rotation keeps; shared again once dropped.
#[derive(Debug)]
pub(crate) struct ExclusiveHold(Arc<File>);

impl Drop for ExclusiveHold {
    fn drop(&mut self) {
        let _ = self.0.try_lock_shared();
    }
}

/// The key-encryption key derived from `master`.
fn kek(master: &MasterKey) -> Result<LessSafeKey> {
    let prk = Prk::new_less_safe(HKDF_SHA256, master.extract().as_slice());
    let okm = prk
        .expand(&[b"key-encryption-key v1"], &AES_256_GCM)
        .map_err(|_| Error::Internal("key derivation failed".into()))?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

/// Seals and opens secrets at rest, and holds the keys that make the audit trail
/// unforgeable without the master key.
pub struct Vault {
    keys: RwLock<Keys>,
    /// The key file the keys came from; `None` when they came from elsewhere (the
    /// environment), which certmint cannot rewrite.
    key_file: Option<PathBuf>,
    /// `<key file>.lock`: held shared by every process that uses the key file, and
    /// exclusively by a rotation, so that a rotation never runs beside another process that
    /// would seal under a key about to be retired.
    lock: Option<Arc<File>>,
    /// Chains audit records (handed to the store).
    audit_chain: ChainKey,
    /// Signs audit checkpoints; a key of its own, so that no checkpoint can pass for a record.
    audit_checkpoint: hmac::Key,
    /// Digests enrollment challenges, so that a copy of the database alone does not let
    /// anyone try passwords against them.
    challenges: hmac::Key,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(<redacted>)")
    }
}

impl Vault {
    /// A vault over `master` alone (version 1), which it cannot rotate: the key of the
    /// environment, or of a test.
    ///
    /// # Errors
    /// [`Error::Internal`] if the derivation fails (it does not for a 32-byte key).
    pub fn new(master: &MasterKey) -> Result<Self> {
        Self::with_ring(KeyRing::single(MasterKey(master.0.clone())), None)
    }

    /// A vault over the key file at `path`, created with a new key when absent; returns
    /// whether it was created. This vault can rotate its master key.
    ///
    /// # Errors
    /// As [`KeyRing::load_or_create`].
    pub fn from_key_file(path: &Path) -> Result<(Self, bool)> {
        let lock = lock_file(path)?;
        match lock.try_lock_shared() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Conflict(format!(
                    "a master key rotation is running on {}: wait for `certmint master-key \
                     rotate` to finish",
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::Internal(format!(
                    "cannot lock the master key file {}: {e}",
                    path.display()
                )));
            }
        }
        let (ring, created) = KeyRing::load_or_create(path)?;
        let mut vault = Self::with_ring(ring, Some(path.to_owned()))?;
        vault.lock = Some(Arc::new(lock));
        Ok((vault, created))
    }

    /// Derives the key-encryption keys and the integrity keys, each under a label of its own.
    fn with_ring(ring: KeyRing, key_file: Option<PathBuf>) -> Result<Self> {
        let prk = Prk::new_less_safe(HKDF_SHA256, ring.integrity.as_slice());
        let hmac_key = |label: &[u8]| {
            prk.expand(&[label], hmac::HMAC_SHA256)
                .map(hmac::Key::from)
                .map_err(|_| Error::Internal("key derivation failed".into()))
        };
        Ok(Self {
            audit_chain: ChainKey::from(hmac_key(b"certmint audit chain v1")?),
            audit_checkpoint: hmac_key(b"certmint audit checkpoint v1")?,
            challenges: hmac_key(b"certmint enrollment challenges v1")?,
            keys: RwLock::new(Keys::new(ring)?),
            key_file,
            lock: None,
        })
    }

    /// Names the integrity seed (the first master key, which the audit chain is keyed from)
    /// without revealing anything of it: backups record it, so that a restore can tell a
    /// server of another lineage before writing anything.
    pub fn key_id(&self) -> String {
        hex::encode(&hmac::sign(&self.challenges, b"certmint master key id v1").as_ref()[..16])
    }

    /// Names each master key held, by version, without revealing anything of them: a restore
    /// needs every key the backup's secrets may be sealed under.
    pub fn key_ids(&self) -> Vec<(u32, String)> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.ring
            .keys
            .iter()
            .map(|(version, key)| {
                let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
                digest.update(b"certmint master key id v1\0");
                digest.update(key.0.as_slice());
                (*version, hex::encode(&digest.finish().as_ref()[..16]))
            })
            .collect()
    }

    /// The text of a key file holding every master key this vault holds (with the integrity
    /// seed): what a backup carries when the operator asks for the master key to be inside.
    pub fn key_file_text(&self) -> Zeroizing<String> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .ring
            .encode()
    }

    /// The key file the master keys are kept in, or `None` when they come from the
    /// environment.
    pub fn key_file(&self) -> Option<&Path> {
        self.key_file.as_deref()
    }

    /// The master-key versions held, oldest first.
    pub fn versions(&self) -> Vec<u32> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .ring
            .versions()
    }

    /// The version new blobs are sealed under.
    pub fn current_version(&self) -> u32 {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .ring
            .current()
    }

    /// Adds `key` as `version` to the key file (written before it is used, so that nothing
    /// is sealed under a key that a crash could lose); new blobs are sealed under it from now
    /// on.
    ///
    /// # Errors
    /// [`Error::Conflict`] without a key file, or when `version` is not newer than every key
    /// held; [`Error::Internal`] when the file cannot be written.
    pub(crate) fn add_key(&self, version: u32, key: MasterKey) -> Result<()> {
        let path = self.rotatable()?;
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if version <= keys.ring.current() {
            return Err(Error::Conflict(format!(
                "master key version {version} is not newer than version {}",
                keys.ring.current()
            )));
        }
        let kek = kek(&key)?;
        keys.ring.keys.insert(version, key);
        if let Err(e) = replace_private(path, keys.ring.encode().as_bytes()) {
            keys.ring.keys.remove(&version);
            return Err(e);
        }
        keys.keks.insert(version, kek);
        Ok(())
    }

    /// Removes every key older than `version` from the key file and from memory; returns the
    /// versions removed. The caller has made sure no blob is sealed under them any more.
    ///
    /// # Errors
    /// [`Error::Conflict`] without a key file or without `version`; [`Error::Internal`] when
    /// the file cannot be written.
    pub(crate) fn retire_before(&self, version: u32) -> Result<Vec<u32>> {
        let path = self.rotatable()?;
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if !keys.ring.keys.contains_key(&version) {
            return Err(Error::Conflict(format!(
                "master key version {version} is not held"
            )));
        }
        let retired: Vec<u32> = keys.ring.keys.range(..version).map(|(v, _)| *v).collect();
        if retired.is_empty() {
            return Ok(retired);
        }
        let kept = KeyRing {
            integrity: keys.ring.integrity.clone(),
            keys: keys
                .ring
                .keys
                .range(version..)
                .map(|(v, k)| (*v, MasterKey(k.0.clone())))
                .collect(),
        };
        replace_private(path, kept.encode().as_bytes())?;
        for v in &retired {
            keys.keks.remove(v);
        }
        keys.ring = kept;
        Ok(retired)
    }

    /// Holds the key file exclusively until the hold is dropped, and reads it again (another
    /// process may have changed it before this one got hold of it).
    ///
    /// # Errors
    /// [`Error::Conflict`] without a key file, or while another process uses it.
    pub(crate) fn hold_exclusively(&self) -> Result<ExclusiveHold> {
        let path = self.rotatable()?;
        let lock = self
            .lock
            .clone()
            .ok_or_else(|| Error::Internal("the key file is not locked".into()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                // Converting a lock may drop it before failing: take the shared one back.
                let _ = lock.try_lock_shared();
                return Err(Error::Conflict(format!(
                    "another certmint process uses {} (a running server, or another rotation): \
                     stop it, or rotate through the running server's API",
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::Internal(format!(
                    "cannot lock the master key file {}: {e}",
                    path.display()
                )));
            }
        }
        let hold = ExclusiveHold(lock);
        self.reload()?;
        Ok(hold)
    }

    pub(crate) fn rotatable(&self) -> Result<&Path> {
        self.key_file.as_deref().ok_or_else(|| {
            Error::Conflict(
                "the master key comes from CERTMINT_MASTER_KEY, which certmint cannot rewrite: \
                 to rotate it, write the key to master.key in the data directory, unset \
                 CERTMINT_MASTER_KEY, restart, then rotate"
                    .into(),
            )
        })
    }

    /// Reads the key file again, for a version that another process (`certmint master-key
    /// rotate`) may have added since this one started.
    fn reload(&self) -> Result<()> {
        if let Some(path) = &self.key_file {
            let text = std::fs::read_to_string(path)
                .map(Zeroizing::new)
                .map_err(|e| Error::Internal(format!("cannot read {}: {e}", path.display())))?;
            let keys = Keys::new(KeyRing::parse(&text)?)?;
            *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
        }
        Ok(())
    }

    /// The key the store chains audit records under.
    pub fn audit_chain_key(&self) -> ChainKey {
        self.audit_chain.clone()
    }

    /// The signature of an audit checkpoint's canonical bytes, hex.
    pub(crate) fn sign_checkpoint(&self, message: &[u8]) -> String {
        hex::encode(hmac::sign(&self.audit_checkpoint, message))
    }

    /// Whether `signature` (hex) is [`Vault::sign_checkpoint`]'s for `message`, compared in
    /// constant time.
    pub(crate) fn checkpoint_signed(&self, message: &[u8], signature: &str) -> bool {
        hex::decode(signature)
            .is_ok_and(|tag| hmac::verify(&self.audit_checkpoint, message, &tag).is_ok())
    }

    /// The form an enrollment challenge is stored and looked up in: HMAC-SHA256 under a key
    /// derived from the master key, hex, bound to `purpose`.
    pub(crate) fn challenge_digest(&self, purpose: &str, challenge: &str) -> String {
        let mut context = hmac::Context::with_key(&self.challenges);
        context.update(purpose.as_bytes());
        context.update(&[0]);
        context.update(challenge.as_bytes());
        hex::encode(context.sign())
    }

    /// Encrypts `plaintext` under the current master key, bound to `context` (for example
    /// `"tls-key"`), so a blob cannot be moved to another purpose.
    ///
    /// # Errors
    /// [`Error::Internal`] when the CSPRNG or the cipher fails.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>> {
        let nonce = random_bytes::<NONCE_LEN>()?;
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let version = keys.ring.current();
        let kek = keys
            .keks
            .get(&version)
            .ok_or_else(|| Error::Internal("the current master key is not held".into()))?;
        // Sized for the tag up front: the plaintext is encrypted where it lands, and no
        // reallocation leaves a copy of it behind in freed memory.
        let header = SEALED_HEADER_LEN + NONCE_LEN;
        let mut out = Vec::with_capacity(header + plaintext.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&sealed_header(version));
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = kek.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.as_bytes()),
            &mut out[header..],
        );
        match tag {
            Ok(tag) => {
                out.extend_from_slice(tag.as_ref());
                Ok(out)
            }
            Err(_) => {
                drop(Zeroizing::new(out));
                Err(Error::Internal("sealing failed".into()))
            }
        }
    }

    /// `sealed` sealed again under the current master key, without its plaintext leaving the
    /// vault.
    ///
    /// # Errors
    /// As [`Vault::open`] and [`Vault::seal`].
    pub(crate) fn reseal(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>> {
        self.seal(&self.open(sealed, context)?, context)
    }

    /// Whether `sealed` opens, without its plaintext leaving the vault.
    ///
    /// # Errors
    /// As [`Vault::open`].
    pub(crate) fn check(&self, sealed: &[u8], context: &str) -> Result<()> {
        self.open(sealed, context).map(drop)
    }

    /// Decrypts a blob made by [`Vault::seal`] with the same `context`, under whichever held
    /// master key it names.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the blob is damaged, was sealed under a master key not held, or
    /// for another context.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Zeroizing<Vec<u8>>> {
        let refuse = || {
            Error::Invalid(format!(
                "cannot decrypt the sealed {context}: it is damaged or was sealed under another master key"
            ))
        };
        let version = sealed_version(sealed).ok_or_else(refuse)?;
        let header = if sealed[0] == SEALED_V1 {
            1
        } else {
            SEALED_HEADER_LEN
        };
        let rest = sealed.get(header..).ok_or_else(refuse)?;
        if rest.len() < NONCE_LEN {
            return Err(refuse());
        }
        let held = |vault: &Self| {
            vault
                .keys
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .keks
                .contains_key(&version)
        };
        if !held(self) {
            self.reload()?;
            if !held(self) {
                return Err(Error::Invalid(format!(
                    "cannot decrypt the sealed {context}: it was sealed under master key version \
                     {version}, which is not in the key file"
                )));
            }
        }
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let kek = keys.keks.get(&version).ok_or_else(refuse)?;
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refuse())?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = kek
            .open_in_place(nonce, Aad::from(context.as_bytes()), buf.as_mut_slice())
            .map_err(|_| refuse())?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::hkdf::Salt;

    fn io(e: std::io::Error) -> Error {
        Error::Internal(e.to_string())
    }

    #[test]
    fn sealed_blobs_are_built_in_one_buffer_sized_for_the_tag() -> Result<()> {
        let vault = Vault::new(&MasterKey::generate()?)?;
        for len in [0, 1, 32, 1000] {
            let plaintext = vec![0xA5; len];
            let sealed = vault.seal(&plaintext, "test")?;
            assert_eq!(sealed.len(), SEALED_HEADER_LEN + NONCE_LEN + len + 16);
            assert_eq!(
                sealed.capacity(),
                sealed.len(),
                "never grown, so never copied"
            );
            assert!(
                len < 8 || !sealed.windows(8).any(|w| w.iter().all(|b| *b == 0xA5)),
                "no plaintext left in the blob"
            );
            assert_eq!(
                vault.open(&sealed, "test")?.as_slice(),
                plaintext.as_slice()
            );
        }
        Ok(())
    }

    /// A blob as certmint sealed it before keys had versions.
    fn legacy_seal(master: &MasterKey, plaintext: &[u8], context: &str) -> Vec<u8> {
        let prk = Salt::new(HKDF_SHA256, SALT).extract(master.0.as_slice());
        let okm = prk
            .expand(&[b"key-encryption-key v1"], &AES_256_GCM)
            .expect("expand");
        let kek = LessSafeKey::new(UnboundKey::from(okm));
        let nonce = [7u8; NONCE_LEN];
        let mut body = plaintext.to_vec();
        kek.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.as_bytes()),
            &mut body,
        )
        .expect("seal");
        [&[SEALED_V1][..], &nonce, &body].concat()
    }

    #[test]
    fn blobs_of_the_unversioned_format_open_as_version_1() -> Result<()> {
        let master = MasterKey::generate()?;
        let old = legacy_seal(&master, b"old secret", "tls-key");
        assert_eq!(sealed_version(&old), Some(FIRST_VERSION));
        let vault = Vault::new(&master)?;
        assert_eq!(vault.open(&old, "tls-key")?.as_slice(), b"old secret");
        let new = vault.seal(b"new secret", "tls-key")?;
        assert_eq!(new[..SEALED_HEADER_LEN], sealed_header(1));
        assert_eq!(sealed_version(&new), Some(1));
        assert_eq!(sealed_version(&[9, 0, 0, 0, 1]), None);
        assert_eq!(sealed_version(&[SEALED_VERSIONED, 0]), None);
        Ok(())
    }

    #[test]
    fn rotation_adds_a_key_then_retires_the_old_one_and_keeps_the_integrity_keys() -> Result<()> {
        let dir = tempfile::tempdir().map_err(io)?;
        let path = dir.path().join("master.key");
        let (vault, created) = Vault::from_key_file(&path)?;
        assert!(created);
        let entry = store::AuditEntry {
            at: time::OffsetDateTime::UNIX_EPOCH,
            username: None,
            action: "x".into(),
            resource_type: None,
            resource_id: None,
            details: None,
            ip_address: None,
            user_agent: None,
            success: true,
        };
        let chain = |v: &Vault| v.audit_chain_key().hash(1, &entry, store::GENESIS_HASH);
        let before = (chain(&vault), vault.challenge_digest("p", "c"));
        let old = vault.seal(b"one", "ctx")?;

        vault.add_key(2, MasterKey::generate()?)?;
        assert!(
            vault.add_key(2, MasterKey::generate()?).is_err(),
            "not newer"
        );
        let new = vault.seal(b"two", "ctx")?;
        assert_eq!(sealed_version(&new), Some(2));
        let (again, _) = Vault::from_key_file(&path)?;
        assert_eq!(again.versions(), [1, 2]);
        assert_eq!(again.open(&old, "ctx")?.as_slice(), b"one");
        assert_eq!(again.open(&new, "ctx")?.as_slice(), b"two");

        assert_eq!(vault.retire_before(2)?, [1]);
        assert_eq!(vault.retire_before(2)?, Vec::<u32>::new());
        let err = vault.open(&old, "ctx").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("version 1")), "retired");
        let (after, created) = Vault::from_key_file(&path)?;
        assert!(!created);
        assert_eq!(after.versions(), [2]);
        assert_eq!(after.open(&new, "ctx")?.as_slice(), b"two");
        assert_eq!(
            (chain(&after), after.challenge_digest("p", "c")),
            before,
            "the audit chain and stored challenges still verify"
        );
        Ok(())
    }

    #[test]
    fn a_vault_reads_a_version_added_by_another_process() -> Result<()> {
        let dir = tempfile::tempdir().map_err(io)?;
        let path = dir.path().join("master.key");
        let (server, _) = Vault::from_key_file(&path)?;
        let (cli, _) = Vault::from_key_file(&path)?;
        cli.add_key(2, MasterKey::generate()?)?;
        let sealed = cli.seal(b"s", "ctx")?;
        assert_eq!(server.open(&sealed, "ctx")?.as_slice(), b"s");
        assert_eq!(server.current_version(), 2);
        Ok(())
    }

    #[test]
    fn a_key_from_the_environment_cannot_be_rotated() -> Result<()> {
        let vault = Vault::new(&MasterKey::generate()?)?;
        assert!(vault.key_file().is_none());
        let err = vault.add_key(2, MasterKey::generate()?).err();
        assert!(
            matches!(&err, Some(Error::Conflict(m)) if m.contains("CERTMINT_MASTER_KEY")),
            "{err:?}"
        );
        assert!(matches!(vault.retire_before(1), Err(Error::Conflict(_))));
        Ok(())
    }

    #[test]
    fn key_files_that_are_wrong_say_where() {
        let key = STANDARD.encode([1u8; 32]);
        for (text, expect) in [
            (format!("key 0 {key}"), "entry 1: the version"),
            (
                format!("key 1 {key}\nkey 1 {key}"),
                "entry 2: a version given twice",
            ),
            (format!("key 1 {key}\nsecret {key}"), "entry 2: expected"),
            (format!("key 2 {key}"), "no integrity line"),
            (format!("integrity {key}"), "holds no key"),
            ("c2hvcnQ=".to_owned(), "32 bytes"),
        ] {
            let err = KeyRing::parse(&text).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains(expect)),
                "{text}: {err:?}"
            );
        }
        let ring = KeyRing::parse(&format!("# c\n\nintegrity {key}\nkey 3 {key}\n"));
        assert_eq!(
            ring.map(|r| (r.versions(), r.current())).ok(),
            Some((vec![3], 3))
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_readable_by_others_is_reported() -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().map_err(io)?;
        let path = dir.path().join("master.key");
        KeyRing::load_or_create(&path)?;
        assert_eq!(exposed_mode(&path), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).map_err(io)?;
        assert_eq!(exposed_mode(&path), Some(0o644));
        Ok(())
    }

    #[test]
    fn seal_open_round_trip_and_context_binding() -> Result<()> {
        let vault = Vault::new(&MasterKey::generate()?)?;
        let sealed = vault.seal(b"secret key", "tls-key")?;
        assert_eq!(vault.open(&sealed, "tls-key")?.as_slice(), b"secret key");
        assert!(vault.open(&sealed, "other").is_err());
        let other = Vault::new(&MasterKey::generate()?)?;
        assert!(other.open(&sealed, "tls-key").is_err());
        assert!(vault.open(&sealed[..5], "tls-key").is_err());
        assert!(vault.open(&sealed[..3], "tls-key").is_err());
        assert!(vault.open(&[], "tls-key").is_err());
        Ok(())
    }

    #[test]
    fn audit_keys_are_the_same_for_a_master_key_and_its_own() -> Result<()> {
        let entry = store::AuditEntry {
            at: time::OffsetDateTime::UNIX_EPOCH,
            username: Some("ann".into()),
            action: "login_success".into(),
            resource_type: None,
            resource_id: None,
            details: None,
            ip_address: None,
            user_agent: None,
            success: true,
        };
        let master = MasterKey::generate()?;
        let (vault, again) = (
            Vault::new(&master)?,
            Vault::new(&MasterKey::parse(&master.encode())?)?,
        );
        let other = Vault::new(&MasterKey::generate()?)?;
        let hash = |v: &Vault| v.audit_chain_key().hash(1, &entry, store::GENESIS_HASH);
        assert_eq!(
            hash(&vault),
            hash(&again),
            "a restart verifies what it wrote"
        );
        assert_ne!(hash(&vault), hash(&other));
        assert_ne!(
            hash(&vault),
            store::plain_chain_hash(1, &entry, store::GENESIS_HASH)
        );
        // As derived before keys had versions: HKDF over the master key itself.
        let prk = Salt::new(HKDF_SHA256, SALT).extract(master.0.as_slice());
        let legacy = ChainKey::from(hmac::Key::from(
            prk.expand(&[b"certmint audit chain v1"], hmac::HMAC_SHA256)
                .expect("expand"),
        ));
        assert_eq!(
            hash(&vault),
            legacy.hash(1, &entry, store::GENESIS_HASH),
            "chains written before key versions still verify"
        );

        let signature = vault.sign_checkpoint(b"checkpoint");
        assert!(again.checkpoint_signed(b"checkpoint", &signature));
        assert!(!vault.checkpoint_signed(b"checkpoins", &signature));
        assert!(!other.checkpoint_signed(b"checkpoint", &signature));
        assert!(!vault.checkpoint_signed(b"checkpoint", "not hex"));
        Ok(())
    }

    #[test]
    fn master_key_parses_base64_and_hex() -> Result<()> {
        let key = MasterKey::generate()?;
        let again = MasterKey::parse(&key.encode())?;
        assert_eq!(key.0.as_slice(), again.0.as_slice());
        let hex = hex::encode(key.0.as_slice());
        assert_eq!(MasterKey::parse(&hex)?.0.as_slice(), key.0.as_slice());
        assert!(MasterKey::parse("c2hvcnQ=").is_err());
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_created_private_and_reloaded() -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().map_err(io)?;
        let path = dir.path().join("master.key");
        let (first, created) = KeyRing::load_or_create(&path)?;
        assert!(created);
        let mode = |p: &Path| -> Result<u32> {
            Ok(std::fs::metadata(p).map_err(io)?.permissions().mode() & 0o777)
        };
        assert_eq!(mode(&path)?, 0o600);
        let (second, created) = KeyRing::load_or_create(&path)?;
        assert!(!created);
        assert_eq!(first.keys[&1].0.as_slice(), second.keys[&1].0.as_slice());
        replace_private(&path, second.encode().as_bytes())?;
        assert_eq!(mode(&path)?, 0o600, "a replaced file is private too");
        let (third, _) = KeyRing::load_or_create(&path)?;
        assert_eq!(first.keys[&1].0.as_slice(), third.keys[&1].0.as_slice());
        assert_eq!(first.integrity.as_slice(), third.integrity.as_slice());
        Ok(())
    }
}
