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
    /// A unique constraint refused the write (the thing already exists).
    #[error("already exists")]
    Conflict,
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A stored value could not be read back as its type (a damaged row).
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => Self::Unavailable(e.to_string()),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                Self::Corrupt(e.to_string())
            }
            _ => Self::Database(e),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}
