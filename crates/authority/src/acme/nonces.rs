//! Replay nonces (RFC 8555 §6.5). A nonce carries its own expiry and a MAC under a key every
//! node shares (kept sealed in the database), so issuing one writes nothing; using one records
//! it as used (by the ACME writer, in batches), so that it is accepted once across all nodes.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};
use tokio::sync::OnceCell;

use super::{AcmeError, Problem, ProblemType};
use crate::{Authority, Result};

/// How long a nonce is good for.
const LIFETIME: Duration = Duration::minutes(30);
const EXPIRY_LEN: usize = 8;
const RANDOM_LEN: usize = 8;
const TAG_LEN: usize = 16;
const NONCE_LEN: usize = EXPIRY_LEN + RANDOM_LEN + TAG_LEN;

#[derive(Debug, Default)]
pub(crate) struct Nonces {
    key: OnceCell<hmac::Key>,
}

impl Authority {
    async fn nonce_key(&self) -> Result<&hmac::Key> {
        self.acme
            .nonces
            .key
            .get_or_try_init(|| async {
                let fresh = crate::token::random_bytes::<32>()?;
                let sealed = self.vault.seal(&fresh, super::NONCE_KEY_CONTEXT)?;
                let stored = self.store.acme_nonce_key(sealed).await?;
                let key = self.vault.open(&stored, super::NONCE_KEY_CONTEXT)?;
                Ok(hmac::Key::new(hmac::HMAC_SHA256, &key))
            })
            .await
    }

    /// A fresh nonce for `Replay-Nonce`.
    ///
    /// # Errors
    /// Store or vault errors while the shared key is first read.
    pub async fn acme_nonce(&self) -> Result<String> {
        let key = self.nonce_key().await?;
        let expires = (self.now() + LIFETIME).unix_timestamp();
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..EXPIRY_LEN].copy_from_slice(&expires.to_be_bytes());
        crate::token::fill_random(&mut nonce[EXPIRY_LEN..EXPIRY_LEN + RANDOM_LEN])?;
        let tag = hmac::sign(key, &nonce[..EXPIRY_LEN + RANDOM_LEN]);
        nonce[EXPIRY_LEN + RANDOM_LEN..].copy_from_slice(&tag.as_ref()[..TAG_LEN]);
        Ok(URL_SAFE_NO_PAD.encode(nonce))
    }

    /// Uses `nonce`: it must be one this server issued, unexpired and not used before.
    ///
    /// # Errors
    /// A `badNonce` problem otherwise; `serverInternal` when the database fails.
    pub async fn acme_use_nonce(&self, nonce: &str) -> Result<(), AcmeError> {
        let bad = |why: &str| Problem::new(ProblemType::BadNonce, format!("the nonce {why}"));
        let key = self.nonce_key().await?;
        let raw = URL_SAFE_NO_PAD
            .decode(nonce)
            .ok()
            .filter(|raw| raw.len() == NONCE_LEN)
            .ok_or_else(|| bad("is not one this server issued"))?;
        let (signed, tag) = raw.split_at(EXPIRY_LEN + RANDOM_LEN);
        let full = hmac::sign(key, signed);
        // The tag is compared in constant time: it is a MAC.
        if aws_lc_rs::constant_time::verify_slices_are_equal(&full.as_ref()[..TAG_LEN], tag)
            .is_err()
        {
            return Err(bad("is not one this server issued").into());
        }
        let mut expiry = [0u8; EXPIRY_LEN];
        expiry.copy_from_slice(&signed[..EXPIRY_LEN]);
        let expires = OffsetDateTime::from_unix_timestamp(i64::from_be_bytes(expiry))
            .map_err(|_| bad("is not one this server issued"))?;
        if expires <= self.now() {
            return Err(bad("has expired").into());
        }
        let fresh = self.acme_spend_nonce(nonce.to_owned(), expires).await?;
        if fresh {
            Ok(())
        } else {
            Err(bad("was used before").into())
        }
    }

    /// Forgets used nonces that have expired anyway.
    ///
    /// # Errors
    /// Store errors.
    pub async fn purge_acme_nonces(&self) -> Result<u64> {
        Ok(self.store.purge_used_nonces(self.now()).await?)
    }
}
