//! Backups and restores of the whole CA: the database's rows in one consistent snapshot
//! (loadable into either engine), the files of the data directory that hold secrets sealed
//! under the master key, the settings file, and, only when asked, the master key itself; see
//! [`archive`] for the file.

mod archive;

use std::fs::File;

pub use age::secrecy::SecretString;
pub use archive::{FORMAT, KeyVersion, Manifest, Part, TableCount};
use tokio::sync::mpsc;

use crate::{Authority, Error, Result};
use archive::{DATABASE, Line, PartWriter};

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

/// Runs file work (encryption, compression, hashing) on the runtime's blocking threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(format!("a backup task failed: {e}")))?
}
