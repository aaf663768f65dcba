use std::sync::Arc;

use aws_lc_rs::{digest, hmac};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use time::OffsetDateTime;

use crate::db::{Arg, Filter, like_pattern};
use crate::{Error, Page, PageRequest, Reader, WriteTx, from_micros, to_micros};

/// The `prev_hash` of the first record ever written.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, as the caller records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When it happened (kept to the microsecond).
    pub at: OffsetDateTime,
    /// Who did it, when known.
    pub username: Option<String>,
    /// A snake_case action name, such as `login_success` or `user_created`.
    pub action: String,
    /// The kind of thing acted on (`user`, `api_key`, …).
    pub resource_type: Option<String>,
    /// Its id.
    pub resource_id: Option<String>,
    /// A human-readable account of the change; never secrets.
    pub details: Option<String>,
    /// The client's address.
    pub ip_address: Option<String>,
    /// The client's User-Agent.
    pub user_agent: Option<String>,
    /// Whether the action succeeded.
    pub success: bool,
}

/// A stored audit record: the entry, its place in the chain and its hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain (1, 2, 3, …; gaps only where records were removed).
    pub id: i64,
    /// What was recorded.
    pub entry: AuditEntry,
    /// The hash of the record before this one.
    pub prev_hash: String,
    /// The chain hash over this record's canonical content and `prev_hash`, hex: an HMAC under
    /// the [`ChainKey`] from [`ChainAnchor::keyed_from`] on, plain SHA-256 before it.
    pub hash: String,
}

/// Where verification of the chain starts and where it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainAnchor {
    /// The first id the chain should hold (1, or the first id after a retention cleanup).
    pub first_id: i64,
    /// The `prev_hash` that record must carry.
    pub first_prev_hash: String,
    /// The id of the newest record.
    pub last_id: i64,
    /// The hash of the newest record.
    pub last_hash: String,
    /// The first id whose hash is keyed ([`ChainKey::hash`]); the ones before it were written
    /// before the chain was keyed and carry [`plain_chain_hash`]. Believe it only with a valid
    /// [`ChainAnchor::keyed_seal`].
    pub keyed_from: i64,
    /// [`ChainKey::seal`] of `keyed_from`, written when the keying migration was applied.
    pub keyed_seal: Option<String>,
}

/// A checkpoint of the chain kept in the database (migration 0035): the chain was found whole
/// up to record `record_id`, which carried `hash`. Trust it only with a genuine `signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// The last record verified.
    pub record_id: i64,
    /// Its hash.
    pub hash: String,
    /// The chain's `keyed_from` then.
    pub keyed_from: i64,
    /// The signature over the other fields, made by the authority.
    pub signature: String,
    /// When it was taken, to the microsecond.
    pub created_at: OffsetDateTime,
}

/// Filters for listing and exporting audit records. All are optional and combine with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact username.
    pub username: Option<String>,
    /// Exact action name.
    pub action: Option<String>,
    /// Only successes or only failures.
    pub success: Option<bool>,
    /// At or after this time.
    pub from: Option<OffsetDateTime>,
    /// Before this time.
    pub to: Option<OffsetDateTime>,
    /// Case-insensitive text inside details, resource or action.
    pub search: Option<String>,
}

/// Totals over a period.
#[derive(Debug, Clone, Default)]
pub struct AuditStats {
    /// Records in the period.
    pub total: i64,
    /// Of those, successes.
    pub successes: i64,
    /// The most frequent actions with their counts.
    pub top_actions: Vec<(String, i64)>,
    /// The most active users with their counts.
    pub top_users: Vec<(String, i64)>,
    /// The newest failures.
    pub recent_failures: Vec<AuditRecord>,
}

#[derive(Serialize)]
struct Canonical<'a> {
    id: i64,
    at_us: i64,
    username: Option<&'a str>,
    action: &'a str,
    resource_type: Option<&'a str>,
    resource_id: Option<&'a str>,
    details: Option<&'a str>,
    ip_address: Option<&'a str>,
    user_agent: Option<&'a str>,
    success: bool,
    prev_hash: &'a str,
}

fn canonical(id: i64, entry: &AuditEntry, prev_hash: &str) -> Vec<u8> {
    let canonical = Canonical {
        id,
        at_us: to_micros(entry.at),
        username: entry.username.as_deref(),
        action: &entry.action,
        resource_type: entry.resource_type.as_deref(),
        resource_id: entry.resource_id.as_deref(),
        details: entry.details.as_deref(),
        ip_address: entry.ip_address.as_deref(),
        user_agent: entry.user_agent.as_deref(),
        success: entry.success,
        prev_hash,
    };
    // Serialising a struct of strings, integers and booleans cannot fail.
    serde_json::to_vec(&canonical).unwrap_or_default()
}

/// The hash records written before the chain was keyed carry: SHA-256 over the canonical JSON
/// of every stored field (in a fixed order) including `prev_hash`, as hex. Anyone who can
/// write the database can recompute it, so it only proves the records before the first keyed
/// one, which links to them.
pub fn plain_chain_hash(id: i64, entry: &AuditEntry, prev_hash: &str) -> String {
    hex::encode(digest::digest(
        &digest::SHA256,
        &canonical(id, entry, prev_hash),
    ))
}

/// The key of the audit chain: derived from the master key by the vault and handed to the
/// store, which never sees the master key. Without it no record can be re-hashed, so a
/// rewritten record or tail no longer verifies. Its `Debug` output is redacted.
#[derive(Clone)]
pub struct ChainKey(Arc<hmac::Key>);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

impl From<hmac::Key> for ChainKey {
    fn from(key: hmac::Key) -> Self {
        Self(Arc::new(key))
    }
}

impl ChainKey {
    /// The hash a record with this id, content and predecessor must carry: HMAC-SHA256 over
    /// the same canonical JSON as [`plain_chain_hash`], as hex.
    pub fn hash(&self, id: i64, entry: &AuditEntry, prev_hash: &str) -> String {
        hex::encode(hmac::sign(&self.0, &canonical(id, entry, prev_hash)))
    }

    /// The seal of the chain's `keyed_from`, hex.
    pub fn seal(&self, keyed_from: i64) -> String {
        hex::encode(hmac::sign(&self.0, &seal_message(keyed_from)))
    }

    /// Whether `seal` is [`ChainKey::seal`]'s for `keyed_from`.
    pub fn sealed(&self, keyed_from: i64, seal: &str) -> bool {
        hex::decode(seal)
            .is_ok_and(|tag| hmac::verify(&self.0, &seal_message(keyed_from), &tag).is_ok())
    }
}

/// Not JSON, so it can never be taken for a record's canonical content.
fn seal_message(keyed_from: i64) -> Vec<u8> {
    format!("certmint audit keyed_from v1\n{keyed_from}").into_bytes()
}

/// Appends `entries` to the chain after record `last_id`, whose hash is `last_hash`: they get
/// the ids that follow, each hashed over its predecessor. Returns the new tip's hash.
pub(crate) async fn insert(
    tx: &mut WriteTx,
    key: &ChainKey,
    last_id: i64,
    last_hash: &str,
    entries: &[AuditEntry],
) -> Result<String, Error> {
    let mut tip = last_hash.to_owned();
    let mut chained = Vec::with_capacity(entries.len());
    for (id, entry) in (last_id + 1..).zip(entries) {
        let hash = key.hash(id, entry, &tip);
        chained.push((id, entry, std::mem::replace(&mut tip, hash.clone()), hash));
    }
    tx.insert_rows(
        "INSERT INTO audit_log (id, created_at, username, action, resource_type, resource_id, \
         details, ip_address, user_agent, success, prev_hash, hash)",
        12,
        "",
        &chained,
        |q, (id, entry, prev_hash, hash)| {
            q.bind(*id)
                .bind(to_micros(entry.at))
                .bind(entry.username.clone())
                .bind(entry.action.clone())
                .bind(entry.resource_type.clone())
                .bind(entry.resource_id.clone())
                .bind(entry.details.clone())
                .bind(entry.ip_address.clone())
                .bind(entry.user_agent.clone())
                .bind(i64::from(entry.success))
                .bind(prev_hash.clone())
                .bind(hash.clone())
        },
    )
    .await?;
    Ok(tip)
}

const COLUMNS: &str = "id, created_at, username, action, resource_type, resource_id, details, \
                       ip_address, user_agent, success, prev_hash, hash";

fn record(row: &AnyRow) -> Result<AuditRecord, Error> {
    Ok(AuditRecord {
        id: row.try_get("id")?,
        entry: AuditEntry {
            at: from_micros(row.try_get("created_at")?),
            username: row.try_get("username")?,
            action: row.try_get("action")?,
            resource_type: row.try_get("resource_type")?,
            resource_id: row.try_get("resource_id")?,
            details: row.try_get("details")?,
            ip_address: row.try_get("ip_address")?,
            user_agent: row.try_get("user_agent")?,
            success: row.try_get::<i64, _>("success")? != 0,
        },
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

fn filter_sql(f: &AuditFilter) -> Filter {
    let mut q = Filter::default();
    if let Some(u) = &f.username {
        q.and("username = ?", [Arg::Text(u.clone())]);
    }
    if let Some(a) = &f.action {
        q.and("action = ?", [Arg::Text(a.clone())]);
    }
    if let Some(s) = f.success {
        q.and("success = ?", [Arg::Int(i64::from(s))]);
    }
    if let Some(t) = f.from {
        q.and("created_at >= ?", [Arg::Int(to_micros(t))]);
    }
    if let Some(t) = f.to {
        q.and("created_at < ?", [Arg::Int(to_micros(t))]);
    }
    if let Some(s) = &f.search {
        let p = like_pattern(s);
        q.and(
            "(LOWER(COALESCE(details, '')) LIKE ? ESCAPE '\\' \
             OR LOWER(COALESCE(resource_id, '')) LIKE ? ESCAPE '\\' \
             OR LOWER(action) LIKE ? ESCAPE '\\')",
            [Arg::Text(p.clone()), Arg::Text(p.clone()), Arg::Text(p)],
        );
    }
    q
}

impl Reader {
    /// Lists audit records, newest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn audit_list(
        &self,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditRecord>, Error> {
        let (rows, total) = filter_sql(filter)
            .fetch_page(self, COLUMNS, "audit_log", "id DESC", page)
            .await?;
        let items = rows.iter().map(record).collect::<Result<_, _>>()?;
        Ok(Page::counted(items, total))
    }

    /// At most `limit` records after skipping the `offset` newest, newest first (the primary
    /// key orders them, so this walks its index).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn audit_recent(&self, limit: i64, offset: i64) -> Result<Vec<AuditRecord>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log ORDER BY id DESC LIMIT $1 OFFSET $2");
        let rows = self.rows(sql, &[Arg::Int(limit), Arg::Int(offset)]).await?;
        rows.iter().map(record).collect()
    }

    /// Records matching `filter`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn audit_export(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, Error> {
        let q = filter_sql(filter);
        let rows = q
            .query(format!(
                "SELECT {COLUMNS} FROM audit_log{} ORDER BY id ASC LIMIT {}",
                q.where_sql(),
                q.placeholder()
            ))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }

    /// One record by id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn audit_get(&self, id: i64) -> Result<Option<AuditRecord>, Error> {
        Filter::new("id = ?", [Arg::Int(id)])
            .fetch_row(self, COLUMNS, "audit_log", record)
            .await
    }

    /// Records with `after < id <= up_to`, oldest first, at most `limit`: one batch of a chain walk.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn audit_chain_batch(
        &self,
        after: i64,
        up_to: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, Error> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_log WHERE id > $1 AND id <= $2 ORDER BY id ASC LIMIT $3"
        )))
        .bind(after)
        .bind(up_to)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// The chain's anchor and tip.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn audit_anchor(&self) -> Result<ChainAnchor, Error> {
        let row = sqlx::query(
            "SELECT last_id, last_hash, anchor_id, anchor_hash, keyed_from, keyed_seal \
             FROM audit_head WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(ChainAnchor {
            first_id: row.try_get("anchor_id")?,
            first_prev_hash: row.try_get("anchor_hash")?,
            last_id: row.try_get("last_id")?,
            last_hash: row.try_get("last_hash")?,
            keyed_from: row.try_get("keyed_from")?,
            keyed_seal: row.try_get("keyed_seal")?,
        })
    }

    /// The newest `limit` checkpoints of records from `from_id` on, newest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn audit_checkpoints(
        &self,
        from_id: i64,
        limit: i64,
    ) -> Result<Vec<AuditCheckpoint>, Error> {
        let rows = sqlx::query(
            "SELECT record_id, hash, keyed_from, signature, created_at FROM audit_checkpoints \
             WHERE record_id >= $1 ORDER BY record_id DESC LIMIT $2",
        )
        .bind(from_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditCheckpoint {
                    record_id: r.try_get("record_id")?,
                    hash: r.try_get("hash")?,
                    keyed_from: r.try_get("keyed_from")?,
                    signature: r.try_get("signature")?,
                    created_at: from_micros(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    /// Totals since `since`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn audit_stats(&self, since: OffsetDateTime) -> Result<AuditStats, Error> {
        let since = to_micros(since);
        let totals = sqlx::query(
            "SELECT COUNT(*) AS total, CAST(COALESCE(SUM(success), 0) AS BIGINT) AS successes \
             FROM audit_log WHERE created_at >= $1",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let grouped = |column: &'static str| {
            let sql = format!(
                "SELECT {column} AS k, COUNT(*) AS n FROM audit_log \
                 WHERE created_at >= $1 AND {column} IS NOT NULL \
                 GROUP BY {column} ORDER BY n DESC, k ASC LIMIT 10"
            );
            async move {
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .bind(since)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get::<String, _>("k")?, r.try_get::<i64, _>("n")?)))
                    .collect::<Result<Vec<_>, Error>>()
            }
        };
        let failures = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_log WHERE created_at >= $1 AND success = 0 \
             ORDER BY id DESC LIMIT 10"
        )))
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(AuditStats {
            total: totals.try_get("total")?,
            successes: totals.try_get("successes")?,
            top_actions: grouped("action").await?,
            top_users: grouped("username").await?,
            recent_failures: failures.iter().map(record).collect::<Result<_, _>>()?,
        })
    }

    /// Every action name that occurs in the log, sorted.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn audit_actions(&self) -> Result<Vec<String>, Error> {
        let rows = sqlx::query("SELECT DISTINCT action FROM audit_log ORDER BY action")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("action")?))
            .collect()
    }
}

impl WriteTx {
    /// Keeps `checkpoint`; one kept before for the same record stays as it was.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_audit_checkpoint(
        &mut self,
        checkpoint: &AuditCheckpoint,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (record_id, hash, keyed_from, signature, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (record_id) DO NOTHING",
        )
        .bind(checkpoint.record_id)
        .bind(checkpoint.hash.clone())
        .bind(checkpoint.keyed_from)
        .bind(checkpoint.signature.clone())
        .bind(to_micros(checkpoint.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Removes the oldest records, those written before `cutoff`, as one prefix of the chain, and
    /// moves the chain's anchor past them so the records that remain still verify. Returns how
    /// many records were removed.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn audit_remove_before(&mut self, cutoff: OffsetDateTime) -> Result<i64, Error> {
        let last = sqlx::query(
            "SELECT id, hash FROM audit_log WHERE id = \
             (SELECT MAX(id) FROM audit_log WHERE created_at < $1)",
        )
        .bind(to_micros(cutoff))
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(last) = last else { return Ok(0) };
        let last_id: i64 = last.try_get("id")?;
        let last_hash: String = last.try_get("hash")?;
        let removed = sqlx::query("DELETE FROM audit_log WHERE id <= $1")
            .bind(last_id)
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        // A checkpoint of a removed record can no longer be checked.
        sqlx::query("DELETE FROM audit_checkpoints WHERE record_id <= $1")
            .bind(last_id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("UPDATE audit_head SET anchor_id = $1, anchor_hash = $2 WHERE id = 1")
            .bind(last_id + 1)
            .bind(last_hash)
            .execute(&mut *self.tx)
            .await?;
        Ok(i64::try_from(removed).unwrap_or(i64::MAX))
    }
}
