//! `certmint cert issue|list|revoke|export`: certificates, through a running server's
//! `/api/v2/certificates`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

use crate::ca_cmd::print_page_note;
use crate::client::{Client, ClientArgs, Error};
use crate::output::{Table, check_writable, date, print_json, write_file};
use crate::request_args::{KeyArgs, SubjectArgs};

/// The `cert` subcommands.
#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// Issue a certificate with a key generated and kept by certmint (needs write:certificates;
    /// --key-out also needs export:keys).
    Issue(Box<IssueArgs>),
    /// List certificates, newest first (needs read:certificates).
    List(ListArgs),
    /// Revoke a certificate (needs delete:certificates).
    Revoke(RevokeArgs),
    /// Download a certificate as PEM, DER, a PEM chain, PKCS#7 or PKCS#12 (the key needs
    /// export:keys).
    Export(ExportArgs),
}

/// `cert issue`.
#[derive(Args, Debug)]
pub struct IssueArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    subject: SubjectArgs,
    /// A subject alternative name: dns:NAME, ip:ADDRESS, email:ADDRESS or uri:URI; repeat for
    /// more.
    #[arg(long = "san", value_name = "KIND:VALUE")]
    sans: Vec<String>,
    /// The issuing CA's id; the default CA when omitted.
    #[arg(long)]
    ca_id: Option<i64>,
    /// A certificate template's id: it checks the request and fills in what it leaves out.
    #[arg(long)]
    template_id: Option<i64>,
    /// Days of validity; the template's, or 365, when omitted.
    #[arg(long)]
    validity_days: Option<i64>,
    #[command(flatten)]
    key: KeyArgs,
    /// A key usage (digitalSignature, keyEncipherment, …); repeat for more.
    #[arg(long = "key-usage", value_name = "USAGE")]
    key_usage: Vec<String>,
    /// An extended key usage (serverAuth, clientAuth, …); repeat for more.
    #[arg(long = "extended-key-usage", value_name = "USAGE")]
    extended_key_usage: Vec<String>,
    /// A description kept with the certificate.
    #[arg(long)]
    description: Option<String>,
    /// Write the certificate (PEM) here; without it, it is printed after the summary (not
    /// with --json).
    #[arg(long, value_name = "FILE")]
    cert_out: Option<PathBuf>,
    /// Write the certificate and the CAs above it (PEM) here.
    #[arg(long, value_name = "FILE")]
    chain_out: Option<PathBuf>,
    /// Fetch the private key and write it here (PEM, PKCS#8, readable by its owner only).
    #[arg(long, value_name = "FILE")]
    key_out: Option<PathBuf>,
    /// Encrypt the key written to --key-out with this passphrase (at least 8 characters).
    #[arg(long, env = "CERTMINT_KEY_PASSPHRASE", hide_env_values = true)]
    key_passphrase: Option<String>,
    /// Print the server's JSON answer instead of a summary.
    #[arg(long)]
    json: bool,
}

/// The body of `POST /api/v2/certificates`.
#[derive(Serialize)]
struct IssueBody<'a> {
    #[serde(flatten)]
    subject: &'a SubjectArgs,
    #[serde(flatten)]
    key: &'a KeyArgs,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    template_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    validity_days: Option<i64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    san: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    key_usage: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extended_key_usage: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
}

/// A repeated flag given at least once.
fn non_empty(values: &[String]) -> Option<&[String]> {
    (!values.is_empty()).then_some(values)
}

impl IssueArgs {
    fn body(&self) -> IssueBody<'_> {
        IssueBody {
            subject: &self.subject,
            key: &self.key,
            ca_id: self.ca_id,
            template_id: self.template_id,
            validity_days: self.validity_days,
            san: &self.sans,
            key_usage: non_empty(&self.key_usage),
            extended_key_usage: non_empty(&self.extended_key_usage),
            description: self.description.as_deref(),
        }
    }
}

/// The states `cert list --status` filters on.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Status {
    Active,
    Expired,
    Revoked,
    /// Active and ending within 30 days.
    Expiring,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Expiring => "expiring",
        }
    }
}

/// `cert list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only certificates in this state.
    #[arg(long, value_enum)]
    status: Option<Status>,
    /// Only certificates issued by this CA.
    #[arg(long)]
    ca_id: Option<i64>,
    /// Text in the common name or a SAN.
    #[arg(long)]
    search: Option<String>,
    /// Page number, from 1.
    #[arg(long, default_value_t = 1)]
    page: u32,
    /// Certificates per page (at most 100).
    #[arg(long, default_value_t = 50)]
    per_page: u32,
    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
}

/// `cert revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The certificate's id.
    id: i64,
    /// The RFC 5280 reason: unspecified, keyCompromise, caCompromise, affiliationChanged,
    /// superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aaCompromise;
    /// removeFromCRL releases a hold.
    #[arg(long)]
    reason: String,
    /// A note kept with the revocation (at most 1000 characters).
    #[arg(long)]
    comments: Option<String>,
    /// Print the server's JSON answer instead of a summary.
    #[arg(long)]
    json: bool,
}

/// What `cert export` downloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// The certificate, PEM (with --include-key, its key too).
    Pem,
    /// The certificate, DER (binary).
    Der,
    /// The certificate and the CAs above it, PEM.
    Chain,
    /// The certificate and its chain, PKCS#7 certs-only (binary).
    Pkcs7,
    /// The certificate, its key and its chain, PKCS#12 (binary; needs --password).
    Pkcs12,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pem => "pem",
            Self::Der => "der",
            Self::Chain => "chain",
            Self::Pkcs7 => "pkcs7",
            Self::Pkcs12 => "pkcs12",
        }
    }

    fn is_binary(self) -> bool {
        matches!(self, Self::Der | Self::Pkcs7 | Self::Pkcs12)
    }
}

/// PKCS#12 encryption.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Encryption {
    /// AES-256 with PBKDF2 (the default).
    Aes256,
    /// 3DES with SHA-1, for old Windows and Java.
    Legacy,
}

/// `cert export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The certificate's id.
    id: i64,
    /// The file format.
    #[arg(long, value_enum, default_value = "pem")]
    format: Format,
    /// The PKCS#12 password (at least 8 characters).
    #[arg(long, env = "CERTMINT_EXPORT_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// PKCS#12 encryption.
    #[arg(long, value_enum)]
    encryption: Option<Encryption>,
    /// With --format pem: add the private key (needs export:keys).
    #[arg(long)]
    include_key: bool,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// The fields of the API's certificate view that the commands show.
#[derive(Debug, Deserialize)]
struct CertificateView {
    id: i64,
    common_name: Option<String>,
    subject: String,
    issuer: String,
    ca_id: Option<i64>,
    serial_number: String,
    san: Vec<String>,
    status: String,
    valid_until: String,
    key_type: String,
    revoked_at: Option<String>,
    revocation_reason: Option<String>,
}

/// The answer of `POST /api/v2/certificates/{id}/key`.
#[derive(Deserialize)]
struct KeyView {
    private_key: String,
}

/// Runs a `cert` subcommand.
///
/// # Errors
/// [`Error`] from the client, with the server's message when it refused.
pub async fn run(command: CertCommand) -> Result<(), Error> {
    match command {
        CertCommand::Issue(args) => issue(*args).await,
        CertCommand::List(args) => list(args).await,
        CertCommand::Revoke(args) => revoke(args).await,
        CertCommand::Export(args) => export(args).await,
    }
}

async fn issue(args: IssueArgs) -> Result<(), Error> {
    for (flag, path) in [
        ("--cert-out", &args.cert_out),
        ("--chain-out", &args.chain_out),
        ("--key-out", &args.key_out),
    ] {
        if let Some(path) = path {
            check_writable(flag, path)?;
        }
    }
    if args.key_out.is_some()
        && args
            .key_passphrase
            .as_ref()
            .is_some_and(|p| p.chars().count() < 8)
    {
        return Err(Error::Usage(
            "--key-passphrase must have at least 8 characters".into(),
        ));
    }
    let client = Client::new(&args.client)?;
    let body = serde_json::to_value(args.body())
        .map_err(|e| Error::Usage(format!("cannot encode the request: {e}")))?;
    let reply = client
        .call::<CertificateView>(Method::POST, "/api/v2/certificates", &[], Some(&body))
        .await?;
    let cert = &reply.envelope.data;
    if args.json {
        print_json(&reply.raw);
    } else {
        println!(
            "issued certificate {} for {}",
            cert.id,
            cert.common_name.as_deref().unwrap_or(&cert.subject)
        );
        details(cert);
    }
    // The certificate exists from here on: a failure below says so, with its id.
    let issued_but = |source: Error| Error::IssuedBut {
        id: cert.id,
        source: Box::new(source),
    };
    let export_path = format!("/api/v2/certificates/{}/export", cert.id);
    if args.cert_out.is_some() || !args.json {
        let pem = client
            .download(&export_path, &[("format", "pem".into())])
            .await
            .map_err(issued_but)?;
        match &args.cert_out {
            Some(path) => {
                write_file(path, &pem, false).map_err(issued_but)?;
                note(
                    args.json,
                    &format!("certificate written to {}", path.display()),
                );
            }
            None => print!("{}", String::from_utf8_lossy(&pem)),
        }
    }
    if let Some(path) = &args.chain_out {
        let chain = client
            .download(&export_path, &[("format", "chain".into())])
            .await
            .map_err(issued_but)?;
        write_file(path, &chain, false).map_err(issued_but)?;
        note(args.json, &format!("chain written to {}", path.display()));
    }
    if let Some(path) = &args.key_out {
        let body = match &args.key_passphrase {
            Some(p) => json!({ "passphrase": p }),
            None => json!({}),
        };
        let key = client
            .call::<KeyView>(
                Method::POST,
                &format!("/api/v2/certificates/{}/key", cert.id),
                &[],
                Some(&body),
            )
            .await
            .map_err(issued_but)?;
        let pem = Zeroizing::new(key.envelope.data.private_key);
        write_file(path, pem.as_bytes(), true).map_err(issued_but)?;
        note(args.json, &format!("key written to {}", path.display()));
    }
    Ok(())
}

/// A line for a person: on standard output, or on standard error when standard output
/// carries JSON.
fn note(json: bool, text: &str) {
    if json {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

fn details(cert: &CertificateView) {
    let mut rows = vec![
        ("subject", cert.subject.clone()),
        ("issuer", cert.issuer.clone()),
        ("serial", cert.serial_number.clone()),
        ("key", cert.key_type.clone()),
        ("valid until", cert.valid_until.clone()),
    ];
    if !cert.san.is_empty() {
        rows.push(("SANs", cert.san.join(", ")));
    }
    if let Some(at) = &cert.revoked_at {
        rows.push(("revoked at", at.clone()));
    }
    for (label, value) in rows {
        println!("  {label:<12} {value}");
    }
}

async fn list(args: ListArgs) -> Result<(), Error> {
    let client = Client::new(&args.client)?;
    let mut query = vec![
        ("page", args.page.to_string()),
        ("per_page", args.per_page.to_string()),
    ];
    if let Some(status) = args.status {
        query.push(("status", status.as_str().to_owned()));
    }
    if let Some(ca) = args.ca_id {
        query.push(("ca_id", ca.to_string()));
    }
    if let Some(search) = &args.search {
        query.push(("search", search.clone()));
    }
    let reply = client
        .call::<Vec<CertificateView>>(Method::GET, "/api/v2/certificates", &query, None)
        .await?;
    if args.json {
        print_json(&reply.raw);
        return Ok(());
    }
    let mut table = Table::new(vec![
        "ID",
        "STATUS",
        "COMMON NAME",
        "CA",
        "VALID UNTIL",
        "SERIAL",
        "SANS",
    ]);
    for c in &reply.envelope.data {
        table.row(vec![
            c.id.to_string(),
            c.status.clone(),
            c.common_name.clone().unwrap_or_default(),
            c.ca_id.map(|id| id.to_string()).unwrap_or_default(),
            date(&c.valid_until).to_owned(),
            c.serial_number.clone(),
            c.san.join(","),
        ]);
    }
    table.print();
    print_page_note(
        reply.envelope.meta,
        reply.envelope.data.len(),
        "certificate",
    );
    Ok(())
}

async fn revoke(args: RevokeArgs) -> Result<(), Error> {
    let client = Client::new(&args.client)?;
    let body = json!({ "reason": args.reason, "comments": args.comments });
    let reply = client
        .call::<CertificateView>(
            Method::POST,
            &format!("/api/v2/certificates/{}/revoke", args.id),
            &[],
            Some(&body),
        )
        .await?;
    if args.json {
        print_json(&reply.raw);
        return Ok(());
    }
    let cert = &reply.envelope.data;
    let said = reply
        .envelope
        .message
        .as_deref()
        .unwrap_or("Certificate revoked");
    println!(
        "{said}: certificate {} is {}{}",
        cert.id,
        cert.status,
        cert.revocation_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    details(cert);
    Ok(())
}

async fn export(args: ExportArgs) -> Result<(), Error> {
    if args.include_key && args.format != Format::Pem {
        return Err(Error::Usage(
            "--include-key goes with --format pem (a PKCS#12 file always holds the key)".into(),
        ));
    }
    if args.format == Format::Pkcs12 {
        if args.password.as_ref().is_none_or(|p| p.chars().count() < 8) {
            return Err(Error::Usage(
                "--format pkcs12 needs --password (or CERTMINT_EXPORT_PASSWORD) of at least 8 \
                 characters"
                    .into(),
            ));
        }
    } else if args.encryption.is_some() {
        return Err(Error::Usage(
            "--encryption goes with --format pkcs12".into(),
        ));
    }
    if let Some(path) = &args.out {
        check_writable("--out", path)?;
    } else if args.format.is_binary() && std::io::stdout().is_terminal() {
        return Err(Error::Usage(format!(
            "--format {} is binary: pass --out FILE, or redirect standard output",
            args.format.as_str()
        )));
    }
    let client = Client::new(&args.client)?;
    let mut query = vec![("format", args.format.as_str().to_owned())];
    if args.include_key {
        query.push(("include_key", "true".into()));
    }
    if args.format == Format::Pkcs12 {
        if let Some(password) = &args.password {
            query.push(("password", password.clone()));
        }
        if let Some(encryption) = args.encryption {
            let name = match encryption {
                Encryption::Aes256 => "aes256",
                Encryption::Legacy => "legacy",
            };
            query.push(("encryption", name.into()));
        }
    }
    let body = client
        .download(&format!("/api/v2/certificates/{}/export", args.id), &query)
        .await?;
    let private = args.include_key || args.format == Format::Pkcs12;
    match &args.out {
        Some(path) => {
            write_file(path, &body, private)?;
            eprintln!(
                "certificate {} exported as {} to {}",
                args.id,
                args.format.as_str(),
                path.display()
            );
            Ok(())
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&body)
                .and_then(|()| stdout.flush())
                .map_err(|source| Error::File {
                    path: Path::new("<standard output>").to_owned(),
                    source,
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: CertCommand,
    }

    fn parse(args: &[&str]) -> Result<CertCommand, clap::Error> {
        let base = ["certmint"];
        Cli::try_parse_from(base.iter().chain(args)).map(|c| c.command)
    }

    #[test]
    fn issue_sends_the_fields_the_api_reads() -> Result<(), Box<dyn std::error::Error>> {
        let CertCommand::Issue(issue) = parse(&[
            "issue",
            "--api-key",
            "k",
            "--common-name",
            "web.example.test",
            "--san",
            "dns:web.example.test",
            "--san",
            "ip:192.0.2.1",
            "--ca-id",
            "3",
            "--validity-days",
            "30",
            "--key-algorithm",
            "Ed25519",
            "--extended-key-usage",
            "serverAuth",
        ])?
        else {
            return Err("not issue".into());
        };
        assert_eq!(
            serde_json::to_value(issue.body())?,
            json!({
                "common_name": "web.example.test",
                "san": ["dns:web.example.test", "ip:192.0.2.1"],
                "ca_id": 3, "validity_days": 30, "key_algorithm": "Ed25519",
                "extended_key_usage": ["serverAuth"],
            })
        );
        let CertCommand::Issue(bare) = parse(&["issue", "--api-key", "k"])? else {
            return Err("not issue".into());
        };
        assert_eq!(serde_json::to_value(bare.body())?, json!({}));
        Ok(())
    }

    #[test]
    fn list_and_export_take_only_known_values() {
        assert!(parse(&["list", "--api-key", "k", "--status", "expiring"]).is_ok());
        assert!(parse(&["list", "--api-key", "k", "--status", "valid-ish"]).is_err());
        assert!(parse(&["export", "--api-key", "k", "3", "--format", "pkcs12"]).is_ok());
        assert!(parse(&["export", "--api-key", "k", "3", "--format", "jks"]).is_err());
        assert!(
            parse(&["revoke", "--api-key", "k", "3"]).is_err(),
            "a reason is required"
        );
    }
}
