//! Single sign-on: identity providers (OpenID Connect and LDAP), and what happens when one of
//! them vouches for someone.
//!
//! Trust boundary: a provider is trusted to say who someone is *there*; what that makes them
//! *here* is decided by this module. A provider's subject is linked to one local user at the
//! first login and keeps it; a local user of the same name is taken over only when the
//! provider is set to (`link_existing`), since a name a user chose at the provider must not
//! become an administrator's account here. The role comes from the provider's mapping rules
//! (or its default role), never from a claim naming a role. Every login ends in
//! [`Authority::open_session`], so a disabled local user stays disabled and a role's second
//! factor is still asked for, whatever the provider says.
//!
//! Managing providers needs `admin:system` (a provider that maps a group to `admin` hands out
//! administrators); reading them needs `read:users`, and never shows the secret.

pub mod ldap;
pub mod oidc;

use serde::{Deserialize, Serialize};
use store::{NewUser, SessionRow, SsoProviderFields, SsoProviderRow, UserRow, UserUpdate};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::audit::Event;
use crate::rbac::{Permission, Role};
use crate::sessions::{LoginMethod, LoginStep};
use crate::{Authority, Error, Origin, Principal, Result, outbound, password, validate};

/// The vault context provider secrets are sealed under.
pub(crate) const SECRET_CONTEXT: &str = "sso-provider-secret";

/// Most providers one installation keeps.
const MAX_PROVIDERS: usize = 50;
/// Most mapping rules per provider.
const MAX_MAPPINGS: usize = 100;
/// Longest name, display name, icon, group value.
const MAX_NAME_CHARS: usize = 64;
const MAX_DISPLAY_CHARS: usize = 100;
const MAX_GROUP_CHARS: usize = 512;
/// Longest secret.
const MAX_SECRET_BYTES: usize = 1024;
/// Most groups a login's identity brings that are looked at.
pub(crate) const MAX_GROUPS: usize = 1000;

/// The kinds of provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    /// OpenID Connect: the browser goes to the provider and comes back with a code.
    Oidc,
    /// LDAP: certmint checks the user's password against the directory.
    Ldap,
}

impl ProviderType {
    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Ldap => "ldap",
        }
    }

    /// The type called `name`; `oauth2` is the reference's name for OIDC.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the accepted values (SAML is not offered).
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "oidc" | "oauth2" => Ok(Self::Oidc),
            "ldap" => Ok(Self::Ldap),
            other => Err(Error::Invalid(format!(
                "provider_type '{other}' is not offered: use oidc or ldap"
            ))),
        }
    }
}

/// One mapping rule: members of `group` (an LDAP group's DN or name, a value of the OIDC
/// groups claim; compared without case) get `role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMapping {
    /// The group or claim value.
    pub group: String,
    /// The role it gives.
    pub role: String,
}

/// A provider's type-specific settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSettings {
    /// OpenID Connect.
    Oidc(oidc::OidcConfig),
    /// LDAP.
    Ldap(ldap::LdapConfig),
}

impl ProviderSettings {
    /// The settings of a `kind` provider from their JSON fields, checked.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown field or a bad value.
    pub fn from_json(kind: ProviderType, fields: serde_json::Value) -> Result<Self> {
        let bad = |e: serde_json::Error| {
            Error::Invalid(format!("{} provider settings: {e}", kind.as_str()))
        };
        let settings = match kind {
            ProviderType::Oidc => Self::Oidc(serde_json::from_value(fields).map_err(bad)?),
            ProviderType::Ldap => Self::Ldap(serde_json::from_value(fields).map_err(bad)?),
        };
        match &settings {
            Self::Oidc(c) => c.check()?,
            Self::Ldap(c) => c.check()?,
        }
        Ok(settings)
    }

    /// The type.
    pub fn kind(&self) -> ProviderType {
        match self {
            Self::Oidc(_) => ProviderType::Oidc,
            Self::Ldap(_) => ProviderType::Ldap,
        }
    }

    /// The settings as their JSON fields.
    ///
    /// # Errors
    /// [`Error::Internal`] when they cannot be written (never for these types).
    pub fn to_json(&self) -> Result<serde_json::Value> {
        match self {
            Self::Oidc(c) => serde_json::to_value(c),
            Self::Ldap(c) => serde_json::to_value(c),
        }
        .map_err(|e| Error::Internal(format!("provider settings: {e}")))
    }
}

/// A provider as given to create or replace it.
#[derive(Debug, Clone)]
pub struct ProviderInput {
    /// Unique name.
    pub name: String,
    /// What the login page shows; the name when absent.
    pub display_name: Option<String>,
    /// An icon name for the login page.
    pub icon: Option<String>,
    /// On or off.
    pub enabled: bool,
    /// The role of users when no mapping rule matches.
    pub default_role: String,
    /// Create users on first login.
    pub auto_create_users: bool,
    /// Update e-mail, name and mapped role at each login.
    pub auto_update_users: bool,
    /// Let a first login take over the unlinked local user of the same name.
    pub link_existing: bool,
    /// Group-to-role rules.
    pub role_mappings: Vec<RoleMapping>,
    /// The client secret (OIDC) or bind password (LDAP); `None` keeps the stored one, an empty
    /// string removes it.
    pub secret: Option<Zeroizing<String>>,
    /// The type's settings.
    pub settings: ProviderSettings,
}

/// A provider as shown: never its secret, only whether it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Integer id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// What the login page shows.
    pub display_name: String,
    /// An icon name.
    pub icon: Option<String>,
    /// On or off.
    pub enabled: bool,
    /// The role of users when no rule matches.
    pub default_role: String,
    /// Create users on first login.
    pub auto_create_users: bool,
    /// Update users at each login.
    pub auto_update_users: bool,
    /// Take over the unlinked local user of the same name.
    pub link_existing: bool,
    /// Group-to-role rules.
    pub role_mappings: Vec<RoleMapping>,
    /// Whether a secret is stored.
    pub has_secret: bool,
    /// The type's settings.
    pub settings: ProviderSettings,
    /// How many local users it has signed in.
    pub linked_users: i64,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

impl Provider {
    /// The type.
    pub fn kind(&self) -> ProviderType {
        self.settings.kind()
    }
}

/// A provider as the login page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailableProvider {
    /// Integer id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// What the button says.
    pub display_name: String,
    /// An icon name.
    pub icon: Option<String>,
    /// The type: OIDC is a redirect, LDAP a username and password form.
    pub kind: ProviderType,
}

/// What a provider's test found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderTest {
    /// Whether everything worked.
    pub success: bool,
    /// What was tried and what came of it, for people.
    pub message: String,
}

/// Who a provider says someone is.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExternalIdentity {
    /// The provider's stable id for them (the OIDC `sub`, the LDAP entry's DN).
    pub subject: String,
    /// The login name for a local user made for them.
    pub username: String,
    /// Their e-mail, if the provider gives one.
    pub email: Option<String>,
    /// Their name, if given.
    pub full_name: Option<String>,
    /// The groups (or claim values) the mapping rules look at.
    pub groups: Vec<String>,
}

fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() || value.chars().count() > max || value.chars().any(char::is_control)
    {
        return Err(Error::Invalid(format!(
            "{field} must be 1 to {max} characters without control characters"
        )));
    }
    Ok(())
}

impl ProviderInput {
    /// The row to store: fields checked, the secret (`current` when kept) sealed.
    fn checked(self, authority: &Authority, current: Option<Vec<u8>>) -> Result<SsoProviderFields> {
        let name = self.name.trim().to_owned();
        check_text("name", &name, MAX_NAME_CHARS)?;
        let display_name = self
            .display_name
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| name.clone());
        check_text("display_name", &display_name, MAX_DISPLAY_CHARS)?;
        let icon = self
            .icon
            .map(|i| i.trim().to_owned())
            .filter(|i| !i.is_empty());
        if let Some(icon) = &icon {
            check_text("icon", icon, MAX_NAME_CHARS)?;
        }
        Role::parse(&self.default_role)?;
        if self.role_mappings.len() > MAX_MAPPINGS {
            return Err(Error::Invalid(format!(
                "a provider has at most {MAX_MAPPINGS} role mappings"
            )));
        }
        for rule in &self.role_mappings {
            check_text("a role mapping's group", &rule.group, MAX_GROUP_CHARS)?;
            Role::parse(&rule.role)?;
        }
        let secret = match self.secret {
            None => current,
            Some(s) if s.is_empty() => None,
            Some(s) => {
                if s.len() > MAX_SECRET_BYTES || s.chars().any(char::is_control) {
                    return Err(Error::Invalid(format!(
                        "the secret must be at most {MAX_SECRET_BYTES} bytes without control \
                         characters"
                    )));
                }
                Some(authority.vault.seal(s.as_bytes(), SECRET_CONTEXT)?)
            }
        };
        if self.enabled && secret.is_none() {
            return Err(Error::Invalid(match self.settings.kind() {
                ProviderType::Oidc => "an enabled OIDC provider needs its client_secret".into(),
                ProviderType::Ldap => {
                    "an enabled LDAP provider needs the service account's bind_password".into()
                }
            }));
        }
        Ok(SsoProviderFields {
            name,
            provider_type: self.settings.kind().as_str().into(),
            display_name,
            icon,
            enabled: self.enabled,
            default_role: self.default_role,
            auto_create_users: self.auto_create_users,
            auto_update_users: self.auto_update_users,
            link_existing: self.link_existing,
            config: self.settings.to_json()?.to_string(),
            role_mappings: serde_json::to_string(&self.role_mappings)
                .map_err(|e| Error::Internal(format!("role mappings: {e}")))?,
            secret,
        })
    }
}

/// A stored provider, read back.
fn provider(row: SsoProviderRow, linked_users: i64) -> Result<Provider> {
    let damaged = |what: &str, e: serde_json::Error| {
        Error::Internal(format!("provider {}'s stored {what}: {e}", row.id))
    };
    let kind = ProviderType::parse(&row.provider_type)?;
    let config: serde_json::Value =
        serde_json::from_str(&row.config).map_err(|e| damaged("settings", e))?;
    let settings = match kind {
        ProviderType::Oidc => ProviderSettings::Oidc(
            serde_json::from_value(config).map_err(|e| damaged("settings", e))?,
        ),
        ProviderType::Ldap => ProviderSettings::Ldap(
            serde_json::from_value(config).map_err(|e| damaged("settings", e))?,
        ),
    };
    let role_mappings =
        serde_json::from_str(&row.role_mappings).map_err(|e| damaged("role mappings", e))?;
    Ok(Provider {
        id: row.id,
        name: row.name,
        display_name: row.display_name,
        icon: row.icon,
        enabled: row.enabled,
        default_role: row.default_role,
        auto_create_users: row.auto_create_users,
        auto_update_users: row.auto_update_users,
        link_existing: row.link_existing,
        role_mappings,
        has_secret: row.secret.is_some(),
        settings,
        linked_users,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The role the rules give someone in `groups`: the most privileged one matched, or
/// `default_role` when none matches.
pub(crate) fn mapped_role(
    rules: &[RoleMapping],
    groups: &[String],
    default_role: &str,
) -> Result<Role> {
    let mut best: Option<Role> = None;
    for rule in rules {
        if groups
            .iter()
            .take(MAX_GROUPS)
            .any(|g| g.trim().eq_ignore_ascii_case(rule.group.trim()))
        {
            let role = Role::parse(&rule.role)?;
            let rank = |r: Role| Role::ALL.iter().position(|x| *x == r);
            if best.is_none_or(|b| rank(role) < rank(b)) {
                best = Some(role);
            }
        }
    }
    best.map_or_else(|| Role::parse(default_role), Ok)
}

/// A login name made from what a provider gives: kept when it is one here, else refused.
fn local_username(given: &str) -> Result<String> {
    let name = given.trim().to_owned();
    validate::username(&name).map_err(|_| {
        Error::Unauthorized(format!(
            "the provider's username '{}' is not one certmint accepts (1 to 64 letters, digits, \
             '.', '_', '-' or '@')",
            name.chars().take(64).collect::<String>()
        ))
    })?;
    Ok(name)
}

impl Authority {
    /// Where SSO providers (OIDC discovery, tokens and keys; LDAP servers) may be reached:
    /// public addresses only unless `policy` says otherwise. Set once, at start.
    ///
    /// # Errors
    /// [`Error::Conflict`] when it was set already.
    pub fn configure_sso(&self, policy: outbound::AddressPolicy) -> Result<()> {
        self.sso_policy
            .set(policy)
            .map_err(|_| Error::Conflict("single sign-on is already configured".into()))
    }

    /// The address policy of SSO connections.
    pub(crate) fn sso_address_policy(&self) -> outbound::AddressPolicy {
        self.sso_policy
            .get()
            .cloned()
            .unwrap_or_else(outbound::AddressPolicy::public_only)
    }

    /// Every provider, by name.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:users`.
    pub async fn sso_providers(&self, principal: &Principal) -> Result<Vec<Provider>> {
        principal.require(Permission::ReadUsers, "listing SSO providers")?;
        let counts = self.reader().sso_identity_counts().await?;
        self.reader()
            .sso_providers()
            .await?
            .into_iter()
            .map(|row| {
                let n = counts
                    .iter()
                    .find(|(id, _)| *id == row.id)
                    .map_or(0, |(_, n)| *n);
                provider(row, n)
            })
            .collect()
    }

    /// One provider.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:users`; [`Error::NotFound`].
    pub async fn sso_provider(&self, principal: &Principal, id: i64) -> Result<Provider> {
        principal.require(Permission::ReadUsers, "reading SSO providers")?;
        self.stored_sso_provider(id).await
    }

    /// Provider `id`'s secret in clear, for an administrator moving it elsewhere. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`].
    pub async fn sso_provider_secret(
        &self,
        principal: &Principal,
        id: i64,
    ) -> Result<Option<Zeroizing<String>>> {
        principal.require(Permission::AdminSystem, "reading SSO provider secrets")?;
        let row = self.sso_provider_row(id).await?;
        let secret = self.opened_secret(&row)?;
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "sso_provider_secret_read",
                "sso_provider",
                id,
                format!("the secret of provider {} was shown", row.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// The live sessions opened through single sign-on, newest first (at most 500), with
    /// their users' names.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:users`.
    pub async fn sso_sessions(&self, principal: &Principal) -> Result<Vec<(SessionRow, String)>> {
        principal.require(Permission::ReadUsers, "listing SSO sessions")?;
        Ok(self
            .reader()
            .live_sessions_by_method(LoginMethod::Sso.as_str(), self.now(), 500)
            .await?)
    }

    /// The enabled providers, for the login page. Needs no credential.
    ///
    /// # Errors
    /// Store errors.
    pub async fn sso_available(&self) -> Result<Vec<AvailableProvider>> {
        let mut out = Vec::new();
        for row in self.reader().sso_providers().await? {
            if row.enabled {
                out.push(AvailableProvider {
                    id: row.id,
                    kind: ProviderType::parse(&row.provider_type)?,
                    name: row.name,
                    display_name: row.display_name,
                    icon: row.icon,
                });
            }
        }
        Ok(out)
    }

    /// Creates a provider. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for a bad field;
    /// [`Error::Conflict`] for a taken name or too many providers.
    pub async fn create_sso_provider(
        &self,
        principal: &Principal,
        input: ProviderInput,
    ) -> Result<Provider> {
        principal.require(Permission::AdminSystem, "creating SSO providers")?;
        if self.reader().sso_providers().await?.len() >= MAX_PROVIDERS {
            return Err(Error::Conflict(format!(
                "certmint keeps at most {MAX_PROVIDERS} SSO providers"
            )));
        }
        let fields = input.checked(self, None)?;
        let mut tx = self.store.begin_write().await?;
        let id = tx
            .insert_sso_provider(&fields, self.now())
            .await?
            .ok_or_else(|| Error::Conflict(format!("a provider named '{}' exists", fields.name)))?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "sso_provider_created",
                "sso_provider",
                id,
                format!(
                    "{} provider {} created ({})",
                    fields.provider_type,
                    fields.name,
                    if fields.enabled {
                        "enabled"
                    } else {
                        "disabled"
                    }
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.stored_sso_provider(id).await
    }

    /// Replaces a provider's fields; its type cannot change. Audited.
    ///
    /// # Errors
    /// As [`Self::create_sso_provider`]; [`Error::NotFound`].
    pub async fn update_sso_provider(
        &self,
        principal: &Principal,
        id: i64,
        input: ProviderInput,
    ) -> Result<Provider> {
        principal.require(Permission::AdminSystem, "changing SSO providers")?;
        let before = self.sso_provider_row(id).await?;
        if before.provider_type != input.settings.kind().as_str() {
            return Err(Error::Invalid(format!(
                "provider {id} is an {} provider; its type cannot change",
                before.provider_type
            )));
        }
        let fields = input.checked(self, before.secret.clone())?;
        self.write_sso_provider(principal, id, &fields, "sso_provider_updated", "changed")
            .await
    }

    /// Turns a provider on or off. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`]; [`Error::Invalid`]
    /// when turning on a provider without its secret.
    pub async fn toggle_sso_provider(&self, principal: &Principal, id: i64) -> Result<Provider> {
        principal.require(Permission::AdminSystem, "changing SSO providers")?;
        let row = self.sso_provider_row(id).await?;
        if !row.enabled && row.secret.is_none() {
            return Err(Error::Invalid(format!(
                "provider {} has no secret; set it before enabling the provider",
                row.name
            )));
        }
        let fields = SsoProviderFields {
            enabled: !row.enabled,
            ..fields_of(row)
        };
        let verb = if fields.enabled {
            "enabled"
        } else {
            "disabled"
        };
        self.write_sso_provider(principal, id, &fields, "sso_provider_toggled", verb)
            .await
    }

    async fn write_sso_provider(
        &self,
        principal: &Principal,
        id: i64,
        fields: &SsoProviderFields,
        action: &'static str,
        what: &str,
    ) -> Result<Provider> {
        let mut tx = self.store.begin_write().await?;
        if !tx.update_sso_provider(id, fields, self.now()).await? {
            return Err(Error::NotFound(format!("no SSO provider {id}")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                action,
                "sso_provider",
                id,
                format!("{} provider {} {what}", fields.provider_type, fields.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.stored_sso_provider(id).await
    }

    /// Deletes a provider and the links of its identities; the local users it made stay (and
    /// can be disabled or deleted like any). Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`].
    pub async fn delete_sso_provider(&self, principal: &Principal, id: i64) -> Result<()> {
        principal.require(Permission::AdminSystem, "deleting SSO providers")?;
        let row = self.sso_provider_row(id).await?;
        let mut tx = self.store.begin_write().await?;
        if !tx.delete_sso_provider(id).await? {
            return Err(Error::NotFound(format!("no SSO provider {id}")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "sso_provider_deleted",
                "sso_provider",
                id,
                format!("{} provider {} deleted", row.provider_type, row.name),
            ),
        ))
        .await?;
        Ok(tx.commit().await?)
    }

    /// Checks that certmint can talk to the provider: OIDC discovery and keys, or the LDAP
    /// server's TLS, the service account's bind and the base DN. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`]. A provider that does
    /// not answer is a test that did not succeed, not an error.
    pub async fn test_sso_provider(&self, principal: &Principal, id: i64) -> Result<ProviderTest> {
        principal.require(Permission::AdminSystem, "testing SSO providers")?;
        let row = self.sso_provider_row(id).await?;
        let secret = self.opened_secret(&row)?;
        let name = row.name.clone();
        let found = provider(row, 0)?;
        let outcome = match &found.settings {
            ProviderSettings::Oidc(config) => self.test_oidc(config).await,
            ProviderSettings::Ldap(config) => {
                self.test_ldap(config, secret.as_ref().map(|s| s.as_str()))
                    .await
            }
        };
        let test = match outcome {
            Ok(message) => ProviderTest {
                success: true,
                message,
            },
            Err(e) => ProviderTest {
                success: false,
                message: e.to_string(),
            },
        };
        let event = Event::new(
            "sso_provider_tested",
            "sso_provider",
            id,
            format!("provider {name}: {}", test.message),
        );
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(principal, if test.success { event } else { event.failed() }))
            .await?;
        tx.commit().await?;
        Ok(test)
    }

    /// Provider `id` with its linked-user count, for an operation that checked its own
    /// permission.
    pub(crate) async fn stored_sso_provider(&self, id: i64) -> Result<Provider> {
        let row = self.sso_provider_row(id).await?;
        let n = self
            .reader()
            .sso_identity_counts()
            .await?
            .into_iter()
            .find(|(p, _)| *p == id)
            .map_or(0, |(_, n)| n);
        provider(row, n)
    }

    pub(crate) async fn sso_provider_row(&self, id: i64) -> Result<SsoProviderRow> {
        self.reader()
            .sso_provider(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no SSO provider {id}")))
    }

    /// The enabled provider `id` of `kind`, with its secret opened, for a login; a missing,
    /// disabled or other-typed provider is refused alike, and audited.
    pub(crate) async fn sso_login_provider(
        &self,
        id: i64,
        kind: ProviderType,
        origin: &Origin,
    ) -> Result<(Provider, Option<Zeroizing<String>>)> {
        let row = self.reader().sso_provider(id).await?;
        let Some(row) = row.filter(|r| r.enabled && r.provider_type == kind.as_str()) else {
            self.record_failure(
                None,
                &format!("sso provider {id}"),
                origin,
                &format!("no enabled {} provider {id}", kind.as_str()),
            )
            .await?;
            return Err(Error::NotFound(format!(
                "no enabled {} provider {id}",
                kind.as_str()
            )));
        };
        let secret = self.opened_secret(&row)?;
        Ok((provider(row, 0)?, secret))
    }

    fn opened_secret(&self, row: &SsoProviderRow) -> Result<Option<Zeroizing<String>>> {
        row.secret
            .as_ref()
            .map(|sealed| {
                let clear = self.vault.open(sealed, SECRET_CONTEXT)?;
                String::from_utf8(clear.to_vec())
                    .map(Zeroizing::new)
                    .map_err(|_| {
                        Error::Internal(format!("provider {}'s secret is not text", row.id))
                    })
            })
            .transpose()
    }

    /// Signs in the person `who` that `provider` vouches for: finds the local user their
    /// subject is linked to, or links (and, when allowed, creates) one; updates it when the
    /// provider says to; then opens the session through the one login pipeline. A refusal is
    /// audited with its reason and told to the client as a 401.
    pub(crate) async fn sso_sign_in(
        &self,
        provider: &Provider,
        who: ExternalIdentity,
        origin: &Origin,
    ) -> Result<LoginStep> {
        let attempted: String = who.username.chars().take(64).collect();
        match self.sso_user(provider, &who, origin).await {
            Ok(user) => self.open_session(user, LoginMethod::Sso, origin).await,
            Err(Error::Unauthorized(reason)) => {
                self.record_failure(
                    None,
                    &attempted,
                    origin,
                    &format!(
                        "{} provider {}: {reason}",
                        provider.kind().as_str(),
                        provider.name
                    ),
                )
                .await?;
                Err(Error::Unauthorized(reason))
            }
            Err(e) => Err(e),
        }
    }

    /// The local user `who` is, linked, made or updated as the provider's settings say.
    async fn sso_user(
        &self,
        provider: &Provider,
        who: &ExternalIdentity,
        origin: &Origin,
    ) -> Result<UserRow> {
        if who.subject.is_empty() {
            return Err(Error::Unauthorized(
                "the provider gave no subject for this login".into(),
            ));
        }
        let email = who
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| validate::email(e).is_ok())
            .map(str::to_owned);
        let full_name = who
            .full_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty() && validate::text("full_name", n, 0, 200).is_ok())
            .map(str::to_owned);
        let role = mapped_role(&provider.role_mappings, &who.groups, &provider.default_role)?;
        let now = self.now();
        let linked = self
            .reader()
            .sso_identity_user(provider.id, &who.subject)
            .await?;
        let mut tx = self.store.begin_write().await?;
        let (user_id, event) = if let Some(user_id) = linked {
            if provider.auto_update_users {
                let mut change = UserUpdate {
                    email: email.clone().map(Some),
                    full_name: full_name.clone().map(Some),
                    ..UserUpdate::default()
                };
                let current = self.user(user_id).await?;
                if current.role != role.as_str() {
                    let last_admin = current.role == Role::Admin.as_str()
                        && tx.count_enabled_with_role(Role::Admin.as_str()).await? <= 1;
                    if !last_admin {
                        change.role = Some(role.as_str().into());
                    }
                }
                tx.update_user(user_id, &change, now).await?;
            }
            (user_id, None)
        } else {
            let username = local_username(&who.username)?;
            match self.reader().user_by_name(&username).await? {
                Some(existing) if provider.link_existing => (
                    existing.id,
                    Some(Event::new(
                        "sso_user_linked",
                        "user",
                        existing.id,
                        format!("linked to {} of provider {}", who.subject, provider.name),
                    )),
                ),
                Some(_) => {
                    return Err(Error::Unauthorized(format!(
                        "a local user named {username} exists and is not linked to provider \
                         {}; an administrator can let the provider link it",
                        provider.name
                    )));
                }
                None if provider.auto_create_users => {
                    let unusable = password::hash(&password::generate()?).await?;
                    let id = tx
                        .insert_user(
                            &NewUser {
                                username: username.clone(),
                                email: email.clone(),
                                full_name: full_name.clone(),
                                role: role.as_str().into(),
                                password_hash: unusable,
                            },
                            now,
                        )
                        .await?;
                    (
                        id,
                        Some(Event::new(
                            "sso_user_created",
                            "user",
                            id,
                            format!(
                                "user {username} ({}) created by provider {} for {}",
                                role.as_str(),
                                provider.name,
                                who.subject
                            ),
                        )),
                    )
                }
                None => {
                    return Err(Error::Unauthorized(format!(
                        "there is no user {username} here, and provider {} does not create users",
                        provider.name
                    )));
                }
            }
        };
        tx.link_sso_identity(provider.id, &who.subject, user_id, now)
            .await?;
        if let Some(event) = event {
            tx.audit(&self.entry(Some(&who.username), origin, event))
                .await?;
        }
        tx.commit().await?;
        self.user(user_id).await
    }
}

/// A stored row's fields, to write it back changed.
fn fields_of(row: SsoProviderRow) -> SsoProviderFields {
    SsoProviderFields {
        name: row.name,
        provider_type: row.provider_type,
        display_name: row.display_name,
        icon: row.icon,
        enabled: row.enabled,
        default_role: row.default_role,
        auto_create_users: row.auto_create_users,
        auto_update_users: row.auto_update_users,
        link_existing: row.link_existing,
        config: row.config,
        role_mappings: row.role_mappings,
        secret: row.secret,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(group: &str, role: &str) -> RoleMapping {
        RoleMapping {
            group: group.into(),
            role: role.into(),
        }
    }

    #[test]
    fn the_most_privileged_matching_rule_wins_and_no_match_is_the_default() -> Result<()> {
        let rules = [
            rule("cn=pki-readers,ou=groups,dc=example,dc=com", "viewer"),
            rule("PKI-Admins", "admin"),
            rule("operators", "operator"),
        ];
        let groups = |g: &[&str]| g.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            mapped_role(&rules, &groups(&["operators", "pki-admins"]), "viewer")?,
            Role::Admin
        );
        assert_eq!(
            mapped_role(
                &rules,
                &groups(&["CN=pki-readers,ou=groups,dc=example,dc=com"]),
                "auditor"
            )?,
            Role::Viewer
        );
        assert_eq!(
            mapped_role(&rules, &groups(&["staff"]), "auditor")?,
            Role::Auditor
        );
        assert_eq!(mapped_role(&[], &[], "viewer")?, Role::Viewer);
        Ok(())
    }

    #[test]
    fn a_provider_username_must_be_a_local_one() {
        assert!(local_username("jdoe").is_ok());
        assert!(local_username("j.doe@example.com").is_ok());
        for bad in ["", "j doe", "*)(uid=*", "é", &"x".repeat(65)] {
            assert!(
                matches!(local_username(bad), Err(Error::Unauthorized(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn saml_is_refused_and_oauth2_means_oidc() {
        assert_eq!(ProviderType::parse("oauth2").ok(), Some(ProviderType::Oidc));
        assert!(matches!(
            ProviderType::parse("saml"),
            Err(Error::Invalid(_))
        ));
    }
}
