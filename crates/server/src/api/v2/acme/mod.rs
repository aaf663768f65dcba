//! `/acme`: administration of the ACME server — its settings and statistics as the reference
//! has them, the accounts and orders clients made, and (where the reference is silent, in its
//! style) the profiles, one directory each, with their external account binding keys. The
//! protocol itself is served under `/acme/` outside `/api/v2`.

pub(crate) mod accounts;
pub(crate) mod eab_keys;
pub(crate) mod orders;
pub(crate) mod profiles;
pub(crate) mod settings;
mod stats;

use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;

use crate::App;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .merge(settings::routes())
        .merge(stats::routes())
        .merge(accounts::routes())
        .merge(orders::routes())
        .merge(profiles::routes())
        .merge(eab_keys::routes())
}

/// JSON text stored by the registration authority, as JSON (a string when it does not parse).
fn json_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}
