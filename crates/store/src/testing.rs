//! Test helpers (feature `test-support`): never part of the product build.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::{AssertSqlSafe, Connection};

use crate::db::Arg;
use crate::{Error, Reader, Store};

/// Creates an empty database on the PostgreSQL server that `admin_url` points at, and returns
/// a URL for it.
///
/// # Errors
/// [`Error::Unavailable`] when the server cannot be reached.
pub async fn fresh_postgres_database(admin_url: &str) -> Result<String, Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    sqlx::any::install_default_drivers();
    // Only to keep names apart across runs; nothing depends on the time being right.
    #[allow(clippy::disallowed_methods)]
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!(
        "certmint_test_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = sqlx::AnyConnection::connect(admin_url).await?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
    Ok(match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    })
}

impl Store {
    /// Runs any SQL: for tests that damage rows on purpose.
    ///
    /// # Errors
    /// Whatever the database says.
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, Error> {
        Ok(sqlx::query(AssertSqlSafe(sql.to_owned()))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

/// A value bound to a statement's placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer (ids, times in microseconds, limits).
    Int(i64),
    /// Text.
    Text(String),
    /// SQL NULL.
    Null,
}

/// A statement a store function ran: its SQL and the values bound to `$1`, `$2`, … in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The SQL, as sent to the database.
    pub sql: String,
    /// The bound values.
    pub values: Vec<Value>,
}

/// The statements run through a reader made by [`Reader::recording`], in order. Only the
/// queries that go through the store's common read path are recorded: the console's lists,
/// counts and figures.
#[derive(Debug, Clone, Default)]
pub struct Recorded(Arc<Mutex<Vec<Statement>>>);

impl Recorded {
    pub(crate) fn push(&self, sql: &str, args: &[Arg]) {
        let values = args
            .iter()
            .map(|arg| match arg {
                Arg::Int(v) => Value::Int(*v),
                Arg::Text(v) => Value::Text(v.clone()),
                Arg::Null => Value::Null,
            })
            .collect();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Statement {
                sql: sql.to_owned(),
                values,
            });
    }

    /// The statements recorded since the last call, oldest first.
    pub fn take(&self) -> Vec<Statement> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Reader {
    /// This reader, writing down each statement it runs through the common read path (still
    /// running it), so that a test can check the plan the database chooses for the very SQL a
    /// store function sends rather than for a copy of it.
    pub fn recording(&self) -> (Reader, Recorded) {
        let recorded = Recorded::default();
        let mut reader = self.clone();
        reader.recorded = Some(recorded.clone());
        (reader, recorded)
    }
}

/// Applies the migrations up to `version` only, so that a test can write data the way an older
/// release did and then check what a later migration makes of it.
///
/// # Errors
/// [`Error::Migration`] when a migration fails.
pub async fn migrate_to(store: &Store, version: i64) -> Result<(), Error> {
    store
        .migrator()
        .run_to(version, &store.pool)
        .await
        .map_err(|e| Error::Migration(e.to_string()))
}

/// A tmpfs of a given size mounted at a new temporary directory, to run out of disk space on
/// purpose; unmounted when dropped. Mounting needs root, as the test script and CI run.
#[derive(Debug)]
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (`mount`'s notation, e.g. `24m`).
    ///
    /// # Errors
    /// A message when `mount` is missing or refuses (not root): the test then fails, it does
    /// not skip.
    pub fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map_err(|e| format!("mount is required for this test: {e}"))?;
        if !status.success() {
            return Err("cannot mount a tmpfs: this test needs root".into());
        }
        Ok(Self { dir })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills the disk with a file until not one more byte fits; returns the file's path, to
    /// delete when space should come back.
    ///
    /// # Errors
    /// An I/O error other than running out of space.
    pub fn fill(&self) -> std::io::Result<std::path::PathBuf> {
        use std::io::Write;
        const ENOSPC: i32 = 28;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path)?;
        let chunk = vec![0u8; 64 * 1024];
        for size in [chunk.len(), 1] {
            loop {
                match file.write(&chunk[..size]) {
                    Ok(n) if n == size => {}
                    Ok(_) => break,
                    Err(e) if e.raw_os_error() == Some(ENOSPC) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(path)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: connections a test left open must not keep the mount behind.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
