//! Groups: members hold the group's permissions and, when it names one, its role's, on top of
//! their own role's. Managing groups needs `read:users`, `write:users` or `delete:users`, and no
//! one can make a group grant, or put anyone (themselves included) into a group that grants,
//! more than they hold.

use store::{GroupFields, GroupMemberRow, GroupRow, Page, PageRequest};

use crate::audit::Event;
use crate::rbac::{self, Permission, Role};
use crate::{Authority, Error, Principal, Result};

/// Longest group name.
const MAX_NAME_CHARS: usize = 64;
/// Longest description.
const MAX_DESCRIPTION_CHARS: usize = 500;
/// A member's place in a group: it grants nothing by itself.
pub const MEMBER_ROLES: [&str; 2] = ["member", "owner"];

/// A group as given to create or replace it.
#[derive(Debug, Clone)]
pub struct GroupInput {
    /// Unique name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// A role whose permissions members hold.
    pub role: Option<String>,
    /// Permission strings members hold.
    pub permissions: Vec<String>,
}

/// Everything a group grants, as permission strings.
fn grants_of(role: Option<&str>, permissions: &[String]) -> Vec<String> {
    let mut all: Vec<String> = role
        .and_then(|r| Role::parse(r).ok())
        .map(|r| r.permissions().iter().map(|p| (*p).to_owned()).collect())
        .unwrap_or_default();
    all.extend(permissions.iter().cloned());
    all
}

impl GroupInput {
    /// The fields to store, once checked against what `principal` holds.
    fn checked(self, principal: &Principal) -> Result<GroupFields> {
        let name = self.name.trim().to_owned();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(Error::Invalid(format!(
                "name must be 1 to {MAX_NAME_CHARS} characters without control characters"
            )));
        }
        let description = self
            .description
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS)
        {
            return Err(Error::Invalid(format!(
                "description must be at most {MAX_DESCRIPTION_CHARS} characters"
            )));
        }
        if let Some(role) = &self.role {
            Role::parse(role)?;
        }
        let mut permissions = self.permissions;
        permissions.sort();
        permissions.dedup();
        rbac::check_subset(
            &principal.permissions(),
            &grants_of(self.role.as_deref(), &permissions),
        )?;
        Ok(GroupFields {
            name,
            description,
            role: self.role,
            permissions,
        })
    }
}

impl Authority {
    /// The permission strings `user_id` holds through groups.
    pub(crate) async fn group_permissions(&self, user_id: i64) -> Result<Vec<String>> {
        let mut all = Vec::new();
        for grant in self.reader().group_grants(user_id).await? {
            for p in grants_of(grant.role.as_deref(), &grant.permissions) {
                if !all.contains(&p) {
                    all.push(p);
                }
            }
        }
        Ok(all)
    }

    /// Groups matching `search`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:users`.
    pub async fn groups(
        &self,
        principal: &Principal,
        search: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<GroupRow>> {
        principal.require(Permission::ReadUsers, "listing groups")?;
        Ok(self.reader().groups(search, page).await?)
    }

    /// One group.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:users`; [`Error::NotFound`].
    pub async fn group(&self, principal: &Principal, id: i64) -> Result<GroupRow> {
        principal.require(Permission::ReadUsers, "reading groups")?;
        self.stored_group(id).await
    }

    /// Group `id`, for an operation that checked its own permission.
    async fn stored_group(&self, id: i64) -> Result<GroupRow> {
        self.reader()
            .group(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no group {id}")))
    }

    /// Creates a group. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:users` or for grants beyond the principal's;
    /// [`Error::Invalid`] for a bad field; [`Error::Conflict`] for a taken name.
    pub async fn create_group(&self, principal: &Principal, input: GroupInput) -> Result<GroupRow> {
        principal.require(Permission::WriteUsers, "creating groups")?;
        let fields = input.checked(principal)?;
        let mut tx = self.store.begin_write().await?;
        let id = tx.insert_group(&fields, self.now()).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "group_created",
                "group",
                id,
                format!("group {} created", fields.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.stored_group(id).await
    }

    /// Replaces a group's fields; its members hold the new grants at their next request.
    /// Audited.
    ///
    /// # Errors
    /// As [`Self::create_group`]; [`Error::NotFound`].
    pub async fn update_group(
        &self,
        principal: &Principal,
        id: i64,
        input: GroupInput,
    ) -> Result<GroupRow> {
        principal.require(Permission::WriteUsers, "changing groups")?;
        let before = self.stored_group(id).await?;
        rbac::check_subset(
            &principal.permissions(),
            &grants_of(before.role.as_deref(), &before.permissions),
        )?;
        let fields = input.checked(principal)?;
        let mut tx = self.store.begin_write().await?;
        if !tx.update_group(id, &fields, self.now()).await? {
            return Err(Error::NotFound(format!("no group {id}")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "group_updated",
                "group",
                id,
                format!(
                    "group {}: role {:?} → {:?}, permissions {:?} → {:?}",
                    fields.name, before.role, fields.role, before.permissions, fields.permissions
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.stored_group(id).await
    }

    /// Deletes a group; its members lose its grants. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `delete:users`; [`Error::NotFound`].
    pub async fn delete_group(&self, principal: &Principal, id: i64) -> Result<()> {
        principal.require(Permission::DeleteUsers, "deleting groups")?;
        let group = self.stored_group(id).await?;
        let mut tx = self.store.begin_write().await?;
        if !tx.delete_group(id).await? {
            return Err(Error::NotFound(format!("no group {id}")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "group_deleted",
                "group",
                id,
                format!("group {} deleted", group.name),
            ),
        ))
        .await?;
        Ok(tx.commit().await?)
    }

    /// A group's members.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:users`; [`Error::NotFound`].
    pub async fn group_members(
        &self,
        principal: &Principal,
        id: i64,
    ) -> Result<Vec<GroupMemberRow>> {
        self.group(principal, id).await?;
        Ok(self.reader().group_members(id).await?)
    }

    /// Adds a user to a group (or changes their place in it). Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:users`, or when the group grants more than the
    /// principal holds; [`Error::NotFound`] for no such group or user; [`Error::Invalid`] for a
    /// member role other than `member` or `owner`.
    pub async fn add_group_member(
        &self,
        principal: &Principal,
        group_id: i64,
        user_id: i64,
        member_role: &str,
    ) -> Result<()> {
        principal.require(Permission::WriteUsers, "adding group members")?;
        if !MEMBER_ROLES.contains(&member_role) {
            return Err(Error::Invalid(format!(
                "role must be member or owner, not '{member_role}'"
            )));
        }
        let group = self.stored_group(group_id).await?;
        rbac::check_subset(
            &principal.permissions(),
            &grants_of(group.role.as_deref(), &group.permissions),
        )?;
        let user = self
            .store
            .user(user_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no user {user_id}")))?;
        let mut tx = self.store.begin_write().await?;
        tx.put_group_member(group_id, user_id, member_role, self.now())
            .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "group_member_added",
                "group",
                group_id,
                format!("{} added to {} as {member_role}", user.username, group.name),
            ),
        ))
        .await?;
        Ok(tx.commit().await?)
    }

    /// Removes a user from a group. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:users`; [`Error::NotFound`] when they are not a
    /// member.
    pub async fn remove_group_member(
        &self,
        principal: &Principal,
        group_id: i64,
        user_id: i64,
    ) -> Result<()> {
        principal.require(Permission::WriteUsers, "removing group members")?;
        let group = self.stored_group(group_id).await?;
        let mut tx = self.store.begin_write().await?;
        if !tx.remove_group_member(group_id, user_id).await? {
            return Err(Error::NotFound(format!(
                "user {user_id} is not a member of group {group_id}"
            )));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "group_member_removed",
                "group",
                group_id,
                format!("user {user_id} removed from {}", group.name),
            ),
        ))
        .await?;
        Ok(tx.commit().await?)
    }

    /// How many groups, memberships and grouped users there are.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:users`.
    pub async fn group_stats(&self, principal: &Principal) -> Result<(i64, i64, i64)> {
        principal.require(Permission::ReadUsers, "reading group statistics")?;
        Ok(self.reader().group_stats().await?)
    }
}
