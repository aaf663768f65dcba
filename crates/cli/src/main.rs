//! The `certmint` binary: `serve`, local administration (`user`, `master-key`), client commands that call a
//! running server's REST API with an API key (`ca`, `cert`), `config reference` and `version`.

mod backup_cmd;
mod ca_cmd;
mod cert_cmd;
mod client;
mod output;
mod request_args;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use authority::{NewUserInput, Principal, UserFilter};
use clap::{Args, Parser, Subcommand};
use server::{Secrets, Settings};

#[derive(Parser)]
#[command(
    name = "certmint",
    version,
    about = "Self-hosted certificate authority and certificate lifecycle manager"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTPS API and plain-HTTP endpoints). Works with no configuration at all.
    Serve(ServeArgs),
    /// Manage users directly in the database (works while the server is stopped or running).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The master key that seals private keys and secrets at rest (works on the data
    /// directory; stop the server first).
    MasterKey {
        #[command(subcommand)]
        command: MasterKeyCommand,
    },
    /// Backups: write one, list them, restore one (works on the data directory and database,
    /// with the server running or stopped; a restore wants every node stopped).
    Backup {
        #[command(subcommand)]
        command: backup_cmd::BackupCommand,
    },
    /// Certificate authorities on a running server (client; needs an API key).
    Ca {
        #[command(subcommand)]
        command: ca_cmd::CaCommand,
    },
    /// Certificates on a running server (client; needs an API key).
    Cert {
        #[command(subcommand)]
        command: cert_cmd::CertCommand,
    },
    /// Describe certmint's settings.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the configuration reference (Markdown: every setting with its TOML key,
    /// environment variable, type and default), the book's `docs/src/configuration.md`.
    Reference,
}

/// Where the settings come from; flags win over the environment, which wins over the file.
#[derive(Args, Clone)]
struct Common {
    /// A TOML settings file.
    #[arg(long, env = "CERTMINT_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (database, master key, TLS material).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// `sqlite://…` or `postgres://…`.
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// HTTPS listen address.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Plain-HTTP listen address ("" disables it).
    #[arg(long)]
    http_listen: Option<String>,
    /// Serve only these parts, comma-separated: api, acme, est, scep, ocsp, crl (say `ocsp,crl` for a node
    /// that only answers relying parties).
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// The base URL certificates point to for OCSP, CRLs and CA certificates.
    #[arg(long)]
    public_url: Option<String>,
    /// `text` or `json`.
    #[arg(long)]
    log_format: Option<String>,
    /// A tracing filter such as `info` or `debug`.
    #[arg(long)]
    log_level: Option<String>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; prints the generated password unless --password-stdin is given.
    Create {
        #[command(flatten)]
        common: Common,
        /// Login name.
        #[arg(long)]
        username: String,
        /// admin, operator, auditor or viewer.
        #[arg(long, default_value = "viewer")]
        role: String,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        full_name: Option<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Set a new password (and clear any lockout); prints it unless --password-stdin is given.
    ResetPassword {
        #[command(flatten)]
        common: Common,
        /// Login name.
        username: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum MasterKeyCommand {
    /// Rotate the master key in the key file: add a new key, seal every secret again under
    /// it, retire the old key. Stop the server first (a running server rotates through
    /// POST /api/v2/system/security/rotate-secrets). Interrupted, run it again to resume.
    Rotate {
        #[command(flatten)]
        common: Common,
        /// Secrets sealed again per database transaction.
        #[arg(long, default_value_t = authority::master_key::DEFAULT_BATCH)]
        batch_size: u32,
        /// Read the new key (32 bytes, base64 or hex) from standard input instead of
        /// generating one.
        #[arg(long)]
        new_key_stdin: bool,
    },
    /// Show what is sealed, under which master-key version, and whether every secret opens.
    Status {
        #[command(flatten)]
        common: Common,
    },
}

fn settings(common: &Common) -> Result<Settings, String> {
    let mut s =
        Settings::load(common.config.as_deref(), std::env::vars()).map_err(|e| e.to_string())?;
    if let Some(dir) = &common.data_dir {
        s.data_dir.clone_from(dir);
    }
    if let Some(url) = &common.database_url {
        s.database_url.clone_from(url);
    }
    Ok(s)
}

fn init_logging(settings: &Settings) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .map_err(|e| format!("log_level: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log_format.as_str() {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => return Err(format!("log_format: '{other}' is neither text nor json")),
    }
    Ok(())
}

fn secret_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The settings `serve` runs with: file and environment, then its flags.
fn serve_settings(args: &ServeArgs) -> Result<Settings, String> {
    let mut s = settings(&args.common)?;
    if let Some(addr) = args.listen {
        s.listen = addr;
    }
    if let Some(addr) = &args.http_listen {
        s.http_listen.clone_from(addr);
    }
    if let Some(parts) = &args.only {
        s.serve_only.clone_from(parts);
    }
    if let Some(url) = &args.public_url {
        s.public_url.clone_from(url);
    }
    if let Some(f) = &args.log_format {
        s.log_format.clone_from(f);
    }
    if let Some(l) = &args.log_level {
        s.log_level.clone_from(l);
    }
    Ok(s)
}

/// `s` listening where `running` listens when `s` lets the system choose a port, so that
/// starting again keeps the node's addresses.
fn pinned(mut s: Settings, running: &server::Running) -> Settings {
    if s.listen.port() == 0 {
        s.listen = running.https_addr;
    }
    let http_port_free = s
        .http_listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.port() == 0);
    if let (true, Some(addr)) = (http_port_free, running.http_addr) {
        s.http_listen = addr.to_string();
    }
    s
}

/// Tells systemd (when it started this process with `Type=notify`) how the service stands.
fn notify_systemd(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!(error = %e, "could not notify systemd");
    }
}

/// Why the node stops serving.
enum Stop {
    /// SIGTERM or Ctrl-C: the process ends.
    Exit,
    /// A restore replaced the database: start again over it.
    Restored,
    /// SIGHUP: read the settings again and start again under them.
    Reload(Box<Settings>),
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let mut s = serve_settings(&args)?;
    init_logging(&s)?;
    let mut hangups = hangups();
    // A restore replaces the database under the running node, and SIGHUP may bring other
    // settings: either way the node starts anew in this process, as a restarted one would,
    // rather than serve from what it held before.
    loop {
        let secrets = Secrets {
            master_key: secret_env("CERTMINT_MASTER_KEY"),
            admin_password: secret_env("CERTMINT_ADMIN_PASSWORD"),
        };
        let instance = server::bootstrap::open(s.clone(), secrets)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(password) = &instance.generated_admin_password {
            println!(
                "Created the admin user. Its password, shown only this once:\n\n    {}\n",
                password.as_str()
            );
        }
        let running = server::start(instance).await.map_err(|e| e.to_string())?;
        println!(
            "certmint is serving HTTPS on https://{} and HTTP on {}",
            running.https_addr,
            running
                .http_addr
                .map_or_else(|| "(disabled)".to_owned(), |a| format!("http://{a}"))
        );
        notify_systemd(&[sd_notify::NotifyState::Ready]);
        s = pinned(s, &running);
        let app = running.app.clone();
        let stop = loop {
            tokio::select! {
                () = shutdown_signal() => break Stop::Exit,
                () = app.restart_requested() => break Stop::Restored,
                Some(()) = hangup(&mut hangups) => match serve_settings(&args) {
                    Ok(new) => break Stop::Reload(Box::new(pinned(new, &running))),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: the settings do not read; serving on under the old ones"),
                },
            }
        };
        match stop {
            Stop::Exit => {
                notify_systemd(&[sd_notify::NotifyState::Stopping]);
                tracing::info!("shutting down");
                running.shutdown().await;
                return Ok(());
            }
            Stop::Restored => {
                notify_systemd(&[sd_notify::NotifyState::Reloading]);
                tracing::warn!("a backup was restored: starting again over the restored database");
            }
            Stop::Reload(new) => {
                notify_systemd(&[sd_notify::NotifyState::Reloading]);
                tracing::info!("SIGHUP: starting again under the settings as they now read");
                s = *new;
            }
        }
        running.shutdown().await;
    }
}

/// SIGHUP as a stream, where the system has it.
fn hangups() -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: reloading needs a restart");
            None
        }
    }
}

/// The next SIGHUP; never, without the stream.
async fn hangup(hangups: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match hangups {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn read_password() -> Result<zeroize::Zeroizing<String>, String> {
    let mut text = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    Ok(zeroize::Zeroizing::new(
        text.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

async fn user(command: UserCommand) -> Result<(), String> {
    let common = match &command {
        UserCommand::Create { common, .. }
        | UserCommand::List { common }
        | UserCommand::ResetPassword { common, .. } => common.clone(),
    };
    let authority = open_authority(&settings(&common)?).await?;
    let result = run_user(&authority, command).await;
    authority.close().await;
    result
}

async fn run_user(authority: &authority::Authority, command: UserCommand) -> Result<(), String> {
    let local = Principal::local("cli");
    match command {
        UserCommand::Create {
            username,
            role,
            email,
            full_name,
            password_stdin,
            ..
        } => {
            let password = if password_stdin {
                Some(read_password()?.to_string())
            } else {
                None
            };
            let input = NewUserInput {
                username,
                role,
                email,
                full_name,
                password,
            };
            let (user, generated) = authority
                .create_user(&local, input)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "created user {} (id {}, role {})",
                user.username, user.id, user.role
            );
            if let Some(p) = generated {
                println!("password (shown once): {}", p.as_str());
            }
        }
        UserCommand::List { .. } => {
            println!(
                "{:>6}  {:<24} {:<10} {:<8} email",
                "id", "username", "role", "active"
            );
            let mut page = 1;
            loop {
                let request = authority::PageRequest {
                    page,
                    per_page: 100,
                    after: None,
                };
                let result = authority
                    .users(&UserFilter::default(), request)
                    .await
                    .map_err(|e| e.to_string())?;
                for u in &result.items {
                    println!(
                        "{:>6}  {:<24} {:<10} {:<8} {}",
                        u.id,
                        u.username,
                        u.role,
                        if u.enabled { "yes" } else { "no" },
                        u.email.as_deref().unwrap_or("")
                    );
                }
                if i64::from(page) * 100 >= result.total {
                    break;
                }
                page += 1;
            }
        }
        UserCommand::ResetPassword {
            username,
            password_stdin,
            ..
        } => {
            let user = authority
                .user_by_name(&username)
                .await
                .map_err(|e| e.to_string())?;
            let password = if password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let generated = authority
                .reset_password(&local, user.id, password.as_deref().map(String::as_str))
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "password of {} reset; its sessions were ended",
                user.username
            );
            if let Some(p) = generated {
                println!("new password (shown once): {}", p.as_str());
            }
        }
    }
    Ok(())
}

/// The authority over the data directory and database `s` names, as a command that works
/// beside (or without) a running server opens it.
async fn open_authority(s: &Settings) -> Result<std::sync::Arc<authority::Authority>, String> {
    server::bootstrap::open_authority(
        s,
        secret_env("CERTMINT_MASTER_KEY").as_deref(),
        std::sync::Arc::new(authority::SystemClock),
    )
    .await
    .map(std::sync::Arc::new)
    .map_err(|e| e.to_string())
}

async fn master_key(command: MasterKeyCommand) -> Result<(), String> {
    let common = match &command {
        MasterKeyCommand::Rotate { common, .. } | MasterKeyCommand::Status { common } => {
            common.clone()
        }
    };
    let authority = open_authority(&settings(&common)?).await?;
    let result = run_master_key(&authority, command).await;
    authority.close().await;
    result
}

async fn run_master_key(
    authority: &std::sync::Arc<authority::Authority>,
    command: MasterKeyCommand,
) -> Result<(), String> {
    let local = Principal::local("cli");
    match command {
        MasterKeyCommand::Rotate {
            batch_size,
            new_key_stdin,
            ..
        } => {
            let new_key = if new_key_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let rotation = authority
                .begin_master_key_rotation(
                    &local,
                    new_key.as_deref().map(String::as_str),
                    batch_size,
                )
                .await
                .map_err(|e| e.to_string())?;
            println!("rotating to master key version {}", rotation.to_version());
            let done = rotation
                .run(|p| println!("sealed again: {} of {}", p.resealed, p.total))
                .await
                .map_err(|e| format!("{e} (run the rotation again to resume it)"))?;
            println!(
                "every secret is sealed under master key version {}; retired: {}",
                done.to_version,
                if done.retired.is_empty() {
                    "none left".to_owned()
                } else {
                    done.retired
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
        }
        MasterKeyCommand::Status { .. } => {
            let status = authority
                .encryption_status(&local)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "master key version {} ({}); versions held: {:?}",
                status.version, status.key_source, status.key_versions
            );
            for kind in &status.sealed {
                let versions: Vec<String> = kind
                    .versions
                    .iter()
                    .map(|v| {
                        let version = v.version.map_or("unknown".to_owned(), |v| v.to_string());
                        format!("v{version}: {}", v.count)
                    })
                    .collect();
                println!(
                    "{:<20} {:>8}  {}",
                    kind.kind,
                    kind.count,
                    versions.join(", ")
                );
            }
            let check = authority
                .verify_sealed(&local)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "sealed: {}, under older keys: {}, opened: {}, failed: {}",
                status.total,
                status.under_older_keys,
                check.opened,
                check.failed.len()
            );
            for failure in &check.failed {
                println!("does not open: {failure}");
            }
            if !check.failed.is_empty() {
                return Err(format!("{} sealed secrets do not open", check.failed.len()));
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::User { command } => user(command).await,
        Command::MasterKey { command } => master_key(command).await,
        Command::Backup { command } => backup_cmd::run(command).await,
        Command::Ca { command } => ca_cmd::run(command).await.map_err(|e| e.to_string()),
        Command::Cert { command } => cert_cmd::run(command).await.map_err(|e| e.to_string()),
        Command::Config {
            command: ConfigCommand::Reference,
        } => server::config_reference::markdown()
            .map(|page| print!("{page}"))
            .map_err(|e| e.to_string()),
        Command::Version => {
            println!("certmint {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("certmint: {e}");
            ExitCode::FAILURE
        }
    }
}
