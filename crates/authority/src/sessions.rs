//! Logging in and out, and authenticating each request by session cookie or API key.

use time::{Duration, OffsetDateTime};

use crate::audit::Event;
use crate::credentials;
use crate::principal::{Credential, Origin, Principal};
use crate::rbac::Role;
use crate::second_factor::PendingLogin;
use crate::token::{digest_hex, new_token};
use crate::{Authority, Error, Policy, Result, SessionRow, UserRow, password};
use store::NewEvent;

/// Which kind of secret a request presented.
#[derive(Debug, Clone, Copy)]
enum CredentialKind {
    Session,
    ApiKey,
}

/// Bookkeeping writes (last seen, last used) happen at most this often per session or key.
const TOUCH_INTERVAL: Duration = Duration::minutes(1);

/// How long a credential checked against the database is trusted with
/// [`DatabaseDown::TrustRecent`].
pub const OUTAGE_GRACE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What authenticating does with a session or API key when the database cannot be read to
/// check it.
///
/// With `TrustRecent`, a request is let in on a credential this node checked against the
/// database less than [`OUTAGE_GRACE`] ago and that no change on this node has touched since.
/// Only routes that answer from this node's memory alone ask for it (the OCSP responder's
/// status, the metrics): an outage is when operators need them most, and they write nothing and
/// read nothing secret. What such a credential can miss is a change committed on another node
/// while this one cannot reach the database, for at most that long. Every other check (expiry,
/// idle time, enabled, locked) still runs, and so does the route's permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseDown {
    /// Answer [`Error::Unavailable`].
    Refuse,
    /// Use what was checked within [`OUTAGE_GRACE`].
    TrustRecent,
}

/// A credential as found: what it is, its user, the store's credentials generation it was read
/// at, and whether it was only remembered because the database could not be read.
struct Found {
    credential: credentials::Credential,
    user: UserRow,
    granted: Vec<String>,
    generation: u64,
    remembered: bool,
}

pub(crate) const BAD_LOGIN: &str = "invalid username or password";

/// What a password check found.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Guess {
    /// The password is right; the caller clears the failure count.
    Right,
    /// Wrong (for the reason given), and counted.
    Wrong(&'static str),
    /// The account is locked: by this attempt (`now`) or before it.
    Locked {
        /// How many failures locked it.
        attempts: u32,
        /// When passwords are accepted again.
        until: OffsetDateTime,
        /// Whether this attempt locked it.
        now: bool,
    },
}

/// How a login proved who the user is; sessions and the audit log name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// A username and password.
    Password,
    /// A passkey (WebAuthn) with user verification.
    Passkey,
    /// A TLS client certificate mapped to the user.
    ClientCertificate,
    /// A single sign-on provider (OIDC or LDAP).
    Sso,
}

impl LoginMethod {
    /// The name sessions and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Passkey => "webauthn",
            Self::ClientCertificate => "mtls",
            Self::Sso => "sso",
        }
    }

    /// The method a session or pending login names.
    ///
    /// # Errors
    /// [`Error::Internal`] for a name no method has.
    pub fn parse(name: &str) -> Result<Self> {
        [
            Self::Password,
            Self::Passkey,
            Self::ClientCertificate,
            Self::Sso,
        ]
        .into_iter()
        .find(|m| m.as_str() == name)
        .ok_or_else(|| Error::Internal(format!("unknown login method {name}")))
    }

    /// Whether the method proves two factors by itself: a passkey is something the user has,
    /// unlocked by something they know or are (user verification is required).
    pub fn proves_two_factors(self) -> bool {
        matches!(self, Self::Passkey)
    }
}

/// Where a login stands after its first step.
#[derive(Debug, Clone)]
pub enum LoginStep {
    /// Logged in.
    Done(LoginOutcome),
    /// The first step was right; a second factor must follow.
    SecondFactor(PendingLogin),
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    /// Who logged in.
    pub user: UserRow,
    /// The role held.
    pub role: Role,
    /// How the first step was proved.
    pub method: LoginMethod,
    /// The permission strings held: the role's and the groups'.
    pub permissions: Vec<String>,
    /// The session's secret, for the cookie; shown once, stored only as a digest.
    pub token: String,
    /// The token state-changing requests must send as `X-CSRF-Token`.
    pub csrf_token: String,
    /// The session id.
    pub session_id: i64,
    /// The absolute end of the session.
    pub expires_at: OffsetDateTime,
    /// Recovery codes made by this login (when it set up an authenticator), shown this once.
    pub recovery_codes: Vec<String>,
}

impl Authority {
    /// Checks a username and password and opens a session, or a pending login when a second
    /// factor must follow (see [`Self::open_session`]). Every attempt is audited; ten
    /// consecutive failures (by policy) lock the account.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for bad credentials or a disabled account, [`Error::Locked`] for a
    /// locked one.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        origin: &Origin,
    ) -> Result<LoginStep> {
        let attempted: String = username.chars().take(64).collect();
        let user = self.store.user_by_name(username).await?;
        let Some(user) = user else {
            password::verify(password, None).await?;
            self.record_failure(None, &attempted, origin, "unknown user")
                .await?;
            return Err(Error::Unauthorized(BAD_LOGIN.into()));
        };
        match self.check_password(&user, password).await? {
            Guess::Right => {}
            Guess::Wrong(reason) => {
                self.record_failure(None, &attempted, origin, reason)
                    .await?;
                return Err(Error::Unauthorized(BAD_LOGIN.into()));
            }
            Guess::Locked {
                attempts,
                until,
                now: locked_now,
            } => {
                let (reason, locked) = if locked_now {
                    ("wrong password; account locked", Some(user.id))
                } else {
                    ("account locked", None)
                };
                self.record_failure(locked, &attempted, origin, reason)
                    .await?;
                return Err(Error::Locked { attempts, until });
            }
        }
        self.open_session(user, LoginMethod::Password, origin).await
    }

    /// Opens a session for `user`, who has just proved who they are by `method`. Every login
    /// method ends here, so the rules that follow hold for all of them: a disabled account is
    /// refused (whatever an identity provider says), and a second factor is asked for when
    /// [`Self::second_factor_due`] says so.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for a disabled account; store errors.
    pub(crate) async fn open_session(
        &self,
        user: UserRow,
        method: LoginMethod,
        origin: &Origin,
    ) -> Result<LoginStep> {
        let attempted: String = user.username.chars().take(64).collect();
        if !user.enabled {
            self.record_failure(None, &attempted, origin, "account disabled")
                .await?;
            return Err(Error::Unauthorized("account is disabled".into()));
        }
        if let Some(due) = self.second_factor_due(&user, method).await? {
            return self
                .pending_login(user, method, due, origin)
                .await
                .map(LoginStep::SecondFactor);
        }
        self.start_session(user, method, origin)
            .await
            .map(LoginStep::Done)
    }

    /// Writes the session of a login that is complete.
    pub(crate) async fn start_session(
        &self,
        user: UserRow,
        method: LoginMethod,
        origin: &Origin,
    ) -> Result<LoginOutcome> {
        let now = self.now();
        let role = Role::parse(&user.role)?;
        let permissions = crate::principal::held(role, &self.group_permissions(user.id).await?);
        let token = new_token("")?;
        let csrf_token = new_token("")?;
        let absolute = self.policy_now().await.session_absolute_minutes;
        let expires_at = now + Duration::minutes(i64::from(absolute));
        let mut tx = self.store.begin_write().await?;
        tx.record_login_success(user.id, now).await?;
        let session_id = tx
            .insert_session(
                &store::NewSession {
                    user_id: user.id,
                    token_hash: digest_hex(&token),
                    csrf_token: csrf_token.clone(),
                    auth_method: method.as_str().into(),
                    ip_address: origin.ip.clone(),
                    user_agent: origin.user_agent.clone(),
                    expires_at,
                },
                now,
            )
            .await?;
        tx.audit(&self.entry(
            Some(&user.username),
            origin,
            Event::new(
                "login_success",
                "user",
                user.id,
                format!("{} login", method.as_str()),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(LoginOutcome {
            user,
            role,
            method,
            permissions,
            token,
            csrf_token,
            session_id,
            expires_at,
            recovery_codes: Vec::new(),
        })
    }

    /// Audits a failed login; `locked` names the user whose account this attempt locked.
    pub(crate) async fn record_failure(
        &self,
        locked: Option<i64>,
        attempted: &str,
        origin: &Origin,
        reason: &str,
    ) -> Result<()> {
        let event = match locked {
            Some(id) => Event::new("account_locked", "user", id, reason),
            None => Event::new("login_failed", "user", attempted, reason),
        };
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry(Some(attempted), origin, event.failed()))
            .await?;
        if let Some(id) = locked {
            tx.queue_event(
                &NewEvent {
                    event_type: "user_login_failed_lockout".into(),
                    resource_type: "user".into(),
                    resource_id: id.to_string(),
                    payload: serde_json::json!({"user_id": id, "username": attempted}),
                },
                self.now(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Checks `password` against `user`'s for a login or a password change, counted towards
    /// the lockout (see [`Self::counted_check`]).
    ///
    /// # Errors
    /// Store errors; [`Error::Internal`] when hashing fails.
    pub(crate) async fn check_password(&self, user: &UserRow, password: &str) -> Result<Guess> {
        self.counted_check(user, async {
            Ok(
                if password::verify(password, Some(&user.password_hash)).await? {
                    Ok(())
                } else {
                    Err("wrong password")
                },
            )
        })
        .await
    }

    /// Ends the principal's session.
    ///
    /// # Errors
    /// [`Error::Unavailable`] or [`Error::Internal`] when the write fails.
    pub async fn logout(&self, principal: &Principal) -> Result<()> {
        let (Some(user), Some(session)) = (&principal.user, principal.session_id()) else {
            return Ok(());
        };
        let mut tx = self.store.begin_write().await?;
        tx.revoke_session(user.id, session, self.now()).await?;
        tx.audit(&self.entry(
            Some(&principal.username),
            &principal.origin,
            Event::new("logout", "session", session, "logged out"),
        ))
        .await?;
        tx.commit().await.map_err(Error::from)
    }

    /// Authenticates a session cookie.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for an unknown, revoked, idle or expired session, or a user who is
    /// disabled or locked.
    pub async fn authenticate_session(
        &self,
        token: &str,
        origin: Origin,
        down: DatabaseDown,
    ) -> Result<Principal> {
        let now = self.now();
        let digest = digest_hex(token);
        let Found {
            credential,
            user,
            granted,
            generation,
            remembered,
        } = self
            .credential(&digest, CredentialKind::Session, down)
            .await?;
        let credentials::Credential::Session(mut session) = credential else {
            return Err(Error::Unauthorized(
                "session not found; log in again".into(),
            ));
        };
        let policy = self.policy_now().await;
        Self::check_session(&session, now, &policy)?;
        let role = Self::check_user(&user, now, &policy)?;
        if !remembered && now - session.last_seen_at > TOUCH_INTERVAL {
            self.store.touch_session(session.id, now).await?;
            session.last_seen_at = now;
            self.credentials.put(
                digest,
                generation,
                (
                    credentials::Credential::Session(session.clone()),
                    user.clone(),
                    granted.clone(),
                ),
            );
        }
        Ok(Principal {
            username: user.username.clone(),
            user: Some(user),
            role,
            granted,
            credential: Credential::Session {
                id: session.id,
                csrf_token: session.csrf_token,
                method: session.auth_method,
            },
            origin,
        })
    }

    fn check_session(session: &SessionRow, now: OffsetDateTime, policy: &Policy) -> Result<()> {
        let idle = Duration::minutes(i64::from(policy.session_idle_minutes));
        if session.revoked_at.is_some() {
            Err(Error::Unauthorized(
                "session was ended; log in again".into(),
            ))
        } else if now >= session.expires_at {
            Err(Error::Unauthorized("session expired; log in again".into()))
        } else if now - session.last_seen_at > idle {
            Err(Error::Unauthorized(
                "session expired after inactivity; log in again".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// Authenticates an API key.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for an unknown, disabled or expired key, or an owner who is
    /// disabled or locked.
    pub async fn authenticate_api_key(
        &self,
        secret: &str,
        origin: Origin,
        down: DatabaseDown,
    ) -> Result<Principal> {
        let now = self.now();
        let digest = digest_hex(secret);
        let Found {
            credential,
            user,
            granted,
            generation,
            remembered,
        } = self
            .credential(&digest, CredentialKind::ApiKey, down)
            .await?;
        let credentials::Credential::ApiKey(mut key) = credential else {
            return Err(Error::Unauthorized("invalid API key".into()));
        };
        if !key.enabled {
            return Err(Error::Unauthorized("API key is disabled".into()));
        }
        if key.expires_at.is_some_and(|t| now >= t) {
            return Err(Error::Unauthorized("API key has expired".into()));
        }
        let role = Self::check_user(&user, now, &self.policy_now().await)?;
        if !remembered && key.last_used_at.is_none_or(|t| now - t > TOUCH_INTERVAL) {
            self.store.touch_api_key(key.id, now).await?;
            key.last_used_at = Some(now);
            self.credentials.put(
                digest,
                generation,
                (
                    credentials::Credential::ApiKey(key.clone()),
                    user.clone(),
                    granted.clone(),
                ),
            );
        }
        Ok(Principal {
            username: user.username.clone(),
            user: Some(user),
            role,
            granted,
            credential: Credential::ApiKey {
                id: key.id,
                permissions: key.permissions,
            },
            origin,
        })
    }

    /// The session or API key whose secret has SHA-256 `digest`, and its user, as recently
    /// read (see [`credentials`]), or as read within [`OUTAGE_GRACE`] when `down` allows it and
    /// the database cannot be read.
    async fn credential(
        &self,
        digest: &str,
        kind: CredentialKind,
        down: DatabaseDown,
    ) -> Result<Found> {
        let generation = self.store.credentials_generation();
        let found = |(credential, user, granted), remembered| Found {
            credential,
            user,
            granted,
            generation,
            remembered,
        };
        if let Some(cached) = self.credentials.get(digest, generation) {
            return Ok(found(cached, false));
        }
        match self.read_credential(digest, kind).await {
            Ok(read) => {
                self.credentials
                    .put(digest.to_owned(), generation, read.clone());
                Ok(found(read, false))
            }
            Err(Error::Unavailable(detail)) if down == DatabaseDown::TrustRecent => self
                .credentials
                .read_within(digest, generation, OUTAGE_GRACE)
                .map(|remembered| found(remembered, true))
                .ok_or(Error::Unavailable(detail)),
            Err(e) => Err(e),
        }
    }

    /// The session or API key whose secret has SHA-256 `digest`, and its user, from the
    /// database.
    async fn read_credential(
        &self,
        digest: &str,
        kind: CredentialKind,
    ) -> Result<credentials::Login> {
        let (credential, user_id) = match kind {
            CredentialKind::Session => {
                let session =
                    self.store.session_by_token(digest).await?.ok_or_else(|| {
                        Error::Unauthorized("session not found; log in again".into())
                    })?;
                let user_id = session.user_id;
                (credentials::Credential::Session(session), user_id)
            }
            CredentialKind::ApiKey => {
                let key = self
                    .store
                    .api_key_by_hash(digest)
                    .await?
                    .ok_or_else(|| Error::Unauthorized("invalid API key".into()))?;
                let user_id = key.user_id;
                (credentials::Credential::ApiKey(key), user_id)
            }
        };
        let user = self
            .store
            .user(user_id)
            .await?
            .ok_or_else(|| Error::Unauthorized("account no longer exists".into()))?;
        let granted = self.group_permissions(user.id).await?;
        Ok((credential, user, granted))
    }

    /// The role of `user`, who must be enabled and not locked out.
    fn check_user(user: &UserRow, now: OffsetDateTime, policy: &Policy) -> Result<Role> {
        if !user.enabled {
            return Err(Error::Unauthorized("account is disabled".into()));
        }
        if let Some(until) = user.locked_until.filter(|t| *t > now) {
            return Err(Error::Locked {
                attempts: policy.lockout_threshold,
                until,
            });
        }
        Role::parse(&user.role)
    }

    /// The principal's live sessions, newest first.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without an account; store errors.
    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<SessionRow>> {
        let user = principal.account()?;
        let now = self.now();
        let idle = Duration::minutes(i64::from(self.policy_now().await.session_idle_minutes));
        Ok(self
            .store
            .live_sessions(user.id, now)
            .await?
            .into_iter()
            .filter(|s| now - s.last_seen_at <= idle)
            .collect())
    }

    /// Ends one of the principal's sessions.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for a principal that is not a login session; [`Error::NotFound`]
    /// when the principal has no such live session.
    pub async fn revoke_session(&self, principal: &Principal, id: i64) -> Result<()> {
        principal.require_session("ending sessions")?;
        let user = principal.account()?;
        let mut tx = self.store.begin_write().await?;
        if !tx.revoke_session(user.id, id, self.now()).await? {
            return Err(Error::NotFound(format!("no active session {id}")));
        }
        tx.audit(&self.entry(
            Some(&principal.username),
            &principal.origin,
            Event::new("session_revoked", "session", id, "session revoked"),
        ))
        .await?;
        Ok(tx.commit().await?)
    }

    /// Ends all of the principal's sessions but the current one. Returns how many ended.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for a principal that is not a login session; store errors.
    pub async fn revoke_other_sessions(&self, principal: &Principal) -> Result<u64> {
        principal.require_session("ending sessions")?;
        let user = principal.account()?;
        let mut tx = self.store.begin_write().await?;
        let n = tx
            .revoke_sessions(user.id, principal.session_id(), self.now())
            .await?;
        tx.audit(&self.entry(
            Some(&principal.username),
            &principal.origin,
            Event::new(
                "sessions_revoked",
                "user",
                user.id,
                format!("{n} other sessions revoked"),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(n)
    }
}
