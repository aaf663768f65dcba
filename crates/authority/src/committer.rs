//! Group commit for issuance. Every issued certificate is written with its key, audit record
//! and outbox event; one transaction (and one fsync) each caps a single-writer database at a
//! few hundred certificates a second. One writer task instead takes every issuance waiting,
//! writes them all in one transaction, commits once, and only then answers each caller: an
//! acknowledged certificate is on disk.
//!
//! The one way a single write can be refused, a stored CSR that is no longer pending, is
//! checked before that write touches anything, inside the transaction (which holds the write
//! lock, so the answer stays true). Any other failure is the database's, and fails the batch.

use store::{AuditEntry, NewCertificate, NewEvent, NewKey, Store, WriteTx};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result};

/// Most issuances written in one transaction.
const MAX_BATCH: usize = 512;
/// Issuances that may wait for the writer before callers wait to hand theirs over.
const QUEUE: usize = 4096;

/// Everything one issuance writes.
#[derive(Debug)]
pub(crate) struct IssueWrite {
    /// A key certmint generated, sealed.
    pub new_key: Option<NewKey>,
    /// The certificate; its `key_id` is the new key's when there is one.
    pub certificate: NewCertificate,
    /// A stored CSR to mark signed; the write fails if it is not pending.
    pub csr_id: Option<i64>,
    /// The audit record; its resource id is the certificate's.
    pub audit: AuditEntry,
    /// The outbox event; its resource id is the certificate's.
    pub event: NewEvent,
    /// When it happened.
    pub now: OffsetDateTime,
}

/// What an issuance wrote: the certificate's id and its key's, if it has one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    pub id: i64,
    pub key_id: Option<i64>,
}

struct Job {
    write: IssueWrite,
    done: oneshot::Sender<Result<Written>>,
}

/// The handle callers submit their writes through.
#[derive(Debug)]
pub(crate) struct Committer {
    jobs: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the writer task on the current tokio runtime. It ends when the handle is
    /// dropped.
    pub fn start(store: Store) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, queue));
        Self { jobs }
    }

    /// Writes one issuance; returns what it wrote once it is committed.
    ///
    /// # Errors
    /// The write's own error (a CSR signed meanwhile, a store error), or
    /// [`Error::Unavailable`] when the batch could not be committed.
    pub async fn submit(&self, write: IssueWrite) -> Result<Written> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { write, done })
            .await
            .map_err(|_| Error::Unavailable("the certificate writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| Error::Unavailable("the certificate writer has stopped".into()))?
    }
}

async fn run(store: Store, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        write_batch(&store, batch).await;
    }
}

async fn write_batch(store: &Store, batch: Vec<Job>) {
    let (writes, answers): (Vec<IssueWrite>, Vec<_>) =
        batch.into_iter().map(|j| (j.write, j.done)).unzip();
    let outcome = match store.begin_write().await {
        Ok(mut tx) => match apply_all(&mut tx, &writes).await {
            Ok(results) => tx.commit().await.map(|()| results).map_err(Error::from),
            Err(e) => Err(e),
        },
        Err(e) => Err(Error::from(e)),
    };
    match outcome {
        Ok(results) => {
            for (answer, result) in answers.into_iter().zip(results) {
                // A caller that stopped waiting has its certificate stored all the same.
                let _ = answer.send(result);
            }
        }
        Err(e) => {
            let message = format!("certificates could not be stored: {e}");
            for answer in answers {
                let _ = answer.send(Err(Error::Unavailable(message.clone())));
            }
        }
    }
}

/// Applies each write in turn. The outer error fails the whole batch; an inner one refuses a
/// single write that wrote nothing.
async fn apply_all(tx: &mut WriteTx, writes: &[IssueWrite]) -> Result<Vec<Result<Written>>> {
    let mut results = Vec::with_capacity(writes.len());
    for write in writes {
        results.push(apply(tx, write).await?);
    }
    Ok(results)
}

async fn apply(tx: &mut WriteTx, write: &IssueWrite) -> Result<Result<Written>> {
    if let Some(csr_id) = write.csr_id
        && !tx.csr_pending(csr_id).await?
    {
        return Ok(Err(Error::Conflict(format!(
            "CSR {csr_id} is signed already (or gone)"
        ))));
    }
    let mut certificate = write.certificate.clone();
    if let Some(key) = &write.new_key {
        certificate.key_id = Some(tx.insert_key(key, write.now).await?);
    }
    let id = tx.insert_certificate(&certificate, write.now).await?;
    if let Some(csr_id) = write.csr_id
        && !tx.mark_csr_signed(csr_id, id, write.now).await?
    {
        return Err(Error::Internal(format!(
            "CSR {csr_id} stopped being pending inside the transaction"
        )));
    }
    let mut audit = write.audit.clone();
    audit.resource_id = Some(id.to_string());
    tx.audit(&audit).await?;
    let mut event = write.event.clone();
    event.resource_id = id.to_string();
    tx.queue_event(&event, write.now).await?;
    Ok(Ok(Written {
        id,
        key_id: certificate.key_id,
    }))
}
