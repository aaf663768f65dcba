//! Settings that change without a restart: the account and session rules and the login rate
//! limit. The configuration file gives each its default; a value set through the API is stored
//! in the database and wins from then on. Every node reads the stored values again once they
//! are [`crate::STALE_AFTER`] old, so a change made on one node holds on all of them within that
//! time; the node that made it uses it at once.

use std::net::IpAddr;
use std::sync::RwLock;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::audit::Event;
use crate::{Authority, Error, Permission, Policy, Principal, Result};

/// The settings key of the values set through the API.
const KEY: &str = "general";
/// The settings key of the last reset of the rate-limit counters.
const RESET_KEY: &str = "rate_limit_reset";

/// Password lengths an administrator may require.
const PASSWORD_MIN_LENGTH: std::ops::RangeInclusive<usize> = 8..=128;
/// The longest a session, a lockout or an idle period may be set to: a year, in minutes.
const MAX_MINUTES: u32 = 366 * 24 * 60;
/// The most failed logins before a lockout an administrator may allow.
const MAX_LOCKOUT_THRESHOLD: u32 = 1_000;
/// The highest login rate limit, per client address and minute.
const MAX_RATE_PER_MINUTE: u32 = 100_000;

/// Values set through the API; an absent one keeps the configuration's value. A change has
/// the same shape: the fields it sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveValues {
    /// Shortest password accepted (8 to 128).
    pub password_min_length: Option<usize>,
    /// Consecutive failed logins that lock an account (1 to 1,000).
    pub lockout_threshold: Option<u32>,
    /// How long a lockout lasts, in minutes.
    pub lockout_minutes: Option<u32>,
    /// Minutes without a request after which a session ends.
    pub session_idle_minutes: Option<u32>,
    /// Minutes after login after which a session ends (at least the idle time).
    pub session_absolute_minutes: Option<u32>,
    /// Login requests per minute and client address (0: unlimited).
    pub auth_rate_limit_per_minute: Option<u32>,
    /// Whether the login rate limit applies at all.
    pub auth_rate_limit_enabled: Option<bool>,
    /// Roles whose holders must log in with a second factor.
    pub second_factor_roles: Option<Vec<String>>,
}

/// One live setting: its name, the value in force, and whether that value was set through
/// the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSetting {
    /// The setting's name, as in the configuration file and the API.
    pub name: &'static str,
    /// The value in force.
    pub value: serde_json::Value,
    /// The configuration's value, in force until the API sets one.
    pub configured: serde_json::Value,
    /// Whether the value in force was set through the API.
    pub stored: bool,
}

/// A reset of the rate-limit counters: every node clears its counters (or one client's)
/// when it sees a generation it has not applied yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitReset {
    /// Counts the resets ever made; 0 before the first.
    pub generation: u64,
    /// The client address whose counters the last reset cleared; `None` for all.
    pub client: Option<IpAddr>,
}

/// The rules in force and the last counter reset, as this node last read them.
#[derive(Debug, Clone)]
pub struct InForce {
    /// The configuration's rules with the values set through the API over them.
    pub policy: Policy,
    /// The last reset of the rate-limit counters.
    pub reset: RateLimitReset,
}

/// This node's copy of what is in force, and when it was read.
#[derive(Debug, Default)]
pub(crate) struct LiveCache(RwLock<Option<(Instant, InForce)>>);

impl LiveCache {
    fn fresh(&self) -> Option<InForce> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|(read_at, _)| read_at.elapsed() < crate::STALE_AFTER)
            .map(|(_, in_force)| in_force.clone())
    }

    fn last(&self) -> Option<InForce> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|(_, in_force)| in_force.clone())
    }

    fn put(&self, in_force: InForce) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), in_force));
    }
}

impl LiveValues {
    /// `self` with the fields `change` sets replaced.
    fn merged(&self, change: &LiveValues) -> LiveValues {
        LiveValues {
            password_min_length: change.password_min_length.or(self.password_min_length),
            lockout_threshold: change.lockout_threshold.or(self.lockout_threshold),
            lockout_minutes: change.lockout_minutes.or(self.lockout_minutes),
            session_idle_minutes: change.session_idle_minutes.or(self.session_idle_minutes),
            session_absolute_minutes: change
                .session_absolute_minutes
                .or(self.session_absolute_minutes),
            auth_rate_limit_per_minute: change
                .auth_rate_limit_per_minute
                .or(self.auth_rate_limit_per_minute),
            auth_rate_limit_enabled: change
                .auth_rate_limit_enabled
                .or(self.auth_rate_limit_enabled),
            second_factor_roles: change
                .second_factor_roles
                .clone()
                .or_else(|| self.second_factor_roles.clone()),
        }
    }

    /// `file` with these values over it.
    fn over(&self, file: &Policy) -> Policy {
        Policy {
            password_min_length: self.password_min_length.unwrap_or(file.password_min_length),
            lockout_threshold: self.lockout_threshold.unwrap_or(file.lockout_threshold),
            lockout_minutes: self.lockout_minutes.unwrap_or(file.lockout_minutes),
            session_idle_minutes: self
                .session_idle_minutes
                .unwrap_or(file.session_idle_minutes),
            session_absolute_minutes: self
                .session_absolute_minutes
                .unwrap_or(file.session_absolute_minutes),
            auth_rate_limit_per_minute: self
                .auth_rate_limit_per_minute
                .unwrap_or(file.auth_rate_limit_per_minute),
            auth_rate_limit_enabled: self
                .auth_rate_limit_enabled
                .unwrap_or(file.auth_rate_limit_enabled),
            second_factor_roles: self
                .second_factor_roles
                .clone()
                .unwrap_or_else(|| file.second_factor_roles.clone()),
            ..file.clone()
        }
    }

    /// Each live setting with the value in force over `file`'s.
    fn settings(&self, file: &Policy) -> Vec<LiveSetting> {
        let in_force = self.over(file);
        let one = |name, value: serde_json::Value, configured, stored: bool| LiveSetting {
            name,
            value,
            configured,
            stored,
        };
        vec![
            one(
                "password_min_length",
                in_force.password_min_length.into(),
                file.password_min_length.into(),
                self.password_min_length.is_some(),
            ),
            one(
                "lockout_threshold",
                in_force.lockout_threshold.into(),
                file.lockout_threshold.into(),
                self.lockout_threshold.is_some(),
            ),
            one(
                "lockout_minutes",
                in_force.lockout_minutes.into(),
                file.lockout_minutes.into(),
                self.lockout_minutes.is_some(),
            ),
            one(
                "session_idle_minutes",
                in_force.session_idle_minutes.into(),
                file.session_idle_minutes.into(),
                self.session_idle_minutes.is_some(),
            ),
            one(
                "session_absolute_minutes",
                in_force.session_absolute_minutes.into(),
                file.session_absolute_minutes.into(),
                self.session_absolute_minutes.is_some(),
            ),
            one(
                "auth_rate_limit_per_minute",
                in_force.auth_rate_limit_per_minute.into(),
                file.auth_rate_limit_per_minute.into(),
                self.auth_rate_limit_per_minute.is_some(),
            ),
            one(
                "auth_rate_limit_enabled",
                in_force.auth_rate_limit_enabled.into(),
                file.auth_rate_limit_enabled.into(),
                self.auth_rate_limit_enabled.is_some(),
            ),
            one(
                "second_factor_roles",
                in_force.second_factor_roles.clone().into(),
                file.second_factor_roles.clone().into(),
                self.second_factor_roles.is_some(),
            ),
        ]
    }
}

/// The names of the live settings, for front doors that tell them from restart-only ones.
pub const LIVE_SETTINGS: &[&str] = &[
    "password_min_length",
    "lockout_threshold",
    "lockout_minutes",
    "session_idle_minutes",
    "session_absolute_minutes",
    "auth_rate_limit_per_minute",
    "auth_rate_limit_enabled",
    "second_factor_roles",
];

/// Refuses the rules `changed` names when out of bounds, naming the setting. The others come
/// from the configuration, which an administrator cannot fix through the API.
fn check(policy: &Policy, changed: &LiveValues) -> Result<()> {
    let bad = |m: String| Err(Error::Invalid(m));
    if changed.password_min_length.is_some()
        && !PASSWORD_MIN_LENGTH.contains(&policy.password_min_length)
    {
        return bad(format!(
            "password_min_length must be {} to {}, not {}",
            PASSWORD_MIN_LENGTH.start(),
            PASSWORD_MIN_LENGTH.end(),
            policy.password_min_length
        ));
    }
    if changed.lockout_threshold.is_some()
        && !(1..=MAX_LOCKOUT_THRESHOLD).contains(&policy.lockout_threshold)
    {
        return bad(format!(
            "lockout_threshold must be 1 to {MAX_LOCKOUT_THRESHOLD}, not {}",
            policy.lockout_threshold
        ));
    }
    for (name, set, minutes) in [
        (
            "lockout_minutes",
            changed.lockout_minutes,
            policy.lockout_minutes,
        ),
        (
            "session_idle_minutes",
            changed.session_idle_minutes,
            policy.session_idle_minutes,
        ),
        (
            "session_absolute_minutes",
            changed.session_absolute_minutes,
            policy.session_absolute_minutes,
        ),
    ] {
        if set.is_some() && !(1..=MAX_MINUTES).contains(&minutes) {
            return bad(format!("{name} must be 1 to {MAX_MINUTES}, not {minutes}"));
        }
    }
    let session_times =
        changed.session_idle_minutes.is_some() || changed.session_absolute_minutes.is_some();
    if session_times && policy.session_absolute_minutes < policy.session_idle_minutes {
        return bad(format!(
            "session_absolute_minutes ({}) must be at least session_idle_minutes ({})",
            policy.session_absolute_minutes, policy.session_idle_minutes
        ));
    }
    if changed.second_factor_roles.is_some() {
        crate::second_factor::check_roles(&policy.second_factor_roles)?;
    }
    if changed.auth_rate_limit_per_minute.is_some()
        && policy.auth_rate_limit_per_minute > MAX_RATE_PER_MINUTE
    {
        return bad(format!(
            "auth_rate_limit_per_minute must be 0 to {MAX_RATE_PER_MINUTE}, not {}",
            policy.auth_rate_limit_per_minute
        ));
    }
    Ok(())
}

/// What changed between `before` and `after`, as `name old → new` pairs for the audit record.
fn changes(before: &[LiveSetting], after: &[LiveSetting]) -> Vec<String> {
    before
        .iter()
        .zip(after)
        .filter(|(b, a)| b.value != a.value)
        .map(|(b, a)| format!("{} {} → {}", b.name, b.value, a.value))
        .collect()
}

impl Authority {
    async fn stored_live_values(&self) -> Result<LiveValues> {
        match self.store.setting(KEY).await? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| Error::Internal(format!("stored live settings: {e}"))),
            None => Ok(LiveValues::default()),
        }
    }

    async fn read_in_force(&self) -> Result<InForce> {
        let values = self.stored_live_values().await?;
        let reset = match self.store.setting(RESET_KEY).await? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| Error::Internal(format!("stored rate-limit reset: {e}")))?,
            None => RateLimitReset::default(),
        };
        Ok(InForce {
            policy: values.over(&self.policy),
            reset,
        })
    }

    /// The rules in force and the last rate-limit reset, read from the database again once
    /// this node's copy is [`crate::STALE_AFTER`] old. When the database cannot be read, the
    /// last values read stay in force (the configuration's before any was read).
    pub async fn in_force(&self) -> InForce {
        if let Some(in_force) = self.live.fresh() {
            return in_force;
        }
        let in_force = match self.read_in_force().await {
            Ok(in_force) => in_force,
            Err(e) => {
                tracing::warn!(error = %e, "live settings unreadable; keeping the last read");
                self.live.last().unwrap_or_else(|| InForce {
                    policy: self.policy.clone(),
                    reset: RateLimitReset::default(),
                })
            }
        };
        // Failures are remembered too, so that an outage costs one read a second, not one
        // per request.
        self.live.put(in_force.clone());
        in_force
    }

    /// The account and session rules in force.
    pub(crate) async fn policy_now(&self) -> Policy {
        self.in_force().await.policy
    }

    /// The live settings: each with its value in force, the configuration's value, and
    /// whether the API set it.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; store errors.
    pub async fn live_settings(&self, principal: &Principal) -> Result<Vec<LiveSetting>> {
        principal.require(Permission::AdminSystem, "reading the settings")?;
        Ok(self.stored_live_values().await?.settings(&self.policy))
    }

    /// Sets the live settings `change` names; the others keep their values. Audited with
    /// every old and new value; in force on this node at once, on the others within
    /// [`crate::STALE_AFTER`].
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; [`Error::Invalid`] for a value out of
    /// bounds (password length 8 to 128, lockout threshold 1 to 1,000, times 1 minute to a
    /// year with the absolute session time at least the idle time); store errors.
    pub async fn update_live_settings(
        &self,
        principal: &Principal,
        change: &LiveValues,
    ) -> Result<Vec<LiveSetting>> {
        principal.require(Permission::AdminSystem, "changing the settings")?;
        let mut tx = self.store.begin_write().await?;
        let before: LiveValues = match tx.setting(KEY).await? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| Error::Internal(format!("stored live settings: {e}")))?,
            None => LiveValues::default(),
        };
        let after = before.merged(change);
        check(&after.over(&self.policy), change)?;
        let (old, new) = (before.settings(&self.policy), after.settings(&self.policy));
        if after == before {
            return Ok(new);
        }
        let changed = changes(&old, &new);
        let value = serde_json::to_value(&after)
            .map_err(|e| Error::Internal(format!("live settings: {e}")))?;
        tx.set_setting(KEY, &value, self.now()).await?;
        let details = if changed.is_empty() {
            "values now stored, unchanged".to_owned()
        } else {
            changed.join(", ")
        };
        tx.audit(&self.entry_by(
            principal,
            Event::new("settings_updated", "settings", KEY, details),
        ))
        .await?;
        tx.commit().await?;
        self.live.put(InForce {
            policy: after.over(&self.policy),
            reset: self.in_force().await.reset,
        });
        Ok(new)
    }

    /// Clears the rate-limit counters of every node, or only `client`'s: a new reset
    /// generation each node applies when it next reads what is in force. Audited.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `admin:system`; store errors.
    pub async fn reset_rate_limits(
        &self,
        principal: &Principal,
        client: Option<IpAddr>,
    ) -> Result<RateLimitReset> {
        principal.require(Permission::AdminSystem, "resetting the rate limits")?;
        let mut tx = self.store.begin_write().await?;
        let last: RateLimitReset = match tx.setting(RESET_KEY).await? {
            Some(value) => serde_json::from_value(value)
                .map_err(|e| Error::Internal(format!("stored rate-limit reset: {e}")))?,
            None => RateLimitReset::default(),
        };
        let reset = RateLimitReset {
            generation: last.generation.saturating_add(1),
            client,
        };
        let value = serde_json::to_value(&reset)
            .map_err(|e| Error::Internal(format!("rate-limit reset: {e}")))?;
        tx.set_setting(RESET_KEY, &value, self.now()).await?;
        let whose = client.map_or_else(|| "every client".to_owned(), |ip| ip.to_string());
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "rate_limit_reset",
                "settings",
                RESET_KEY,
                format!("counters of {whose} cleared"),
            ),
        ))
        .await?;
        tx.commit().await?;
        let policy = self.in_force().await.policy;
        self.live.put(InForce {
            policy,
            reset: reset.clone(),
        });
        Ok(reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_setting() {
        let ok = Policy::default();
        let all = LiveValues {
            password_min_length: Some(0),
            lockout_threshold: Some(0),
            lockout_minutes: Some(0),
            session_idle_minutes: Some(0),
            session_absolute_minutes: Some(0),
            auth_rate_limit_per_minute: Some(0),
            auth_rate_limit_enabled: Some(true),
            second_factor_roles: Some(vec!["admin".into()]),
        };
        assert!(check(&ok, &all).is_ok());
        let cases: [(&str, Policy); 7] = [
            (
                "password_min_length",
                Policy {
                    password_min_length: 7,
                    ..ok.clone()
                },
            ),
            (
                "password_min_length",
                Policy {
                    password_min_length: 129,
                    ..ok.clone()
                },
            ),
            (
                "lockout_threshold",
                Policy {
                    lockout_threshold: 0,
                    ..ok.clone()
                },
            ),
            (
                "session_idle_minutes",
                Policy {
                    session_idle_minutes: 0,
                    ..ok.clone()
                },
            ),
            (
                "must be at least session_idle_minutes",
                Policy {
                    session_idle_minutes: 60,
                    session_absolute_minutes: 30,
                    ..ok.clone()
                },
            ),
            (
                "auth_rate_limit_per_minute",
                Policy {
                    auth_rate_limit_per_minute: MAX_RATE_PER_MINUTE + 1,
                    ..ok.clone()
                },
            ),
            (
                "second_factor_roles",
                Policy {
                    second_factor_roles: vec!["root".into()],
                    ..ok.clone()
                },
            ),
        ];
        for (named, policy) in cases {
            // A value from the configuration is not the change's to refuse.
            assert!(check(&policy, &LiveValues::default()).is_ok(), "{named}");
            match check(&policy, &all) {
                Err(Error::Invalid(m)) => assert!(m.contains(named), "{m}"),
                other => panic!("{named}: {other:?}"),
            }
        }
    }

    #[test]
    fn stored_values_win_over_the_file_and_changes_merge() {
        let file = Policy::default();
        let stored = LiveValues {
            lockout_threshold: Some(3),
            ..LiveValues::default()
        };
        let after = stored.merged(&LiveValues {
            session_idle_minutes: Some(5),
            ..LiveValues::default()
        });
        let policy = after.over(&file);
        assert_eq!(policy.lockout_threshold, 3);
        assert_eq!(policy.session_idle_minutes, 5);
        assert_eq!(policy.password_min_length, file.password_min_length);
        let listed = changes(&stored.settings(&file), &after.settings(&file));
        assert_eq!(
            listed,
            vec![format!(
                "session_idle_minutes {} → 5",
                file.session_idle_minutes
            )]
        );
    }
}
