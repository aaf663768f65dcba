//! Second factors (TOTP secrets, recovery codes), logins waiting for one, and password resets.

use sqlx::Row;
use time::OffsetDateTime;

use crate::{Error, Reader, WriteTx, from_micros, to_micros};

/// A user's TOTP secret as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRow {
    /// The secret, sealed by the vault.
    pub secret: Vec<u8>,
    /// When the first code was entered; until then the secret does not guard logins.
    pub confirmed_at: Option<OffsetDateTime>,
}

/// A login waiting for its second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLoginRow {
    /// Integer id.
    pub id: i64,
    /// Who is logging in.
    pub user_id: i64,
    /// How the first step was proved.
    pub auth_method: String,
    /// Whether the user must set up TOTP first (their role requires a second factor and they
    /// have none).
    pub setup: bool,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

/// A pending login to create.
#[derive(Debug, Clone)]
pub struct NewPendingLogin {
    /// Who is logging in.
    pub user_id: i64,
    /// SHA-256 of its bearer token, hex.
    pub token_hash: String,
    /// How the first step was proved.
    pub auth_method: String,
    /// Whether TOTP must be set up first.
    pub setup: bool,
    /// Client address.
    pub ip_address: Option<String>,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

impl Reader {
    /// `user_id`'s TOTP secret, confirmed or not.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn user_totp(&self, user_id: i64) -> Result<Option<TotpRow>, Error> {
        let row = sqlx::query("SELECT secret, confirmed_at FROM user_totp WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(TotpRow {
                secret: row.try_get("secret")?,
                confirmed_at: row
                    .try_get::<Option<i64>, _>("confirmed_at")?
                    .map(from_micros),
            })
        })
        .transpose()
    }

    /// How many of `user_id`'s recovery codes are unused, and how many there are.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn recovery_code_counts(&self, user_id: i64) -> Result<(i64, i64), Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN used_at IS NULL THEN 1 ELSE 0 END), 0) \
             AS unused FROM recovery_codes WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("unused")?, row.try_get("total")?))
    }

    /// The live pending login whose token hashes to `token_hash`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn pending_login(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PendingLoginRow>, Error> {
        let row = sqlx::query(
            "SELECT id, user_id, auth_method, setup, expires_at FROM pending_logins \
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash.to_owned())
        .bind(to_micros(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(PendingLoginRow {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                auth_method: row.try_get("auth_method")?,
                setup: row.try_get::<i64, _>("setup")? != 0,
                expires_at: from_micros(row.try_get("expires_at")?),
            })
        })
        .transpose()
    }
}

impl WriteTx {
    /// Gives `user_id` a new, unconfirmed TOTP secret in place of an unconfirmed one. Returns
    /// false when the user has a confirmed secret, which stays.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn put_unconfirmed_totp(
        &mut self,
        user_id: i64,
        sealed: &[u8],
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        sqlx::query("DELETE FROM user_totp WHERE user_id = $1 AND confirmed_at IS NULL")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        let done = sqlx::query(
            "INSERT INTO user_totp (user_id, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(sealed.to_vec())
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes time step `step` of `user_id`'s TOTP: false when a code of that step or a later
    /// one was accepted before, so that no code works twice. `confirm` also marks the secret
    /// confirmed.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn take_totp_step(
        &mut self,
        user_id: i64,
        step: i64,
        confirm: bool,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE user_totp SET last_step = $1, \
             confirmed_at = CASE WHEN $2 = 1 AND confirmed_at IS NULL THEN $3 ELSE confirmed_at END \
             WHERE user_id = $4 AND (last_step IS NULL OR last_step < $1)",
        )
        .bind(step)
        .bind(i64::from(confirm))
        .bind(to_micros(now))
        .bind(user_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes `user_id`'s TOTP secret and recovery codes. Returns whether there was a secret.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_totp(&mut self, user_id: i64) -> Result<bool, Error> {
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        let done = sqlx::query("DELETE FROM user_totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces all of `user_id`'s recovery codes with `hashes`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn replace_recovery_codes(
        &mut self,
        user_id: i64,
        hashes: &[String],
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        for hash in hashes {
            sqlx::query(
                "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
            )
            .bind(user_id)
            .bind(hash.clone())
            .bind(to_micros(now))
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// Uses the unused recovery code of `user_id` that hashes to `hash`. Returns false when
    /// there is none.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn use_recovery_code(
        &mut self,
        user_id: i64,
        hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 \
             WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(to_micros(now))
        .bind(user_id)
        .bind(hash.to_owned())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() >= 1)
    }

    /// Creates a pending login, and drops the ones that expired before `now`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_pending_login(
        &mut self,
        p: &NewPendingLogin,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query("DELETE FROM pending_logins WHERE expires_at <= $1")
            .bind(to_micros(now))
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO pending_logins (user_id, token_hash, auth_method, setup, ip_address, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(p.user_id)
        .bind(p.token_hash.clone())
        .bind(p.auth_method.clone())
        .bind(i64::from(p.setup))
        .bind(p.ip_address.clone())
        .bind(to_micros(now))
        .bind(to_micros(p.expires_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Counts a code tried against pending login `id` and returns the attempts so far, or
    /// `None` when the login is gone.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn count_pending_attempt(&mut self, id: i64) -> Result<Option<i64>, Error> {
        let row = sqlx::query(
            "UPDATE pending_logins SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
        )
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| r.try_get("attempts").map_err(Error::from))
            .transpose()
    }

    /// Ends pending login `id`. Returns false when it was already gone, so that one pending
    /// login opens at most one session.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_pending_login(&mut self, id: i64) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM pending_logins WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends every pending login of `user_id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_pending_logins(&mut self, user_id: i64) -> Result<(), Error> {
        sqlx::query("DELETE FROM pending_logins WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Creates a password reset token for `user_id`, and ends the user's earlier unused ones.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_password_reset(
        &mut self,
        user_id: i64,
        token_hash: &str,
        ip_address: Option<&str>,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query("DELETE FROM password_resets WHERE user_id = $1 OR expires_at <= $2")
            .bind(user_id)
            .bind(to_micros(now))
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO password_resets (user_id, token_hash, ip_address, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user_id)
        .bind(token_hash.to_owned())
        .bind(ip_address.map(str::to_owned))
        .bind(to_micros(now))
        .bind(to_micros(expires_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Uses the live, unused reset token that hashes to `token_hash` and returns its user.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn use_password_reset(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, Error> {
        let row = sqlx::query(
            "UPDATE password_resets SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
        )
        .bind(to_micros(now))
        .bind(token_hash.to_owned())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| r.try_get("user_id").map_err(Error::from))
            .transpose()
    }
}
