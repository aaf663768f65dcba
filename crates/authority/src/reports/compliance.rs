//! The compliance checks: what an operator expects of the certificates in use, evaluated over
//! the grouped counts of [`store::CertificateProfile`] so the whole inventory is checked
//! without reading it.

use serde_json::{Map, Value, json};
use store::CertificateProfile;

/// One compliance check over the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceCheck {
    /// Its key.
    pub id: &'static str,
    /// What it asks for.
    pub description: &'static str,
    /// Certificates it applies to.
    pub applicable: i64,
    /// Of them, those that fail it.
    pub non_compliant: i64,
}

impl ComplianceCheck {
    /// Whether every certificate it applies to passes.
    pub fn passed(&self) -> bool {
        self.non_compliant == 0
    }

    /// Its report record.
    pub(super) fn record(&self) -> Map<String, Value> {
        let value = json!({
            "check": self.id,
            "description": self.description,
            "status": if self.passed() { "pass" } else { "fail" },
            "applicable": self.applicable,
            "compliant": self.applicable - self.non_compliant,
            "non_compliant": self.non_compliant,
        });
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
}

/// Whether a key (`RSA 2048`, `EC P-256`, `Ed25519`…) is strong enough: RSA of 2048 bits or
/// more, the NIST curves P-256 and up, Ed25519 and Ed448. Anything else fails, unknown
/// algorithms included.
pub fn strong_key(key_type: &str) -> bool {
    if let Some(bits) = key_type.strip_prefix("RSA ") {
        return bits.trim().parse::<u32>().is_ok_and(|b| b >= 2048);
    }
    matches!(
        key_type,
        "EC P-256" | "EC P-384" | "EC P-521" | "Ed25519" | "Ed448"
    )
}

/// Whether a signature algorithm is one collisions have broken: SHA-1, MD5 or MD2 (by name,
/// or by OID when the name is not known).
pub fn weak_signature(algorithm: &str) -> bool {
    let lower = algorithm.to_ascii_lowercase();
    lower.contains("sha1")
        || lower.contains("md5")
        || lower.contains("md2")
        || matches!(
            algorithm,
            "1.2.840.113549.1.1.5"
                | "1.2.840.113549.1.1.4"
                | "1.2.840.113549.1.1.2"
                | "1.2.840.10045.4.1"
                | "1.2.840.10040.4.3"
        )
}

/// The checks over `profiles`.
pub fn checks(profiles: &[CertificateProfile]) -> Vec<ComplianceCheck> {
    let count = |applies: &dyn Fn(&CertificateProfile) -> bool,
                 fails: &dyn Fn(&CertificateProfile) -> bool| {
        let applicable: i64 = profiles
            .iter()
            .filter(|p| applies(p))
            .map(|p| p.count)
            .sum();
        let non_compliant: i64 = profiles
            .iter()
            .filter(|p| applies(p) && fails(p))
            .map(|p| p.count)
            .sum();
        (applicable, non_compliant)
    };
    let active = |p: &CertificateProfile| p.state == "active";
    let check = |id, description, (applicable, non_compliant)| ComplianceCheck {
        id,
        description,
        applicable,
        non_compliant,
    };
    vec![
        check(
            "key_strength",
            "Keys in use are RSA 2048 bits or more, EC P-256 or stronger, or Ed25519",
            count(&active, &|p| !strong_key(&p.key_type)),
        ),
        check(
            "signature_algorithm",
            "Certificates in use are not signed with SHA-1 or MD5",
            count(&active, &|p| weak_signature(&p.signature_algorithm)),
        ),
        check(
            "tls_validity",
            "TLS server certificates in use are valid for 398 days at most",
            count(&|p| active(p) && !p.is_ca && p.has_dns_name, &|p| {
                p.long_validity
            }),
        ),
        check(
            "expired_not_revoked",
            "No certificate past its expiry is left in the inventory unrevoked",
            count(&|p| p.state != "revoked", &|p| p.state == "expired"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(key: &str, sig: &str, state: &str, long: bool, count: i64) -> CertificateProfile {
        CertificateProfile {
            key_type: key.into(),
            signature_algorithm: sig.into(),
            is_ca: false,
            state: state.into(),
            long_validity: long,
            has_dns_name: true,
            source: store::CertificateSource::Api,
            count,
        }
    }

    #[test]
    fn keys_and_signatures_are_judged_by_strength() {
        for (key, strong) in [
            ("RSA 1024", false),
            ("RSA 2048", true),
            ("RSA 4096", true),
            ("EC P-256", true),
            ("EC secp256k1", false),
            ("Ed25519", true),
            ("DSA 1024", false),
        ] {
            assert_eq!(strong_key(key), strong, "{key}");
        }
        assert!(weak_signature("sha1WithRSAEncryption"));
        assert!(weak_signature("1.2.840.10045.4.1"));
        assert!(!weak_signature("ecdsa-with-SHA256"));
    }

    #[test]
    fn checks_count_the_certificates_that_fail_them() {
        let checks = checks(&[
            profile("RSA 1024", "sha1WithRSAEncryption", "active", true, 2),
            profile("EC P-256", "ecdsa-with-SHA256", "active", false, 5),
            profile("EC P-256", "ecdsa-with-SHA256", "expired", false, 3),
            profile("RSA 1024", "sha1WithRSAEncryption", "revoked", true, 7),
        ]);
        let by = |id: &str| checks.iter().find(|c| c.id == id).cloned();
        let key = by("key_strength").unwrap();
        assert_eq!((key.applicable, key.non_compliant), (7, 2));
        assert_eq!(by("signature_algorithm").unwrap().non_compliant, 2);
        assert_eq!(by("tls_validity").unwrap().non_compliant, 2);
        let expired = by("expired_not_revoked").unwrap();
        assert_eq!((expired.applicable, expired.non_compliant), (10, 3));
        assert!(!expired.passed());
    }
}
