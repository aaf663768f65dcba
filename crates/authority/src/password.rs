//! Password hashing (Argon2id, off the async threads) and the password policy.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::token::random_bytes;
use crate::{Error, Result};

/// The longest password accepted, so a request cannot make hashing arbitrarily slow.
pub const MAX_LENGTH: usize = 1024;

/// Checks a new password against the policy.
///
/// # Errors
/// [`Error::Invalid`] saying which rule it breaks.
pub fn check_policy(password: &str, min_length: usize) -> Result<()> {
    let chars = password.chars().count();
    if chars < min_length {
        return Err(Error::Invalid(format!(
            "password must be at least {min_length} characters long"
        )));
    }
    if password.len() > MAX_LENGTH {
        return Err(Error::Invalid(format!(
            "password must be at most {MAX_LENGTH} bytes long"
        )));
    }
    if password
        .chars()
        .all(|c| c == password.chars().next().unwrap_or(c))
    {
        return Err(Error::Invalid(
            "password must not be one character repeated".into(),
        ));
    }
    Ok(())
}

/// A random password that meets any policy up to 32 characters: 24 random bytes, base64url.
///
/// # Errors
/// [`Error::Internal`] when the CSPRNG fails.
pub fn generate() -> Result<Zeroizing<String>> {
    Ok(Zeroizing::new(
        URL_SAFE_NO_PAD.encode(random_bytes::<24>()?),
    ))
}

/// Hashes a password with Argon2id (default parameters: 19 MiB, 2 passes) on a blocking thread.
///
/// # Errors
/// [`Error::Internal`] when hashing fails.
pub async fn hash(password: &str) -> Result<String> {
    let password = Zeroizing::new(password.to_owned());
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| Error::Internal(format!("hashing task failed: {e}")))?
}

fn hash_now(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| Error::Internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing failed: {e}")))
}

/// Checks `password` against a stored hash on a blocking thread. With `None` it checks against
/// a dummy hash, so an unknown username costs the same time as a known one.
///
/// # Errors
/// [`Error::Internal`] when the stored hash is unreadable or the task fails.
pub async fn verify(password: &str, stored: Option<&str>) -> Result<bool> {
    let password = Zeroizing::new(password.to_owned());
    let stored = match stored {
        Some(s) => s.to_owned(),
        None => dummy_hash()?,
    };
    tokio::task::spawn_blocking(move || verify_now(&password, &stored))
        .await
        .map_err(|e| Error::Internal(format!("verification task failed: {e}")))?
}

/// Checks `password` against a stored hash on this thread: for a caller already on a blocking
/// thread.
///
/// # Errors
/// [`Error::Internal`] when the stored hash is unreadable.
pub(crate) fn verify_now(password: &str, stored: &str) -> Result<bool> {
    let parsed = PasswordHash::new(stored)
        .map_err(|e| Error::Internal(format!("stored password hash is unreadable: {e}")))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

fn dummy_hash() -> Result<String> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h.clone());
    }
    let h = hash_now(&generate()?)?;
    Ok(DUMMY.get_or_init(|| h).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() -> Result<()> {
        let h = hash("correct horse battery").await?;
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&h)).await?);
        assert!(!verify("wrong horse battery", Some(&h)).await?);
        assert!(!verify("anything", None).await?);
        Ok(())
    }

    #[test]
    fn policy() {
        assert!(check_policy("short", 12).is_err());
        assert!(check_policy("aaaaaaaaaaaaaaaa", 12).is_err());
        assert!(check_policy("long enough pass", 12).is_ok());
        assert!(check_policy(&"ab".repeat(600), 12).is_err());
    }
}
