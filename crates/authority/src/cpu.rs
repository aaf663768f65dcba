//! The bounded pool for long CPU work: key derivations over uploaded keys and bundles, RSA key
//! generation, password-protected exports.
//!
//! Such work runs on tokio's blocking threads, never on the async workers, so health, OCSP and
//! every other request keep answering. Tokio's blocking pool alone would take up to 512 threads
//! of it at once, so a flood of such requests would still eat every core: here at most
//! `workers` run at once, at most `queue` more wait for a worker, and anything beyond that is
//! refused at once with [`Error::Busy`] (503 with `Retry-After`) rather than piling up.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::{Error, Result};

/// How long a caller refused for a full pool is told to wait, in seconds.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// Runs long CPU work on a bounded number of blocking threads.
#[derive(Debug, Clone)]
pub struct CpuPool {
    /// One permit per piece of work admitted: running or waiting for a worker.
    admitted: Arc<Semaphore>,
    /// One permit per piece of work running.
    running: Arc<Semaphore>,
}

impl CpuPool {
    /// A pool running at most `workers` pieces of work at once (at least one) with at most
    /// `queue` more waiting.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            admitted: Arc::new(Semaphore::new(workers.saturating_add(queue))),
            running: Arc::new(Semaphore::new(workers)),
        }
    }

    /// A pool of one worker per core, with four pieces of work waiting per worker.
    pub fn per_core() -> Self {
        let cores = Self::cores();
        Self::new(cores, 4 * cores)
    }

    /// The cores this process may use (1 when the system cannot tell).
    pub fn cores() -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }

    /// Runs `work` on a blocking thread once a worker is free.
    ///
    /// # Errors
    /// [`Error::Busy`] when `workers + queue` pieces of work are admitted already; what `work`
    /// returns; [`Error::Internal`] when it panics.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        F: FnOnce() -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let admitted = Arc::clone(&self.admitted).try_acquire_owned().map_err(|_| {
            Error::Busy(format!(
                "the server is busy with other key work; retry after {RETRY_AFTER_SECONDS} seconds"
            ))
        })?;
        let running = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(format!("CPU pool closed: {e}")))?;
        tokio::task::spawn_blocking(move || {
            // The permits go with the work, not with the request: a client that hangs up does
            // not stop a running thread, so its place stays taken until the work ends.
            let _permits = (admitted, running);
            work()
        })
        .await
        .map_err(|e| Error::Internal(format!("CPU work failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_beyond_the_workers_and_queue_is_refused_and_the_rest_runs() {
        let pool = CpuPool::new(1, 1);
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let blocked = |gate: Arc<std::sync::Mutex<mpsc::Receiver<()>>>| {
            move || {
                let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(60));
                Ok(())
            }
        };
        let first = tokio::spawn({
            let pool = pool.clone();
            let work = blocked(gate.clone());
            async move { pool.run(work).await }
        });
        let second = tokio::spawn({
            let pool = pool.clone();
            let work = blocked(gate.clone());
            async move { pool.run(work).await }
        });
        while pool.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = pool.run(|| Ok(())).await.unwrap_err();
        assert!(matches!(refused, Error::Busy(_)), "{refused:?}");
        release.send(()).unwrap();
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(pool.run(|| Ok(7)).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_request_that_gives_up_keeps_its_place_until_the_work_ends() {
        let pool = CpuPool::new(1, 0);
        let (release, gate) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel::<()>();
        let request = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    started.send(()).unwrap();
                    let _ = gate.recv_timeout(Duration::from_secs(60));
                    Ok(())
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || running.recv().unwrap())
            .await
            .unwrap();
        request.abort();
        let _ = request.await;
        let refused = pool.run(|| Ok(())).await.unwrap_err();
        assert!(matches!(refused, Error::Busy(_)), "{refused:?}");
        release.send(()).unwrap();
        while pool.admitted.available_permits() == 0 {
            tokio::task::yield_now().await;
        }
        pool.run(|| Ok(())).await.unwrap();
    }
}
