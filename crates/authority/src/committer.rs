//! Group commit for issuance. Every issued certificate is written with its key, audit record
//! and outbox event; one transaction (and one fsync) each caps a single-writer database at a
//! few hundred certificates a second. One writer task instead takes every issuance waiting,
//! writes them all in one transaction, commits once, and only then answers each caller: an
//! acknowledged certificate is on disk.
//!
//! The batch is written with one multi-row statement per table, not statements per
//! certificate. The ways a single write can be refused, a CA deactivated or deleted meanwhile
//! or a stored CSR no longer pending, are checked before anything is written, inside the
//! transaction (which holds the write lock, so the answers stay true). Any other failure is the
//! database's, and fails the batch.
//!
//! A CA certificate is also recorded as a CA, in the same transaction as its certificate row:
//! one statement each, since CA certificates are rare, with its name made unique there.

use store::{
    AuditEntry, CaId, CertificateId, CsrId, NewCa, NewCertificate, NewEvent, NewKey, Store, WriteTx,
};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result};

/// Most issuances written in one transaction. Under heavy load a bound well below the number
/// of callers in flight lets the rest build and sign the next batch while this one commits;
/// with no bound every caller would wait on the same commit and the cores would idle.
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
    /// For a CA certificate, its row in `cas` (its name is a wish, made unique when stored).
    pub ca: Option<NewCa>,
    /// A stored CSR to mark signed; the write fails if it is not pending.
    pub csr_id: Option<CsrId>,
    /// The audit record; its resource id is the certificate's.
    pub audit: AuditEntry,
    /// The outbox event; its resource id is the certificate's.
    pub event: NewEvent,
    /// When it happened.
    pub now: OffsetDateTime,
    /// When its template's auto-renewal makes it due, if it does.
    pub renew_at: Option<OffsetDateTime>,
}

/// What an issuance wrote: the certificate as stored (its `key_id` the new key's, when there
/// is one) and its id.
#[derive(Debug)]
pub(crate) struct Written {
    pub id: CertificateId,
    pub certificate: NewCertificate,
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
    /// Starts the writer on a thread of its own, with its own runtime: on the shared runtime
    /// it would wait behind every task that is building and signing certificates, once for
    /// each statement, and the whole pipeline would wait for it. It ends when the handle is
    /// dropped.
    pub fn start(store: Store) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let writer = move || match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(run(store, queue)),
            Err(e) => tracing::error!("the certificate writer cannot start: {e}"),
        };
        if let Err(e) = std::thread::Builder::new()
            .name("certmint-writer".into())
            .spawn(writer)
        {
            tracing::error!("the certificate writer cannot start: {e}");
        }
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
        Ok(mut tx) => match apply_all(&mut tx, writes).await {
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
        Err(Error::StorageFull) => {
            for answer in answers {
                let _ = answer.send(Err(Error::StorageFull));
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

/// Writes the batch, which it takes apart rather than copies: a certificate's DER and fields
/// go to the database and then back to its caller. The outer error fails the whole batch; an
/// inner one refuses a single write, which wrote nothing.
async fn apply_all(tx: &mut WriteTx, writes: Vec<IssueWrite>) -> Result<Vec<Result<Written>>> {
    let refusals = refusals(tx, &writes).await?;
    let accepted: Vec<IssueWrite> = writes
        .into_iter()
        .zip(&refusals)
        .filter(|(_, refusal)| refusal.is_none())
        .map(|(write, _)| write)
        .collect();

    let new_keys: Vec<_> = accepted
        .iter()
        .filter_map(|w| w.new_key.as_ref().map(|k| (k, w.now)))
        .collect();
    let key_ids = tx.insert_keys(&new_keys).await?;
    let mut key_ids = key_ids.into_iter();
    let mut certificates = Vec::with_capacity(accepted.len());
    let mut audits = Vec::with_capacity(accepted.len());
    let mut events = Vec::with_capacity(accepted.len());
    let mut csrs = Vec::with_capacity(accepted.len());
    let mut renewals = Vec::with_capacity(accepted.len());
    let mut cas = Vec::new();
    for write in accepted {
        if let Some(ca) = write.ca {
            cas.push((ca, write.now));
        }
        let mut certificate = write.certificate;
        if write.new_key.is_some() {
            certificate.key_id = key_ids.next();
        }
        certificates.push((certificate, write.now));
        audits.push(write.audit);
        events.push((write.event, write.now));
        csrs.push(write.csr_id);
        renewals.push(write.renew_at);
    }
    let rows: Vec<_> = certificates.iter().map(|(c, now)| (c, *now)).collect();
    let ids = tx.insert_certificates(&rows).await?;
    for (mut ca, now) in cas {
        ca.name = crate::ca::free_ca_name(tx, &ca.name).await?;
        tx.insert_ca(&ca, now).await?;
    }

    for (((audit, (event, now)), csr_id), id) in
        audits.iter_mut().zip(&mut events).zip(&csrs).zip(&ids)
    {
        if let Some(csr_id) = csr_id
            && !tx.mark_csr_signed(*csr_id, *id, *now).await?
        {
            return Err(Error::Internal(format!(
                "CSR {csr_id} stopped being pending inside the transaction"
            )));
        }
        audit.resource_id = Some(id.to_string());
        event.resource_id = id.to_string();
    }
    for ((renew_at, id), (_, now)) in renewals.iter().zip(&ids).zip(&certificates) {
        if let Some(due) = renew_at {
            tx.set_auto_renewal(*id, None, Some(*due), *now).await?;
        }
    }
    tx.audit_many(&audits).await?;
    let events: Vec<_> = events.iter().map(|(e, now)| (e, *now)).collect();
    tx.queue_events(&events).await?;

    let mut written = certificates
        .into_iter()
        .zip(ids)
        .map(|((certificate, _), id)| Written { id, certificate });
    Ok(refusals
        .into_iter()
        .map(|refusal| match refusal {
            Some(e) => Err(e),
            None => written
                .next()
                .ok_or_else(|| Error::Internal("a written certificate went missing".into())),
        })
        .collect())
}

/// Why each write must be refused, if it must: its CA is no longer active, or its stored CSR
/// is no longer pending (signed meanwhile, or earlier in this same batch).
async fn refusals(tx: &mut WriteTx, writes: &[IssueWrite]) -> Result<Vec<Option<Error>>> {
    let mut cas: Vec<CaId> = writes.iter().filter_map(|w| w.certificate.ca_id).collect();
    cas.sort_unstable();
    cas.dedup();
    let active = tx.active_cas(&cas).await?;
    let mut signing = std::collections::HashSet::new();
    let mut refusals = Vec::with_capacity(writes.len());
    for write in writes {
        let refusal = match (write.certificate.ca_id, write.csr_id) {
            (Some(ca), _) if !active.contains(&ca) => Some(Error::Invalid(format!(
                "CA {ca} is inactive or gone: it changed while the certificate was being issued"
            ))),
            (_, Some(csr)) if !signing.insert(csr) || !tx.csr_pending(csr).await? => Some(
                Error::Conflict(format!("CSR {csr} is signed already (or gone)")),
            ),
            _ => None,
        };
        refusals.push(refusal);
    }
    Ok(refusals)
}
