//! The database itself: its size and tables, the engine's own consistency checks, upkeep
//! (optimize, checkpoint, vacuum), the paged walks that certmint's own checks and exports take
//! over certificates and keys, and the relinking of certificates to their issuers.

use sqlx::{AssertSqlSafe, Executor, Row};
use time::OffsetDateTime;

use crate::cert_fields::CERT_COLUMNS;
use crate::certificates::{COLUMNS, certificate};
use crate::db::Arg;
use crate::keys::{KEY_COLUMNS, key};
use crate::{
    Backend, CaId, CertificateId, CertificateRow, Error, KeyId, KeyRow, Reader, Store, WriteTx,
    to_micros,
};

/// One table's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStats {
    /// The table's name.
    pub name: String,
    /// Rows in it, counted.
    pub rows: i64,
    /// Bytes it takes with its indexes, when the backend reports it (SQLite's `dbstat` table may
    /// be missing from a build).
    pub bytes: Option<i64>,
}

/// The database's size and tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseStats {
    /// The engine.
    pub backend: Backend,
    /// The database's size in bytes (SQLite: pages × page size, without the write-ahead log).
    pub bytes: i64,
    /// Bytes in pages SQLite keeps free for reuse (none on PostgreSQL, which does not say).
    pub free_bytes: Option<i64>,
    /// The size of SQLite's write-ahead log file (none on PostgreSQL).
    pub wal_bytes: Option<u64>,
    /// Every table, by name.
    pub tables: Vec<TableStats>,
}

/// What the database engine found checking itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineCheck {
    /// What ran (`PRAGMA integrity_check`, `bt_index_check`, …).
    pub checks: Vec<String>,
    /// What it found wrong, at most the number asked for.
    pub problems: Vec<String>,
    /// A check that could not run, and why.
    pub skipped: Option<String>,
}

impl Reader {
    /// The database's size, its tables' row counts and (where the backend says) their sizes.
    /// Row counts are exact: each table is counted.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn database_stats(&self) -> Result<DatabaseStats, Error> {
        let (size_sql, tables_sql) = match self.backend() {
            Backend::Sqlite => (
                "SELECT page_count * page_size AS bytes, freelist_count * page_size AS free \
                 FROM pragma_page_count(), pragma_page_size(), pragma_freelist_count()",
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
            ),
            Backend::Postgres => (
                "SELECT pg_database_size(current_database()) AS bytes, NULL::bigint AS free",
                "SELECT tablename::text AS name FROM pg_tables \
                 WHERE schemaname = current_schema() ORDER BY tablename",
            ),
        };
        let size = sqlx::query(size_sql).fetch_one(&self.pool).await?;
        let sizes = self.table_sizes().await?;
        let mut tables = Vec::new();
        for row in sqlx::query(tables_sql).fetch_all(&self.pool).await? {
            let name: String = row.try_get("name")?;
            let count = sqlx::query(AssertSqlSafe(format!(
                "SELECT COUNT(*) AS n FROM {}",
                quoted(&name)
            )))
            .fetch_one(&self.pool)
            .await?;
            tables.push(TableStats {
                bytes: sizes
                    .as_ref()
                    .and_then(|s| s.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)),
                rows: count.try_get("n")?,
                name,
            });
        }
        Ok(DatabaseStats {
            backend: self.backend(),
            bytes: size.try_get("bytes")?,
            free_bytes: size.try_get("free")?,
            wal_bytes: self.wal_bytes().await?,
            tables,
        })
    }

    /// Each table's bytes with its indexes; none when SQLite was built without `dbstat`.
    async fn table_sizes(&self) -> Result<Option<Vec<(String, i64)>>, Error> {
        let sql = match self.backend() {
            Backend::Sqlite => {
                "SELECT m.tbl_name AS name, SUM(d.pgsize) AS bytes FROM dbstat d \
                 JOIN sqlite_master m ON m.name = d.name GROUP BY m.tbl_name"
            }
            Backend::Postgres => {
                "SELECT tablename::text AS name, \
                 pg_total_relation_size(format('%I.%I', schemaname, tablename)::regclass) AS bytes \
                 FROM pg_tables WHERE schemaname = current_schema()"
            }
        };
        let rows = match sqlx::query(sql).fetch_all(&self.pool).await {
            Ok(rows) => rows,
            Err(e) if self.backend() == Backend::Sqlite => {
                tracing::debug!("no per-table sizes: {e}");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("bytes")?)))
            .collect::<Result<_, Error>>()
            .map(Some)
    }

    /// The size of SQLite's `-wal` file beside the database file, 0 when there is none.
    async fn wal_bytes(&self) -> Result<Option<u64>, Error> {
        if self.backend() != Backend::Sqlite {
            return Ok(None);
        }
        let row = sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(&self.pool)
            .await?;
        let file: String = row.try_get("file")?;
        if file.is_empty() {
            // An in-memory database has no file and no log.
            return Ok(Some(0));
        }
        match tokio::fs::metadata(format!("{file}-wal")).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some(0)),
            Err(e) => Err(Error::Config(format!(
                "cannot read the WAL file's size: {e}"
            ))),
        }
    }

    /// The engine's own checks, reporting at most `limit` problems: SQLite's
    /// `integrity_check` and `foreign_key_check`; on PostgreSQL, amcheck's `bt_index_check` on
    /// each B-tree index of certmint's schema when the extension is installed (certmint does
    /// not install it: that takes a superuser), skipped otherwise. PostgreSQL enforces foreign
    /// keys itself.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn engine_check(&self, limit: usize) -> Result<EngineCheck, Error> {
        match self.backend() {
            Backend::Sqlite => self.sqlite_check(limit).await,
            Backend::Postgres => self.postgres_check(limit).await,
        }
    }

    async fn sqlite_check(&self, limit: usize) -> Result<EngineCheck, Error> {
        let cap = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let mut problems = Vec::new();
        let integrity = sqlx::query(AssertSqlSafe(format!("PRAGMA integrity_check({cap})")))
            .fetch_all(&self.pool)
            .await?;
        for row in &integrity {
            let line: String = row.try_get(0)?;
            if line != "ok" {
                problems.push(line);
            }
        }
        let violations = sqlx::query(
            "SELECT \"table\" AS child, rowid AS row_id, parent FROM pragma_foreign_key_check \
             LIMIT $1",
        )
        .bind(cap)
        .fetch_all(&self.pool)
        .await?;
        for row in &violations {
            let (child, parent): (String, String) = (row.try_get("child")?, row.try_get("parent")?);
            let id: Option<i64> = row.try_get("row_id")?;
            problems.push(format!(
                "row {} of {child} refers to a missing row of {parent}",
                id.map_or_else(|| "?".to_owned(), |id| id.to_string())
            ));
        }
        problems.truncate(limit);
        Ok(EngineCheck {
            checks: vec![
                "PRAGMA integrity_check".into(),
                "PRAGMA foreign_key_check".into(),
            ],
            problems,
            skipped: None,
        })
    }

    async fn postgres_check(&self, limit: usize) -> Result<EngineCheck, Error> {
        let installed =
            sqlx::query("SELECT COUNT(*) AS n FROM pg_extension WHERE extname = 'amcheck'")
                .fetch_one(&self.pool)
                .await?
                .try_get::<i64, _>("n")?
                > 0;
        if !installed {
            return Ok(EngineCheck {
                checks: Vec::new(),
                problems: Vec::new(),
                skipped: Some(
                    "the amcheck extension is not installed in this database; a superuser can \
                     add it with CREATE EXTENSION amcheck"
                        .into(),
                ),
            });
        }
        let indexes = sqlx::query(
            "SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_am a ON a.oid = c.relam \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE a.amname = 'btree' AND n.nspname = current_schema() ORDER BY c.relname",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut problems = Vec::new();
        for row in &indexes {
            let name: String = row.try_get("name")?;
            // A corrupt index raises an error naming what is wrong; the check goes on with the
            // next index.
            let check =
                "SELECT COUNT(*) AS n FROM (SELECT bt_index_check($1::regclass)) AS checked";
            if let Err(e) = sqlx::query(check)
                .bind(name.clone())
                .fetch_one(&self.pool)
                .await
            {
                match e {
                    sqlx::Error::Database(db) => {
                        problems.push(format!("index {name}: {}", db.message()));
                    }
                    other => return Err(other.into()),
                }
            }
        }
        problems.truncate(limit);
        Ok(EngineCheck {
            checks: vec![format!("bt_index_check on {} indexes", indexes.len())],
            problems,
            skipped: None,
        })
    }

    /// Up to `limit` certificates with an id above `after`, in id order: one page of a walk
    /// over them all.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn certificates_after(
        &self,
        after: CertificateId,
        limit: i64,
    ) -> Result<Vec<CertificateRow>, Error> {
        let sql = format!(
            "SELECT {COLUMNS}, {CERT_COLUMNS} FROM certificates WHERE id > $1 \
             ORDER BY id LIMIT $2"
        );
        let rows = self
            .rows(sql, &[Arg::Int(after.0), Arg::Int(limit)])
            .await?;
        rows.iter().map(certificate).collect()
    }

    /// Up to `limit` certificates with an id above `after`, in id order, whose issuer link
    /// the stored key identifiers do not confirm: no link, a certificate or linked CA without
    /// a key identifier, or a linked CA whose subject key identifier is not the certificate's
    /// authority key identifier. Only these need their signatures checked to find their
    /// issuer.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn unconfirmed_links_after(
        &self,
        after: CertificateId,
        limit: i64,
    ) -> Result<Vec<CertificateRow>, Error> {
        let sql = format!(
            "SELECT {COLUMNS}, {CERT_COLUMNS} FROM certificates WHERE id > $1 \
             AND (ca_id IS NULL OR authority_key_id IS NULL OR NOT EXISTS (\
                  SELECT 1 FROM cas WHERE cas.id = certificates.ca_id \
                  AND cas.subject_key_id = certificates.authority_key_id)) \
             ORDER BY id LIMIT $2"
        );
        let rows = self
            .rows(sql, &[Arg::Int(after.0), Arg::Int(limit)])
            .await?;
        rows.iter().map(certificate).collect()
    }

    /// Up to `limit` keys with an id above `after`, in id order.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn keys_after(&self, after: KeyId, limit: i64) -> Result<Vec<KeyRow>, Error> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM keys WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = self
            .rows(sql, &[Arg::Int(after.0), Arg::Int(limit)])
            .await?;
        rows.iter().map(key).collect()
    }
}

/// `name` as a quoted SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Store {
    /// Upkeep: on SQLite `PRAGMA optimize` and a checkpoint that empties the write-ahead log
    /// (`wal_checkpoint(TRUNCATE)`), then `VACUUM` when `vacuum` (it rewrites the whole file
    /// and holds the write lock while it does); on PostgreSQL `VACUUM (ANALYZE)` of each
    /// table of certmint's schema. Returns what ran.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`]; on SQLite, [`Error::Unavailable`] too when
    /// readers kept the checkpoint from emptying the log.
    pub async fn optimize(&self, vacuum: bool) -> Result<Vec<String>, Error> {
        // Waits for this process's writers, so that the checkpoint and VACUUM do not stall
        // them in SQLite's busy handler instead.
        let _turn = self.write_turn().await;
        let mut done = Vec::new();
        match self.backend() {
            Backend::Sqlite => {
                self.pool.execute("PRAGMA optimize").await?;
                done.push("PRAGMA optimize".to_owned());
                if vacuum {
                    self.pool.execute("VACUUM").await?;
                    done.push("VACUUM".to_owned());
                }
                let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(&self.pool)
                    .await?;
                // Busy: a reader kept part of the log; what it could, it copied.
                done.push(if row.try_get::<i64, _>(0)? == 0 {
                    "PRAGMA wal_checkpoint(TRUNCATE)".to_owned()
                } else {
                    "PRAGMA wal_checkpoint(TRUNCATE): readers kept the log from being emptied"
                        .to_owned()
                });
            }
            Backend::Postgres => {
                let tables = sqlx::query(
                    "SELECT tablename::text AS name FROM pg_tables \
                     WHERE schemaname = current_schema() ORDER BY tablename",
                )
                .fetch_all(&self.pool)
                .await?;
                for row in &tables {
                    let name: String = row.try_get("name")?;
                    // A plain statement (simple protocol): VACUUM runs outside a transaction.
                    self.pool
                        .execute(AssertSqlSafe(format!("VACUUM (ANALYZE) {}", quoted(&name))))
                        .await?;
                }
                done.push(format!("VACUUM (ANALYZE) on {} tables", tables.len()));
            }
        }
        Ok(done)
    }
}

impl WriteTx {
    /// Links certificate `id` to issuer `to`, if it is still linked to `from` (as read when
    /// the link was judged wrong). Returns false when it is not, or is gone.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn relink_certificate(
        &mut self,
        id: CertificateId,
        from: Option<CaId>,
        to: CaId,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        self.relink(Relink::Certificate, id.into(), from, to, now)
            .await
    }

    /// Links CA `id` to its issuing CA `to`, if it is still linked to `from`. Returns false
    /// when it is not, or is gone.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn relink_ca(
        &mut self,
        id: CaId,
        from: Option<CaId>,
        to: CaId,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        self.relink(Relink::Ca, id.0, from, to, now).await
    }

    /// Sets row `id`'s issuer link to `to`, if it is still `from` (compare and swap).
    async fn relink(
        &mut self,
        what: Relink,
        id: i64,
        from: Option<CaId>,
        to: CaId,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let sql = match what {
            Relink::Certificate => {
                "UPDATE certificates SET ca_id = $1, updated_at = $2 \
                 WHERE id = $3 AND COALESCE(ca_id, 0) = $4"
            }
            Relink::Ca => {
                "UPDATE cas SET parent_id = $1, updated_at = $2 \
                 WHERE id = $3 AND COALESCE(parent_id, 0) = $4"
            }
        };
        let done = sqlx::query(sql)
            .bind(to)
            .bind(to_micros(now))
            .bind(id)
            .bind(from.map_or(0, |c| c.0))
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Whose issuer link [`WriteTx::relink`] sets.
#[derive(Debug, Clone, Copy)]
enum Relink {
    Certificate,
    Ca,
}
