//! The backup file: a ZIP of the parts (the manifest first, the database's rows as JSON lines,
//! files of the data directory), encrypted and authenticated as a whole with a passphrase by
//! age (scrypt). Opening decrypts it into a private temporary file first, so a damaged,
//! truncated or wrongly keyed file is refused before anything is read out of it, let alone
//! written anywhere; then every part is checked against the SHA-256 the manifest gives.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, Write};

use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zip::write::SimpleFileOptions;

use crate::{Error, Result};

/// The version of this layout; a file of a later one is refused.
pub const FORMAT: u32 = 1;

/// The manifest's name in the ZIP.
const MANIFEST: &str = "manifest.json";
/// The database part's name in the ZIP.
pub(crate) const DATABASE: &str = "database.jsonl";

/// scrypt work factor (N = 2^18: about a second and 256 MiB) for files written here, and the
/// most a file opened here may ask for, so that a file cannot make opening it cost more.
const WORK_FACTOR: u8 = 18;

/// A database row line longer than this is refused: the largest rows (a CRL of a few hundred
/// thousand entries) are a few tens of MiB.
const MAX_LINE: u64 = 256 * 1024 * 1024;

/// What a backup holds, written in it and read first when it is opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`] when written.
    pub format: u32,
    /// The certmint version that wrote it.
    pub product_version: String,
    /// The database's schema version (its newest migration).
    pub schema_version: i64,
    /// When the snapshot was taken.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// `sqlite` or `postgresql`: where it was taken (it restores into either).
    pub backend: String,
    /// Names the master-key lineage (the integrity seed the audit chain is keyed from),
    /// without revealing it.
    pub master_key_id: String,
    /// Names each master key the secrets inside may be sealed under, by version.
    pub master_key_versions: Vec<KeyVersion>,
    /// Whether the master key itself is inside.
    pub master_key_included: bool,
    /// Rows per table.
    pub tables: Vec<TableCount>,
    /// Every other part, with its size and SHA-256.
    pub parts: Vec<Part>,
}

/// A master key's version and the name it goes by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVersion {
    /// Its version.
    pub version: u32,
    /// Its name (see `Vault::key_ids`).
    pub id: String,
}

/// A table and its number of rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCount {
    /// The table.
    pub name: String,
    /// Its rows in the snapshot.
    pub rows: u64,
}

/// One part of the ZIP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Its name in the ZIP.
    pub name: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// A line of the database part: a table's header, followed by its rows.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Line {
    Table {
        table: String,
        columns: Vec<store::Column>,
    },
    Row(Vec<store::Value>),
}

/// Writes a part into a file while counting and hashing it.
pub(crate) struct PartWriter {
    name: String,
    out: BufWriter<File>,
    hash: Sha256,
    bytes: u64,
}

impl PartWriter {
    pub(crate) fn new(name: &str, file: File) -> Self {
        Self {
            name: name.to_owned(),
            out: BufWriter::new(file),
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    /// Appends `line` and a newline.
    pub(crate) fn line(&mut self, line: &Line) -> Result<()> {
        let mut text = serde_json::to_vec(line)
            .map_err(|e| Error::Internal(format!("cannot encode a backup line: {e}")))?;
        text.push(b'\n');
        self.hash.update(&text);
        self.bytes += text.len() as u64;
        self.out.write_all(&text).map_err(io("write the backup"))
    }

    /// The part as written, and its file rewound for reading.
    pub(crate) fn finish(self) -> Result<(Part, File)> {
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| Error::Internal(format!("cannot write the backup: {e}")))?;
        file.rewind().map_err(io("rewind the backup part"))?;
        Ok((
            Part {
                name: self.name,
                bytes: self.bytes,
                sha256: hex::encode(self.hash.finalize()),
            },
            file,
        ))
    }
}

/// The entry of an in-memory part for the manifest.
pub(crate) fn part_of(name: &str, content: &[u8]) -> Part {
    Part {
        name: name.to_owned(),
        bytes: content.len() as u64,
        sha256: hex::encode(Sha256::digest(content)),
    }
}

/// Writes the backup to `out`: `manifest` (which lists `parts`) first, then the database part
/// from `database`, then each of `files`; all encrypted under `passphrase`.
pub(crate) fn write(
    out: File,
    passphrase: &SecretString,
    manifest: &Manifest,
    database: File,
    files: &[(String, Vec<u8>)],
) -> Result<()> {
    let zip_file = tempfile::tempfile().map_err(io("create a temporary file"))?;
    let mut zip = zip::ZipWriter::new(zip_file);
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    let text = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Internal(format!("cannot encode the manifest: {e}")))?;
    zip.start_file(MANIFEST, options).map_err(zip_error)?;
    zip.write_all(&text).map_err(io("write the backup"))?;
    zip.start_file(DATABASE, options).map_err(zip_error)?;
    std::io::copy(&mut BufReader::new(database), &mut zip).map_err(io("write the backup"))?;
    for (name, content) in files {
        zip.start_file(name.as_str(), options).map_err(zip_error)?;
        zip.write_all(content).map_err(io("write the backup"))?;
    }
    let mut zip_file = zip.finish().map_err(zip_error)?;
    zip_file.rewind().map_err(io("rewind the backup"))?;

    let mut recipient = age::scrypt::Recipient::new(passphrase.clone());
    recipient.set_work_factor(WORK_FACTOR);
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(|e| Error::Internal(format!("cannot encrypt the backup: {e}")))?;
    let mut writer = encryptor
        .wrap_output(BufWriter::new(out))
        .map_err(io("write the backup"))?;
    std::io::copy(&mut zip_file, &mut writer).map_err(io("write the backup"))?;
    let out = writer
        .finish()
        .map_err(io("write the backup"))?
        .into_inner()
        .map_err(|e| Error::Internal(format!("cannot write the backup: {e}")))?;
    out.sync_all().map_err(io("write the backup"))
}

/// A backup decrypted and checked: its manifest, and its parts to read.
pub(crate) struct Opened {
    pub(crate) manifest: Manifest,
    zip: zip::ZipArchive<File>,
}

/// Decrypts `file` with `passphrase` into a temporary file and checks it: the manifest parses
/// and is of a format this build reads, every part it lists is there with its size and SHA-256.
///
/// # Errors
/// [`Error::Invalid`] for a wrong passphrase, a damaged, truncated or altered file, or a later
/// format.
pub(crate) fn open(file: File, passphrase: &SecretString) -> Result<Opened> {
    let refused = |why: &str| Error::Invalid(format!("not a usable certmint backup: {why}"));
    let decryptor = age::Decryptor::new_buffered(BufReader::new(file))
        .map_err(|_| refused("it is not an encrypted backup, or its header is damaged"))?;
    if !decryptor.is_scrypt() {
        return Err(refused("it is not encrypted with a passphrase"));
    }
    let mut identity = age::scrypt::Identity::new(passphrase.clone());
    identity.set_max_work_factor(WORK_FACTOR);
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::ExcessiveWork { .. } => {
                refused("its key derivation asks for more work than certmint allows")
            }
            _ => Error::Invalid("wrong passphrase for this backup".into()),
        })?;
    let mut plain = tempfile::tempfile().map_err(io("create a temporary file"))?;
    std::io::copy(&mut reader, &mut plain)
        .map_err(|_| refused("it is damaged or truncated (its authentication failed)"))?;
    plain.rewind().map_err(io("rewind the backup"))?;
    let mut zip =
        zip::ZipArchive::new(plain).map_err(|_| refused("its contents are not a ZIP file"))?;
    let manifest: Manifest = {
        let entry = zip
            .by_name(MANIFEST)
            .map_err(|_| refused("it has no manifest"))?;
        serde_json::from_reader(entry.take(1024 * 1024))
            .map_err(|e| refused(&format!("its manifest does not parse: {e}")))?
    };
    if manifest.format > FORMAT {
        return Err(Error::Invalid(format!(
            "this backup was written in format {} by certmint {}; this certmint reads format {FORMAT}: upgrade certmint to restore it",
            manifest.format, manifest.product_version
        )));
    }
    let mut opened = Opened { manifest, zip };
    for part in opened.manifest.parts.clone() {
        let mut hash = Sha256::new();
        let mut entry = opened
            .zip
            .by_name(&part.name)
            .map_err(|_| refused(&format!("its part {} is missing", part.name)))?;
        let bytes = std::io::copy(
            &mut (&mut entry).take(part.bytes + 1),
            &mut HashWriter(&mut hash),
        )
        .map_err(|_| refused(&format!("its part {} is damaged", part.name)))?;
        if bytes != part.bytes || hex::encode(hash.finalize()) != part.sha256 {
            return Err(refused(&format!(
                "its part {} does not match the manifest",
                part.name
            )));
        }
    }
    if !opened.manifest.parts.iter().any(|p| p.name == DATABASE) {
        return Err(refused("it holds no database"));
    }
    Ok(opened)
}

impl Opened {
    /// The content of part `name`, if the backup has it (and the manifest lists it).
    pub(crate) fn file(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        let Some(part) = self.manifest.parts.iter().find(|p| p.name == name) else {
            return Ok(None);
        };
        let limit = part.bytes;
        let mut entry = self
            .zip
            .by_name(name)
            .map_err(|e| Error::Internal(format!("cannot read the backup: {e}")))?;
        let mut content = Vec::new();
        (&mut entry)
            .take(limit)
            .read_to_end(&mut content)
            .map_err(io("read the backup"))?;
        Ok(Some(content))
    }

    /// Reads the database part's lines, handing each to `each`.
    pub(crate) fn database_lines(
        &mut self,
        mut each: impl FnMut(Line) -> Result<()>,
    ) -> Result<()> {
        let entry = self
            .zip
            .by_name(DATABASE)
            .map_err(|e| Error::Internal(format!("cannot read the backup: {e}")))?;
        let mut lines = BufReader::new(entry);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = (&mut lines)
                .take(MAX_LINE)
                .read_until(b'\n', &mut line)
                .map_err(io("read the backup"))?;
            if read == 0 {
                return Ok(());
            }
            if line.last() != Some(&b'\n') {
                return Err(Error::Invalid(
                    "the backup's database part has a line that is too long or cut".into(),
                ));
            }
            let parsed = serde_json::from_slice(&line).map_err(|e| {
                Error::Invalid(format!("the backup's database part does not parse: {e}"))
            })?;
            each(parsed)?;
        }
    }
}

/// Feeds what is written into a hash.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::Internal(format!("cannot {what}: {e}"))
}

fn zip_error(e: zip::result::ZipError) -> Error {
    Error::Internal(format!("cannot write the backup: {e}"))
}
