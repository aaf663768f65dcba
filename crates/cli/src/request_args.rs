//! Flags that become the same request-body fields in more than one command: the subject
//! (`ca create`, `cert issue`) and the key to generate. Their serde names are the API's.

use clap::Args;
use serde::Serialize;

/// The subject distinguished name.
#[derive(Args, Clone, Debug, Default, Serialize)]
pub struct SubjectArgs {
    /// Subject common name (CN).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// Organization (O).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// Organizational unit (OU).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizational_unit: Option<String>,
    /// Two-letter country code (C).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// State or province (ST).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Locality (L).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// PKCS#9 emailAddress in the subject (prefer an `email:` SAN).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The key certmint generates (and keeps, sealed) for the new CA or certificate.
#[derive(Args, Clone, Debug, Default, Serialize)]
pub struct KeyArgs {
    /// Key algorithm; EC when omitted.
    #[arg(long, value_parser = ["EC", "RSA", "Ed25519"], ignore_case = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_algorithm: Option<String>,
    /// RSA bits (2048, 3072, 4096) or EC size (256, 384).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_size: Option<u32>,
    /// EC curve: P-256 or P-384.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
}
