//! `/acme`: administration of the ACME server — its settings and statistics as the reference
//! has them, the accounts and orders clients made, and (where the reference is silent, in its
//! style) the profiles, one directory each, with their external account binding keys. The
//! protocol itself is served under `/acme/` outside `/api/v2`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::nullable;
use crate::App;
use crate::envelope::{Envelope, Pagination, created, no_content, ok, ok_with, page};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, Id};
use authority::acme::{
    AcmeOrderDetails, AcmeProfileInput, AcmeSettings, AcmeSettingsChange, AcmeStats, IssuedEabKey,
};
use authority::store::{
    AcmeAccountRow, AcmeEabKeyRow, AcmeFilter, AcmeOrderRow, AcmeProfileFields, AcmeProfileRow,
};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(settings, update_settings))
        .routes(routes!(stats))
        .routes(routes!(accounts))
        .routes(routes!(account))
        .routes(routes!(deactivate_account))
        .routes(routes!(orders))
        .routes(routes!(order))
        .routes(routes!(profiles, create_profile))
        .routes(routes!(profile, update_profile, delete_profile))
        .routes(routes!(eab_keys, create_eab_key))
        .routes(routes!(revoke_eab_key))
}

/// The directory path of a profile: the default one's at `/acme/directory`.
fn directory_path(p: &AcmeProfileRow) -> String {
    if p.is_default {
        "/acme/directory".to_owned()
    } else {
        format!("/acme/{}/directory", p.name)
    }
}

/// JSON text stored by the registration authority, as JSON (a string when it does not parse).
fn json_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

// ---------------------------------------------------------------------------------------------
// Settings and statistics
// ---------------------------------------------------------------------------------------------

/// The ACME server's settings: the instance-wide switch and rate limits, and the default
/// profile's CA and validity (the one at `/acme/directory`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsView {
    /// Whether ACME serves at all.
    pub enabled: bool,
    /// The default profile's issuing CA; null is the default CA.
    pub issuing_ca_id: Option<i64>,
    /// The default profile's certificate validity, in days.
    pub validity_days: Option<i64>,
    /// Always false: ACME orders are issued once their authorizations are valid.
    pub require_approval: bool,
    /// New orders one account may place per hour; 0 is no limit.
    pub orders_per_account_hour: i64,
    /// New accounts one client address may register per hour; 0 is no limit.
    pub accounts_per_address_hour: i64,
    /// The default profile.
    pub default_profile_id: Option<i64>,
    /// The default profile's directory path.
    pub directory: String,
}

impl From<AcmeSettings> for SettingsView {
    fn from(s: AcmeSettings) -> Self {
        let profile = s.default_profile.as_ref();
        Self {
            enabled: s.state.enabled,
            issuing_ca_id: profile.and_then(|p| p.ca_id),
            validity_days: profile.map(|p| p.validity_days),
            require_approval: false,
            orders_per_account_hour: s.state.orders_per_account_hour,
            accounts_per_address_hour: s.state.accounts_per_address_hour,
            default_profile_id: profile.map(|p| p.id),
            directory: "/acme/directory".to_owned(),
        }
    }
}

/// The settings to change; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub enabled: Option<bool>,
    /// The default profile's issuing CA; null for the default CA. It must be able to issue.
    #[serde(default, deserialize_with = "nullable")]
    pub issuing_ca_id: Option<Option<i64>>,
    /// 1 to 3650, within the default profile's template.
    pub validity_days: Option<i64>,
    /// Only false is accepted: there is no approval step for ACME orders.
    pub require_approval: Option<bool>,
    /// 0 (no limit) to 1000000.
    pub orders_per_account_hour: Option<i64>,
    /// 0 (no limit) to 1000000.
    pub accounts_per_address_hour: Option<i64>,
}

/// The ACME server's settings.
#[utoipa::path(get, path = "/acme/settings", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    responses((status = 200, description = "Settings", body = Envelope<SettingsView>)))]
async fn settings(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    let settings = app.authority.acme_settings(&principal).await?;
    Ok(ok(SettingsView::from(settings)))
}

/// Change the ACME server's settings; directories serve the change at once.
#[utoipa::path(patch, path = "/acme/settings", tag = "acme-admin",
    security(("session" = ["write:acme"]), ("api_key" = ["write:acme"])),
    request_body = SettingsPatch,
    responses((status = 200, description = "Updated", body = Envelope<SettingsView>),
              (status = 409, description = "No default profile to set the CA or validity of", body = ErrorBody),
              (status = 422, description = "A value is wrong, or require_approval is true", body = ErrorBody)))]
async fn update_settings(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiJson(patch): ApiJson<SettingsPatch>,
) -> ApiResult<Response> {
    let change = AcmeSettingsChange {
        enabled: patch.enabled,
        orders_per_account_hour: patch.orders_per_account_hour,
        accounts_per_address_hour: patch.accounts_per_address_hour,
        issuing_ca_id: patch.issuing_ca_id,
        validity_days: patch.validity_days,
        require_approval: patch.require_approval,
    };
    let settings = app
        .authority
        .update_acme_settings(&principal, change)
        .await?;
    Ok(ok_with(
        SettingsView::from(settings),
        "ACME settings updated",
    ))
}

/// Counts by status.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusCounts {
    pub total: i64,
    /// Status → count.
    pub by_status: BTreeMap<String, i64>,
}

impl StatusCounts {
    fn new(pairs: Vec<(String, i64)>) -> Self {
        Self {
            total: pairs.iter().map(|(_, n)| n).sum(),
            by_status: pairs.into_iter().collect(),
        }
    }
}

/// ACME statistics.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    /// Whether ACME serves at all.
    pub enabled: bool,
    pub accounts: StatusCounts,
    pub orders: StatusCounts,
    pub profiles: i64,
    /// Profiles whose directory serves.
    pub profiles_enabled: i64,
    /// External account binding keys not revoked.
    pub eab_keys: i64,
}

impl From<AcmeStats> for StatsView {
    fn from(s: AcmeStats) -> Self {
        Self {
            enabled: s.enabled,
            accounts: StatusCounts::new(s.counts.accounts),
            orders: StatusCounts::new(s.counts.orders),
            profiles: s.counts.profiles,
            profiles_enabled: s.profiles_enabled,
            eab_keys: s.counts.eab_keys,
        }
    }
}

/// ACME accounts and orders by status, profiles and keys.
#[utoipa::path(get, path = "/acme/stats", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    responses((status = 200, description = "Statistics", body = Envelope<StatsView>)))]
async fn stats(State(app): State<App>, Caller(principal): Caller) -> ApiResult<Response> {
    Ok(ok(StatsView::from(
        app.authority.acme_stats(&principal).await?,
    )))
}

// ---------------------------------------------------------------------------------------------
// Accounts and orders
// ---------------------------------------------------------------------------------------------

/// An ACME account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: i64,
    /// The identifier in its URL (`/acme/{profile}/acct/{refid}`, its `kid`).
    pub refid: String,
    pub profile_id: i64,
    /// valid, deactivated or revoked.
    pub status: String,
    /// Contact URLs.
    pub contact: Vec<String>,
    pub terms_of_service_agreed: bool,
    /// The external account binding key it registered with.
    pub eab_key_id: Option<i64>,
    /// The client address it registered from.
    pub origin_ip: Option<String>,
    /// RFC 7638 thumbprint of its key.
    pub thumbprint: String,
    /// Its public key, a JWK.
    #[schema(value_type = Object)]
    pub jwk: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<AcmeAccountRow> for AccountView {
    fn from(a: AcmeAccountRow) -> Self {
        Self {
            id: a.id,
            jwk: json_text(&a.jwk),
            refid: a.refid,
            profile_id: a.profile_id,
            status: a.status,
            contact: a.contact,
            terms_of_service_agreed: a.tos_agreed,
            eab_key_id: a.eab_key_id,
            origin_ip: a.origin_ip,
            thumbprint: a.thumbprint,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct AccountQuery {
    /// Only this profile's accounts.
    pub profile_id: Option<i64>,
    /// valid, deactivated or revoked.
    pub status: Option<String>,
}

/// ACME accounts, newest first.
#[utoipa::path(get, path = "/acme/accounts", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    params(AccountQuery, Pagination),
    responses((status = 200, description = "Accounts", body = Envelope<Vec<AccountView>>),
              (status = 400, description = "Unknown status", body = ErrorBody)))]
async fn accounts(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiQuery(q): ApiQuery<AccountQuery>,
    ApiQuery(p): ApiQuery<Pagination>,
) -> ApiResult<Response> {
    let request = p.request()?;
    let filter = AcmeFilter {
        profile_id: q.profile_id,
        account_id: None,
        status: q.status.filter(|s| !s.is_empty()),
    };
    let found = app
        .authority
        .acme_accounts(&principal, &filter, request)
        .await?;
    let items = found.items.into_iter().map(AccountView::from).collect();
    Ok(page(items, request, found.total))
}

/// One ACME account.
#[utoipa::path(get, path = "/acme/accounts/{id}", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, description = "Account", body = Envelope<AccountView>),
              (status = 404, description = "No such account", body = ErrorBody)))]
async fn account(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let account = app.authority.acme_account_details(&principal, id).await?;
    Ok(ok(AccountView::from(account)))
}

/// Deactivate an ACME account: it can make no more requests (RFC 8555 §7.3.6); its
/// certificates stay valid.
#[utoipa::path(post, path = "/acme/accounts/{id}/deactivate", tag = "acme-admin",
    security(("session" = ["write:acme"]), ("api_key" = ["write:acme"])),
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, description = "Deactivated", body = Envelope<AccountView>),
              (status = 404, description = "No such account", body = ErrorBody),
              (status = 409, description = "Already deactivated or revoked", body = ErrorBody)))]
async fn deactivate_account(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let account = app
        .authority
        .deactivate_acme_account(&principal, id)
        .await?;
    Ok(ok_with(
        AccountView::from(account),
        "ACME account deactivated",
    ))
}

/// An ACME order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: i64,
    /// The identifier in its URL (`/acme/{profile}/order/{refid}`); `/acme/orders/{refid}`
    /// shows it here.
    pub refid: String,
    pub account_id: i64,
    /// pending, ready, processing, valid or invalid.
    pub status: String,
    /// The identifiers asked for: `[{"type", "value"}]`.
    #[schema(value_type = Object)]
    pub identifiers: Value,
    /// The authorizations with their challenges (in one order's view, not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub authorizations: Option<Value>,
    /// Why it became invalid: an RFC 7807 problem.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    /// The certificate issued for it.
    pub certificate_id: Option<i64>,
    /// The ARI identifier of the certificate it replaces (RFC 9773).
    pub replaces: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The account's profile (in one order's view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<i64>,
    /// The account's URL identifier (in one order's view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_refid: Option<String>,
}

impl OrderView {
    fn new(o: AcmeOrderRow, detailed: bool) -> Self {
        Self {
            id: o.id,
            identifiers: json_text(&o.identifiers),
            authorizations: detailed.then(|| json_text(&o.authorizations)),
            error: o.error.as_deref().map(json_text),
            refid: o.refid,
            account_id: o.account_id,
            status: o.status,
            certificate_id: o.certificate_id,
            replaces: o.replaces,
            not_before: o.not_before,
            not_after: o.not_after,
            expires_at: o.expires_at,
            created_at: o.created_at,
            updated_at: o.updated_at,
            profile_id: None,
            account_refid: None,
        }
    }
}

impl From<AcmeOrderDetails> for OrderView {
    fn from(d: AcmeOrderDetails) -> Self {
        let (profile_id, account_refid) = match d.account {
            Some(a) => (Some(a.profile_id), Some(a.refid)),
            None => (None, None),
        };
        Self {
            profile_id,
            account_refid,
            ..Self::new(d.order, true)
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// Only orders of this profile's accounts.
    pub profile_id: Option<i64>,
    /// Only this account's orders.
    pub account_id: Option<i64>,
    /// pending, ready, processing, valid or invalid.
    pub status: Option<String>,
}

/// ACME orders, newest first.
#[utoipa::path(get, path = "/acme/orders", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    params(OrderQuery, Pagination),
    responses((status = 200, description = "Orders", body = Envelope<Vec<OrderView>>),
              (status = 400, description = "Unknown status", body = ErrorBody)))]
async fn orders(
    State(app): State<App>,
    Caller(principal): Caller,
    ApiQuery(q): ApiQuery<OrderQuery>,
    ApiQuery(p): ApiQuery<Pagination>,
) -> ApiResult<Response> {
    let request = p.request()?;
    let filter = AcmeFilter {
        profile_id: q.profile_id,
        account_id: q.account_id,
        status: q.status.filter(|s| !s.is_empty()),
    };
    let found = app
        .authority
        .acme_orders(&principal, &filter, request)
        .await?;
    let items = found
        .items
        .into_iter()
        .map(|o| OrderView::new(o, false))
        .collect();
    Ok(page(items, request, found.total))
}

/// One ACME order, with its authorizations, by the identifier in its URL (`refid`).
#[utoipa::path(get, path = "/acme/orders/{id}", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    params(("id" = String, Path, description = "The order's refid, as in its ACME URL")),
    responses((status = 200, description = "Order", body = Envelope<OrderView>),
              (status = 404, description = "No such order", body = ErrorBody)))]
async fn order(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(refid): Path<String>,
) -> ApiResult<Response> {
    let details = app.authority.acme_order_details(&principal, &refid).await?;
    Ok(ok(OrderView::from(details)))
}

// ---------------------------------------------------------------------------------------------
// Profiles
// ---------------------------------------------------------------------------------------------

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
    /// Its directory's path on the HTTPS listener.
    pub directory: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<AcmeProfileRow> for ProfileView {
    fn from(p: AcmeProfileRow) -> Self {
        Self {
            directory: directory_path(&p),
            id: p.id,
            name: p.name,
            description: p.description,
            enabled: p.enabled,
            is_default: p.is_default,
            ca_id: p.ca_id,
            template_id: p.template_id,
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
                ca_id: b.ca_id,
                template_id: b.template_id,
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
        .map(ProfileView::from)
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
    Ok(created(ProfileView::from(profile), "ACME profile created"))
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
    Ok(ok(ProfileView::from(profile)))
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
    Ok(ok_with(ProfileView::from(profile), "ACME profile updated"))
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

// ---------------------------------------------------------------------------------------------
// External account binding keys
// ---------------------------------------------------------------------------------------------

/// An external account binding key (never its HMAC key).
#[derive(Debug, Serialize, ToSchema)]
pub struct EabKeyView {
    pub id: i64,
    /// The key identifier clients send (`--eab-kid`).
    pub key_id: String,
    pub profile_id: i64,
    pub description: String,
    /// unused, used or revoked.
    pub status: String,
    /// The account it registered.
    pub account_id: Option<i64>,
    /// The user who made it.
    pub created_by: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<AcmeEabKeyRow> for EabKeyView {
    fn from(k: AcmeEabKeyRow) -> Self {
        let status = if k.revoked_at.is_some() {
            "revoked"
        } else if k.used_at.is_some() {
            "used"
        } else {
            "unused"
        };
        Self {
            id: k.id,
            key_id: k.key_id,
            profile_id: k.profile_id,
            description: k.description,
            status: status.to_owned(),
            account_id: k.account_id,
            created_by: k.created_by,
            created_at: k.created_at,
            used_at: k.used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new key with its HMAC key, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewEabKeyView {
    #[serde(flatten)]
    pub key: EabKeyView,
    /// The HMAC key, base64url (`--eab-hmac-key`). It is not shown again.
    pub hmac_key: String,
}

impl From<IssuedEabKey> for NewEabKeyView {
    fn from(k: IssuedEabKey) -> Self {
        Self {
            hmac_key: k.hmac_key.as_str().to_owned(),
            key: EabKeyView::from(k.key),
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EabKeyCreate {
    /// Who or what the key is for.
    #[serde(default)]
    pub description: String,
}

/// A profile's external account binding keys, newest first (never their HMAC keys).
#[utoipa::path(get, path = "/acme/profiles/{id}/eab-keys", tag = "acme-admin",
    security(("session" = ["read:acme"]), ("api_key" = ["read:acme"])),
    params(("id" = i64, Path, description = "Profile id")),
    responses((status = 200, description = "Keys", body = Envelope<Vec<EabKeyView>>),
              (status = 404, description = "No such profile", body = ErrorBody)))]
async fn eab_keys(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let keys = app.authority.acme_eab_keys(&principal, id).await?;
    Ok(ok(keys
        .into_iter()
        .map(EabKeyView::from)
        .collect::<Vec<_>>()))
}

/// Make an external account binding key for a profile. The HMAC key is in this answer only.
#[utoipa::path(post, path = "/acme/profiles/{id}/eab-keys", tag = "acme-admin",
    security(("session" = ["write:acme"]), ("api_key" = ["write:acme"])),
    params(("id" = i64, Path, description = "Profile id")),
    request_body = EabKeyCreate,
    responses((status = 201, description = "Created, with the HMAC key", body = Envelope<NewEabKeyView>),
              (status = 404, description = "No such profile", body = ErrorBody),
              (status = 422, description = "The description is too long", body = ErrorBody)))]
async fn create_eab_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<EabKeyCreate>,
) -> ApiResult<Response> {
    let key = app
        .authority
        .create_acme_eab_key(&principal, id, &body.description)
        .await?;
    Ok(created(
        NewEabKeyView::from(key),
        "External account binding key created; store the HMAC key now, it is not shown again",
    ))
}

/// Revoke an external account binding key, by its id or its key id: no account can register
/// with it any more. It stays listed, as revoked.
#[utoipa::path(delete, path = "/acme/profiles/{id}/eab-keys/{key_id}", tag = "acme-admin",
    security(("session" = ["write:acme"]), ("api_key" = ["write:acme"])),
    params(("id" = i64, Path, description = "Profile id"),
           ("key_id" = String, Path, description = "The key's id, or its key id (kid)")),
    responses((status = 204, description = "Revoked"),
              (status = 404, description = "No such profile or key", body = ErrorBody),
              (status = 409, description = "Already revoked", body = ErrorBody)))]
async fn revoke_eab_key(
    State(app): State<App>,
    Caller(principal): Caller,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = id
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::bad_request(format!("'{id}' is not a valid id")))?;
    app.authority
        .revoke_acme_eab_key(&principal, id, &key)
        .await?;
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
