//! `/templates`: certificate templates, their JSON export and import.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::{BulkIds, BulkResult, bulk};
use crate::App;
use crate::envelope::{Envelope, attachment, created, no_content, ok};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller, Id, Upload, file_or_text};
use authority::{ImportCounts, Template, TemplateId, TemplateSpec};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(export_one))
        .routes(routes!(export_all))
        .routes(routes!(import))
        .routes(routes!(bulk_delete))
}

/// A template as the API shows it: its rules (as written to create one) and its bookkeeping.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    pub id: i64,
    /// Shipped with certmint: read-only.
    pub builtin: bool,
    /// name, description, validity_days, max_validity_days, key_algorithm, key_size, curve,
    /// allowed_key_types, key_usage, extended_key_usage, basic_constraints {ca, path_length},
    /// san_types, require_san, allowed_domains, ocsp_no_check; auto-renewal of the certificates
    /// whose key certmint holds: auto_renew, renew_before_days or renew_lifetime_fraction (a
    /// third of the lifetime when neither), renew_key_policy (`same_key` or `rekey`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub spec: TemplateSpec,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Template> for TemplateView {
    fn from(t: Template) -> Self {
        Self {
            id: t.id.0,
            builtin: t.builtin,
            spec: t.spec,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// Every template, built-in ones first.
#[utoipa::path(get, path = "/templates", tag = "templates",
    security(("session" = ["read:templates"]), ("api_key" = ["read:templates"])),
    responses((status = 200, description = "Templates", body = Envelope<Vec<TemplateView>>)))]
async fn list(State(app): State<App>) -> ApiResult<Response> {
    let templates = app.authority.templates().await?;
    Ok(ok(templates
        .into_iter()
        .map(TemplateView::from)
        .collect::<Vec<_>>()))
}

/// Create a template. Every rule is checked; unknown fields are refused.
#[utoipa::path(post, path = "/templates", tag = "templates",
    security(("session" = ["write:templates"]), ("api_key" = ["write:templates"])),
    request_body(content = Object, description = "name and rules, as TemplateView shows them"),
    responses((status = 201, description = "Created", body = Envelope<TemplateView>),
              (status = 409, description = "The name is taken", body = ErrorBody),
              (status = 422, description = "A rule is wrong", body = ErrorBody)))]
async fn create(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(spec): ApiJson<TemplateSpec>,
) -> ApiResult<Response> {
    let template = app.authority.create_template(&principal, spec).await?;
    Ok(created(TemplateView::from(template), "Template created"))
}

/// One template.
#[utoipa::path(get, path = "/templates/{id}", tag = "templates",
    security(("session" = ["read:templates"]), ("api_key" = ["read:templates"])),
    params(("id" = i64, Path, description = "Template id")),
    responses((status = 200, description = "Template", body = Envelope<TemplateView>),
              (status = 404, description = "No such template", body = ErrorBody)))]
async fn get(State(app): State<App>, Id(id): Id) -> ApiResult<Response> {
    Ok(ok(TemplateView::from(
        app.authority.template(TemplateId(id)).await?,
    )))
}

/// Change a template: the fields given replace the current ones, the others stay.
#[utoipa::path(put, path = "/templates/{id}", tag = "templates",
    security(("session" = ["write:templates"]), ("api_key" = ["write:templates"])),
    params(("id" = i64, Path, description = "Template id")),
    request_body(content = Object, description = "Any of the fields of a template"),
    responses((status = 200, description = "Updated", body = Envelope<TemplateView>),
              (status = 404, description = "No such template", body = ErrorBody),
              (status = 409, description = "Built in, or the name is taken", body = ErrorBody),
              (status = 422, description = "A rule is wrong", body = ErrorBody)))]
async fn update(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(changes): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<Response> {
    let current = app.authority.template(TemplateId(id)).await?;
    let mut merged = match serde_json::to_value(&current.spec) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => return Err(authority::Error::Internal("template is not an object".into()).into()),
    };
    merged.extend(changes);
    let spec: TemplateSpec = serde_json::from_value(serde_json::Value::Object(merged))
        .map_err(|e| ApiError::invalid(format!("invalid template: {e}")))?;
    let template = app
        .authority
        .update_template(&principal, TemplateId(id), spec)
        .await?;
    Ok(ok(TemplateView::from(template)))
}

/// Delete a template; certificates issued from it stay.
#[utoipa::path(delete, path = "/templates/{id}", tag = "templates",
    security(("session" = ["delete:templates"]), ("api_key" = ["delete:templates"])),
    params(("id" = i64, Path, description = "Template id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such template", body = ErrorBody),
              (status = 409, description = "Built in", body = ErrorBody)))]
async fn delete(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority
        .delete_template(&principal, TemplateId(id))
        .await?;
    Ok(no_content())
}

/// Delete several templates; built-in ones fail.
#[utoipa::path(post, path = "/templates/bulk/delete", tag = "templates",
    security(("session" = ["delete:templates"]), ("api_key" = ["delete:templates"])),
    request_body = BulkIds,
    responses((status = 200, description = "What was deleted", body = Envelope<BulkResult>),
              (status = 422, description = "No ids, too many, or repeated", body = ErrorBody)))]
async fn bulk_delete(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<BulkIds>,
) -> ApiResult<Response> {
    let result = bulk(&body.ids, |id| {
        let (app, principal) = (app.clone(), principal.clone());
        async move {
            app.authority
                .delete_template(&principal, TemplateId(id))
                .await
        }
    })
    .await?;
    Ok(ok(result))
}

fn json_file(file_name: &str, value: &impl Serialize) -> ApiResult<Response> {
    let body = serde_json::to_vec_pretty(value)
        .map_err(|e| authority::Error::Internal(format!("cannot write JSON: {e}")))?;
    Ok(attachment("application/json", file_name, body))
}

/// Download a template as a JSON file that `/templates/import` reads.
#[utoipa::path(get, path = "/templates/{id}/export", tag = "templates",
    security(("session" = ["read:templates"]), ("api_key" = ["read:templates"])),
    params(("id" = i64, Path, description = "Template id")),
    responses((status = 200, description = "The JSON file"),
              (status = 404, description = "No such template", body = ErrorBody)))]
async fn export_one(State(app): State<App>, Id(id): Id) -> ApiResult<Response> {
    let template = app.authority.template(TemplateId(id)).await?;
    json_file(
        &format!("template-{}.json", template.spec.name),
        &template.spec,
    )
}

/// Download every template as one JSON array.
#[utoipa::path(get, path = "/templates/export", tag = "templates",
    security(("session" = ["read:templates"]), ("api_key" = ["read:templates"])),
    responses((status = 200, description = "The JSON file")))]
async fn export_all(State(app): State<App>) -> ApiResult<Response> {
    let specs: Vec<TemplateSpec> = app
        .authority
        .templates()
        .await?
        .into_iter()
        .map(|t| t.spec)
        .collect();
    json_file("templates.json", &specs)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateImport {
    /// A template or an array of them, as JSON text (with a JSON body; a multipart body sends
    /// the file in the part `file` instead).
    pub json_content: Option<String>,
    /// Replace templates whose name exists (built-in ones never are).
    #[serde(default)]
    pub update_existing: bool,
}

/// Import templates from JSON (one object or an array): all or nothing.
#[utoipa::path(post, path = "/templates/import", tag = "templates",
    security(("session" = ["write:templates"]), ("api_key" = ["write:templates"])),
    request_body(content = TemplateImport, description = "JSON, or multipart/form-data with `file` and `update_existing`"),
    responses((status = 200, description = "What was imported", body = Envelope<ImportCountsView>),
              (status = 422, description = "Not JSON, or a template is wrong", body = ErrorBody)))]
async fn import(
    State(app): State<App>,
    Caller(principal): Caller,
    upload: Upload<TemplateImport>,
) -> ApiResult<Response> {
    let text = file_or_text(upload.file, upload.fields.json_content, "json_content")?;
    let value: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| ApiError::invalid(format!("the file is not JSON: {e}")))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        single => vec![single],
    };
    let specs = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            serde_json::from_value::<TemplateSpec>(item)
                .map_err(|e| ApiError::invalid(format!("template {} of the file: {e}", i + 1)))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let counts = app
        .authority
        .import_templates(&principal, specs, upload.fields.update_existing)
        .await?;
    Ok(ok(ImportCountsView::from(counts)))
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportCountsView {
    pub imported: usize,
    pub updated: usize,
    pub skipped: usize,
}

impl From<ImportCounts> for ImportCountsView {
    fn from(c: ImportCounts) -> Self {
        Self {
            imported: c.imported,
            updated: c.updated,
            skipped: c.skipped,
        }
    }
}
