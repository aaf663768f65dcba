//! Roles and permission strings, as in the UCM reference: `verb:resource`, `verb:*` and `*`.

use crate::{Error, Result};

/// Every permission string certmint knows, with what it allows.
pub const PERMISSIONS: &[(&str, &str)] = &[
    ("*", "Full access"),
    ("read:*", "Read access to all resources"),
    ("read:certificates", "Read certificates"),
    (
        "write:certificates",
        "Create, renew and update certificates",
    ),
    ("delete:certificates", "Delete and revoke certificates"),
    ("export:keys", "Export private keys"),
    ("read:cas", "Read certificate authorities"),
    ("write:cas", "Create and update certificate authorities"),
    ("delete:cas", "Delete certificate authorities"),
    ("read:csrs", "Read certificate signing requests"),
    ("write:csrs", "Create and sign certificate signing requests"),
    ("delete:csrs", "Delete certificate signing requests"),
    ("read:templates", "Read certificate templates"),
    ("write:templates", "Create and update certificate templates"),
    ("delete:templates", "Delete certificate templates"),
    ("read:truststore", "Read the trust store"),
    ("write:truststore", "Add to and sync the trust store"),
    ("delete:truststore", "Remove from the trust store"),
    (
        "read:acme",
        "Read ACME settings, profiles, accounts, orders and key lists",
    ),
    (
        "write:acme",
        "Change ACME settings and profiles, make and revoke EAB keys, deactivate accounts",
    ),
    (
        "delete:acme",
        "Delete ACME profiles with their accounts and orders",
    ),
    ("read:users", "Read users and roles"),
    ("write:users", "Create and update users"),
    ("delete:users", "Delete users"),
    ("read:audit", "View audit logs"),
    ("delete:audit", "Clean up audit logs"),
    ("read:metrics", "Scrape Prometheus metrics"),
    ("admin:system", "System administration"),
];

/// The four built-in roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything.
    Admin,
    /// Reads everything; runs the PKI (certificates, CAs, CSRs, templates, trust store, ACME).
    Operator,
    /// Reads everything, the audit log and users included; changes nothing.
    Auditor,
    /// Reads the PKI inventory only.
    Viewer,
}

impl Role {
    /// All roles, most privileged first.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Auditor, Role::Viewer];

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a role name.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the accepted values.
    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == name)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown role '{name}'; expected one of admin, operator, auditor, viewer"
                ))
            })
    }

    /// What the role may do.
    pub fn permissions(self) -> &'static [&'static str] {
        match self {
            Role::Admin => &["*"],
            Role::Operator => &[
                "read:*",
                "write:certificates",
                "delete:certificates",
                "export:keys",
                "write:cas",
                "write:csrs",
                "delete:csrs",
                "write:templates",
                "write:truststore",
                "write:acme",
            ],
            Role::Auditor => &["read:*"],
            Role::Viewer => &[
                "read:certificates",
                "read:cas",
                "read:csrs",
                "read:templates",
                "read:truststore",
                "read:acme",
            ],
        }
    }

    /// What the role is for.
    pub fn description(self) -> &'static str {
        match self {
            Role::Admin => "Full access to everything",
            Role::Operator => {
                "Reads everything; manages certificates, CAs, CSRs, templates, the trust store \
                 and ACME"
            }
            Role::Auditor => "Reads everything, including the audit log and users; changes nothing",
            Role::Viewer => {
                "Reads the certificate inventory, CAs, CSRs, templates, the trust store and ACME"
            }
        }
    }
}

/// Whether holding `held` grants `wanted`: `*` grants all, `verb:*` grants every `verb:…`,
/// otherwise only the same string does.
pub fn grants<S: AsRef<str>>(held: &[S], wanted: &str) -> bool {
    let verb = wanted.split_once(':').map(|(v, _)| v);
    held.iter()
        .map(AsRef::as_ref)
        .any(|h| h == "*" || h == wanted || verb.is_some_and(|v| h.strip_suffix(":*") == Some(v)))
}

/// Checks that every string in `wanted` is a known permission that `held` grants, as API key
/// permissions must be.
///
/// # Errors
/// [`Error::Invalid`] for an unknown permission, [`Error::Forbidden`] for one not held.
pub fn check_subset<S: AsRef<str>>(held: &[S], wanted: &[String]) -> Result<()> {
    for p in wanted {
        if !PERMISSIONS.iter().any(|(known, _)| known == p) {
            return Err(Error::Invalid(format!("unknown permission '{p}'")));
        }
        if !grants(held, p) {
            return Err(Error::Forbidden(format!(
                "you cannot grant the permission '{p}', which you do not hold"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_table() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["*"], "delete:users", true),
            (&["*"], "*", true),
            (&["read:*"], "read:audit", true),
            (&["read:*"], "read:*", true),
            (&["read:*"], "write:users", false),
            (&["read:*"], "*", false),
            (&["read:users"], "read:users", true),
            (&["read:users"], "read:*", false),
            (&["read:users"], "read:audit", false),
            (&[], "read:users", false),
        ];
        for (held, wanted, expected) in cases {
            assert_eq!(grants(held, wanted), *expected, "{held:?} grants {wanted}");
        }
    }

    #[test]
    fn subsets() {
        let operator = Role::Operator.permissions();
        assert!(check_subset(operator, &["read:audit".into(), "write:cas".into()]).is_ok());
        assert!(matches!(
            check_subset(operator, &["write:users".into()]),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            check_subset(operator, &["fly:kites".into()]),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn roles_parse_and_viewer_cannot_read_audit() -> Result<()> {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str())?, role);
        }
        assert!(Role::parse("root").is_err());
        assert!(!grants(Role::Viewer.permissions(), "read:audit"));
        assert!(grants(Role::Auditor.permissions(), "read:audit"));
        assert!(!grants(Role::Auditor.permissions(), "write:certificates"));
        Ok(())
    }
}
