//! Identifiers as orders ask for them: their form (RFC 8555 §7.1.3, RFC 8738), the profile's
//! allowed names and networks, and the CSR that must name exactly them.

use std::collections::BTreeSet;
use std::net::IpAddr;

use pki::SubjectAltName;
use pki::csr::Csr;

use super::{Identifier, Problem, ProblemType};

/// Most identifiers one order may ask for.
pub(crate) const MAX_IDENTIFIERS: usize = 100;

/// Reads one identifier of an order: a DNS name (A-labels, lower case, `*.` allowed) or an IP
/// address, in its canonical form.
pub(crate) fn parse(kind: &str, value: &str) -> Result<Identifier, Problem> {
    match kind {
        "dns" => {
            if value.parse::<IpAddr>().is_ok() {
                return Err(Problem::new(
                    ProblemType::Malformed,
                    format!("'{value}' is an IP address: ask for it as an ip identifier"),
                ));
            }
            pki::name::check_dns_name(value, true)
                .map(Identifier::Dns)
                .map_err(|e| Problem::new(ProblemType::RejectedIdentifier, e.to_string()))
        }
        "ip" => value.parse().map(Identifier::Ip).map_err(|_| {
            Problem::new(
                ProblemType::Malformed,
                format!("'{value}' is not an IP address"),
            )
        }),
        other => Err(Problem::new(
            ProblemType::UnsupportedIdentifier,
            format!("identifier type '{other}' is not supported; use dns or ip"),
        )),
    }
}

/// One entry of a profile's allowed identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Allowed {
    /// The name and every name under it; with a leading dot, only the names under it.
    Suffix { name: String, subdomains_only: bool },
    /// An IP network.
    Network { base: IpAddr, prefix: u8 },
}

impl Allowed {
    /// Reads `example.com`, `.example.com`, `10.0.0.0/8`, `2001:db8::/32` or one address.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if let Some((base, prefix)) = text.split_once('/') {
            let base: IpAddr = base
                .parse()
                .map_err(|_| format!("'{text}' is not an IP network"))?;
            let max = if base.is_ipv4() { 32 } else { 128 };
            let prefix = prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{text}' has a prefix length outside 0 to {max}"))?;
            return Ok(Self::Network { base, prefix });
        }
        if let Ok(base) = text.parse::<IpAddr>() {
            let prefix = if base.is_ipv4() { 32 } else { 128 };
            return Ok(Self::Network { base, prefix });
        }
        let (subdomains_only, name) = match text.strip_prefix('.') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let name = pki::name::check_dns_name(name, false).map_err(|e| e.to_string())?;
        Ok(Self::Suffix {
            name,
            subdomains_only,
        })
    }

    fn allows(&self, identifier: &Identifier) -> bool {
        match (self, identifier) {
            (
                Self::Suffix {
                    name,
                    subdomains_only,
                },
                Identifier::Dns(asked),
            ) => {
                let under = |n: &str| {
                    n.strip_suffix(name.as_str())
                        .is_some_and(|head| head.ends_with('.') && head.len() > 1)
                };
                match asked.strip_prefix("*.") {
                    // A wildcard stands for names under its base.
                    Some(base) => base == name || under(base),
                    None => under(asked) || (!subdomains_only && asked == name),
                }
            }
            (Self::Network { base, prefix }, Identifier::Ip(ip)) => in_network(*ip, *base, *prefix),
            _ => false,
        }
    }
}

fn in_network(ip: IpAddr, base: IpAddr, prefix: u8) -> bool {
    let masked = |bits: u128, width: u32| {
        let keep = u32::from(prefix).min(width);
        if keep == 0 { 0 } else { bits >> (width - keep) }
    };
    match (ip, base) {
        (IpAddr::V4(ip), IpAddr::V4(base)) => {
            masked(u128::from(u32::from(ip)), 32) == masked(u128::from(u32::from(base)), 32)
        }
        (IpAddr::V6(ip), IpAddr::V6(base)) => {
            masked(u128::from(ip), 128) == masked(u128::from(base), 128)
        }
        _ => false,
    }
}

/// Checks `identifiers` against the profile's allowed entries (none: anything goes).
/// The problem lists every identifier refused, as subproblems.
pub(crate) fn check_allowed(allowed: &[String], identifiers: &[Identifier]) -> Result<(), Problem> {
    if allowed.is_empty() {
        return Ok(());
    }
    let rules: Vec<Allowed> = allowed
        .iter()
        .filter_map(|a| Allowed::parse(a).ok())
        .collect();
    let refused: Vec<Problem> = identifiers
        .iter()
        .filter(|id| !rules.iter().any(|rule| rule.allows(id)))
        .map(|id| {
            Problem::new(
                ProblemType::RejectedIdentifier,
                format!("this profile does not issue for '{id}'"),
            )
            .about(id.clone())
        })
        .collect();
    match refused.len() {
        0 => Ok(()),
        1 => Err(refused.into_iter().next().unwrap_or_else(|| {
            Problem::new(ProblemType::RejectedIdentifier, "identifier refused")
        })),
        _ => Err(Problem {
            subproblems: refused,
            ..Problem::new(
                ProblemType::RejectedIdentifier,
                "this profile does not issue for some of the identifiers",
            )
        }),
    }
}

/// Checks that the CSR names exactly the order's identifiers: its SANs are the identifiers,
/// and its common name, if any, is one of them (RFC 8555 §7.4).
pub(crate) fn check_csr(csr: &Csr, identifiers: &[Identifier]) -> Result<(), Problem> {
    let bad = |detail: String| Problem::new(ProblemType::BadCsr, detail);
    let ordered: BTreeSet<&Identifier> = identifiers.iter().collect();
    let mut named = BTreeSet::new();
    for san in &csr.sans {
        match san {
            SubjectAltName::Dns(name) => named.insert(Identifier::Dns(name.to_ascii_lowercase())),
            SubjectAltName::Ip(ip) => named.insert(Identifier::Ip(*ip)),
            other => {
                return Err(bad(format!(
                    "the CSR names {other}, which an ACME order cannot authorize"
                )));
            }
        };
    }
    if let Some(cn) = csr.subject.get(pki::NameAttribute::CommonName) {
        let cn_id = match cn.parse::<IpAddr>() {
            Ok(ip) => Identifier::Ip(ip),
            Err(_) => Identifier::Dns(cn.to_ascii_lowercase()),
        };
        if !ordered.contains(&cn_id) {
            return Err(bad(format!(
                "the CSR's common name '{cn}' is not one of the order's identifiers"
            )));
        }
        named.insert(cn_id);
    }
    let extra: Vec<String> = named
        .iter()
        .filter(|n| !ordered.contains(n))
        .map(ToString::to_string)
        .collect();
    if !extra.is_empty() {
        return Err(bad(format!(
            "the CSR names {} that the order does not",
            extra.join(", ")
        )));
    }
    let missing: Vec<String> = ordered
        .iter()
        .filter(|o| !named.contains(**o))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!(
            "the CSR leaves out {}, which the order asks for",
            missing.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(name: &str) -> Identifier {
        Identifier::Dns(name.into())
    }

    #[test]
    fn suffixes_and_networks() {
        let allowed = |rule: &str, id: &Identifier| Allowed::parse(rule).map(|r| r.allows(id));
        assert_eq!(allowed("example.com", &dns("example.com")), Ok(true));
        assert_eq!(allowed("example.com", &dns("a.b.example.com")), Ok(true));
        assert_eq!(allowed("example.com", &dns("badexample.com")), Ok(false));
        assert_eq!(allowed(".example.com", &dns("example.com")), Ok(false));
        assert_eq!(allowed(".example.com", &dns("www.example.com")), Ok(true));
        assert_eq!(allowed("example.com", &dns("*.example.com")), Ok(true));
        assert_eq!(allowed("www.example.com", &dns("*.example.com")), Ok(false));
        let ip = |s: &str| Identifier::Ip(s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])));
        assert_eq!(allowed("10.0.0.0/8", &ip("10.1.2.3")), Ok(true));
        assert_eq!(allowed("10.0.0.0/8", &ip("11.1.2.3")), Ok(false));
        assert_eq!(allowed("192.0.2.7", &ip("192.0.2.7")), Ok(true));
        assert_eq!(allowed("2001:db8::/32", &ip("2001:db8::1")), Ok(true));
        assert_eq!(allowed("2001:db8::/32", &ip("10.1.2.3")), Ok(false));
        assert_eq!(allowed("0.0.0.0/0", &ip("8.8.8.8")), Ok(true));
        assert!(Allowed::parse("10.0.0.0/33").is_err());
        assert!(Allowed::parse("bad name!").is_err());
    }

    #[test]
    fn refusals_list_each_identifier() {
        let allowed = vec!["example.com".to_owned()];
        let ids = [dns("www.example.com"), dns("a.test"), dns("b.test")];
        let problem = check_allowed(&allowed, &ids).err();
        let problem = problem.as_ref();
        assert_eq!(problem.map(|p| p.subproblems.len()), Some(2));
        assert_eq!(
            problem.and_then(|p| p.subproblems[0].identifier.clone()),
            Some(Box::new(dns("a.test")))
        );
        assert!(check_allowed(&allowed, &ids[..1]).is_ok());
        assert!(check_allowed(&[], &ids).is_ok());
    }

    #[test]
    fn identifier_forms() {
        assert_eq!(
            parse("dns", "WWW.Example.com").ok(),
            Some(dns("www.example.com"))
        );
        assert_eq!(
            parse("dns", "10.0.0.1").err().map(|p| p.kind),
            Some(ProblemType::Malformed)
        );
        assert_eq!(
            parse("email", "a@b.c").err().map(|p| p.kind),
            Some(ProblemType::UnsupportedIdentifier)
        );
        assert!(parse("ip", "::1").is_ok());
        assert!(parse("dns", "a.*.example.com").is_err());
    }
}
