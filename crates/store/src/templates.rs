use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::{Arg, Filter, flag};
use crate::{Error, Reader, TemplateId, WriteTx, from_micros, to_micros};

/// A certificate template as stored. The rules are a JSON document the `authority` crate owns;
/// the store keeps it whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    /// Integer id.
    pub id: TemplateId,
    /// Display name, unique.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Shipped with certmint; not changed or deleted through the API.
    pub builtin: bool,
    /// The rules, JSON.
    pub body: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A template to store, or the new state of one.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Shipped with certmint.
    pub builtin: bool,
    /// The rules, JSON.
    pub body: String,
}

const TEMPLATE_COLUMNS: &str = "id, name, description, builtin, body, created_at, updated_at";

fn template(row: &AnyRow) -> Result<TemplateRow, Error> {
    Ok(TemplateRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        builtin: row.try_get::<i64, _>("builtin")? != 0,
        body: row.try_get("body")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

impl Reader {
    /// Every template, by id. Templates are few, so they are listed whole.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn templates(&self) -> Result<Vec<TemplateRow>, Error> {
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM templates ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(template).collect()
    }

    /// The template with this id.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn template(&self, id: TemplateId) -> Result<Option<TemplateRow>, Error> {
        Filter::new("id = ?", [Arg::Int(id.0)])
            .fetch_row(self, TEMPLATE_COLUMNS, "templates", template)
            .await
    }
}

impl WriteTx {
    /// The template with this name, read inside the transaction (imports decide between insert
    /// and update on it).
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn template_named(&mut self, name: &str) -> Result<Option<TemplateRow>, Error> {
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM templates WHERE name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name.to_owned())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(template).transpose()
    }

    /// Stores a template and returns its id.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the name is taken.
    pub async fn insert_template(
        &mut self,
        t: &NewTemplate,
        now: OffsetDateTime,
    ) -> Result<TemplateId, Error> {
        let row = sqlx::query(
            "INSERT INTO templates (name, description, builtin, body, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(t.name.clone())
        .bind(t.description.clone())
        .bind(flag(t.builtin))
        .bind(t.body.clone())
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Replaces name, description and rules of template `id`. Returns false when there is no
    /// such template.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the new name is taken.
    pub async fn update_template(
        &mut self,
        id: TemplateId,
        t: &NewTemplate,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE templates SET name = $1, description = $2, body = $3, updated_at = $4 \
             WHERE id = $5",
        )
        .bind(t.name.clone())
        .bind(t.description.clone())
        .bind(t.body.clone())
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes template `id`; certificates issued from it keep their data and lose the link.
    /// Returns false when there is no such template.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_template(&mut self, id: TemplateId) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM templates WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
