//! How many validations run at once: at most a global number, and fewer per account, so one
//! account can neither take every slot nor turn the validator into a fan of outbound
//! connections. Validations over the caps wait their turn (each attempt has a timeout, so a
//! turn always comes); an account with too many waiting is refused with `rateLimited`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Semaphore;

use crate::Error;

/// The validation slots of one validator.
#[derive(Debug)]
pub(super) struct Slots {
    global: Arc<Semaphore>,
    per_account: usize,
    /// Validations admitted (waiting or running) for one account before more are refused.
    queued_per_account: usize,
    /// Sent as `Retry-After` with a refusal: about the time the validations ahead take.
    retry_after: u32,
    accounts: Mutex<HashMap<i64, AccountSlots>>,
}

#[derive(Debug)]
struct AccountSlots {
    running: Arc<Semaphore>,
    admitted: usize,
}

impl Slots {
    /// `global` validations at once, `per_account` of them for one account, and
    /// `queued_per_account` admitted for one account (at least `per_account`).
    pub(super) fn new(
        global: usize,
        per_account: usize,
        queued_per_account: usize,
        retry_after: u32,
    ) -> Self {
        Self {
            global: Arc::new(Semaphore::new(global)),
            per_account,
            queued_per_account: queued_per_account.max(per_account),
            retry_after,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one validation for `account`; it holds its place until the [`Admission`] is
    /// dropped.
    ///
    /// # Errors
    /// `rateLimited`, with `Retry-After`, when the account already has as many admitted as it
    /// may queue.
    pub(super) fn admit(self: &Arc<Self>, account: i64) -> Result<Admission, Error> {
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        let slots = accounts.entry(account).or_insert_with(|| AccountSlots {
            running: Arc::new(Semaphore::new(self.per_account)),
            admitted: 0,
        });
        if slots.admitted >= self.queued_per_account {
            return Err(Error::RateLimited {
                detail: format!(
                    "this account already has {} challenge validations under way or waiting; \
                     try again in {} seconds",
                    slots.admitted, self.retry_after
                ),
                retry_after: self.retry_after,
            });
        }
        slots.admitted += 1;
        Ok(Admission {
            running: slots.running.clone(),
            slots: self.clone(),
            account,
        })
    }
}

/// One admitted validation. Dropping it gives its place back.
#[derive(Debug)]
pub struct Admission {
    running: Arc<Semaphore>,
    slots: Arc<Slots>,
    account: i64,
}

impl Admission {
    /// Waits for a slot of the account, then for a global one, and runs `validation` in them.
    /// The account's slot is taken first so that an account's waiting validations hold no
    /// global slot.
    pub(crate) async fn run<T>(self, validation: impl Future<Output = T>) -> T {
        // The semaphores are never closed, so acquiring waits but never fails.
        let _account = self.running.acquire().await.ok();
        let _global = self.slots.global.acquire().await.ok();
        validation.await
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut accounts = self
            .slots
            .accounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(slots) = accounts.get_mut(&self.account) {
            slots.admitted = slots.admitted.saturating_sub(1);
            if slots.admitted == 0 {
                accounts.remove(&self.account);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Runs a validation for each of `accounts` at once, each taking 50 ms, and returns the
    /// most that ran at the same time.
    async fn most_at_once(slots: &Arc<Slots>, accounts: &[i64]) -> usize {
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = accounts
            .iter()
            .map(|account| {
                let admission = slots.admit(*account).expect("admitted");
                let (now, most) = (now.clone(), most.clone());
                tokio::spawn(admission.run(async move {
                    let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(running, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for task in tasks {
            task.await.expect("test task");
        }
        most.load(Ordering::SeqCst)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_account_runs_at_most_its_share_and_the_rest_wait() {
        let slots = Arc::new(Slots::new(64, 2, 100, 30));
        assert_eq!(most_at_once(&slots, &[1; 6]).await, 2);
        // Another account's validations run beside them.
        assert_eq!(most_at_once(&slots, &[1, 1, 1, 2, 2, 2]).await, 4);
        // All done: every place is given back.
        assert!(slots.accounts.lock().expect("test lock").is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn all_accounts_together_run_at_most_the_global_cap() {
        let slots = Arc::new(Slots::new(3, 2, 100, 30));
        assert_eq!(most_at_once(&slots, &[1, 1, 2, 2, 3, 3, 4, 4]).await, 3);
    }

    #[test]
    fn an_account_with_too_many_waiting_is_rate_limited() {
        let slots = Arc::new(Slots::new(64, 2, 4, 30));
        let held: Vec<Admission> = (0..4).map(|_| slots.admit(7).expect("admitted")).collect();
        let refused = slots.admit(7).expect_err("over the queue");
        assert!(
            matches!(
                refused,
                Error::RateLimited {
                    retry_after: 30,
                    ..
                }
            ),
            "{refused:?}"
        );
        // Other accounts are not affected, and a place given back can be taken again.
        assert!(slots.admit(8).is_ok());
        drop(held);
        assert!(slots.admit(7).is_ok());
    }
}
