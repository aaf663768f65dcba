//! Saved views of the certificate list: each user keeps named queries of the list, for
//! themselves alone. The server checks that a query is one the list takes; here are the
//! limits.

use store::SavedViewRow;

use crate::{Authority, Error, Permission, Principal, Result};

/// Most views one user saves.
pub const MAX_VIEWS: i64 = 50;
/// Most characters in a view's name.
const MAX_NAME_CHARS: usize = 100;
/// Most characters in a view's query string.
pub const MAX_QUERY_CHARS: usize = 2000;

impl Authority {
    /// The caller's saved views, by name.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:certificates` or without a user account.
    pub async fn saved_views(&self, principal: &Principal) -> Result<Vec<SavedViewRow>> {
        principal.require(Permission::ReadCertificates, "reading saved views")?;
        let user = principal.account()?;
        Ok(self.store.saved_views(user.id).await?)
    }

    /// Saves `query` (the list's query string) as the caller's view `name`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] as for [`Authority::saved_views`]; [`Error::Invalid`] for a bad
    /// name or query or past [`MAX_VIEWS`]; [`Error::Conflict`] when the caller has a view
    /// of that name.
    pub async fn save_view(
        &self,
        principal: &Principal,
        name: &str,
        query: &str,
    ) -> Result<SavedViewRow> {
        principal.require(Permission::ReadCertificates, "saving a view")?;
        let user = principal.account()?;
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(Error::Invalid(format!(
                "a view's name is 1 to {MAX_NAME_CHARS} characters"
            )));
        }
        if query.chars().count() > MAX_QUERY_CHARS || query.chars().any(char::is_control) {
            return Err(Error::Invalid(format!(
                "a view's query is at most {MAX_QUERY_CHARS} characters"
            )));
        }
        let mut tx = self.store.begin_write().await?;
        if tx.count_saved_views(user.id).await? >= MAX_VIEWS {
            return Err(Error::Invalid(format!(
                "a user saves at most {MAX_VIEWS} views; delete one first"
            )));
        }
        let id = tx
            .insert_saved_view(user.id, name, query, self.now())
            .await
            .map_err(|e| match e {
                store::Error::Conflict(_) => {
                    Error::Conflict(format!("you have a view named '{name}' already"))
                }
                e => e.into(),
            })?;
        tx.commit().await?;
        self.store
            .saved_views(user.id)
            .await?
            .into_iter()
            .find(|v| v.id == id)
            .ok_or_else(|| Error::NotFound(format!("view {id} not found")))
    }

    /// Deletes the caller's view `id`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] as for [`Authority::saved_views`]; [`Error::NotFound`] when the
    /// caller has no such view (another user's is not theirs to delete).
    pub async fn delete_view(&self, principal: &Principal, id: i64) -> Result<()> {
        principal.require(Permission::ReadCertificates, "deleting a saved view")?;
        let user = principal.account()?;
        let mut tx = self.store.begin_write().await?;
        if !tx.delete_saved_view(user.id, id).await? {
            return Err(Error::NotFound(format!("you have no saved view {id}")));
        }
        tx.commit().await?;
        Ok(())
    }
}
