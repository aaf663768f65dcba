//! ACME accounts (RFC 8555 §7.3): registration (with external account binding), lookup by
//! key or URL, contact updates, deactivation and key rollover.

use pki::jose::{Jwk, Jws};
use store::{AcmeAccountRow, AcmeAccountStatus, AcmeProfileRow, NewAcmeAccount};
use time::Duration;

use super::{AcmeError, Problem, ProblemType};
use crate::audit::Event;
use crate::{Authority, Error, Origin, Principal};

/// What a newAccount request asks for.
#[derive(Debug, Clone, Default)]
pub struct AccountRequest {
    /// Contact URLs (`mailto:` only).
    pub contact: Vec<String>,
    /// Whether the client agreed to the terms of service.
    pub terms_of_service_agreed: bool,
    /// Only look the account up; never make one.
    pub only_return_existing: bool,
}

/// An external account binding (RFC 8555 §7.3.4): the inner JWS and the URL the outer one was
/// sent to.
#[derive(Debug, Clone, Copy)]
pub struct ExternalBinding<'a> {
    /// The inner JWS, MACed with the binding key.
    pub jws: &'a Jws,
    /// The newAccount URL.
    pub url: &'a str,
}

/// Most contact URLs per account.
const MAX_CONTACTS: usize = 10;

fn check_contacts(contact: &[String]) -> Result<(), Problem> {
    if contact.len() > MAX_CONTACTS {
        return Err(Problem::new(
            ProblemType::InvalidContact,
            format!("at most {MAX_CONTACTS} contacts are accepted"),
        ));
    }
    for url in contact {
        let Some(address) = url.strip_prefix("mailto:") else {
            return Err(Problem::new(
                ProblemType::UnsupportedContact,
                format!("contact '{url}' is not a mailto: URL, the only kind supported"),
            ));
        };
        let valid = address.len() <= 254
            && !address.contains([',', '?', ' '])
            && address.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && pki::name::check_dns_name(domain, false).is_ok()
            });
        if !valid {
            return Err(Problem::new(
                ProblemType::InvalidContact,
                format!("contact '{url}' is not one email address"),
            ));
        }
    }
    Ok(())
}

impl Authority {
    /// Registers the key `jwk` on `profile`, or finds the account it already has there.
    /// Returns the account and whether it was made now.
    ///
    /// # Errors
    /// Problems: `accountDoesNotExist` (onlyReturnExisting), `externalAccountRequired`,
    /// `unauthorized` (bad binding, deactivated account), `malformed` (terms not agreed),
    /// `invalidContact`/`unsupportedContact`, `rateLimited`.
    pub async fn acme_new_account(
        &self,
        profile: &AcmeProfileRow,
        jwk: &Jwk,
        request: &AccountRequest,
        binding: Option<ExternalBinding<'_>>,
        origin: &Origin,
    ) -> Result<(AcmeAccountRow, bool), AcmeError> {
        let thumbprint = jwk.thumbprint();
        if let Some(existing) = self
            .store
            .acme_account_by_key(profile.id, &thumbprint)
            .await?
        {
            return live(existing).map(|a| (a, false));
        }
        if request.only_return_existing {
            return Err(Problem::new(
                ProblemType::AccountDoesNotExist,
                "no account exists with this key",
            )
            .into());
        }
        if !profile.terms_of_service.is_empty() && !request.terms_of_service_agreed {
            return Err(Problem::new(
                ProblemType::Malformed,
                "this server's terms of service must be agreed to (termsOfServiceAgreed)",
            )
            .into());
        }
        check_contacts(&request.contact)?;
        let eab_key = match binding {
            Some(binding) => Some(self.check_binding(profile, jwk, binding).await?),
            None if profile.require_eab => {
                return Err(Problem::new(
                    ProblemType::ExternalAccountRequired,
                    format!(
                        "ACME profile '{}' requires an external account binding",
                        profile.name
                    ),
                )
                .into());
            }
            None => None,
        };
        if let Some(ip) = &origin.ip {
            let limit = self.acme_limits().await?.accounts_per_address_hour;
            self.acme_rate(&format!("accounts:{ip}"), limit, Duration::HOUR)
                .await?;
        }
        let refid = uuid::Uuid::now_v7().simple().to_string();
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let inserted = tx
            .insert_acme_account(
                &NewAcmeAccount {
                    refid: refid.clone(),
                    profile_id: profile.id,
                    thumbprint: thumbprint.clone(),
                    jwk: jwk.to_json().to_string(),
                    contact: request.contact.clone(),
                    tos_agreed: request.terms_of_service_agreed,
                    eab_key_id: eab_key,
                    origin_ip: origin.ip.clone(),
                },
                now,
            )
            .await;
        let id = match inserted {
            Ok(id) => id,
            Err(store::Error::Conflict(_)) => {
                // The same key registered concurrently: that account is the answer.
                drop(tx);
                let existing = self
                    .store
                    .acme_account_by_key(profile.id, &thumbprint)
                    .await?
                    .ok_or_else(|| Error::Internal("a conflicting ACME account vanished".into()))?;
                return live(existing).map(|a| (a, false));
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(key) = eab_key
            && !tx.bind_acme_eab_key(key, id, now).await?
        {
            return Err(Problem::new(
                ProblemType::Unauthorized,
                "the external account binding key was used or revoked meanwhile",
            )
            .into());
        }
        let principal = Principal::acme(id, &refid, origin.clone());
        tx.audit(&self.entry_by(
            &principal,
            Event::new(
                "acme_account_created",
                "acme_account",
                id,
                format!(
                    "on profile '{}'{}",
                    profile.name,
                    if eab_key.is_some() {
                        " with an external account binding"
                    } else {
                        ""
                    }
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        let account = self
            .store
            .acme_account_by_id(id)
            .await?
            .ok_or_else(|| Error::Internal("a new ACME account vanished".into()))?;
        Ok((account, true))
    }

    /// Checks an external account binding and returns its key's id.
    async fn check_binding(
        &self,
        profile: &AcmeProfileRow,
        jwk: &Jwk,
        binding: ExternalBinding<'_>,
    ) -> Result<i64, AcmeError> {
        let refuse = |why: &str| {
            Problem::new(
                ProblemType::Unauthorized,
                format!("external account binding refused: {why}"),
            )
        };
        let header = &binding.jws.header;
        let key_id = header
            .kid
            .as_deref()
            .ok_or_else(|| Problem::new(ProblemType::Malformed, "the binding has no kid"))?;
        if header.jwk.is_some() || header.nonce.is_some() {
            return Err(Problem::new(
                ProblemType::Malformed,
                "the binding's header may carry neither a jwk nor a nonce",
            )
            .into());
        }
        if header.url.as_deref() != Some(binding.url) {
            return Err(Problem::new(
                ProblemType::Malformed,
                "the binding's url must be the newAccount URL",
            )
            .into());
        }
        let stored = self
            .store
            .acme_eab_key(key_id)
            .await?
            .filter(|k| k.profile_id == profile.id)
            .ok_or_else(|| refuse("unknown key id"))?;
        if stored.revoked_at.is_some() {
            return Err(refuse("the key was revoked").into());
        }
        if stored.used_at.is_some() {
            return Err(refuse("the key was already used by another account").into());
        }
        let secret = self.vault.open(&stored.hmac_key, super::EAB_CONTEXT)?;
        binding.jws.verify_hmac(&secret).map_err(|e| match e {
            pki::jose::JoseError::BadSignatureAlgorithm(m) => {
                Problem::new(ProblemType::BadSignatureAlgorithm, m)
            }
            _ => refuse("the MAC does not verify"),
        })?;
        let bound: serde_json::Value = serde_json::from_slice(&binding.jws.payload)
            .map_err(|_| refuse("its payload is not a JWK"))?;
        let bound = Jwk::from_json(&bound).map_err(|_| refuse("its payload is not a JWK"))?;
        if &bound != jwk {
            return Err(refuse("it binds another key than the account's").into());
        }
        Ok(stored.id)
    }

    /// The account at `refid` on `profile`, if it is valid, with its key.
    ///
    /// # Errors
    /// `accountDoesNotExist` for an unknown account; `unauthorized` for a deactivated or
    /// revoked one; `serverInternal` for a stored key that does not parse.
    pub async fn acme_account(
        &self,
        profile: &AcmeProfileRow,
        refid: &str,
    ) -> Result<(AcmeAccountRow, Jwk), AcmeError> {
        let found = match self.acme.accounts.get(refid) {
            Some(cached) => Some(cached),
            None => match self.store.acme_account(refid).await? {
                Some(account) => {
                    let key = stored_key(&account)?;
                    self.acme
                        .accounts
                        .put(&account.refid, (account.clone(), key.clone()));
                    Some((account, key))
                }
                None => None,
            },
        };
        let (account, key) = found
            .filter(|(a, _)| a.profile_id == profile.id)
            .ok_or_else(|| {
                Problem::new(
                    ProblemType::AccountDoesNotExist,
                    format!("there is no account {refid} on this directory"),
                )
            })?;
        Ok((live(account)?, key))
    }

    /// Changes an account's contacts, or deactivates it (RFC 8555 §7.3.2, §7.3.6).
    ///
    /// # Errors
    /// `malformed` for a status other than `deactivated`; contact problems; store problems.
    pub async fn acme_update_account(
        &self,
        account: &AcmeAccountRow,
        contact: Option<Vec<String>>,
        status: Option<&str>,
        origin: &Origin,
    ) -> Result<AcmeAccountRow, AcmeError> {
        let deactivate = match status {
            None => false,
            Some("deactivated") => true,
            Some(other) => {
                return Err(Problem::new(
                    ProblemType::Malformed,
                    format!("an account's status can only change to deactivated, not '{other}'"),
                )
                .into());
            }
        };
        if let Some(contact) = &contact {
            check_contacts(contact)?;
        }
        let contact = contact.unwrap_or_else(|| account.contact.clone());
        let status = if deactivate {
            AcmeAccountStatus::Deactivated
        } else {
            AcmeAccountStatus::Valid
        };
        let mut tx = self.store.begin_write().await?;
        tx.update_acme_account(account.id, &contact, status, self.now())
            .await?;
        if deactivate {
            tx.audit(&self.entry_by(
                &Principal::acme(account.id, &account.refid, origin.clone()),
                Event::new(
                    "acme_account_deactivated",
                    "acme_account",
                    account.id,
                    "by its holder".to_owned(),
                ),
            ))
            .await?;
        }
        tx.commit().await?;
        self.acme.accounts.forget(&account.refid);
        Ok(AcmeAccountRow {
            contact,
            status,
            ..account.clone()
        })
    }

    /// Rolls the account's key over to `new_key` (RFC 8555 §7.3.5), after the server checked
    /// the inner JWS; `old_key` is what it says the current key is.
    ///
    /// # Errors
    /// `malformed` when `old_key` is not the account's key; 409 with the other account when
    /// `new_key` already has one.
    pub async fn acme_change_key(
        &self,
        account: &AcmeAccountRow,
        old_key: &Jwk,
        new_key: &Jwk,
        origin: &Origin,
    ) -> Result<AcmeAccountRow, AcmeError> {
        if old_key.thumbprint() != account.thumbprint {
            return Err(Problem::new(
                ProblemType::Malformed,
                "oldKey is not the account's current key",
            )
            .into());
        }
        let thumbprint = new_key.thumbprint();
        let taken = |account: String| AcmeError::KeyInUse { account };
        if let Some(other) = self
            .store
            .acme_account_by_key(account.profile_id, &thumbprint)
            .await?
        {
            return Err(taken(other.refid));
        }
        let jwk = new_key.to_json().to_string();
        let mut tx = self.store.begin_write().await?;
        match tx
            .set_acme_account_key(account.id, &thumbprint, &jwk, self.now())
            .await
        {
            Ok(()) => {}
            Err(store::Error::Conflict(_)) => {
                drop(tx);
                let other = self
                    .store
                    .acme_account_by_key(account.profile_id, &thumbprint)
                    .await?;
                return Err(taken(other.map(|a| a.refid).unwrap_or_default()));
            }
            Err(e) => return Err(e.into()),
        }
        tx.audit(&self.entry_by(
            &Principal::acme(account.id, &account.refid, origin.clone()),
            Event::new(
                "acme_account_key_changed",
                "acme_account",
                account.id,
                format!("new key {thumbprint}"),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.acme.accounts.forget(&account.refid);
        Ok(AcmeAccountRow {
            thumbprint,
            jwk,
            ..account.clone()
        })
    }

    /// The order URLs' ids of an account, newest first, a page at a time; and whether more
    /// pages follow.
    ///
    /// # Errors
    /// Store problems.
    pub async fn acme_account_orders(
        &self,
        account: &AcmeAccountRow,
        page: u32,
    ) -> Result<(Vec<String>, bool), AcmeError> {
        let per_page = 100;
        let found = self
            .store
            .acme_orders(
                &store::AcmeFilter {
                    account_id: Some(account.id),
                    ..store::AcmeFilter::default()
                },
                store::PageRequest {
                    page,
                    per_page,
                    after: None,
                },
            )
            .await?;
        let more = i64::from(page) * i64::from(per_page) < found.total;
        Ok((found.items.into_iter().map(|o| o.refid).collect(), more))
    }

    /// Counts one event against `key` in the current window of length `window`.
    ///
    /// # Errors
    /// `rateLimited` (with the seconds until the window ends as `retry_after`) when it goes
    /// over `limit`; store problems. A `limit` of 0 is no limit.
    pub(crate) async fn acme_rate(
        &self,
        key: &str,
        limit: i64,
        window: Duration,
    ) -> Result<(), AcmeError> {
        if limit <= 0 {
            return Ok(());
        }
        let now = self.now();
        let length = window.whole_seconds().max(1);
        let start_secs = now.unix_timestamp() - now.unix_timestamp().rem_euclid(length);
        let start = time::OffsetDateTime::from_unix_timestamp(start_secs)
            .map_err(|_| Error::Internal("rate window out of range".into()))?;
        let count = self.store.count_rate(key, start).await?;
        if count > limit {
            let retry = (start + window - now).whole_seconds().max(1);
            return Err(Error::RateLimited {
                detail: format!(
                    "at most {limit} per {length} seconds; try again in {retry} seconds"
                ),
                retry_after: u32::try_from(retry).unwrap_or(u32::MAX),
            }
            .into());
        }
        if count == 1 {
            // A new window: drop the ones before it, now and then rather than on every request.
            let _ = self.store.purge_rate_counters(start - window).await;
        }
        Ok(())
    }
}

/// The account's key, as stored.
fn stored_key(account: &AcmeAccountRow) -> Result<Jwk, Problem> {
    serde_json::from_str(&account.jwk)
        .ok()
        .and_then(|v| Jwk::from_json(&v).ok())
        .ok_or_else(|| {
            tracing::error!(account = %account.refid, "stored ACME account key does not parse");
            Problem::new(
                ProblemType::ServerInternal,
                "the account's key cannot be read",
            )
        })
}

/// The account, unless it is deactivated or revoked.
fn live(account: AcmeAccountRow) -> Result<AcmeAccountRow, AcmeError> {
    if account.status == AcmeAccountStatus::Valid {
        Ok(account)
    } else {
        Err(Problem::new(
            ProblemType::Unauthorized,
            format!("the account is {}", account.status),
        )
        .into())
    }
}
