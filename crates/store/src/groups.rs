//! Groups of users, their members, and what membership grants.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::db::{Arg, Filter, like_pattern};
use crate::{Error, Page, PageRequest, Reader, WriteTx, from_micros, to_micros};

/// A group as stored, with its member count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// Integer id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The role whose permissions members hold, if any.
    pub role: Option<String>,
    /// Permission strings members hold.
    pub permissions: Vec<String>,
    /// How many members it has.
    pub members: i64,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

/// A group's fields, to create or replace.
#[derive(Debug, Clone)]
pub struct GroupFields {
    /// Unique name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The role whose permissions members hold, if any.
    pub role: Option<String>,
    /// Permission strings members hold.
    pub permissions: Vec<String>,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberRow {
    /// The user.
    pub user_id: i64,
    /// Their login name.
    pub username: String,
    /// Their e-mail.
    pub email: Option<String>,
    /// Their own role.
    pub user_role: String,
    /// Their place in the group (`member` or `owner`).
    pub member_role: String,
    /// When they joined.
    pub added_at: OffsetDateTime,
}

/// What one group grants its members: a role and permission strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupGrant {
    /// The role, if the group names one.
    pub role: Option<String>,
    /// Permission strings.
    pub permissions: Vec<String>,
}

const COLUMNS: &str = "id, name, description, role, permissions, created_at, updated_at, \
                       (SELECT COUNT(*) FROM group_members m WHERE m.group_id = user_groups.id) \
                       AS members";

fn permissions(text: &str) -> Result<Vec<String>, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::Invalid(format!("a group's stored permissions: {e}")))
}

fn permissions_text(list: &[String]) -> Result<String, Error> {
    serde_json::to_string(list).map_err(|e| Error::Invalid(format!("group permissions: {e}")))
}

fn group(row: &AnyRow) -> Result<GroupRow, Error> {
    Ok(GroupRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        role: row.try_get("role")?,
        permissions: permissions(&row.try_get::<String, _>("permissions")?)?,
        members: row.try_get("members")?,
        created_at: from_micros(row.try_get("created_at")?),
        updated_at: from_micros(row.try_get("updated_at")?),
    })
}

impl Reader {
    /// Groups whose name or description contains `search`, by name.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn groups(
        &self,
        search: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<GroupRow>, Error> {
        let mut q = Filter::default();
        if let Some(s) = search {
            let p = like_pattern(s);
            q.and(
                "(LOWER(name) LIKE ? ESCAPE '\\' OR LOWER(COALESCE(description, '')) LIKE ? ESCAPE '\\')",
                [Arg::Text(p.clone()), Arg::Text(p)],
            );
        }
        let (rows, total) = q
            .fetch_page(self, COLUMNS, "user_groups", "name ASC", page)
            .await?;
        let items = rows.iter().map(group).collect::<Result<_, _>>()?;
        Ok(Page::counted(items, total))
    }

    /// One group.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn group(&self, id: i64) -> Result<Option<GroupRow>, Error> {
        Filter::new("id = ?", [Arg::Int(id)])
            .fetch_row(self, COLUMNS, "user_groups", group)
            .await
    }

    /// A group's members, by username.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn group_members(&self, group_id: i64) -> Result<Vec<GroupMemberRow>, Error> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.email, u.role, m.member_role, m.created_at \
             FROM group_members m JOIN users u ON u.id = m.user_id \
             WHERE m.group_id = $1 ORDER BY u.username",
        )
        .bind(group_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(GroupMemberRow {
                    user_id: row.try_get("id")?,
                    username: row.try_get("username")?,
                    email: row.try_get("email")?,
                    user_role: row.try_get("role")?,
                    member_role: row.try_get("member_role")?,
                    added_at: from_micros(row.try_get("created_at")?),
                })
            })
            .collect()
    }

    /// What the groups `user_id` belongs to grant.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn group_grants(&self, user_id: i64) -> Result<Vec<GroupGrant>, Error> {
        let rows = sqlx::query(
            "SELECT g.role, g.permissions FROM group_members m \
             JOIN user_groups g ON g.id = m.group_id WHERE m.user_id = $1 ORDER BY g.id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(GroupGrant {
                    role: row.try_get("role")?,
                    permissions: permissions(&row.try_get::<String, _>("permissions")?)?,
                })
            })
            .collect()
    }

    /// How many groups there are, how many memberships, and how many users belong to one.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn group_stats(&self) -> Result<(i64, i64, i64), Error> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM user_groups) AS groups_n, \
             (SELECT COUNT(*) FROM group_members) AS memberships, \
             (SELECT COUNT(DISTINCT user_id) FROM group_members) AS users_n",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((
            row.try_get("groups_n")?,
            row.try_get("memberships")?,
            row.try_get("users_n")?,
        ))
    }
}

impl WriteTx {
    /// Creates a group and returns its id.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the name is taken.
    pub async fn insert_group(
        &mut self,
        g: &GroupFields,
        now: OffsetDateTime,
    ) -> Result<i64, Error> {
        let row = sqlx::query(
            "INSERT INTO user_groups (name, description, role, permissions, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(g.name.clone())
        .bind(g.description.clone())
        .bind(g.role.clone())
        .bind(permissions_text(&g.permissions)?)
        .bind(to_micros(now))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Replaces a group's fields. Returns false when there is no such group.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the name is taken.
    pub async fn update_group(
        &mut self,
        id: i64,
        g: &GroupFields,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        self.credentials_change();
        let done = sqlx::query(
            "UPDATE user_groups SET name = $1, description = $2, role = $3, permissions = $4, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(g.name.clone())
        .bind(g.description.clone())
        .bind(g.role.clone())
        .bind(permissions_text(&g.permissions)?)
        .bind(to_micros(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a group with its memberships. Returns false when there is no such group.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn delete_group(&mut self, id: i64) -> Result<bool, Error> {
        self.credentials_change();
        sqlx::query("DELETE FROM group_members WHERE group_id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        let done = sqlx::query("DELETE FROM user_groups WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds `user_id` to `group_id`, or changes their place in it.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn put_group_member(
        &mut self,
        group_id: i64,
        user_id: i64,
        member_role: &str,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        self.credentials_change();
        sqlx::query(
            "INSERT INTO group_members (group_id, user_id, member_role, created_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (group_id, user_id) DO UPDATE SET member_role = excluded.member_role",
        )
        .bind(group_id)
        .bind(user_id)
        .bind(member_role.to_owned())
        .bind(to_micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Removes `user_id` from `group_id`. Returns false when they were not a member.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::Unavailable`].
    pub async fn remove_group_member(
        &mut self,
        group_id: i64,
        user_id: i64,
    ) -> Result<bool, Error> {
        self.credentials_change();
        let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group_id)
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
