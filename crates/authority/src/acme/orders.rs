//! Orders and their authorizations (RFC 8555 §7.4, §7.5): placing them, reading them with
//! expiry applied, and deactivating authorizations.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use store::{AcmeAccountRow, AcmeOrderChange, AcmeOrderRow, AcmeProfileRow, NewAcmeOrder};
use time::{Duration, OffsetDateTime};

use super::identifiers::{self, MAX_IDENTIFIERS};
use super::{
    AcmeError, Authorization, Challenge, ChallengeType, Identifier, Order, Problem, ProblemType,
    Status,
};
use crate::{Authority, Error, Result};

/// How long an order (and its authorizations) waits to be finalized.
const ORDER_LIFETIME: Duration = Duration::days(7);

/// How long an order may stay `processing` without a certificate before it is taken to have
/// been abandoned (the node finalizing it died, or could not write the outcome) and is
/// `ready` again. Issuing takes milliseconds; this is far beyond any finalization that still
/// runs.
const PROCESSING_ABANDONED: Duration = Duration::minutes(5);

/// What a newOrder request asks for.
#[derive(Debug, Clone, Default)]
pub struct OrderRequest {
    /// `(type, value)` of each identifier.
    pub identifiers: Vec<(String, String)>,
    /// Requested notBefore.
    pub not_before: Option<OffsetDateTime>,
    /// Requested notAfter.
    pub not_after: Option<OffsetDateTime>,
    /// The ARI identifier of the certificate this order replaces (RFC 9773).
    pub replaces: Option<String>,
}

/// A challenge token: 256 bits, base64url (RFC 8555 §8.1 asks for at least 128).
pub(crate) fn token() -> Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(crate::token::random_bytes::<32>()?))
}

impl Order {
    pub(crate) fn from_row(row: &AcmeOrderRow) -> Result<Self> {
        let corrupt =
            |what: &str| Error::Internal(format!("ACME order {} has a bad {what}", row.refid));
        Ok(Self {
            refid: row.refid.clone(),
            account_id: row.account_id,
            status: row.status,
            expires: row.expires_at,
            identifiers: serde_json::from_str(&row.identifiers)
                .map_err(|_| corrupt("identifier list"))?,
            authorizations: serde_json::from_str(&row.authorizations)
                .map_err(|_| corrupt("authorization list"))?,
            not_before: row.not_before,
            not_after: row.not_after,
            error: row
                .error
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|_| corrupt("error"))?,
            certificate_id: row.certificate_id,
            replaces: row.replaces.clone(),
            updated: row.updated_at,
        })
    }

    /// The order as it stands at `now`: one past its expiry that was not finalized is invalid,
    /// and so are its pending authorizations (expired); one abandoned while `processing` is
    /// `ready` again, so that its client can finalize it once more.
    pub(crate) fn at(mut self, now: OffsetDateTime) -> Self {
        if self.status == Status::Processing
            && self.certificate_id.is_none()
            && self.updated + PROCESSING_ABANDONED <= now
        {
            self.status = Status::Ready;
        }
        if matches!(self.status, Status::Pending | Status::Ready) && self.expires <= now {
            self.status = Status::Invalid;
            self.error = Some(Problem::new(ProblemType::Malformed, "the order expired"));
        }
        for authz in &mut self.authorizations {
            if matches!(authz.status, Status::Pending | Status::Valid) && authz.expires <= now {
                authz.status = Status::Expired;
            }
        }
        self
    }

    pub(crate) fn change(&self) -> Result<AcmeOrderChange> {
        Ok(AcmeOrderChange {
            status: self.status,
            authorizations: serde_json::to_string(&self.authorizations)
                .map_err(|e| Error::Internal(e.to_string()))?,
            error: self
                .error
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| Error::Internal(e.to_string()))?,
            certificate_id: self.certificate_id,
        })
    }

    /// The order's status once its authorizations changed: invalid when one failed or was
    /// given up, ready when all are valid.
    pub(crate) fn settle(&mut self) {
        if self.status != Status::Pending {
            return;
        }
        if let Some(failed) = self.authorizations.iter().find(|a| {
            matches!(
                a.status,
                Status::Invalid | Status::Deactivated | Status::Expired
            )
        }) {
            self.status = Status::Invalid;
            self.error = Some(
                failed
                    .challenges
                    .iter()
                    .find_map(|c| c.error.clone())
                    .unwrap_or_else(|| {
                        Problem::new(
                            ProblemType::Unauthorized,
                            format!(
                                "the authorization for {} is {}",
                                failed.identifier,
                                failed.status.as_str()
                            ),
                        )
                    })
                    .about(failed.identifier.clone()),
            );
        } else if self
            .authorizations
            .iter()
            .all(|a| a.status == Status::Valid)
        {
            self.status = Status::Ready;
        }
    }
}

impl Authority {
    /// Places an order for `account` on `profile`.
    ///
    /// # Errors
    /// Problems: `malformed` (no identifiers, too many, validity asked for),
    /// `unsupportedIdentifier`, `rejectedIdentifier` (with subproblems), `rateLimited`, and the
    /// ARI problems of `replaces`.
    pub async fn acme_new_order(
        &self,
        profile: &AcmeProfileRow,
        account: &AcmeAccountRow,
        request: &OrderRequest,
    ) -> Result<Order, AcmeError> {
        if request.not_before.is_some() || request.not_after.is_some() {
            return Err(Problem::new(
                ProblemType::Malformed,
                format!(
                    "certificates of profile '{}' are valid for {} days from issuance; leave notBefore and notAfter out",
                    profile.name, profile.validity_days
                ),
            ).into());
        }
        if request.identifiers.is_empty() {
            return Err(
                Problem::new(ProblemType::Malformed, "the order has no identifiers").into(),
            );
        }
        if request.identifiers.len() > MAX_IDENTIFIERS {
            return Err(Problem::new(
                ProblemType::Malformed,
                format!("an order may ask for at most {MAX_IDENTIFIERS} identifiers"),
            )
            .into());
        }
        let mut asked = Vec::with_capacity(request.identifiers.len());
        let mut refused = Vec::new();
        for (kind, value) in &request.identifiers {
            match identifiers::parse(kind, value) {
                Ok(id) if !asked.contains(&id) => asked.push(id),
                Ok(_) => {}
                Err(problem) => refused.push(problem.about(Identifier::Dns(value.clone()))),
            }
        }
        if let Some(first) = refused.first() {
            if refused.len() == 1 {
                return Err(first.clone().into());
            }
            return Err(Problem {
                subproblems: refused,
                ..Problem::new(
                    ProblemType::RejectedIdentifier,
                    "some identifiers are refused",
                )
            }
            .into());
        }
        identifiers::check_allowed(&profile.allowed_identifiers, &asked)?;
        let now = self.now();
        let expires = now + ORDER_LIFETIME;
        let offered: Vec<ChallengeType> = profile
            .challenge_types
            .iter()
            .filter_map(|t| ChallengeType::parse(t))
            .collect();
        let mut authorizations = Vec::with_capacity(asked.len());
        for id in &asked {
            authorizations.push(authorization(id, &offered, expires)?);
        }
        if let Some(ari) = &request.replaces {
            self.acme_replaceable(account, ari).await?;
        }
        let limit = self.acme_limits().await?.orders_per_account_hour;
        self.acme_rate(&format!("orders:{}", account.id), limit, Duration::HOUR)
            .await?;
        let order = Order {
            refid: uuid::Uuid::now_v7().simple().to_string(),
            account_id: account.id,
            status: Status::Pending,
            expires,
            identifiers: asked,
            authorizations,
            not_before: None,
            not_after: None,
            error: None,
            certificate_id: None,
            replaces: request.replaces.clone(),
            updated: now,
        };
        self.acme_insert_order(NewAcmeOrder {
            refid: order.refid.clone(),
            account_id: account.id,
            status: order.status,
            identifiers: serde_json::to_string(&order.identifiers)
                .map_err(|e| Error::Internal(e.to_string()))?,
            authorizations: order.change()?.authorizations,
            not_before: None,
            not_after: None,
            expires_at: expires,
            replaces: order.replaces.clone(),
        })
        .await?;
        Ok(order)
    }

    /// Order `refid` of `account`, as it stands now.
    ///
    /// # Errors
    /// A 404 problem when there is no such order or it belongs to another account.
    pub async fn acme_order(
        &self,
        account: &AcmeAccountRow,
        refid: &str,
    ) -> Result<Order, AcmeError> {
        let row = self.store.acme_order(refid).await?;
        owned(row, account, refid).map(|o| o.at(self.now()))
    }

    /// Deactivates authorization `index` of order `refid` (RFC 8555 §7.5.2); the order becomes
    /// invalid.
    ///
    /// # Errors
    /// A 404 problem for no such authorization; `malformed` when it is neither pending nor
    /// valid.
    pub async fn acme_deactivate_authorization(
        &self,
        account: &AcmeAccountRow,
        refid: &str,
        index: usize,
    ) -> Result<Order, AcmeError> {
        let missing = no_such_order(refid);
        let change = move |order: &mut Order| {
            let authz = order.authorizations.get_mut(index).ok_or(missing)?;
            if !matches!(authz.status, Status::Pending | Status::Valid) {
                return Err(Problem::new(
                    ProblemType::Malformed,
                    format!(
                        "the authorization is {}, so it cannot be deactivated",
                        authz.status.as_str()
                    ),
                )
                .into());
            }
            authz.status = Status::Deactivated;
            if matches!(order.status, Status::Pending | Status::Ready) {
                order.status = Status::Pending;
                order.settle();
            }
            Ok(true)
        };
        let (order, _) = self
            .acme_change_order(account.id, refid, Box::new(change))
            .await?;
        Ok(order)
    }
}

/// The authorization for one identifier, with the challenges that can prove it: a wildcard
/// only by dns-01, an IP address never by DNS (RFC 8738 §7).
fn authorization(
    id: &Identifier,
    offered: &[ChallengeType],
    expires: OffsetDateTime,
) -> Result<Authorization, AcmeError> {
    let (identifier, wildcard) = match id {
        Identifier::Dns(name) => match name.strip_prefix("*.") {
            Some(base) => (Identifier::Dns(base.to_owned()), true),
            None => (id.clone(), false),
        },
        Identifier::Ip(_) => (id.clone(), false),
    };
    let fits = |kind: &ChallengeType| match (&identifier, kind) {
        (Identifier::Ip(_), ChallengeType::Dns01) => false,
        (Identifier::Dns(_), ChallengeType::Dns01) => true,
        _ => !wildcard,
    };
    let challenges = offered
        .iter()
        .filter(|kind| fits(kind))
        .map(|kind| {
            Ok(Challenge {
                kind: *kind,
                token: token()?,
                status: Status::Pending,
                validated: None,
                error: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if challenges.is_empty() {
        return Err(Problem::new(
            ProblemType::RejectedIdentifier,
            format!("no challenge this profile offers can prove control of '{id}'"),
        )
        .about(id.clone())
        .into());
    }
    Ok(Authorization {
        identifier,
        wildcard,
        status: Status::Pending,
        expires,
        challenges,
    })
}

pub(crate) fn no_such_order(refid: &str) -> Error {
    Error::NotFound(format!("there is no order {refid} for this account"))
}

fn owned(
    row: Option<AcmeOrderRow>,
    account: &AcmeAccountRow,
    refid: &str,
) -> Result<Order, AcmeError> {
    match row {
        Some(row) if row.account_id == account.id => Ok(Order::from_row(&row)?),
        _ => Err(no_such_order(refid).into()),
    }
}
