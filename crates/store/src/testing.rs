//! Test helpers (feature `test-support`): never part of the product build.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{AssertSqlSafe, Connection};

use crate::{Error, Store};

/// Creates an empty database on the PostgreSQL server that `admin_url` points at, and returns
/// a URL for it.
///
/// # Errors
/// [`Error::Unavailable`] when the server cannot be reached.
pub async fn fresh_postgres_database(admin_url: &str) -> Result<String, Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    sqlx::any::install_default_drivers();
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
