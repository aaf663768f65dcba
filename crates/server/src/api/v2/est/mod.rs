//! `/est`: administration of the EST server (RFC 7030) — its settings, with the labels and
//! their credentials, and its statistics, in the style of the reference's SCEP settings. The
//! protocol itself is served under `/.well-known/est/` outside `/api/v2`.

mod config;
mod stats;

pub(crate) use config::{ConfigPatch, ConfigView, LabelPatch, LabelView};
pub(crate) use stats::{LabelStatsView, StatsView};

use utoipa_axum::router::OpenApiRouter;

use crate::App;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .merge(config::routes())
        .merge(stats::routes())
}
