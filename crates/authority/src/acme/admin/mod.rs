//! ACME administration, for people through the REST API: the instance-wide settings, the
//! statistics, the accounts and orders clients made, the profiles (one directory each) and
//! their external account binding keys.
//!
//! Every function takes the caller's [`crate::Principal`] and checks its permission here
//! (`read:acme`, `write:acme`, `delete:acme`); every change is audited in its own transaction
//! and drops the protocol's profile snapshot, so this node serves the change at once (other
//! nodes within [`crate::STALE_AFTER`]).

mod accounts;
mod eab_keys;
mod orders;
mod profiles;
mod settings;
mod stats;

pub use eab_keys::IssuedEabKey;
pub use orders::AcmeOrderDetails;
pub use profiles::{AcmeProfileInput, RESERVED_PROFILE_NAMES};
pub use settings::{AcmeSettings, AcmeSettingsChange};
pub use stats::AcmeStats;

use crate::{Error, Result};

/// Longest description of a profile or a key.
const MAX_DESCRIPTION: usize = 1000;

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

fn check_description(text: &str) -> Result<()> {
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(invalid(format!(
            "description is longer than {MAX_DESCRIPTION} characters"
        )));
    }
    Ok(())
}

fn check_status(what: &str, status: Option<&str>, known: &[&str]) -> Result<()> {
    match status {
        Some(s) if !known.contains(&s) => Err(Error::Malformed(format!(
            "unknown {what} status '{s}'; expected one of {}",
            known.join(", ")
        ))),
        _ => Ok(()),
    }
}
