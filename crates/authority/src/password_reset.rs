//! Forgotten passwords: a single-use, short-lived link by mail, once mail is set up.
//!
//! The request answers the same, at once, whatever the address: the lookup, the token and the
//! mail happen after the answer, so neither its text nor its timing tells whether an account
//! has that address. The link's base is the server's configured public URL, never the request's
//! Host header, which a client chooses. Only the token's digest is stored. Using it sets the
//! password, ends every session and pending login of the account and lifts a lockout; a second
//! factor stays on and is still asked for at the next login.

use std::sync::Arc;

use time::Duration;

use crate::audit::Event;
use crate::email::{Mail, html_escape};
use crate::principal::Origin;
use crate::token::{digest_hex, new_token};
use crate::{Authority, Error, Result, password};

/// How long a reset link works.
pub const RESET_LIFETIME: Duration = Duration::minutes(30);
/// Longest address looked up (RFC 5321's limit on a path).
const MAX_EMAIL_CHARS: usize = 254;

impl Authority {
    /// Sends a reset link to each enabled account with e-mail `email`, in the background;
    /// `link_base` is the server's public URL. Answers at once and the same whether or not
    /// such an account exists or mail is set up.
    ///
    /// # Errors
    /// [`Error::Invalid`] for something that is not an e-mail address.
    pub fn request_password_reset(
        self: &Arc<Self>,
        email: &str,
        link_base: &str,
        origin: &Origin,
    ) -> Result<()> {
        let email = email.trim();
        if email.len() > MAX_EMAIL_CHARS || email.parse::<lettre::Address>().is_err() {
            return Err(Error::Invalid("email must be an e-mail address".into()));
        }
        let authority = Arc::clone(self);
        let (email, base, origin) = (email.to_owned(), link_base.to_owned(), origin.clone());
        tokio::spawn(async move {
            if let Err(e) = authority.send_reset_links(&email, &base, &origin).await {
                tracing::warn!(error = %e, "password reset mail not sent");
            }
        });
        Ok(())
    }

    async fn send_reset_links(&self, email: &str, base: &str, origin: &Origin) -> Result<()> {
        let Some(stored) = self.email_if_enabled().await? else {
            return Ok(());
        };
        for user in self.store.enabled_users_by_email(email).await? {
            let token = new_token("")?;
            let now = self.now();
            let expires_at = now + RESET_LIFETIME;
            let mut tx = self.store.begin_write().await?;
            tx.insert_password_reset(
                user.id,
                &digest_hex(&token),
                origin.ip.as_deref(),
                now,
                expires_at,
            )
            .await?;
            tx.audit(&self.entry(
                Some(&user.username),
                origin,
                Event::new(
                    "password_reset_requested",
                    "user",
                    user.id,
                    "reset link sent by mail",
                ),
            ))
            .await?;
            tx.commit().await?;
            let link = format!(
                "{}/reset-password?token={token}",
                base.trim_end_matches('/')
            );
            let minutes = RESET_LIFETIME.whole_minutes();
            let text = format!(
                "Someone asked to reset the certmint password of the account {}.\n\n\
                 To choose a new password, open this link within {minutes} minutes; it works once:\n\n{link}\n\n\
                 If you did not ask for this, ignore this message: your password stays as it is.\n",
                user.username
            );
            let html = format!(
                "<p>Someone asked to reset the certmint password of the account <b>{}</b>.</p>\
                 <p>To choose a new password, open this link within {minutes} minutes; it works once:</p>\
                 <p><a href=\"{link}\">{link}</a></p>\
                 <p>If you did not ask for this, ignore this message: your password stays as it is.</p>",
                html_escape(&user.username),
                link = html_escape(&link),
            );
            let mail = Mail {
                to: user.email.clone().unwrap_or_else(|| email.to_owned()),
                subject: "certmint password reset".into(),
                text,
                html,
                attachments: Vec::new(),
            };
            self.send_mail(&stored, std::slice::from_ref(&mail)).await?;
        }
        Ok(())
    }

    /// Sets a new password with the token of a reset link, which then stops working; ends
    /// every session and pending login of the account and lifts its lockout.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a password the policy refuses (the token is not used up);
    /// [`Error::Unauthorized`] for a token that is unknown, used or expired.
    pub async fn reset_forgotten_password(
        &self,
        token: &str,
        new: &str,
        origin: &Origin,
    ) -> Result<()> {
        password::check_policy(new, self.policy_now().await.password_min_length)?;
        let hash = password::hash(new).await?;
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let Some(user_id) = tx.use_password_reset(&digest_hex(token), now).await? else {
            drop(tx);
            let mut tx = self.store.begin_write().await?;
            tx.audit(
                &self.entry(
                    None,
                    origin,
                    Event::new(
                        "password_reset_failed",
                        "user",
                        "-",
                        "unknown, used or expired link",
                    )
                    .failed(),
                ),
            )
            .await?;
            tx.commit().await?;
            return Err(Error::Unauthorized(
                "this reset link is unknown, used or expired; ask for a new one".into(),
            ));
        };
        let user = self
            .store
            .user(user_id)
            .await?
            .ok_or_else(|| Error::Unauthorized("the account no longer exists".into()))?;
        tx.set_password(user_id, &hash, now).await?;
        let ended = tx.revoke_sessions(user_id, None, now).await?;
        tx.delete_pending_logins(user_id).await?;
        tx.audit(&self.entry(
            Some(&user.username),
            origin,
            Event::new(
                "password_reset",
                "user",
                user_id,
                format!("password set by a reset link; {ended} sessions ended"),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
