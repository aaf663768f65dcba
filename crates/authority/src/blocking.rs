//! A bounded pool for CPU work that must not run on the async workers (DESIGN.md, "Hostile
//! input, everywhere"): at most `slots` jobs run at once on tokio's blocking threads, and at
//! most `queue` more wait for a slot. A caller on a request path asks for a place with
//! [`Pool::admit`] (or [`Pool::run`]) and is refused at once with [`Error::Busy`] when every
//! place is taken, instead of piling up behind the others; background work waits for its place
//! with [`Pool::admit_waiting`]. Tokio's own blocking pool would take up to 512 threads of such
//! work, so a flood of it would eat every core.
//!
//! Two pools serve certmint: OCSP signing on the request path, and long key work (derivations
//! over uploaded keys and files, RSA key generation, password-protected exports).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::{Error, Result};

/// How long a caller refused for a full pool is told to wait, in seconds.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// The bounded pool; see the module documentation.
#[derive(Debug, Clone)]
pub struct Pool {
    /// Jobs running at once.
    slots: Arc<Semaphore>,
    /// Jobs admitted, running or waiting: `slots` + `queue`.
    places: Arc<Semaphore>,
    /// What the work is, for the refusal's message.
    what: &'static str,
}

/// A place in the pool, taken before any work that leads to the job (so that a refused
/// request costs nothing more); dropping it gives the place back.
#[derive(Debug)]
pub struct Admission {
    place: OwnedSemaphorePermit,
    slots: Arc<Semaphore>,
}

impl Pool {
    /// A pool running at most `slots` (at least one) `what` jobs at once, with at most `queue`
    /// more waiting.
    pub fn new(slots: usize, queue: usize, what: &'static str) -> Self {
        let slots = slots.max(1);
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            places: Arc::new(Semaphore::new(slots.saturating_add(queue))),
            what,
        }
    }

    /// A pool of one slot per core, with four jobs waiting per slot.
    pub fn per_core(what: &'static str) -> Self {
        let cores = cores();
        Self::new(cores, 4 * cores, what)
    }

    /// Takes a place for one job, without waiting.
    ///
    /// # Errors
    /// [`Error::Busy`] when `slots` jobs run and `queue` more wait already.
    pub fn admit(&self) -> Result<Admission> {
        let place = self
            .places
            .clone()
            .try_acquire_owned()
            .map_err(|e| match e {
                TryAcquireError::Closed => shutting_down(),
                TryAcquireError::NoPermits => Error::Busy(format!(
                    "the server is busy with other {}; retry after {RETRY_AFTER_SECONDS} seconds",
                    self.what
                )),
            })?;
        Ok(Admission {
            place,
            slots: self.slots.clone(),
        })
    }

    /// Takes a place for one job, waiting for one however long that takes: for background
    /// work, which has no client to refuse.
    ///
    /// # Errors
    /// [`Error::Unavailable`] once the pool is closed.
    pub async fn admit_waiting(&self) -> Result<Admission> {
        let place = self
            .places
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| shutting_down())?;
        Ok(Admission {
            place,
            slots: self.slots.clone(),
        })
    }

    /// Takes a place without waiting and runs `job` in it: the request path's way in.
    ///
    /// # Errors
    /// [`Error::Busy`] when the pool is full; what `job` returns; [`Error::Internal`] when it
    /// panics.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.admit()?.run(job).await?
    }

    /// Places free: how many more jobs would be admitted now.
    pub fn free_places(&self) -> usize {
        self.places.available_permits()
    }

    /// Refuses every job not yet running, waiting or to come, with [`Error::Unavailable`]:
    /// at shutdown, so that a process told to stop does not first work through its queue.
    /// Jobs already running finish (a key derivation cannot be interrupted).
    pub fn close(&self) {
        self.places.close();
        self.slots.close();
    }
}

fn shutting_down() -> Error {
    Error::Unavailable("the server is shutting down".into())
}

/// The cores this process may use (1 when the system cannot tell).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl Admission {
    /// Waits for a slot, then runs `job` on a blocking thread. The place and the slot go with
    /// the job: a caller that stops waiting (a client that hung up) does not free them before
    /// the job is done.
    ///
    /// # Errors
    /// [`Error::Internal`] when the job panics; [`Error::Unavailable`] when the pool closes
    /// before the job gets a slot.
    pub async fn run<T: Send + 'static>(
        self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| shutting_down())?;
        let place = self.place;
        tokio::task::spawn_blocking(move || {
            let _held = (place, slot);
            job()
        })
        .await
        .map_err(|e| Error::Internal(format!("blocking job failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::mpsc;
    use std::time::Duration;

    /// Fills `count` places of `pool` with jobs that run until the returned senders are
    /// dropped.
    async fn occupy(
        pool: &Arc<Pool>,
        count: usize,
    ) -> (Vec<mpsc::Sender<()>>, Vec<tokio::task::JoinHandle<()>>) {
        let mut senders = Vec::new();
        let mut jobs = Vec::new();
        for _ in 0..count {
            let (tx, rx) = mpsc::channel::<()>();
            let admission = pool.admit().expect("a place");
            jobs.push(tokio::spawn(async move {
                admission
                    .run(move || {
                        let _ = rx.recv();
                    })
                    .await
                    .expect("job");
            }));
            senders.push(tx);
        }
        (senders, jobs)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_its_slots_and_queue_the_pool_refuses_at_once() {
        let pool = Arc::new(Pool::new(2, 1, "test work"));
        let (senders, jobs) = occupy(&pool, 3).await;
        assert_eq!(pool.free_places(), 0);
        let refused = pool.admit().expect_err("every place is taken");
        assert!(matches!(refused, Error::Busy(_)), "{refused:?}");

        // Places come back as jobs end, and the waiting job runs.
        drop(senders);
        for job in jobs {
            job.await.expect("job");
        }
        assert_eq!(pool.free_places(), 3);
        assert_eq!(
            pool.admit()
                .expect("a place")
                .run(|| 42)
                .await
                .expect("run"),
            42
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_its_slots_run_at_once() {
        let pool = Arc::new(Pool::new(1, 5, "test work"));
        let (senders, jobs) = occupy(&pool, 1).await;
        // Until the first job holds the slot, a second could take it first.
        while pool.slots.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // A second admitted job waits: it does not run while the first holds the only slot.
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let second = pool.admit().expect("a place in the queue");
        let waiting =
            tokio::spawn(
                async move { second.run(move || tx.send(()).is_ok()).await.expect("run") },
            );
        let early = tokio::time::timeout(Duration::from_millis(200), &mut rx).await;
        assert!(early.is_err(), "the second job ran beside the first");
        drop(senders);
        assert!(
            waiting.await.expect("task"),
            "it runs once the slot is free"
        );
        rx.await.expect("the second job ran");
        for job in jobs {
            job.await.expect("job");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_refuses_the_queue_and_lets_running_work_finish() {
        let pool = Arc::new(Pool::new(1, 1, "test work"));
        let (senders, jobs) = occupy(&pool, 1).await;
        while pool.slots.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let queued = pool.admit().expect("a place in the queue");
        let queued = tokio::spawn(async move { queued.run(|| 1).await });
        let background = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.admit_waiting().await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        pool.close();
        for refused in [
            queued.await.expect("task").map(|_| ()),
            pool.admit().map(|_| ()),
            background.await.expect("task"),
        ] {
            assert!(
                matches!(&refused, Err(Error::Unavailable(m)) if m.contains("shutting down")),
                "{refused:?}"
            );
        }
        // The job that was running is not cut short.
        drop(senders);
        for job in jobs {
            job.await.expect("the running job finishes");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn background_work_waits_for_a_place() {
        let pool = Arc::new(Pool::new(1, 0, "test work"));
        let (senders, jobs) = occupy(&pool, 1).await;
        let background = {
            let pool = pool.clone();
            tokio::spawn(async move {
                let admission = pool.admit_waiting().await.expect("a place");
                admission.run(|| 7).await.expect("run")
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!background.is_finished());
        drop(senders);
        assert_eq!(background.await.expect("task"), 7);
        for job in jobs {
            job.await.expect("job");
        }
    }

    #[tokio::test]
    async fn a_request_that_gives_up_keeps_its_place_until_the_work_ends() {
        let pool = Pool::new(1, 0, "test work");
        let (release, gate) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel::<()>();
        let request = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    started.send(()).expect("started");
                    let _ = gate.recv_timeout(Duration::from_secs(60));
                    Ok(())
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || running.recv().expect("running"))
            .await
            .expect("join");
        request.abort();
        let _ = request.await;
        let refused = pool.run(|| Ok(())).await.expect_err("still busy");
        assert!(matches!(refused, Error::Busy(_)), "{refused:?}");
        release.send(()).expect("release");
        while pool.free_places() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.run(|| Ok(7)).await.expect("runs again"), 7);
    }
}
