//! LDAP sign-in: certmint binds as a service account, searches for the user's entry, then
//! binds as that entry with the password the user gave.
//!
//! Trust boundary: the username comes from anyone at the login page. It must be a username
//! certmint accepts before it goes near the directory, and it is escaped (RFC 4515) into the
//! search filter anyway, so it can only ever be compared, never change the filter's shape. An
//! empty password is refused before any bind: LDAP calls a bind with a name and no password
//! "unauthenticated" and many servers answer it with success. The directory is reached only
//! at addresses the SSO address policy allows, over LDAPS or StartTLS (plain LDAP only when
//! set on purpose), its certificate checked against the system's roots and certmint's own CAs
//! with its host name. What the directory sends is bounded: at most two entries for the user
//! search (a second one refuses the login as ambiguous), at most [`MAX_GROUPS`] groups.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, ResultEntry, Scope, SearchOptions, StdStream};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::{
    ExternalIdentity, MAX_GROUPS, Provider, ProviderInput, ProviderSettings, ProviderTest,
    ProviderType, RoleMapping,
};
use crate::outbound::{self, HostError};
use crate::rbac::Permission;
use crate::sessions::{BAD_LOGIN, LoginStep};
use crate::{Error, Origin, Principal, Result, validate};

/// Longest host name.
const MAX_HOST_CHARS: usize = 253;
/// Longest DN, filter or attribute name.
const MAX_DN_CHARS: usize = 1024;
/// Longest wait for the server, in seconds.
const MAX_TIMEOUT_SECONDS: u32 = 60;

fn default_port() -> u16 {
    636
}
fn yes() -> bool {
    true
}
fn default_user_filter() -> String {
    "(&(objectClass=person)(uid={username}))".into()
}
fn default_username_attribute() -> String {
    "uid".into()
}
fn default_email_attribute() -> String {
    "mail".into()
}
fn default_name_attribute() -> String {
    "cn".into()
}
fn default_group_filter() -> String {
    "(|(member={dn})(uniqueMember={dn}))".into()
}
fn default_timeout() -> u32 {
    10
}

/// An LDAP provider's settings, as the reference's `/settings/ldap` names them where it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// The directory's host name (or address).
    pub server: String,
    /// Its port: 636 for LDAPS, 389 for StartTLS or plain LDAP.
    #[serde(default = "default_port")]
    pub port: u16,
    /// TLS: LDAPS, or StartTLS when `starttls` is set.
    #[serde(default = "yes")]
    pub use_tls: bool,
    /// Upgrade a plain connection with StartTLS rather than speak TLS from the start.
    #[serde(default)]
    pub starttls: bool,
    /// Speak LDAP without TLS: passwords cross the network in clear. Must be set on purpose.
    #[serde(default)]
    pub allow_plain: bool,
    /// Where users (and, without `group_base_dn`, groups) are searched.
    pub base_dn: String,
    /// The service account that searches.
    pub bind_dn: String,
    /// The filter that finds a user; `{username}` is replaced by the escaped login name.
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// The attribute holding the login name.
    #[serde(default = "default_username_attribute")]
    pub username_attribute: String,
    /// The attribute holding the e-mail address.
    #[serde(default = "default_email_attribute")]
    pub email_attribute: String,
    /// The attribute holding the person's name.
    #[serde(default = "default_name_attribute")]
    pub name_attribute: String,
    /// Where groups are searched; `base_dn` when absent.
    #[serde(default)]
    pub group_base_dn: Option<String>,
    /// The filter that finds a user's groups; `{dn}` is replaced by the user's escaped DN.
    #[serde(default = "default_group_filter")]
    pub group_filter: String,
    /// Longest wait for each step with the server, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,
}

/// Refuses a filter that is not one once its placeholder is filled in.
fn check_filter(field: &str, template: &str, placeholder: &str) -> Result<()> {
    ldap3::parse_filter(filled(template, placeholder, "x")).map_err(|()| {
        Error::Invalid(format!(
            "{field} is not an LDAP search filter (RFC 4515), such as (uid={{username}})"
        ))
    })?;
    Ok(())
}

/// `template` with every `placeholder` replaced by `value`, escaped (RFC 4515) so that it is
/// compared as it is: `*`, `(`, `)`, `\` and NUL in it cannot change the filter.
fn filled(template: &str, placeholder: &str, value: &str) -> String {
    template.replace(placeholder, &ldap3::ldap_escape(value))
}

fn check_field(field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() || value.chars().count() > max || value.chars().any(char::is_control)
    {
        return Err(Error::Invalid(format!(
            "{field} must be 1 to {max} characters without control characters"
        )));
    }
    Ok(())
}

impl Default for LdapConfig {
    /// The defaults of every field, with no server, base DN or service account yet.
    fn default() -> Self {
        Self {
            server: String::new(),
            port: default_port(),
            use_tls: true,
            starttls: false,
            allow_plain: false,
            base_dn: String::new(),
            bind_dn: String::new(),
            user_filter: default_user_filter(),
            username_attribute: default_username_attribute(),
            email_attribute: default_email_attribute(),
            name_attribute: default_name_attribute(),
            group_base_dn: None,
            group_filter: default_group_filter(),
            timeout_seconds: default_timeout(),
        }
    }
}

impl LdapConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the bad field.
    pub fn check(&self) -> Result<()> {
        check_field("server", &self.server, MAX_HOST_CHARS)?;
        let host_name = self
            .server
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !host_name && self.server.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::Invalid(
                "server is a host name or an address, not a URL".into(),
            ));
        }
        if self.use_tls && matches!(self.server.parse(), Ok(std::net::IpAddr::V6(_))) {
            // ldap3 hands TLS the URL's bracketed host, which is no certificate name.
            return Err(Error::Invalid(
                "with TLS, name the server by a host name or an IPv4 address".into(),
            ));
        }
        if self.port == 0 {
            return Err(Error::Invalid("port must be 1 to 65535".into()));
        }
        if !self.use_tls && !self.allow_plain {
            return Err(Error::Invalid(
                "LDAP without TLS sends passwords in clear: set allow_plain to use it anyway"
                    .into(),
            ));
        }
        if !self.use_tls && self.starttls {
            return Err(Error::Invalid("starttls needs use_tls".into()));
        }
        check_field("base_dn", &self.base_dn, MAX_DN_CHARS)?;
        check_field("bind_dn", &self.bind_dn, MAX_DN_CHARS)?;
        check_field("user_filter", &self.user_filter, MAX_DN_CHARS)?;
        if !self.user_filter.contains("{username}") {
            return Err(Error::Invalid("user_filter must contain {username}".into()));
        }
        check_filter("user_filter", &self.user_filter, "{username}")?;
        check_field("group_filter", &self.group_filter, MAX_DN_CHARS)?;
        check_filter("group_filter", &self.group_filter, "{dn}")?;
        if let Some(dn) = &self.group_base_dn {
            check_field("group_base_dn", dn, MAX_DN_CHARS)?;
        }
        for (field, value) in [
            ("username_attribute", &self.username_attribute),
            ("email_attribute", &self.email_attribute),
            ("name_attribute", &self.name_attribute),
        ] {
            check_field(field, value, 64)?;
        }
        if !(1..=MAX_TIMEOUT_SECONDS).contains(&self.timeout_seconds) {
            return Err(Error::Invalid(format!(
                "timeout_seconds must be 1 to {MAX_TIMEOUT_SECONDS}"
            )));
        }
        Ok(())
    }
}

/// An entry the directory sent: its DN and its text attributes, by lower-case name.
#[derive(Debug)]
struct Entry {
    dn: String,
    attributes: HashMap<String, Vec<String>>,
}

impl Entry {
    /// An entry from the raw search result, or `None` when it is not shaped like one.
    /// (ldap3's own `SearchEntry::construct` panics on a malformed entry; a directory's answer
    /// must not be able to do that.)
    fn parse(found: ResultEntry) -> Option<Self> {
        let mut parts = found.0.match_id(4)?.expect_constructed()?.into_iter();
        let dn = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
        let mut attributes = HashMap::new();
        for attribute in parts.next()?.expect_constructed()? {
            let mut attribute = attribute.expect_constructed()?.into_iter();
            let name = String::from_utf8(attribute.next()?.expect_primitive()?).ok()?;
            let values = attribute
                .next()?
                .expect_constructed()?
                .into_iter()
                .filter_map(|v| String::from_utf8(v.expect_primitive()?).ok())
                .collect();
            attributes.insert(name.to_ascii_lowercase(), values);
        }
        Some(Self { dn, attributes })
    }

    /// The first value of `attribute`, when it has a non-empty one.
    fn first(&self, attribute: &str) -> Option<&str> {
        self.attributes
            .get(&attribute.to_ascii_lowercase())?
            .iter()
            .map(|v| v.trim())
            .find(|v| !v.is_empty())
    }
}

/// What searches find: the entries, and whether there were more than were asked for.
struct Found {
    entries: Vec<Entry>,
    more: bool,
}

/// A connection to a directory.
struct Directory<'a> {
    ldap: Ldap,
    config: &'a LdapConfig,
    timeout: Duration,
}

impl Directory<'_> {
    fn target(&self) -> String {
        format!("{}:{}", self.config.server, self.config.port)
    }

    fn failed(&self, what: &str, e: &ldap3::LdapError) -> Error {
        let detail = match e {
            ldap3::LdapError::Timeout { .. } => format!("no answer within {:?}", self.timeout),
            other => other.to_string(),
        };
        Error::Upstream(format!("the directory {} {what}: {detail}", self.target()))
    }

    /// A simple bind; the result whatever its code, an error only when there is none.
    async fn bind(&mut self, dn: &str, password: &str) -> Result<ldap3::LdapResult> {
        let timeout = self.timeout;
        match self
            .ldap
            .with_timeout(timeout)
            .simple_bind(dn, password)
            .await
        {
            Ok(result) => Ok(result),
            Err(e) => Err(self.failed("did not answer a bind", &e)),
        }
    }

    /// Binds as the service account, whose password is never empty (an empty one would be an
    /// unauthenticated bind, which many servers answer with success).
    async fn bind_service(&mut self, password: &str) -> Result<()> {
        if password.is_empty() {
            return Err(Error::Invalid(
                "the service account has no bind_password".into(),
            ));
        }
        let dn = self.config.bind_dn.clone();
        let result = self.bind(&dn, password).await?;
        if result.rc != 0 {
            return Err(Error::Upstream(format!(
                "the directory {} refused the service account {dn}: {}",
                self.target(),
                result_text(&result)
            )));
        }
        Ok(())
    }

    /// The first `limit` entries under `base` that match `filter`, with `attributes`.
    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: Vec<&str>,
        limit: usize,
    ) -> Result<Found> {
        let timeout = self.timeout;
        // One more than wanted, so that "more" can be seen.
        let size = i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX);
        let started = self
            .ldap
            .with_search_options(SearchOptions::new().sizelimit(size))
            .with_timeout(timeout)
            .streaming_search(base, scope, filter, attributes)
            .await;
        let mut stream = match started {
            Ok(stream) => stream,
            Err(e) => return Err(self.failed("did not take a search", &e)),
        };
        let mut entries = Vec::new();
        let mut more = false;
        let mut broken = None;
        loop {
            match stream.next().await {
                Ok(Some(item)) if item.is_ref() || item.is_intermediate() => {}
                Ok(Some(item)) => {
                    if entries.len() == limit {
                        more = true;
                        break;
                    }
                    let Some(entry) = Entry::parse(item) else {
                        broken = Some(Error::Upstream(format!(
                            "the directory {} sent a search result that is not an entry",
                            self.target()
                        )));
                        break;
                    };
                    entries.push(entry);
                }
                Ok(None) => break,
                Err(e) => {
                    broken = Some(self.failed("broke off a search", &e));
                    break;
                }
            }
        }
        let id = stream.ldap_handle().last_id();
        let done = stream.finish().await;
        if let Some(e) = broken {
            return Err(e);
        }
        if more {
            // The rest is not read: the server may stop sending it.
            let _ = self.ldap.abandon(id).await;
            return Ok(Found { entries, more });
        }
        match done.rc {
            0 => Ok(Found { entries, more }),
            // sizeLimitExceeded: the server stopped at the limit asked for.
            4 => Ok(Found {
                entries,
                more: true,
            }),
            // noSuchObject
            32 => Err(Error::Upstream(format!(
                "{base} does not exist in the directory {}",
                self.target()
            ))),
            _ => Err(Error::Upstream(format!(
                "the directory {} refused a search under {base}: {}",
                self.target(),
                result_text(&done)
            ))),
        }
    }

    /// Ends the session politely; a directory that has gone changes nothing.
    async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }
}

/// A result's code, name and text, for messages (never the matched DN).
fn result_text(result: &ldap3::LdapResult) -> String {
    let full = result.to_string();
    // "rc=49 (invalidCredentials), dn: \"…\", text: \"…\"": the code and its name.
    let code = full.split(", dn:").next().unwrap_or(&full).to_owned();
    if result.text.trim().is_empty() {
        code
    } else {
        format!(
            "{code}: {}",
            result.text.trim().chars().take(200).collect::<String>()
        )
    }
}

/// A login that did not go through: the audit record's reason, and the client's error.
struct Refusal {
    reason: String,
    error: Error,
}

impl Refusal {
    /// Told to the client as it is.
    fn told(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self {
            error: Error::Unauthorized(reason.clone()),
            reason,
        }
    }

    /// Told to the client as the password login's refusal, so that names cannot be probed.
    fn bad_login(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            error: Error::Unauthorized(BAD_LOGIN.into()),
        }
    }
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Self {
            reason: error.to_string(),
            error,
        }
    }
}

/// The host as an LDAP URL names it.
fn url_host(server: &str) -> String {
    match server.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => server.to_owned(),
    }
}

impl crate::Authority {
    /// A connection to the directory of `config`: under the SSO address policy, then LDAPS,
    /// StartTLS or (when allowed) plain LDAP.
    async fn directory<'a>(&self, config: &'a LdapConfig) -> Result<Directory<'a>> {
        let timeout = Duration::from_secs(config.timeout_seconds.into());
        let target = format!("{}:{}", config.server, config.port);
        let tls = if config.use_tls {
            let roots: Vec<Vec<u8>> = self
                .store
                .cas()
                .await?
                .into_iter()
                .map(|ca| ca.cert.der)
                .collect();
            Some(
                outbound::tls_client_config(&roots)
                    .map_err(|e| Error::Internal(format!("TLS for LDAP: {e}")))?,
            )
        } else {
            None
        };
        let tcp = outbound::connect_host(
            &self.sso_address_policy(),
            &config.server,
            config.port,
            Instant::now() + timeout,
        )
        .await
        .map_err(|e| match e {
            HostError::Refused { range, .. } => Error::Upstream(format!(
                "the directory {target} is at a {range} address, which outbound connections do \
                 not reach (allow it with [sso] allow_private_targets)"
            )),
            other => Error::Upstream(format!("could not reach the directory {target}: {other}")),
        })?;
        let stream = tcp
            .into_std()
            .map_err(|e| Error::Upstream(format!("the connection to {target}: {e}")))?;
        // ldap3 speaks over the stream connected above, to an address the policy allowed;
        // the URL only names the host, which TLS checks the certificate against.
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(timeout)
            .set_std_stream(StdStream::Tcp(stream));
        let scheme = match tls {
            Some(tls) => {
                settings = settings
                    .set_config(Arc::new(tls))
                    .set_starttls(config.starttls);
                if config.starttls { "ldap" } else { "ldaps" }
            }
            None => "ldap",
        };
        let url = format!("{scheme}://{}:{}", url_host(&config.server), config.port);
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &url)
            .await
            .map_err(|e| {
                let detail = match e {
                    ldap3::LdapError::Timeout { .. } => format!("no answer within {timeout:?}"),
                    other => other.to_string(),
                };
                Error::Upstream(format!("could not open LDAP with {target}: {detail}"))
            })?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!("LDAP connection ended: {e}");
            }
        });
        Ok(Directory {
            ldap,
            config,
            timeout,
        })
    }

    /// The service account's bind and the base DN of an LDAP provider, for its test.
    pub(crate) async fn test_ldap(
        &self,
        config: &LdapConfig,
        password: Option<&str>,
    ) -> Result<String> {
        let password = password.unwrap_or_default();
        if password.is_empty() {
            return Err(Error::Invalid(
                "the provider has no bind_password for its service account".into(),
            ));
        }
        let mut directory = self.directory(config).await?;
        let outcome = async {
            directory.bind_service(password).await?;
            let found = directory
                .search(
                    &config.base_dn,
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["1.1"],
                    1,
                )
                .await?;
            if found.entries.is_empty() {
                return Err(Error::Upstream(format!(
                    "the service account cannot read {}",
                    config.base_dn
                )));
            }
            Ok(())
        }
        .await;
        directory.close().await;
        outcome?;
        let how = match (config.use_tls, config.starttls) {
            (true, false) => "LDAPS",
            (true, true) => "StartTLS",
            (false, _) => "plain LDAP, without TLS",
        };
        Ok(format!(
            "connected to {}:{} over {how}, bound as {} and read {}",
            config.server, config.port, config.bind_dn, config.base_dn
        ))
    }

    /// The LDAP provider a login names none of: the only enabled one, else the one the
    /// `/settings/ldap` view manages.
    async fn default_ldap_provider(&self, origin: &Origin) -> Result<i64> {
        let enabled: Vec<_> = self
            .sso_available()
            .await?
            .into_iter()
            .filter(|p| p.kind == ProviderType::Ldap)
            .collect();
        let chosen = match enabled.as_slice() {
            [only] => Some(only.id),
            several => several
                .iter()
                .find(|p| p.name == SETTINGS_PROVIDER)
                .map(|p| p.id),
        };
        match chosen {
            Some(id) => Ok(id),
            None => {
                let reason = if enabled.is_empty() {
                    "no LDAP provider is enabled".to_owned()
                } else {
                    "several LDAP providers are enabled: give provider_id".to_owned()
                };
                self.record_failure(None, "ldap", origin, &reason).await?;
                Err(if enabled.is_empty() {
                    Error::NotFound(reason)
                } else {
                    Error::Invalid(reason)
                })
            }
        }
    }

    /// Logs in with a directory's username and password: the service account finds the
    /// user's one entry, the password is checked by binding as it, and the user is signed in
    /// as [`Self::sso_sign_in`] says. `provider_id` `None` is the only enabled LDAP provider.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] with the reason for a refused login (an unknown name and a
    /// wrong password alike); [`Error::NotFound`] for no such enabled provider;
    /// [`Error::Upstream`] when the directory cannot be reached or refuses the service
    /// account (the details only in the audit record). Every refusal is audited.
    pub async fn ldap_login(
        &self,
        provider_id: Option<i64>,
        username: &str,
        password: &str,
        origin: &Origin,
    ) -> Result<LoginStep> {
        let id = match provider_id {
            Some(id) => id,
            None => self.default_ldap_provider(origin).await?,
        };
        let (provider, secret) = self
            .sso_login_provider(id, ProviderType::Ldap, origin)
            .await?;
        let ProviderSettings::Ldap(config) = &provider.settings else {
            return Err(Error::Internal(format!("provider {id} is not LDAP")));
        };
        match self.ldap_identity(config, secret, username, password).await {
            Ok(who) => self.sso_sign_in(&provider, who, origin).await,
            Err(refusal) => {
                let attempted: String = username.chars().take(64).collect();
                self.record_failure(
                    None,
                    &attempted,
                    origin,
                    &format!("ldap provider {}: {}", provider.name, refusal.reason),
                )
                .await?;
                // Addresses and the directory's own words are for the audit log, not for
                // anyone at the login page.
                Err(match refusal.error {
                    Error::Upstream(_) => Error::Upstream(format!(
                        "the directory of provider {} could not check the login; the audit \
                         log says why",
                        provider.name
                    )),
                    other => other,
                })
            }
        }
    }

    /// Who the directory says `username` is, once `password` is proved right by a bind.
    async fn ldap_identity(
        &self,
        config: &LdapConfig,
        service_password: Option<Zeroizing<String>>,
        username: &str,
        password: &str,
    ) -> std::result::Result<ExternalIdentity, Refusal> {
        if password.is_empty() {
            return Err(Refusal::told(
                "a password is needed: an empty one is never checked against the directory",
            ));
        }
        if validate::username(username).is_err() {
            return Err(Refusal::told(
                "that is not a username certmint accepts (1 to 64 letters, digits, '.', '_', \
                 '-' or '@')",
            ));
        }
        let service_password = service_password.unwrap_or_default();
        let mut directory = self.directory(config).await?;
        let outcome = async {
            directory.bind_service(&service_password).await?;
            let user_filter = filled(&config.user_filter, "{username}", username);
            let found = directory
                .search(
                    &config.base_dn,
                    Scope::Subtree,
                    &user_filter,
                    vec![
                        config.username_attribute.as_str(),
                        config.email_attribute.as_str(),
                        config.name_attribute.as_str(),
                    ],
                    1,
                )
                .await?;
            if found.more {
                return Err(Refusal::told(
                    "the username matches more than one directory entry; an administrator must \
                     make the provider's user_filter match one",
                ));
            }
            let Some(entry) = found.entries.into_iter().next() else {
                return Err(Refusal::bad_login(
                    "no directory entry matches the username",
                ));
            };
            if entry.dn.trim().is_empty() {
                return Err(Refusal::told("the directory's entry has no DN"));
            }
            let group_filter = filled(&config.group_filter, "{dn}", &entry.dn);
            let groups = directory
                .search(
                    config.group_base_dn.as_deref().unwrap_or(&config.base_dn),
                    Scope::Subtree,
                    &group_filter,
                    vec!["cn"],
                    MAX_GROUPS,
                )
                .await?;
            let user_bind = directory.bind(&entry.dn, password).await?;
            match user_bind.rc {
                0 => {}
                // invalidCredentials
                49 => return Err(Refusal::bad_login("wrong password")),
                _ => {
                    return Err(Refusal {
                        reason: format!(
                            "the directory refused the bind: {}",
                            result_text(&user_bind)
                        ),
                        error: Error::Unauthorized(
                            "the directory refused the login (the account may be locked or \
                             disabled there)"
                                .into(),
                        ),
                    });
                }
            }
            let mut group_names = Vec::new();
            for group in groups.entries {
                let names = group.attributes.get("cn").cloned().unwrap_or_default();
                group_names.push(group.dn);
                group_names.extend(names);
            }
            group_names.truncate(MAX_GROUPS);
            Ok(ExternalIdentity {
                username: entry
                    .first(&config.username_attribute)
                    .unwrap_or(username)
                    .to_owned(),
                email: entry.first(&config.email_attribute).map(str::to_owned),
                full_name: entry.first(&config.name_attribute).map(str::to_owned),
                subject: entry.dn,
                groups: group_names,
            })
        }
        .await;
        directory.close().await;
        outcome
    }
}

/// The name of the LDAP provider that `/settings/ldap` shows and changes.
pub const SETTINGS_PROVIDER: &str = "ldap";

/// A change to the LDAP provider `/settings/ldap` manages; absent fields stay as they are
/// (or take their defaults when the provider is made by this change).
#[derive(Debug, Default)]
pub struct LdapSettingsPatch {
    /// On or off.
    pub enabled: Option<bool>,
    /// The role of users no mapping rule matches.
    pub default_role: Option<String>,
    /// Create users at their first login.
    pub auto_create_users: Option<bool>,
    /// Update e-mail, name and mapped role at each login.
    pub auto_update_users: Option<bool>,
    /// Let a first login take over the unlinked local user of the same name.
    pub link_existing: Option<bool>,
    /// Group-to-role rules, replacing the current ones.
    pub role_mappings: Option<Vec<RoleMapping>>,
    /// The service account's password; empty removes it.
    pub bind_password: Option<Zeroizing<String>>,
    /// [`LdapConfig`] fields by their names; an unknown one is refused.
    pub settings: serde_json::Map<String, serde_json::Value>,
}

impl crate::Authority {
    /// The id of the provider `/settings/ldap` manages, once made.
    async fn settings_provider_id(&self) -> Result<Option<i64>> {
        Ok(self
            .reader()
            .sso_providers()
            .await?
            .into_iter()
            .find(|row| {
                row.name == SETTINGS_PROVIDER && row.provider_type == ProviderType::Ldap.as_str()
            })
            .map(|row| row.id))
    }

    /// The LDAP provider `/settings/ldap` manages (the one named `ldap`), `None` before it is
    /// made.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:users`.
    pub async fn ldap_settings(&self, principal: &Principal) -> Result<Option<Provider>> {
        principal.require(Permission::ReadUsers, "reading the LDAP settings")?;
        match self.settings_provider_id().await? {
            Some(id) => Ok(Some(self.stored_sso_provider(id).await?)),
            None => Ok(None),
        }
    }

    /// Changes the LDAP provider `/settings/ldap` manages, making it at the first change.
    /// Audited as any provider change.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for a bad or missing
    /// field (the first change needs `server`, `base_dn` and `bind_dn`).
    pub async fn patch_ldap_settings(
        &self,
        principal: &Principal,
        patch: LdapSettingsPatch,
    ) -> Result<Provider> {
        principal.require(Permission::AdminSystem, "changing the LDAP settings")?;
        let current = match self.settings_provider_id().await? {
            Some(id) => Some(self.stored_sso_provider(id).await?),
            None => None,
        };
        let config = match current.as_ref().map(|p| &p.settings) {
            Some(ProviderSettings::Ldap(config)) => config.clone(),
            _ => LdapConfig::default(),
        };
        let mut fields = match ProviderSettings::Ldap(config).to_json()? {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        fields.extend(patch.settings);
        let settings =
            ProviderSettings::from_json(ProviderType::Ldap, serde_json::Value::Object(fields))?;
        let input = ProviderInput {
            name: SETTINGS_PROVIDER.into(),
            display_name: Some(
                current
                    .as_ref()
                    .map_or_else(|| "LDAP".to_owned(), |p| p.display_name.clone()),
            ),
            icon: current.as_ref().and_then(|p| p.icon.clone()),
            enabled: patch
                .enabled
                .unwrap_or_else(|| current.as_ref().is_some_and(|p| p.enabled)),
            default_role: patch.default_role.unwrap_or_else(|| {
                current
                    .as_ref()
                    .map_or_else(|| "viewer".to_owned(), |p| p.default_role.clone())
            }),
            auto_create_users: patch
                .auto_create_users
                .unwrap_or_else(|| current.as_ref().is_none_or(|p| p.auto_create_users)),
            auto_update_users: patch
                .auto_update_users
                .unwrap_or_else(|| current.as_ref().is_some_and(|p| p.auto_update_users)),
            link_existing: patch
                .link_existing
                .unwrap_or_else(|| current.as_ref().is_some_and(|p| p.link_existing)),
            role_mappings: patch.role_mappings.unwrap_or_else(|| {
                current
                    .as_ref()
                    .map(|p| p.role_mappings.clone())
                    .unwrap_or_default()
            }),
            secret: patch.bind_password,
            settings,
        };
        match current {
            Some(p) => self.update_sso_provider(principal, p.id, input).await,
            None => self.create_sso_provider(principal, input).await,
        }
    }

    /// Tests the LDAP provider `/settings/ldap` manages, as [`Self::test_sso_provider`] does.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`] before the settings
    /// are made.
    pub async fn test_ldap_settings(&self, principal: &Principal) -> Result<ProviderTest> {
        principal.require(Permission::AdminSystem, "testing the LDAP settings")?;
        let id = self.settings_provider_id().await?.ok_or_else(|| {
            Error::NotFound("there are no LDAP settings yet: PATCH /settings/ldap first".into())
        })?;
        self.test_sso_provider(principal, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filled_in_value_cannot_change_the_filter() {
        let template = "(&(objectClass=person)(uid={username}))";
        for (value, expected) in [
            ("jdoe", "(&(objectClass=person)(uid=jdoe))"),
            ("*", "(&(objectClass=person)(uid=\\2a))"),
            (
                "admin)(|(uid=*",
                "(&(objectClass=person)(uid=admin\\29\\28|\\28uid=\\2a))",
            ),
            (
                "*)(uid=*))(|(uid=*",
                "(&(objectClass=person)(uid=\\2a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a))",
            ),
            ("a\\b\0", "(&(objectClass=person)(uid=a\\5cb\\00))"),
        ] {
            let filter = filled(template, "{username}", value);
            assert_eq!(filter, expected, "{value}");
            assert!(ldap3::parse_filter(&filter).is_ok(), "{filter}");
        }
        assert_eq!(
            filled("(member={dn})", "{dn}", "cn=A\\, B,dc=x"),
            "(member=cn=A\\5c, B,dc=x)"
        );
    }

    fn config() -> LdapConfig {
        LdapConfig {
            server: "ldap.example.com".into(),
            base_dn: "dc=example,dc=com".into(),
            bind_dn: "cn=certmint,dc=example,dc=com".into(),
            ..LdapConfig::default()
        }
    }

    #[test]
    fn settings_are_checked_field_by_field() {
        assert!(config().check().is_ok());
        let bad = |change: fn(&mut LdapConfig), field: &str| {
            let mut c = config();
            change(&mut c);
            match c.check() {
                Err(Error::Invalid(m)) => assert!(m.contains(field), "{field}: {m}"),
                other => panic!("{field}: {other:?}"),
            }
        };
        bad(|c| c.server = "ldaps://x".into(), "server");
        bad(|c| c.server = "x@y".into(), "server");
        bad(|c| c.use_tls = false, "allow_plain");
        bad(|c| c.user_filter = "(uid=x)".into(), "{username}");
        bad(|c| c.user_filter = "(uid={username}".into(), "user_filter");
        bad(|c| c.group_filter = "member={dn})(".into(), "group_filter");
        bad(|c| c.timeout_seconds = 0, "timeout_seconds");
        let mut plain = config();
        plain.use_tls = false;
        plain.allow_plain = true;
        assert!(plain.check().is_ok());
        bad(|c| c.server = "2001:db8::1".into(), "host name");
        let mut v6 = plain.clone();
        v6.server = "2001:db8::1".into();
        assert!(v6.check().is_ok());
        assert_eq!(url_host("2001:db8::1"), "[2001:db8::1]");
    }
}
