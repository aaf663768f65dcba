//! The writer of ACME bookkeeping: order progress and used nonces. Every change to an order is
//! a pure function of the order as it stands; one task applies them, many to a transaction,
//! together with the nonces that requests spent meanwhile, so that hundreds of concurrent
//! orders cost a few commits a second instead of queueing one by one for the database's single
//! writer (and on PostgreSQL, for the lock every write transaction takes).

use std::collections::HashSet;
use std::sync::OnceLock;

use store::{NewAcmeOrder, Store, WriteTx};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::orders::no_such_order;
use super::{Order, Problem};
use crate::{Authority, Error};

/// Most writes in one transaction.
const BATCH: usize = 256;

/// A change to an order: it edits the order and says whether there is anything to write.
pub(crate) type Change = Box<dyn FnOnce(&mut Order) -> Result<bool, Problem> + Send>;

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
    done: oneshot::Sender<Result<Outcome, Problem>>,
}

#[derive(Debug, Default)]
pub(crate) struct OrderWriter {
    queue: OnceLock<mpsc::Sender<Write>>,
}

fn stopped() -> Problem {
    Error::Internal("the ACME order writer stopped".into()).into()
}

fn mixed_up() -> Problem {
    Error::Internal("the ACME order writer answered another kind of write".into()).into()
}

impl Authority {
    async fn write_acme(&self, work: Work) -> Result<Outcome, Problem> {
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
    ) -> Result<bool, Problem> {
        match self.write_acme(Work::Nonce { nonce, expires }).await? {
            Outcome::Nonce(fresh) => Ok(fresh),
            _ => Err(mixed_up()),
        }
    }

    /// Stores a new order.
    pub(crate) async fn acme_insert_order(&self, order: NewAcmeOrder) -> Result<(), Problem> {
        match self.write_acme(Work::Insert(order)).await? {
            Outcome::Inserted => Ok(()),
            _ => Err(mixed_up()),
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
    ) -> Result<(Order, bool), Problem> {
        let work = Work::Change {
            account_id,
            refid: refid.to_owned(),
            change,
        };
        match self.write_acme(work).await? {
            Outcome::Changed(order, written) => Ok((*order, written)),
            _ => Err(mixed_up()),
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

/// One transaction for a batch, the nonces first. A change refused by its own rules (or for an
/// order that does not exist) answers alone; a database failure fails the whole batch, which is
/// rolled back.
async fn apply(
    store: &Store,
    batch: Vec<(Work, OffsetDateTime)>,
) -> Result<Vec<Result<Outcome, Problem>>, Problem> {
    let mut tx = store.begin_relaxed_write().await?;
    let nonces: Vec<(String, OffsetDateTime)> = batch
        .iter()
        .filter_map(|(work, _)| match work {
            Work::Nonce { nonce, expires } => Some((nonce.clone(), *expires)),
            _ => None,
        })
        .collect();
    // Taken out as claimed: the same nonce twice in one batch is a replay too.
    let mut fresh: HashSet<String> = tx.use_nonces(&nonces).await?.into_iter().collect();
    let mut outcomes = Vec::with_capacity(batch.len());
    for (work, at) in batch {
        outcomes.push(match work {
            Work::Nonce { nonce, .. } => Ok(Outcome::Nonce(fresh.remove(&nonce))),
            Work::Insert(order) => {
                tx.insert_acme_order(&order, at).await?;
                Ok(Outcome::Inserted)
            }
            Work::Change {
                account_id,
                refid,
                change,
            } => change_order(&mut tx, account_id, &refid, change, at).await?,
        });
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Applies one change inside the batch's transaction. The outer error fails the batch.
async fn change_order(
    tx: &mut WriteTx,
    account_id: i64,
    refid: &str,
    change: Change,
    at: OffsetDateTime,
) -> Result<Result<Outcome, Problem>, Problem> {
    let row = match tx.acme_order(refid).await? {
        Some(row) if row.account_id == account_id => row,
        _ => return Ok(Err(no_such_order(refid))),
    };
    let mut order = Order::from_row(&row)?.at(at);
    Ok(match change(&mut order) {
        Ok(true) => {
            tx.update_acme_order(row.id, &order.change()?, at).await?;
            Ok(Outcome::Changed(Box::new(order), true))
        }
        Ok(false) => Ok(Outcome::Changed(Box::new(order), false)),
        Err(problem) => Err(problem),
    })
}
