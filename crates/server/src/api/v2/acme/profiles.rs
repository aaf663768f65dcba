//! `/acme/profiles`: the profiles, one directory each.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::v2::views::nullable;
use crate::envelope::{Envelope, created, no_content, ok, ok_with};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller, Id};
use crate::{App, Shared};
use authority::acme::AcmeProfileInput;
use authority::{AcmeProfileFields, AcmeProfileRow, CaId, TemplateId};

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(profiles, create_profile))
        .routes(routes!(profile, update_profile, delete_profile))
}

/// The directory path of a profile: the default one's at `/acme/directory`.
fn directory_path(p: &AcmeProfileRow) -> String {
    if p.is_default {
        "/acme/directory".to_owned()
    } else {
        format!("/acme/{}/directory", p.name)
    }
}

/// An ACME profile: one directory, bound to a CA, a template, a validity and options.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    pub id: i64,
    /// The name in its URLs.
    pub name: String,
    pub description: String,
    /// Whether its directory serves.
    pub enabled: bool,
    /// Whether it is the one at `/acme/directory`.
    pub is_default: bool,
    /// The issuing CA; null is the default CA.
    pub ca_id: Option<i64>,
    /// The template requests are checked against; null is none.
    pub template_id: Option<i64>,
    pub validity_days: i64,
    /// Whether new accounts need an external account binding.
    pub require_eab: bool,
    /// DNS suffixes (`example.com`; `.example.com` for names under it only) and IP networks;
    /// empty allows any.
    pub allowed_identifiers: Vec<String>,
    /// Offered challenge types.
    pub challenge_types: Vec<String>,
    pub terms_of_service: String,
    pub website: String,
    /// Its directory: its URL under `external_url`, else its path on the HTTPS listener.
    pub directory: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl ProfileView {
    /// The view of `p`, its directory as `app` shows links.
    pub fn new(p: AcmeProfileRow, app: &Shared) -> Self {
        Self {
            directory: app.link(&directory_path(&p)),
            id: p.id,
            name: p.name,
            description: p.description,
            enabled: p.enabled,
            is_default: p.is_default,
            ca_id: p.ca_id.map(i64::from),
            template_id: p.template_id.map(i64::from),
            validity_days: p.validity_days,
            require_eab: p.require_eab,
            allowed_identifiers: p.allowed_identifiers,
            challenge_types: p.challenge_types,
            terms_of_service: p.terms_of_service,
            website: p.website,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A profile to create (`name` required), or the fields of one to change (absent fields
/// stay; `name` cannot change).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    /// 1 to 63 lowercase letters, digits and hyphens; not a word of ACME's URLs (`directory`,
    /// `acct`, `order`, `new-order`, …).
    pub name: Option<String>,
    pub description: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
    /// A CA that can issue; null (the default) is the default CA.
    #[serde(default, deserialize_with = "nullable")]
    pub ca_id: Option<Option<i64>>,
    /// A template for end-entity certificates; null (the default) is none.
    #[serde(default, deserialize_with = "nullable")]
    pub template_id: Option<Option<i64>>,
    /// 1 to 3650 and within the template; default 90.
    pub validity_days: Option<i64>,
    /// Default false.
    pub require_eab: Option<bool>,
    /// Default empty (any).
    pub allowed_identifiers: Option<Vec<String>>,
    /// A non-empty subset of http-01, dns-01, tls-alpn-01; default all three.
    pub challenge_types: Option<Vec<String>>,
    /// Empty or an http(s) URL.
    pub terms_of_service: Option<String>,
    /// Empty or an http(s) URL.
    pub website: Option<String>,
}

impl From<ProfileBody> for AcmeProfileInput {
    fn from(b: ProfileBody) -> Self {
        Self {
            name: b.name,
            fields: AcmeProfileFields {
                description: b.description,
                enabled: b.enabled,
                ca_id: b.ca_id.map(|ca| ca.map(CaId)),
                template_id: b.template_id.map(|t| t.map(TemplateId)),
                validity_days: b.validity_days,
                require_eab: b.require_eab,
                allowed_identifiers: b.allowed_identifiers,
                challenge_types: b.challenge_types,
                terms_of_service: b.terms_of_service,
                website: b.website,
            },
        }
    }
}

/// Every ACME profile, by name.
#[utoipa::path(get, path = "/acme/profiles", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    responses((status = 200, description = "Profiles", body = Envelope<Vec<ProfileView>>)))]
async fn profiles(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let profiles = app.authority.acme_profiles(&principal).await?;
    Ok(ok(profiles
        .into_iter()
        .map(|p| ProfileView::new(p, &app))
        .collect::<Vec<_>>()))
}

/// Create an ACME profile; its directory serves at once at `/acme/{name}/directory`.
#[utoipa::path(post, path = "/acme/profiles", tag = "acme-admin",
    security(("session" = ["write:acme"]), ("api_key" = ["write:acme"])),
    request_body = ProfileBody,
    responses((status = 201, description = "Created", body = Envelope<ProfileView>),
              (status = 409, description = "The name is taken", body = ErrorBody),
              (status = 422, description = "A field is wrong", body = ErrorBody)))]
async fn create_profile(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(body): ApiJson<ProfileBody>,
) -> ApiResult<Response> {
    let profile = app
        .authority
        .create_acme_profile(&principal, body.into())
        .await?;
    Ok(created(
        ProfileView::new(profile, &app),
        "ACME profile created",
    ))
}

/// One ACME profile.
#[utoipa::path(get, path = "/acme/profiles/{id}", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    params(("id" = i64, Path, description = "Profile id")),
    responses((status = 200, description = "Profile", body = Envelope<ProfileView>),
              (status = 404, description = "No such profile", body = ErrorBody)))]
async fn profile(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let profile = app.authority.acme_profile_details(&principal, id).await?;
    Ok(ok(ProfileView::new(profile, &app)))
}

/// Change an ACME profile: the fields given replace the current ones; the name stays.
#[utoipa::path(patch, path = "/acme/profiles/{id}", tag = "acme-admin",
    security(("session" = ["write:acme"]), ("api_key" = ["write:acme"])),
    params(("id" = i64, Path, description = "Profile id")),
    request_body = ProfileBody,
    responses((status = 200, description = "Updated", body = Envelope<ProfileView>),
              (status = 404, description = "No such profile", body = ErrorBody),
              (status = 422, description = "A field is wrong, or the name would change", body = ErrorBody)))]
async fn update_profile(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<ProfileBody>,
) -> ApiResult<Response> {
    let profile = app
        .authority
        .update_acme_profile(&principal, id, body.into())
        .await?;
    Ok(ok_with(
        ProfileView::new(profile, &app),
        "ACME profile updated",
    ))
}

/// Delete an ACME profile with its accounts, orders and keys; certificates issued through it
/// stay. The default profile cannot be deleted.
#[utoipa::path(delete, path = "/acme/profiles/{id}", tag = "acme-admin",
    security(("session" = ["delete:acme"]), ("api_key" = ["delete:acme"])),
    params(("id" = i64, Path, description = "Profile id")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such profile", body = ErrorBody),
              (status = 409, description = "The default profile", body = ErrorBody)))]
async fn delete_profile(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    app.authority.delete_acme_profile(&principal, id).await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_is_at_the_short_directory() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut p = AcmeProfileRow {
            id: 1,
            name: authority::acme::DEFAULT_PROFILE.into(),
            description: String::new(),
            enabled: true,
            is_default: true,
            ca_id: None,
            template_id: None,
            validity_days: 90,
            require_eab: false,
            allowed_identifiers: Vec::new(),
            challenge_types: Vec::new(),
            terms_of_service: String::new(),
            website: String::new(),
            created_at: now,
            updated_at: now,
        };
        assert_eq!(directory_path(&p), "/acme/directory");
        p.is_default = false;
        p.name = "internal".into();
        assert_eq!(directory_path(&p), "/acme/internal/directory");
    }
}
