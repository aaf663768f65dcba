//! What the forms and filters offer to pick from: the CAs and templates the visitor may read
//! (none of a kind the visitor may not read, so a form never shows what its list would hide).

use super::page::Frame;
use crate::App;
use crate::error::ApiResult;

/// A thing to pick, by id and name.
pub struct Choice {
    pub id: i64,
    pub name: String,
}

/// Which CAs to offer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cas {
    /// Every CA, to filter by.
    All,
    /// Those that can issue here: active, with their key.
    Issuing,
}

/// The CAs the visitor may read; none without `read:cas`.
pub async fn cas(app: &App, frame: &Frame, which: Cas) -> ApiResult<Vec<Choice>> {
    if !frame.can("read:cas") {
        return Ok(Vec::new());
    }
    Ok(app
        .authority
        .cas()
        .await?
        .into_iter()
        .filter(|c| which == Cas::All || (c.key_id.is_some() && c.is_active))
        .map(|c| Choice {
            id: c.id.0,
            name: c.name,
        })
        .collect())
}

/// The default CA's id, when the visitor may read CAs and one is set.
pub async fn default_ca(app: &App, frame: &Frame) -> ApiResult<Option<i64>> {
    if !frame.can("read:cas") {
        return Ok(None);
    }
    Ok(app
        .authority
        .cas()
        .await?
        .into_iter()
        .find(|c| c.is_default)
        .map(|c| c.id.0))
}

/// The templates the visitor may read; none without `read:templates`.
pub async fn templates(app: &App, frame: &Frame) -> ApiResult<Vec<Choice>> {
    if !frame.can("read:templates") {
        return Ok(Vec::new());
    }
    Ok(app
        .authority
        .templates()
        .await?
        .into_iter()
        .map(|t| Choice {
            id: t.id.0,
            name: t.spec.name,
        })
        .collect())
}
