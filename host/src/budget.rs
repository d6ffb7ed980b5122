//! A byte budget for queued inbound pieces: one atomic count of the bytes
//! left, taken when a piece is queued and given back when it is dropped.
//! Whoever finds it short waits for a give-back; nobody else touches a lock.
//! It serves no queue of takers in turn, so it is for a budget with one
//! taker: a connection's reader.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Bytes that queued pieces may still hold.
#[derive(Debug)]
pub(crate) struct Budget {
    left: AtomicUsize,
    /// Takers waiting for bytes to be given back.
    waiting: AtomicUsize,
    room: Notify,
}

/// Bytes taken from a budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct Credit {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Budget {
    /// A budget of `bytes`.
    pub(crate) fn new(bytes: usize) -> Self {
        Budget {
            left: AtomicUsize::new(bytes),
            waiting: AtomicUsize::new(0),
            room: Notify::new(),
        }
    }

    /// Takes `bytes` if that many are left.
    pub(crate) fn try_take(self: &Arc<Self>, bytes: usize) -> Option<Credit> {
        // SeqCst here and in `give`: a taker that counts itself as waiting
        // and then finds the budget short, and a giver that adds bytes and
        // then finds no one waiting, cannot both happen.
        self.left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(bytes)
            })
            .ok()
            .map(|_| Credit {
                budget: self.clone(),
                bytes,
            })
    }

    /// Takes `bytes`, waiting until that many are left. Never returns if
    /// the budget is smaller than `bytes`.
    pub(crate) async fn take(self: &Arc<Self>, bytes: usize) -> Credit {
        if let Some(credit) = self.try_take(bytes) {
            return credit;
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if let Some(credit) = self.try_take(bytes) {
                return credit;
            }
            room.await;
        }
    }

    fn give(&self, bytes: usize) {
        self.left.fetch_add(bytes, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.room.notify_waiters();
        }
    }
}

/// Counts a taker as waiting until it is done, or dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Credit {
    /// Gives back all but `bytes` of the credit.
    pub(crate) fn shrink_to(&mut self, bytes: usize) {
        if bytes < self.bytes {
            self.budget.give(self.bytes - bytes);
            self.bytes = bytes;
        }
    }
}

impl Drop for Credit {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_budget_gives_no_more_than_it_has_until_credit_comes_back() {
        let budget = Arc::new(Budget::new(100));
        let mut a = budget.try_take(60).unwrap();
        assert!(budget.try_take(41).is_none());
        let b = budget.try_take(40).unwrap();
        assert!(budget.try_take(1).is_none());
        a.shrink_to(10);
        assert!(budget.try_take(51).is_none());
        let c = budget.try_take(50).unwrap();
        drop((a, b, c));
        assert!(budget.try_take(100).is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_taker_wakes_when_credit_comes_back() {
        let budget = Arc::new(Budget::new(100));
        let held = budget.try_take(100).unwrap();
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.take(70).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "took bytes that were not there");
        drop(held);
        let credit = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter was not woken")
            .unwrap();
        assert_eq!(credit.bytes, 70);
        assert!(budget.try_take(31).is_none());
        assert!(budget.try_take(30).is_some());
    }
}
