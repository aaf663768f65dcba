//! ACME problem documents (RFC 8555 §6.7, RFC 7807) and identifiers (§9.7.7, RFC 8738).

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The `urn:ietf:params:acme:error:*` types certmint reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProblemType {
    /// The account already exists or the key is in use elsewhere (key change).
    AccountDoesNotExist,
    /// The certificate is already replaced by another order (RFC 9773).
    AlreadyReplaced,
    /// The certificate is already revoked.
    AlreadyRevoked,
    /// The CSR is unacceptable.
    #[serde(rename = "badCSR")]
    BadCsr,
    /// The nonce is unknown, used or expired.
    BadNonce,
    /// The JWS key is unacceptable.
    BadPublicKey,
    /// The revocation reason is not allowed.
    BadRevocationReason,
    /// The JWS algorithm is not supported.
    BadSignatureAlgorithm,
    /// CAA forbids issuance.
    Caa,
    /// Several problems; see the subproblems.
    Compound,
    /// The server could not connect to the validation target.
    Connection,
    /// A DNS lookup failed.
    Dns,
    /// The profile requires external account binding.
    ExternalAccountRequired,
    /// The response to a challenge was wrong.
    IncorrectResponse,
    /// A contact URL is invalid.
    InvalidContact,
    /// The request is malformed.
    Malformed,
    /// The order is not ready to finalize.
    OrderNotReady,
    /// A rate limit was exceeded.
    RateLimited,
    /// The server will not issue for this identifier.
    RejectedIdentifier,
    /// A fault of the server's.
    ServerInternal,
    /// The TLS handshake of a tls-alpn-01 validation failed.
    Tls,
    /// The client lacks authorisation for this.
    Unauthorized,
    /// The contact URL's scheme is not supported.
    UnsupportedContact,
    /// The identifier type is not supported.
    UnsupportedIdentifier,
    /// Visit the terms of service.
    UserActionRequired,
}

impl ProblemType {
    // The names on the wire are RFC 8555 §6.7's (and RFC 9773's), camelCase but for badCSR.
    /// The type's URN.
    pub fn urn(self) -> String {
        let name = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        format!("urn:ietf:params:acme:error:{name}")
    }
}

/// A problem in ACME's terms (RFC 8555 §6.7), as kept on challenges and orders. The server
/// renders it as a problem document, with the HTTP status and headers that go with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Its type, kept as its URN.
    #[serde(rename = "type", with = "urn")]
    pub kind: ProblemType,
    /// What went wrong, for a person.
    pub detail: String,
    /// The identifier a subproblem is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Box<Identifier>>,
    /// Problems per identifier.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Problem>,
    /// The signature algorithms accepted, on a `badSignatureAlgorithm` problem (RFC 8555
    /// §6.2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<String>,
}

impl Problem {
    /// A problem of `kind` saying `detail`.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            identifier: None,
            subproblems: Vec::new(),
            algorithms: Vec::new(),
        }
    }

    /// The same problem, about `identifier`.
    #[must_use]
    pub fn about(mut self, identifier: Identifier) -> Self {
        self.identifier = Some(Box::new(identifier));
        self
    }
}

/// Why an ACME request failed. The server maps each kind to its HTTP answer once, at its edge.
#[derive(Debug, Clone)]
pub enum AcmeError {
    /// Refused in ACME's own terms.
    Problem(Problem),
    /// A key change's new key is account `account`'s already (RFC 8555 §7.3.5), whose URL
    /// the answer names.
    KeyInUse {
        /// The refid of the account that has the key.
        account: String,
    },
    /// One of the authority's errors: not found, rate limited, unavailable, a fault. Its
    /// problem is [`Problem::from`] it.
    Failed(Error),
}

impl From<Problem> for AcmeError {
    fn from(problem: Problem) -> Self {
        Self::Problem(problem)
    }
}

impl From<Error> for AcmeError {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

impl From<store::Error> for AcmeError {
    fn from(e: store::Error) -> Self {
        Self::Failed(e.into())
    }
}

impl From<pki::Error> for AcmeError {
    fn from(e: pki::Error) -> Self {
        Self::Failed(e.into())
    }
}

impl fmt::Display for AcmeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Problem(p) => p.fmt(f),
            Self::KeyInUse { account } => write!(f, "the key is account {account}'s already"),
            Self::Failed(e) => e.fmt(f),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.urn(), self.detail)
    }
}

/// A problem type as its URN on the wire (and in stored problems).
mod urn {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use super::ProblemType;

    const PREFIX: &str = "urn:ietf:params:acme:error:";

    pub fn serialize<S: Serializer>(kind: &ProblemType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&kind.urn())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ProblemType, D::Error> {
        let text = String::deserialize(d)?;
        let name = text
            .strip_prefix(PREFIX)
            .ok_or_else(|| D::Error::custom(format!("'{text}' is not an ACME error type")))?;
        serde_json::from_value(serde_json::Value::String(name.to_owned()))
            .map_err(|_| D::Error::custom(format!("unknown ACME error type '{text}'")))
    }
}

/// What an order asks a certificate for: a DNS name (wildcards included) or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Identifier {
    /// A DNS name, lower case, A-labels; `*.` as the leftmost label for a wildcard.
    Dns(String),
    /// An IP address (RFC 8738).
    Ip(IpAddr),
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => f.write_str(name),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// The challenge types certmint validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChallengeType {
    /// RFC 8555 §8.3.
    #[serde(rename = "http-01")]
    Http01,
    /// RFC 8555 §8.4.
    #[serde(rename = "dns-01")]
    Dns01,
    /// RFC 8737.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

impl ChallengeType {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
            Self::TlsAlpn01 => "tls-alpn-01",
        }
    }

    /// Reads the name on the wire.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "http-01" => Some(Self::Http01),
            "dns-01" => Some(Self::Dns01),
            "tls-alpn-01" => Some(Self::TlsAlpn01),
            _ => None,
        }
    }
}
