/// What can go wrong in the storage authority.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL or another setting is unusable.
    #[error("{0}")]
    Config(String),
    /// The database cannot be reached, or stayed locked past the timeout.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The disk holding the database is full: nothing was written, and the same write may
    /// succeed once space is freed.
    #[error("the database's disk is full: {0}")]
    StorageFull(String),
    /// A unique constraint refused the write (the thing already exists). It names the
    /// constraint as `table.column` (columns joined by `, `), the same on both engines.
    #[error("already exists ({0})")]
    Conflict(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Rows handed to the store do not fit its schema (a snapshot of another schema).
    #[error("{0}")]
    Invalid(String),
    /// A stored value could not be read back as its type (a damaged row).
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

/// The unique constraint `db` reports broken, as `table.column[, table.column]`: SQLite says
/// so in its message; PostgreSQL names the table, and the columns in its detail
/// (`Key (a, b)=(…) already exists.`), whose values are left out.
fn unique_constraint(db: &dyn sqlx::error::DatabaseError) -> String {
    if let Some(columns) = db.message().strip_prefix("UNIQUE constraint failed: ") {
        return columns.to_owned();
    }
    let columns = db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|pg| pg.detail())
        .and_then(|detail| detail.strip_prefix("Key ("))
        .and_then(|detail| detail.split_once(")="))
        .map(|(columns, _)| columns);
    match (db.table(), columns) {
        (Some(table), Some(columns)) => columns
            .split(", ")
            .map(|column| format!("{table}.{column}"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => db.constraint().unwrap_or("unknown").to_owned(),
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::Conflict(unique_constraint(db.as_ref()))
            }
            // A row named by id went away between the caller's check and this write (a user,
            // group or certificate deleted meanwhile): the request's fault, not the database's.
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                Self::Invalid(format!("it names something that does not exist: {db}"))
            }
            sqlx::Error::Database(db) if out_of_space(db.code().as_deref()) => {
                Self::StorageFull(db.to_string())
            }
            sqlx::Error::Database(db)
                if busy(db.code().as_deref()) || unreachable(db.code().as_deref()) =>
            {
                Self::Unavailable(db.to_string())
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => Self::Unavailable(e.to_string()),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                Self::Corrupt(e.to_string())
            }
            _ => Self::Database(e),
        }
    }
}

/// Whether a database error code means the disk is full: SQLite's `SQLITE_FULL` (13, and its
/// extended codes), PostgreSQL's `disk_full` (53100) and `insufficient_resources` (53000).
/// Such a write may succeed once space is freed, so it is the database being unavailable, not
/// a fault of the request.
fn out_of_space(code: Option<&str>) -> bool {
    match code {
        Some("53100" | "53000") => true,
        Some(code) => code.parse::<i64>().is_ok_and(|c| c & 0xff == 13),
        None => false,
    }
}

/// Whether a SQLite error code means another connection holds the database past the busy
/// timeout (`SQLITE_BUSY` 5, `SQLITE_LOCKED` 6, and their extended codes): a wait, not a fault.
fn busy(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

/// Whether a PostgreSQL error code means the server is going away or not yet there: a
/// connection exception (class 08), or a shutdown or start-up in progress (`admin_shutdown`,
/// `crash_shutdown`, `cannot_connect_now`). Stopping PostgreSQL answers queries with these
/// before the connection drops, and the same query succeeds once it is back.
fn unreachable(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03"))
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}
