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

/// The name of `id` among `choices`, or `{kind} {id}` when the visitor cannot see it.
pub fn name_of(choices: &[Choice], id: i64, kind: &str) -> String {
    choices
        .iter()
        .find(|c| c.id == id)
        .map_or_else(|| format!("{kind} {id}"), |c| c.name.clone())
}

/// The issuing CA that `ca_id` names (none: the default CA), by name among `named`.
pub fn issuer(named: &[Choice], ca_id: Option<i64>, default_ca: Option<i64>) -> String {
    match (ca_id, default_ca) {
        (Some(id), _) => name_of(named, id, "CA"),
        (None, Some(id)) => format!("the default CA ({})", name_of(named, id, "CA")),
        (None, None) => "the default CA".to_owned(),
    }
}

/// Whether a form that offers `issuing` can show `ca_id` (none: the default CA). A CA that
/// can no longer issue is added to the form, so that saving does not quietly move the
/// setting to another.
pub fn offered(issuing: &[Choice], ca_id: Option<i64>) -> bool {
    ca_id.is_none_or(|id| issuing.iter().any(|c| c.id == id))
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

/// The enabled HSM providers, where a new CA's key may be made: none unless the visitor holds
/// `admin:system`, which making a key in a token needs.
pub async fn hsm_providers(
    app: &App,
    frame: &Frame,
    principal: &authority::Principal,
) -> ApiResult<Vec<Choice>> {
    if !frame.can("admin:system") {
        return Ok(Vec::new());
    }
    Ok(app
        .authority
        .hsm_providers(principal)
        .await?
        .into_iter()
        .filter(|p| p.enabled)
        .map(|p| Choice {
            id: p.id,
            name: p.name,
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

/// Most users or groups a select offers; the one already chosen is offered too.
const MOST_OFFERED: u32 = 500;

/// The groups (teams) the visitor may read, by name; none without `read:users`.
pub async fn teams(
    app: &App,
    frame: &Frame,
    principal: &authority::Principal,
) -> ApiResult<Vec<Choice>> {
    if !frame.can("read:users") {
        return Ok(Vec::new());
    }
    Ok(app
        .authority
        .groups(principal, None, first_of(MOST_OFFERED))
        .await?
        .items
        .into_iter()
        .map(|g| Choice {
            id: g.id,
            name: g.name,
        })
        .collect())
}

/// The users the visitor may read, by login name; none without `read:users`.
pub async fn users(app: &App, frame: &Frame) -> ApiResult<Vec<Choice>> {
    if !frame.can("read:users") {
        return Ok(Vec::new());
    }
    Ok(app
        .authority
        .users(&authority::UserFilter::default(), first_of(MOST_OFFERED))
        .await?
        .items
        .into_iter()
        .map(|u| Choice {
            id: u.id,
            name: u.username,
        })
        .collect())
}

fn first_of(n: u32) -> authority::PageRequest {
    authority::PageRequest {
        page: 1,
        per_page: n,
        after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issuer_is_named_and_kept_on_its_form() {
        let named = [
            Choice {
                id: 1,
                name: "Root".into(),
            },
            Choice {
                id: 2,
                name: "Issuing".into(),
            },
        ];
        let issuing = &named[1..];
        assert_eq!(issuer(&named, Some(1), Some(2)), "Root");
        assert_eq!(issuer(&named, None, Some(2)), "the default CA (Issuing)");
        assert_eq!(issuer(&named, None, None), "the default CA");
        assert_eq!(
            issuer(&[], Some(7), None),
            "CA 7",
            "one the visitor cannot read"
        );
        assert!(offered(issuing, None), "the default CA is always offered");
        assert!(offered(issuing, Some(2)));
        assert!(!offered(issuing, Some(1)), "it can no longer issue");
    }
}
