//! What operators record about a certificate beyond what it says: owner, team, tags,
//! description, and the places it is deployed. Changing any of it needs
//! `write:certificates` and is audited; the certificate itself never changes.

use store::{CertificateChange, CertificateId, CertificateRow, LocationFields, LocationRow};

use crate::audit::Event;
use crate::{Authority, Error, Permission, Principal, Result};

/// Most tags one certificate carries.
pub const MAX_TAGS: i64 = 32;
/// Most characters in a tag.
pub const MAX_TAG_CHARS: usize = 64;
/// Most locations recorded for one certificate.
pub const MAX_LOCATIONS: i64 = 100;
/// Most characters in a description or a location's note.
const MAX_TEXT_CHARS: usize = 1000;
/// Most characters in a location's host (a DNS name's limit) and path.
const MAX_HOST_CHARS: usize = 253;
const MAX_PATH_CHARS: usize = 1024;

/// `tag` as stored (lower case), or why it cannot be one: 1 to [`MAX_TAG_CHARS`] letters,
/// digits and `-_.:/=@`, so that a tag reads the same in a URL, a CSV cell and a filter.
///
/// # Errors
/// [`Error::Invalid`] naming the tag.
pub fn tag(tag: &str) -> Result<String> {
    let lower = tag.trim().to_lowercase();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:/=@".contains(c);
    if lower.is_empty() || lower.chars().count() > MAX_TAG_CHARS || !lower.chars().all(allowed) {
        return Err(Error::Invalid(format!(
            "tag '{}' must be 1 to {MAX_TAG_CHARS} letters, digits or -_.:/=@",
            tag.chars().take(MAX_TAG_CHARS + 1).collect::<String>()
        )));
    }
    Ok(lower)
}

/// `change` with its tags as stored, each once, and its description within bounds.
fn checked(change: &CertificateChange) -> Result<CertificateChange> {
    let tags = |list: &[String]| -> Result<Vec<String>> {
        // No certificate holds more, so a longer list is refused before any of it is read.
        if list.len() > MAX_TAGS as usize {
            return Err(Error::Invalid(format!(
                "a certificate carries at most {MAX_TAGS} tags"
            )));
        }
        let mut tags = list.iter().map(|t| tag(t)).collect::<Result<Vec<_>>>()?;
        tags.sort();
        tags.dedup();
        Ok(tags)
    };
    if let Some(Some(text)) = &change.description
        && text.chars().count() > MAX_TEXT_CHARS
    {
        return Err(Error::Invalid(format!(
            "description must be at most {MAX_TEXT_CHARS} characters"
        )));
    }
    let change = CertificateChange {
        tags: change.tags.as_deref().map(tags).transpose()?,
        add_tags: tags(&change.add_tags)?,
        remove_tags: tags(&change.remove_tags)?,
        ..change.clone()
    };
    if change
        .add_tags
        .iter()
        .any(|t| change.remove_tags.contains(t))
    {
        return Err(Error::Invalid(
            "a tag cannot be both added and removed".into(),
        ));
    }
    Ok(change)
}

/// `fields` trimmed, or why they cannot name a place.
fn location_fields(fields: &LocationFields) -> Result<LocationFields> {
    let host = fields.host.trim();
    if host.is_empty()
        || host.chars().count() > MAX_HOST_CHARS
        || host.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::Invalid(format!(
            "host must be 1 to {MAX_HOST_CHARS} characters without spaces"
        )));
    }
    if fields.port == Some(0) {
        return Err(Error::Invalid("port must be from 1 to 65535".into()));
    }
    let text = |name: &str, value: &Option<String>, max: usize| -> Result<Option<String>> {
        let value = value.as_deref().map(str::trim).filter(|v| !v.is_empty());
        if value.is_some_and(|v| v.chars().count() > max || v.chars().any(char::is_control)) {
            return Err(Error::Invalid(format!(
                "{name} must be at most {max} characters, without control characters"
            )));
        }
        Ok(value.map(str::to_owned))
    };
    Ok(LocationFields {
        host: host.to_owned(),
        port: fields.port,
        path: text("path", &fields.path, MAX_PATH_CHARS)?,
        note: text("note", &fields.note, MAX_TEXT_CHARS)?,
    })
}

fn may_write(principal: &Principal) -> Result<()> {
    if principal.can(Permission::WriteCertificates) {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "changing a certificate's records needs write:certificates".into(),
        ))
    }
}

impl Authority {
    /// Applies `change` to certificate `id`'s records and returns the certificate as it now
    /// is.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:certificates`; [`Error::NotFound`];
    /// [`Error::Invalid`] for a bad tag or description, an owner or team that does not exist,
    /// or more than [`MAX_TAGS`] tags.
    pub async fn change_certificate(
        &self,
        principal: &Principal,
        id: CertificateId,
        change: &CertificateChange,
    ) -> Result<CertificateRow> {
        may_write(principal)?;
        let change = checked(change)?;
        if let Some(Some(owner)) = change.owner_id
            && self.store.user(owner).await?.is_none()
        {
            return Err(Error::Invalid(format!("user {owner} does not exist")));
        }
        if let Some(Some(team)) = change.team_id
            && self.store.group(team).await?.is_none()
        {
            return Err(Error::Invalid(format!("group {team} does not exist")));
        }
        let mut tx = self.store.begin_write().await?;
        if !tx.change_certificate(id, &change, self.now()).await? {
            return Err(Error::NotFound(format!("certificate {id} not found")));
        }
        if tx.count_certificate_tags(id).await? > MAX_TAGS {
            return Err(Error::Invalid(format!(
                "a certificate carries at most {MAX_TAGS} tags"
            )));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new("certificate_updated", "certificate", id, describe(&change)),
        ))
        .await?;
        tx.commit().await?;
        self.certificate(id).await
    }

    /// Where certificate `id` is deployed.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such certificate.
    pub async fn certificate_locations(&self, id: CertificateId) -> Result<Vec<LocationRow>> {
        self.certificate(id).await?;
        Ok(self.store.certificate_locations(id).await?)
    }

    /// Records that certificate `id` is deployed at `fields`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:certificates`; [`Error::NotFound`];
    /// [`Error::Invalid`] for bad fields or more than [`MAX_LOCATIONS`] locations.
    pub async fn add_certificate_location(
        &self,
        principal: &Principal,
        id: CertificateId,
        fields: &LocationFields,
    ) -> Result<LocationRow> {
        may_write(principal)?;
        let fields = location_fields(fields)?;
        self.certificate(id).await?;
        let mut tx = self.store.begin_write().await?;
        if tx.count_certificate_locations(id).await? >= MAX_LOCATIONS {
            return Err(Error::Invalid(format!(
                "a certificate has at most {MAX_LOCATIONS} locations"
            )));
        }
        let location_id = tx
            .insert_certificate_location(id, &fields, self.now())
            .await?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "certificate_location_added",
                "certificate",
                id,
                place(&fields),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.certificate_location(id, location_id).await
    }

    /// Location `location_id` of certificate `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the certificate has no such location.
    pub async fn certificate_location(
        &self,
        id: CertificateId,
        location_id: i64,
    ) -> Result<LocationRow> {
        self.certificate_locations(id)
            .await?
            .into_iter()
            .find(|l| l.id == location_id)
            .ok_or_else(|| location_not_found(id, location_id))
    }

    /// Replaces location `location_id` of certificate `id` with `fields`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:certificates`; [`Error::NotFound`] when the
    /// certificate has no such location; [`Error::Invalid`] for bad fields.
    pub async fn update_certificate_location(
        &self,
        principal: &Principal,
        id: CertificateId,
        location_id: i64,
        fields: &LocationFields,
    ) -> Result<LocationRow> {
        may_write(principal)?;
        let fields = location_fields(fields)?;
        let mut tx = self.store.begin_write().await?;
        let location = tx
            .update_certificate_location(id, location_id, &fields, self.now())
            .await?
            .ok_or_else(|| location_not_found(id, location_id))?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "certificate_location_updated",
                "certificate",
                id,
                place(&fields),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(location)
    }

    /// Forgets location `location_id` of certificate `id`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:certificates`; [`Error::NotFound`] when the
    /// certificate has no such location.
    pub async fn delete_certificate_location(
        &self,
        principal: &Principal,
        id: CertificateId,
        location_id: i64,
    ) -> Result<()> {
        may_write(principal)?;
        let mut tx = self.store.begin_write().await?;
        let location = tx
            .delete_certificate_location(id, location_id)
            .await?
            .ok_or_else(|| location_not_found(id, location_id))?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "certificate_location_deleted",
                "certificate",
                id,
                place(&LocationFields {
                    host: location.host,
                    port: location.port,
                    path: location.path,
                    note: None,
                }),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn location_not_found(id: CertificateId, location_id: i64) -> Error {
    Error::NotFound(format!("certificate {id} has no location {location_id}"))
}

/// `host:port/path`, for the audit log.
fn place(fields: &LocationFields) -> String {
    let port = fields.port.map(|p| format!(":{p}")).unwrap_or_default();
    let path = fields
        .path
        .as_deref()
        .map(|p| format!(" {p}"))
        .unwrap_or_default();
    format!("{}{port}{path}", fields.host)
}

/// What a change set, for the audit log.
fn describe(change: &CertificateChange) -> String {
    let id = |v: Option<i64>| v.map_or_else(|| "none".to_owned(), |v| v.to_string());
    let mut parts = Vec::new();
    if let Some(owner) = change.owner_id {
        parts.push(format!("owner {}", id(owner)));
    }
    if let Some(team) = change.team_id {
        parts.push(format!("team {}", id(team)));
    }
    if change.description.is_some() {
        parts.push("description".to_owned());
    }
    if let Some(tags) = &change.tags {
        parts.push(format!("tags [{}]", tags.join(" ")));
    }
    if !change.add_tags.is_empty() {
        parts.push(format!("tags +[{}]", change.add_tags.join(" ")));
    }
    if !change.remove_tags.is_empty() {
        parts.push(format!("tags -[{}]", change.remove_tags.join(" ")));
    }
    if parts.is_empty() {
        "nothing".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_kept_lower_case_and_refused_outside_their_alphabet() {
        assert_eq!(tag(" Prod ").ok().as_deref(), Some("prod"));
        assert_eq!(tag("team:web/eu-1").ok().as_deref(), Some("team:web/eu-1"));
        for bad in ["", "two words", "a,b", "naïve", "x\u{7}", &"a".repeat(65)] {
            assert!(tag(bad).is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn a_change_names_each_tag_once_and_never_both_ways() {
        let change = CertificateChange {
            add_tags: vec!["B".into(), "a".into(), "b".into()],
            ..CertificateChange::default()
        };
        assert_eq!(
            checked(&change).map(|c| c.add_tags).ok(),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        let both = CertificateChange {
            add_tags: vec!["a".into()],
            remove_tags: vec!["A".into()],
            ..CertificateChange::default()
        };
        assert!(checked(&both).is_err());
        let long = CertificateChange {
            description: Some(Some("x".repeat(1001))),
            ..CertificateChange::default()
        };
        assert!(checked(&long).is_err());
        let many = CertificateChange {
            remove_tags: (0..=MAX_TAGS).map(|i| format!("t{i}")).collect(),
            ..CertificateChange::default()
        };
        assert!(
            checked(&many).is_err(),
            "more tags than one certificate holds"
        );
    }

    #[test]
    fn a_location_needs_a_host_and_a_real_port() {
        let at = |host: &str, port| LocationFields {
            host: host.into(),
            port,
            path: Some("  ".into()),
            note: None,
        };
        let ok = location_fields(&at(" web1.example.com ", Some(443))).ok();
        assert_eq!(
            ok.as_ref().map(|l| l.host.as_str()),
            Some("web1.example.com")
        );
        assert_eq!(ok.and_then(|l| l.path), None, "a blank path is none");
        assert!(location_fields(&at("", None)).is_err());
        assert!(location_fields(&at("two hosts", None)).is_err());
        assert!(location_fields(&at("web1", Some(0))).is_err());
    }
}
