//! ZIP files for the bulk exports: small ones built in memory, and the database export, written
//! entry by entry into a temporary file and streamed from it.

use std::io::{Read, Seek, Write};

use axum::body::Body;
use axum::response::Response;
use zip::write::SimpleFileOptions;

fn failed(e: impl std::fmt::Display) -> authority::Error {
    authority::Error::Internal(format!("cannot write ZIP: {e}"))
}

/// A ZIP written one entry at a time, deflated, into `W`.
pub struct ZipBuilder<W: Write + Seek> {
    writer: zip::ZipWriter<W>,
}

impl<W: Write + Seek> ZipBuilder<W> {
    pub fn new(inner: W) -> Self {
        Self {
            writer: zip::ZipWriter::new(inner),
        }
    }

    /// Starts entry `name` (the caller makes it safe and unique) and copies `content` into it.
    ///
    /// # Errors
    /// [`authority::Error::Internal`] when writing fails.
    pub fn add(&mut self, name: &str, mut content: impl Read) -> Result<(), authority::Error> {
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        self.writer.start_file(name, options).map_err(failed)?;
        std::io::copy(&mut content, &mut self.writer).map_err(failed)?;
        Ok(())
    }

    /// Writes the central directory and hands back the writer.
    ///
    /// # Errors
    /// [`authority::Error::Internal`] when writing fails.
    pub fn finish(self) -> Result<W, authority::Error> {
        self.writer.finish().map_err(failed)
    }
}

/// A ZIP of `files` (name, content), deflated. Names are made safe and, when repeated, numbered.
///
/// # Errors
/// [`authority::Error::Internal`] when writing fails (it writes to memory, so it should not).
pub fn zip(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, authority::Error> {
    let mut zip = ZipBuilder::new(std::io::Cursor::new(Vec::new()));
    let mut used = std::collections::HashSet::new();
    for (name, content) in files {
        let safe = crate::envelope::safe_file_name(name);
        let mut unique = safe.clone();
        let mut n = 1;
        while !used.insert(unique.clone()) {
            n += 1;
            unique = format!("{n}-{safe}");
        }
        zip.add(&unique, content.as_slice())?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Bytes read from the file at a time while streaming it.
const CHUNK: usize = 64 * 1024;

/// 200 with `file` (read from its start) as an attachment, streamed a chunk at a time rather
/// than read into memory.
///
/// # Errors
/// [`authority::Error::Internal`] when the file cannot be measured or rewound.
pub fn streamed_attachment(
    content_type: &str,
    file_name: &str,
    mut file: std::fs::File,
) -> Result<Response, authority::Error> {
    let fail =
        |e: std::io::Error| authority::Error::Internal(format!("cannot read the export: {e}"));
    let length = file.seek(std::io::SeekFrom::End(0)).map_err(fail)?;
    file.rewind().map_err(fail)?;
    let chunks =
        futures_util::stream::unfold(tokio::fs::File::from_std(file), |mut file| async move {
            use tokio::io::AsyncReadExt;
            let mut chunk = vec![0; CHUNK];
            match file.read(&mut chunk).await {
                Ok(0) => None,
                Ok(n) => {
                    chunk.truncate(n);
                    Some((Ok(chunk), file))
                }
                // The body ends at the first error; the client sees a short download.
                Err(e) => Some((Err(e), file)),
            }
        });
    let mut response =
        crate::envelope::attachment(content_type, file_name, Body::from_stream(chunks));
    response
        .headers_mut()
        .insert(axum::http::header::CONTENT_LENGTH, length.into());
    Ok(response)
}
