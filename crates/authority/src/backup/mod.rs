//! Backups and restores of the whole CA: the database's rows in one consistent snapshot
//! (loadable into either engine), the files of the data directory that hold secrets sealed
//! under the master key, the settings file, and, only when asked, the master key itself; see
//! [`archive`] for the file.

mod archive;
mod reset;
mod schedule;
mod shelf;

use std::fs::File;
use std::path::PathBuf;

pub use age::secrecy::SecretString;
pub use archive::{FORMAT, KeyVersion, Manifest, Part, TableCount};
pub use reset::Reset;
pub(crate) use schedule::SEALED_PASSPHRASE;
pub use schedule::{BackupSchedule, BackupScheduleChange, Frequency};
pub use shelf::{BackupKind, BackupRecord, EXTENSION, Shelf, parse_id};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};
use archive::{DATABASE, Line, PartWriter};

/// The oldest database schema a backup can be of: the one backups came with (from it on,
/// PostgreSQL's foreign keys wait for the end of the load).
pub const OLDEST_SCHEMA: i64 = 23;

/// Shortest passphrase a backup is encrypted under.
pub const MIN_PASSPHRASE: usize = 12;
/// Longest passphrase accepted.
const MAX_PASSPHRASE: usize = 1024;

/// Where a node keeps backups, and the files of its data directory that go into them.
#[derive(Debug, Clone)]
pub struct BackupPlace {
    /// The directory of backups.
    pub shelf: Shelf,
    /// Files put into every backup, by the name they take in it, when they exist: the settings
    /// file, and this node's HTTPS listener certificate and sealed key.
    pub files: Vec<(String, PathBuf)>,
}

/// What a backup is asked for with.
pub struct BackupRequest {
    /// What it is encrypted under.
    pub passphrase: Zeroizing<String>,
    /// Put the master key inside (under the passphrase).
    pub include_master_key: bool,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// Rows loaded per table.
    pub tables: Vec<TableCount>,
}

/// Refuses a passphrase too short or too long to encrypt a backup under.
///
/// # Errors
/// [`Error::Invalid`] saying which.
pub fn check_passphrase(passphrase: &str) -> Result<()> {
    let chars = passphrase.chars().count();
    if chars < MIN_PASSPHRASE {
        return Err(Error::Invalid(format!(
            "a backup passphrase needs at least {MIN_PASSPHRASE} characters"
        )));
    }
    if chars > MAX_PASSPHRASE {
        return Err(Error::Invalid(format!(
            "a backup passphrase has at most {MAX_PASSPHRASE} characters"
        )));
    }
    Ok(())
}

/// Rows handed between the reading and the writing side at a time.
const BATCH: usize = 1_000;

/// The name of the master key's part, when a backup includes it.
pub const MASTER_KEY_PART: &str = "master.key";

/// What goes into a backup besides the database.
pub struct BackupContents {
    /// Files of the data directory and the settings file, by the name they take in the backup.
    pub files: Vec<(String, Vec<u8>)>,
    /// The master key's text, when the operator asked for it to be included.
    pub master_key: Option<zeroize::Zeroizing<String>>,
}

/// A backup opened and checked, ready to restore.
pub struct OpenedBackup {
    opened: archive::Opened,
}

impl OpenedBackup {
    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.opened.manifest
    }

    /// The content of a file it holds (see [`BackupContents::files`]).
    ///
    /// # Errors
    /// [`Error::Internal`] when it cannot be read.
    pub fn file(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        self.opened.file(name)
    }
}

impl Authority {
    /// Sets where this node keeps backups (once, at start).
    ///
    /// # Errors
    /// [`Error::Internal`] when it was set already.
    pub fn configure_backups(&self, place: BackupPlace) -> Result<()> {
        self.backup_place
            .set(place)
            .map_err(|_| Error::Internal("the backup place is set already".into()))
    }

    /// This node's backup directory.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when this node keeps none.
    pub fn backup_shelf(&self) -> Result<&Shelf> {
        self.backup_place
            .get()
            .map(|p| &p.shelf)
            .ok_or_else(|| Error::Unavailable("this node has no backup directory".into()))
    }

    /// Whether a backup or restore is running on this node now (another is refused until it
    /// ends).
    pub fn backup_running(&self) -> bool {
        self.backup_work.try_lock().is_err()
    }

    /// Writes a backup of everything into this node's backup directory. Needs `admin:system`;
    /// audited. One backup runs at a time on a node; another asked for meanwhile is refused.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for a bad passphrase;
    /// [`Error::Conflict`] while another backup or restore runs; store and file errors.
    pub async fn create_backup(
        &self,
        principal: &Principal,
        request: BackupRequest,
    ) -> Result<BackupRecord> {
        principal.require(Permission::AdminSystem, "creating a backup")?;
        self.write_backup_to_shelf(principal, request, BackupKind::Manual)
            .await
    }

    pub(crate) async fn write_backup_to_shelf(
        &self,
        principal: &Principal,
        request: BackupRequest,
        kind: BackupKind,
    ) -> Result<BackupRecord> {
        let _running = self.backup_turn()?;
        self.shelve(principal, request, kind).await
    }

    /// This node's one turn at backup work (a backup, a restore, a reset): the key derivation
    /// each needs is large, and a restore or reset must not run under a backup.
    pub(crate) fn backup_turn(&self) -> Result<tokio::sync::MutexGuard<'_, ()>> {
        self.backup_work.try_lock().map_err(|_| {
            Error::Conflict(
                "a backup or restore is running on this node: try again when it is done".into(),
            )
        })
    }

    /// Writes a backup to the shelf and audits it; the caller holds [`Self::backup_turn`].
    pub(crate) async fn shelve(
        &self,
        principal: &Principal,
        request: BackupRequest,
        kind: BackupKind,
    ) -> Result<BackupRecord> {
        check_passphrase(&request.passphrase)?;
        let place = self
            .backup_place
            .get()
            .ok_or_else(|| Error::Unavailable("this node has no backup directory".into()))?;
        let id = shelf::new_id(self.now())?;
        let (partial, file) = place.shelf.partial(&id)?;
        let written = async {
            let mut files = Vec::new();
            for (name, path) in &place.files {
                match std::fs::read(path) {
                    Ok(content) => files.push((name.clone(), content)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::Internal(format!(
                            "cannot read {}: {e}",
                            path.display()
                        )));
                    }
                }
            }
            let contents = BackupContents {
                files,
                master_key: request
                    .include_master_key
                    .then(|| self.vault.key_file_text()),
            };
            let passphrase = SecretString::from(request.passphrase.to_string());
            let manifest = self.write_backup(file, passphrase, contents).await?;
            let measured = partial.clone();
            let written = blocking(move || Shelf::measure(&measured)).await?;
            let record = BackupRecord::new(
                &id,
                &manifest,
                &written,
                kind,
                &principal.username,
                &crate::publisher::host_name().unwrap_or_default(),
            );
            place.shelf.keep(&partial, &record)?;
            Ok(record)
        }
        .await;
        let record = match written {
            Ok(record) => record,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "backup_created",
                "backup",
                &record.id,
                format!(
                    "{:?} backup, {} bytes, {} rows, sha256 {}{}",
                    record.kind,
                    record.bytes,
                    record.rows,
                    record.sha256,
                    if record.master_key_included {
                        ", master key inside"
                    } else {
                        ""
                    }
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// The backups in this node's backup directory, newest first.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; file errors.
    pub async fn backups(&self, principal: &Principal) -> Result<Vec<BackupRecord>> {
        principal.require(Permission::AdminSystem, "listing backups")?;
        let shelf = self.backup_shelf()?.clone();
        blocking(move || shelf.list()).await
    }

    /// Backup `id`'s record and file, to download. Audited: a backup holds every secret.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`] for no such backup.
    pub async fn backup_download(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(BackupRecord, PathBuf)> {
        principal.require(Permission::AdminSystem, "downloading a backup")?;
        let (record, path) = self.backup_shelf()?.path(id)?;
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new("backup_downloaded", "backup", &record.id, "downloaded"),
        ))
        .await?;
        tx.commit().await?;
        Ok((record, path))
    }

    /// Removes backup `id`. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::NotFound`] for no such backup.
    pub async fn delete_backup(&self, principal: &Principal, id: &str) -> Result<BackupRecord> {
        principal.require(Permission::AdminSystem, "deleting a backup")?;
        let record = self.backup_shelf()?.remove(id)?;
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new("backup_deleted", "backup", &record.id, "removed"),
        ))
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Replaces every row of the database by those of the backup in `file` while the service
    /// runs: the backup is decrypted and checked whole first, then loaded in one transaction,
    /// and the restore is appended to the restored audit chain. The node must then start
    /// again (its caches hold the old rows), and so must every other node on the database.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for a wrong passphrase,
    /// a damaged file, a backup of another schema or under master keys this server does not
    /// hold; [`Error::Conflict`] while another backup or restore runs; store errors.
    pub async fn restore_backup(
        &self,
        principal: &Principal,
        file: File,
        passphrase: Zeroizing<String>,
    ) -> Result<Restored> {
        principal.require(Permission::AdminSystem, "restoring a backup")?;
        let _running = self.backup_turn()?;
        let opened = open_backup(file, SecretString::from(passphrase.to_string())).await?;
        let manifest = opened.manifest().clone();
        let here = self.store.schema_version().await?;
        if manifest.schema_version < here {
            return Err(Error::Invalid(format!(
                "this backup is of database schema {} and this database is at {here}: restore it with `certmint backup restore` on a stopped server into an empty database, which is brought to the backup's schema, loaded, then migrated",
                manifest.schema_version
            )));
        }
        let tables = restore_database(&self.store, &self.vault, opened).await?;
        self.record_restore(principal, &manifest).await?;
        Ok(Restored { manifest, tables })
    }

    /// Appends the restore of the backup `manifest` describes to the (restored) audit chain.
    ///
    /// # Errors
    /// Store errors.
    pub async fn record_restore(&self, principal: &Principal, manifest: &Manifest) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "backup_restored",
                "backup",
                manifest.created_at,
                format!(
                    "restored a backup taken {} on {} (certmint {}, schema {}, {} rows)",
                    manifest.created_at,
                    manifest.backend,
                    manifest.product_version,
                    manifest.schema_version,
                    manifest.tables.iter().map(|t| t.rows).sum::<u64>()
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes a backup to `out`, encrypted under `passphrase`: a snapshot of every table,
    /// read in one transaction while the service goes on, and `contents`.
    ///
    /// # Errors
    /// Store errors; [`Error::Internal`] when the file cannot be written.
    pub async fn write_backup(
        &self,
        out: File,
        passphrase: SecretString,
        contents: BackupContents,
    ) -> Result<Manifest> {
        let store = self.reader().clone();
        let tables = store.tables().await?;
        let schema_version = store.schema_version().await?;
        let (send, mut receive) = mpsc::channel::<(usize, Vec<Vec<store::Value>>)>(4);
        let headers = tables.clone();
        // The rows are encoded and written on a blocking thread while they stream in.
        let writer = tokio::task::spawn_blocking(move || -> Result<_> {
            let file = tempfile::tempfile()
                .map_err(|e| Error::Internal(format!("cannot create a temporary file: {e}")))?;
            let mut part = PartWriter::new(DATABASE, file);
            let mut counts = vec![0_u64; headers.len()];
            let mut written = vec![false; headers.len()];
            while let Some((index, rows)) = receive.blocking_recv() {
                let table = headers
                    .get(index)
                    .ok_or_else(|| Error::Internal("a row of no table".into()))?;
                if !written[index] {
                    written[index] = true;
                    part.line(&Line::Table {
                        table: table.name.clone(),
                        columns: table.columns.clone(),
                    })?;
                }
                counts[index] += rows.len() as u64;
                for row in rows {
                    part.line(&Line::Row(row))?;
                }
            }
            Ok((part, counts))
        });
        let read = store.snapshot(&tables, BATCH, &send).await;
        drop(send);
        // The writer's failure first: it is why the snapshot's sends failed.
        let (part, counts) = writer
            .await
            .map_err(|e| Error::Internal(format!("the backup writer failed: {e}")))??;
        read?;
        let (database_part, database) = part.finish()?;
        let mut files = contents.files;
        let master_key_included = contents.master_key.is_some();
        if let Some(key) = &contents.master_key {
            files.push((MASTER_KEY_PART.to_owned(), key.as_bytes().to_vec()));
        }
        let mut parts = vec![database_part];
        parts.extend(
            files
                .iter()
                .map(|(name, content)| archive::part_of(name, content)),
        );
        let manifest = Manifest {
            format: FORMAT,
            product_version: env!("CARGO_PKG_VERSION").to_owned(),
            schema_version,
            created_at: self.now(),
            backend: match store.backend() {
                store::Backend::Sqlite => "sqlite",
                store::Backend::Postgres => "postgresql",
            }
            .to_owned(),
            master_key_id: self.vault.key_id(),
            master_key_versions: self
                .vault
                .key_ids()
                .into_iter()
                .map(|(version, id)| KeyVersion { version, id })
                .collect(),
            master_key_included,
            tables: tables
                .iter()
                .zip(counts)
                .map(|(t, rows)| TableCount {
                    name: t.name.clone(),
                    rows,
                })
                .collect(),
            parts,
        };
        let written = manifest.clone();
        blocking(move || archive::write(out, &passphrase, &written, database, &files)).await?;
        Ok(manifest)
    }
}

/// Decrypts and checks the backup in `file` (see [`archive`]); nothing is written anywhere
/// but a private temporary file.
///
/// # Errors
/// [`Error::Invalid`] for a wrong passphrase, a damaged file, or one of a later format.
pub async fn open_backup(file: File, passphrase: SecretString) -> Result<OpenedBackup> {
    blocking(move || archive::open(file, &passphrase))
        .await
        .map(|opened| OpenedBackup { opened })
}

/// Replaces every row of `store`'s database by the backup's, in one transaction, and returns
/// the rows loaded per table. The database must be at the backup's schema version, and its
/// master key the backup's (`vault`): checked before anything is written.
///
/// # Errors
/// [`Error::Invalid`] when the versions or the master key differ, or the rows do not fit;
/// store errors.
pub async fn restore_database(
    store: &store::Store,
    vault: &crate::Vault,
    backup: OpenedBackup,
) -> Result<Vec<TableCount>> {
    let manifest = backup.manifest().clone();
    let here = store.schema_version().await?;
    if manifest.schema_version > here {
        return Err(Error::Invalid(format!(
            "this backup is of database schema {} (certmint {}); this certmint knows schema {here}: upgrade certmint to restore it",
            manifest.schema_version, manifest.product_version
        )));
    }
    if manifest.schema_version != here {
        return Err(Error::Invalid(format!(
            "this backup is of database schema {}, and this database is at {here}: restore it into a new database, which is brought to the backup's schema first",
            manifest.schema_version
        )));
    }
    let held = vault.key_ids();
    let missing: Vec<u32> = manifest
        .master_key_versions
        .iter()
        .filter(|k| !held.iter().any(|(v, id)| *v == k.version && *id == k.id))
        .map(|k| k.version)
        .collect();
    if manifest.master_key_id != vault.key_id() || !missing.is_empty() {
        return Err(Error::Invalid(format!(
            "the backup's secrets are sealed under master keys this server does not hold (versions {missing:?} of key {}): start certmint with the master key file of the server it was taken on, or restore a backup that includes it",
            manifest.master_key_id
        )));
    }
    let (send, mut receive) =
        mpsc::channel::<Result<(String, Vec<store::Column>, Vec<Vec<store::Value>>)>>(4);
    let reader = tokio::task::spawn_blocking(move || {
        let mut backup = backup;
        let mut current: Option<(String, Vec<store::Column>)> = None;
        let mut rows = Vec::new();
        let sent = backup.opened.database_lines(|line| {
            match line {
                Line::Table { table, columns } => {
                    if let Some((name, cols)) = current.replace((table, columns)) {
                        let batch = std::mem::take(&mut rows);
                        send.blocking_send(Ok((name, cols, batch)))
                            .map_err(|_| Error::Internal("the restore stopped".into()))?;
                    }
                }
                Line::Row(row) => {
                    let (name, cols) = current.as_ref().ok_or_else(|| {
                        Error::Invalid("the backup's database part starts with a row".into())
                    })?;
                    rows.push(row);
                    if rows.len() >= BATCH {
                        let batch = std::mem::take(&mut rows);
                        send.blocking_send(Ok((name.clone(), cols.clone(), batch)))
                            .map_err(|_| Error::Internal("the restore stopped".into()))?;
                    }
                }
            }
            Ok(())
        });
        let last = sent.map(|()| current.map(|(name, cols)| (name, cols, rows)));
        match last {
            Ok(Some(batch)) => {
                let _ = send.blocking_send(Ok(batch));
            }
            Ok(None) => {}
            Err(e) => {
                let _ = send.blocking_send(Err(e));
            }
        }
    });
    let mut load = store.begin_load().await?;
    let mut counts: Vec<TableCount> = Vec::new();
    while let Some(batch) = receive.recv().await {
        let (table, columns, rows) = batch?;
        load.rows(&table, &columns, &rows).await?;
        match counts.last_mut() {
            Some(count) if count.name == table => count.rows += rows.len() as u64,
            _ => counts.push(TableCount {
                name: table,
                rows: rows.len() as u64,
            }),
        }
    }
    reader
        .await
        .map_err(|e| Error::Internal(format!("the restore reader failed: {e}")))?;
    let expected: Vec<&TableCount> = manifest.tables.iter().filter(|t| t.rows > 0).collect();
    let loaded: Vec<&TableCount> = counts.iter().filter(|t| t.rows > 0).collect();
    if expected != loaded {
        return Err(Error::Invalid(
            "the backup's rows do not match its manifest's counts".into(),
        ));
    }
    load.commit().await?;
    Ok(manifest.tables)
}

/// Restores `backup` into the database at `database_url` with no server running on it: an
/// empty database is brought to the backup's schema, loaded, then migrated to this build's
/// schema, so a backup of an older release restores too; a database that holds certmint's
/// tables must be at the backup's schema, and no node may be serving it.
///
/// # Errors
/// [`Error::Invalid`] for a backup of a later schema, a database at another schema, or
/// master keys that do not match; [`Error::Conflict`] while a node serves the database; store
/// errors.
pub async fn restore_into(
    database_url: &str,
    vault: &crate::Vault,
    backup: OpenedBackup,
) -> Result<Restored> {
    let manifest = backup.manifest().clone();
    // A server on this data directory holds its key file: it would serve from what it holds
    // of the old rows.
    let _held = match vault.key_file() {
        Some(path) => Some(vault.hold_exclusively().map_err(|e| match e {
            Error::Conflict(_) => Error::Conflict(format!(
                "a certmint server uses {}: stop it before restoring, or restore through POST /api/v2/system/backup/restore",
                path.display()
            )),
            other => other,
        })?),
        None => None,
    };
    let store = store::Store::connect(database_url, 4)
        .await?
        .with_chain_key(vault.audit_chain_key());
    let latest = store.latest_migration();
    if manifest.schema_version > latest {
        return Err(Error::Invalid(format!(
            "this backup is of database schema {} (certmint {}); this certmint knows schema {latest}: upgrade certmint to restore it",
            manifest.schema_version, manifest.product_version
        )));
    }
    if manifest.schema_version < OLDEST_SCHEMA {
        return Err(Error::Invalid(format!(
            "this backup claims database schema {}, older than any certmint that writes backups ({OLDEST_SCHEMA})",
            manifest.schema_version
        )));
    }
    if store.tables().await?.is_empty() {
        store.migrate_up_to(Some(manifest.schema_version)).await?;
    } else {
        let now = crate::Clock::now(&crate::SystemClock);
        let free = store
            .take_lease(
                crate::jobs::PUBLISHER_LEASE,
                "certmint-backup-restore",
                now,
                now + crate::jobs::LEASE,
            )
            .await?;
        if !free {
            return Err(Error::Conflict(
                "a certmint node is serving this database: stop every node before restoring, or restore through POST /api/v2/system/backup/restore".into(),
            ));
        }
    }
    let tables = restore_database(&store, vault, backup).await?;
    store.migrate().await?;
    store.close().await;
    Ok(Restored { manifest, tables })
}

/// Runs file work (encryption, compression, hashing) on the runtime's blocking threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(format!("a backup task failed: {e}")))?
}
