//! ZIP files for the bulk exports.

use std::io::Write;

use zip::write::SimpleFileOptions;

/// A ZIP of `files` (name, content), deflated. Names are made safe and, when repeated, numbered.
///
/// # Errors
/// [`authority::Error::Internal`] when writing fails (it writes to memory, so it should not).
pub fn zip(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, authority::Error> {
    let fail =
        |e: zip::result::ZipError| authority::Error::Internal(format!("cannot write ZIP: {e}"));
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut used = std::collections::HashSet::new();
    for (name, content) in files {
        let safe = crate::envelope::safe_file_name(name);
        let mut unique = safe.clone();
        let mut n = 1;
        while !used.insert(unique.clone()) {
            n += 1;
            unique = format!("{n}-{safe}");
        }
        writer.start_file(unique, options).map_err(fail)?;
        writer
            .write_all(content)
            .map_err(|e| authority::Error::Internal(format!("cannot write ZIP: {e}")))?;
    }
    Ok(writer.finish().map_err(fail)?.into_inner())
}
