//! `/system/updates/version`: the version running. certmint never asks a server on the
//! internet whether a newer one exists: a CA often runs where it may not connect out, and a
//! call home would tell a third party where CAs run and what they run. Operators learn of
//! releases where they get certmint from, and upgrade by replacing the binary.

use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::App;
use crate::envelope::{Envelope, ok};
use crate::error::ApiResult;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(version))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionInfo {
    /// The version running on this node.
    pub version: &'static str,
    /// Always `disabled`: certmint does not look for updates.
    pub update_check: &'static str,
    /// Why, for a person.
    pub update_check_note: &'static str,
}

/// The version running on this node. No update check is made.
#[utoipa::path(get, path = "/system/updates/version", tag = "system",
    security(("session" = ["admin:system"]), ("api_key" = ["admin:system"])),
    responses((status = 200, description = "Version", body = Envelope<VersionInfo>)))]
async fn version() -> ApiResult<Response> {
    Ok(ok(VersionInfo {
        version: env!("CARGO_PKG_VERSION"),
        update_check: "disabled",
        update_check_note: "certmint never contacts a server to look for updates; \
                            compare this version with your release source",
    }))
}
