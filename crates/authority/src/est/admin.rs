//! EST administration, for people through the REST API: the settings (the switch, the
//! default endpoint and the labels, with their credentials) and the statistics. Reading needs
//! `read:est`, changing `write:est`; every change is audited in its own transaction and takes
//! effect on this node at once, on others within [`crate::STALE_AFTER`].

use store::{CaId, EstConfigRow, EstEndpoint, EstLabelRow, TemplateId};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::{DEFAULT_ENDPOINT, REFUSED};
use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result, password};

/// The most labels an instance may have.
pub const MAX_LABELS: usize = 100;
/// The longest label.
const MAX_LABEL: usize = 64;
/// The longest user name.
const MAX_USERNAME: usize = 128;

/// An endpoint's settings as shown: never the password, only whether there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstEndpointSettings {
    /// The issuing CA; the default CA when absent.
    pub ca_id: Option<CaId>,
    /// The template requests are checked against.
    pub template_id: Option<TemplateId>,
    /// The HTTP Basic user name; empty when there is none.
    pub username: String,
    /// Whether a password is set.
    pub password_set: bool,
}

impl From<&EstEndpoint> for EstEndpointSettings {
    fn from(e: &EstEndpoint) -> Self {
        Self {
            ca_id: e.ca_id,
            template_id: e.template_id,
            username: e.username.clone(),
            password_set: e.password_hash.is_some(),
        }
    }
}

/// The EST settings as shown.
#[derive(Debug, Clone)]
pub struct EstSettings {
    /// Whether EST serves at all.
    pub enabled: bool,
    /// The endpoint at `/.well-known/est/`.
    pub default: EstEndpointSettings,
    /// The labels, by label, each at `/.well-known/est/{label}/`.
    pub labels: Vec<(String, EstEndpointSettings)>,
    /// When the settings last changed.
    pub updated_at: Option<OffsetDateTime>,
}

impl From<&EstConfigRow> for EstSettings {
    fn from(c: &EstConfigRow) -> Self {
        Self {
            enabled: c.enabled,
            default: (&c.default).into(),
            labels: c
                .labels
                .iter()
                .map(|l| (l.label.clone(), (&l.endpoint).into()))
                .collect(),
            updated_at: c.updated_at,
        }
    }
}

/// A label as given in a change. Its `Debug` output leaves the password out.
#[derive(Clone)]
pub struct EstLabelInput {
    /// The label in its URLs: 1 to 64 letters, digits, `-`, `_` or `.`; not `default`.
    pub label: String,
    /// The issuing CA; the default CA when absent.
    pub ca_id: Option<CaId>,
    /// The template.
    pub template_id: Option<TemplateId>,
    /// The HTTP Basic user name; empty for none.
    pub username: String,
    /// A new password (`Some(None)`: none); absent keeps the label's current one (none for a
    /// new label).
    pub password: Option<Option<Zeroizing<String>>>,
}

/// A change to the settings; `None` leaves a field as it is. Its `Debug` output leaves the
/// password out.
#[derive(Clone, Default)]
pub struct EstSettingsChange {
    /// Whether EST serves at all.
    pub enabled: Option<bool>,
    /// The default endpoint's CA (`Some(None)`: the default CA).
    pub ca_id: Option<Option<CaId>>,
    /// The default endpoint's template (`Some(None)`: none).
    pub template_id: Option<Option<TemplateId>>,
    /// The default endpoint's user name (empty: none).
    pub username: Option<String>,
    /// The default endpoint's password (`Some(None)`: none).
    pub password: Option<Option<Zeroizing<String>>>,
    /// The whole list of labels, replacing the one there is.
    pub labels: Option<Vec<EstLabelInput>>,
}

/// A password change as `Debug` shows it: whether there is one, never what it is.
fn redacted(password: Option<&Option<Zeroizing<String>>>) -> Option<Option<&'static str>> {
    password.map(|p| p.as_ref().map(|_| "<redacted>"))
}

impl std::fmt::Debug for EstLabelInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EstLabelInput")
            .field("label", &self.label)
            .field("ca_id", &self.ca_id)
            .field("template_id", &self.template_id)
            .field("username", &self.username)
            .field("password", &redacted(self.password.as_ref()))
            .finish()
    }
}

impl std::fmt::Debug for EstSettingsChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let password = redacted(self.password.as_ref());
        f.debug_struct("EstSettingsChange")
            .field("enabled", &self.enabled)
            .field("ca_id", &self.ca_id)
            .field("template_id", &self.template_id)
            .field("username", &self.username)
            .field("password", &password)
            .field("labels", &self.labels)
            .finish()
    }
}

/// Counts for one endpoint, from the audit log (so they go back as far as it is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstLabelStats {
    /// The label, or `default`.
    pub label: String,
    /// Certificates issued (renewals included).
    pub issued: i64,
    /// Of them, in the last 24 hours.
    pub issued_last_24h: i64,
    /// Wrong passwords and enrollments refused after authentication.
    pub failures: i64,
    /// Of them, in the last 24 hours.
    pub failures_last_24h: i64,
}

/// The statistics page.
#[derive(Debug, Clone)]
pub struct EstStats {
    /// Whether EST serves at all.
    pub enabled: bool,
    /// Certificates in the inventory that came through EST.
    pub issued: i64,
    /// Of them, stored in the last 24 hours.
    pub issued_last_24h: i64,
    /// Per endpoint, the default first.
    pub labels: Vec<EstLabelStats>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

fn check_label(label: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if label.is_empty() || label.len() > MAX_LABEL || !label.chars().all(allowed) {
        return Err(invalid(format!(
            "EST label '{label}' must have 1 to {MAX_LABEL} letters, digits, '-', '_' or '.'"
        )));
    }
    if label == DEFAULT_ENDPOINT || label.chars().all(|c| c == '.') {
        return Err(invalid(format!("'{label}' cannot be an EST label")));
    }
    Ok(())
}

fn check_username(name: &str) -> Result<()> {
    if name.len() > MAX_USERNAME || name.contains(':') || name.chars().any(char::is_control) {
        return Err(invalid(format!(
            "an EST user name has at most {MAX_USERNAME} bytes, no ':' and no control characters"
        )));
    }
    Ok(())
}

impl Authority {
    /// The EST settings.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:est`; store errors.
    pub async fn est_settings(&self, principal: &Principal) -> Result<EstSettings> {
        principal.require(Permission::ReadEst, "reading the EST settings")?;
        Ok((&self.store.est_config().await?).into())
    }

    /// Checks that `ca_id` can issue and `template_id` exists.
    async fn check_issuing(
        &self,
        ca_id: Option<CaId>,
        template_id: Option<TemplateId>,
    ) -> Result<()> {
        self.usable_issuer(ca_id).await?;
        self.rules(template_id).await?;
        Ok(())
    }

    /// An endpoint's credentials after a change: the new user name and password, or those
    /// kept. A password needs a user name and passes the password policy.
    async fn est_credentials(
        &self,
        username: String,
        password: Option<Option<&Zeroizing<String>>>,
        kept: Option<String>,
        what: &str,
    ) -> Result<(String, Option<String>)> {
        check_username(&username)?;
        let hash = match password {
            Some(Some(p)) => {
                password::check_policy(p, self.policy_now().await.password_min_length)
                    .map_err(|e| invalid(format!("{what}: {e}")))?;
                Some(password::hash(p).await?)
            }
            Some(None) => None,
            None => kept,
        };
        if hash.is_some() && username.is_empty() {
            return Err(invalid(format!("{what}: a password needs a user name")));
        }
        Ok((username, hash))
    }

    /// Changes the EST settings in one audited transaction. Passwords are stored as Argon2id
    /// hashes; the audit record says what changed, never a password.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:est`; [`Error::Invalid`] for a CA that cannot
    /// issue, an unknown template, a bad or repeated label, a user name with a ':', a password
    /// that breaks the policy or has no user name, more than [`MAX_LABELS`] labels.
    pub async fn update_est_settings(
        &self,
        principal: &Principal,
        change: EstSettingsChange,
    ) -> Result<EstSettings> {
        principal.require(Permission::WriteEst, "changing the EST settings")?;
        let before = self.store.est_config().await?;
        let mut after = before.clone();
        let mut details = Vec::new();
        if let Some(enabled) = change.enabled {
            after.enabled = enabled;
        }
        if let Some(ca_id) = change.ca_id {
            after.default.ca_id = ca_id;
        }
        if let Some(template_id) = change.template_id {
            after.default.template_id = template_id;
        }
        if change.ca_id.is_some() || change.template_id.is_some() {
            self.check_issuing(after.default.ca_id, after.default.template_id)
                .await?;
        }
        if change.username.is_some() || change.password.is_some() {
            let (username, hash) = self
                .est_credentials(
                    change.username.unwrap_or(before.default.username.clone()),
                    change.password.as_ref().map(Option::as_ref),
                    before.default.password_hash.clone(),
                    "the default endpoint",
                )
                .await?;
            after.default.username = username;
            after.default.password_hash = hash;
        }
        if let Some(labels) = change.labels {
            if labels.len() > MAX_LABELS {
                return Err(invalid(format!("at most {MAX_LABELS} EST labels")));
            }
            let mut rows: Vec<EstLabelRow> = Vec::with_capacity(labels.len());
            for input in labels {
                check_label(&input.label)?;
                if rows.iter().any(|r| r.label == input.label) {
                    return Err(invalid(format!(
                        "EST label '{}' is given twice",
                        input.label
                    )));
                }
                let what = format!("EST label '{}'", input.label);
                self.check_issuing(input.ca_id, input.template_id)
                    .await
                    .map_err(|e| match e {
                        Error::Invalid(m) => invalid(format!("{what}: {m}")),
                        other => other,
                    })?;
                let kept = before
                    .labels
                    .iter()
                    .find(|l| l.label == input.label)
                    .and_then(|l| l.endpoint.password_hash.clone());
                let (username, password_hash) = self
                    .est_credentials(
                        input.username,
                        input.password.as_ref().map(Option::as_ref),
                        kept,
                        &what,
                    )
                    .await?;
                rows.push(EstLabelRow {
                    label: input.label,
                    endpoint: EstEndpoint {
                        ca_id: input.ca_id,
                        template_id: input.template_id,
                        username,
                        password_hash,
                    },
                });
            }
            rows.sort_by(|a, b| a.label.cmp(&b.label));
            after.labels = rows;
        }
        if after == before {
            return Ok((&before).into());
        }
        describe(&before, &after, &mut details);
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        tx.set_est_config(&after, now).await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "est_settings_updated",
                "est_settings",
                1,
                details.join(", "),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.est.forget();
        Ok((&self.store.est_config().await?).into())
    }

    /// EST statistics: certificates from the inventory (every node's), and per endpoint the
    /// certificates issued and the refusals from the audit log.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `read:est`; store errors.
    pub async fn est_stats(&self, principal: &Principal) -> Result<EstStats> {
        principal.require(Permission::ReadEst, "reading EST statistics")?;
        let config = self.store.est_config().await?;
        let since = self.now() - Duration::DAY;
        let (issued, issued_last_24h) = self.store.est_certificates(since).await?;
        let names = std::iter::once(DEFAULT_ENDPOINT.to_owned())
            .chain(config.labels.iter().map(|l| l.label.clone()));
        let mut labels = Vec::new();
        for label in names {
            let username = format!("est:{label}");
            let (issued, issued_last_24h) = self
                .store
                .est_audit_count(
                    &username,
                    &["certificate_issued", "certificate_renewed"],
                    since,
                )
                .await?;
            let (failures, failures_last_24h) = self
                .store
                .est_audit_count(&username, &[REFUSED], since)
                .await?;
            labels.push(EstLabelStats {
                label,
                issued,
                issued_last_24h,
                failures,
                failures_last_24h,
            });
        }
        Ok(EstStats {
            enabled: config.enabled,
            issued,
            issued_last_24h,
            labels,
        })
    }
}

/// What changed from `before` to `after`, for the audit record: never a password or a hash.
fn describe(before: &EstConfigRow, after: &EstConfigRow, details: &mut Vec<String>) {
    if before.enabled != after.enabled {
        details.push(format!("enabled {}", after.enabled));
    }
    endpoint_changes("default endpoint", &before.default, &after.default, details);
    for label in &after.labels {
        match before.labels.iter().find(|l| l.label == label.label) {
            Some(old) => endpoint_changes(
                &format!("label '{}'", label.label),
                &old.endpoint,
                &label.endpoint,
                details,
            ),
            None => details.push(format!(
                "label '{}' added (CA {}, template {}, user '{}'{})",
                label.label,
                label
                    .endpoint
                    .ca_id
                    .map_or("default".into(), |c| c.to_string()),
                label
                    .endpoint
                    .template_id
                    .map_or("none".into(), |t| t.to_string()),
                label.endpoint.username,
                if label.endpoint.password_hash.is_some() {
                    ", password set"
                } else {
                    ""
                }
            )),
        }
    }
    for old in &before.labels {
        if !after.labels.iter().any(|l| l.label == old.label) {
            details.push(format!("label '{}' removed", old.label));
        }
    }
}

fn endpoint_changes(what: &str, before: &EstEndpoint, after: &EstEndpoint, out: &mut Vec<String>) {
    if before.ca_id != after.ca_id {
        out.push(format!(
            "{what} CA {}",
            after.ca_id.map_or("default".into(), |c| c.to_string())
        ));
    }
    if before.template_id != after.template_id {
        out.push(format!(
            "{what} template {}",
            after.template_id.map_or("none".into(), |t| t.to_string())
        ));
    }
    if before.username != after.username {
        out.push(format!("{what} user '{}'", after.username));
    }
    match (&before.password_hash, &after.password_hash) {
        (b, a) if b == a => {}
        (_, Some(_)) => out.push(format!("{what} password changed")),
        (_, None) => out.push(format!("{what} password removed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_url_safe_and_not_reserved() {
        for good in ["a", "router-1", "lab_2.x", &"x".repeat(MAX_LABEL)] {
            assert!(check_label(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "default",
            "..",
            "a/b",
            "a b",
            "é",
            &"x".repeat(MAX_LABEL + 1),
        ] {
            assert!(check_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_output_leaves_passwords_out() {
        let change = EstSettingsChange {
            password: Some(Some(Zeroizing::new("hunter2 hunter2".into()))),
            labels: Some(vec![EstLabelInput {
                label: "lab".into(),
                ca_id: None,
                template_id: None,
                username: "lab".into(),
                password: Some(Some(Zeroizing::new("swordfish swordfish".into()))),
            }]),
            ..EstSettingsChange::default()
        };
        let shown = format!("{change:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("swordfish"),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"), "{shown}");
        let caller = super::super::EstCaller {
            basic: Some(("dev".into(), Zeroizing::new("hunter2 hunter2".into()))),
            ..Default::default()
        };
        let shown = format!("{caller:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("dev"),
            "{shown}"
        );
    }

    #[test]
    fn user_names_fit_in_basic_credentials() {
        assert!(check_username("device-enroller").is_ok());
        assert!(check_username("a:b").is_err());
        assert!(check_username("a\nb").is_err());
    }
}
