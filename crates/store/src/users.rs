use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::{Arg, Filter, flag, like_pattern};
use crate::{Error, Page, PageRequest, Reader, WriteTx, from_micros, to_micros};

/// A user account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Integer id.
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// Contact address.
    pub email: Option<String>,
    /// Display name.
    pub full_name: Option<String>,
    /// Role name (`admin`, `operator`, `auditor`, `viewer`).
    pub role: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Disabled users cannot authenticate.
    pub enabled: bool,
    /// Consecutive failed logins since the last success.
    pub failed_logins: i64,
    /// Logins are refused until then.
    pub locked_until: Option<OffsetDateTime>,
    /// The last successful login.
    pub last_login_at: Option<OffsetDateTime>,
    /// When the password was last set.
    pub password_changed_at: OffsetDateTime,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Unique login name.
    pub username: String,
    /// Contact address.
    pub email: Option<String>,
    /// Display name.
    pub full_name: Option<String>,
    /// Role name.
    pub role: String,
    /// Argon2id PHC string.
    pub password_hash: String,
}

/// Profile fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    /// New contact address (`Some(None)` clears it).
    pub email: Option<Option<String>>,
    /// New display name (`Some(None)` clears it).
    pub full_name: Option<Option<String>>,
    /// New role.
    pub role: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// Filters for the user list.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Exact role.
    pub role: Option<String>,
    /// Only enabled or only disabled users.
    pub enabled: Option<bool>,
    /// Case-insensitive text in username, email or full name.
    pub search: Option<String>,
}

const COLUMNS: &str = "id, username, email, full_name, role, password_hash, enabled, \
                       failed_logins, locked_until, last_login_at, password_changed_at, \
                       created_at, updated_at";

fn user(row: &AnyRow) -> Result<UserRow, Error> {
    Ok(UserRow {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        full_name: row.try_get("full_name")?,
        role: row.try_get("role")?,
        password_hash: row.try_get("password_hash")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        failed_logins: row.try_get("failed_logins")?,
        locked_until: row
            .try_get::<Option<i64>, _>("locked_until")?
            .map(from_micros),
        last_login_at: row
            .try_get::<Option<i64>, _>("last_login_at")?
            .map(from_micros),
        password_changed_at: from_micros(row.try_get("password_changed_at")?),
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

impl Reader {
    /// A user by id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn user(&self, id: i64) -> Result<Option<UserRow>, Error> {
        Filter::new("id = ?", [Arg::Int(id)])
            .fetch_row(self, COLUMNS, "users", user)
            .await
    }

    /// A user by login name.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRow>, Error> {
        Filter::new("username = ?", [Arg::Text(username.to_owned())])
            .fetch_row(self, COLUMNS, "users", user)
            .await
    }

    /// The enabled users whose e-mail is `email` (compared without case), by id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn enabled_users_by_email(&self, email: &str) -> Result<Vec<UserRow>, Error> {
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE lower(email) = lower($1) AND enabled = 1 \
             ORDER BY id LIMIT 10"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email.to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user).collect()
    }

    /// Users matching `filter`, by id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn users(
        &self,
        filter: &UserFilter,
        page: PageRequest,
    ) -> Result<Page<UserRow>, Error> {
        let mut q = Filter::default();
        if let Some(role) = &filter.role {
            q.and("role = ?", [Arg::Text(role.clone())]);
        }
        if let Some(enabled) = filter.enabled {
            q.and("enabled = ?", [Arg::Int(flag(enabled))]);
        }
        if let Some(s) = &filter.search {
            let p = like_pattern(s);
            q.and(
                "(LOWER(username) LIKE ? ESCAPE '\\' OR LOWER(COALESCE(email, '')) LIKE ? ESCAPE '\\' \
                 OR LOWER(COALESCE(full_name, '')) LIKE ? ESCAPE '\\')",
                [Arg::Text(p.clone()), Arg::Text(p.clone()), Arg::Text(p)],
            );
        }
        let (rows, total) = q.fetch_page(self, COLUMNS, "users", "id ASC", page).await?;
        let items = rows.iter().map(user).collect::<Result<_, _>>()?;
        Ok(Page::counted(items, total))
    }

    /// How many users exist.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn user_count(&self) -> Result<i64, Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}

impl WriteTx {
    /// Creates a user and returns its id.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the username is taken.
    pub async fn insert_user(&mut self, u: &NewUser, now: OffsetDateTime) -> Result<i64, Error> {
        let now = to_micros(now);
        let row = sqlx::query(
            "INSERT INTO users (username, email, full_name, role, password_hash, enabled, \
             failed_logins, password_changed_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 1, 0, $6, $6, $6) RETURNING id",
        )
        .bind(u.username.clone())
        .bind(u.email.clone())
        .bind(u.full_name.clone())
        .bind(u.role.clone())
        .bind(u.password_hash.clone())
        .bind(now)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Applies `update` to user `id`. Returns false when there is no such user.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn update_user(
        &mut self,
        id: i64,
        update: &UserUpdate,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        self.credentials_change();
        let done = sqlx::query(
            "UPDATE users SET \
               email = CASE WHEN $1 = 1 THEN $2 ELSE email END, \
               full_name = CASE WHEN $3 = 1 THEN $4 ELSE full_name END, \
               role = COALESCE($5, role), \
               enabled = COALESCE($6, enabled), \
               updated_at = $7 \
             WHERE id = $8",
        )
        .bind(flag(update.email.is_some()))
        .bind(update.email.clone().flatten())
        .bind(flag(update.full_name.is_some()))
        .bind(update.full_name.clone().flatten())
        .bind(update.role.clone())
        .bind(update.enabled.map(flag))
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets a new password hash and clears any lockout.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_password(
        &mut self,
        id: i64,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        self.credentials_change();
        let now = to_micros(now);
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2, \
             failed_logins = 0, locked_until = NULL WHERE id = $3",
        )
        .bind(password_hash.to_owned())
        .bind(now)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a successful login: resets the failure count and lockout.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn record_login_success(
        &mut self,
        id: i64,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        self.credentials_change();
        sqlx::query(
            "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $1 WHERE id = $2",
        )
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Counts a password attempt against `id` before the password is checked, so that guesses
    /// sent in parallel are counted as they arrive rather than after their checks finish.
    /// Returns the count including this attempt, or `None` while the account is locked (at
    /// `now`), in which case nothing is counted.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn count_password_attempt(
        &mut self,
        id: i64,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, Error> {
        self.credentials_change();
        let row = sqlx::query(
            "UPDATE users SET failed_logins = failed_logins + 1 \
             WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2) RETURNING failed_logins",
        )
        .bind(id)
        .bind(to_micros(now))
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| r.try_get("failed_logins"))
            .transpose()
            .map_err(Error::from)
    }

    /// Takes back one counted attempt of `id` that turned out right, so that only wrong ones
    /// add up towards the lockout.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn uncount_attempt(&mut self, id: i64) -> Result<(), Error> {
        self.credentials_change();
        sqlx::query(
            "UPDATE users SET failed_logins = failed_logins - 1 WHERE id = $1 AND failed_logins > 0",
        )
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Locks `id` until `until` and starts its failure count again.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn lock_user(&mut self, id: i64, until: OffsetDateTime) -> Result<(), Error> {
        self.credentials_change();
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = $1 WHERE id = $2")
            .bind(to_micros(until))
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Deletes a user with its sessions and API keys. Returns false when there is no such user.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_user(&mut self, id: i64) -> Result<bool, Error> {
        self.credentials_change();
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many enabled users hold `role` (read inside the transaction, for last-admin checks).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn count_enabled_with_role(&mut self, role: &str) -> Result<i64, Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE role = $1 AND enabled = 1")
            .bind(role.to_owned())
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get("n")?)
    }
}
