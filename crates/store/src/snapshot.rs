//! The whole database as rows of plain values, read in one consistent snapshot, and loaded back
//! into a database of the same schema version on either engine: what backups are made of.
//!
//! The schema uses three column types on both engines (64-bit integers, text, bytes), so a row
//! read from SQLite loads into PostgreSQL and back unchanged. Foreign keys are checked when the
//! load commits (PostgreSQL's are `DEFERRABLE`, migration 0023; SQLite defers them per
//! transaction), so tables load in any order and rows that point at each other (a CA and its
//! responder certificate) need no second pass.

use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Executor, Row};

use crate::Error;
use crate::db::{Backend, MAX_BINDS, Reader, Store};

/// A column's type, as both engines spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `BIGINT`/`INTEGER`.
    Int,
    /// `TEXT`.
    Text,
    /// `BLOB`/`BYTEA`.
    Bytes,
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub kind: Kind,
}

/// A table and its columns, in the order its rows list their values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// Its name.
    pub name: String,
    /// Its columns.
    pub columns: Vec<Column>,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes, as base64 in JSON.
    Bytes {
        /// The bytes, base64.
        b64: String,
    },
}

/// The table that records applied migrations belongs to the engine's migrator, not to the data.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

impl Reader {
    /// The schema version: the newest migration applied.
    ///
    /// # Errors
    /// Store errors.
    pub async fn schema_version(&self) -> Result<i64, Error> {
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("v")?)
    }

    /// Every table of certmint's schema and its columns, by name.
    ///
    /// # Errors
    /// Store errors; [`Error::Corrupt`] for a column of a type the schema never uses.
    pub async fn tables(&self) -> Result<Vec<Table>, Error> {
        let names = match self.backend() {
            // Ordinary tables only: a full-text index (a virtual table and its shadow
            // tables) is remade by the triggers as the certificates load.
            Backend::Sqlite => {
                "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' \
                 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            }
            Backend::Postgres => {
                "SELECT table_name::text AS name FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
                 ORDER BY table_name"
            }
        };
        let columns = match self.backend() {
            Backend::Sqlite => "SELECT name, type FROM pragma_table_info($1) ORDER BY cid",
            Backend::Postgres => {
                "SELECT column_name::text AS name, data_type::text AS type FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position"
            }
        };
        let mut tables = Vec::new();
        for row in sqlx::query(names).fetch_all(&self.pool).await? {
            let name: String = row.try_get("name")?;
            if name == MIGRATIONS_TABLE {
                continue;
            }
            let mut table = Table {
                name,
                columns: Vec::new(),
            };
            for column in sqlx::query(columns)
                .bind(table.name.clone())
                .fetch_all(&self.pool)
                .await?
            {
                let name: String = column.try_get("name")?;
                let kind = kind_of(&column.try_get::<String, _>("type")?).ok_or_else(|| {
                    Error::Corrupt(format!(
                        "{}.{name} has a type certmint's schema does not use",
                        table.name
                    ))
                })?;
                table.columns.push(Column { name, kind });
            }
            tables.push(table);
        }
        Ok(tables)
    }

    /// Reads every row of `tables` in one snapshot of the database (a read transaction:
    /// repeatable read on PostgreSQL) and sends them to `to` as they stream in, up to `batch`
    /// rows at a time with their table's index; the channel's bound holds the reading back
    /// while the receiver is behind.
    ///
    /// # Errors
    /// Store errors; [`Error::Invalid`] when the receiver went away.
    pub async fn snapshot(
        &self,
        tables: &[Table],
        batch: usize,
        to: &tokio::sync::mpsc::Sender<(usize, Vec<Vec<Value>>)>,
    ) -> Result<(), Error> {
        let gone = |_| Error::Invalid("the snapshot's receiver stopped".into());
        let mut tx = self.pool.begin().await?;
        if self.backend() == Backend::Postgres {
            tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?;
        }
        for (index, table) in tables.iter().enumerate() {
            let sql = format!("SELECT {} FROM {}", column_list(table), quoted(&table.name));
            let mut rows = sqlx::query(AssertSqlSafe(sql)).fetch(&mut *tx);
            let mut pending = Vec::new();
            while let Some(row) = rows.try_next().await? {
                pending.push(values(table, &row)?);
                if pending.len() >= batch.max(1) {
                    to.send((index, std::mem::take(&mut pending)))
                        .await
                        .map_err(gone)?;
                }
            }
            if !pending.is_empty() {
                to.send((index, pending)).await.map_err(gone)?;
            }
        }
        tx.rollback().await?;
        Ok(())
    }
}

impl Store {
    /// Starts replacing every row of the database: the returned load has emptied every table
    /// (inside its transaction), takes rows with [`Load::rows`], and writes nothing unless
    /// [`Load::commit`] succeeds.
    ///
    /// # Errors
    /// Store errors.
    pub async fn begin_load(&self) -> Result<Load, Error> {
        let tables = self.tables().await?;
        let turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        match self.backend() {
            Backend::Sqlite => {
                tx.execute("PRAGMA defer_foreign_keys = ON").await?;
                for table in &tables {
                    tx.execute(AssertSqlSafe(format!(
                        "DELETE FROM {}",
                        quoted(&table.name)
                    )))
                    .await?;
                }
            }
            Backend::Postgres => {
                tx.execute("SET CONSTRAINTS ALL DEFERRED").await?;
                let all: Vec<String> = tables.iter().map(|t| quoted(&t.name)).collect();
                tx.execute(AssertSqlSafe(format!("TRUNCATE {}", all.join(", "))))
                    .await?;
            }
        }
        Ok(Load {
            backend: self.backend(),
            tables,
            tx,
            _turn: turn,
        })
    }

    /// Drops every table, the migrator's record included, in one transaction, then migrates
    /// the empty database: the database of a new install. What was there is gone for good.
    ///
    /// # Errors
    /// Store errors; [`Error::Migration`] when the new schema cannot be made.
    pub async fn recreate(&self) -> Result<(), Error> {
        let mut names: Vec<String> = self.tables().await?.into_iter().map(|t| t.name).collect();
        names.push(MIGRATIONS_TABLE.to_owned());
        {
            let _turn = self.write_turn().await;
            let mut connection = self.pool.acquire().await?;
            match self.backend() {
                Backend::Sqlite => {
                    // Dropping a table deletes its rows first; with foreign keys on, that
                    // would fail for every table another points at. The setting holds only
                    // outside a transaction, so it is made before and undone after.
                    connection.execute("PRAGMA foreign_keys = OFF").await?;
                    let virtual_tables: Vec<String> = sqlx::query_scalar(
                        "SELECT name FROM pragma_table_list WHERE schema = 'main' \
                         AND type = 'virtual'",
                    )
                    .fetch_all(&mut *connection)
                    .await?;
                    let dropped = async {
                        let mut tx = sqlx::Connection::begin(&mut *connection).await?;
                        for name in virtual_tables.iter().chain(&names) {
                            tx.execute(AssertSqlSafe(format!(
                                "DROP TABLE IF EXISTS {}",
                                quoted(name)
                            )))
                            .await?;
                        }
                        tx.commit().await
                    }
                    .await;
                    connection.execute("PRAGMA foreign_keys = ON").await?;
                    dropped?;
                }
                Backend::Postgres => {
                    let all: Vec<String> = names.iter().map(|n| quoted(n)).collect();
                    let mut tx = sqlx::Connection::begin(&mut *connection).await?;
                    tx.execute(AssertSqlSafe(format!(
                        "DROP TABLE IF EXISTS {} CASCADE",
                        all.join(", ")
                    )))
                    .await?;
                    tx.commit().await?;
                }
            }
        }
        self.migrate().await
    }
}

/// A load in progress: see [`Store::begin_load`].
pub struct Load {
    backend: Backend,
    tables: Vec<Table>,
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Load {
    /// The tables of the database being loaded, by name.
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// Inserts `rows` of `table`, whose values follow `columns`: the columns the rows were
    /// read with, which must be those of the table here, in any order.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown table, columns that differ from this schema's, or a
    /// value of the wrong type; store errors (a duplicate key).
    pub async fn rows(
        &mut self,
        table: &str,
        columns: &[Column],
        rows: &[Vec<Value>],
    ) -> Result<(), Error> {
        let here = self
            .tables
            .iter()
            .find(|t| t.name == table)
            .ok_or_else(|| Error::Invalid(format!("table {table} is not in this schema")))?;
        let mut mine: Vec<&Column> = here.columns.iter().collect();
        let mut theirs: Vec<&Column> = columns.iter().collect();
        mine.sort_by(|a, b| a.name.cmp(&b.name));
        theirs.sort_by(|a, b| a.name.cmp(&b.name));
        if mine != theirs {
            return Err(Error::Invalid(format!(
                "the columns of {table} differ from this schema's"
            )));
        }
        let width = columns.len().max(1);
        let names: Vec<String> = columns.iter().map(|c| quoted(&c.name)).collect();
        let insert = format!("INSERT INTO {} ({})", quoted(table), names.join(", "));
        for chunk in rows.chunks((MAX_BINDS / width).max(1)) {
            let mut query = String::new();
            let mut n = 0;
            for (i, row) in chunk.iter().enumerate() {
                if row.len() != columns.len() {
                    return Err(Error::Invalid(format!(
                        "a row of {table} has {} values for {} columns",
                        row.len(),
                        columns.len()
                    )));
                }
                query.push_str(if i == 0 { " VALUES (" } else { ", (" });
                for j in 0..row.len() {
                    n += 1;
                    if j > 0 {
                        query.push_str(", ");
                    }
                    match self.backend {
                        Backend::Sqlite => query.push('?'),
                        Backend::Postgres => query.push_str(&format!("${n}")),
                    }
                }
                query.push(')');
            }
            let sql = format!("{insert}{query}");
            let mut bound = sqlx::query(AssertSqlSafe(sql));
            for row in chunk {
                for (value, column) in row.iter().zip(columns) {
                    bound = bind(bound, value, column, table)?;
                }
            }
            bound.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Sets PostgreSQL's identity sequences past the ids loaded, then commits; the foreign keys
    /// are checked here.
    ///
    /// # Errors
    /// Store errors; [`Error::Invalid`] when a row points at one that was not loaded.
    pub async fn commit(mut self) -> Result<(), Error> {
        if self.backend == Backend::Postgres {
            let with_ids = self
                .tables
                .iter()
                .filter(|t| t.columns.iter().any(|c| c.name == "id"));
            for table in with_ids {
                let sequence: Option<String> =
                    sqlx::query("SELECT pg_get_serial_sequence($1, 'id') AS s")
                        .bind(quoted(&table.name))
                        .fetch_one(&mut *self.tx)
                        .await?
                        .try_get("s")?;
                if let Some(sequence) = sequence {
                    let sql = format!(
                        "SELECT setval($1, COALESCE(MAX(id), 0) + 1, false) FROM {}",
                        quoted(&table.name)
                    );
                    sqlx::query(AssertSqlSafe(sql))
                        .bind(sequence)
                        .fetch_one(&mut *self.tx)
                        .await?;
                }
            }
        }
        self.tx.commit().await.map_err(|e| match Error::from(e) {
            Error::Database(e) => Error::Invalid(format!(
                "the rows loaded do not fit together (a reference to a row that is not there): {e}"
            )),
            other => other,
        })
    }
}

fn kind_of(declared: &str) -> Option<Kind> {
    match declared.to_ascii_lowercase().as_str() {
        "bigint" | "integer" => Some(Kind::Int),
        "text" => Some(Kind::Text),
        "blob" | "bytea" => Some(Kind::Bytes),
        _ => None,
    }
}

/// A name as an SQL identifier. Names come from the database's own catalogue or are checked
/// against it, never straight from a file.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn column_list(table: &Table) -> String {
    let names: Vec<String> = table.columns.iter().map(|c| quoted(&c.name)).collect();
    names.join(", ")
}

fn values(table: &Table, row: &AnyRow) -> Result<Vec<Value>, Error> {
    use base64::Engine;
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let value = match column.kind {
                Kind::Int => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
                Kind::Text => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
                Kind::Bytes => row.try_get::<Option<Vec<u8>>, _>(i)?.map(|b| Value::Bytes {
                    b64: base64::engine::general_purpose::STANDARD.encode(b),
                }),
            };
            Ok(value.unwrap_or(Value::Null))
        })
        .collect()
}

fn bind(
    query: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>,
    value: &Value,
    column: &Column,
    table: &str,
) -> Result<sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>, Error> {
    use base64::Engine;
    Ok(match (value, column.kind) {
        (Value::Null, Kind::Int) => query.bind(None::<i64>),
        (Value::Null, Kind::Text) => query.bind(None::<String>),
        (Value::Null, Kind::Bytes) => query.bind(None::<Vec<u8>>),
        (Value::Int(v), Kind::Int) => query.bind(*v),
        (Value::Text(v), Kind::Text) => query.bind(v.clone()),
        (Value::Bytes { b64 }, Kind::Bytes) => query.bind(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| Error::Invalid(format!("{table}.{}: bad base64", column.name)))?,
        ),
        _ => {
            return Err(Error::Invalid(format!(
                "{table}.{}: a value of the wrong type",
                column.name
            )));
        }
    })
}
