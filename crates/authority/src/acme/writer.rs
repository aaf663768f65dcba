//! The writer of order progress. Every change to an order is a pure function of the order as
//! it stands; one task applies them, many to a transaction, so that hundreds of concurrent
//! orders cost a few commits a second instead of queueing one by one for the database's single
//! writer (and on PostgreSQL, for the lock every write transaction takes).

use std::sync::OnceLock;

use store::{NewAcmeOrder, Store};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::orders::no_such_order;
use super::{Order, Problem};
use crate::{Authority, Error};

/// Most changes in one transaction.
const BATCH: usize = 256;

/// A change to an order: it edits the order and says whether there is anything to write.
pub(crate) type Change = Box<dyn FnOnce(&mut Order) -> Result<bool, Problem> + Send>;

enum Write {
    Insert {
        order: NewAcmeOrder,
        done: oneshot::Sender<Result<(), Problem>>,
    },
    Change {
        account_id: i64,
        refid: String,
        change: Change,
        done: oneshot::Sender<Result<(Order, bool), Problem>>,
    },
}

#[derive(Debug, Default)]
pub(crate) struct OrderWriter {
    queue: OnceLock<mpsc::Sender<(Write, OffsetDateTime)>>,
}

fn stopped() -> Problem {
    Error::Internal("the ACME order writer stopped".into()).into()
}

impl Authority {
    fn order_queue(&self) -> &mpsc::Sender<(Write, OffsetDateTime)> {
        self.acme.writer.queue.get_or_init(|| {
            let (send, receive) = mpsc::channel(4 * BATCH);
            tokio::spawn(write_orders(self.store.clone(), receive));
            send
        })
    }

    /// Stores a new order.
    pub(crate) async fn acme_insert_order(&self, order: NewAcmeOrder) -> Result<(), Problem> {
        let (done, answer) = oneshot::channel();
        self.order_queue()
            .send((Write::Insert { order, done }, self.now()))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
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
        let (done, answer) = oneshot::channel();
        let write = Write::Change {
            account_id,
            refid: refid.to_owned(),
            change,
            done,
        };
        self.order_queue()
            .send((write, self.now()))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

enum Answer {
    Insert(oneshot::Sender<Result<(), Problem>>, Result<(), Problem>),
    Change(
        oneshot::Sender<Result<(Order, bool), Problem>>,
        Result<(Order, bool), Problem>,
    ),
}

async fn write_orders(store: Store, mut receive: mpsc::Receiver<(Write, OffsetDateTime)>) {
    let mut batch = Vec::with_capacity(BATCH);
    while receive.recv_many(&mut batch, BATCH).await > 0 {
        let mut answers = Vec::with_capacity(batch.len());
        let outcome = apply(&store, batch.drain(..), &mut answers).await;
        for answer in answers {
            match (answer, &outcome) {
                (Answer::Insert(done, result), Ok(())) => {
                    let _ = done.send(result);
                }
                (Answer::Change(done, result), Ok(())) => {
                    let _ = done.send(result);
                }
                (Answer::Insert(done, _), Err(e)) => {
                    let _ = done.send(Err(e.clone()));
                }
                (Answer::Change(done, _), Err(e)) => {
                    let _ = done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One transaction for a batch. A change refused by its own rules (or for an order that does
/// not exist) answers alone; a database failure fails the whole batch, which is rolled back.
async fn apply(
    store: &Store,
    batch: impl Iterator<Item = (Write, OffsetDateTime)>,
    answers: &mut Vec<Answer>,
) -> Result<(), Problem> {
    let mut tx = store.begin_relaxed_write().await?;
    for (write, now) in batch {
        match write {
            Write::Insert { order, done } => {
                tx.insert_acme_order(&order, now).await?;
                answers.push(Answer::Insert(done, Ok(())));
            }
            Write::Change {
                account_id,
                refid,
                change,
                done,
            } => {
                let row = tx.acme_order(&refid).await?;
                let result = match row {
                    Some(row) if row.account_id == account_id => {
                        let mut order = Order::from_row(&row)?.at(now);
                        match change(&mut order) {
                            Ok(true) => {
                                tx.update_acme_order(row.id, &order.change()?, now).await?;
                                Ok((order, true))
                            }
                            Ok(false) => Ok((order, false)),
                            Err(problem) => Err(problem),
                        }
                    }
                    _ => Err(no_such_order(&refid)),
                };
                answers.push(Answer::Change(done, result));
            }
        }
    }
    tx.commit().await?;
    Ok(())
}
