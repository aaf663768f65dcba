//! Resetting the database to a new install's: a backup first, so that nothing is lost by a
//! mistake, then every table dropped and made anew, with a new first admin.

use zeroize::Zeroizing;

use super::{BackupKind, BackupRecord, BackupRequest};
use crate::audit::Event;
use crate::{Authority, Permission, Principal, Result};

/// What a reset did.
#[derive(Debug)]
pub struct Reset {
    /// The backup taken first, from which everything can be restored.
    pub backup: BackupRecord,
    /// The name of the new first admin.
    pub admin_username: String,
    /// Its password, shown only this once.
    pub admin_password: Zeroizing<String>,
}

impl Authority {
    /// Takes a backup under `passphrase` (the master key stays out: this node keeps it), then
    /// drops every table and makes the schema anew, as on a new install, with a first admin
    /// whose password only the answer holds. The new audit chain starts with the reset. The
    /// node must then start again, as after a restore, to make its CAs and caches anew.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`] without `admin:system`; [`crate::Error::Invalid`] for a
    /// passphrase too short; [`crate::Error::Conflict`] while a backup or restore runs; store
    /// and file errors (when the backup fails, nothing is dropped).
    pub async fn reset_database(
        &self,
        principal: &Principal,
        passphrase: Zeroizing<String>,
    ) -> Result<Reset> {
        principal.require(Permission::AdminSystem, "resetting the database")?;
        let _running = self.backup_turn()?;
        let backup = self
            .shelve(
                principal,
                BackupRequest {
                    passphrase,
                    include_master_key: false,
                },
                BackupKind::Manual,
            )
            .await?;
        self.store.recreate().await?;
        let (admin, password) = self.create_first_admin(None).await?;
        let password = password.ok_or_else(|| {
            crate::Error::Internal("the new admin was made without a password".into())
        })?;
        let mut tx = self.store.begin_write().await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "database_reset",
                "system",
                "database",
                format!(
                    "every table dropped and made anew after backup {} ({} rows)",
                    backup.id, backup.rows
                ),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(Reset {
            backup,
            admin_username: admin.username,
            admin_password: password,
        })
    }
}
