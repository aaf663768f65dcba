//! Passkeys (WebAuthn credentials) and the ceremonies between the two steps of a registration
//! or a passkey login.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::{Error, Reader, WriteTx, from_micros, to_micros};

/// A passkey as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRow {
    /// Integer id.
    pub id: i64,
    /// Whose it is.
    pub user_id: i64,
    /// The authenticator's credential id, base64url.
    pub credential_id: String,
    /// The id the authenticator keeps for the account.
    pub user_handle: String,
    /// The name its owner gave it.
    pub name: String,
    /// The credential as webauthn-rs stores it (JSON).
    pub passkey: String,
    /// The authenticator's signature counter at the last use.
    pub sign_count: i64,
    /// Whether the credential may be synchronised to other devices.
    pub backup_eligible: bool,
    /// Whether it is.
    pub backup_state: bool,
    /// Disabled passkeys do not sign in.
    pub enabled: bool,
    /// When it was registered.
    pub created_at: OffsetDateTime,
    /// Its last login.
    pub last_used_at: Option<OffsetDateTime>,
}

/// A passkey to store.
#[derive(Debug, Clone)]
pub struct NewPasskey {
    /// Whose it is.
    pub user_id: i64,
    /// The authenticator's credential id, base64url.
    pub credential_id: String,
    /// The id the authenticator keeps for the account.
    pub user_handle: String,
    /// The name its owner gave it.
    pub name: String,
    /// The credential as webauthn-rs stores it (JSON).
    pub passkey: String,
    /// The signature counter it started with.
    pub sign_count: i64,
    /// Whether it may be synchronised.
    pub backup_eligible: bool,
    /// Whether it is.
    pub backup_state: bool,
}

/// What a login changes in the passkey it used.
#[derive(Debug, Clone)]
pub struct PasskeyUse {
    /// The credential as updated (JSON).
    pub passkey: String,
    /// The new signature counter.
    pub sign_count: i64,
    /// Whether it may be synchronised.
    pub backup_eligible: bool,
    /// Whether it is.
    pub backup_state: bool,
}

/// A ceremony's server-side state, as taken by the step that finishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyRow {
    /// Whose registration it is; `None` for a login.
    pub user_id: Option<i64>,
    /// webauthn-rs's state (JSON).
    pub state: String,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

/// A ceremony to store.
#[derive(Debug, Clone)]
pub struct NewCeremony {
    /// SHA-256 of the challenge, hex.
    pub challenge_hash: String,
    /// `register` or `login`.
    pub kind: String,
    /// Whose registration it is; `None` for a login.
    pub user_id: Option<i64>,
    /// webauthn-rs's state (JSON).
    pub state: String,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

const COLUMNS: &str = "id, user_id, credential_id, user_handle, name, passkey, sign_count, \
                       backup_eligible, backup_state, enabled, created_at, last_used_at";

fn passkey_row(row: &AnyRow) -> Result<PasskeyRow, Error> {
    Ok(PasskeyRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        credential_id: row.try_get("credential_id")?,
        user_handle: row.try_get("user_handle")?,
        name: row.try_get("name")?,
        passkey: row.try_get("passkey")?,
        sign_count: row.try_get("sign_count")?,
        backup_eligible: row.try_get::<i64, _>("backup_eligible")? != 0,
        backup_state: row.try_get::<i64, _>("backup_state")? != 0,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: from_micros(row.try_get("created_at")?),
        last_used_at: row
            .try_get::<Option<i64>, _>("last_used_at")?
            .map(from_micros),
    })
}

impl Reader {
    /// `user_id`'s passkeys, oldest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn passkeys(&self, user_id: i64) -> Result<Vec<PasskeyRow>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM user_passkeys WHERE user_id = $1 ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(passkey_row).collect()
    }

    /// The passkey whose authenticator calls it `credential_id`, whoever holds it.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<PasskeyRow>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM user_passkeys WHERE credential_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(credential_id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(passkey_row).transpose()
    }
}

impl WriteTx {
    /// Stores a new passkey and returns its id, or `None` when its credential id is registered
    /// already (to this account or another).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_passkey(
        &mut self,
        p: &NewPasskey,
        now: OffsetDateTime,
    ) -> Result<Option<i64>, Error> {
        let row = sqlx::query(
            "INSERT INTO user_passkeys (user_id, credential_id, user_handle, name, passkey, \
             sign_count, backup_eligible, backup_state, enabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9) \
             ON CONFLICT (credential_id) DO NOTHING RETURNING id",
        )
        .bind(p.user_id)
        .bind(p.credential_id.clone())
        .bind(p.user_handle.clone())
        .bind(p.name.clone())
        .bind(p.passkey.clone())
        .bind(p.sign_count)
        .bind(i64::from(p.backup_eligible))
        .bind(i64::from(p.backup_state))
        .bind(to_micros(now))
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| r.try_get("id").map_err(Error::from))
            .transpose()
    }

    /// Turns `user_id`'s passkey `id` on or off; `None` toggles it. Returns the passkey as it
    /// now is, or `None` when the user has no such passkey.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_passkey_enabled(
        &mut self,
        user_id: i64,
        id: i64,
        enabled: Option<bool>,
    ) -> Result<Option<PasskeyRow>, Error> {
        let sql = format!(
            "UPDATE user_passkeys SET enabled = CASE WHEN $1 < 0 THEN 1 - enabled ELSE $1 END \
             WHERE user_id = $2 AND id = $3 RETURNING {COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(enabled.map_or(-1, i64::from))
            .bind(user_id)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(passkey_row).transpose()
    }

    /// Removes `user_id`'s passkey `id` and returns it, or `None` when there is no such passkey.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_passkey(
        &mut self,
        user_id: i64,
        id: i64,
    ) -> Result<Option<PasskeyRow>, Error> {
        let sql =
            format!("DELETE FROM user_passkeys WHERE user_id = $1 AND id = $2 RETURNING {COLUMNS}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(passkey_row).transpose()
    }

    /// Records a login by passkey `id`: its updated credential, counter and backup flags.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn record_passkey_use(
        &mut self,
        id: i64,
        used: &PasskeyUse,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE user_passkeys SET passkey = $1, sign_count = $2, backup_eligible = $3, \
             backup_state = $4, last_used_at = $5 WHERE id = $6",
        )
        .bind(used.passkey.clone())
        .bind(used.sign_count)
        .bind(i64::from(used.backup_eligible))
        .bind(i64::from(used.backup_state))
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Stores a ceremony's state, and drops the ceremonies that expired before `now`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_ceremony(
        &mut self,
        c: &NewCeremony,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1")
            .bind(to_micros(now))
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO webauthn_ceremonies (challenge_hash, kind, user_id, state, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c.challenge_hash.clone())
        .bind(c.kind.clone())
        .bind(c.user_id)
        .bind(c.state.clone())
        .bind(to_micros(now))
        .bind(to_micros(c.expires_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Takes (deletes and returns) the `kind` ceremony whose challenge hashes to
    /// `challenge_hash`, expired or not, so that no ceremony is finished twice.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn take_ceremony(
        &mut self,
        challenge_hash: &str,
        kind: &str,
    ) -> Result<Option<CeremonyRow>, Error> {
        let row = sqlx::query(
            "DELETE FROM webauthn_ceremonies WHERE challenge_hash = $1 AND kind = $2 \
             RETURNING user_id, state, expires_at",
        )
        .bind(challenge_hash.to_owned())
        .bind(kind.to_owned())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|row| {
            Ok(CeremonyRow {
                user_id: row.try_get("user_id")?,
                state: row.try_get("state")?,
                expires_at: from_micros(row.try_get("expires_at")?),
            })
        })
        .transpose()
    }
}
