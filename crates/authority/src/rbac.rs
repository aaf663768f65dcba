//! Roles and permissions, as in the UCM reference: `verb:resource`, `verb:*` and `*`.

use crate::{Error, Result};

/// What a request can need: one `verb:resource` permission. Roles and API keys hold
/// permission strings, which may also be the wildcards in [`WILDCARDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// `read:certificates`: read certificates.
    ReadCertificates,
    /// `write:certificates`: create, renew and update certificates.
    WriteCertificates,
    /// `delete:certificates`: delete and revoke certificates.
    DeleteCertificates,
    /// `export:keys`: export private keys.
    ExportKeys,
    /// `read:cas`: read certificate authorities.
    ReadCas,
    /// `write:cas`: create and update certificate authorities.
    WriteCas,
    /// `delete:cas`: delete certificate authorities.
    DeleteCas,
    /// `read:csrs`: read certificate signing requests.
    ReadCsrs,
    /// `write:csrs`: create and sign certificate signing requests.
    WriteCsrs,
    /// `delete:csrs`: delete certificate signing requests.
    DeleteCsrs,
    /// `read:templates`: read certificate templates.
    ReadTemplates,
    /// `write:templates`: create and update certificate templates.
    WriteTemplates,
    /// `delete:templates`: delete certificate templates.
    DeleteTemplates,
    /// `read:truststore`: read the trust store.
    ReadTruststore,
    /// `write:truststore`: add to and sync the trust store.
    WriteTruststore,
    /// `delete:truststore`: remove from the trust store.
    DeleteTruststore,
    /// `read:acme`: read ACME settings, profiles, accounts, orders and key lists.
    ReadAcme,
    /// `write:acme`: change ACME settings and profiles, make and revoke EAB keys, deactivate accounts.
    WriteAcme,
    /// `delete:acme`: delete ACME profiles with their accounts and orders.
    DeleteAcme,
    /// `read:est`: read the EST settings and statistics.
    ReadEst,
    /// `write:est`: change the EST settings, labels and credentials.
    WriteEst,
    /// `read:scep`: read SCEP settings, profiles, requests and statistics.
    ReadScep,
    /// `write:scep`: change SCEP settings and profiles, make challenges, approve and reject
    /// requests.
    WriteScep,
    /// `read:users`: read users and roles.
    ReadUsers,
    /// `write:users`: create and update users.
    WriteUsers,
    /// `delete:users`: delete users.
    DeleteUsers,
    /// `read:audit`: view audit logs.
    ReadAudit,
    /// `delete:audit`: clean up audit logs.
    DeleteAudit,
    /// `read:metrics`: scrape Prometheus metrics.
    ReadMetrics,
    /// `read:user_certificates`: read everyone's login certificates.
    ReadUserCertificates,
    /// `write:user_certificates`: turn anyone's login certificates on or off, and revoke them.
    WriteUserCertificates,
    /// `delete:user_certificates`: delete anyone's login certificates.
    DeleteUserCertificates,
    /// `admin:system`: system administration.
    AdminSystem,
}

impl Permission {
    /// Every permission, in the order the reference lists them.
    pub const ALL: [Permission; 33] = [
        Permission::ReadCertificates,
        Permission::WriteCertificates,
        Permission::DeleteCertificates,
        Permission::ExportKeys,
        Permission::ReadCas,
        Permission::WriteCas,
        Permission::DeleteCas,
        Permission::ReadCsrs,
        Permission::WriteCsrs,
        Permission::DeleteCsrs,
        Permission::ReadTemplates,
        Permission::WriteTemplates,
        Permission::DeleteTemplates,
        Permission::ReadTruststore,
        Permission::WriteTruststore,
        Permission::DeleteTruststore,
        Permission::ReadAcme,
        Permission::WriteAcme,
        Permission::DeleteAcme,
        Permission::ReadEst,
        Permission::WriteEst,
        Permission::ReadScep,
        Permission::WriteScep,
        Permission::ReadUsers,
        Permission::WriteUsers,
        Permission::DeleteUsers,
        Permission::ReadAudit,
        Permission::DeleteAudit,
        Permission::ReadMetrics,
        Permission::ReadUserCertificates,
        Permission::WriteUserCertificates,
        Permission::DeleteUserCertificates,
        Permission::AdminSystem,
    ];

    /// The permission's string, `verb:resource`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadCertificates => "read:certificates",
            Permission::WriteCertificates => "write:certificates",
            Permission::DeleteCertificates => "delete:certificates",
            Permission::ExportKeys => "export:keys",
            Permission::ReadCas => "read:cas",
            Permission::WriteCas => "write:cas",
            Permission::DeleteCas => "delete:cas",
            Permission::ReadCsrs => "read:csrs",
            Permission::WriteCsrs => "write:csrs",
            Permission::DeleteCsrs => "delete:csrs",
            Permission::ReadTemplates => "read:templates",
            Permission::WriteTemplates => "write:templates",
            Permission::DeleteTemplates => "delete:templates",
            Permission::ReadTruststore => "read:truststore",
            Permission::WriteTruststore => "write:truststore",
            Permission::DeleteTruststore => "delete:truststore",
            Permission::ReadAcme => "read:acme",
            Permission::WriteAcme => "write:acme",
            Permission::DeleteAcme => "delete:acme",
            Permission::ReadEst => "read:est",
            Permission::WriteEst => "write:est",
            Permission::ReadScep => "read:scep",
            Permission::WriteScep => "write:scep",
            Permission::ReadUsers => "read:users",
            Permission::WriteUsers => "write:users",
            Permission::DeleteUsers => "delete:users",
            Permission::ReadAudit => "read:audit",
            Permission::DeleteAudit => "delete:audit",
            Permission::ReadMetrics => "read:metrics",
            Permission::ReadUserCertificates => "read:user_certificates",
            Permission::WriteUserCertificates => "write:user_certificates",
            Permission::DeleteUserCertificates => "delete:user_certificates",
            Permission::AdminSystem => "admin:system",
        }
    }

    /// What it allows, for people.
    pub fn description(self) -> &'static str {
        match self {
            Permission::ReadCertificates => "Read certificates",
            Permission::WriteCertificates => "Create, renew and update certificates",
            Permission::DeleteCertificates => "Delete and revoke certificates",
            Permission::ExportKeys => "Export private keys",
            Permission::ReadCas => "Read certificate authorities",
            Permission::WriteCas => "Create and update certificate authorities",
            Permission::DeleteCas => "Delete certificate authorities",
            Permission::ReadCsrs => "Read certificate signing requests",
            Permission::WriteCsrs => "Create and sign certificate signing requests",
            Permission::DeleteCsrs => "Delete certificate signing requests",
            Permission::ReadTemplates => "Read certificate templates",
            Permission::WriteTemplates => "Create and update certificate templates",
            Permission::DeleteTemplates => "Delete certificate templates",
            Permission::ReadTruststore => "Read the trust store",
            Permission::WriteTruststore => "Add to and sync the trust store",
            Permission::DeleteTruststore => "Remove from the trust store",
            Permission::ReadAcme => "Read ACME settings, profiles, accounts, orders and key lists",
            Permission::WriteAcme => {
                "Change ACME settings and profiles, make and revoke EAB keys, deactivate accounts"
            }
            Permission::DeleteAcme => "Delete ACME profiles with their accounts and orders",
            Permission::ReadEst => "Read the EST settings and statistics",
            Permission::WriteEst => "Change the EST settings, labels and credentials",
            Permission::ReadScep => "Read SCEP settings, profiles, requests and statistics",
            Permission::WriteScep => {
                "Change SCEP settings and profiles, make challenges, approve and reject requests"
            }
            Permission::ReadUsers => "Read users and roles",
            Permission::WriteUsers => "Create and update users",
            Permission::DeleteUsers => "Delete users",
            Permission::ReadAudit => "View audit logs",
            Permission::DeleteAudit => "Clean up audit logs",
            Permission::ReadMetrics => "Scrape Prometheus metrics",
            Permission::ReadUserCertificates => "Read everyone's login certificates",
            Permission::WriteUserCertificates => {
                "Turn anyone's login certificates on or off, and revoke them"
            }
            Permission::DeleteUserCertificates => "Delete anyone's login certificates",
            Permission::AdminSystem => "System administration",
        }
    }

    /// The permission named `name`, if certmint has one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The wildcard grants, with what they allow: `*` grants everything, `read:*` every `read:…`.
pub const WILDCARDS: [(&str, &str); 2] = [
    ("*", "Full access"),
    ("read:*", "Read access to all resources"),
];

/// Every string a role or an API key may hold, with what it allows: the wildcards, then each
/// permission.
pub fn grantable() -> impl Iterator<Item = (&'static str, &'static str)> {
    WILDCARDS.into_iter().chain(
        Permission::ALL
            .into_iter()
            .map(|p| (p.as_str(), p.description())),
    )
}

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
                "write:est",
                "write:scep",
                "write:user_certificates",
                "delete:user_certificates",
            ],
            Role::Auditor => &["read:*"],
            Role::Viewer => &[
                "read:certificates",
                "read:cas",
                "read:csrs",
                "read:templates",
                "read:truststore",
                "read:acme",
                "read:est",
                "read:scep",
            ],
        }
    }

    /// What the role is for.
    pub fn description(self) -> &'static str {
        match self {
            Role::Admin => "Full access to everything",
            Role::Operator => {
                "Reads everything; manages certificates, CAs, CSRs, templates, the trust store, \
                 ACME, EST and SCEP"
            }
            Role::Auditor => "Reads everything, including the audit log and users; changes nothing",
            Role::Viewer => {
                "Reads the certificate inventory, CAs, CSRs, templates, the trust store, ACME, \
                 EST and SCEP"
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
        if !grantable().any(|(known, _)| known == p) {
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
    fn every_permission_reads_back_and_is_grantable() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
            assert!(grantable().any(|(name, _)| name == p.as_str()), "{p}");
            assert!(grants(Role::Admin.permissions(), p.as_str()), "{p}");
        }
        assert_eq!(Permission::parse("read:*"), None);
        assert_eq!(Permission::parse("fly:kites"), None);
        let names: std::collections::HashSet<_> = grantable().map(|(name, _)| name).collect();
        assert_eq!(names.len(), Permission::ALL.len() + WILDCARDS.len());
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
