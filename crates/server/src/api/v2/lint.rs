//! `/lint/rules`: the rules every certificate and CRL is checked against before a CA signs it.

use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok};
use crate::error::ApiResult;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(rules))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LintRuleView {
    /// The name findings, refusals and a CA's `lint_warn_only` use.
    pub name: &'static str,
    /// `error` (nothing is signed) or `warning`, unless a CA downgrades it.
    pub severity: &'static str,
    /// The standard it comes from.
    pub citation: &'static str,
    pub summary: &'static str,
}

/// Every lint rule.
#[utoipa::path(get, path = "/lint/rules", tag = "cas",
    security(("session" = ["read:cas"]), ("api_key" = ["read:cas"])),
    responses((status = 200, description = "The rules", body = Envelope<Vec<LintRuleView>>)))]
async fn rules() -> ApiResult<Response> {
    Ok(ok(authority::pki::lint::RULES
        .iter()
        .map(|r| LintRuleView {
            name: r.name,
            severity: r.severity.as_str(),
            citation: r.citation,
            summary: r.summary,
        })
        .collect::<Vec<_>>()))
}
