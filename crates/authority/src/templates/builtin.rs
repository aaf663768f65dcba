//! The templates every installation starts with, and storing those that are missing.

use super::{BasicConstraints, TemplateSpec};
use crate::renewal::KeyPolicy;
use crate::{Authority, Result};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The templates every installation starts with.
pub fn builtin_templates() -> Vec<TemplateSpec> {
    let base = |name: &str, description: &str| TemplateSpec {
        name: name.into(),
        description: Some(description.into()),
        validity_days: 365,
        max_validity_days: None,
        key_algorithm: None,
        key_size: None,
        curve: None,
        allowed_key_types: Vec::new(),
        key_usage: strings(&["digitalSignature", "keyEncipherment"]),
        extended_key_usage: Vec::new(),
        basic_constraints: BasicConstraints::default(),
        san_types: Vec::new(),
        require_san: false,
        allowed_domains: Vec::new(),
        ocsp_no_check: false,
        auto_renew: false,
        renew_before_days: None,
        renew_lifetime_fraction: None,
        renew_key_policy: KeyPolicy::SameKey,
    };
    vec![
        TemplateSpec {
            max_validity_days: Some(397),
            extended_key_usage: strings(&["serverAuth"]),
            san_types: strings(&["dns", "ip"]),
            require_san: true,
            ..base(
                "TLS Server",
                "HTTPS and other TLS servers: DNS and IP names, at most 397 days (CA/Browser Forum)",
            )
        },
        TemplateSpec {
            max_validity_days: Some(825),
            key_usage: strings(&["digitalSignature"]),
            extended_key_usage: strings(&["clientAuth"]),
            ..base(
                "TLS Client",
                "TLS client authentication (mTLS) for users and machines",
            )
        },
        TemplateSpec {
            max_validity_days: Some(397),
            extended_key_usage: strings(&["serverAuth", "clientAuth"]),
            san_types: strings(&["dns", "ip", "uri"]),
            require_san: true,
            ..base(
                "TLS Server and Client",
                "Services that both accept and make TLS connections (service mesh, mTLS peers)",
            )
        },
        TemplateSpec {
            max_validity_days: Some(1095),
            key_usage: strings(&["digitalSignature"]),
            extended_key_usage: strings(&["codeSigning"]),
            san_types: strings(&["email", "uri"]),
            ..base("Code Signing", "Signing software and scripts")
        },
        TemplateSpec {
            max_validity_days: Some(825),
            key_usage: strings(&["digitalSignature", "keyEncipherment", "nonRepudiation"]),
            extended_key_usage: strings(&["emailProtection"]),
            san_types: strings(&["email"]),
            require_san: true,
            ..base("S/MIME Email", "Signing and encrypting e-mail (S/MIME)")
        },
        TemplateSpec {
            validity_days: 90,
            max_validity_days: Some(365),
            key_usage: strings(&["digitalSignature"]),
            extended_key_usage: strings(&["OCSPSigning"]),
            ocsp_no_check: true,
            ..base(
                "OCSP Signing",
                "Delegated OCSP responders (RFC 6960), with id-pkix-ocsp-nocheck",
            )
        },
        TemplateSpec {
            validity_days: 1825,
            max_validity_days: Some(3650),
            key_usage: strings(&["digitalSignature", "keyCertSign", "cRLSign"]),
            basic_constraints: BasicConstraints {
                ca: true,
                path_length: Some(0),
            },
            ..base(
                "Subordinate CA",
                "A CA below one of certmint's, issuing end-entity certificates only (path length 0)",
            )
        },
    ]
}

impl Authority {
    /// Stores the built-in templates that are missing (by name); run at every start. Shipped
    /// data, not anyone's action, so not audited.
    ///
    /// # Errors
    /// Store errors.
    pub async fn ensure_builtin_templates(&self) -> Result<()> {
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        for spec in builtin_templates() {
            if tx.template_named(&spec.name).await?.is_none() {
                tx.insert_template(&spec.to_row(true)?, now).await?;
            }
        }
        Ok(tx.commit().await?)
    }
}
