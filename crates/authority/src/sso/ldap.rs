//! LDAP sign-in: certmint binds as a service account, searches for the user's entry, then
//! binds as that entry with the password the user gave.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

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

fn check_field(field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() || value.chars().count() > max || value.chars().any(char::is_control)
    {
        return Err(Error::Invalid(format!(
            "{field} must be 1 to {max} characters without control characters"
        )));
    }
    Ok(())
}

impl LdapConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the bad field.
    pub fn check(&self) -> Result<()> {
        check_field("server", &self.server, MAX_HOST_CHARS)?;
        if self.server.contains(['/', ' ', ':']) && self.server.parse::<std::net::IpAddr>().is_err()
        {
            return Err(Error::Invalid(
                "server is a host name or an address, not a URL".into(),
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
        check_field("group_filter", &self.group_filter, MAX_DN_CHARS)?;
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

impl crate::Authority {
    /// The service account's bind and the base DN of an LDAP provider, for its test.
    pub(crate) async fn test_ldap(
        &self,
        _config: &LdapConfig,
        _password: Option<&str>,
    ) -> Result<String> {
        Err(Error::Upstream("LDAP connections are being built".into()))
    }
}
