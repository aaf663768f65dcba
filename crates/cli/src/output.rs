//! How the client commands show what the server answered: aligned tables, the server's JSON,
//! and files (private ones readable by their owner only).

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::client::Error;

/// A table printed with columns padded to their widest cell.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headings.
    pub fn new(header: Vec<&'static str>) -> Self {
        Self {
            header,
            rows: Vec::new(),
        }
    }

    /// Adds a row (cells past the header's length are dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, the last column unpadded.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < widths.len() {
                    let pad = width.saturating_sub(cell.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }

    /// Prints the table on standard output.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// Prints the server's JSON answer, indented.
pub fn print_json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        // A Value always serialises; print it compactly all the same if it ever did not.
        Err(_) => println!("{value}"),
    }
}

/// The date of an RFC 3339 timestamp (`2026-03-01T…` → `2026-03-01`).
pub fn date(timestamp: &str) -> &str {
    timestamp.split_once('T').map_or(timestamp, |(day, _)| day)
}

/// Writes `bytes` to `path`, replacing it. A `private` file (a key, a PKCS#12 bundle) is
/// readable and writable by its owner only, before anything is written to it.
///
/// # Errors
/// [`Error::File`] naming the path.
pub fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), Error> {
    let fail = |source| Error::File {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    #[cfg(unix)]
    if private {
        // The mode above applies only to a new file: tighten one that was already there.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    file.write_all(bytes).map_err(fail)?;
    file.flush().map_err(fail)
}

/// Refuses an output file whose directory does not exist, before anything is asked of the
/// server.
///
/// # Errors
/// [`Error::Usage`] naming the flag and the path.
pub fn check_writable(flag: &str, path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "{flag} {} is a directory",
            path.display()
        )));
    }
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{flag} {}: the directory {} does not exist",
            path.display(),
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut table = Table::new(vec!["ID", "NAME", "NOTE"]);
        table.row(vec!["1".into(), "certmint Root CA".into(), "".into()]);
        table.row(vec!["12".into(), "é".into(), "last".into()]);
        assert_eq!(
            table.render(),
            "ID  NAME              NOTE\n\
             1   certmint Root CA\n\
             12  é                 last\n"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(date("2026-03-01T10:00:00Z"), "2026-03-01");
        assert_eq!(date("whenever"), "whenever");
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "old")?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        write_file(&path, b"secret", true)?;
        assert_eq!(std::fs::read(&path)?, b"secret");
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
        assert!(check_writable("--out", &dir.path().join("x/y.pem")).is_err());
        assert!(check_writable("--out", dir.path()).is_err());
        check_writable("--out", &path)?;
        check_writable("--out", Path::new("relative.pem"))?;
        Ok(())
    }
}
