//! Saved views of the certificate list: a name and the list's query string, per user.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::first;
use crate::{Error, Reader, WriteTx, from_micros, to_micros};

/// A saved view as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedViewRow {
    /// Integer id.
    pub id: i64,
    /// Whose it is.
    pub user_id: i64,
    /// Its name, unique per user.
    pub name: String,
    /// The list's query string, without the `?`.
    pub query: String,
    /// Saved.
    pub created_at: OffsetDateTime,
}

fn saved_view(row: &AnyRow) -> Result<SavedViewRow, Error> {
    Ok(SavedViewRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        query: row.try_get("query")?,
        created_at: from_micros(row.try_get("created_at")?),
    })
}

impl Reader {
    /// User `user_id`'s saved views, by name.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn saved_views(&self, user_id: i64) -> Result<Vec<SavedViewRow>, Error> {
        let rows = sqlx::query(
            "SELECT id, user_id, name, query, created_at FROM saved_views WHERE user_id = $1 \
             ORDER BY name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(saved_view).collect()
    }
}

impl WriteTx {
    /// How many views user `user_id` has saved, as this transaction sees them.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn count_saved_views(&mut self, user_id: i64) -> Result<i64, Error> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM saved_views WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Saves view `name` of user `user_id`; returns its id.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the user has a view of that name.
    pub async fn insert_saved_view(
        &mut self,
        user_id: i64,
        name: &str,
        query: &str,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let rows = sqlx::query(
            "INSERT INTO saved_views (user_id, name, query, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .bind(user_id)
        .bind(name.to_owned())
        .bind(query.to_owned())
        .bind(to_micros(now))
        .fetch_all(&mut *self.tx)
        .await?;
        first(rows)?.try_get("id").map_err(Error::from)
    }

    /// Deletes view `id` of user `user_id`; false when that user has no such view.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_saved_view(&mut self, user_id: i64, id: i64) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM saved_views WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
