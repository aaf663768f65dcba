//! Second factors: TOTP (RFC 6238) authenticators with single-use recovery codes, and the
//! second step of a login that needs one.
//!
//! A login whose first step succeeded becomes a *pending login* when the user has a confirmed
//! authenticator, or when their role requires a second factor (then the pending login first
//! sets one up). The pending login's bearer token is the only thing the client holds; it
//! lives [`PENDING_LIFETIME`], takes at most [`MAX_CODE_ATTEMPTS`] codes, and opens at most one
//! session. Wrong codes also count towards the account's lockout like wrong passwords, so a
//! stolen password gives an attacker no more guesses at the code than the lockout allows.
//!
//! A code is accepted once: the newest time step accepted is stored, and a code of that step
//! or an earlier one is refused (RFC 6238 section 5.2).

use std::future::Future;

use time::{Duration, OffsetDateTime};
use totp_rs::{Algorithm, Totp};
use zeroize::Zeroizing;

use crate::audit::Event;
use crate::principal::{Origin, Principal};
use crate::rbac::Role;
use crate::sessions::{Guess, LoginMethod, LoginOutcome};
use crate::token::{digest_hex, fill_random, new_token};
use crate::{Authority, Error, Result, UserRow};

/// The vault context TOTP secrets are sealed under.
pub(crate) const TOTP_CONTEXT: &str = "totp-secret";
/// The issuer authenticator apps show next to the account.
const ISSUER: &str = "certmint";
/// Secret length: 160 bits, what RFC 4226 recommends for HMAC-SHA-1.
const SECRET_BYTES: usize = 20;
/// Time steps accepted either side of now, for clocks that drift.
const SKEW_STEPS: u8 = 1;
/// The length of a time step.
const STEP_SECONDS: u64 = 30;
/// How long a pending login waits for its code.
pub const PENDING_LIFETIME: Duration = Duration::minutes(5);
/// Codes one pending login takes before it ends.
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// Recovery codes made at a time.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code (base32, 5 bits each: 60 bits), shown in groups of four.
const RECOVERY_CHARS: usize = 12;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A login waiting for its second factor.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    /// Who is logging in.
    pub user: UserRow,
    /// The bearer token the second step presents; stored only as a digest.
    pub token: String,
    /// When the token stops being accepted.
    pub expires_at: OffsetDateTime,
    /// Whether the user must set up an authenticator first (their role requires a second
    /// factor and they have none).
    pub setup: bool,
}

/// A new authenticator for the user to add to their app.
#[derive(Debug, Clone)]
pub struct TotpEnrollment {
    /// The secret, base32, for typing in.
    pub secret: Zeroizing<String>,
    /// The `otpauth://` URI the QR code holds.
    pub otpauth_uri: Zeroizing<String>,
    /// The QR code, SVG.
    pub qr_svg: String,
}

/// Where a user's second factor stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondFactorStatus {
    /// Whether a confirmed authenticator guards logins.
    pub enabled: bool,
    /// Whether an authenticator was set up and waits for its first code.
    pub pending: bool,
    /// Whether the user's role requires a second factor.
    pub required: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
    /// Recovery codes made.
    pub recovery_codes_total: i64,
}

/// A code as typed: six digits from the authenticator, or a recovery code.
enum Code {
    Totp(String),
    Recovery(String),
}

impl Code {
    fn parse(code: &str) -> Result<Self> {
        let compact: String = code
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        if compact.len() == 6 && compact.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self::Totp(compact))
        } else if compact.len() == RECOVERY_CHARS && compact.bytes().all(|b| BASE32.contains(&b)) {
            Ok(Self::Recovery(digest_hex(&compact)))
        } else {
            Err(Error::Invalid(
                "a code is the 6 digits your authenticator shows, or a recovery code".into(),
            ))
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Totp(_) => "authenticator code",
            Self::Recovery(_) => "recovery code",
        }
    }
}

/// The TOTP of `secret`, labelled for `username`.
fn totp(secret: &[u8], username: &str) -> Result<Totp> {
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(u16::from(SKEW_STEPS))
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret.to_vec())
        .with_account_name(username.replace(':', "_"))
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| Error::Internal(format!("TOTP: {e}")))
}

/// `n` fresh recovery codes: as shown (`abcd-efgh-ijkl`) and as stored (their digests).
fn recovery_codes(n: usize) -> Result<(Vec<String>, Vec<String>)> {
    let mut shown = Vec::with_capacity(n);
    let mut stored = Vec::with_capacity(n);
    for _ in 0..n {
        let mut raw = [0u8; RECOVERY_CHARS];
        fill_random(&mut raw)?;
        let code: String = raw
            .iter()
            .map(|b| char::from(BASE32[usize::from(b & 31)]))
            .collect();
        stored.push(digest_hex(&code));
        shown.push(format!("{}-{}-{}", &code[..4], &code[4..8], &code[8..]));
    }
    Ok((shown, stored))
}

fn qr_svg(uri: &str) -> Result<String> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| Error::Internal(format!("QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build())
}

impl Authority {
    /// Whether a login of `user` by `method` needs a second step: `Some(false)` to enter a
    /// code, `Some(true)` to set up an authenticator first, `None` for none.
    pub(crate) async fn second_factor_due(
        &self,
        user: &UserRow,
        method: LoginMethod,
    ) -> Result<Option<bool>> {
        if method.proves_two_factors() {
            return Ok(None);
        }
        let confirmed = self
            .store
            .user_totp(user.id)
            .await?
            .is_some_and(|t| t.confirmed_at.is_some());
        if confirmed {
            return Ok(Some(false));
        }
        Ok(self
            .second_factor_required(&user.role)
            .await
            .then_some(true))
    }

    /// Whether the policy requires a second factor of holders of `role`.
    async fn second_factor_required(&self, role: &str) -> bool {
        self.policy_now()
            .await
            .second_factor_roles
            .iter()
            .any(|r| r == role)
    }

    /// Creates the pending login of a user whose first step succeeded. Audited.
    pub(crate) async fn pending_login(
        &self,
        user: UserRow,
        method: LoginMethod,
        setup: bool,
        origin: &Origin,
    ) -> Result<PendingLogin> {
        let now = self.now();
        let token = new_token("")?;
        let expires_at = now + PENDING_LIFETIME;
        let mut tx = self.store.begin_write().await?;
        tx.insert_pending_login(
            &store::NewPendingLogin {
                user_id: user.id,
                token_hash: digest_hex(&token),
                auth_method: method.as_str().into(),
                setup,
                ip_address: origin.ip.clone(),
                expires_at,
            },
            now,
        )
        .await?;
        tx.audit(&self.entry(
            Some(&user.username),
            origin,
            Event::new(
                "login_second_factor_required",
                "user",
                user.id,
                if setup {
                    format!(
                        "{} accepted; the role requires a second factor, none is set up",
                        method.as_str()
                    )
                } else {
                    format!(
                        "{} accepted; waiting for the second factor",
                        method.as_str()
                    )
                },
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(PendingLogin {
            user,
            token,
            expires_at,
            setup,
        })
    }

    /// The pending login `token` names, and its user, who must still be allowed in.
    async fn live_pending(&self, token: &str) -> Result<(store::PendingLoginRow, UserRow)> {
        let gone =
            || Error::Unauthorized("this login has expired or is unknown; log in again".into());
        let pending = self
            .store
            .pending_login(&digest_hex(token), self.now())
            .await?
            .ok_or_else(gone)?;
        let user = self.store.user(pending.user_id).await?.ok_or_else(gone)?;
        if !user.enabled {
            return Err(Error::Unauthorized("account is disabled".into()));
        }
        Ok((pending, user))
    }

    /// Sets up a new authenticator for a pending login whose role requires one; the second
    /// step's first code then confirms it.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for an unknown or expired pending login; [`Error::Conflict`]
    /// when it does not need a set-up.
    pub async fn login_totp_setup(&self, token: &str, origin: &Origin) -> Result<TotpEnrollment> {
        let (pending, user) = self.live_pending(token).await?;
        if !pending.setup {
            return Err(Error::Conflict(
                "this login needs a code from the authenticator already set up".into(),
            ));
        }
        self.new_authenticator(&user, origin).await
    }

    /// Completes a pending login with an authenticator or recovery code, and opens the
    /// session. When the login set up an authenticator, the code confirms it and the outcome
    /// carries the new recovery codes.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for an unknown or expired pending login, a wrong or reused code,
    /// or too many codes tried; [`Error::Locked`] when wrong codes lock the account;
    /// [`Error::Invalid`] for something that is not a code.
    pub async fn login_second_factor(
        &self,
        token: &str,
        code: &str,
        origin: &Origin,
    ) -> Result<LoginOutcome> {
        let code = Code::parse(code)?;
        let (pending, user) = self.live_pending(token).await?;
        let method = LoginMethod::parse(&pending.auth_method)?;
        let mut tx = self.store.begin_write().await?;
        let attempts = tx.count_pending_attempt(pending.id).await?;
        tx.commit().await?;
        if attempts.is_none_or(|n| n > MAX_CODE_ATTEMPTS) {
            let mut tx = self.store.begin_write().await?;
            tx.delete_pending_login(pending.id).await?;
            tx.audit(
                &self.entry(
                    Some(&user.username),
                    origin,
                    Event::new(
                        "login_failed",
                        "user",
                        user.id,
                        "too many codes for one login",
                    )
                    .failed(),
                ),
            )
            .await?;
            tx.commit().await?;
            return Err(Error::Unauthorized(
                "too many wrong codes; log in again".into(),
            ));
        }
        self.check_code(&user, &code, pending.setup, origin).await?;
        let mut tx = self.store.begin_write().await?;
        let taken = tx.delete_pending_login(pending.id).await?;
        let shown = if pending.setup {
            let (shown, stored) = recovery_codes(RECOVERY_CODES)?;
            tx.replace_recovery_codes(user.id, &stored, self.now())
                .await?;
            tx.audit(&self.entry(
                Some(&user.username),
                origin,
                Event::new(
                    "2fa_enabled",
                    "user",
                    user.id,
                    "authenticator set up at login",
                ),
            ))
            .await?;
            shown
        } else {
            Vec::new()
        };
        tx.commit().await?;
        if !taken {
            return Err(Error::Unauthorized(
                "this login has expired or is unknown; log in again".into(),
            ));
        }
        let mut outcome = self.start_session(user, method, origin).await?;
        outcome.recovery_codes = shown;
        Ok(outcome)
    }

    /// Checks `code` against `user`'s authenticator or recovery codes and uses it up, counting
    /// a wrong one towards the lockout. `confirm` confirms an authenticator that waits for its
    /// first code. Failures are audited.
    async fn check_code(
        &self,
        user: &UserRow,
        code: &Code,
        confirm: bool,
        origin: &Origin,
    ) -> Result<()> {
        let stored = self
            .store
            .user_totp(user.id)
            .await?
            .ok_or_else(|| Error::Conflict("no authenticator is set up".into()))?;
        if !confirm && stored.confirmed_at.is_none() {
            return Err(Error::Conflict(
                "the authenticator is not confirmed yet; confirm it first".into(),
            ));
        }
        let now = self.now();
        let check = async {
            match code {
                Code::Totp(digits) => {
                    let secret = Zeroizing::new(self.vault.open(&stored.secret, TOTP_CONTEXT)?);
                    let unix = u64::try_from(now.unix_timestamp()).unwrap_or(0);
                    let Some(step) = totp(&secret, &user.username)?.check(digits, unix) else {
                        return Ok(Err("wrong authenticator code"));
                    };
                    let step = i64::try_from(step).unwrap_or(i64::MAX);
                    let mut tx = self.store.begin_write().await?;
                    let fresh = tx.take_totp_step(user.id, step, confirm, now).await?;
                    tx.commit().await?;
                    Ok(if fresh {
                        Ok(())
                    } else {
                        Err("authenticator code already used")
                    })
                }
                Code::Recovery(digest) if !confirm => {
                    let mut tx = self.store.begin_write().await?;
                    let used = tx.use_recovery_code(user.id, digest, now).await?;
                    tx.commit().await?;
                    Ok(if used {
                        Ok(())
                    } else {
                        Err("wrong or used recovery code")
                    })
                }
                Code::Recovery(_) => Ok(Err("a new authenticator is confirmed by its own code")),
            }
        };
        let reason = match self.counted_check(user, check).await? {
            Guess::Right => {
                if let Code::Recovery(_) = code {
                    let mut tx = self.store.begin_write().await?;
                    tx.audit(&self.entry(
                        Some(&user.username),
                        origin,
                        Event::new("recovery_code_used", "user", user.id, "recovery code used"),
                    ))
                    .await?;
                    tx.commit().await?;
                }
                return Ok(());
            }
            Guess::Wrong(reason) => reason,
            Guess::Locked {
                attempts,
                until,
                now,
            } => {
                let mut tx = self.store.begin_write().await?;
                let event = if now {
                    Event::new(
                        "account_locked",
                        "user",
                        user.id,
                        "wrong codes; account locked",
                    )
                } else {
                    Event::new("login_failed", "user", user.id, "account locked")
                };
                tx.audit(&self.entry(Some(&user.username), origin, event.failed()))
                    .await?;
                tx.commit().await?;
                return Err(Error::Locked { attempts, until });
            }
        };
        let mut tx = self.store.begin_write().await?;
        tx.audit(
            &self.entry(
                Some(&user.username),
                origin,
                Event::new(
                    "second_factor_failed",
                    "user",
                    user.id,
                    format!("{}: {reason}", code.kind()),
                )
                .failed(),
            ),
        )
        .await?;
        tx.commit().await?;
        Err(Error::Unauthorized(format!("{reason}; try again")))
    }

    /// Makes and stores (unconfirmed, sealed) a new authenticator secret for `user`.
    async fn new_authenticator(&self, user: &UserRow, origin: &Origin) -> Result<TotpEnrollment> {
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        fill_random(secret.as_mut())?;
        let totp = totp(secret.as_ref(), &user.username)?;
        let otpauth_uri = Zeroizing::new(
            totp.to_url()
                .map_err(|e| Error::Internal(format!("otpauth URI: {e}")))?,
        );
        let sealed = self.vault.seal(secret.as_ref(), TOTP_CONTEXT)?;
        let mut tx = self.store.begin_write().await?;
        if !tx
            .put_unconfirmed_totp(user.id, &sealed, self.now())
            .await?
        {
            return Err(Error::Conflict(
                "two-factor authentication is already on; disable it first".into(),
            ));
        }
        tx.audit(&self.entry(
            Some(&user.username),
            origin,
            Event::new(
                "2fa_setup_started",
                "user",
                user.id,
                "authenticator secret made",
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(TotpEnrollment {
            secret: Zeroizing::new(totp.secret().to_base32()),
            qr_svg: qr_svg(&otpauth_uri)?,
            otpauth_uri,
        })
    }

    /// Starts setting up an authenticator for the principal's own account.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for an API key or the command line; [`Error::Conflict`] when one
    /// is on already.
    pub async fn totp_enable(&self, principal: &Principal) -> Result<TotpEnrollment> {
        principal.require_session("setting up two-factor authentication")?;
        let user = self.user(principal.account()?.id).await?;
        self.new_authenticator(&user, &principal.origin).await
    }

    /// Confirms the principal's new authenticator with its first code, which turns two-factor
    /// authentication on, and returns the recovery codes (shown this once).
    ///
    /// # Errors
    /// [`Error::Conflict`] with nothing to confirm; [`Error::Unauthorized`] for a wrong code.
    pub async fn totp_confirm(&self, principal: &Principal, code: &str) -> Result<Vec<String>> {
        principal.require_session("setting up two-factor authentication")?;
        let user = self.user(principal.account()?.id).await?;
        let code = Code::parse(code)?;
        match self.store.user_totp(user.id).await? {
            Some(t) if t.confirmed_at.is_none() => {}
            Some(_) => {
                return Err(Error::Conflict(
                    "two-factor authentication is already on".into(),
                ));
            }
            None => {
                return Err(Error::Conflict(
                    "nothing to confirm; start with POST /api/v2/account/2fa/enable".into(),
                ));
            }
        }
        self.check_code(&user, &code, true, &principal.origin)
            .await?;
        let (shown, stored) = recovery_codes(RECOVERY_CODES)?;
        let mut tx = self.store.begin_write().await?;
        tx.replace_recovery_codes(user.id, &stored, self.now())
            .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new("2fa_enabled", "user", user.id, "authenticator confirmed"),
        ))
        .await?;
        tx.commit().await?;
        Ok(shown)
    }

    /// Turns the principal's two-factor authentication off, given a current code, a recovery
    /// code or the password. Refused while the role requires a second factor.
    ///
    /// # Errors
    /// [`Error::Conflict`] when it is off or the role requires it; [`Error::Unauthorized`] for a
    /// wrong code or password; [`Error::Invalid`] when neither is given.
    pub async fn totp_disable(
        &self,
        principal: &Principal,
        code: Option<&str>,
        password: Option<&str>,
    ) -> Result<()> {
        principal.require_session("turning two-factor authentication off")?;
        let user = self.user(principal.account()?.id).await?;
        if self.store.user_totp(user.id).await?.is_none() {
            return Err(Error::Conflict("two-factor authentication is off".into()));
        }
        if self.second_factor_required(&user.role).await {
            return Err(Error::Conflict(format!(
                "the {} role requires a second factor; it cannot be turned off",
                user.role
            )));
        }
        match (code, password) {
            (Some(code), _) => {
                let code = Code::parse(code)?;
                self.check_code(&user, &code, false, &principal.origin)
                    .await?;
            }
            (None, Some(password)) => match self.check_password(&user, password).await? {
                Guess::Right => {}
                Guess::Wrong(_) => {
                    return Err(Error::Unauthorized("the password is wrong".into()));
                }
                Guess::Locked {
                    attempts, until, ..
                } => {
                    return Err(Error::Locked { attempts, until });
                }
            },
            (None, None) => {
                return Err(Error::Invalid("give a current code or the password".into()));
            }
        }
        let mut tx = self.store.begin_write().await?;
        tx.delete_totp(user.id).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "2fa_disabled",
                "user",
                user.id,
                "two-factor authentication turned off",
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Where the principal's second factor stands.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without an account; store errors.
    pub async fn second_factor_status(&self, principal: &Principal) -> Result<SecondFactorStatus> {
        let user = principal.account()?;
        self.second_factor_of(user).await
    }

    /// Where `user`'s second factor stands.
    pub(crate) async fn second_factor_of(&self, user: &UserRow) -> Result<SecondFactorStatus> {
        let totp = self.store.user_totp(user.id).await?;
        let (left, total) = self.store.recovery_code_counts(user.id).await?;
        Ok(SecondFactorStatus {
            enabled: totp.as_ref().is_some_and(|t| t.confirmed_at.is_some()),
            pending: totp.as_ref().is_some_and(|t| t.confirmed_at.is_none()),
            required: self.second_factor_required(&user.role).await,
            recovery_codes_left: left,
            recovery_codes_total: total,
        })
    }

    /// Replaces the principal's recovery codes with new ones, shown this once; the old ones
    /// stop working.
    ///
    /// # Errors
    /// [`Error::Conflict`] while two-factor authentication is off.
    pub async fn regenerate_recovery_codes(&self, principal: &Principal) -> Result<Vec<String>> {
        principal.require_session("making recovery codes")?;
        let user = principal.account()?;
        if !self.second_factor_of(user).await?.enabled {
            return Err(Error::Conflict(
                "two-factor authentication is off; recovery codes come with it".into(),
            ));
        }
        let (shown, stored) = recovery_codes(RECOVERY_CODES)?;
        let mut tx = self.store.begin_write().await?;
        tx.replace_recovery_codes(user.id, &stored, self.now())
            .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "recovery_codes_regenerated",
                "user",
                user.id,
                "recovery codes replaced",
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(shown)
    }

    /// Counts an attempt at `user`'s credentials before `check` runs, so that a burst of
    /// parallel guesses gets no more checks than the lockout threshold allows; the attempt that
    /// reaches the threshold with a wrong answer, and any beyond it, lock the account. `check`
    /// says why an answer is wrong.
    pub(crate) async fn counted_check<F>(&self, user: &UserRow, check: F) -> Result<Guess>
    where
        F: Future<Output = Result<std::result::Result<(), &'static str>>>,
    {
        let now = self.now();
        let policy = self.policy_now().await;
        let threshold = i64::from(policy.lockout_threshold.max(1));
        let mut tx = self.store.begin_write().await?;
        let counted = tx.count_password_attempt(user.id, now).await?;
        tx.commit().await?;
        let Some(attempt) = counted else {
            let until = self
                .store
                .user(user.id)
                .await?
                .and_then(|u| u.locked_until)
                .unwrap_or(now);
            return Ok(Guess::Locked {
                attempts: policy.lockout_threshold,
                until,
                now: false,
            });
        };
        let reason = if attempt <= threshold {
            match check.await? {
                Ok(()) => {
                    // A right password may be followed by a second factor rather than a
                    // session (which would clear the count): only wrong answers add up.
                    let mut tx = self.store.begin_write().await?;
                    tx.uncount_attempt(user.id).await?;
                    tx.commit().await?;
                    return Ok(Guess::Right);
                }
                Err(reason) => reason,
            }
        } else {
            "too many attempts"
        };
        if attempt < threshold {
            return Ok(Guess::Wrong(reason));
        }
        let until = now + Duration::minutes(i64::from(policy.lockout_minutes));
        let mut tx = self.store.begin_write().await?;
        tx.lock_user(user.id, until).await?;
        tx.commit().await?;
        Ok(Guess::Locked {
            attempts: u32::try_from(attempt).unwrap_or(u32::MAX),
            until,
            now: true,
        })
    }
}

/// Whether `role` names a role, for the policy's list of roles that need a second factor.
pub(crate) fn check_roles(roles: &[String]) -> Result<()> {
    for role in roles {
        Role::parse(role).map_err(|e| Error::Invalid(format!("second_factor_roles: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_or_recovery_codes() {
        assert!(matches!(Code::parse(" 123 456 "), Ok(Code::Totp(c)) if c == "123456"));
        assert!(matches!(
            Code::parse("abcd-efgh-2345"),
            Ok(Code::Recovery(_))
        ));
        assert!(matches!(
            Code::parse("ABCD EFGH 2345"),
            Ok(Code::Recovery(_))
        ));
        for bad in [
            "",
            "12345",
            "1234567",
            "abcd-efgh-234",
            "abcd-efgh-2341",
            "'; DROP",
        ] {
            assert!(Code::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn recovery_codes_are_distinct_and_stored_as_their_digests() -> Result<()> {
        let (shown, stored) = recovery_codes(RECOVERY_CODES)?;
        assert_eq!(shown.len(), RECOVERY_CODES);
        let unique: std::collections::BTreeSet<_> = shown.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        for (code, digest) in shown.iter().zip(&stored) {
            let Code::Recovery(parsed) = Code::parse(code)? else {
                panic!("{code} is not a recovery code");
            };
            assert_eq!(&parsed, digest);
            assert!(!digest.contains(&code[..4]));
        }
        Ok(())
    }

    #[test]
    fn a_code_is_accepted_only_in_its_window() -> Result<()> {
        let secret = [7u8; SECRET_BYTES];
        let totp = totp(&secret, "alice:admin")?;
        let now = 1_800_000_000u64;
        let code = totp.generate(now).to_string();
        assert_eq!(totp.check(&code, now), Some(now / STEP_SECONDS));
        assert!(
            totp.check(&code, now + STEP_SECONDS).is_some(),
            "one step of skew"
        );
        assert!(totp.check(&code, now + 3 * STEP_SECONDS).is_none());
        assert!(
            totp.to_url()
                .is_ok_and(|u| u.starts_with("otpauth://totp/certmint:alice_admin?"))
        );
        Ok(())
    }
}
