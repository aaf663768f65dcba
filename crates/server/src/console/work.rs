//! Work that outlasts a page: bulk revocation and renewal run after the answer, and a page
//! shows how far they have come and, at the end, what became of each certificate.
//!
//! Progress lives in this node's memory for an hour, and only its starter may watch it: the
//! work itself goes through the authority like any other change (audited, and in the database
//! as each certificate is done), so a node that stops loses the progress page, not the work
//! already done.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::page::{self, Frame, Head, Visitor};
use crate::App;
use crate::api::v2::views::BulkResult;
use crate::error::{ApiError, ApiResult};

/// How long a finished work's summary stays to be read.
const KEPT: Duration = Duration::from_secs(3600);
/// Works one user may have running at once.
const RUNNING_PER_USER: usize = 2;
/// Works this node keeps, running or finished.
const KEPT_AT_MOST: usize = 1000;

/// One piece of work and how far it is.
#[derive(Debug)]
pub struct Work {
    pub id: String,
    /// What it does, for a person.
    pub title: String,
    owner: i64,
    pub total: usize,
    /// Items gone through.
    pub done: AtomicUsize,
    /// The summary, once finished; an error when the work could not start.
    outcome: Mutex<Option<Result<BulkResult, String>>>,
    started: Instant,
}

impl Work {
    /// Whether it has finished.
    fn finished(&self) -> bool {
        self.outcome.lock().is_ok_and(|o| o.is_some())
    }

    /// Records how it ended.
    pub fn finish(&self, outcome: ApiResult<BulkResult>) {
        if let Ok(mut slot) = self.outcome.lock() {
            *slot = Some(outcome.map_err(|e| e.message().to_owned()));
        }
    }
}

/// The works of this node.
#[derive(Debug, Default)]
pub struct Works {
    all: Mutex<HashMap<String, Arc<Work>>>,
}

impl Works {
    /// Registers new work of `total` items for `owner`.
    ///
    /// # Errors
    /// 429 while the owner already has [`RUNNING_PER_USER`] works running, or this node keeps
    /// too many; 500 when no identifier can be drawn.
    pub fn start(&self, owner: i64, title: String, total: usize) -> ApiResult<Arc<Work>> {
        let id = authority::token::refid()?;
        let mut all = self
            .all
            .lock()
            .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "try again"))?;
        all.retain(|_, w| !w.finished() || w.started.elapsed() < KEPT);
        let running = all
            .values()
            .filter(|w| w.owner == owner && !w.finished())
            .count();
        if running >= RUNNING_PER_USER || all.len() >= KEPT_AT_MOST {
            return Err(ApiError::rate_limited(5));
        }
        let work = Arc::new(Work {
            id: id.clone(),
            title,
            owner,
            total,
            done: AtomicUsize::new(0),
            outcome: Mutex::new(None),
            started: Instant::now(),
        });
        all.insert(id, work.clone());
        Ok(work)
    }

    /// Work `id`, if `owner` started it.
    fn get(&self, id: &str, owner: i64) -> Option<Arc<Work>> {
        let all = self.all.lock().ok()?;
        all.get(id).filter(|w| w.owner == owner).cloned()
    }
}

#[derive(Template)]
#[template(path = "console/work.html")]
struct WorkPage {
    head: Head,
    frame: Frame,
    id: String,
    title: String,
    total: usize,
    done: usize,
    /// The summary once finished.
    outcome: Option<Result<BulkResult, String>>,
}

/// GET `/work/{id}`: how far the work is; once finished, what became of each item.
pub async fn show(
    State(app): State<App>,
    Extension(visitor): Extension<Visitor>,
    Path(id): Path<String>,
) -> Response {
    let frame = visitor.frame("/certificates");
    let owner = visitor.principal.account().map(|u| u.id).unwrap_or(-1);
    let Some(work) = app.works.get(&id, owner) else {
        return page::refused(
            frame,
            &ApiError::not_found(
                "no such work on this node (progress is kept an hour, on the node that ran it)",
            ),
        );
    };
    let outcome = work.outcome.lock().ok().and_then(|o| o.clone());
    page::render(
        StatusCode::OK,
        &WorkPage {
            head: Head::new(),
            frame,
            id: work.id.clone(),
            title: work.title.clone(),
            total: work.total,
            done: work.done.load(Ordering::Relaxed).min(work.total),
            outcome,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_runs_two_works_at_once_and_sees_only_their_own() -> ApiResult<()> {
        let works = Works::default();
        let first = works.start(1, "a".into(), 3)?;
        let second = works.start(1, "b".into(), 3)?;
        assert!(works.start(1, "c".into(), 3).is_err(), "a third waits");
        assert!(
            works.start(2, "d".into(), 3).is_ok(),
            "another user is not held up"
        );
        assert!(works.get(&first.id, 1).is_some());
        assert!(works.get(&first.id, 2).is_none(), "not another user's");
        second.finish(Ok(BulkResult::default()));
        assert!(second.finished());
        assert!(
            works.start(1, "e".into(), 3).is_ok(),
            "a finished one makes room"
        );
        Ok(())
    }
}
