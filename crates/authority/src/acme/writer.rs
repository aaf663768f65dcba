//! The writer of ACME bookkeeping: order progress and used nonces. Every change to an order is
//! a pure function of the order as it stands; one task applies them, many to a transaction,
//! together with the nonces that requests spent meanwhile, so that hundreds of concurrent
//! orders cost a few commits a second instead of queueing one by one for the database's single
//! writer (and on PostgreSQL, for the lock every write transaction takes).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use store::{NewAcmeOrder, NewEvent, Store};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::orders::no_such_order;
use super::{AcmeError, Order, Status};
use crate::{Authority, Error};

/// Most writes in one transaction.
const BATCH: usize = 256;

/// A change to an order: it edits the order and says whether there is anything to write.
pub(crate) type Change = Box<dyn FnOnce(&mut Order) -> Result<bool, AcmeError> + Send>;

enum Work {
    Nonce {
        nonce: String,
        expires: OffsetDateTime,
    },
    Insert(NewAcmeOrder),
    Change {
        account_id: i64,
        refid: String,
        change: Change,
    },
}

/// What a write came to, by the kind of [`Work`].
enum Outcome {
    /// Whether the nonce was fresh.
    Nonce(bool),
    Inserted,
    /// The order after the change, and whether it was written.
    Changed(Box<Order>, bool),
}

struct Write {
    work: Work,
    at: OffsetDateTime,
    done: oneshot::Sender<Result<Outcome, AcmeError>>,
}

#[derive(Debug, Default)]
pub(crate) struct OrderWriter {
    queue: OnceLock<mpsc::Sender<Write>>,
}

fn stopped() -> Error {
    Error::Internal("the ACME order writer stopped".into())
}

fn mixed_up() -> Error {
    Error::Internal("the ACME order writer answered another kind of write".into())
}

impl Authority {
    async fn write_acme(&self, work: Work) -> Result<Outcome, AcmeError> {
        let queue = self.acme.writer.queue.get_or_init(|| {
            let (send, receive) = mpsc::channel(4 * BATCH);
            tokio::spawn(write_all(self.store.clone(), receive));
            send
        });
        let (done, answer) = oneshot::channel();
        queue
            .send(Write {
                work,
                at: self.now(),
                done,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Records `nonce` (good until `expires`) as used; says whether it was fresh.
    pub(crate) async fn acme_spend_nonce(
        &self,
        nonce: String,
        expires: OffsetDateTime,
    ) -> Result<bool, AcmeError> {
        match self.write_acme(Work::Nonce { nonce, expires }).await? {
            Outcome::Nonce(fresh) => Ok(fresh),
            _ => Err(mixed_up().into()),
        }
    }

    /// Stores a new order.
    pub(crate) async fn acme_insert_order(&self, order: NewAcmeOrder) -> Result<(), AcmeError> {
        match self.write_acme(Work::Insert(order)).await? {
            Outcome::Inserted => Ok(()),
            _ => Err(mixed_up().into()),
        }
    }

    /// Applies `change` to order `refid` of `account_id` as it stands now (expiry applied),
    /// writing it if the change says so. Returns the order after the change and whether it
    /// was written.
    pub(crate) async fn acme_change_order(
        &self,
        account_id: i64,
        refid: &str,
        change: Change,
    ) -> Result<(Order, bool), AcmeError> {
        let work = Work::Change {
            account_id,
            refid: refid.to_owned(),
            change,
        };
        match self.write_acme(work).await? {
            Outcome::Changed(order, written) => Ok((*order, written)),
            _ => Err(mixed_up().into()),
        }
    }
}

async fn write_all(store: Store, mut receive: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(BATCH);
    while receive.recv_many(&mut batch, BATCH).await > 0 {
        let (work, answers): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|w| ((w.work, w.at), w.done)).unzip();
        match apply(&store, work).await {
            Ok(outcomes) => {
                for (done, outcome) in answers.into_iter().zip(outcomes) {
                    let _ = done.send(outcome);
                }
            }
            Err(e) => {
                for done in answers {
                    let _ = done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One transaction for a batch, each kind of write in as few statements as it takes: the
/// nonces, then the new orders, then the changes (the orders they change read at once, changed
/// in turn in memory, and each written once). A change refused by its own rules (or for an
/// order that does not exist) answers alone; a database failure fails the whole batch, which is
/// rolled back.
async fn apply(
    store: &Store,
    batch: Vec<(Work, OffsetDateTime)>,
) -> Result<Vec<Result<Outcome, AcmeError>>, AcmeError> {
    let mut tx = store.begin_relaxed_write().await?;
    let (mut nonces, mut inserts, mut named) = (Vec::new(), Vec::new(), Vec::new());
    for (work, at) in &batch {
        match work {
            Work::Nonce { nonce, expires } => nonces.push((nonce.clone(), *expires)),
            Work::Insert(order) => inserts.push((order, *at)),
            Work::Change { refid, .. } => named.push(refid.as_str()),
        }
    }
    // Taken out as claimed: the same nonce twice in one batch is a replay too.
    let mut fresh: HashSet<String> = tx.use_nonces(&nonces).await?.into_iter().collect();
    tx.insert_acme_orders(&inserts).await?;
    named.sort_unstable();
    named.dedup();
    let mut orders: HashMap<String, Stored> = HashMap::with_capacity(named.len());
    for row in tx.acme_orders_named(&named).await? {
        let order = Order::from_row(&row).map_err(AcmeError::from);
        let was_valid = order.as_ref().is_ok_and(|o| o.status == Status::Valid);
        orders.insert(
            row.refid.clone(),
            Stored {
                id: row.id,
                account_id: row.account_id,
                order,
                changed: None,
                was_valid,
            },
        );
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for (work, at) in batch {
        outcomes.push(match work {
            Work::Nonce { nonce, .. } => Ok(Outcome::Nonce(fresh.remove(&nonce))),
            Work::Insert(_) => Ok(Outcome::Inserted),
            Work::Change {
                account_id,
                refid,
                change,
            } => match orders.get_mut(&refid) {
                Some(stored) if stored.account_id == account_id => stored.apply(change, at),
                _ => Err(no_such_order(&refid).into()),
            },
        });
    }
    let (mut changes, mut finalized) = (Vec::new(), Vec::new());
    for stored in orders.into_values() {
        if let (Ok(order), Some(at)) = (stored.order, stored.changed) {
            if order.status == Status::Valid && !stored.was_valid {
                finalized.push((finalized_event(&order), at));
            }
            changes.push((stored.id, order.change()?, at));
        }
    }
    tx.update_acme_orders(&changes).await?;
    let events: Vec<_> = finalized.iter().map(|(e, at)| (e, *at)).collect();
    tx.queue_events(&events).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// The event of an order that became valid: its certificate was issued.
fn finalized_event(order: &Order) -> NewEvent {
    NewEvent {
        event_type: "acme_order_finalized".into(),
        resource_type: "acme_order".into(),
        resource_id: order.refid.clone(),
        payload: serde_json::json!({
            "account_id": order.account_id,
            "certificate_id": order.certificate_id,
            "identifiers": order.identifiers,
        }),
    }
}

/// An order the batch changes, as it stands after the changes so far.
struct Stored {
    id: i64,
    account_id: i64,
    /// The order, or why its row cannot be read.
    order: Result<Order, AcmeError>,
    /// When it was last changed, if it was.
    changed: Option<OffsetDateTime>,
    /// Whether it was valid before the batch.
    was_valid: bool,
}

impl Stored {
    fn apply(&mut self, change: Change, at: OffsetDateTime) -> Result<Outcome, AcmeError> {
        let current = self.order.as_ref().map_err(Clone::clone)?;
        let mut order = current.clone().at(at);
        if change(&mut order)? {
            order.updated = at;
            self.order = Ok(order.clone());
            self.changed = Some(at);
            Ok(Outcome::Changed(Box::new(order), true))
        } else {
            Ok(Outcome::Changed(Box::new(order), false))
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use store::{AcmeProfileFields, NewAcmeAccount};
    use time::Duration;

    use super::*;
    use crate::acme::{Problem, ProblemType};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    async fn store_with_accounts(dir: &std::path::Path) -> Result<(Store, i64, i64), store::Error> {
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        let store = Store::connect(&url, 2).await?;
        store.migrate().await?;
        let now = OffsetDateTime::now_utc();
        let mut tx = store.begin_write().await?;
        let profile = tx
            .insert_acme_profile("p", false, &AcmeProfileFields::default(), now)
            .await?;
        let mut ids = Vec::new();
        for refid in ["one", "two"] {
            let account = NewAcmeAccount {
                refid: refid.into(),
                profile_id: profile,
                thumbprint: refid.into(),
                jwk: "{}".into(),
                contact: Vec::new(),
                tos_agreed: true,
                eab_key_id: None,
                origin_ip: None,
            };
            ids.push(tx.insert_acme_account(&account, now).await?);
        }
        tx.commit().await?;
        Ok((store, ids[0], ids[1]))
    }

    fn new_order(refid: &str, account_id: i64, now: OffsetDateTime) -> NewAcmeOrder {
        NewAcmeOrder {
            refid: refid.into(),
            account_id,
            status: Status::Pending,
            identifiers: "[]".into(),
            authorizations: "[]".into(),
            not_before: None,
            not_after: None,
            expires_at: now + Duration::days(7),
            replaces: None,
        }
    }

    /// A change by `account_id` of order "o" to `status`.
    fn to(account_id: i64, status: Status) -> Work {
        Work::Change {
            account_id,
            refid: "o".into(),
            change: Box::new(move |order: &mut Order| {
                order.status = status;
                Ok(true)
            }),
        }
    }

    /// Changes to one order in one batch apply in turn, each seeing the one before; a change
    /// by another account, a change its rule refuses and a nonce spent twice answer alone.
    #[tokio::test]
    async fn a_batch_applies_its_writes_in_turn_and_refusals_alone() -> TestResult {
        let dir = tempfile::tempdir()?;
        let (store, one, two) = store_with_accounts(dir.path()).await?;
        let now = OffsetDateTime::now_utc();
        let expires = now + Duration::minutes(30);
        let nonce = |n: &str| Work::Nonce {
            nonce: n.into(),
            expires,
        };
        let refuse = Work::Change {
            account_id: one,
            refid: "o".into(),
            change: Box::new(|order: &mut Order| {
                if order.status == Status::Ready {
                    Err(Problem::new(ProblemType::OrderNotReady, "no").into())
                } else {
                    Ok(true)
                }
            }),
        };
        let batch = vec![
            (nonce("n1"), now),
            (Work::Insert(new_order("o", one, now)), now),
            (nonce("n1"), now),
            (to(one, Status::Ready), now),
            (to(two, Status::Invalid), now),
            (refuse, now),
            (to(one, Status::Processing), now),
        ];
        let outcomes = apply(&store, batch).await.map_err(|e| e.to_string())?;
        let summary: Vec<String> = outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Ok(Outcome::Nonce(fresh)) => format!("nonce {fresh}"),
                Ok(Outcome::Inserted) => "inserted".into(),
                Ok(Outcome::Changed(order, written)) => {
                    format!("{} {written}", order.status.as_str())
                }
                Err(AcmeError::Problem(problem)) => format!("refused {:?}", problem.kind),
                Err(AcmeError::Failed(Error::NotFound(_))) => "not found".into(),
                Err(other) => format!("failed: {other}"),
            })
            .collect();
        assert_eq!(
            summary,
            [
                "nonce true",
                "inserted",
                "nonce false",
                "ready true",
                "not found",
                "refused OrderNotReady",
                "processing true"
            ]
        );
        let stored = store.acme_order("o").await?.ok_or("the order is gone")?;
        assert_eq!(
            stored.status,
            Status::Processing,
            "the last change is written"
        );
        // In a later batch the nonce is still spent.
        let again = apply(&store, vec![(nonce("n1"), now), (nonce("n2"), now)])
            .await
            .map_err(|e| e.to_string())?;
        assert!(matches!(
            again.as_slice(),
            [Ok(Outcome::Nonce(false)), Ok(Outcome::Nonce(true))]
        ));
        Ok(())
    }
}
