//! Stored templates: reading, creating, changing, deleting and importing them, each change
//! audited.

use store::{NewTemplate, TemplateId, TemplateRow};

use super::{ImportCounts, Rules, Template, TemplateSpec};
use crate::audit::Event;
use crate::renewal::{RenewalPolicy, describe};
use crate::{Authority, Error, Permission, Principal, Result};

impl Template {
    fn from_row(row: TemplateRow) -> Result<Self> {
        let mut spec: TemplateSpec = serde_json::from_str(&row.body).map_err(|e| {
            Error::Internal(format!("stored template {} does not parse: {e}", row.id))
        })?;
        spec.name = row.name;
        spec.description = row.description;
        Ok(Self {
            id: row.id,
            builtin: row.builtin,
            spec,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl TemplateSpec {
    pub(super) fn to_row(&self, builtin: bool) -> Result<NewTemplate> {
        let body = serde_json::to_string(self)
            .map_err(|e| Error::Internal(format!("cannot write the template: {e}")))?;
        Ok(NewTemplate {
            name: self.name.trim().to_owned(),
            description: self.description.clone(),
            builtin,
            body,
        })
    }
}

impl Authority {
    /// Every template, by id.
    ///
    /// # Errors
    /// Store errors.
    pub async fn templates(&self) -> Result<Vec<Template>> {
        self.store
            .templates()
            .await?
            .into_iter()
            .map(Template::from_row)
            .collect()
    }

    /// Template `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn template(&self, id: TemplateId) -> Result<Template> {
        let row = self
            .store
            .template(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("template {id} does not exist")))?;
        Template::from_row(row)
    }

    /// The policy for an issuance request naming `template_id`, or the unrestricted one.
    /// A template that does not exist is a mistake in the request, not a missing resource.
    pub(crate) async fn rules(&self, template_id: Option<TemplateId>) -> Result<Rules> {
        let Some(id) = template_id else {
            return Ok(Rules::unrestricted());
        };
        let template = self.template(id).await.map_err(|e| match e {
            Error::NotFound(m) => Error::Invalid(m),
            other => other,
        })?;
        template.spec.rules(id)
    }

    /// Creates a template.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:templates`; [`Error::Invalid`] for a broken rule;
    /// [`Error::Conflict`] when the name is taken.
    pub async fn create_template(
        &self,
        principal: &Principal,
        spec: TemplateSpec,
    ) -> Result<Template> {
        principal.require(Permission::WriteTemplates, "creating templates")?;
        spec.check()?;
        let row = spec.to_row(false)?;
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let id = tx
            .insert_template(&row, now)
            .await
            .map_err(name_taken(&row.name))?;
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "template_created",
                "template",
                id,
                format!("'{}'", row.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.template(id).await
    }

    /// Replaces template `id`'s name and rules.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:templates`; [`Error::NotFound`]; [`Error::Conflict`]
    /// for a built-in template or a name that is taken; [`Error::Invalid`] for a broken rule.
    pub async fn update_template(
        &self,
        principal: &Principal,
        id: TemplateId,
        spec: TemplateSpec,
    ) -> Result<Template> {
        principal.require(Permission::WriteTemplates, "changing templates")?;
        let before = self.template(id).await?;
        if before.builtin {
            return Err(read_only(&before.spec.name));
        }
        let renewal = spec.rules(id)?.renewal;
        let row = spec.to_row(false)?;
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        if !tx
            .update_template(id, &row, now)
            .await
            .map_err(name_taken(&row.name))?
        {
            return Err(Error::NotFound(format!("template {id} does not exist")));
        }
        let before_renewal = before.spec.renewal_policy()?;
        let mut detail = String::new();
        if renewal != before_renewal {
            // Its certificates follow its policy, except those with a policy of their own.
            let changed = tx
                .apply_template_renewal(id, RenewalPolicy::stored_at(renewal), now)
                .await?;
            detail = format!(
                ", auto-renewal {} (was {}), {changed} certificates rescheduled",
                describe(renewal),
                describe(before_renewal)
            );
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "template_updated",
                "template",
                id,
                format!("'{}' (was '{}'){detail}", row.name, before.spec.name),
            ),
        ))
        .await?;
        tx.commit().await?;
        self.template(id).await
    }

    /// Deletes template `id`. Certificates issued from it stay, unlinked.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `delete:templates`; [`Error::NotFound`]; [`Error::Conflict`]
    /// for a built-in template.
    pub async fn delete_template(&self, principal: &Principal, id: TemplateId) -> Result<()> {
        principal.require(Permission::DeleteTemplates, "deleting templates")?;
        let before = self.template(id).await?;
        if before.builtin {
            return Err(read_only(&before.spec.name));
        }
        let mut tx = self.store.begin_write().await?;
        if !tx.delete_template(id).await? {
            return Err(Error::NotFound(format!("template {id} does not exist")));
        }
        tx.audit(&self.entry_by(
            principal,
            Event::new(
                "template_deleted",
                "template",
                id,
                format!("'{}'", before.spec.name),
            ),
        ))
        .await?;
        Ok(tx.commit().await?)
    }

    /// Imports templates in one transaction: all of them or, if one is invalid, none. A name
    /// that exists is replaced with `update_existing`, skipped otherwise; built-in templates
    /// are always skipped.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `write:templates`; [`Error::Invalid`] naming the first
    /// broken template.
    pub async fn import_templates(
        &self,
        principal: &Principal,
        specs: Vec<TemplateSpec>,
        update_existing: bool,
    ) -> Result<ImportCounts> {
        principal.require(Permission::WriteTemplates, "importing templates")?;
        let mut rows = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            spec.check()
                .map_err(|e| Error::Invalid(format!("template {} of the file: {e}", i + 1)))?;
            rows.push(spec.to_row(false)?);
        }
        let now = self.now();
        let mut counts = ImportCounts::default();
        let mut tx = self.store.begin_write().await?;
        for (row, spec) in rows.iter().zip(&specs) {
            let (id, action) = match tx.template_named(&row.name).await? {
                Some(existing) if existing.builtin || !update_existing => {
                    counts.skipped += 1;
                    continue;
                }
                Some(existing) => {
                    let id = existing.id;
                    let before = Template::from_row(existing)?.spec.renewal_policy()?;
                    tx.update_template(id, row, now).await?;
                    let after = spec.renewal_policy()?;
                    if after != before {
                        tx.apply_template_renewal(id, RenewalPolicy::stored_at(after), now)
                            .await?;
                    }
                    counts.updated += 1;
                    (id, "template_updated")
                }
                None => {
                    counts.imported += 1;
                    (
                        tx.insert_template(row, now)
                            .await
                            .map_err(name_taken(&row.name))?,
                        "template_created",
                    )
                }
            };
            tx.audit(&self.entry_by(
                principal,
                Event::new(action, "template", id, format!("'{}' (imported)", row.name)),
            ))
            .await?;
        }
        tx.commit().await?;
        Ok(counts)
    }
}

fn read_only(name: &str) -> Error {
    Error::Conflict(format!(
        "'{name}' is a built-in template and cannot be changed or deleted; export it and import \
         a copy under another name"
    ))
}

fn name_taken(name: &str) -> impl FnOnce(store::Error) -> Error + '_ {
    move |e| match e {
        store::Error::Conflict(_) => Error::Conflict(format!("a template named '{name}' exists")),
        other => other.into(),
    }
}
