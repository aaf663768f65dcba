use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::{Arg, Filter};
use crate::{Error, Reader, Store, WriteTx, from_micros, to_micros};

/// A login session as stored. The bearer token itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Integer id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// The token that state-changing cookie requests must echo in `X-CSRF-Token`.
    pub csrf_token: String,
    /// How the user logged in (`password`).
    pub auth_method: String,
    /// Client address at login.
    pub ip_address: Option<String>,
    /// Client User-Agent at login.
    pub user_agent: Option<String>,
    /// Login time.
    pub created_at: OffsetDateTime,
    /// Last request seen (updated at most once a minute).
    pub last_seen_at: OffsetDateTime,
    /// Absolute end of the session.
    pub expires_at: OffsetDateTime,
    /// When it was logged out or revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// A session to create.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Owner.
    pub user_id: i64,
    /// SHA-256 of the bearer token, hex.
    pub token_hash: String,
    /// CSRF token.
    pub csrf_token: String,
    /// How the user logged in.
    pub auth_method: String,
    /// Client address.
    pub ip_address: Option<String>,
    /// Client User-Agent.
    pub user_agent: Option<String>,
    /// Absolute end of the session.
    pub expires_at: OffsetDateTime,
}

const COLUMNS: &str = "id, user_id, csrf_token, auth_method, ip_address, user_agent, created_at, \
                       last_seen_at, expires_at, revoked_at";

fn session(row: &AnyRow) -> Result<SessionRow, Error> {
    Ok(SessionRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        csrf_token: row.try_get("csrf_token")?,
        auth_method: row.try_get("auth_method")?,
        ip_address: row.try_get("ip_address")?,
        user_agent: row.try_get("user_agent")?,
        created_at: from_micros(row.try_get("created_at")?),
        last_seen_at: from_micros(row.try_get("last_seen_at")?),
        expires_at: from_micros(row.try_get("expires_at")?),
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(from_micros),
    })
}

impl Reader {
    /// The session whose token hashes to `token_hash`, revoked or not.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn session_by_token(&self, token_hash: &str) -> Result<Option<SessionRow>, Error> {
        Filter::new("token_hash = ?", [Arg::Text(token_hash.to_owned())])
            .fetch_row(self, COLUMNS, "sessions", session)
            .await
    }

    /// A user's sessions that are neither revoked nor past `now`'s absolute expiry, newest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn live_sessions(
        &self,
        user_id: i64,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRow>, Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
             AND expires_at > $2 ORDER BY id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(to_micros(now))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(session).collect()
    }

    /// The sessions opened by `method` that are neither revoked nor past `now`'s absolute
    /// expiry, newest first, at most `limit`, each with its owner's username.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn live_sessions_by_method(
        &self,
        method: &str,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<(SessionRow, String)>, Error> {
        let columns = COLUMNS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, u.username FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.auth_method = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
             ORDER BY s.id DESC LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(method.to_owned())
            .bind(to_micros(now))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((session(row)?, row.try_get("username")?)))
            .collect()
    }
}

impl Store {
    /// Marks a session as seen. Bookkeeping, not a state change: it is not audited.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn touch_session(&self, id: i64, now: OffsetDateTime) -> Result<(), Error> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(to_micros(now))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl WriteTx {
    /// Creates a session and returns its id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_session(
        &mut self,
        s: &NewSession,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let now = to_micros(now);
        let row = sqlx::query(
            "INSERT INTO sessions (user_id, token_hash, csrf_token, auth_method, ip_address, \
             user_agent, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) RETURNING id",
        )
        .bind(s.user_id)
        .bind(s.token_hash.clone())
        .bind(s.csrf_token.clone())
        .bind(s.auth_method.clone())
        .bind(s.ip_address.clone())
        .bind(s.user_agent.clone())
        .bind(now)
        .bind(to_micros(s.expires_at))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Revokes one of `user_id`'s live sessions. Returns false when there is no such session.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn revoke_session(
        &mut self,
        user_id: i64,
        id: i64,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        self.credentials_change();
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(to_micros(now))
        .bind(id)
        .bind(user_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes all of `user_id`'s live sessions except `keep`. Returns how many were revoked.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn revoke_sessions(
        &mut self,
        user_id: i64,
        keep: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<u64, Error> {
        self.credentials_change();
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 \
             WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3",
        )
        .bind(to_micros(now))
        .bind(user_id)
        .bind(keep.unwrap_or(0))
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected())
    }
}
