//! What operators record about a certificate beyond what it says: its owner and team, its
//! tags, its description, and where it is deployed (migration 0037).

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::first;
use crate::{CertificateId, Error, Reader, WriteTx, from_micros, to_micros};

/// A change to a certificate's records. `None` leaves a field as it is; `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateChange {
    /// The user who answers for it.
    pub owner_id: Option<Option<i64>>,
    /// The group that answers for it.
    pub team_id: Option<Option<i64>>,
    /// Free text.
    pub description: Option<Option<String>>,
    /// Its tags, replacing all it had.
    pub tags: Option<Vec<String>>,
    /// Tags to add to those it has.
    pub add_tags: Vec<String>,
    /// Tags to take away.
    pub remove_tags: Vec<String>,
}

/// Where a certificate is deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationRow {
    /// Integer id.
    pub id: i64,
    /// The certificate deployed there.
    pub certificate_id: CertificateId,
    /// Host name or address.
    pub host: String,
    /// TCP port it is served on.
    pub port: Option<u16>,
    /// File path, or another place on the host.
    pub path: Option<String>,
    /// Free text.
    pub note: Option<String>,
    /// Recorded.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

/// A location's fields, to record or replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationFields {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: Option<u16>,
    /// File path, or another place on the host.
    pub path: Option<String>,
    /// Free text.
    pub note: Option<String>,
}

const LOCATION_COLUMNS: &str = "id, certificate_id, host, port, path, note, created_at, updated_at";

fn location(row: &AnyRow) -> Result<LocationRow, Error> {
    let port: Option<i64> = row.try_get("port")?;
    Ok(LocationRow {
        id: row.try_get("id")?,
        certificate_id: CertificateId(row.try_get("certificate_id")?),
        host: row.try_get("host")?,
        port: port
            .map(|p| {
                u16::try_from(p)
                    .map_err(|_| Error::Corrupt(format!("a location's port {p} is out of range")))
            })
            .transpose()?,
        path: row.try_get("path")?,
        note: row.try_get("note")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

impl Reader {
    /// Where certificate `id` is deployed, in the order recorded.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn certificate_locations(
        &self,
        id: CertificateId,
    ) -> Result<Vec<LocationRow>, Error> {
        let sql = format!(
            "SELECT {LOCATION_COLUMNS} FROM certificate_locations WHERE certificate_id = $1 \
             ORDER BY id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(location).collect()
    }
}

impl WriteTx {
    /// Applies `change` to certificate `id` at `now`. Returns false when there is no such
    /// certificate.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`]; a foreign-key error for an owner or team
    /// that does not exist.
    pub async fn change_certificate(
        &mut self,
        id: CertificateId,
        change: &CertificateChange,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        // Each field is set to itself unless the change names it: one statement whatever the
        // change holds.
        let found = sqlx::query(
            "UPDATE certificates SET \
             owner_id = CASE WHEN $1 = 1 THEN $2 ELSE owner_id END, \
             team_id = CASE WHEN $3 = 1 THEN $4 ELSE team_id END, \
             description = CASE WHEN $5 = 1 THEN $6 ELSE description END, \
             updated_at = $7 WHERE id = $8",
        )
        .bind(i64::from(change.owner_id.is_some()))
        .bind(change.owner_id.flatten())
        .bind(i64::from(change.team_id.is_some()))
        .bind(change.team_id.flatten())
        .bind(i64::from(change.description.is_some()))
        .bind(change.description.clone().flatten())
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected()
            > 0;
        if !found {
            return Ok(false);
        }
        let removed = match &change.tags {
            Some(_) => {
                sqlx::query("DELETE FROM certificate_tags WHERE certificate_id = $1")
                    .bind(id)
                    .execute(&mut *self.tx)
                    .await?;
                &[][..]
            }
            None => &change.remove_tags[..],
        };
        for tag in removed {
            sqlx::query("DELETE FROM certificate_tags WHERE certificate_id = $1 AND tag = $2")
                .bind(id)
                .bind(tag.clone())
                .execute(&mut *self.tx)
                .await?;
        }
        for tag in change.tags.iter().flatten().chain(&change.add_tags) {
            sqlx::query(
                "INSERT INTO certificate_tags (certificate_id, tag) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(tag.clone())
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(true)
    }

    /// How many tags certificate `id` has, as this transaction sees them.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn count_certificate_tags(&mut self, id: CertificateId) -> Result<i64, Error> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM certificate_tags WHERE certificate_id = $1")
                .bind(id)
                .fetch_one(&mut *self.tx)
                .await?;
        Ok(row.try_get("n")?)
    }

    /// How many locations certificate `id` has, as this transaction sees them.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn count_certificate_locations(&mut self, id: CertificateId) -> Result<i64, Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM certificate_locations WHERE certificate_id = $1",
        )
        .bind(id)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Records that certificate `id` is deployed at `fields`; returns the location's id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`]; a foreign-key error when there is no
    /// such certificate.
    pub async fn insert_certificate_location(
        &mut self,
        id: CertificateId,
        fields: &LocationFields,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let row = sqlx::query(
            "INSERT INTO certificate_locations (certificate_id, host, port, path, note, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
        )
        .bind(id)
        .bind(fields.host.clone())
        .bind(fields.port.map(i64::from))
        .bind(fields.path.clone())
        .bind(fields.note.clone())
        .bind(to_micros(now))
        .fetch_all(&mut *self.tx)
        .await?;
        first(row)?.try_get("id").map_err(Error::from)
    }

    /// Replaces location `location` of certificate `id`; returns it as it now is, or `None`
    /// when the certificate has no such location.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn update_certificate_location(
        &mut self,
        id: CertificateId,
        location_id: i64,
        fields: &LocationFields,
        now: OffsetDateTime,
    ) -> Result<Option<LocationRow>, Error> {
        let sql = format!(
            "UPDATE certificate_locations SET host = $1, port = $2, path = $3, note = $4, \
             updated_at = $5 WHERE id = $6 AND certificate_id = $7 RETURNING {LOCATION_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(fields.host.clone())
            .bind(fields.port.map(i64::from))
            .bind(fields.path.clone())
            .bind(fields.note.clone())
            .bind(to_micros(now))
            .bind(location_id)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(location).transpose()
    }

    /// Deletes location `location_id` of certificate `id`; returns what it was, or `None` when
    /// the certificate has no such location.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_certificate_location(
        &mut self,
        id: CertificateId,
        location_id: i64,
    ) -> Result<Option<LocationRow>, Error> {
        let sql = format!(
            "DELETE FROM certificate_locations WHERE id = $1 AND certificate_id = $2 \
             RETURNING {LOCATION_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(location_id)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(location).transpose()
    }
}
