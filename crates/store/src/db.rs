use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::query::Query;
use sqlx::{Any, AnyPool, AssertSqlSafe, Executor, Row};

use crate::audit::{self, AuditEntry, ChainKey};
use crate::{Error, PageRequest};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (the default).
    Sqlite,
    /// PostgreSQL, for several nodes sharing one database.
    Postgres,
}

impl Backend {
    /// Picks the backend from a database URL.
    ///
    /// # Errors
    /// [`Error::Config`] when the URL names neither `sqlite:` nor `postgres://`.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(Error::Config(
                "database_url must start with sqlite: or postgres://".into(),
            ))
        }
    }

    /// The last 16 hex digits of a serial (`column` or a placeholder), spelled as the
    /// `certificates_serial_tail` index is (migration 0004), so that a lookup can use it.
    pub(crate) fn serial_tail(self, serial: &str) -> String {
        match self {
            Self::Sqlite => format!("substr({serial}, -16)"),
            Self::Postgres => format!("right({serial}, 16)"),
        }
    }
}

/// Connection pool figures, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The most connections the pool will open.
    pub max: u32,
}

/// Read access to the database: every query, and no way to write. The server is handed only
/// this; a [`Store`] reads through it too (it dereferences to its reader).
#[derive(Clone)]
pub struct Reader {
    pub(crate) pool: AnyPool,
    backend: Backend,
    max_connections: u32,
    /// Where the statements run through [`Reader::rows`] are written down, on a reader a test
    /// made with `Reader::recording`.
    #[cfg(feature = "test-support")]
    pub(crate) recorded: Option<crate::testing::Recorded>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The storage authority: a connection pool, the queries over it ([`Reader`]) and the writes
/// ([`Store::begin_write`]).
#[derive(Clone)]
pub struct Store {
    reader: Reader,
    /// Counts committed changes to users, sessions and API keys made through this store.
    credentials: Arc<AtomicU64>,
    /// SQLite has one writer at a time. This process's writers queue here instead of in
    /// SQLite's busy handler, which sleeps a millisecond and more between tries.
    gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// SQLite connections whose commits do not wait for the disk (`synchronous = NORMAL`),
    /// for [`Store::begin_relaxed_write`].
    relaxed: Option<AnyPool>,
    /// The key audit records are chained under; a store without it cannot append to the chain.
    chain: Option<ChainKey>,
}

/// The pool's check of a SQLite connection it takes back. When a write fails on a full disk
/// (or an I/O error), SQLite may keep the transaction open, holding the write lock, and sqlx's
/// rollback of it may fail too: the connection then still counts as inside a transaction. Put
/// back in the pool, its next "transaction" would be a savepoint inside the stale one, reported
/// as committed and never written (the acknowledged certificates a restart lost), and every
/// other connection would find the database locked until the process ended. So a connection
/// still inside a transaction is closed instead of reused; closing it rolls back what is left.
#[allow(clippy::type_complexity)]
fn released_clean() -> impl for<'c> Fn(
    &'c mut sqlx::AnyConnection,
    sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + 'c>,
> + Send
+ Sync
+ 'static {
    // A transaction dropped without a commit (a refused request) may come back with its
    // rollback still queued, and is closed as well: on SQLite a new connection costs little.
    |conn, _meta| {
        let clean = !sqlx::Connection::is_in_transaction(&*conn);
        Box::pin(async move { Ok(clean) })
    }
}

impl std::ops::Deref for Store {
    type Target = Reader;

    fn deref(&self) -> &Reader {
        &self.reader
    }
}

impl Reader {
    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when it does not.
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .map(|_| ())
            .map_err(Error::from)
    }

    /// The rows of `sql` with `args` bound to its placeholders in order. The queries behind
    /// the console's lists and figures run through here, so that a test can take the very
    /// statements they run and check the plans the database chooses for them
    /// (`Reader::recording`, feature `test-support`).
    pub(crate) async fn rows(&self, sql: String, args: &[Arg]) -> Result<Vec<AnyRow>, Error> {
        #[cfg(feature = "test-support")]
        if let Some(recorded) = &self.recorded {
            recorded.push(&sql, args);
        }
        let query = args
            .iter()
            .fold(sqlx::query(AssertSqlSafe(sql)), |q, arg| arg.bind(q));
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// The one row of `sql` (a count, a sum): [`Reader::rows`] for a statement that always
    /// returns a row.
    pub(crate) async fn row(&self, sql: String, args: &[Arg]) -> Result<AnyRow, Error> {
        self.rows(sql, args)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| sqlx::Error::RowNotFound.into())
    }

    /// Pool figures for the metrics endpoint.
    pub fn pool_stats(&self) -> PoolStats {
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        PoolStats {
            size,
            idle,
            max: self.max_connections,
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens a pool on `url` (`sqlite:…` or `postgres://…`). SQLite connections run with foreign
    /// keys on, a busy timeout, and the database in WAL mode.
    ///
    /// # Errors
    /// [`Error::Config`] for an unsupported URL, [`Error::Unavailable`] when the database cannot
    /// be reached.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let mut options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            // A connection to a local file cannot drop the way a network connection can, so
            // SQLite's are not pinged each time one is taken from the pool.
            .test_before_acquire(backend != Backend::Sqlite);
        if backend == Backend::Sqlite {
            options = options.after_release(released_clean());
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    // A commit is acknowledged only once it is on disk.
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    // Checkpoints run in the background (see `checkpoint_in_background`); one
                    // run by a commit would make that commit, and every caller waiting on it,
                    // wait for the database file's fsync. This is the backstop when they lag.
                    conn.execute("PRAGMA wal_autocheckpoint = 16384").await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await.map_err(Error::from)?;
        let (mut gate, mut relaxed) = (None, None);
        if backend == Backend::Sqlite {
            pool.execute("PRAGMA journal_mode = WAL").await?;
            checkpoint_in_background(pool.clone());
            gate = Some(Arc::default());
            relaxed = Some(
                AnyPoolOptions::new()
                    .max_connections(2)
                    .after_release(released_clean())
                    .acquire_timeout(Duration::from_secs(5))
                    .test_before_acquire(false)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            // In WAL mode a commit is then durable against a crash of the
                            // process, and against power loss once the next FULL commit or
                            // checkpoint syncs the log.
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA wal_autocheckpoint = 16384").await?;
                            Ok(())
                        })
                    })
                    .connect_lazy(url)
                    .map_err(Error::from)?,
            );
        }
        Ok(Self {
            reader: Reader {
                pool,
                backend,
                max_connections,
                #[cfg(feature = "test-support")]
                recorded: None,
            },
            credentials: Arc::default(),
            gate,
            relaxed,
            chain: None,
        })
    }

    /// This store, appending audit records chained under `key`.
    #[must_use]
    pub fn with_chain_key(mut self, key: ChainKey) -> Self {
        self.chain = Some(key);
        self
    }

    /// Waits for this process's turn to write (SQLite only).
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        }
    }

    /// A transaction on the connections whose commits do not wait for the disk. Taken after
    /// [`Store::write_turn`].
    pub(crate) async fn begin_relaxed(&self) -> Result<sqlx::Transaction<'static, Any>, Error> {
        let mut tx = self.relaxed.as_ref().unwrap_or(&self.pool).begin().await?;
        if self.backend == Backend::Postgres {
            // The commit returns before the WAL is flushed; a crash loses at most the last
            // moments of such commits, and never corrupts anything.
            tx.execute("SET LOCAL synchronous_commit = off").await?;
        }
        Ok(tx)
    }

    /// Applies the migrations this build knows and the database lacks. When this run keys the
    /// audit chain (migration 0008) on a store with the chain key, it seals where the keyed part
    /// starts; only that run does, so clearing the seal later cannot get a moved start sealed.
    ///
    /// # Errors
    /// [`Error::Migration`] when a migration fails or the database holds one this build does not
    /// know.
    pub async fn migrate(&self) -> Result<(), Error> {
        self.migrate_up_to(None).await
    }

    /// [`Store::migrate`] up to migration `version` only (all of them for `None`): a restore
    /// brings a new database to its backup's schema first, loads the rows, then migrates on.
    ///
    /// # Errors
    /// As [`Store::migrate`].
    pub async fn migrate_up_to(&self, version: Option<i64>) -> Result<(), Error> {
        let keyed_before = self.applied(KEYED_CHAIN_MIGRATION).await;
        let migrator = self.migrator();
        match version {
            Some(version) => migrator.run_to(version, &self.pool).await,
            None => migrator.run(&self.pool).await,
        }
        .map_err(|e| Error::Migration(e.to_string()))?;
        let keyed_now = version.is_none_or(|v| v >= KEYED_CHAIN_MIGRATION);
        match &self.chain {
            Some(key) if !keyed_before && keyed_now => self.seal_keyed_from(key).await,
            _ => Ok(()),
        }
    }

    /// The newest migration this build knows: the schema version it brings a database to.
    pub fn latest_migration(&self) -> i64 {
        self.migrator().iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Whether migration `version` was applied (false, too, before any was).
    async fn applied(&self, version: i64) -> bool {
        sqlx::query("SELECT version FROM _sqlx_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .is_ok_and(|row| row.is_some())
    }

    async fn seal_keyed_from(&self, key: &ChainKey) -> Result<(), Error> {
        let row = sqlx::query("SELECT keyed_from FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        let keyed_from: i64 = row.try_get("keyed_from")?;
        sqlx::query("UPDATE audit_head SET keyed_seal = $1 WHERE id = 1")
            .bind(key.seal(keyed_from))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// A number that changes whenever a change to users, sessions or API keys made through
    /// this store commits, so that what was read about them before can be known to be stale.
    /// Changes made by another node or outside certmint do not count.
    pub fn credentials_generation(&self) -> u64 {
        self.credentials.load(Ordering::Acquire)
    }

    /// Closes every connection; later queries fail.
    pub async fn close(&self) {
        if let Some(relaxed) = &self.relaxed {
            relaxed.close().await;
        }
        self.pool.close().await;
    }

    /// Starts a write transaction. It first takes the audit chain's head row, which serialises
    /// audited writes across connections and nodes (SQLite takes its write lock, PostgreSQL a row
    /// lock) so that each audit record links to the one committed before it.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database cannot be reached or stays locked.
    pub async fn begin_write(&self) -> Result<WriteTx, Error> {
        let turn = self.write_turn().await;
        let tx = self.pool.begin().await.map_err(Error::from)?;
        self.write_tx(tx, turn).await
    }

    /// [`Store::begin_write`] for bookkeeping that a client redoes if it is lost (ACME order
    /// progress, used nonces): its commit does not wait for the disk, so a crash of the machine
    /// (not of the process) may lose it and what followed it, never what was committed
    /// durably before. Certificates, keys and audited changes never use it.
    ///
    /// # Errors
    /// As [`Store::begin_write`].
    pub async fn begin_relaxed_write(&self) -> Result<WriteTx, Error> {
        let turn = self.write_turn().await;
        let tx = self.begin_relaxed().await?;
        self.write_tx(tx, turn).await
    }

    async fn write_tx(
        &self,
        mut tx: sqlx::Transaction<'static, Any>,
        turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> Result<WriteTx, Error> {
        let head = sqlx::query(
            "UPDATE audit_head SET last_id = last_id WHERE id = 1 RETURNING last_id, last_hash",
        )
        .fetch_one(&mut *tx)
        .await?;
        Ok(WriteTx {
            backend: self.backend,
            credentials: self.credentials.clone(),
            credentials_changed: false,
            last_id: head.try_get("last_id")?,
            last_hash: head.try_get("last_hash")?,
            appended: false,
            chain: self.chain.clone(),
            tx,
            _turn: turn,
        })
    }
}

/// The migration that keys the audit chain.
const KEYED_CHAIN_MIGRATION: i64 = 8;

/// How often the background checkpointer copies SQLite's write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies the write-ahead log into the database file every [`CHECKPOINT_EVERY`] on a
/// connection of its own, without blocking writers (`PASSIVE`), until the pool is closed.
fn checkpoint_in_background(pool: AnyPool) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = pool.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
                tracing::warn!("WAL checkpoint failed: {e}");
            }
        }
    });
}

/// A write transaction that carries the audit chain's tip. Dropping it without
/// [`WriteTx::commit`] rolls everything back, audit records included.
pub struct WriteTx {
    pub(crate) tx: sqlx::Transaction<'static, Any>,
    pub(crate) backend: Backend,
    credentials: Arc<AtomicU64>,
    credentials_changed: bool,
    last_id: i64,
    last_hash: String,
    appended: bool,
    chain: Option<ChainKey>,
    /// Held until the transaction ends (SQLite).
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Appends an audit record to the chain, inside this transaction. Returns the record's id.
    ///
    /// # Errors
    /// [`Error::Database`] when the insert fails.
    pub async fn audit(&mut self, entry: &AuditEntry) -> Result<i64, Error> {
        self.audit_many(std::slice::from_ref(entry)).await?;
        Ok(self.last_id)
    }

    /// Appends audit records to the chain in order, inside this transaction.
    ///
    /// # Errors
    /// [`Error::Database`] when the insert fails; [`Error::Config`] when the store was opened
    /// without the chain key (a record it wrote could never be verified).
    pub async fn audit_many(&mut self, entries: &[AuditEntry]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        let key = self.chain.clone().ok_or_else(|| {
            Error::Config("the store was opened without the audit chain key".into())
        })?;
        let (last_id, last_hash) = (self.last_id, self.last_hash.clone());
        self.last_hash = audit::insert(self, &key, last_id, &last_hash, entries).await?;
        self.last_id += i64::try_from(entries.len()).unwrap_or(i64::MAX);
        self.appended = true;
        Ok(())
    }

    /// Writes `rows` with `{insert} VALUES (…), (…){tail}` in as few statements as the bind
    /// limit allows: one statement for many rows costs little more than one for a single row.
    /// (An update from a list of values is written the same way, with a `WITH … AS (` before
    /// and the `) UPDATE` after.)
    /// `bind` binds one row's `width` values in column order. Returns what `tail` (a
    /// `RETURNING` clause, or nothing) gives back, in no particular order.
    pub(crate) async fn insert_rows<T>(
        &mut self,
        insert: &str,
        width: usize,
        tail: &str,
        rows: &[T],
        bind: impl Fn(Query<'static, Any, AnyArguments>, &T) -> Query<'static, Any, AnyArguments>,
    ) -> Result<Vec<AnyRow>, Error> {
        let mut returned = Vec::new();
        for chunk in rows.chunks((MAX_BINDS / width).max(1)) {
            let values = (0..chunk.len())
                .map(|row| {
                    let first = row * width + 1;
                    let marks: Vec<String> = (first..first + width)
                        .map(|n| match self.backend {
                            // SQLite looks each numbered parameter up in a list, which makes a
                            // statement with thousands of them slow to prepare and bind;
                            // anonymous ones are numbered in order at no cost.
                            Backend::Sqlite => "?".to_owned(),
                            Backend::Postgres => format!("${n}"),
                        })
                        .collect();
                    format!("({})", marks.join(", "))
                })
                .collect::<Vec<_>>()
                .join(", ");
            // Statements for one row are prepared once and kept; a statement per batch size
            // would only crowd them out of the cache.
            let query = chunk.iter().fold(
                sqlx::query(AssertSqlSafe(format!("{insert} VALUES {values}{tail}")))
                    .persistent(chunk.len() == 1),
                &bind,
            );
            returned.extend(query.fetch_all(&mut *self.tx).await?);
        }
        Ok(returned)
    }

    /// Commits the change and the audit records together.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`] when the commit fails; nothing is written.
    pub async fn commit(mut self) -> Result<(), Error> {
        if self.appended {
            sqlx::query("UPDATE audit_head SET last_id = $1, last_hash = $2 WHERE id = 1")
                .bind(self.last_id)
                .bind(self.last_hash.clone())
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        if self.credentials_changed {
            self.credentials.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Marks this transaction as changing users, sessions or API keys.
    pub(crate) fn credentials_change(&mut self) {
        self.credentials_changed = true;
    }
}

/// A bind value for queries whose WHERE clause is assembled from optional filters.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
    Null,
}

impl Arg {
    pub(crate) fn bind(
        &self,
        query: Query<'static, Any, AnyArguments>,
    ) -> Query<'static, Any, AnyArguments> {
        match self {
            Self::Int(v) => query.bind(*v),
            Self::Text(v) => query.bind(v.clone()),
            Self::Null => query.bind(None::<i64>),
        }
    }
}

/// Assembles `WHERE` clauses with `$n` placeholders numbered in order, and binds their values.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    clauses: Vec<String>,
    args: Vec<Arg>,
}

impl Filter {
    /// A filter of one clause.
    pub(crate) fn new(clause: &str, args: impl IntoIterator<Item = Arg>) -> Self {
        let mut filter = Self::default();
        filter.and(clause, args);
        filter
    }

    /// This filter as one condition on `table`'s rows: `id IN (SELECT id FROM table WHERE …)`,
    /// which the database answers by finding the matching ids through the best index for
    /// the conditions alone, whatever order a page asks for; none without conditions.
    pub(crate) fn ids_first(self, table: &str) -> Self {
        if self.clauses.is_empty() {
            return self;
        }
        Self {
            clauses: vec![format!(
                "id IN (SELECT id FROM {table}{})",
                where_clause(&self.clauses)
            )],
            args: self.args,
        }
    }

    /// Adds a clause; each `?` in it becomes the next `$n` and takes the next value of `args`.
    pub(crate) fn and(&mut self, clause: &str, args: impl IntoIterator<Item = Arg>) {
        let mut args = args.into_iter().peekable();
        let mut sql = String::with_capacity(clause.len() + 4);
        for c in clause.chars() {
            match (c, args.next_if(|_| c == '?')) {
                (_, Some(arg)) => {
                    self.args.push(arg);
                    sql.push_str(&format!("${}", self.args.len()));
                }
                (c, None) => sql.push(c),
            }
        }
        debug_assert!(args.next().is_none(), "more values than placeholders");
        self.clauses.push(sql);
    }

    /// The next placeholder, for values bound after the filter (LIMIT, OFFSET).
    pub(crate) fn placeholder(&self) -> String {
        format!("${}", self.args.len() + 1)
    }

    /// The filter's values followed by `more`, for values bound after it.
    pub(crate) fn args_then(&self, more: impl IntoIterator<Item = Arg>) -> Vec<Arg> {
        self.args.iter().cloned().chain(more).collect()
    }

    pub(crate) fn where_sql(&self) -> String {
        where_clause(&self.clauses)
    }

    /// Builds a query from `sql` (which must come from this crate's constant fragments and
    /// [`Filter::where_sql`]; user input only ever travels as bound values) and binds the values.
    pub(crate) fn query(&self, sql: String) -> Query<'static, Any, AnyArguments> {
        self.args
            .iter()
            .fold(sqlx::query(AssertSqlSafe(sql)), |q, arg| arg.bind(q))
    }

    /// The row of `SELECT {columns} FROM {from}` that the filter picks, read by `read`: the
    /// filter names a unique key, so there is at most one.
    pub(crate) async fn fetch_row<T>(
        &self,
        store: &Reader,
        columns: &str,
        from: &str,
        read: impl Fn(&AnyRow) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        let sql = format!("SELECT {columns} FROM {from}{}", self.where_sql());
        let rows = store.rows(sql, &self.args).await?;
        rows.first().map(read).transpose()
    }

    /// How many rows of `from` the filter picks.
    pub(crate) async fn count(&self, store: &Reader, from: &str) -> Result<i64, Error> {
        let sql = format!("SELECT COUNT(*) AS n FROM {from}{}", self.where_sql());
        Ok(store.row(sql, &self.args).await?.try_get("n")?)
    }

    /// How many rows of `from` match, and whether that is an estimate: counted up to
    /// [`crate::COUNTED_EXACTLY`], estimated past it from the matches of `sample` (the same
    /// conditions, written to be checked row by row) among 32 runs of 500 ids of table
    /// `sampled` ([`Filter::estimate_by_ids`]), so that the count costs about the same at any
    /// size.
    pub(crate) async fn count_bounded(
        &self,
        store: &Reader,
        from: &str,
        sample: &Filter,
        sampled: &str,
    ) -> Result<(i64, bool), Error> {
        /// The estimate's sample: this many runs of ids spread over the table, each this wide
        /// (16,000 rows read through the primary key at most). A list estimated has more than
        /// COUNTED_EXACTLY matches, so at ten million rows at least one in 500: the sample
        /// then holds about 32 of them, and the estimate is off by a fifth at worst, far less
        /// for the common lists.
        const SAMPLE_RUNS: i64 = 32;
        const SAMPLE_WIDTH: i64 = 500;
        Ok(
            match self
                .count_up_to(store, from, crate::COUNTED_EXACTLY)
                .await?
            {
                Some(n) => (n, false),
                None => {
                    let estimate = sample
                        .estimate_by_ids(store, sampled, SAMPLE_RUNS, SAMPLE_WIDTH)
                        .await?;
                    (estimate.max(crate::COUNTED_EXACTLY + 1), true)
                }
            },
        )
    }

    /// How many rows of `from` match, counted no further than `cap`: `None` past it. Reads at
    /// most `cap + 1` matches, however many there are.
    pub(crate) async fn count_up_to(
        &self,
        store: &Reader,
        from: &str,
        cap: i64,
    ) -> Result<Option<i64>, Error> {
        let mut args = self.args.clone();
        args.push(Arg::Int(cap.saturating_add(1)));
        let sql = format!(
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM {from}{} LIMIT ${}) capped",
            self.where_sql(),
            args.len()
        );
        let n: i64 = store.row(sql, &args).await?.try_get("n")?;
        Ok((n <= cap).then_some(n))
    }

    /// An estimate of how many rows of `from` match: the matches among `slices` runs of
    /// `width` ids spread evenly over the ids in use, scaled to all of them. It reads those
    /// runs' rows only (at most `slices × width`), through the primary key, whatever the
    /// conditions; an id no row holds (a deleted row) counts as a row that does not match, so
    /// deletions lower the estimate as they should. `from`'s `id` must be SQLite's rowid: the
    /// runs are read `NOT INDEXED`, which for any other table reads it whole.
    pub(crate) async fn estimate_by_ids(
        &self,
        store: &Reader,
        from: &str,
        slices: i64,
        width: i64,
    ) -> Result<i64, Error> {
        let bounds = store
            .row(
                // Apart, each read from one end of the primary key; together, SQLite reads
                // the whole table for them.
                format!(
                    "SELECT (SELECT MIN(id) FROM {from}) AS low, (SELECT MAX(id) FROM {from}) AS high"
                ),
                &[],
            )
            .await?;
        let (Some(low), Some(high)) = (
            bounds.try_get::<Option<i64>, _>("low")?,
            bounds.try_get::<Option<i64>, _>("high")?,
        ) else {
            return Ok(0);
        };
        let span = high - low + 1;
        let sampled = slices * width;
        if span <= sampled {
            return self.count(store, from).await;
        }
        let step = span / slices;
        let mut args = self.args.clone();
        let mut runs = Vec::new();
        for k in 0..slices {
            let start = low + k * step;
            args.extend([Arg::Int(start), Arg::Int(start + width)]);
            runs.push(format!(
                "(id >= ${} AND id < ${})",
                args.len() - 1,
                args.len()
            ));
        }
        let matched = if self.clauses.is_empty() {
            "COUNT(*)".to_owned()
        } else {
            format!("COUNT(CASE WHEN {} THEN 1 END)", self.clauses.join(" AND "))
        };
        // SQLite would rather walk a whole covering index than look up each run of ids; told
        // to use no index, it still looks rows up by rowid, as here it should.
        let not_indexed = match store.backend() {
            Backend::Sqlite => " NOT INDEXED",
            Backend::Postgres => "",
        };
        let sql = format!(
            "SELECT {matched} AS n FROM {from}{not_indexed} WHERE {}",
            runs.join(" OR ")
        );
        let n: i64 = store.row(sql, &args).await?.try_get("n")?;
        // Wide enough for any real table: i64 holds span × n for spans up to 2^40 ids.
        Ok(
            i64::try_from(i128::from(n) * i128::from(span) / i128::from(sampled))
                .unwrap_or(i64::MAX),
        )
    }

    /// One page of `SELECT {columns} FROM {from} … ORDER BY {order}`: by number, or after a
    /// row when `order` is `id DESC` or `id ASC`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a page after a row of a list in another order; store errors.
    pub(crate) async fn fetch_rows(
        &self,
        store: &Reader,
        columns: &str,
        from: &str,
        order: &str,
        page: PageRequest,
    ) -> Result<Vec<AnyRow>, Error> {
        let mut clauses = self.clauses.clone();
        let mut args = self.args.clone();
        let offset = match page.after {
            None => page.offset(),
            Some(after) => {
                let past = match order {
                    "id DESC" => "<",
                    "id ASC" => ">",
                    _ => {
                        return Err(Error::Invalid(
                            "this list is paged by number only: it takes no cursor".into(),
                        ));
                    }
                };
                args.push(Arg::Int(after));
                clauses.push(format!("id {past} ${}", args.len()));
                0
            }
        };
        let where_sql = where_clause(&clauses);
        args.extend([Arg::Int(page.limit()), Arg::Int(offset)]);
        let sql = format!(
            "SELECT {columns} FROM {from}{where_sql} ORDER BY {order} LIMIT ${} OFFSET ${}",
            args.len() - 1,
            args.len()
        );
        store.rows(sql, &args).await
    }

    /// Runs the filtered count and one page of `SELECT {columns} FROM {from} … ORDER BY {order}`.
    pub(crate) async fn fetch_page(
        &self,
        store: &Reader,
        columns: &str,
        from: &str,
        order: &str,
        page: PageRequest,
    ) -> Result<(Vec<AnyRow>, i64), Error> {
        let total = self.count(store, from).await?;
        let rows = self.fetch_rows(store, columns, from, order, page).await?;
        Ok((rows, total))
    }
}

/// ` WHERE a AND b …`, or nothing without clauses.
fn where_clause(clauses: &[String]) -> String {
    if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    }
}

/// The most values one statement binds: under SQLite's limit (32,766) and PostgreSQL's
/// (65,535).
pub(crate) const MAX_BINDS: usize = 30_000;

/// The one value of a one-row write.
pub(crate) fn first<T>(values: Vec<T>) -> Result<T, Error> {
    values
        .into_iter()
        .next()
        .ok_or_else(|| Error::Corrupt("a write returned nothing".into()))
}

/// The ids `RETURNING id, refid` gave back, in the order of `refids`.
pub(crate) fn ids_by_refid<'a>(
    returned: &[AnyRow],
    refids: impl Iterator<Item = &'a str>,
) -> Result<Vec<i64>, Error> {
    let ids = returned
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<String, _>("refid")?,
                row.try_get::<i64, _>("id")?,
            ))
        })
        .collect::<Result<std::collections::HashMap<_, _>, Error>>()?;
    refids
        .map(|refid| {
            ids.get(refid)
                .copied()
                .ok_or_else(|| Error::Corrupt(format!("no id came back for row {refid}")))
        })
        .collect()
}

/// A LIKE pattern (`… ESCAPE '\'`) matching `text`, lower case, anywhere: see [`like_escaped`].
pub(crate) fn like_pattern(text: &str) -> String {
    format!("%{}%", like_escaped(text))
}

/// `text` lower case with LIKE's wildcards escaped by a backslash: a pattern that matches it
/// as it is.
pub(crate) fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A GLOB pattern matching `text` in any case, in every script: each letter with another case
/// becomes a class of its cases, and GLOB's own `*`, `?` and `[` a class of themselves.
pub(crate) fn glob_any_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        let mut class = vec![c];
        let cases: [Vec<char>; 2] = [c.to_lowercase().collect(), c.to_uppercase().collect()];
        for other in cases {
            if let [single] = other[..]
                && !class.contains(&single)
            {
                class.push(single);
            }
        }
        if class.len() > 1 || matches!(c, '*' | '?' | '[') {
            out.push('[');
            out.extend(class);
            out.push(']');
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn flag(v: bool) -> i64 {
    i64::from(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_numbers_placeholders_in_order() {
        let mut f = Filter::default();
        f.and("a = ?", [Arg::Text("x".into())]);
        f.and("(b LIKE ? OR c LIKE ?)", [Arg::Int(1), Arg::Int(2)]);
        assert_eq!(f.where_sql(), " WHERE a = $1 AND (b LIKE $2 OR c LIKE $3)");
        assert_eq!(f.placeholder(), "$4");
    }

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("A_b%"), "%a\\_b\\%%");
    }

    #[test]
    fn glob_pattern_matches_any_case_and_escapes_its_wildcards() {
        assert_eq!(glob_any_case("aB1-"), "[aA][Bb]1-");
        assert_eq!(glob_any_case("ü*?[]^"), "[üÜ][*][?][[]]^");
        // ß upper-cases to two letters: only its own form is a single letter.
        assert_eq!(glob_any_case("ß"), "ß");
    }

    #[test]
    fn backend_from_url() {
        assert_eq!(
            Backend::from_url("sqlite://x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(Backend::from_url("mysql://h/db").is_err());
    }
}
