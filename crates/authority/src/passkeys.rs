//! Passkeys (WebAuthn): registering them on one's account, and logging in with one.
//!
//! The protocol work (attestation and assertion checks, signature counters, user
//! verification) is webauthn-rs's; this module keeps its state and applies certmint's rules:
//!
//! - A ceremony's two steps may reach different nodes, so the server's half of it lives in the
//!   database for [`CEREMONY_LIFETIME`], found by its challenge (which the browser's answer
//!   carries, signed) and deleted by the step that finishes it: it is finished at most once.
//! - Passkeys are bound to one relying party, built from the settings (the origin browsers
//!   reach the server at, and the RP id). An answer made for another origin or RP id is refused
//!   naming both, and audited: it is what a phishing site relaying a login would produce.
//! - Login is discoverable (the authenticator names the account) and requires user
//!   verification, so a passkey proves two factors; it ends in [`Authority::open_session`]
//!   like every login, where a disabled account is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::Duration;
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::audit::Event;
use crate::principal::{Origin, Principal};
use crate::sessions::{LoginMethod, LoginStep};
use crate::token::{digest_hex, refid};
use crate::{Authority, Error, Result, UserRow};

pub use store::PasskeyRow;

/// How long the second step of a registration or login may follow the first.
pub const CEREMONY_LIFETIME: Duration = Duration::minutes(5);
/// Longest name of a passkey, in characters.
const MAX_NAME_CHARS: usize = 64;
/// Largest browser answer accepted; real ones are a few kilobytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const REGISTER: &str = "register";
const LOGIN: &str = "login";

/// The relying party passkeys are bound to: its id (a domain, the origin's host or a parent
/// of it) and the origin browsers reach this server at.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    id: String,
    origin: Url,
}

impl RelyingParty {
    /// The relying party `id` at `origin` (`https://host[:port]`).
    ///
    /// # Errors
    /// [`Error::Conflict`] naming the problem when `origin` is not an http(s) URL with a domain
    /// name (browsers refuse passkeys for IP addresses), or `id` is neither its host nor a
    /// parent domain of it.
    pub fn new(id: &str, origin: &str) -> Result<Self> {
        let unusable = |why: String| {
            Error::Conflict(format!("passkeys are not available on this server: {why}"))
        };
        let parsed = Url::parse(origin)
            .map_err(|e| unusable(format!("its origin '{origin}' is not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(unusable(format!("its origin '{origin}' is not http(s)")));
        }
        let Some(host) = parsed.domain() else {
            return Err(unusable(format!(
                "its origin '{origin}' has no domain name (browsers refuse passkeys for IP \
                 addresses); set public_url or external_url to a name"
            )));
        };
        let id = if id.is_empty() { host } else { id };
        let parsed = Url::parse(&parsed.origin().ascii_serialization())
            .map_err(|e| unusable(format!("its origin '{origin}': {e}")))?;
        WebauthnBuilder::new(id, &parsed).map_err(|_| {
            unusable(format!(
                "webauthn_rp_id '{id}' is neither the host of '{origin}' nor a parent domain of it"
            ))
        })?;
        Ok(Self {
            id: id.to_owned(),
            origin: parsed,
        })
    }

    /// The RP id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The origin, as browsers write it (`scheme://host[:port]`).
    pub fn origin(&self) -> String {
        self.origin.origin().ascii_serialization()
    }

    fn webauthn(&self) -> Result<Webauthn> {
        WebauthnBuilder::new(&self.id, &self.origin)
            .and_then(|b| b.rp_name("certmint").build())
            .map_err(|e| Error::Internal(format!("WebAuthn relying party: {e}")))
    }
}

/// A registration's server half: webauthn-rs's state and the account's user handle.
#[derive(Serialize, Deserialize)]
struct RegisterState {
    state: PasskeyRegistration,
    user_handle: Uuid,
}

/// The part of the browser's `clientDataJSON` read before webauthn-rs checks it all: the
/// challenge finds the ceremony, and the origin is compared to name a mismatch.
#[derive(Deserialize)]
struct ClientData {
    challenge: String,
    origin: String,
}

/// The hex SHA-256 a ceremony is found by: of the challenge, base64url without padding.
fn challenge_hash(challenge: &[u8]) -> String {
    digest_hex(&URL_SAFE_NO_PAD.encode(challenge))
}

/// Reads a browser answer as `T` and its client data. `Err` carries what is wrong with it.
fn parse_answer<T: serde::de::DeserializeOwned>(
    answer: &Value,
    client_data: impl Fn(&T) -> &[u8],
) -> std::result::Result<(T, ClientData), String> {
    if answer.to_string().len() > MAX_ANSWER_BYTES {
        return Err("the WebAuthn answer is too large".into());
    }
    let parsed: T = serde_json::from_value(answer.clone())
        .map_err(|e| format!("not a WebAuthn answer of this ceremony: {e}"))?;
    let data: ClientData = serde_json::from_slice(client_data(&parsed))
        .map_err(|e| format!("the WebAuthn answer's clientDataJSON is unreadable: {e}"))?;
    Ok((parsed, data))
}

/// Why webauthn-rs refused an answer, for the caller and the audit log.
fn refusal(e: &WebauthnError, rp: &RelyingParty) -> String {
    match e {
        WebauthnError::InvalidRPIDHash => format!(
            "the authenticator answered for another relying party id than this server's '{}' \
             (webauthn_rp_id)",
            rp.id
        ),
        WebauthnError::InvalidRPOrigin => format!(
            "the answer was made for another origin than this server's '{}'",
            rp.origin()
        ),
        WebauthnError::UserNotVerified => "the authenticator did not verify the user (a PIN or \
                                           biometric is required)"
            .into(),
        WebauthnError::UserNotPresent => "the authenticator did not see the user".into(),
        WebauthnError::CredentialPossibleCompromise => {
            "the passkey's signature counter went backwards; it may have been cloned".into()
        }
        // webauthn-rs gives this for an authenticator on the registration's exclusion list too.
        WebauthnError::CredentialAlteredAlgFromRequest => "the authenticator's key is of a type \
                                                           not offered, or this passkey is \
                                                           registered already"
            .into(),
        other => format!("the WebAuthn answer does not verify ({other})"),
    }
}

impl Authority {
    /// The principal's passkeys.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for the command line; store errors.
    pub async fn passkeys(&self, principal: &Principal) -> Result<Vec<PasskeyRow>> {
        Ok(self.store.passkeys(principal.account()?.id).await?)
    }

    /// Starts registering a passkey for the principal: the options for
    /// `navigator.credentials.create()` (a discoverable credential with user verification).
    /// The answer goes to [`Self::passkey_register_finish`] within [`CEREMONY_LIFETIME`].
    ///
    /// # Errors
    /// [`Error::Forbidden`] for an API key; store errors.
    pub async fn passkey_register_start(
        &self,
        principal: &Principal,
        rp: &RelyingParty,
    ) -> Result<Value> {
        principal.require_session("registering a passkey")?;
        let user = self.user(principal.account()?.id).await?;
        let existing = self.store.passkeys(user.id).await?;
        let user_handle = match existing.first() {
            Some(p) => p.user_handle.clone(),
            None => refid()?,
        };
        let user_handle = Uuid::parse_str(&user_handle)
            .map_err(|e| Error::Internal(format!("passkey user handle: {e}")))?;
        let exclude = existing
            .iter()
            .map(|p| URL_SAFE_NO_PAD.decode(&p.credential_id))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Internal(format!("stored passkey credential id: {e}")))?;
        let display = user
            .full_name
            .clone()
            .unwrap_or_else(|| user.username.clone());
        let (options, state) = rp
            .webauthn()?
            .start_passkey_registration(user_handle, &user.username, &display, Some(exclude))
            .map_err(|e| Error::Internal(format!("WebAuthn registration: {e}")))?;
        let hash = challenge_hash(&options.public_key.challenge);
        let state = serde_json::to_string(&RegisterState { state, user_handle })
            .map_err(|e| Error::Internal(format!("WebAuthn state: {e}")))?;
        self.save_ceremony(hash, REGISTER, Some(user.id), state)
            .await?;
        let mut options = serde_json::to_value(options)
            .map_err(|e| Error::Internal(format!("WebAuthn options: {e}")))?;
        // webauthn-rs leaves residence to the authenticator; logging in without a username
        // needs the passkey to live on it, so ask for that.
        options["publicKey"]["authenticatorSelection"]["residentKey"] = "required".into();
        options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = true.into();
        Ok(options)
    }

    /// Finishes a registration with the browser's answer and stores the passkey under `name`.
    /// Audited, refusals too.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for an API key; [`Error::Invalid`] for a bad name;
    /// [`Error::Malformed`] for an answer that is unreadable, made for another origin or RP
    /// id, for an unknown, used or expired registration, or that does not verify;
    /// [`Error::Conflict`] for a passkey registered already.
    pub async fn passkey_register_finish(
        &self,
        principal: &Principal,
        rp: &RelyingParty,
        name: &str,
        answer: &Value,
    ) -> Result<PasskeyRow> {
        principal.require_session("registering a passkey")?;
        let user = self.user(principal.account()?.id).await?;
        let name = name.trim();
        let name = if name.is_empty() { "Passkey" } else { name };
        if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(Error::Invalid(format!(
                "a passkey's name is at most {MAX_NAME_CHARS} printable characters"
            )));
        }
        let account = &user;
        let refuse = |reason: String| async move {
            self.audit_register_refusal(principal, account, &reason)
                .await?;
            Err::<PasskeyRow, _>(Error::Malformed(reason))
        };
        let (answer, client) = match parse_answer::<RegisterPublicKeyCredential>(answer, |a| {
            &a.response.client_data_json
        }) {
            Ok(parsed) => parsed,
            Err(reason) => return refuse(reason).await,
        };
        if let Some(reason) = origin_mismatch(&client, rp) {
            return refuse(reason).await;
        }
        let Some(state) = self.take_ceremony(&client, REGISTER, Some(user.id)).await? else {
            return refuse("this registration is unknown, used or expired; start again".into())
                .await;
        };
        let state: RegisterState = serde_json::from_str(&state)
            .map_err(|e| Error::Internal(format!("stored WebAuthn state: {e}")))?;
        let passkey = match rp
            .webauthn()?
            .finish_passkey_registration(&answer, &state.state)
        {
            Ok(passkey) => passkey,
            Err(e) => return refuse(refusal(&e, rp)).await,
        };
        let credential = Credential::from(passkey.clone());
        let credential_id = URL_SAFE_NO_PAD.encode(passkey.cred_id());
        let stored = serde_json::to_string(&passkey)
            .map_err(|e| Error::Internal(format!("passkey: {e}")))?;
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let Some(id) = tx
            .insert_passkey(
                &store::NewPasskey {
                    user_id: user.id,
                    credential_id,
                    user_handle: state.user_handle.to_string(),
                    name: name.to_owned(),
                    passkey: stored,
                    sign_count: i64::from(credential.counter),
                    backup_eligible: credential.backup_eligible,
                    backup_state: credential.backup_state,
                },
                now,
            )
            .await?
        else {
            drop(tx);
            let reason = "this passkey is registered already";
            self.audit_register_refusal(principal, &user, reason)
                .await?;
            return Err(Error::Conflict(reason.into()));
        };
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "passkey_registered",
                "user",
                user.id,
                format!("passkey {id} '{name}' registered"),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.store
            .passkeys(user.id)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| Error::Internal(format!("passkey {id} vanished")))
    }

    /// Turns the principal's passkey `id` on or off (`None`: the other way round). Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for an API key; [`Error::NotFound`] when the principal has no such
    /// passkey.
    pub async fn passkey_toggle(
        &self,
        principal: &Principal,
        id: i64,
        enabled: Option<bool>,
    ) -> Result<PasskeyRow> {
        principal.require_session("changing a passkey")?;
        let user_id = principal.account()?.id;
        let mut tx = self.store.begin_write().await?;
        let row = tx
            .set_passkey_enabled(user_id, id, enabled)
            .await?
            .ok_or_else(|| Error::NotFound(format!("you have no passkey {id}")))?;
        let (action, word) = if row.enabled {
            ("passkey_enabled", "enabled")
        } else {
            ("passkey_disabled", "disabled")
        };
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                action,
                "user",
                user_id,
                format!("passkey {id} '{}' {word}", row.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Removes the principal's passkey `id`. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for an API key; [`Error::NotFound`] when the principal has no such
    /// passkey.
    pub async fn passkey_delete(&self, principal: &Principal, id: i64) -> Result<()> {
        principal.require_session("removing a passkey")?;
        let user_id = principal.account()?.id;
        let mut tx = self.store.begin_write().await?;
        let row = tx
            .delete_passkey(user_id, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("you have no passkey {id}")))?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "passkey_deleted",
                "user",
                user_id,
                format!("passkey {id} '{}' removed", row.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Starts a passkey login: the options for `navigator.credentials.get()`, with no
    /// account named (the authenticator offers the passkeys it holds for this RP id) and user
    /// verification required. The answer goes to [`Self::passkey_login_finish`] within
    /// [`CEREMONY_LIFETIME`].
    ///
    /// # Errors
    /// Store errors.
    pub async fn passkey_login_start(&self, rp: &RelyingParty) -> Result<Value> {
        let (mut options, state) = rp
            .webauthn()?
            .start_discoverable_authentication()
            .map_err(|e| Error::Internal(format!("WebAuthn login: {e}")))?;
        // webauthn-rs asks for conditional mediation (autofill); the login page asks when
        // the user presses its button.
        options.mediation = None;
        let hash = challenge_hash(&options.public_key.challenge);
        let state = serde_json::to_string(&state)
            .map_err(|e| Error::Internal(format!("WebAuthn state: {e}")))?;
        self.save_ceremony(hash, LOGIN, None, state).await?;
        serde_json::to_value(options).map_err(|e| Error::Internal(format!("WebAuthn options: {e}")))
    }

    /// Finishes a passkey login with the browser's answer: checks it, updates the passkey's
    /// signature counter and backup state, and opens the session through
    /// [`Self::open_session`]. `username`, when given, must be the passkey's account. Every
    /// refusal is audited with its reason.
    ///
    /// # Errors
    /// [`Error::Malformed`] for an unreadable answer or one made for another origin or RP id;
    /// [`Error::Unauthorized`] for an unknown, used or expired login, an unknown or disabled
    /// passkey, an answer that does not verify, or a disabled account.
    pub async fn passkey_login_finish(
        &self,
        rp: &RelyingParty,
        answer: &Value,
        username: Option<&str>,
        origin: &Origin,
    ) -> Result<LoginStep> {
        let (answer, client) =
            match parse_answer::<PublicKeyCredential>(answer, |a| &a.response.client_data_json) {
                Ok(parsed) => parsed,
                Err(reason) => {
                    self.record_failure(None, "-", origin, &format!("passkey: {reason}"))
                        .await?;
                    return Err(Error::Malformed(reason));
                }
            };
        if let Some(reason) = origin_mismatch(&client, rp) {
            self.record_failure(None, "-", origin, &format!("passkey: {reason}"))
                .await?;
            return Err(Error::Malformed(reason));
        }
        let refuse = |who: String, reason: String| async move {
            self.record_failure(None, &who, origin, &format!("passkey: {reason}"))
                .await?;
            Err::<LoginStep, _>(Error::Unauthorized(reason))
        };
        let Some(state) = self.take_ceremony(&client, LOGIN, None).await? else {
            return refuse(
                "-".into(),
                "this passkey login is unknown, used or expired; start again".into(),
            )
            .await;
        };
        let state: DiscoverableAuthentication = serde_json::from_str(&state)
            .map_err(|e| Error::Internal(format!("stored WebAuthn state: {e}")))?;
        let webauthn = rp.webauthn()?;
        let (user_handle, credential_id) =
            match webauthn.identify_discoverable_authentication(&answer) {
                Ok(found) => found,
                Err(_) => {
                    return refuse(
                    "-".into(),
                    "the authenticator did not name an account (a passkey must be discoverable)"
                        .into(),
                )
                .await;
                }
            };
        let credential_id = URL_SAFE_NO_PAD.encode(credential_id);
        let row = match self.store.passkey_by_credential(&credential_id).await? {
            Some(row) if row.user_handle == user_handle.to_string() => row,
            _ => {
                return refuse("-".into(), "this passkey is not registered here".into()).await;
            }
        };
        let user = self
            .store
            .user(row.user_id)
            .await?
            .ok_or_else(|| Error::Unauthorized("this passkey is not registered here".into()))?;
        let who: String = user.username.chars().take(64).collect();
        if username.is_some_and(|name| name != user.username) {
            return refuse(who, "this passkey is another account's".into()).await;
        }
        if !row.enabled {
            return refuse(who, format!("passkey '{}' is disabled", row.name)).await;
        }
        let mut passkey: Passkey = serde_json::from_str(&row.passkey)
            .map_err(|e| Error::Internal(format!("stored passkey {}: {e}", row.id)))?;
        let result = match webauthn.finish_discoverable_authentication_v2(&answer, state, &passkey)
        {
            Ok(result) => result,
            Err(e) => return refuse(who, refusal(&e, rp)).await,
        };
        passkey.update_credential(&result);
        let used = store::PasskeyUse {
            passkey: serde_json::to_string(&passkey)
                .map_err(|e| Error::Internal(format!("passkey: {e}")))?,
            sign_count: i64::from(result.counter()),
            backup_eligible: result.backup_eligible(),
            backup_state: result.backup_state(),
        };
        let mut tx = self.store.begin_write().await?;
        tx.record_passkey_use(row.id, &used, self.now()).await?;
        tx.commit().await?;
        self.open_session(user, LoginMethod::Passkey, origin).await
    }

    async fn save_ceremony(
        &self,
        challenge_hash: String,
        kind: &str,
        user_id: Option<i64>,
        state: String,
    ) -> Result<()> {
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        tx.insert_ceremony(
            &store::NewCeremony {
                challenge_hash,
                kind: kind.into(),
                user_id,
                state,
                expires_at: now + CEREMONY_LIFETIME,
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the live `kind` ceremony `client`'s challenge names, begun by `user_id`; its
    /// state, or `None` when there is none, it expired, or another user began it.
    async fn take_ceremony(
        &self,
        client: &ClientData,
        kind: &str,
        user_id: Option<i64>,
    ) -> Result<Option<String>> {
        let Ok(challenge) = URL_SAFE_NO_PAD.decode(client.challenge.trim_end_matches('=')) else {
            return Ok(None);
        };
        let mut tx = self.store.begin_write().await?;
        let taken = tx.take_ceremony(&challenge_hash(&challenge), kind).await?;
        tx.commit().await?;
        Ok(taken
            .filter(|c| c.expires_at > self.now() && c.user_id == user_id)
            .map(|c| c.state))
    }

    /// Audits a refused registration.
    async fn audit_register_refusal(
        &self,
        principal: &Principal,
        user: &UserRow,
        reason: &str,
    ) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new("passkey_register_failed", "user", user.id, reason).failed(),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Why `client`'s origin is not `rp`'s, if it is not.
fn origin_mismatch(client: &ClientData, rp: &RelyingParty) -> Option<String> {
    let expected = rp.origin();
    (client.origin.trim_end_matches('/') != expected).then(|| {
        format!(
            "the browser's origin '{}' is not this server's origin '{expected}' (public_url or \
             external_url); open the console at '{expected}'",
            audit_safe(&client.origin)
        )
    })
}

/// At most 200 characters of a client-chosen string, for messages and the audit log.
fn audit_safe(text: &str) -> String {
    crate::audit::printable(&text.chars().take(200).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn relying_party_must_match_its_origin() -> TestResult {
        let rp = RelyingParty::new("", "https://pki.example.com:8443/")?;
        assert_eq!(rp.id(), "pki.example.com");
        assert_eq!(rp.origin(), "https://pki.example.com:8443");
        let parent = RelyingParty::new("example.com", "https://pki.example.com")?;
        assert_eq!(parent.id(), "example.com");
        for (id, origin, says) in [
            (
                "other.com",
                "https://pki.example.com",
                "webauthn_rp_id 'other.com'",
            ),
            (
                "ample.com",
                "https://pki.example.com",
                "webauthn_rp_id 'ample.com'",
            ),
            ("", "https://127.0.0.1:8443", "no domain name"),
            ("", "ftp://pki.example.com", "not http(s)"),
            ("", "not a url", "not a URL"),
        ] {
            let err = RelyingParty::new(id, origin).unwrap_err();
            assert!(
                matches!(&err, Error::Conflict(m) if m.contains(says)),
                "{id} {origin}: {err}"
            );
        }
        Ok(())
    }

    #[test]
    fn an_answer_from_another_origin_is_named() -> TestResult {
        let rp = RelyingParty::new("localhost", "http://localhost:8080")?;
        let same = ClientData {
            challenge: String::new(),
            origin: "http://localhost:8080".into(),
        };
        assert_eq!(origin_mismatch(&same, &rp), None);
        let other = ClientData {
            challenge: String::new(),
            origin: "https://evil.example".into(),
        };
        let said = origin_mismatch(&other, &rp).ok_or("the other origin is not named")?;
        assert!(
            said.contains("'https://evil.example'") && said.contains("'http://localhost:8080'")
        );
        Ok(())
    }
}
