//! `certmint ca list|create`: certificate authorities, through a running server's
//! `/api/v2/cas`.

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{Client, ClientArgs, Error, Meta};
use crate::output::{Table, date, print_json};
use crate::request_args::{KeyArgs, SubjectArgs};

/// The `ca` subcommands.
#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// List the certificate authorities (needs read:cas).
    List(ListArgs),
    /// Create a root CA, or an intermediate under --parent, with a new key (needs write:cas).
    Create(Box<CreateArgs>),
}

/// `ca list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Page number, from 1.
    #[arg(long, default_value_t = 1)]
    page: u32,
    /// CAs per page (at most 100).
    #[arg(long, default_value_t = 100)]
    per_page: u32,
    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
}

/// root or intermediate.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum CaType {
    Root,
    Intermediate,
}

impl CaType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Intermediate => "intermediate",
        }
    }
}

/// `ca create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Display name; the common name when omitted.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    subject: SubjectArgs,
    /// A description.
    #[arg(long)]
    description: Option<String>,
    /// root, or intermediate (the default when --parent is given).
    #[arg(long = "type", value_enum)]
    ca_type: Option<CaType>,
    /// The id of the CA that issues an intermediate.
    #[arg(long)]
    parent: Option<i64>,
    #[command(flatten)]
    key: KeyArgs,
    /// Days of validity; 3650 for a root and 1825 for an intermediate when omitted.
    #[arg(long)]
    validity_days: Option<i64>,
    /// Path length constraint (how many CAs may follow below this one).
    #[arg(long)]
    path_length: Option<u8>,
    /// Make it the CA that issues when a request names none.
    #[arg(long)]
    default: bool,
    /// Let it issue for requests that name no template (new CAs refuse them by default).
    #[arg(long)]
    allow_no_template: bool,
    /// Print the server's JSON answer instead of a summary.
    #[arg(long)]
    json: bool,
}

/// The body of `POST /api/v2/cas`.
#[derive(Serialize)]
struct CreateBody<'a> {
    #[serde(flatten)]
    subject: &'a SubjectArgs,
    #[serde(flatten)]
    key: &'a KeyArgs,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    ca_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    validity_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_length: Option<u8>,
    is_default: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    require_template: Option<bool>,
}

/// The fields of the API's CA view that the commands show.
#[derive(Debug, Deserialize)]
struct CaView {
    id: i64,
    refid: String,
    name: String,
    subject: String,
    ca_type: String,
    parent_id: Option<i64>,
    serial_number: String,
    valid_until: String,
    key_type: String,
    fingerprint_sha256: String,
    is_active: bool,
    is_default: bool,
    #[serde(default)]
    require_template: bool,
}

/// Runs a `ca` subcommand.
///
/// # Errors
/// [`Error`] from the client, with the server's message when it refused.
pub async fn run(command: CaCommand) -> Result<(), Error> {
    match command {
        CaCommand::List(args) => list(args).await,
        CaCommand::Create(args) => create(*args).await,
    }
}

async fn list(args: ListArgs) -> Result<(), Error> {
    let client = Client::new(&args.client)?;
    let query = [
        ("page", args.page.to_string()),
        ("per_page", args.per_page.to_string()),
    ];
    let reply = client
        .call::<Vec<CaView>>(Method::GET, "/api/v2/cas", &query, None)
        .await?;
    if args.json {
        print_json(&reply.raw);
        return Ok(());
    }
    let mut table = Table::new(vec![
        "ID",
        "TYPE",
        "PARENT",
        "NAME",
        "KEY",
        "VALID UNTIL",
        "FLAGS",
        "REFID",
    ]);
    for ca in &reply.envelope.data {
        let mut flags = Vec::new();
        if ca.is_default {
            flags.push("default");
        }
        if !ca.is_active {
            flags.push("inactive");
        }
        if ca.require_template {
            flags.push("template-only");
        }
        table.row(vec![
            ca.id.to_string(),
            ca.ca_type.clone(),
            ca.parent_id.map(|p| p.to_string()).unwrap_or_default(),
            ca.name.clone(),
            ca.key_type.clone(),
            date(&ca.valid_until).to_owned(),
            flags.join(","),
            ca.refid.clone(),
        ]);
    }
    table.print();
    print_page_note(reply.envelope.meta, reply.envelope.data.len(), "CA");
    Ok(())
}

/// "page 2 of 3 (250 CAs)" under a table that does not show the whole list.
pub fn print_page_note(meta: Option<Meta>, shown: usize, noun: &str) {
    let Some(meta) = meta else { return };
    let shown = i64::try_from(shown).unwrap_or(i64::MAX);
    if meta.page == 1 && shown >= meta.total {
        return;
    }
    let per_page = i64::from(meta.per_page.max(1));
    let pages = (meta.total + per_page - 1) / per_page;
    println!(
        "page {} of {} ({} {noun}s in all; --page for more)",
        meta.page,
        pages.max(1),
        meta.total
    );
}

impl CreateArgs {
    /// The request body: an intermediate when a parent is named and no type is.
    fn body(&self) -> CreateBody<'_> {
        let ca_type = self.ca_type.unwrap_or(if self.parent.is_some() {
            CaType::Intermediate
        } else {
            CaType::Root
        });
        CreateBody {
            subject: &self.subject,
            key: &self.key,
            name: self.name.as_deref(),
            description: self.description.as_deref(),
            ca_type: ca_type.as_str(),
            parent_id: self.parent,
            validity_days: self.validity_days,
            path_length: self.path_length,
            is_default: self.default,
            require_template: self.allow_no_template.then_some(false),
        }
    }
}

async fn create(args: CreateArgs) -> Result<(), Error> {
    let client = Client::new(&args.client)?;
    let body = serde_json::to_value(args.body())
        .map_err(|e| Error::Usage(format!("cannot encode the request: {e}")))?;
    let reply = client
        .call::<CaView>(Method::POST, "/api/v2/cas", &[], Some(&body))
        .await?;
    if args.json {
        print_json(&reply.raw);
        return Ok(());
    }
    let ca = &reply.envelope.data;
    let under = ca
        .parent_id
        .map(|p| format!(" under CA {p}"))
        .unwrap_or_default();
    println!(
        "created {} CA '{}' (id {}){under}",
        ca.ca_type, ca.name, ca.id
    );
    details(ca);
    Ok(())
}

fn details(ca: &CaView) {
    let rows = [
        ("subject", ca.subject.as_str()),
        ("serial", ca.serial_number.as_str()),
        ("key", ca.key_type.as_str()),
        ("valid until", ca.valid_until.as_str()),
        ("sha-256", ca.fingerprint_sha256.as_str()),
        ("refid", ca.refid.as_str()),
    ];
    for (label, value) in rows {
        println!("  {label:<12} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: CaCommand,
    }

    fn create_body(args: &[&str]) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let base = ["certmint", "create", "--api-key", "k"];
        let cli = Cli::try_parse_from(base.iter().chain(args))?;
        let CaCommand::Create(create) = cli.command else {
            return Err("not create".into());
        };
        Ok(serde_json::to_value(create.body())?)
    }

    #[test]
    fn create_sends_the_fields_the_api_reads() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(
            create_body(&["--common-name", "Root G2"])?,
            json!({"common_name": "Root G2", "ca_type": "root", "is_default": false})
        );
        assert_eq!(
            create_body(&[
                "--common-name",
                "Issuing G2",
                "--organization",
                "Example",
                "--country",
                "DE",
                "--name",
                "issuing",
                "--parent",
                "1",
                "--key-algorithm",
                "rsa",
                "--key-size",
                "3072",
                "--validity-days",
                "365",
                "--path-length",
                "0",
                "--default",
                "--allow-no-template",
            ])?,
            json!({
                "common_name": "Issuing G2", "organization": "Example", "country": "DE",
                "name": "issuing", "ca_type": "intermediate", "parent_id": 1,
                "key_algorithm": "rsa", "key_size": 3072, "validity_days": 365,
                "path_length": 0, "is_default": true, "require_template": false,
            })
        );
        assert_eq!(
            create_body(&["--type", "root", "--parent", "2", "--curve", "P-384"])?["ca_type"],
            "root",
            "an explicit type is sent as given, for the server to judge"
        );
        assert!(create_body(&["--key-algorithm", "DSA"]).is_err());
        assert!(create_body(&["--type", "leaf"]).is_err());
        Ok(())
    }
}
