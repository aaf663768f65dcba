//! Random secrets and their stored digests.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{Error, Result};

/// Fills `out` from the operating system's CSPRNG.
///
/// # Errors
/// [`Error::Internal`] when the CSPRNG fails.
pub fn fill_random(out: &mut [u8]) -> Result<()> {
    pki::random::fill(out).map_err(|e| Error::Internal(e.to_string()))
}

/// `n` bytes from the operating system's CSPRNG.
///
/// # Errors
/// [`Error::Internal`] when the CSPRNG fails.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    fill_random(&mut buf)?;
    Ok(buf)
}

/// A random (version 4) UUID, the form of stored rows' public ids.
///
/// # Errors
/// [`Error::Internal`] when the CSPRNG fails.
pub fn refid() -> Result<String> {
    Ok(uuid::Builder::from_random_bytes(random_bytes::<16>()?)
        .into_uuid()
        .to_string())
}

/// A 256-bit random token, base64url without padding, with `prefix` in front.
///
/// # Errors
/// [`Error::Internal`] when the CSPRNG fails.
pub fn new_token(prefix: &str) -> Result<String> {
    Ok(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    ))
}

/// The form a bearer secret is stored and looked up in: SHA-256, hex. A fast digest is enough
/// because the secrets carry 256 bits of entropy; passwords use Argon2id instead.
pub fn digest_hex(secret: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, secret.as_bytes()))
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_prefixed() -> Result<()> {
        let a = new_token("cm_")?;
        let b = new_token("cm_")?;
        assert_ne!(a, b);
        assert!(a.starts_with("cm_"));
        assert_eq!(a.len(), 3 + 43);
        Ok(())
    }

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            digest_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(constant_time_eq("x", "x"));
        assert!(!constant_time_eq("x", "y"));
    }
}
