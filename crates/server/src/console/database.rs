//! `/system/database`: the database's figures, its integrity check, upkeep, the export of
//! every certificate and CA, and the repair of issuer links. Each runs the REST route's own
//! function (`api/v2/system_db.rs`, `api/v2/chain_repair.rs`), so it is checked and audited
//! the same; the page shows what it found.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::form::Form;
use super::page::{self, Frame, Head, Visitor};
use crate::App;
use crate::api::v2::chain_repair::ChainRepairView;
use crate::api::v2::system_db::{self, DbStats, IntegrityView, OptimizeView};
use crate::error::ApiError;

/// The page.
const PAGE: &str = "/system/database";

/// What the page shows once, as the answer to an action.
#[derive(Default)]
struct Shown {
    integrity: Option<IntegrityView>,
    optimized: Option<OptimizeView>,
    /// A repair run's outcome; without one the page shows the chains as they are.
    repaired: Option<ChainRepairView>,
    error: Option<ApiError>,
}

#[derive(Template)]
#[template(path = "console/database.html")]
struct DatabasePage {
    head: Head,
    frame: Frame,
    stats: DbStats,
    chains: ChainRepairView,
    /// Whether `chains` is what a repair run just did.
    repaired: bool,
    integrity: Option<IntegrityView>,
    optimized: Option<OptimizeView>,
    error: Option<String>,
}

/// The page, with `shown`.
async fn database_page(app: &App, visitor: &Visitor, shown: Shown) -> Response {
    let frame = visitor.frame(PAGE);
    let repaired = shown.repaired.is_some();
    let read = async {
        let stats = system_db::stats(app, &visitor.principal).await?;
        let chains = match shown.repaired {
            Some(done) => done,
            None => app.authority.chain_report(&visitor.principal).await?.into(),
        };
        Ok::<_, ApiError>((stats, chains))
    };
    match read.await {
        Ok((stats, chains)) => page::render(
            shown
                .error
                .as_ref()
                .map_or(StatusCode::OK, ApiError::status),
            &DatabasePage {
                head: Head::new(),
                frame,
                stats,
                chains,
                repaired,
                integrity: shown.integrity,
                optimized: shown.optimized,
                error: shown.error.map(|e| e.message().to_owned()),
            },
        ),
        Err(e) => page::refused(frame, &e),
    }
}

/// `done`'s outcome on the page, or its refusal.
async fn answer(app: &App, visitor: &Visitor, done: Result<Shown, ApiError>) -> Response {
    let shown = done.unwrap_or_else(|e| Shown {
        error: Some(e),
        ..Shown::default()
    });
    database_page(app, visitor, shown).await
}

/// GET `/system/database`.
pub async fn show(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    database_page(&app, &visitor, Shown::default()).await
}

/// POST `/system/database/integrity-check`.
pub async fn integrity_check(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    let done = system_db::integrity(&app, &visitor.principal)
        .await
        .map(|found| Shown {
            integrity: Some(found),
            ..Shown::default()
        });
    answer(&app, &visitor, done).await
}

/// The upkeep form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OptimizeForm {
    vacuum: Option<String>,
}

/// POST `/system/database/optimize`.
pub async fn optimize(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<OptimizeForm>,
) -> Response {
    let done = system_db::optimized(&app, &visitor.principal, form.vacuum.is_some())
        .await
        .map(|ran| Shown {
            optimized: Some(ran),
            ..Shown::default()
        });
    answer(&app, &visitor, done).await
}

/// POST `/system/database/chain-repair`.
pub async fn repair_chains(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    let done = app
        .authority
        .repair_chains(&visitor.principal)
        .await
        .map(|report| Shown {
            repaired: Some(report.into()),
            ..Shown::default()
        })
        .map_err(ApiError::from);
    answer(&app, &visitor, done).await
}

/// GET `/system/database/export`: the ZIP of every certificate and CA.
pub async fn export(State(app): State<App>, Extension(visitor): Extension<Visitor>) -> Response {
    match system_db::export(&app, &visitor.principal).await {
        Ok(archive) => archive,
        Err(e) => page::refused(visitor.frame(PAGE), &e),
    }
}
