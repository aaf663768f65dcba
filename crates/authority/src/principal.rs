use crate::rbac::{self, Permission, Role};
use crate::{Error, Result, UserRow};

/// Where a request came from, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// Client address.
    pub ip: Option<String>,
    /// Client User-Agent.
    pub user_agent: Option<String>,
}

/// How a principal proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A login session (cookie).
    Session {
        /// Session id.
        id: i64,
        /// The token state-changing requests must echo.
        csrf_token: String,
        /// How the session was opened (`password`, `webauthn`, `mtls`, `sso`).
        method: String,
    },
    /// An API key, limited to its own permissions.
    ApiKey {
        /// Key id.
        id: i64,
        /// The key's permissions (a subset of the owner's).
        permissions: Vec<String>,
    },
    /// The local command line, acting with the operating system user's authority.
    Local,
    /// An ACME account, which proved control of its names (or holds the certificate's key)
    /// before the registration authority acts for it.
    Acme {
        /// The account's id.
        account_id: i64,
    },
    /// An enrollment client (EST, SCEP) that its protocol authenticated (a password, a
    /// challenge, a client certificate) before the registration authority acts for it.
    Enrollment,
}

/// The permission strings a user holds through `role` and the `granted` of their groups,
/// without those another already covers.
pub(crate) fn held(role: Role, granted: &[String]) -> Vec<String> {
    let mut held: Vec<String> = role.permissions().iter().map(|p| (*p).to_owned()).collect();
    for p in granted {
        if !rbac::grants(&held, p) {
            held.push(p.clone());
        }
    }
    held
}

/// What an ACME account may ask of the pipeline once ACME's own checks have passed.
const ACME_PERMISSIONS: &[Permission] = &[
    Permission::WriteCertificates,
    Permission::DeleteCertificates,
];

/// What an EST or SCEP client may ask of the pipeline: certificates, within its profile.
const ENROLLMENT_PERMISSIONS: &[Permission] = &[Permission::WriteCertificates];

/// An authenticated caller: a user, the role it holds now, and the credential it used.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user, or `None` for the local command line.
    pub user: Option<UserRow>,
    /// Name for the audit log.
    pub username: String,
    /// The role held now.
    pub role: Role,
    /// Permission strings held through groups, on top of the role's.
    pub granted: Vec<String>,
    /// How it authenticated.
    pub credential: Credential,
    /// Where the request came from.
    pub origin: Origin,
}

impl Principal {
    /// The local process (the command line, or first start): full authority, audited under
    /// `name`.
    pub fn local(name: &str) -> Self {
        Self {
            user: None,
            username: name.into(),
            role: Role::Admin,
            granted: Vec::new(),
            credential: Credential::Local,
            origin: Origin::default(),
        }
    }

    /// Whether the user holds `wanted`, through the role or a group.
    fn holds(&self, wanted: &str) -> bool {
        rbac::grants(self.role.permissions(), wanted) || rbac::grants(&self.granted, wanted)
    }

    /// Whether the principal may do what `permission` names: the role or a group must grant it
    /// and, for an API key, the key must too.
    pub fn can(&self, permission: Permission) -> bool {
        self.holds(permission.as_str())
            && match &self.credential {
                Credential::ApiKey { permissions, .. } => {
                    rbac::grants(permissions, permission.as_str())
                }
                Credential::Acme { .. } => ACME_PERMISSIONS.contains(&permission),
                Credential::Enrollment => ENROLLMENT_PERMISSIONS.contains(&permission),
                Credential::Session { .. } | Credential::Local => true,
            }
    }

    /// ACME account `account_id` (whose URL names `refid`), calling from `origin`.
    pub fn acme(account_id: i64, refid: &str, origin: Origin) -> Self {
        Self {
            user: None,
            username: format!("acme:{refid}"),
            role: Role::Operator,
            granted: Vec::new(),
            credential: Credential::Acme { account_id },
            origin,
        }
    }

    /// An enrollment client of `protocol` (`est`, `scep`) known as `who` (an EST user name, a
    /// client certificate's subject, a SCEP profile), calling from `origin`.
    pub fn enrollment(protocol: &str, who: &str, origin: Origin) -> Self {
        Self {
            user: None,
            username: format!("{protocol}:{who}"),
            role: Role::Operator,
            granted: Vec::new(),
            credential: Credential::Enrollment,
            origin,
        }
    }

    /// [`Principal::can`], as an error saying what `doing` needs.
    ///
    /// # Errors
    /// [`Error::Forbidden`] when the principal may not.
    pub fn require(&self, permission: Permission, doing: &str) -> Result<()> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("{doing} needs {permission}")))
        }
    }

    /// The permission strings in force: the role's and the groups', narrowed to the key's for
    /// an API key.
    pub fn permissions(&self) -> Vec<String> {
        match &self.credential {
            Credential::ApiKey { permissions, .. } => permissions
                .iter()
                .filter(|p| self.holds(p))
                .cloned()
                .collect(),
            Credential::Acme { .. } => ACME_PERMISSIONS
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            Credential::Enrollment => ENROLLMENT_PERMISSIONS
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            Credential::Session { .. } | Credential::Local => held(self.role, &self.granted),
        }
    }

    /// Refuses anything but a login session, for changes to the credentials that stand above
    /// API keys (the password, the sessions).
    ///
    /// # Errors
    /// [`Error::Forbidden`] for an API key or any other credential.
    pub fn require_session(&self, doing: &str) -> Result<()> {
        match self.credential {
            Credential::Session { .. } => Ok(()),
            _ => Err(Error::Forbidden(format!(
                "{doing} needs a login session; API keys cannot do it"
            ))),
        }
    }

    /// The user behind the principal, for operations on one's own account.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for the local command line, which has no account.
    pub fn account(&self) -> Result<&UserRow> {
        self.user
            .as_ref()
            .ok_or_else(|| Error::Forbidden("this operation needs a user account".into()))
    }

    /// The current session's id, if the principal logged in with one.
    pub fn session_id(&self) -> Option<i64> {
        match self.credential {
            Credential::Session { id, .. } => Some(id),
            _ => None,
        }
    }
}
