//! `/certificates/{id}/auto-renewal`: a certificate's auto-renewal policy (its own, or its
//! template's) and the state of its attempts.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok, ok_with};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller, Id};
use authority::{
    AutoRenewal, AutoRenewalChange, CertificateId, KeyPolicy, LifetimeFraction, OwnPolicy,
    RenewWhen, RenewalPolicy,
};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(auto_renewal_policy, set_auto_renewal_policy))
}

/// A certificate's auto-renewal.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutoRenewalView {
    /// Whether a policy renews it.
    pub enabled: bool,
    /// Renew this many days before expiry.
    pub days_before: Option<i64>,
    /// Renew once this share of the lifetime remains.
    pub lifetime_fraction: Option<f64>,
    /// `same_key` or `rekey`; null when off.
    pub key_policy: Option<String>,
    /// Whether the policy is its template's (it has none of its own).
    pub inherited_from_template: bool,
    /// That template.
    pub template_id: Option<i64>,
    /// When the next attempt is due: the policy's time, or later while backing off.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_renewal_at: Option<OffsetDateTime>,
    /// Failed attempts since the last success or policy change.
    pub attempts: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_attempt_at: Option<OffsetDateTime>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The certificate that renewed this one.
    pub renewed_by: Option<i64>,
}

impl From<AutoRenewal> for AutoRenewalView {
    fn from(a: AutoRenewal) -> Self {
        Self {
            enabled: a.policy.is_some(),
            days_before: a.policy.and_then(|p| p.when.days_before()),
            lifetime_fraction: a
                .policy
                .and_then(|p| p.when.lifetime_fraction())
                .map(LifetimeFraction::value),
            key_policy: a.policy.map(|p| p.key_policy.as_str().to_owned()),
            inherited_from_template: a.inherited_from_template.is_some(),
            template_id: a.inherited_from_template.map(|t| t.0),
            next_renewal_at: a.next_renewal_at,
            attempts: a.attempts,
            last_attempt_at: a.last_attempt_at,
            last_error: a.last_error,
            renewed_by: a.renewed_by.map(|c| c.0),
        }
    }
}

/// A certificate's own auto-renewal policy, or `inherit` to follow its template's.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AutoRenewalBody {
    /// Drop the certificate's own policy: its template's applies. Nothing else may be given.
    pub inherit: bool,
    /// Renew it automatically (true) or never (false), whatever its template says.
    pub enabled: Option<bool>,
    /// Renew this many days before expiry (1 to 3650).
    pub days_before: Option<i64>,
    /// Or once this share of the lifetime remains (between 0 and 1, exclusive); a third when
    /// neither is given.
    pub lifetime_fraction: Option<f64>,
    /// `same_key` (default) or `rekey`: certmint generates a new key of the same type.
    pub key_policy: Option<String>,
}

impl AutoRenewalBody {
    fn change(self) -> ApiResult<AutoRenewalChange> {
        let policy_given = self.days_before.is_some()
            || self.lifetime_fraction.is_some()
            || self.key_policy.is_some();
        match (self.inherit, self.enabled) {
            (true, None) if !policy_given => Ok(AutoRenewalChange::Inherit),
            (true, _) => Err(ApiError::invalid(
                "inherit drops the certificate's own policy: give nothing else with it",
            )),
            (false, None) => Err(ApiError::invalid(
                "give enabled (true or false), or inherit: true",
            )),
            (false, Some(false)) if policy_given => Err(ApiError::invalid(
                "days_before, lifetime_fraction and key_policy need enabled: true",
            )),
            (false, Some(false)) => Ok(AutoRenewalChange::Own(OwnPolicy::Off)),
            (false, Some(true)) => {
                let fraction = self
                    .lifetime_fraction
                    .map(LifetimeFraction::new)
                    .transpose()?;
                let when = RenewWhen::new(self.days_before, fraction)?;
                let key_policy = self
                    .key_policy
                    .as_deref()
                    .map(KeyPolicy::parse)
                    .transpose()?
                    .unwrap_or_default();
                Ok(AutoRenewalChange::Own(OwnPolicy::On(RenewalPolicy {
                    when,
                    key_policy,
                })))
            }
        }
    }
}

/// A certificate's auto-renewal: the policy in force (its own, or its template's) and the
/// state of its attempts.
#[utoipa::path(get, path = "/certificates/{id}/auto-renewal", tag = "certificates",
    security(("session" = ["read:certificates"]), ("api_key" = ["read:certificates"])),
    params(("id" = i64, Path, description = "Certificate id")),
    responses((status = 200, description = "Its auto-renewal", body = Envelope<AutoRenewalView>),
              (status = 404, description = "No such certificate", body = ErrorBody)))]
async fn auto_renewal_policy(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
) -> ApiResult<Response> {
    let renewal = app
        .authority
        .auto_renewal(&principal, CertificateId(id))
        .await?;
    Ok(ok(AutoRenewalView::from(renewal)))
}

/// Set a certificate's own auto-renewal policy, overriding its template's, or drop it with
/// `inherit`. Only certificates whose private key certmint holds can be renewed automatically.
#[utoipa::path(put, path = "/certificates/{id}/auto-renewal", tag = "certificates",
    security(("session" = ["write:certificates"]), ("api_key" = ["write:certificates"])),
    params(("id" = i64, Path, description = "Certificate id")),
    request_body = AutoRenewalBody,
    responses((status = 200, description = "Its auto-renewal", body = Envelope<AutoRenewalView>),
              (status = 404, description = "No such certificate", body = ErrorBody),
              (status = 422, description = "A value is out of range, or certmint does not hold its key", body = ErrorBody)))]
async fn set_auto_renewal_policy(
    State(app): State<App>,
    Caller(principal): Caller,
    Id(id): Id,
    ApiJson(body): ApiJson<AutoRenewalBody>,
) -> ApiResult<Response> {
    let change = body.change()?;
    let renewal = app
        .authority
        .set_auto_renewal(&principal, CertificateId(id), change)
        .await?;
    Ok(ok_with(
        AutoRenewalView::from(renewal),
        "Auto-renewal updated",
    ))
}
