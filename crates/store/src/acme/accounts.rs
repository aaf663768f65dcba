//! ACME accounts: a key within a profile.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::{AcmeFilter, words};
use crate::db::{Arg, Filter, flag};
use crate::words::AcmeAccountStatus;
use crate::{Error, Page, PageRequest, Reader, WriteTx, from_micros, to_micros};

/// An ACME account: a key within a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAccountRow {
    /// Integer id.
    pub id: i64,
    /// The identifier in its URL (the JWS `kid`).
    pub refid: String,
    /// Its profile.
    pub profile_id: i64,
    /// RFC 7638 thumbprint of its key.
    pub thumbprint: String,
    /// Its key, a JWK as JSON text.
    pub jwk: String,
    /// `valid`, `deactivated` or `revoked`.
    pub status: AcmeAccountStatus,
    /// Contact URLs.
    pub contact: Vec<String>,
    /// Whether it agreed to the terms of service.
    pub tos_agreed: bool,
    /// The external account binding key it registered with.
    pub eab_key_id: Option<i64>,
    /// The client address it registered from.
    pub origin_ip: Option<String>,
    /// When it registered.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// An account to store.
#[derive(Debug, Clone)]
pub struct NewAcmeAccount {
    /// The identifier in its URL.
    pub refid: String,
    /// Its profile.
    pub profile_id: i64,
    /// Key thumbprint.
    pub thumbprint: String,
    /// Key, JWK JSON.
    pub jwk: String,
    /// Contact URLs.
    pub contact: Vec<String>,
    /// Terms agreed.
    pub tos_agreed: bool,
    /// The external account binding key.
    pub eab_key_id: Option<i64>,
    /// Client address.
    pub origin_ip: Option<String>,
}

const ACCOUNT_COLUMNS: &str = "id, refid, profile_id, thumbprint, jwk, status, contact, \
    tos_agreed, eab_key_id, origin_ip, created_at, updated_at";

fn account(row: &AnyRow) -> Result<AcmeAccountRow, Error> {
    Ok(AcmeAccountRow {
        id: row.try_get("id")?,
        refid: row.try_get("refid")?,
        profile_id: row.try_get("profile_id")?,
        thumbprint: row.try_get("thumbprint")?,
        jwk: row.try_get("jwk")?,
        status: AcmeAccountStatus::read(row, "status")?,
        contact: words(&row.try_get::<String, _>("contact")?),
        tos_agreed: row.try_get::<i64, _>("tos_agreed")? != 0,
        eab_key_id: row.try_get("eab_key_id")?,
        origin_ip: row.try_get("origin_ip")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

impl Reader {
    /// The account whose URL names `refid`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_account(&self, refid: &str) -> Result<Option<AcmeAccountRow>, Error> {
        Filter::new("refid = ?", [Arg::Text(refid.to_owned())])
            .fetch_row(self, ACCOUNT_COLUMNS, "acme_accounts", account)
            .await
    }

    /// Account `id`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_account_by_id(&self, id: i64) -> Result<Option<AcmeAccountRow>, Error> {
        Filter::new("id = ?", [Arg::Int(id)])
            .fetch_row(self, ACCOUNT_COLUMNS, "acme_accounts", account)
            .await
    }

    /// The account of `profile_id` whose key has `thumbprint`.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_account_by_key(
        &self,
        profile_id: i64,
        thumbprint: &str,
    ) -> Result<Option<AcmeAccountRow>, Error> {
        Filter::new(
            "profile_id = ? AND thumbprint = ?",
            [Arg::Int(profile_id), Arg::Text(thumbprint.to_owned())],
        )
        .fetch_row(self, ACCOUNT_COLUMNS, "acme_accounts", account)
        .await
    }

    /// One page of accounts, newest first.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn acme_accounts(
        &self,
        filter: &AcmeFilter,
        page: PageRequest,
    ) -> Result<Page<AcmeAccountRow>, Error> {
        let mut where_ = Filter::default();
        if let Some(id) = filter.profile_id {
            where_.and("profile_id = ?", [Arg::Int(id)]);
        }
        if let Some(status) = &filter.status {
            where_.and("status = ?", [Arg::Text(status.clone())]);
        }
        let (rows, total) = where_
            .fetch_page(self, ACCOUNT_COLUMNS, "acme_accounts", "id DESC", page)
            .await?;
        Ok(Page::counted(
            rows.iter().map(account).collect::<Result<_, _>>()?,
            total,
        ))
    }
}

impl WriteTx {
    /// Stores an account and returns its id.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the key already has an account on the profile;
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn insert_acme_account(
        &mut self,
        a: &NewAcmeAccount,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let row = sqlx::query(
            "INSERT INTO acme_accounts (refid, profile_id, thumbprint, jwk, status, contact, \
             tos_agreed, eab_key_id, origin_ip, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'valid', $5, $6, $7, $8, $9, $9) RETURNING id",
        )
        .bind(a.refid.clone())
        .bind(a.profile_id)
        .bind(a.thumbprint.clone())
        .bind(a.jwk.clone())
        .bind(a.contact.join(" "))
        .bind(flag(a.tos_agreed))
        .bind(a.eab_key_id)
        .bind(a.origin_ip.clone())
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Sets account `id`'s contact URLs and status.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn update_acme_account(
        &mut self,
        id: i64,
        contact: &[String],
        status: AcmeAccountStatus,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE acme_accounts SET contact = $1, status = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(contact.join(" "))
        .bind(status.as_str())
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Gives account `id` a new key.
    ///
    /// # Errors
    /// [`Error::Conflict`] when another account of the profile has that key;
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn set_acme_account_key(
        &mut self,
        id: i64,
        thumbprint: &str,
        jwk: &str,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE acme_accounts SET thumbprint = $1, jwk = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(thumbprint.to_owned())
        .bind(jwk.to_owned())
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
