//! Where a node keeps backups: a directory of backup files, each beside a small JSON record of
//! what it holds (readable without the passphrase, and holding nothing secret), so that the
//! list survives a restore of the database and works the same for backups copied in by hand.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::Manifest;
use crate::{Error, Result};

/// The backup files' extension.
pub const EXTENSION: &str = "cmbackup";
/// What every backup id starts with.
const PREFIX: &str = "certmint-";

/// How a backup came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    /// Asked for through the API or the command line.
    Manual,
    /// Made by the `backup` job; the schedule's retention removes it in time.
    Scheduled,
}

/// A backup on the shelf, as its record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    /// Names it: `certmint-YYYYMMDD-HHMMSS-xxxxxxxx`.
    pub id: String,
    /// Its file's name in the directory.
    pub file_name: String,
    /// When its snapshot was taken.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The encrypted file's size.
    pub bytes: u64,
    /// The encrypted file's SHA-256, hex: to check a copy kept elsewhere.
    pub sha256: String,
    /// Manual or scheduled.
    pub kind: BackupKind,
    /// Who asked for it.
    pub created_by: String,
    /// The node that wrote it.
    pub node: String,
    /// The certmint version that wrote it.
    pub product_version: String,
    /// Its database schema version.
    pub schema_version: i64,
    /// `sqlite` or `postgresql`.
    pub backend: String,
    /// Whether the master key is inside (under the passphrase).
    pub master_key_included: bool,
    /// Rows in all.
    pub rows: u64,
    /// Certificates inside.
    pub certificates: u64,
    /// CAs inside.
    pub cas: u64,
    /// Rows per table.
    pub tables: Vec<super::TableCount>,
}

impl BackupRecord {
    /// The record of a backup written with `manifest` into `file_name`.
    pub(crate) fn new(
        id: &str,
        manifest: &Manifest,
        written: &Written,
        kind: BackupKind,
        created_by: &str,
        node: &str,
    ) -> Self {
        let rows_of = |name: &str| {
            manifest
                .tables
                .iter()
                .find(|t| t.name == name)
                .map_or(0, |t| t.rows)
        };
        Self {
            id: id.to_owned(),
            file_name: file_name(id),
            created_at: manifest.created_at,
            bytes: written.bytes,
            sha256: written.sha256.clone(),
            kind,
            created_by: created_by.to_owned(),
            node: node.to_owned(),
            product_version: manifest.product_version.clone(),
            schema_version: manifest.schema_version,
            backend: manifest.backend.clone(),
            master_key_included: manifest.master_key_included,
            rows: manifest.tables.iter().map(|t| t.rows).sum(),
            certificates: rows_of("certificates"),
            cas: rows_of("cas"),
            tables: manifest.tables.clone(),
        }
    }
}

/// A file as written: its size and SHA-256.
pub(crate) struct Written {
    pub bytes: u64,
    pub sha256: String,
}

/// A new backup id for a snapshot taken at `at`.
///
/// # Errors
/// [`Error::Internal`] when the system's random source fails.
pub(crate) fn new_id(at: OffsetDateTime) -> Result<String> {
    let random = pki::random::bytes::<4>().map_err(|e| Error::Internal(e.to_string()))?;
    Ok(format!(
        "{PREFIX}{:04}{:02}{:02}-{:02}{:02}{:02}-{}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        hex::encode(random)
    ))
}

/// `id` when it names a backup the way [`new_id`] does (a file name may be given for it, as
/// the reference's download path has), so that no id can name a path outside the directory.
///
/// # Errors
/// [`Error::NotFound`] for anything else.
pub fn parse_id(text: &str) -> Result<String> {
    let id = text.strip_suffix(&format!(".{EXTENSION}")).unwrap_or(text);
    let well_formed = id.strip_prefix(PREFIX).is_some_and(|rest| {
        let parts: Vec<&str> = rest.split('-').collect();
        matches!(parts.as_slice(), [date, time, random]
            if date.len() == 8 && time.len() == 6 && random.len() == 8
                && date.bytes().chain(time.bytes()).all(|b| b.is_ascii_digit())
                && random.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    });
    if well_formed {
        Ok(id.to_owned())
    } else {
        Err(Error::NotFound(format!("there is no backup '{text}'")))
    }
}

fn file_name(id: &str) -> String {
    format!("{id}.{EXTENSION}")
}

fn record_name(id: &str) -> String {
    format!("{id}.json")
}

/// The directory backups are kept in.
#[derive(Debug, Clone)]
pub struct Shelf {
    dir: PathBuf,
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let what = format!("cannot {what} {}", path.display());
    move |e| Error::Internal(format!("{what}: {e}"))
}

impl Shelf {
    /// The shelf in `dir` (made, private, at the first backup).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the directory, private to the service's user.
    ///
    /// # Errors
    /// [`Error::Internal`] when it cannot be made.
    pub(crate) fn ensure(&self) -> Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&self.dir)
            .map_err(io("create the backup directory", &self.dir))
    }

    /// A new private file for backup `id` to be written into; it takes its name only once
    /// [`Shelf::keep`] is called, so a backup cut short never shows in the list.
    ///
    /// # Errors
    /// [`Error::Internal`] when it cannot be made.
    pub(crate) fn partial(&self, id: &str) -> Result<(PathBuf, File)> {
        self.ensure()?;
        let path = self.dir.join(format!(".{id}.partial"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).read(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&path)
            .map_err(io("create the backup file", &path))?;
        Ok((path, file))
    }

    /// Measures the written file at `partial`.
    ///
    /// # Errors
    /// [`Error::Internal`] when it cannot be read.
    pub(crate) fn measure(partial: &Path) -> Result<Written> {
        let mut file = File::open(partial).map_err(io("read the backup file", partial))?;
        let mut hash = Sha256::new();
        let mut buffer = vec![0_u8; 64 * 1024];
        let mut bytes = 0_u64;
        loop {
            let n = file
                .read(&mut buffer)
                .map_err(io("read the backup file", partial))?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            hash.update(&buffer[..n]);
        }
        Ok(Written {
            bytes,
            sha256: hex::encode(hash.finalize()),
        })
    }

    /// Gives the written file at `partial` its name and writes its record beside it.
    ///
    /// # Errors
    /// [`Error::Internal`] when either cannot be written.
    pub(crate) fn keep(&self, partial: &Path, record: &BackupRecord) -> Result<()> {
        let target = self.dir.join(&record.file_name);
        std::fs::rename(partial, &target).map_err(io("name the backup file", &target))?;
        let text = serde_json::to_vec_pretty(record)
            .map_err(|e| Error::Internal(format!("cannot encode a backup record: {e}")))?;
        let record_path = self.dir.join(record_name(&record.id));
        let temporary = self.dir.join(format!(".{}.json.partial", record.id));
        let mut file = File::create(&temporary).map_err(io("write", &temporary))?;
        file.write_all(&text).map_err(io("write", &temporary))?;
        file.sync_all().map_err(io("write", &temporary))?;
        std::fs::rename(&temporary, &record_path).map_err(io("write", &record_path))?;
        if let Ok(dir) = File::open(&self.dir) {
            // The names must survive a crash as well as the contents.
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Every backup's record, newest first. Records that do not read are left out, with a
    /// warning, rather than hiding every other backup.
    ///
    /// # Errors
    /// [`Error::Internal`] when the directory cannot be read.
    pub fn list(&self) -> Result<Vec<BackupRecord>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("read the backup directory", &self.dir)(e)),
        };
        let mut records = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if parse_id(id).is_err() {
                continue;
            }
            match std::fs::read(entry.path())
                .map_err(|e| e.to_string())
                .and_then(|text| {
                    serde_json::from_slice::<BackupRecord>(&text).map_err(|e| e.to_string())
                }) {
                Ok(record) if record.id == id && self.dir.join(&record.file_name).exists() => {
                    records.push(record);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(path = %entry.path().display(), error = %e, "a backup record does not read");
                }
            }
        }
        records.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(records)
    }

    /// Backup `id`'s record.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such backup.
    pub fn get(&self, id: &str) -> Result<BackupRecord> {
        let id = parse_id(id)?;
        self.list()?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| Error::NotFound(format!("there is no backup '{id}' on this node")))
    }

    /// Backup `id`'s file.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such backup.
    pub fn path(&self, id: &str) -> Result<(BackupRecord, PathBuf)> {
        let record = self.get(id)?;
        let path = self.dir.join(&record.file_name);
        Ok((record, path))
    }

    /// Removes backup `id` (its file, then its record).
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such backup; [`Error::Internal`] when it cannot be removed.
    pub fn remove(&self, id: &str) -> Result<BackupRecord> {
        let (record, path) = self.path(id)?;
        std::fs::remove_file(&path).map_err(io("remove", &path))?;
        let record_path = self.dir.join(record_name(&record.id));
        std::fs::remove_file(&record_path).map_err(io("remove", &record_path))?;
        Ok(record)
    }

    /// The scheduled backups past the retention: beyond the `keep` newest, or older than
    /// `max_age` at `now`. Manual backups stay until someone removes them.
    pub(crate) fn past_retention(
        records: &[BackupRecord],
        keep: u32,
        max_age: Option<time::Duration>,
        now: OffsetDateTime,
    ) -> Vec<String> {
        records
            .iter()
            .filter(|r| r.kind == BackupKind::Scheduled)
            .enumerate()
            .filter(|(n, r)| {
                *n >= keep as usize || max_age.is_some_and(|age| now - r.created_at > age)
            })
            .map(|(_, r)| r.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn only_ids_of_the_shelf_name_a_file() {
        let id = new_id(datetime!(2026-12-06 19:05:01 UTC)).expect("id");
        assert!(id.starts_with("certmint-20261206-190501-"), "{id}");
        assert_eq!(parse_id(&id).expect("parses"), id);
        assert_eq!(
            parse_id(&format!("{id}.cmbackup")).expect("a file name"),
            id
        );
        for bad in [
            "../etc/passwd",
            "certmint-20261206-190501-../../x",
            "certmint-20261206-190501-ABCDEF01",
            "certmint-2026120-190501-abcdef01",
            "certmint-20261206-190501-abcdef01/..",
            "",
        ] {
            assert!(matches!(parse_id(bad), Err(Error::NotFound(_))), "{bad}");
        }
    }

    fn record(id: &str, kind: BackupKind, created_at: OffsetDateTime) -> BackupRecord {
        BackupRecord {
            id: id.into(),
            file_name: file_name(id),
            created_at,
            bytes: 1,
            sha256: String::new(),
            kind,
            created_by: "test".into(),
            node: "n".into(),
            product_version: "0".into(),
            schema_version: 1,
            backend: "sqlite".into(),
            master_key_included: false,
            rows: 0,
            certificates: 0,
            cas: 0,
            tables: Vec::new(),
        }
    }

    #[test]
    fn retention_keeps_the_newest_scheduled_backups_and_every_manual_one() {
        let now = datetime!(2026-12-06 12:00 UTC);
        let day = time::Duration::DAY;
        // Newest first, as the list gives them.
        let records = vec![
            record("s1", BackupKind::Scheduled, now - day),
            record("m1", BackupKind::Manual, now - day * 2),
            record("s2", BackupKind::Scheduled, now - day * 3),
            record("s3", BackupKind::Scheduled, now - day * 4),
            record("m2", BackupKind::Manual, now - day * 40),
        ];
        assert_eq!(
            Shelf::past_retention(&records, 2, None, now),
            vec!["s3".to_owned()]
        );
        assert_eq!(
            Shelf::past_retention(&records, 10, Some(day * 2), now),
            vec!["s2".to_owned(), "s3".to_owned()]
        );
        assert_eq!(
            Shelf::past_retention(&records, 0, None, now),
            vec!["s1".to_owned(), "s2".to_owned(), "s3".to_owned()]
        );
    }
}
