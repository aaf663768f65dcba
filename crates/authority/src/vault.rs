//! The key vault's software backend: every secret at rest is sealed with AES-256-GCM under a
//! key-encryption key derived (HKDF-SHA256) from the master key.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::token::random_bytes;
use crate::{Error, Result};
use store::ChainKey;

/// The format byte in front of every sealed blob, so the scheme can change later.
const SEALED_V1: u8 = 1;

/// The 256-bit master key. Its `Debug` output is redacted and its memory is zeroized on drop.
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

    /// Reads the key file at `path`, or creates it (mode 0600) with a new key when it is absent.
    /// Returns the key and whether it was created.
    ///
    /// # Errors
    /// [`Error::Internal`] when the file cannot be read or written; [`Error::Invalid`] when it
    /// does not hold a key.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool)> {
        match std::fs::read_to_string(path).map(Zeroizing::new) {
            Ok(text) => Ok((Self::parse(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                write_private(path, key.encode().as_bytes())?;
                Ok((key, true))
            }
            Err(e) => Err(Error::Internal(format!(
                "cannot read the master key file {}: {e}",
                path.display()
            ))),
        }
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

/// Seals and opens secrets at rest, and holds the keys that make the audit trail
/// unforgeable without the master key.
pub struct Vault {
    kek: LessSafeKey,
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
    /// Derives the key-encryption key and the audit keys from the master key, each under a
    /// label of its own.
    ///
    /// # Errors
    /// [`Error::Internal`] if the derivation fails (it does not for a 32-byte key).
    pub fn new(master: &MasterKey) -> Result<Self> {
        let prk = Salt::new(HKDF_SHA256, b"certmint vault").extract(master.0.as_slice());
        let failed = |_| Error::Internal("key derivation failed".into());
        let okm = prk
            .expand(&[b"key-encryption-key v1"], &AES_256_GCM)
            .map_err(failed)?;
        let hmac_key = |label: &[u8]| {
            prk.expand(&[label], hmac::HMAC_SHA256)
                .map(hmac::Key::from)
                .map_err(failed)
        };
        Ok(Self {
            kek: LessSafeKey::new(UnboundKey::from(okm)),
            audit_chain: ChainKey::from(hmac_key(b"certmint audit chain v1")?),
            audit_checkpoint: hmac_key(b"certmint audit checkpoint v1")?,
            challenges: hmac_key(b"certmint enrollment challenges v1")?,
        })
    }

    /// Names the master key without revealing anything of it: backups record it, so that a
    /// restore can tell a server with another master key before writing anything.
    pub fn key_id(&self) -> String {
        hex::encode(&hmac::sign(&self.challenges, b"certmint master key id v1").as_ref()[..16])
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

    /// Encrypts `plaintext`, bound to `context` (for example `"tls-key"`), so a blob cannot be
    /// moved to another purpose.
    ///
    /// # Errors
    /// [`Error::Internal`] when the CSPRNG or the cipher fails.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>> {
        let nonce = random_bytes::<NONCE_LEN>()?;
        // Sized for the tag up front: the plaintext is encrypted where it lands, and no
        // reallocation leaves a copy of it behind in freed memory.
        let header = 1 + NONCE_LEN;
        let mut out = Vec::with_capacity(header + plaintext.len() + AES_256_GCM.tag_len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self.kek.seal_in_place_separate_tag(
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

    /// Decrypts a blob made by [`Vault::seal`] with the same `context`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the blob is damaged, was sealed under another master key, or for
    /// another context.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Zeroizing<Vec<u8>>> {
        let refuse = || {
            Error::Invalid(format!(
                "cannot decrypt the sealed {context}: it is damaged or was sealed under another master key"
            ))
        };
        let (&version, rest) = sealed.split_first().ok_or_else(refuse)?;
        if version != SEALED_V1 || rest.len() < NONCE_LEN {
            return Err(refuse());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refuse())?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = self
            .kek
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

    #[test]
    fn sealed_blobs_are_built_in_one_buffer_sized_for_the_tag() -> Result<()> {
        let vault = Vault::new(&MasterKey::generate()?)?;
        for len in [0, 1, 32, 1000] {
            let plaintext = vec![0xA5; len];
            let sealed = vault.seal(&plaintext, "test")?;
            assert_eq!(sealed.len(), 1 + NONCE_LEN + len + 16);
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

    #[cfg(unix)]
    #[test]
    fn a_key_file_readable_by_others_is_reported() -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().map_err(|e| Error::Internal(e.to_string()))?;
        let path = dir.path().join("master.key");
        MasterKey::load_or_create(&path)?;
        assert_eq!(exposed_mode(&path), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::Internal(e.to_string()))?;
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
        let dir = tempfile::tempdir().map_err(|e| Error::Internal(e.to_string()))?;
        let path = dir.path().join("master.key");
        let (first, created) = MasterKey::load_or_create(&path)?;
        assert!(created);
        let mode = std::fs::metadata(&path)
            .map_err(|e| Error::Internal(e.to_string()))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, created) = MasterKey::load_or_create(&path)?;
        assert!(!created);
        assert_eq!(first.0.as_slice(), second.0.as_slice());
        Ok(())
    }
}
