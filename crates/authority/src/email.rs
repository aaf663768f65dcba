//! Mail: the SMTP server certmint sends alerts through, and the sending.
//!
//! Trust boundary: the SMTP host is set by an administrator, but the connection still goes
//! through [`outbound::connect`] under the configured [`AddressPolicy`], so settings cannot
//! point the server at its own loopback or private network unless the operator allowed it
//! (`[email] allow_private_targets`). The SMTP password is sealed by the vault at rest and
//! never returned; it is sent only over an encrypted connection.
//!
//! The mail server's certificate is verified against the system's roots and the certificates
//! of certmint's own CAs: a relay inside the organisation usually has a certificate from its
//! private CA, which the system store does not hold.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, Message};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use crate::audit::Event;
use crate::outbound::{self, AddressPolicy, HostError};
use crate::{Authority, Error, Permission, Principal, Result};

/// The settings key.
const KEY: &str = "email";
/// The vault context of the sealed SMTP password.
pub(crate) const PASSWORD_CONTEXT: &str = "smtp-password";
/// The SMTP password, sealed in the email setting.
pub(crate) const SEALED_PASSWORD: crate::sealed_settings::SealedSetting =
    crate::sealed_settings::SealedSetting {
        kind: "smtp_password",
        label: "SMTP password",
        key: KEY,
        field: "sealed_password",
        context: PASSWORD_CONTEXT,
    };
/// The longest a mail server gets to take one batch of mail, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest host name accepted (RFC 1035's limit on a name's text form).
const MAX_HOST_CHARS: usize = 253;
/// Longest user name or password accepted.
const MAX_SECRET_CHARS: usize = 512;

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (submission, port 587).
    #[default]
    StartTls,
    /// TLS from the first byte (submissions, port 465).
    Tls,
    /// No encryption: for a relay on a trusted network. No password is sent over it.
    None,
}

impl SmtpSecurity {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartTls => "starttls",
            Self::Tls => "tls",
            Self::None => "none",
        }
    }
}

impl std::str::FromStr for SmtpSecurity {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            "none" => Ok(Self::None),
            other => Err(Error::Invalid(format!(
                "security '{other}' is none of starttls, tls, none"
            ))),
        }
    }
}

/// The settings as stored: the password sealed, base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stored {
    enabled: bool,
    host: String,
    port: u16,
    security: SmtpSecurity,
    username: Option<String>,
    sealed_password: Option<String>,
    from_address: Option<String>,
}

impl Default for Stored {
    fn default() -> Self {
        Self {
            enabled: false,
            host: String::new(),
            port: 587,
            security: SmtpSecurity::StartTls,
            username: None,
            sealed_password: None,
            from_address: None,
        }
    }
}

impl Stored {
    fn configured(&self) -> bool {
        self.enabled && !self.host.is_empty() && self.from_address.is_some()
    }
}

/// The mail settings as people see them: the password only as whether there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettings {
    /// Whether certmint sends mail.
    pub enabled: bool,
    /// The SMTP server.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is protected.
    pub security: SmtpSecurity,
    /// The user it logs in as, if it logs in.
    pub username: Option<String>,
    /// Whether a password is stored.
    pub password_set: bool,
    /// The sender of the mail.
    pub from_address: Option<String>,
}

impl From<&Stored> for EmailSettings {
    fn from(s: &Stored) -> Self {
        Self {
            enabled: s.enabled,
            host: s.host.clone(),
            port: s.port,
            security: s.security,
            username: s.username.clone(),
            password_set: s.sealed_password.is_some(),
            from_address: s.from_address.clone(),
        }
    }
}

/// A change; `None` leaves a field as it is, and an empty user name or password removes it.
#[derive(Debug, Clone, Default)]
pub struct EmailChange {
    /// Whether certmint sends mail.
    pub enabled: Option<bool>,
    /// The SMTP server.
    pub host: Option<String>,
    /// Its port, 1 to 65535.
    pub port: Option<i64>,
    /// `starttls`, `tls` or `none`.
    pub security: Option<String>,
    /// The user to log in as.
    pub username: Option<String>,
    /// The password to log in with.
    pub password: Option<String>,
    /// The sender of the mail.
    pub from_address: Option<String>,
}

/// A mail to send: one recipient, a subject, the same text as plain text and HTML, and any
/// files attached.
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    pub(crate) to: String,
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
    pub(crate) attachments: Vec<MailAttachment>,
}

/// A file attached to a mail.
#[derive(Debug, Clone)]
pub(crate) struct MailAttachment {
    pub(crate) filename: String,
    pub(crate) content_type: String,
    pub(crate) bytes: Vec<u8>,
}

/// Parses an email address (`user@example.com`), saying which field was wrong.
pub(crate) fn parse_address(text: &str, field: &str) -> Result<Address> {
    text.trim()
        .parse::<Address>()
        .map_err(|_| Error::Invalid(format!("{field}: '{text}' is not an email address")))
}

/// `text` safe inside HTML.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Authority {
    /// Where mail may be sent: public addresses only unless `policy` says otherwise. Set once,
    /// at start; without it, public addresses only.
    ///
    /// # Errors
    /// [`Error::Conflict`] when it was set already.
    pub fn configure_email(&self, policy: AddressPolicy) -> Result<()> {
        self.email_policy
            .set(policy)
            .map_err(|_| Error::Conflict("email is already configured".into()))
    }

    pub(crate) async fn stored_email(&self) -> Result<Stored> {
        match self.store.setting(KEY).await? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| Error::Internal(format!("stored email settings: {e}"))),
            None => Ok(Stored::default()),
        }
    }

    /// The mail settings.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; store errors.
    pub async fn email_settings(&self, principal: &Principal) -> Result<EmailSettings> {
        principal.require(Permission::AdminSystem, "reading the email settings")?;
        Ok(EmailSettings::from(&self.stored_email().await?))
    }

    /// Whether mail is set up and on: what a login page needs to offer password resets. Says
    /// nothing else, so anyone may ask.
    ///
    /// # Errors
    /// Store errors.
    pub async fn email_configured(&self) -> Result<bool> {
        Ok(self.stored_email().await?.configured())
    }

    /// Changes the mail settings. Audited, without the password.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for a port outside 1 to
    /// 65535, an unknown security, a host or sender that is not one, a password with
    /// `security = none`, or turning mail on without a host and sender; store errors.
    pub async fn update_email_settings(
        &self,
        principal: &Principal,
        change: EmailChange,
    ) -> Result<EmailSettings> {
        principal.require(Permission::AdminSystem, "changing the email settings")?;
        let before = self.stored_email().await?;
        let mut after = before.clone();
        if let Some(enabled) = change.enabled {
            after.enabled = enabled;
        }
        if let Some(host) = change.host {
            let host = host.trim().trim_end_matches('.');
            if host.len() > MAX_HOST_CHARS
                || host
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '/')
            {
                return Err(Error::Invalid(format!(
                    "host: give a host name or address of at most {MAX_HOST_CHARS} characters"
                )));
            }
            host.clone_into(&mut after.host);
        }
        if let Some(port) = change.port {
            after.port = u16::try_from(port)
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| Error::Invalid("port: give a port from 1 to 65535".into()))?;
        }
        if let Some(security) = change.security {
            after.security = security.parse()?;
        }
        if let Some(username) = change.username {
            if username.len() > MAX_SECRET_CHARS {
                return Err(Error::Invalid(format!(
                    "username: at most {MAX_SECRET_CHARS} characters"
                )));
            }
            after.username = Some(username).filter(|u| !u.is_empty());
        }
        if let Some(password) = change.password {
            if password.len() > MAX_SECRET_CHARS {
                return Err(Error::Invalid(format!(
                    "password: at most {MAX_SECRET_CHARS} characters"
                )));
            }
            after.sealed_password = if password.is_empty() {
                None
            } else {
                Some(B64.encode(self.vault.seal(password.as_bytes(), PASSWORD_CONTEXT)?))
            };
        }
        if let Some(from) = change.from_address {
            after.from_address = if from.trim().is_empty() {
                None
            } else {
                Some(parse_address(&from, "from_address")?.to_string())
            };
        }
        if after.security == SmtpSecurity::None && after.sealed_password.is_some() {
            return Err(Error::Invalid(
                "a password is sent only over an encrypted connection: choose starttls or tls"
                    .into(),
            ));
        }
        if after.enabled && (after.host.is_empty() || after.from_address.is_none()) {
            return Err(Error::Invalid(
                "turning email on needs a host and a from_address".into(),
            ));
        }
        if after == before {
            return Ok(EmailSettings::from(&after));
        }
        let value = serde_json::to_value(&after)
            .map_err(|e| Error::Internal(format!("email settings: {e}")))?;
        let mut changed = Vec::new();
        let mut note = |name: &str, was: String, now: String| {
            if was != now {
                changed.push(format!("{name} {was} → {now}"));
            }
        };
        note(
            "enabled",
            before.enabled.to_string(),
            after.enabled.to_string(),
        );
        note("host", before.host.clone(), after.host.clone());
        note("port", before.port.to_string(), after.port.to_string());
        note(
            "security",
            before.security.as_str().into(),
            after.security.as_str().into(),
        );
        note(
            "username",
            before.username.clone().unwrap_or_default(),
            after.username.clone().unwrap_or_default(),
        );
        note(
            "from_address",
            before.from_address.clone().unwrap_or_default(),
            after.from_address.clone().unwrap_or_default(),
        );
        if before.sealed_password != after.sealed_password {
            changed.push("password changed".into());
        }
        let mut tx = self.store.begin_write().await?;
        tx.set_setting(KEY, &value, self.now()).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "email_settings_updated",
                "settings",
                KEY,
                changed.join(", "),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(EmailSettings::from(&after))
    }

    /// Sends a test message to `to` with the stored settings, whether or not mail is on.
    /// Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for an address that is
    /// not one, no host or sender set, or a mail server refused by the address policy;
    /// [`Error::Upstream`] when the mail server cannot be reached or refuses the message.
    pub async fn send_test_email(&self, principal: &Principal, to: &str) -> Result<()> {
        principal.require(Permission::AdminSystem, "sending a test email")?;
        let to = parse_address(to, "to")?.to_string();
        let stored = self.stored_email().await?;
        let text = "This is a test message from certmint: mail from this server reaches you.";
        let mail = Mail {
            to: to.clone(),
            subject: "certmint test message".into(),
            text: format!("{text}\n"),
            html: format!("<p>{}</p>", html_escape(text)),
            attachments: Vec::new(),
        };
        let outcome = self.send_mail(&stored, std::slice::from_ref(&mail)).await;
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "email_test_sent",
                "settings",
                KEY,
                match &outcome {
                    Ok(()) => format!("test message to {to} accepted"),
                    Err(e) => format!("test message to {to} failed: {e}"),
                },
            ),
        ))
        .await?;
        tx.commit().await?;
        outcome
    }

    /// The mail settings when mail is on, for the senders.
    pub(crate) async fn email_if_enabled(&self) -> Result<Option<Stored>> {
        let stored = self.stored_email().await?;
        Ok(stored.configured().then_some(stored))
    }

    /// Sends `mails` through the server of `settings`, over one connection.
    pub(crate) async fn send_mail(&self, stored: &Stored, mails: &[Mail]) -> Result<()> {
        let from = stored
            .from_address
            .as_deref()
            .filter(|_| !stored.host.is_empty())
            .ok_or_else(|| {
                Error::Invalid("set a host and a from_address before sending email".into())
            })?;
        let from: Mailbox = Mailbox::new(
            Some("certmint".into()),
            parse_address(from, "from_address")?,
        );
        let date = SystemTime::from(self.now());
        let messages = mails
            .iter()
            .map(|m| {
                let mut body = MultiPart::alternative_plain_html(m.text.clone(), m.html.clone());
                if !m.attachments.is_empty() {
                    body = attach(body, &m.attachments)?;
                }
                Message::builder()
                    .from(from.clone())
                    .to(Mailbox::new(None, parse_address(&m.to, "to")?))
                    .subject(m.subject.clone())
                    .date(date)
                    .multipart(body)
                    .map_err(|e| Error::Internal(format!("building a mail: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let password = stored
            .sealed_password
            .as_deref()
            .map(|sealed| {
                let sealed = B64
                    .decode(sealed)
                    .map_err(|e| Error::Internal(format!("stored SMTP password: {e}")))?;
                let plain = self.vault.open(&sealed, PASSWORD_CONTEXT)?;
                String::from_utf8(plain.to_vec())
                    .map_err(|_| Error::Internal("stored SMTP password is not UTF-8".into()))
            })
            .transpose()?;
        let policy = self
            .email_policy
            .get()
            .cloned()
            .unwrap_or_else(AddressPolicy::public_only);
        let deadline = Instant::now() + SEND_TIMEOUT;
        let target = format!("{}:{}", stored.host, stored.port);
        let refused = |e: &dyn std::fmt::Display| {
            tracing::warn!(target, "sending mail failed: {e}");
            Error::Upstream(format!(
                "the mail server {target} did not take the mail: {e}"
            ))
        };
        let roots = match stored.security {
            SmtpSecurity::None => Vec::new(),
            SmtpSecurity::StartTls | SmtpSecurity::Tls => self
                .store
                .cas()
                .await?
                .into_iter()
                .map(|ca| ca.cert.der)
                .collect(),
        };
        let session = async {
            let mut conn = connect(stored, &policy, &roots, deadline, from.email.domain()).await?;
            if let (Some(user), Some(password)) = (&stored.username, password) {
                conn.auth(
                    &[Mechanism::Plain, Mechanism::Login],
                    &Credentials::new(user.clone(), password),
                )
                .await
                .map_err(|e| refused(&e))?;
            }
            for message in &messages {
                conn.send(message.envelope(), &message.formatted())
                    .await
                    .map_err(|e| refused(&e))?;
            }
            // The mail is accepted; a server that drops the line at QUIT changes nothing.
            let _ = conn.quit().await;
            Ok(())
        };
        timeout_at(deadline, session)
            .await
            .map_err(|_| refused(&format!("no answer within {SEND_TIMEOUT:?}")))?
    }
}

/// `body` followed by `attachments`, as a multipart/mixed body.
fn attach(body: MultiPart, attachments: &[MailAttachment]) -> Result<MultiPart> {
    attachments
        .iter()
        .try_fold(MultiPart::mixed().multipart(body), |mixed, a| {
            let content_type = ContentType::parse(&a.content_type)
                .map_err(|e| Error::Internal(format!("attachment type {}: {e}", a.content_type)))?;
            Ok(mixed.singlepart(
                Attachment::new(a.filename.clone()).body(a.bytes.clone(), content_type),
            ))
        })
}

/// Connects to the mail server under `policy`, through TLS when asked (its certificate
/// chaining to the system's roots or to one of `own_roots`, DER), and says hello.
async fn connect(
    stored: &Stored,
    policy: &AddressPolicy,
    own_roots: &[Vec<u8>],
    deadline: Instant,
    hello: &str,
) -> Result<AsyncSmtpConnection> {
    let target = format!("{}:{}", stored.host, stored.port);
    let tcp = outbound::connect_host(policy, &stored.host, stored.port, deadline)
        .await
        .map_err(|e| match e {
            HostError::Refused { range, .. } => Error::Invalid(format!(
                "the mail server {target} is at a {range} address, which outbound connections \
                 do not reach (allow it with [email] allow_private_targets)"
            )),
            HostError::Failed(e) => Error::Upstream(format!("could not connect to {target}: {e}")),
            other => Error::Upstream(other.to_string()),
        })?;
    let client = ClientId::Domain(hello.to_owned());
    let smtp_error = |e: lettre::transport::smtp::Error| {
        Error::Upstream(format!("the mail server {target} failed: {e}"))
    };
    match stored.security {
        SmtpSecurity::Tls => {
            let tls = implicit_tls(tcp, &stored.host, own_roots).await?;
            AsyncSmtpConnection::connect_with_transport(Box::new(tls), &client)
                .await
                .map_err(smtp_error)
        }
        SmtpSecurity::StartTls => {
            let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &client)
                .await
                .map_err(smtp_error)?;
            let params = own_roots
                .iter()
                .try_fold(TlsParameters::builder(stored.host.clone()), |b, der| {
                    Ok(b.add_root_certificate(Certificate::from_der(der.clone())?))
                })
                .and_then(|b| b.build_rustls())
                .map_err(smtp_error)?;
            conn.starttls(params, &client).await.map_err(smtp_error)?;
            Ok(conn)
        }
        SmtpSecurity::None => AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &client)
            .await
            .map_err(smtp_error),
    }
}

/// A TLS connection to the mail server, verified against the system's roots and `own_roots`.
async fn implicit_tls(tcp: TcpStream, host: &str, own_roots: &[Vec<u8>]) -> Result<TlsStream> {
    let config = outbound::tls_client_config(own_roots)
        .map_err(|e| Error::Internal(format!("TLS for mail: {e}")))?;
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| Error::Invalid(format!("'{host}' is neither a host name nor an address")))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map(TlsStream)
        .map_err(|e| Error::Upstream(format!("the TLS handshake with {host} failed: {e}")))
}

/// A TLS stream lettre can speak SMTP over.
#[derive(Debug)]
struct TlsStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
