//! Subject names and subject alternative names: reading them from what users type, checking them
//! against RFC 5280's rules, and writing them in RFC 4514 form.

use std::net::IpAddr;

use const_oid::ObjectIdentifier;

use crate::Error;

/// An attribute of a distinguished name that certmint can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameAttribute {
    /// `CN`
    CommonName,
    /// `SN` (surname)
    Surname,
    /// `serialNumber`
    SerialNumber,
    /// `C`, two letters (ISO 3166)
    Country,
    /// `L`
    Locality,
    /// `ST`
    State,
    /// `street`
    Street,
    /// `O`
    Organization,
    /// `OU`
    OrganizationalUnit,
    /// `title`
    Title,
    /// `postalCode`
    PostalCode,
    /// `GN` (given name)
    GivenName,
    /// `emailAddress` (PKCS#9; deprecated in favour of an email SAN, still widely expected)
    EmailAddress,
    /// `DC`
    DomainComponent,
    /// `UID`
    UserId,
}

/// How an attribute's value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringKind {
    Utf8,
    Printable,
    Ia5,
}

impl NameAttribute {
    /// Every attribute, in the order certmint writes them into a subject.
    pub const ALL: [NameAttribute; 15] = [
        Self::DomainComponent,
        Self::Country,
        Self::State,
        Self::Locality,
        Self::Street,
        Self::PostalCode,
        Self::Organization,
        Self::OrganizationalUnit,
        Self::Title,
        Self::Surname,
        Self::GivenName,
        Self::SerialNumber,
        Self::CommonName,
        Self::UserId,
        Self::EmailAddress,
    ];

    /// The short name used in RFC 4514 strings and by OpenSSL.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::CommonName => "CN",
            Self::Surname => "SN",
            Self::SerialNumber => "serialNumber",
            Self::Country => "C",
            Self::Locality => "L",
            Self::State => "ST",
            Self::Street => "street",
            Self::Organization => "O",
            Self::OrganizationalUnit => "OU",
            Self::Title => "title",
            Self::PostalCode => "postalCode",
            Self::GivenName => "GN",
            Self::EmailAddress => "emailAddress",
            Self::DomainComponent => "DC",
            Self::UserId => "UID",
        }
    }

    /// The attribute's object identifier.
    pub fn oid(self) -> ObjectIdentifier {
        use const_oid::db::{rfc3280, rfc4519};
        match self {
            Self::CommonName => rfc4519::CN,
            Self::Surname => rfc4519::SN,
            Self::SerialNumber => rfc4519::SERIAL_NUMBER,
            Self::Country => rfc4519::C,
            Self::Locality => rfc4519::L,
            Self::State => rfc4519::ST,
            Self::Street => rfc4519::STREET,
            Self::Organization => rfc4519::O,
            Self::OrganizationalUnit => rfc4519::OU,
            Self::Title => rfc4519::TITLE,
            Self::PostalCode => rfc4519::POSTAL_CODE,
            Self::GivenName => rfc4519::GIVEN_NAME,
            Self::EmailAddress => rfc3280::EMAIL_ADDRESS,
            Self::DomainComponent => rfc4519::DOMAIN_COMPONENT,
            Self::UserId => rfc4519::UID,
        }
    }

    /// The attribute with this object identifier, if certmint knows it.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.oid() == *oid)
    }

    /// Reads a short name (`CN`, `O`, …) or a long one (`commonName`, `organization`, …),
    /// case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "cn" | "commonname" | "common_name" => Self::CommonName,
            "sn" | "surname" => Self::Surname,
            "serialnumber" | "serial_number" => Self::SerialNumber,
            "c" | "country" | "countryname" => Self::Country,
            "l" | "locality" | "localityname" => Self::Locality,
            "st" | "s" | "state" | "stateorprovincename" => Self::State,
            "street" | "streetaddress" => Self::Street,
            "o" | "organization" | "organizationname" => Self::Organization,
            "ou" | "organizational_unit" | "organizationalunit" | "organizationalunitname" => {
                Self::OrganizationalUnit
            }
            "title" => Self::Title,
            "postalcode" | "postal_code" => Self::PostalCode,
            "gn" | "givenname" | "given_name" => Self::GivenName,
            "emailaddress" | "email" | "e" => Self::EmailAddress,
            "dc" | "domaincomponent" => Self::DomainComponent,
            "uid" | "userid" => Self::UserId,
            _ => return None,
        })
    }

    /// RFC 5280 Appendix A upper bounds.
    pub(crate) fn max_len(self) -> usize {
        match self {
            Self::CommonName
            | Self::Organization
            | Self::OrganizationalUnit
            | Self::SerialNumber
            | Self::Title => 64,
            Self::Locality | Self::State | Self::Street => 128,
            Self::Country => 2,
            Self::PostalCode => 40,
            Self::EmailAddress => 255,
            Self::Surname | Self::GivenName | Self::DomainComponent | Self::UserId => 64,
        }
    }

    pub(crate) fn string_kind(self) -> StringKind {
        match self {
            Self::Country | Self::SerialNumber => StringKind::Printable,
            Self::EmailAddress | Self::DomainComponent => StringKind::Ia5,
            _ => StringKind::Utf8,
        }
    }
}

/// A distinguished name: an ordered list of attributes, one value each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistinguishedName {
    entries: Vec<(NameAttribute, String)>,
}

impl DistinguishedName {
    /// An empty name.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an attribute after checking its value; a repeated attribute replaces the earlier
    /// value. Empty values are ignored, so optional request fields can be passed straight in.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the attribute when the value is too long, has control
    /// characters, or does not fit the attribute's string type.
    pub fn set(&mut self, attribute: NameAttribute, value: &str) -> Result<(), Error> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(());
        }
        let name = attribute.short_name();
        if attribute == NameAttribute::Country
            && !(value.len() == 2 && value.chars().all(|c| c.is_ascii_alphabetic()))
        {
            return Err(Error::Invalid(format!(
                "subject C must be a two-letter country code, not '{value}'"
            )));
        }
        if value.chars().count() > attribute.max_len() {
            return Err(Error::Invalid(format!(
                "subject {name} is longer than {} characters",
                attribute.max_len()
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(Error::Invalid(format!(
                "subject {name} contains control characters"
            )));
        }
        match attribute.string_kind() {
            StringKind::Printable if !value.chars().all(is_printable) => {
                return Err(Error::Invalid(format!(
                    "subject {name} may only use letters, digits, spaces and '()+,-./:=?"
                )));
            }
            StringKind::Ia5 if !value.is_ascii() => {
                return Err(Error::Invalid(format!("subject {name} must be ASCII")));
            }
            _ => {}
        }
        let value = if attribute == NameAttribute::Country {
            value.to_ascii_uppercase()
        } else {
            value.to_owned()
        };
        match self.entries.iter_mut().find(|(a, _)| *a == attribute) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((attribute, value)),
        }
        Ok(())
    }

    /// The value of an attribute.
    pub fn get(&self, attribute: NameAttribute) -> Option<&str> {
        self.entries
            .iter()
            .find(|(a, _)| *a == attribute)
            .map(|(_, v)| v.as_str())
    }

    /// The attributes in the order they are written into a certificate.
    pub fn entries(&self) -> impl Iterator<Item = (NameAttribute, &str)> {
        let mut sorted: Vec<_> = self.entries.iter().map(|(a, v)| (*a, v.as_str())).collect();
        sorted.sort_by_key(|(a, _)| NameAttribute::ALL.iter().position(|x| x == a));
        sorted.into_iter()
    }

    /// Whether the name has no attributes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The attributes certmint knows from a parsed X.509 name (others are left out).
    ///
    /// # Errors
    /// [`Error::Invalid`] when a known attribute's value breaks the rules of [`Self::set`].
    pub fn from_x509(name: &x509_parser::x509::X509Name<'_>) -> Result<Self, Error> {
        let mut dn = Self::new();
        for atv in name.iter().flat_map(|rdn| rdn.iter()) {
            let Some(oid) = crate::oid::from_der_value(atv.attr_type().as_bytes()) else {
                continue;
            };
            if let (Some(attribute), Ok(value)) = (NameAttribute::from_oid(&oid), atv.as_str()) {
                dn.set(attribute, value)?;
            }
        }
        Ok(dn)
    }

    pub(crate) fn to_rcgen(&self) -> Result<rcgen::DistinguishedName, Error> {
        let mut dn = rcgen::DistinguishedName::new();
        for (attribute, value) in self.entries() {
            let oid: Vec<u64> = attribute.oid().arcs().map(u64::from).collect();
            let value = match attribute.string_kind() {
                StringKind::Utf8 => rcgen::DnValue::Utf8String(value.to_owned()),
                StringKind::Printable => {
                    rcgen::DnValue::PrintableString(value.try_into().map_err(|_| {
                        Error::Invalid(format!(
                            "subject {} is not printable",
                            attribute.short_name()
                        ))
                    })?)
                }
                StringKind::Ia5 => rcgen::DnValue::Ia5String(value.try_into().map_err(|_| {
                    Error::Invalid(format!("subject {} must be ASCII", attribute.short_name()))
                })?),
            };
            dn.push(rcgen::DnType::from_oid(&oid), value);
        }
        Ok(dn)
    }
}

impl std::fmt::Display for DistinguishedName {
    /// RFC 4514: most specific attribute first, `,` between, special characters escaped.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries: Vec<_> = self.entries().collect();
        for (i, (attribute, value)) in entries.iter().rev().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}={}", attribute.short_name(), escape_rfc4514(value))?;
        }
        Ok(())
    }
}

/// Escapes an attribute value as RFC 4514 §2.4 requires.
pub fn escape_rfc4514(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn is_printable(c: char) -> bool {
    c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c)
}

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectAltName {
    /// A DNS name in A-label (ASCII) form; `*.` only as the whole leftmost label.
    Dns(String),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// An email address (rfc822Name).
    Email(String),
    /// A URI with a scheme.
    Uri(String),
}

impl SubjectAltName {
    /// Reads `dns:…`, `ip:…`, `email:…` or `uri:…` (also `DNS:`, `IP Address:`, `URI:`,
    /// `email:` as OpenSSL prints them). Without a prefix: an IP address if it is one, an email
    /// if it has `@`, a URI if it has `://`, otherwise a DNS name.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the value and what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let (kind, value) = match text.split_once(':') {
            Some((k, v)) => match k.trim().to_ascii_lowercase().as_str() {
                "dns" => ("dns", v),
                "ip" | "ip address" => ("ip", v),
                "email" | "rfc822" | "rfc822name" => ("email", v),
                "uri" | "url" => ("uri", v),
                _ => ("", text),
            },
            None => ("", text),
        };
        let value = value.trim();
        let kind = match kind {
            "" if value.parse::<IpAddr>().is_ok() => "ip",
            "" if value.contains("://") => "uri",
            "" if value.contains('@') => "email",
            "" => "dns",
            k => k,
        };
        match kind {
            "ip" => value
                .parse()
                .map(Self::Ip)
                .map_err(|_| Error::Invalid(format!("SAN '{text}' is not an IP address"))),
            "email" => check_email(value).map(Self::Email),
            "uri" => check_uri(value).map(Self::Uri),
            _ => check_dns_name(value, true).map(Self::Dns),
        }
    }

    /// Every kind, as [`SubjectAltName::kind`] names them.
    pub const KINDS: [&'static str; 4] = ["dns", "ip", "email", "uri"];

    /// `dns`, `ip`, `email` or `uri`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Dns(_) => "dns",
            Self::Ip(_) => "ip",
            Self::Email(_) => "email",
            Self::Uri(_) => "uri",
        }
    }

    /// The `kind:value` form the API uses.
    pub fn to_api_string(&self) -> String {
        format!("{}:{}", self.kind(), self.value())
    }

    /// The value without its kind.
    pub fn value(&self) -> String {
        match self {
            Self::Dns(v) | Self::Email(v) | Self::Uri(v) => v.clone(),
            Self::Ip(v) => v.to_string(),
        }
    }

    pub(crate) fn to_rcgen(&self) -> Result<rcgen::SanType, Error> {
        let ia5 = |v: &str| {
            rcgen::string::Ia5String::try_from(v)
                .map_err(|_| Error::Invalid(format!("SAN '{v}' must be ASCII")))
        };
        Ok(match self {
            Self::Dns(v) => rcgen::SanType::DnsName(ia5(v)?),
            Self::Ip(v) => rcgen::SanType::IpAddress(*v),
            Self::Email(v) => rcgen::SanType::Rfc822Name(ia5(v)?),
            Self::Uri(v) => rcgen::SanType::URI(ia5(v)?),
        })
    }
}

impl std::fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_api_string())
    }
}

/// Checks a DNS name and returns its lower-case A-label form. International names are converted
/// with IDNA (UTS #46, strict); each label must be 1–63 letters, digits or hyphens, the whole at
/// most 253 characters. With `allow_wildcard`, `*` may be the whole leftmost label.
///
/// # Errors
/// [`Error::Invalid`] saying what is wrong with the name.
pub fn check_dns_name(name: &str, allow_wildcard: bool) -> Result<String, Error> {
    let bad = |why: &str| Error::Invalid(format!("DNS name '{name}' {why}"));
    let (wildcard, rest) = match name.strip_prefix("*.") {
        Some(rest) if allow_wildcard => (true, rest),
        Some(_) => return Err(bad("may not be a wildcard here")),
        None => (false, name),
    };
    if rest.contains('*') {
        return Err(bad("has a wildcard that is not the whole leftmost label"));
    }
    if rest.is_empty() {
        return Err(bad("is empty"));
    }
    let ascii =
        idna::domain_to_ascii_strict(rest).map_err(|_| bad("is not a valid (IDNA) domain name"))?;
    if ascii.ends_with('.') || ascii.split('.').any(str::is_empty) {
        return Err(bad("has an empty label"));
    }
    for label in ascii.split('.') {
        if label.len() > 63 {
            return Err(bad("has a label longer than 63 characters"));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(bad("may only use letters, digits and inner hyphens"));
        }
    }
    let full = if wildcard {
        format!("*.{ascii}")
    } else {
        ascii
    };
    if full.len() > 253 {
        return Err(bad("is longer than 253 characters"));
    }
    Ok(full)
}

pub(crate) fn check_email(value: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::Invalid(format!("email '{value}' {why}"));
    let (local, domain) = value.rsplit_once('@').ok_or_else(|| bad("has no '@'"))?;
    if local.is_empty() || local.len() > 64 {
        return Err(bad("needs a local part of 1 to 64 characters"));
    }
    if !local
        .chars()
        .all(|c| c.is_ascii_graphic() && !"()<>[]:;@\\,\"".contains(c))
    {
        return Err(bad(
            "has a local part with characters not allowed in an address",
        ));
    }
    let domain = check_dns_name(domain, false)?;
    Ok(format!("{local}@{domain}"))
}

pub(crate) fn check_uri(value: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::Invalid(format!("URI '{value}' {why}"));
    let (scheme, rest) = value.split_once(':').ok_or_else(|| bad("has no scheme"))?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err(bad("has an invalid scheme"));
    }
    if rest.is_empty() || !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(bad("must be ASCII without spaces"));
    }
    if value.len() > 2048 {
        return Err(bad("is longer than 2048 characters"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_checked_and_written_most_specific_first() {
        let mut dn = DistinguishedName::new();
        dn.set(NameAttribute::CommonName, "web, one").unwrap();
        dn.set(NameAttribute::Organization, "Example").unwrap();
        dn.set(NameAttribute::Country, "de").unwrap();
        dn.set(NameAttribute::Locality, "").unwrap();
        assert_eq!(dn.to_string(), "CN=web\\, one,O=Example,C=DE");
        assert!(dn.set(NameAttribute::Country, "DEU").is_err());
        assert!(dn.set(NameAttribute::CommonName, &"x".repeat(65)).is_err());
        assert!(
            dn.set(NameAttribute::EmailAddress, "ü@example.com")
                .is_err()
        );
        assert!(dn.set(NameAttribute::Organization, "bad\u{7}").is_err());
    }

    #[test]
    fn sans_are_read_with_or_without_a_kind() {
        assert_eq!(
            SubjectAltName::parse("dns:WWW.Example.com").unwrap(),
            SubjectAltName::Dns("www.example.com".into())
        );
        assert_eq!(
            SubjectAltName::parse("ip:192.168.1.10").unwrap(),
            SubjectAltName::Ip("192.168.1.10".parse().unwrap())
        );
        assert_eq!(
            SubjectAltName::parse("2001:db8::1").unwrap(),
            SubjectAltName::Ip("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            SubjectAltName::parse("ops@example.com").unwrap(),
            SubjectAltName::Email("ops@example.com".into())
        );
        assert_eq!(
            SubjectAltName::parse("uri:spiffe://example.org/web").unwrap(),
            SubjectAltName::Uri("spiffe://example.org/web".into())
        );
        assert_eq!(
            SubjectAltName::parse("dns:bücher.example").unwrap(),
            SubjectAltName::Dns("xn--bcher-kva.example".into())
        );
        assert!(SubjectAltName::parse("ip:999.1.1.1").is_err());
        assert!(SubjectAltName::parse("uri:no scheme").is_err());
    }

    #[test]
    fn wildcards_only_as_the_whole_leftmost_label() {
        assert_eq!(
            check_dns_name("*.example.com", true).unwrap(),
            "*.example.com"
        );
        for bad in ["a*.example.com", "*.*.example.com", "www.*.com", "*", "*."] {
            assert!(check_dns_name(bad, true).is_err(), "{bad} accepted");
        }
        assert!(check_dns_name("*.example.com", false).is_err());
        for bad in [
            "-a.example",
            "a..b",
            "a_b.example",
            &"l".repeat(64),
            "example.com.",
        ] {
            assert!(check_dns_name(bad, true).is_err(), "{bad} accepted");
        }
    }
}
