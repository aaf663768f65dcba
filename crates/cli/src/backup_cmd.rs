//! `certmint backup`: write a backup into the backup directory, list them, and restore one into
//! the configured database; on the data directory and database directly, so it works whether
//! or not the server runs (a restore wants every node stopped, and refuses while one serves).

use std::path::{Path, PathBuf};

use authority::backup::{BackupRequest, SecretString};
use authority::{Principal, Vault};
use clap::Subcommand;
use server::Settings;
use zeroize::Zeroizing;

use crate::{Common, open_authority, read_password, secret_env, settings};

/// Where the passphrase comes from when not from standard input.
const PASSPHRASE_ENV: &str = "CERTMINT_BACKUP_PASSPHRASE";

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Write a backup into the backup directory (`[backup] dir`, else `backups` in the data
    /// directory), encrypted under a passphrase from CERTMINT_BACKUP_PASSPHRASE or standard
    /// input.
    Create {
        #[command(flatten)]
        common: Common,
        /// Put the master key inside, under the passphrase: the backup then restores on a
        /// machine without the key file.
        #[arg(long)]
        include_master_key: bool,
        /// Read the passphrase from standard input.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// List the backups in the backup directory, newest first.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Restore a backup file into the configured database: an empty one (a new data directory
    /// or database, of either engine) or one at the backup's schema with every node stopped.
    Restore {
        #[command(flatten)]
        common: Common,
        /// The backup file.
        file: PathBuf,
        /// Read the passphrase from standard input.
        #[arg(long)]
        passphrase_stdin: bool,
    },
}

pub async fn run(command: BackupCommand) -> Result<(), String> {
    match command {
        BackupCommand::Create {
            common,
            include_master_key,
            passphrase_stdin,
        } => {
            let passphrase = passphrase(passphrase_stdin)?;
            let authority = open_authority(&settings(&common)?).await?;
            let record = authority
                .create_backup(
                    &Principal::local("cli"),
                    BackupRequest {
                        passphrase,
                        include_master_key,
                    },
                )
                .await;
            let shelf = authority.backup_shelf().map(|s| s.dir().to_owned());
            authority.close().await;
            let record = record.map_err(|e| e.to_string())?;
            let dir = shelf.map_err(|e| e.to_string())?;
            println!(
                "{} ({} bytes, {} rows, sha256 {})",
                dir.join(&record.file_name).display(),
                record.bytes,
                record.rows,
                record.sha256
            );
        }
        BackupCommand::List { common } => {
            let s = settings(&common)?;
            let shelf = server::bootstrap::backup_place(&s).shelf;
            let records = shelf.list().map_err(|e| e.to_string())?;
            if records.is_empty() {
                println!("no backups in {}", shelf.dir().display());
            }
            for r in records {
                println!(
                    "{}  {}  {:>12} bytes  {:>6} certificates  {:?}{}",
                    r.id,
                    r.created_at,
                    r.bytes,
                    r.certificates,
                    r.kind,
                    if r.master_key_included {
                        "  master key inside"
                    } else {
                        ""
                    }
                );
            }
        }
        BackupCommand::Restore {
            common,
            file,
            passphrase_stdin,
        } => restore(&settings(&common)?, &file, passphrase(passphrase_stdin)?).await?,
    }
    Ok(())
}

fn passphrase(from_stdin: bool) -> Result<Zeroizing<String>, String> {
    if from_stdin {
        return read_password();
    }
    secret_env(PASSPHRASE_ENV)
        .map(Zeroizing::new)
        .ok_or_else(|| {
            format!("give the passphrase in {PASSPHRASE_ENV} or with --passphrase-stdin")
        })
}

async fn restore(s: &Settings, file: &Path, passphrase: Zeroizing<String>) -> Result<(), String> {
    let opened =
        std::fs::File::open(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut backup =
        authority::backup::open_backup(opened, SecretString::from(passphrase.to_string()))
            .await
            .map_err(|e| e.to_string())?;
    let manifest = backup.manifest().clone();
    // Read before the rows are loaded, which takes the backup.
    let mut parts = Vec::new();
    for name in server::bootstrap::data_dir_parts() {
        if let Some(content) = backup.file(name).map_err(|e| e.to_string())? {
            parts.push((s.data_dir.join(name), content));
        }
    }
    let settings_file = backup
        .file(server::bootstrap::SETTINGS_PART)
        .map_err(|e| e.to_string())?;
    let master_key = backup
        .file(authority::backup::MASTER_KEY_PART)
        .map_err(|e| e.to_string())?;
    server::bootstrap::create_private_dir(&s.data_dir).map_err(|e| e.to_string())?;
    let vault = vault(s, master_key)?;
    let restored = authority::backup::restore_into(&s.database_url(), &vault, backup)
        .await
        .map_err(|e| e.to_string())?;
    drop(vault);
    for (path, content) in parts {
        if path.exists() {
            continue;
        }
        if let Some(dir) = path.parent() {
            server::bootstrap::create_private_dir(dir).map_err(|e| e.to_string())?;
        }
        authority::vault::write_private(&path, &content).map_err(|e| e.to_string())?;
    }
    if let Some(content) = settings_file {
        let path = s.data_dir.join("certmint.toml.restored");
        authority::vault::write_private(&path, &content).map_err(|e| e.to_string())?;
        println!(
            "the backup's settings file is at {}: compare it with yours",
            path.display()
        );
    }
    let authority = open_authority(s).await?;
    let recorded = authority
        .record_restore(&Principal::local("cli"), &manifest)
        .await;
    authority.close().await;
    recorded.map_err(|e| e.to_string())?;
    let rows: u64 = restored.tables.iter().map(|t| t.rows).sum();
    println!(
        "restored the backup of {} (certmint {}, {} rows in {} tables) into {}",
        manifest.created_at,
        manifest.product_version,
        rows,
        restored.tables.len(),
        if s.database_url.is_empty() {
            "the data directory's database"
        } else {
            "the configured database"
        }
    );
    Ok(())
}

/// The vault to restore under: the environment's master key, else the key file, written from
/// the backup first when the backup holds the key and the data directory has none.
fn vault(s: &Settings, from_backup: Option<Vec<u8>>) -> Result<Vault, String> {
    if let Some(text) = secret_env("CERTMINT_MASTER_KEY") {
        let key =
            authority::MasterKey::parse(&text).map_err(|e| format!("CERTMINT_MASTER_KEY: {e}"))?;
        return Vault::new(&key).map_err(|e| e.to_string());
    }
    let path = s.data_dir.join("master.key");
    if !path.exists() {
        let Some(text) = from_backup else {
            return Err(format!(
                "{} is missing and the backup does not hold the master key: copy the master key file of the server it was taken on there first",
                path.display()
            ));
        };
        authority::vault::write_private(&path, &text).map_err(|e| e.to_string())?;
        println!("wrote the backup's master key to {}", path.display());
    }
    Vault::from_key_file(&path)
        .map(|(vault, _)| vault)
        .map_err(|e| e.to_string())
}
